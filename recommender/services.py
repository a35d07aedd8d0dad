"""Writes for the recommender: training a model version, storing its artifacts, activating it."""
from __future__ import annotations

import io
import json
import logging
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils import timezone

from . import artifacts
from .ml.data import relevance_threshold, split_ratings_per_user
from .ml.evaluation import score_holdout
from .models import ModelVersion
from .selectors import RatingSnapshot, rating_snapshot

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict], None]


class TrainingError(Exception):
    pass


def model_version_train(
    *, config=None, preset: str = "default", activate: bool = False, on_epoch_end: EpochCallback | None = None
) -> ModelVersion:
    """Train the VAE on a snapshot of every rating, store a new version with its artifacts and metrics.

    The version row is written first and kept whatever happens: a failure marks it FAILED with the reason,
    and the active model stays in service.
    """
    from .ml import vae  # TensorFlow loads here, never in web processes that only serve.

    config = config or vae.preset(preset)
    version = ModelVersion.objects.create(
        status=ModelVersion.Status.TRAINING, preset=preset, hyperparameters=config.to_dict(), training_started_at=timezone.now()
    )
    try:
        snapshot = rating_snapshot()
        version.data_stats = snapshot.stats()
        if snapshot.matrix.nnz == 0:
            raise TrainingError("there are no ratings to train on; import a MovieLens release first")
        callbacks = [_EpochReporter(on_epoch_end)] if on_epoch_end else []
        try:
            result = vae.train(snapshot.matrix, config, callbacks=callbacks)
        except ValueError as error:  # e.g. too few users for a train/validation split
            raise TrainingError(str(error)) from error
        serving = vae.to_recommender(result.model)
        version.history = result.history
        version.metrics = {
            "epochs": result.epochs_run,
            "best_val_loss": float(min(result.history["val_loss"])),
            **validation_metrics(serving, snapshot, result.validation_users, seed=config.seed),
        }
        version.artifact_path = artifacts.artifact_folder(version.pk)
        version.artifact_sha256 = _store_artifacts(version, result.model, serving, snapshot)
        version.status = ModelVersion.Status.READY
        version.training_finished_at = timezone.now()
        version.save()
    except BaseException as error:  # also KeyboardInterrupt / time limits: the row must not stay "training"
        version.status = ModelVersion.Status.FAILED
        version.error = "".join(traceback.format_exception_only(type(error), error)).strip()
        version.training_finished_at = timezone.now()
        version.save()
        logger.exception("Training of model version %s failed", version.pk)
        raise
    logger.info("Trained model version %s in %.1f s: %s", version.pk, version.training_seconds, version.metrics)
    if activate:
        version = model_version_activate(version=version)
    return version


def validation_metrics(serving, snapshot: RatingSnapshot, validation_users: np.ndarray, *, seed: int) -> dict[str, float]:
    """Ranking and rating metrics on the validation users: 80% of each one's ratings folded in, 20% hidden."""
    fold_in, held_out = split_ratings_per_user(snapshot.matrix[np.sort(validation_users)], 0.2, seed=seed)
    return score_holdout(serving, fold_in, held_out, relevance_threshold(snapshot.matrix))


class _EpochReporter:
    """Keras callback forwarding each epoch's losses (kept out of module scope so Keras imports lazily)."""

    def __new__(cls, on_epoch_end: EpochCallback):
        import keras

        class Reporter(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                on_epoch_end(epoch + 1, {key: float(value) for key, value in (logs or {}).items()})

        return Reporter()


def _store_artifacts(version: ModelVersion, model, serving, snapshot: RatingSnapshot) -> dict[str, str]:
    folder = version.artifact_path
    checksums = {}
    with tempfile.TemporaryDirectory() as scratch:
        keras_path = Path(scratch) / artifacts.KERAS_MODEL
        model.save(keras_path)
        checksums[artifacts.KERAS_MODEL] = artifacts.artifact_write(folder=folder, name=artifacts.KERAS_MODEL, content=keras_path.read_bytes())
    weights = io.BytesIO()
    serving.save(weights)
    checksums[artifacts.SERVING_WEIGHTS] = artifacts.artifact_write(folder=folder, name=artifacts.SERVING_WEIGHTS, content=weights.getvalue())
    movie_index = json.dumps({"movie_ids": snapshot.movie_ids.tolist()}).encode()
    checksums[artifacts.MOVIE_INDEX] = artifacts.artifact_write(folder=folder, name=artifacts.MOVIE_INDEX, content=movie_index)
    checksums[artifacts.HISTORY] = artifacts.artifact_write(folder=folder, name=artifacts.HISTORY, content=json.dumps(version.history).encode())
    checksums[artifacts.LOSS_PLOT] = artifacts.artifact_write(folder=folder, name=artifacts.LOSS_PLOT, content=loss_plot_png(version.history, title=f"VAE v{version.pk}"))
    metadata = {
        "version": version.pk, "preset": version.preset, "hyperparameters": version.hyperparameters,
        "data": version.data_stats, "metrics": version.metrics,
    }
    checksums[artifacts.METADATA] = artifacts.artifact_write(folder=folder, name=artifacts.METADATA, content=json.dumps(metadata, indent=2).encode())
    return checksums


def loss_plot_png(history: dict[str, list[float]], *, title: str) -> bytes:
    """Training and validation loss per epoch (the design report's Figure 4), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    axes.plot(epochs, history.get("loss", []), label="training loss")
    if history.get("val_loss"):
        axes.plot(epochs, history["val_loss"], label="validation loss")
        best = int(np.argmin(history["val_loss"]))
        axes.axvline(best + 1, color="grey", linestyle=":", label=f"best epoch ({best + 1})")
    axes.set(xlabel="epoch", ylabel="loss", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the one active model, atomically; the previous active one goes back to READY."""
    locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status == ModelVersion.Status.ACTIVE:
        return locked
    if locked.status != ModelVersion.Status.READY:
        raise TrainingError(f"model version {locked.pk} is {locked.get_status_display().lower()}; only a ready version can be activated")
    # Refuse to put a model with missing or corrupt files in service.
    for name in (artifacts.SERVING_WEIGHTS, artifacts.MOVIE_INDEX):
        try:
            artifacts.artifact_read(folder=locked.artifact_path, name=name, expected_sha256=locked.artifact_sha256.get(name))
        except artifacts.ArtifactError as error:
            raise TrainingError(f"cannot activate model version {locked.pk}: {error}") from error
    ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).update(status=ModelVersion.Status.READY)
    locked.status = ModelVersion.Status.ACTIVE
    locked.activated_at = timezone.now()
    locked.save(update_fields=["status", "activated_at"])
    logger.info("Model version %s is now active", locked.pk)
    return locked


def recommendation_log_record(*, user, recommendations, version_id: int | None) -> None:
    """Remember what was shown to a registered user (their recommendation history), one upsert per page."""
    from .models import RecommendationLog

    now = timezone.now()
    RecommendationLog.objects.bulk_create(
        [
            RecommendationLog(
                user=user, movie=r.movie, source=r.source, predicted_rating=r.predicted_rating,
                model_version_id=version_id if r.source == "model" else None, first_shown_at=now, last_shown_at=now,
            )
            for r in recommendations
        ],
        update_conflicts=True, unique_fields=["user", "movie"], update_fields=["last_shown_at", "source", "predicted_rating", "model_version"],
    )

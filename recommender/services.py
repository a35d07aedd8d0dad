"""Writes for model versions: training one on a snapshot of the ratings, storing its artifacts and loss plot, and
the activation decision's outcome. Background retraining (jobs, the lock, the trigger) is in retraining.py."""

from __future__ import annotations

import io
import json
import logging
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.utils import timezone

from . import artifacts
from .activation import activation_comparison, activation_decide, audit_rule, audit_users_of
from .faults import database_connection_refresh, when_database_is_back
from .models import ModelVersion, TrainingJob
from .selectors import (
    RatingSnapshot,
    model_version_active,
    rating_snapshot,
)
from .versions import TrainingError, model_version_activate

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict], None]
HYBRID_PART_SCORES = ("val_ndcg@100_vae_alone", "val_ndcg@100_item_item_alone", "item_item_l2", "item_item_scale")


def model_version_train(
    *,
    config=None,
    preset: str = "default",
    activate: bool = False,
    on_epoch_end: EpochCallback | None = None,
    training_job: TrainingJob | None = None,
    compare_with_active: bool = False,
) -> ModelVersion:
    """Train the VAE on a snapshot of every rating, store a new version with its artifacts and metrics.

    The version row is written first and kept whatever happens: a failure marks it FAILED with the reason,
    and the active model stays in service. With compare_with_active, the active model is scored on the same
    audit users (activation.activation_comparison), for the activation decision. No version trains on the audit
    users' ratings.
    """
    from .ml import vae  # TensorFlow loads here, never in web processes that only serve.

    config = config or vae.preset(preset)
    database_connection_refresh()  # the import can take longer than an idle timeout
    version = ModelVersion.objects.create(
        status=ModelVersion.Status.TRAINING,
        preset=preset,
        hyperparameters=config.to_dict(),
        training_started_at=timezone.now(),
    )
    if training_job is not None:  # so a lost worker's version can be found and marked failed
        training_job.model_version = version
        TrainingJob.objects.filter(pk=training_job.pk).update(model_version=version)
    try:
        snapshot = rating_snapshot()
        audit = audit_users_of(snapshot)  # left out of every version's training, to compare versions fairly
        version.data_stats = {**snapshot.stats(), "audit": audit_rule(), "audit_users": int(audit.sum())}
        if snapshot.matrix.nnz == 0:
            raise TrainingError("there are no ratings to train on; import a MovieLens release first")
        callbacks = [_EpochReporter(on_epoch_end)] if on_epoch_end else []
        try:
            result = vae.train(snapshot.matrix[~audit], config, callbacks=callbacks)
        except ValueError as error:  # e.g. too few users for a train/validation split
            raise TrainingError(str(error)) from error
        serving = result.serving()
        database_connection_refresh()  # idle since the last epoch's progress write, or since the start
        version.history = result.history
        # Scored inside training, before the movie-to-movie path saw the validation users' hidden ratings.
        version.metrics = {
            "epochs": result.epochs_run,
            "best_val_loss": float(min(result.history["val_loss"])),
            **result.validation_metrics,
            # What each part of the hybrid scores alone on the same validation users (it is kept only when mixing helps).
            **{key: result.history[key][0] for key in HYBRID_PART_SCORES if key in result.history},
        }
        if compare_with_active:
            version.activation_details = activation_comparison(serving=serving, snapshot=snapshot, audit=audit)
        version.artifact_path = artifacts.artifact_folder(version.pk)
        version.artifact_sha256 = _store_artifacts(version, result.model, serving, snapshot)
        version.status = ModelVersion.Status.READY
        version.training_finished_at = timezone.now()
        version.save()
    except BaseException as error:  # also KeyboardInterrupt / time limits: the row must not stay "training"
        version.status = ModelVersion.Status.FAILED
        version.error = "".join(traceback.format_exception_only(type(error), error)).strip()
        version.training_finished_at = timezone.now()
        when_database_is_back(version.save, what=f"recording why model version {version.pk} failed")
        logger.exception("Training of model version %s failed", version.pk)
        raise
    logger.info("Trained model version %s in %.1f s: %s", version.pk, version.training_seconds, version.metrics)
    if activate:
        version = model_version_activate(version=version)
    return version


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
        checksums[artifacts.KERAS_MODEL] = artifacts.artifact_write(
            folder=folder, name=artifacts.KERAS_MODEL, content=keras_path.read_bytes()
        )
    weights = io.BytesIO()
    serving.save(weights)
    checksums[artifacts.SERVING_WEIGHTS] = artifacts.artifact_write(
        folder=folder, name=artifacts.SERVING_WEIGHTS, content=weights.getvalue()
    )
    movie_index = json.dumps({"movie_ids": snapshot.movie_ids.tolist()}).encode()
    checksums[artifacts.MOVIE_INDEX] = artifacts.artifact_write(
        folder=folder, name=artifacts.MOVIE_INDEX, content=movie_index
    )
    checksums[artifacts.HISTORY] = artifacts.artifact_write(
        folder=folder, name=artifacts.HISTORY, content=json.dumps(version.history).encode()
    )
    checksums[artifacts.LOSS_PLOT] = artifacts.artifact_write(
        folder=folder, name=artifacts.LOSS_PLOT, content=loss_plot_png(version.history, title=f"VAE v{version.pk}")
    )
    metadata = {
        "version": version.pk,
        "preset": version.preset,
        "hyperparameters": version.hyperparameters,
        "data": version.data_stats,
        "metrics": version.metrics,
    }
    checksums[artifacts.METADATA] = artifacts.artifact_write(
        folder=folder, name=artifacts.METADATA, content=json.dumps(metadata, indent=2).encode()
    )
    return checksums


def loss_plot_png(history: dict[str, list[float]], *, title: str) -> bytes:
    """Training and validation loss per epoch (the design report's Figure 4), as PNG bytes.

    Two panels, each on its own scale: the training loss sums over every rating of a training user, the validation
    loss over a validation user's held-out part, so on one axis (about 360 against 64) one curve looks flat.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [("training loss", history.get("loss", []))]
    if history.get("val_loss"):
        panels.append(("validation loss", history["val_loss"]))
    figure, axes_row = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=100, squeeze=False)
    best = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None
    for axes, (label, values), colour in zip(axes_row[0], panels, ("tab:blue", "tab:orange"), strict=False):
        axes.plot(np.arange(1, len(values) + 1), values, color=colour)
        if best is not None:
            axes.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
            axes.legend()
        axes.set(xlabel="epoch", ylabel="loss", title=label)
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def model_version_activate_if_not_worse(*, version: ModelVersion) -> ModelVersion:
    """Put a freshly trained version in service unless the audit users say it is worse than the active one.

    The decision and its numbers are recorded on the version either way.
    """
    accept, version.activation_details = activation_decide(
        details=version.activation_details, active=model_version_active()
    )
    version.activation_decision = "activated" if accept else "rejected"
    version.save(update_fields=["activation_decision", "activation_details"])
    logger.info(
        "Model version %s %s: %s", version.pk, version.activation_decision, version.activation_details["reason"]
    )
    return model_version_activate(version=version) if accept else version

import io
import json

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from recommender import artifacts
from recommender.ml import audit, vae
from recommender.models import ModelVersion
from recommender.services import TrainingError, model_version_activate, model_version_train
from tests.conftest import TINY

pytestmark = pytest.mark.django_db


def train_tiny(**changes) -> ModelVersion:
    return model_version_train(config=vae.preset("default", **{**TINY, **changes}))


def test_training_stores_a_complete_version(two_taste_catalogue):
    epochs = []
    version = model_version_train(
        config=vae.preset("default", **TINY), on_epoch_end=lambda epoch, logs: epochs.append((epoch, logs))
    )

    assert version.status == ModelVersion.Status.READY
    assert (
        version.data_stats["users"] == 60
        and version.data_stats["movies"] == 30
        and version.data_stats["ratings"] == 600
    )
    assert version.data_stats["newest_rated_at"].startswith("2020-01-01")
    assert version.hyperparameters["encoder_units"] == [32] and version.hyperparameters["latent_dim"] == 8
    assert [e for e, _ in epochs] == list(range(1, len(version.history["loss"]) + 1)) and "val_loss" in epochs[0][1]
    assert {"precision@5", "ndcg@100", "rmse", "best_val_loss", "epochs"} <= set(version.metrics)
    assert version.training_seconds > 0
    for name in (
        artifacts.KERAS_MODEL,
        artifacts.SERVING_WEIGHTS,
        artifacts.MOVIE_INDEX,
        artifacts.HISTORY,
        artifacts.LOSS_PLOT,
        artifacts.METADATA,
    ):
        content = artifacts.artifact_read(
            folder=version.artifact_path, name=name, expected_sha256=version.artifact_sha256[name]
        )
        assert content
    png = default_storage.open(version.artifact(artifacts.LOSS_PLOT)).read()
    assert png.startswith(b"\x89PNG")
    movie_index = json.loads(default_storage.open(version.artifact(artifacts.MOVIE_INDEX)).read())
    assert movie_index["movie_ids"] == sorted(m.pk for m in two_taste_catalogue["movies"])


@pytest.mark.django_db(transaction=True)  # the connection itself is replaced: no test transaction around it
def test_a_connection_closed_while_the_model_trains_is_replaced_and_the_version_saved(
    two_taste_catalogue, monkeypatch, caplog
):
    from django.db import connection

    real_train = vae.train

    def train_then_hang_up(*args, **kwargs):
        result = real_train(*args, **kwargs)
        connection.connection.close()  # what an idle timeout (a pooler, a firewall) does while no query runs
        return result

    monkeypatch.setattr(vae, "train", train_then_hang_up)
    version = train_tiny()

    assert ModelVersion.objects.get(pk=version.pk).status == ModelVersion.Status.READY
    assert "Replacing a database connection that was closed while training" in caplog.text


def test_keras_artifact_round_trips(two_taste_catalogue, tmp_path):
    version = train_tiny(max_epochs=1)
    path = tmp_path / "model.keras"
    path.write_bytes(default_storage.open(version.artifact(artifacts.KERAS_MODEL)).read())
    model = vae.load_model(str(path))
    assert model.count_params() > 0


def test_seeded_training_is_reproducible(two_taste_catalogue):
    first, second = train_tiny(max_epochs=2), train_tiny(max_epochs=2)
    assert first.history["loss"] == pytest.approx(second.history["loss"], rel=1e-6)
    assert first.artifact_sha256[artifacts.MOVIE_INDEX] == second.artifact_sha256[artifacts.MOVIE_INDEX]


def test_training_without_ratings_fails_cleanly(db):
    with pytest.raises(TrainingError, match="no ratings"):
        train_tiny()
    failed = ModelVersion.objects.get()
    assert failed.status == ModelVersion.Status.FAILED and "no ratings" in failed.error and failed.training_finished_at


def test_activation_is_exclusive_and_checked(two_taste_catalogue):
    first, second = train_tiny(max_epochs=1), train_tiny(max_epochs=1)

    model_version_activate(version=first)
    model_version_activate(version=second)

    statuses = dict(ModelVersion.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "ready", second.pk: "active"}

    failed = ModelVersion.objects.create(status=ModelVersion.Status.FAILED)
    with pytest.raises(TrainingError, match="only a ready version"):
        model_version_activate(version=failed)

    default_storage.delete(first.artifact(artifacts.SERVING_WEIGHTS))
    default_storage.save(first.artifact(artifacts.SERVING_WEIGHTS), io.BytesIO(b"corrupted"))
    with pytest.raises(TrainingError, match="corrupt"):
        model_version_activate(version=first)
    assert ModelVersion.objects.get(status="active") == second


def test_database_allows_one_active_version_only(db):
    from django.db import IntegrityError, transaction

    ModelVersion.objects.create(status=ModelVersion.Status.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(status=ModelVersion.Status.ACTIVE)


def test_train_vae_command(two_taste_catalogue):
    out = io.StringIO()
    call_command(
        "train_vae",
        "--encoder-units",
        "16",
        "--latent-dim",
        "4",
        "--max-epochs",
        "2",
        "--batch-size",
        "16",
        "--min-user-ratings",
        "3",
        "--rating-head",
        "true",
        "--activate",
        stdout=out,
    )
    text = out.getvalue()
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.hyperparameters["encoder_units"] == [16] and version.hyperparameters["max_epochs"] == 2
    # One line per epoch when the output is not a terminal.
    assert "epoch 1 of at most 2, loss " in text and "epoch 2 of at most 2" in text and "\r" not in text
    assert f"Model version {version.pk} is active" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_train_vae_draws_one_progress_bar_on_a_terminal(two_taste_catalogue):
    out = _Terminal()
    call_command(
        "train_vae",
        "--encoder-units",
        "16",
        "--latent-dim",
        "4",
        "--max-epochs",
        "3",
        "--min-user-ratings",
        "3",
        stdout=out,
    )
    text = out.getvalue()
    bar_lines = text.split("\r")[1:]
    assert (
        len(bar_lines) == 3 and bar_lines[0].startswith("\033[K[########") and "epoch 3 of at most 3" in bar_lines[-1]
    )
    assert "] epoch 1 of at most 3, loss" in text and "\nModel version" in text  # the bar's line is ended first


def test_no_version_trains_on_the_audit_users(two_taste_catalogue, monkeypatch, settings):
    settings.RECOMMENDER_AUDIT_SHARE = 0.25
    seen = {}
    real_train = vae.train

    def recording_train(matrix, config, **kwargs):
        seen["users"] = matrix.shape[0]
        return real_train(matrix, config, **kwargs)

    monkeypatch.setattr(vae, "train", recording_train)
    version = model_version_train(config=vae.preset("default", **TINY))
    stats = version.data_stats
    assert stats["audit"] == {"rule": audit.AUDIT_RULE, "share": 0.25, "limit": settings.RECOMMENDER_AUDIT_MAX_USERS}
    assert 0 < stats["audit_users"] < stats["users"] and seen["users"] == stats["users"] - stats["audit_users"]


def test_train_vae_command_rejects_bad_input(two_taste_catalogue):
    with pytest.raises(CommandError, match="invalid hyperparameters|activation must be"):
        call_command("train_vae", "--activation", "sigmoidish", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("train_vae", "--latent-dim", "lots", stdout=io.StringIO())
    assert not ModelVersion.objects.exists()


def test_activate_model_command(two_taste_catalogue):
    version = train_tiny(max_epochs=1)
    out = io.StringIO()
    call_command("activate_model", str(version.pk), stdout=out)
    assert "is active" in out.getvalue()
    with pytest.raises(CommandError, match="no model version 999"):
        call_command("activate_model", "999")


def test_unless_active_skips_training(two_taste_catalogue):
    version = model_version_activate(version=train_tiny(max_epochs=1))
    out = io.StringIO()
    call_command("train_vae", "--unless-active", "--activate", stdout=out)
    assert "already in service" in out.getvalue()
    assert list(ModelVersion.objects.all()) == [version]


def test_web_processes_do_not_import_tensorflow():
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    code = (
        "import django, sys; django.setup();"
        "from django.urls import resolve; resolve('/');"
        "import recommender.recommendations, recommender.admin, movies.admin;"
        "from django.test import Client; Client().get('/');"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "DJANGO_SETTINGS_MODULE": "mynextmovie_site.settings.test",
            "DATABASE_URL": "sqlite:///:memory:",
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stderr

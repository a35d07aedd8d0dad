"""Fast unit tests of background retraining: the trigger, the lock, the activation decision, the job runner."""

import datetime
import logging

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from movies.models import Movie, Rating
from movies.services import rating_set
from recommender import artifacts, tasks
from recommender.models import ModelVersion, TrainingJob, TrainingLock
from recommender.recommendations import registry
from recommender.retraining import (
    training_job_enqueue,
    training_job_request_if_due,
    training_job_run,
    training_lock_acquire,
    training_lock_release,
    training_lock_renew,
)
from recommender.selectors import ratings_since_snapshot_count, training_in_progress, training_pause
from recommender.services import model_version_activate_if_not_worse
from tests.accounts.factories import UserFactory
from tests.conftest import TINY

pytestmark = pytest.mark.django_db
OLD = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def version_with_files(*, status="ready", newest=OLD, metric=None) -> ModelVersion:
    version = ModelVersion.objects.create(status=status, data_stats={"newest_rated_at": newest.isoformat()})
    version.artifact_path = artifacts.artifact_folder(version.pk)
    version.artifact_sha256 = {
        name: artifacts.artifact_write(folder=version.artifact_path, name=name, content=b"x")
        for name in (artifacts.SERVING_WEIGHTS, artifacts.MOVIE_INDEX)
    }
    version.save()
    return version


def add_ratings(count, when=None):
    user = UserFactory()
    movies = Movie.objects.bulk_create(
        [Movie(movielens_id=10_000 + Movie.objects.count() + i, title=f"m{i}") for i in range(count)]
    )
    Rating.objects.bulk_create([Rating(user=user, movie=m, score=4.0, rated_at=when or timezone.now()) for m in movies])


# ------------------------------------------------------------------------------------------- pace and backoff


def finished_job(status, *, minutes_ago, started=True):
    when = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    return TrainingJob.objects.create(
        reason="new_ratings",
        status=status,
        pending=None,
        requested_at=when,
        finished_at=when,
        started_at=when if started else None,
    )


def test_automatic_trainings_keep_their_pace(settings, published):
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_MIN_INTERVAL_SECONDS = 1, 600
    version_with_files(status="active", newest=OLD)
    add_ratings(3)
    finished_job(TrainingJob.Status.SUCCEEDED, minutes_ago=5)
    assert training_job_request_if_due(reason="new_ratings") is None  # the last one started 5 minutes ago
    assert "the last training started" in training_pause().reason
    assert training_job_enqueue(reason="manual") is not None  # a person asking is not held back


def test_pace_over_the_next_automatic_training_is_queued(settings, published):
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_MIN_INTERVAL_SECONDS = 1, 600
    version_with_files(status="active", newest=OLD)
    add_ratings(3)
    finished_job(TrainingJob.Status.SUCCEEDED, minutes_ago=11)
    assert training_pause() is None and training_job_request_if_due(reason="new_ratings") is not None


@pytest.mark.parametrize(
    ("failures", "minutes_ago", "waits"),
    [(1, 0.5, True), (1, 1.5, False), (3, 3, True), (3, 5, False), (12, 59, True), (12, 61, False)],
)
def test_failures_back_off_exponentially_up_to_a_cap(settings, published, failures, minutes_ago, waits):
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_BACKOFF_SECONDS, settings.RETRAIN_BACKOFF_MAX_SECONDS = 1, 60, 3600
    version_with_files(status="active", newest=OLD)
    add_ratings(3)
    finished_job(TrainingJob.Status.SUCCEEDED, minutes_ago=500)
    for i in range(failures):  # the newest failure last
        finished_job(TrainingJob.Status.FAILED, minutes_ago=minutes_ago + (failures - i) * 1e-3)
    assert (training_pause() is not None) == waits
    assert (training_job_request_if_due(reason="new_ratings") is None) == waits
    if waits:
        assert f"{failures} failed in a row" in training_pause().reason


def test_a_broker_outage_leaves_one_failed_job(settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_BACKOFF_SECONDS = 1, 60

    def broker_down(**kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.model_version_train_task, "apply_async", broker_down)
    version_with_files(status="active", newest=OLD)
    for _ in range(20):  # twenty ratings during the outage, each checking the trigger
        add_ratings(1)
        with django_capture_on_commit_callbacks(execute=True):
            training_job_request_if_due(reason="new_ratings")
    assert TrainingJob.objects.filter(status=TrainingJob.Status.FAILED).count() == 1


def test_the_admin_says_why_automatic_trainings_wait(admin_client, settings):
    settings.RETRAIN_BACKOFF_SECONDS = 60
    finished_job(TrainingJob.Status.FAILED, minutes_ago=0)
    page = admin_client.get(reverse("admin:recommender_trainingjob_changelist")).content.decode()
    assert "Automatic trainings wait until" in page and "1 failed in a row" in page


# ------------------------------------------------------------------------------------------- trigger


def test_trigger_counts_ratings_since_the_snapshot_and_queues_once(
    settings, published, django_capture_on_commit_callbacks
):
    settings.RETRAIN_THRESHOLD = 3
    version_with_files(status="active", newest=OLD)
    add_ratings(5, when=OLD)  # in the snapshot already
    add_ratings(2)
    assert ratings_since_snapshot_count() == 2 and training_job_request_if_due(reason="new_ratings") is None

    add_ratings(1)
    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_request_if_due(reason="new_ratings")
    assert job.status == TrainingJob.Status.QUEUED and job.new_ratings == 3 and training_in_progress()
    assert published == [{"kwargs": {"job_id": job.pk}, "task_id": job.task_id}]
    # Queued already: later ratings and a manual request add nothing.
    assert training_job_request_if_due(reason="new_ratings") is None and training_job_enqueue(reason="manual") is None


def test_a_rejected_candidates_snapshot_also_counts(settings):
    settings.RETRAIN_THRESHOLD = 2
    version_with_files(status="active", newest=OLD)
    add_ratings(3, when=OLD + datetime.timedelta(days=1))
    assert ratings_since_snapshot_count() == 3
    version_with_files(status="ready", newest=OLD + datetime.timedelta(days=1))  # trained on them, not activated
    assert ratings_since_snapshot_count() == 0


def test_each_committed_rating_runs_the_trigger(settings, published, django_capture_on_commit_callbacks):
    settings.RETRAIN_THRESHOLD = 1
    movie = Movie.objects.create(movielens_id=1, title="One")
    with django_capture_on_commit_callbacks(execute=True):
        rating_set(user=UserFactory(), movie=movie, score=4)
    assert TrainingJob.objects.get().reason == TrainingJob.Reason.NEW_RATINGS and len(published) == 1


def test_broker_failure_is_logged_and_the_rating_kept(
    settings, monkeypatch, client, caplog, django_capture_on_commit_callbacks
):
    settings.RETRAIN_THRESHOLD = 1

    def broker_down(**kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks.model_version_train_task, "apply_async", broker_down)
    movie = Movie.objects.create(movielens_id=1, title="One")
    client.force_login(user := UserFactory())
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.ERROR):
        response = client.post(reverse("movies:rate"), {"movie": movie.pk, "score": 4})
    assert response.status_code == 302 and Rating.objects.filter(user=user).exists()
    assert "Could not queue training job" in caplog.text
    job = TrainingJob.objects.get()
    assert job.status == TrainingJob.Status.FAILED and "Connection refused" in job.error and not training_in_progress()


def test_periodic_task_queues_what_was_missed(settings, published):
    settings.RETRAIN_THRESHOLD = 2
    add_ratings(2)
    tasks.retraining_check_task()
    assert TrainingJob.objects.get().reason == TrainingJob.Reason.PERIODIC


# ------------------------------------------------------------------------------------------- lock


def test_lock_is_exclusive_renewable_and_expires():
    assert training_lock_acquire(holder="a", seconds=60)
    assert not training_lock_acquire(holder="b", seconds=60)
    assert training_lock_renew(holder="a", seconds=60) and not training_lock_renew(holder="b", seconds=60)
    TrainingLock.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))  # "a" died
    assert not training_in_progress()
    assert training_lock_acquire(holder="b", seconds=60)
    assert not training_lock_renew(holder="a", seconds=60)
    training_lock_release(holder="a")  # not a's any more: untouched
    assert TrainingLock.objects.get().holder == "b"
    training_lock_release(holder="b")
    assert not TrainingLock.objects.exists()


# ------------------------------------------------------------------------------------------- activation decision


@pytest.mark.parametrize(
    ("candidate", "active_score", "margin", "standard_error", "decision"),
    [
        (0.30, 0.30, 0.01, 0.001, "activated"),
        (0.295, 0.30, 0.01, 0.001, "activated"),
        (0.28, 0.30, 0.01, 0.001, "rejected"),
        (0.28, 0.30, 0.01, 0.015, "activated"),  # few or very different audit users: two standard errors tolerated
        (0.5, 0.3, 0.0, 0.0, "activated"),
    ],
)
def test_activation_decision_with_margin(settings, candidate, active_score, margin, standard_error, decision):
    settings.RETRAIN_ACTIVATION_MARGIN = margin
    active = version_with_files(status="active")
    new = version_with_files()
    new.activation_details = {
        "metric": "ndcg@100",
        "candidate": candidate,
        "active": active_score,
        "active_version": active.pk,
        "standard_error": standard_error,
        "audit_users": 90,
    }
    model_version_activate_if_not_worse(version=new)
    new.refresh_from_db()
    details = new.activation_details
    assert new.activation_decision == decision and details["configured_margin"] == margin
    assert details["margin"] == pytest.approx(max(margin, 2 * standard_error)) and "90 audit users" in details["reason"]
    assert ModelVersion.objects.get(status="active") == (new if decision == "activated" else active)


def test_too_few_audit_users_activate_the_newer_model():
    active = version_with_files(status="active")
    new = version_with_files()
    new.activation_details = {"metric": "ndcg@100", "active_version": active.pk, "audit_users": 1}
    assert model_version_activate_if_not_worse(version=new).status == "active"
    assert "too few audit users" in ModelVersion.objects.get(pk=new.pk).activation_details["reason"]


def test_activation_without_or_with_a_broken_active_model():
    first = version_with_files()
    first.activation_details = {"metric": "ndcg@100", "candidate": 0.1, "active_version": None}
    assert model_version_activate_if_not_worse(version=first).status == "active"
    second = version_with_files()
    second.activation_details = {
        "metric": "ndcg@100",
        "candidate": 0.0,
        "active": None,
        "active_version": first.pk,
        "active_error": "corrupt",
    }
    assert model_version_activate_if_not_worse(version=second).status == "active"
    assert "cannot be loaded" in ModelVersion.objects.get(pk=second.pk).activation_details["reason"]


# ------------------------------------------------------------------------------------------- the job runner


def test_job_trains_compares_activates_and_is_idempotent(two_taste_catalogue, settings, published, caplog):
    settings.RECOMMENDER_TRAINING_OVERRIDES = {**TINY, "max_epochs": 2}
    job = training_job_enqueue(reason="manual")
    with caplog.at_level(logging.INFO, logger="recommender.services"):
        training_job_run(job_id=job.pk, worker="w1")
    # The worker log shows the training move: one line per epoch.
    assert f"Training job {job.pk}: epoch 1 of at most 2, loss" in caplog.text
    assert f"Training job {job.pk}: epoch 2 of at most 2" in caplog.text
    job.refresh_from_db()
    version = job.model_version
    assert job.status == TrainingJob.Status.SUCCEEDED and not job.pending and job.worker == "w1"
    assert (
        version.status == "active"
        and version.activation_decision == "activated"
        and version.activation_details["candidate"] is not None
    )
    assert not TrainingLock.objects.exists()
    training_job_run(job_id=job.pk)  # delivered twice: nothing happens
    assert ModelVersion.objects.count() == 1

    second = training_job_enqueue(reason="manual")
    training_job_run(job_id=second.pk)
    second.refresh_from_db()
    # Compared with version 1 on the audit users, whose ratings neither version trained on, paired per user.
    details = second.model_version.activation_details
    assert details["active_version"] == version.pk and details["active"] is not None
    assert details["audit"] == version.data_stats["audit"] == second.model_version.data_stats["audit"]
    assert details["audit_users"] >= 2 and "active_audit_note" not in details
    assert details["mean_difference"] == pytest.approx(details["candidate"] - details["active"], abs=1e-5)
    assert details["candidate_better_for"] + details["active_better_for"] <= details["audit_users"]
    assert second.model_version.activation_decision in ("activated", "rejected") and "audit users" in details["reason"]


def test_a_failed_training_keeps_the_active_model_and_releases_the_lock(db, settings, published):
    active = version_with_files(status="active")
    job = training_job_enqueue(reason="manual")
    with pytest.raises(Exception, match="no ratings"):
        training_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (
        job.status == TrainingJob.Status.FAILED and "no ratings" in job.error and job.model_version.status == "failed"
    )
    assert ModelVersion.objects.get(status="active") == active and not TrainingLock.objects.exists()


def test_a_job_waits_out_a_held_lock_and_automatic_jobs_skip_when_nothing_is_new(db, settings, published):
    training_lock_acquire(holder="someone else", seconds=60)
    job = training_job_enqueue(reason="manual")
    training_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SKIPPED and "lock" in job.error
    training_lock_release(holder="someone else")
    settings.RETRAIN_THRESHOLD = 10
    automatic = training_job_enqueue(reason="periodic")
    training_job_run(job_id=automatic.pk)
    automatic.refresh_from_db()
    assert automatic.status == TrainingJob.Status.SKIPPED and ModelVersion.objects.count() == 0


def test_a_duplicate_delivery_never_changes_a_running_job(db, published):
    job = training_job_enqueue(reason="manual")
    training_lock_acquire(holder=f"job {job.pk} on the first worker", seconds=60)
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.RUNNING)
    training_job_run(job_id=job.pk, worker="second worker")
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING and job.pending and job.error == ""
    assert TrainingLock.objects.get().holder == f"job {job.pk} on the first worker"


def test_a_lost_running_job_is_reaped_when_the_next_is_queued(db, published):
    training_lock_acquire(holder="dead worker", seconds=60)
    lost = TrainingJob.objects.create(reason="manual", status="running", model_version=ModelVersion.objects.create())
    assert training_job_enqueue(reason="manual") is None  # still running as far as anyone knows
    TrainingLock.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert training_job_enqueue(reason="manual") is not None
    lost.refresh_from_db()
    assert lost.status == "failed" and "worker was lost" in lost.error and lost.model_version.status == "failed"


# ------------------------------------------------------------------------------------------- command, admin, serving


def test_train_vae_async_queues_a_job(published, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("train_vae", "--async")
    job = TrainingJob.objects.get()
    assert (
        job.reason == TrainingJob.Reason.MANUAL
        and "Queued training job" in capsys.readouterr().out
        and len(published) == 1
    )


def test_admin_retrain_now_and_training_state(client, published, django_capture_on_commit_callbacks):
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:recommender_modelversion_changelist"))
    assert "No training queued or running." in listing.text and "Retrain now" in listing.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:recommender_modelversion_retrain"), follow=True)
    assert "queued; a training worker will pick it up" in response.text and len(published) == 1
    assert "waiting since" in response.text
    training_lock_acquire(holder="job 1 on gpu-1", seconds=60)
    assert "Training running (job 1 on gpu-1" in client.get(reverse("admin:recommender_trainingjob_changelist")).text
    response = client.post(reverse("admin:recommender_modelversion_retrain"), follow=True)
    assert "already queued" in response.text


def test_a_corrupt_newly_active_version_keeps_the_previous_one_in_service(two_taste_catalogue, settings, caplog):
    from recommender.ml import vae
    from recommender.services import model_version_activate, model_version_train

    first = model_version_activate(
        version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 1}))
    )
    second = model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 1}))
    assert registry.current().version_id == first.pk
    default_storage.delete(second.artifact(artifacts.MOVIE_INDEX))  # missing after activation (e.g. storage lost it)
    ModelVersion.objects.filter(pk=first.pk).update(status="ready")
    ModelVersion.objects.filter(pk=second.pk).update(status="active")
    with caplog.at_level(logging.ERROR):
        assert registry.current().version_id == first.pk
    assert f"Model version {second.pk} taken out of service" in caplog.text and "missing" in caplog.text
    # The database agrees with what is served: the broken version is failed, saying why; the good one is back.
    second.refresh_from_db()
    assert second.status == "failed" and "missing" in second.error
    assert ModelVersion.objects.get(status="active") == first

"""Fault handling of background training, in process: the lock's heartbeat, writes that wait for the database, lost
workers recovered by the periodic check, the pace after a failure, a retry after a database outage, progress."""

import datetime
import threading
import time

import pytest
from django.db import OperationalError
from django.utils import timezone

from recommender import tasks
from recommender.faults import LockHeartbeat, when_database_is_back
from recommender.models import ModelVersion, TrainingJob, TrainingLock
from recommender.retraining import (
    training_job_enqueue,
    training_job_request_if_due,
    training_job_run,
    training_lock_acquire,
    training_progress,
)
from recommender.selectors import training_pause

from .test_retraining import OLD, add_ratings, finished_job, version_with_files

pytestmark = pytest.mark.django_db


def test_writes_wait_for_the_database_to_come_back(caplog):
    calls = []

    def write():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "written"

    assert when_database_is_back(write, what="testing", seconds=30) == "written"
    assert len(calls) == 3 and "Database unavailable while testing" in caplog.text


def test_writes_give_up_after_the_wait_and_other_errors_pass_at_once(caplog):
    def down():
        raise OperationalError("could not connect to server")

    with pytest.raises(OperationalError):
        when_database_is_back(down, what="testing", seconds=0.6)
    assert "Gave up testing" in caplog.text

    def wrong():
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        when_database_is_back(wrong, what="testing", seconds=30)


def test_the_heartbeat_renews_the_lease_tolerates_outages_and_reports_a_lost_lock():
    answers = iter([True, OperationalError("database is down"), True, False])
    renewed = threading.Event()

    def renew(*, holder, seconds):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        if answer is False:
            renewed.set()
        return answer

    with LockHeartbeat(holder="job 1", seconds=0.15, renew=renew) as heartbeat:
        assert renewed.wait(5)
        assert heartbeat.lost.wait(1)  # the fourth renewal found the lock taken: the training must stop


def test_the_periodic_check_recovers_a_job_whose_lease_lapsed(settings, published):
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_LOCK_SECONDS, settings.RETRAIN_BACKOFF_SECONDS = 1, 45, 60
    version_with_files(status="active", newest=OLD)
    add_ratings(3)
    started = timezone.now() - datetime.timedelta(minutes=3)
    lost_version = ModelVersion.objects.create(status=ModelVersion.Status.TRAINING)
    lost = TrainingJob.objects.create(
        reason="new_ratings", status="running", started_at=started, model_version=lost_version
    )
    training_lock_acquire(holder=f"job {lost.pk} on a dead worker", seconds=45)
    tasks.retraining_check_task()
    assert TrainingJob.objects.count() == 1  # its lease still runs: it may be alive
    # The periodic check after the lease lapsed (every 30 s) marks it lost, dated by its last heartbeat; the first
    # failure's backoff (60 s) counts from there.
    TrainingLock.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    tasks.retraining_check_task()
    assert TrainingJob.objects.count() == 1
    lost.refresh_from_db()
    lost_version.refresh_from_db()
    assert lost.status == "failed" and "worker was lost" in lost.error and lost_version.status == "failed"
    assert abs((timezone.now() - lost.finished_at).total_seconds() - 46) < 5
    assert "1 failed in a row" in training_pause().reason
    # 15 s later the backoff is over (a minute after the last heartbeat): the next check queues the retry.
    TrainingJob.objects.filter(pk=lost.pk).update(finished_at=lost.finished_at - datetime.timedelta(seconds=15))
    tasks.retraining_check_task()
    assert TrainingJob.objects.filter(pending=True, reason="periodic").exists()


def test_a_job_that_has_just_started_is_not_taken_for_lost(settings, published):
    settings.RETRAIN_LOCK_SECONDS = 45
    just_started = TrainingJob.objects.create(reason="manual", status="running", started_at=timezone.now())
    assert training_job_enqueue(reason="manual") is None  # its worker may have only just taken the lock
    just_started.refresh_from_db()
    assert just_started.status == "running"


def test_a_failed_training_does_not_set_the_pace(settings, published):
    """The pace spaces successful trainings; a failed one (e.g. its worker was killed) is paced by the backoff."""
    settings.RETRAIN_THRESHOLD, settings.RETRAIN_MIN_INTERVAL_SECONDS, settings.RETRAIN_BACKOFF_SECONDS = 1, 600, 60
    version_with_files(status="active", newest=OLD)
    add_ratings(3)
    finished_job(TrainingJob.Status.SUCCEEDED, minutes_ago=30)
    finished_job(TrainingJob.Status.FAILED, minutes_ago=2)  # started 2 minutes ago, failed: backoff of 60 s is over
    assert training_pause() is None and training_job_request_if_due(reason="new_ratings") is not None


def test_a_database_outage_is_recorded_and_retried_once(settings, published, monkeypatch):
    from recommender import retraining

    settings.RETRAIN_DATABASE_WAIT_SECONDS = 30
    version_with_files(status="active", newest=OLD)
    job = training_job_enqueue(reason="manual")

    def outage(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(retraining, "model_version_train", outage)
    with pytest.raises(OperationalError):
        training_job_run(job_id=job.pk, worker="w1")
    job.refresh_from_db()
    assert job.status == "failed" and "administrator command" in job.error and not TrainingLock.objects.exists()
    retry = TrainingJob.objects.get(pending=True)
    assert retry.reason == TrainingJob.Reason.RETRY
    # A second outage in a row is not retried at once: the backoff paces it.
    with pytest.raises(OperationalError):
        training_job_run(job_id=retry.pk, worker="w1")
    assert not TrainingJob.objects.filter(pending=True).exists() and TrainingJob.objects.count() == 2


def test_progress_says_where_a_training_is_and_how_long_it_may_take():
    progress = training_progress(epoch=10, max_epochs=60, logs={"loss": 12.5, "val_ndcg@100": 0.4321}, elapsed=40.0)
    assert progress["epoch"] == 10 and progress["value"] == 0.4321 and progress["at_most_left_seconds"] == 200.0
    assert progress["summary"] == "epoch 10 of at most 60, loss 12.5000, val_ndcg@100 0.4321, 40 s, at most 200 s left"
    assert training_progress(epoch=1, max_epochs=1, logs={}, elapsed=1.0)["metric"] is None

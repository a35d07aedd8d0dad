"""Background retraining: the trigger after each rating, training jobs (queued, run, finished), the training lock
with its heartbeat-renewed lease, the pace and backoff, progress, and recovery from lost workers and database
outages. A job trains through services.model_version_train and activates through the activation decision."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .faults import DATABASE_UNAVAILABLE, LockHeartbeat, when_database_is_back
from .models import ModelVersion, TrainingJob, TrainingLock
from .selectors import (
    TRAINING_LOCK,
    ratings_since_snapshot_count,
    training_failures_in_a_row,
    training_in_progress,
    training_job_stale_before,
    training_lock_held,
    training_pause,
)
from .services import model_version_activate_if_not_worse, model_version_train
from .versions import TrainingError

logger = logging.getLogger(__name__)

TRAIN_MODEL_TASK = "recommender.train_model"  # tasks.model_version_train_task


def training_lock_acquire(*, holder: str, seconds: float) -> bool:
    """Take the training lock unless someone else holds an unexpired one; atomic on SQLite and PostgreSQL."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=seconds)
    # One conditional UPDATE: taken when expired (its holder died) or already ours.
    taken = TrainingLock.objects.filter(name=TRAINING_LOCK, expires_at__lte=now).update(
        holder=holder, acquired_at=now, expires_at=expires_at
    )
    if taken or TrainingLock.objects.filter(name=TRAINING_LOCK, holder=holder).update(expires_at=expires_at):
        return True
    try:
        with transaction.atomic():
            TrainingLock.objects.create(name=TRAINING_LOCK, holder=holder, acquired_at=now, expires_at=expires_at)
    except IntegrityError:  # held, or created by someone else a moment ago
        return False
    return True


def training_lock_renew(*, holder: str, seconds: float) -> bool:
    """Extend our lock (each epoch); False when it lapsed and someone else took it."""
    expires_at = timezone.now() + timedelta(seconds=seconds)
    return bool(TrainingLock.objects.filter(name=TRAINING_LOCK, holder=holder).update(expires_at=expires_at))


def training_lock_release(*, holder: str) -> None:
    TrainingLock.objects.filter(name=TRAINING_LOCK, holder=holder).delete()


def training_trigger_after_rating() -> TrainingJob | None:
    """Called after each committed rating change: queue a training once enough ratings are new.

    Never raises: a rating must be saved and the page must work even when the broker or this check fails.
    """
    try:
        return training_job_request_if_due(reason=TrainingJob.Reason.NEW_RATINGS)
    except Exception:
        logger.exception("Retraining check after a rating failed; the periodic check will try again")
        return None


def training_job_request_if_due(*, reason: str) -> TrainingJob | None:
    """Queue a training when RETRAIN_THRESHOLD ratings are new since the last snapshot, none is queued or running
    and no pause applies (selectors.training_pause); beat's periodic check queues it once the pause is over."""
    if training_in_progress():
        return None
    if training_pause() is not None:  # the pace between trainings, or the backoff after failures
        return None
    threshold = settings.RETRAIN_THRESHOLD
    new_ratings = ratings_since_snapshot_count(limit=threshold)
    if new_ratings < threshold:
        return None
    return training_job_enqueue(reason=reason, new_ratings=new_ratings)


def training_job_enqueue(*, reason: str, new_ratings: int | None = None) -> TrainingJob | None:
    """Record a queued job and send its task after commit; None when a job is already queued."""
    # A queued job whose message was lost (its broker flushed), or a running one whose worker died (its lock
    # lapsed), would block every future trigger.
    TrainingJob.objects.filter(status=TrainingJob.Status.QUEUED, requested_at__lte=training_job_stale_before()).update(
        status=TrainingJob.Status.FAILED,
        pending=None,
        error="never started: its message was lost",
        finished_at=timezone.now(),
    )
    training_recover_lost()
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(reason=reason, new_ratings=new_ratings, task_id=str(uuid.uuid4()))
    except IntegrityError:  # TrainingJob.pending is unique: a training is queued or running, or another trigger won
        return None
    # Like delay_on_commit, but a broker that is down is logged instead of failing the caller's request.
    transaction.on_commit(lambda: _training_job_publish(job))
    logger.info("Queued training job %s (%s, %s new ratings)", job.pk, reason, new_ratings)
    return job


def _training_job_publish(job: TrainingJob) -> None:
    # By the task's name, not by importing tasks.py (whose tasks call this module): the task object that apps.py
    # registered, so its options, routing (the training queue) and eager mode apply as with a direct call.
    try:
        current_app.tasks[TRAIN_MODEL_TASK].apply_async(kwargs={"job_id": job.pk}, task_id=job.task_id)
    except Exception as error:  # noqa: BLE001 - any broker or network error: the rating must still be saved
        logger.error(
            "Could not queue training job %s (is the broker down?): %s; the periodic check will queue it again",
            job.pk,
            error,
        )
        TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.QUEUED).update(
            status=TrainingJob.Status.FAILED,
            pending=None,
            error=f"could not be queued: {error}",
            finished_at=timezone.now(),
        )


class TrainingTimeLimitExceeded(TrainingError):
    pass


def training_job_run(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """The training task's body: take the lock, train on a snapshot, decide activation, release the lock.

    Idempotent: a finished job is not trained again when its message is delivered twice, and a job whose
    worker was lost (its lease lapsed) is trained again from scratch. A heartbeat holds the lock's short lease
    while the training runs; a failure is recorded once the database answers, even when the database was the fault.
    """
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None or job.status in (
        TrainingJob.Status.SUCCEEDED,
        TrainingJob.Status.FAILED,
        TrainingJob.Status.SKIPPED,
    ):
        logger.info("Training job %s is already done; nothing to do", job_id)
        return job
    holder = f"job {job.pk} on {worker or 'unknown'} ({uuid.uuid4().hex[:8]})"
    lock_seconds = settings.RETRAIN_LOCK_SECONDS
    if not training_lock_acquire(holder=holder, seconds=lock_seconds):
        if job.status == TrainingJob.Status.RUNNING:
            # A second delivery of a job that a live worker is training: that worker owns it, leave it alone.
            logger.info("Training job %s is running elsewhere; this delivery does nothing", job.pk)
            return job
        _training_job_finish(job, TrainingJob.Status.SKIPPED, error="another training holds the lock")
        return job
    database_failed = False
    try:
        with LockHeartbeat(holder=holder, seconds=lock_seconds, renew=training_lock_renew) as heartbeat:
            _training_job_train(job, worker=worker, heartbeat=heartbeat)
    except BaseException as error:  # time limits and worker shutdown too: the job must not stay "running"
        message = "".join(traceback.format_exception_only(type(error), error)).strip()
        when_database_is_back(
            lambda: _training_job_finish(job, TrainingJob.Status.FAILED, error=message),
            what=f"recording why training job {job.pk} failed",
        )
        database_failed = isinstance(error, DATABASE_UNAVAILABLE)
        raise
    finally:
        when_database_is_back(lambda: training_lock_release(holder=holder), what="releasing the training lock")
        if database_failed:
            _training_retry_after_outage()
    return job


def _training_job_train(job: TrainingJob, *, worker: str, heartbeat: LockHeartbeat) -> None:
    _training_reap_lost(keep=job)
    if job.reason not in (TrainingJob.Reason.MANUAL, TrainingJob.Reason.RETRY) and (
        ratings_since_snapshot_count(limit=settings.RETRAIN_THRESHOLD) < settings.RETRAIN_THRESHOLD
    ):
        # e.g. queued while a training on the same ratings was finishing: nothing new to learn.
        _training_job_finish(
            job, TrainingJob.Status.SKIPPED, error="fewer than RETRAIN_THRESHOLD new ratings since the last training"
        )
        return
    job.status, job.started_at, job.worker, job.error = TrainingJob.Status.RUNNING, timezone.now(), worker, ""
    job.save(update_fields=["status", "started_at", "worker", "error"])
    deadline = time.monotonic() + settings.RETRAIN_SOFT_TIME_LIMIT
    started = time.monotonic()
    from .ml import vae

    config = vae.preset(settings.RECOMMENDER_TRAINING_PRESET, **settings.RECOMMENDER_TRAINING_OVERRIDES)

    def on_epoch_end(epoch: int, logs: dict) -> None:
        elapsed = time.monotonic() - started
        progress = training_progress(epoch=epoch, max_epochs=config.max_epochs, logs=logs, elapsed=elapsed)
        # One line per epoch, so the worker log shows a training moving; the admin's job page shows the same.
        logger.info("Training job %s: %s", job.pk, progress["summary"])
        _training_job_progress(job, progress)
        # Works in any pool (the solo pool enforces no Celery time limit).
        if time.monotonic() > deadline:
            raise TrainingTimeLimitExceeded(
                f"soft time limit of {settings.RETRAIN_SOFT_TIME_LIMIT} s reached at epoch {epoch}"
            )
        if heartbeat.lost.is_set():
            raise TrainingError("the training lock lapsed and was taken by another worker")

    version = model_version_train(
        config=config,
        preset=settings.RECOMMENDER_TRAINING_PRESET,
        on_epoch_end=on_epoch_end,
        training_job=job,
        compare_with_active=True,
    )
    version = model_version_activate_if_not_worse(version=version)
    job.model_version = version
    _training_job_finish(job, TrainingJob.Status.SUCCEEDED)


def training_progress(*, epoch: int, max_epochs: int, logs: dict, elapsed: float) -> dict:
    """What a watcher needs after each epoch: where it is, the latest validation score, time spent and left at most
    (early stopping usually ends it sooner)."""
    metric = next((name for name in ("val_ndcg@100", "val_loss") if name in logs), None)
    per_epoch = elapsed / max(epoch, 1)
    at_most_left = per_epoch * max(max_epochs - epoch, 0)
    summary = f"epoch {epoch} of at most {max_epochs}"
    if "loss" in logs:
        summary += f", loss {logs['loss']:.4f}"
    if metric and metric != "val_loss":
        summary += f", {metric} {logs[metric]:.4f}"
    summary += f", {elapsed:.0f} s, at most {at_most_left:.0f} s left"
    return {
        "epoch": epoch,
        "max_epochs": max_epochs,
        "metric": metric,
        "value": None if metric is None else round(float(logs[metric]), 6),
        "loss": None if "loss" not in logs else round(float(logs["loss"]), 6),
        "elapsed_seconds": round(elapsed, 1),
        "at_most_left_seconds": round(at_most_left, 1),
        "summary": summary,
        "updated_at": timezone.now().isoformat(),
    }


def _training_job_progress(job: TrainingJob, progress: dict) -> None:
    try:
        TrainingJob.objects.filter(pk=job.pk).update(progress=progress)
    except DatabaseError as error:  # progress is for watching only: an outage must not stop the training
        logger.warning("Could not record training job %s's progress (%s)", job.pk, str(error).strip()[:200])


def _training_retry_after_outage() -> None:
    """The database failed a training: try once more now that it answers; repeated failures back off as usual."""
    try:
        if len(training_failures_in_a_row()) == 1:
            training_job_enqueue(reason=TrainingJob.Reason.RETRY)
    except Exception:
        logger.exception("Could not queue a retry after the database outage; the periodic check will")


def _training_job_finish(job: TrainingJob, status: str, *, error: str = "") -> None:
    job.status, job.pending, job.error, job.finished_at = status, None, error, timezone.now()
    job.save(update_fields=["status", "pending", "error", "finished_at", "model_version"])


def training_recover_lost() -> None:
    """With no lock held, a running job that started at least a lease ago lost its worker: mark it failed."""
    if training_lock_held() is not None:
        return
    # The lapsed lease dates the worker's last heartbeat: the backoff counts from then, not from when it was noticed.
    lapsed = TrainingLock.objects.filter(name=TRAINING_LOCK).first()
    last_seen = lapsed.expires_at - timedelta(seconds=settings.RETRAIN_LOCK_SECONDS) if lapsed else None
    _training_reap_lost(keep=None, last_seen=last_seen)


def _training_reap_lost(*, keep: TrainingJob | None, last_seen=None) -> None:
    """With the lock in hand (or with no lock held), any other running job lost its worker: mark it and its version
    failed. A job that started less than a lease ago may be one whose worker has only just taken the lock."""
    now = timezone.now()
    lost = TrainingJob.objects.filter(
        Q(started_at__isnull=True) | Q(started_at__lte=now - timedelta(seconds=settings.RETRAIN_LOCK_SECONDS)),
        status=TrainingJob.Status.RUNNING,
    )
    if keep is not None:
        lost = lost.exclude(pk=keep.pk)
    reason = "the worker was lost (its training lock lapsed)"
    last_seen = min(last_seen or now, now)
    ModelVersion.objects.filter(pk__in=lost.values("model_version"), status=ModelVersion.Status.TRAINING).update(
        status=ModelVersion.Status.FAILED, error=reason, training_finished_at=last_seen
    )
    for job in lost:
        logger.warning("Training job %s: %s", job.pk, reason)
    lost.update(status=TrainingJob.Status.FAILED, pending=None, error=reason, finished_at=last_seen)
    # A redelivered job (its own worker died) left its first version behind.
    if keep is not None and keep.model_version_id:
        ModelVersion.objects.filter(pk=keep.model_version_id, status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED, error=reason, training_finished_at=now
        )

"""Celery tasks: thin wrappers over services. Training goes to the `training` queue (GPU hosts, see settings).

This module imports services, never the reverse: services publishes a training by the task's name
(TRAIN_MODEL_TASK) through the Celery app's registry, which recommender/apps.py fills at start-up.
"""

from celery import shared_task
from django.conf import settings

from .models import TrainingJob
from .retraining import TRAIN_MODEL_TASK, training_job_request_if_due, training_job_run, training_recover_lost


@shared_task(
    name=TRAIN_MODEL_TASK,
    bind=True,
    ignore_result=True,
    # Redelivered when the worker dies mid-training: safe because training_job_run is idempotent.
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.RETRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.RETRAIN_HARD_TIME_LIMIT,
)
def model_version_train_task(self, *, job_id: int) -> None:
    # TensorFlow is imported inside (recommender.ml.vae), at the first training, never at worker start.
    training_job_run(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="recommender.retraining_check", ignore_result=True)
def retraining_check_task() -> None:
    """Periodic (beat): queue a training that a rating could not, e.g. while the broker was down."""
    # Recovery is here, not on every rating's trigger: a running job whose worker died (its lease lapsed).
    training_recover_lost()
    training_job_request_if_due(reason=TrainingJob.Reason.PERIODIC)

"""Background retraining against the real services: Redis, Celery worker (and beat) processes, the test database.

Each worker is `celery -A mynextmovie_site worker -Q default,training --pool solo`, trains tiny models (TINY through
RECOMMENDER_TRAINING_OVERRIDES) and shares the test database (a file on SQLite, the test database on PostgreSQL)
and the artifact folder with this process.
"""

import datetime
import json
import logging
import re
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from benchmarks.measure import free_port
from movies.models import Rating
from recommender import artifacts
from recommender.models import ModelVersion, RecommendationLog, TrainingJob, TrainingLock
from recommender.retraining import training_job_request_if_due
from recommender.selectors import model_version_active_id
from tests.accounts.factories import UserFactory
from tests.conftest import TINY

from .conftest import SITE_THRESHOLD, celery_broker, wait_until

pytestmark = [pytest.mark.celery_services, pytest.mark.django_db(transaction=True)]

THRESHOLD = SITE_THRESHOLD
TRAINING_SECONDS = 120  # a tiny model, plus TensorFlow's import in a fresh worker on a busy 2-core machine


def rate_movies(site, count=THRESHOLD):
    for movie in site["movies"][:count]:
        response = site["client"].post(reverse("movies:rate"), {"movie": movie.pk, "score": 5})
        assert response.status_code == 302


def add_new_ratings(count=THRESHOLD):
    """Ratings written straight to the database: no trigger runs (the tests call it themselves)."""
    user = UserFactory()
    from movies.models import Movie

    Rating.objects.bulk_create(
        [Rating(user=user, movie=m, score=4.0, rated_at=timezone.now()) for m in Movie.objects.all()[:count]]
    )


def show_home(site):
    """The member's home page as a browser shows it: the GET, then the page's POST of the movies it showed."""
    page = site["client"].get(reverse("movies:home"))
    assert page.status_code == 200
    shown = re.findall(r'<li class="card" data-movie="(\d+)"', page.text)
    if shown:
        recorded = site["client"].post(reverse("recommender:history_record"), {"movie": shown})
        assert recorded.status_code == 200, recorded.content
    return page


def new_active_version(old_id):
    active = model_version_active_id()
    return active if active and active != old_id else None


def test_ratings_trigger_a_training_whose_model_then_serves(site, start_worker):
    worker = start_worker()
    rate_movies(site)  # the 5th rating reaches the threshold

    job = TrainingJob.objects.get()
    assert job.reason == TrainingJob.Reason.NEW_RATINGS and job.new_ratings == THRESHOLD
    new_id = wait_until(lambda: new_active_version(site["v1"].pk), TRAINING_SECONDS, "a newly active version", worker)

    job.refresh_from_db()
    new = ModelVersion.objects.get(pk=new_id)
    assert (
        job.status == TrainingJob.Status.SUCCEEDED and job.model_version_id == new_id and job.worker.startswith("test-")
    )
    assert new.data_stats["ratings"] == 600 + THRESHOLD and new.activation_decision == "activated"
    assert new.activation_details["active_version"] == site["v1"].pk and new.activation_details["candidate"] is not None
    assert not TrainingLock.objects.exists()  # released
    assert "recommender.train_model" in worker.log() and "queue" not in job.error

    show_home(site)
    assert set(RecommendationLog.objects.filter(user=site["user"]).values_list("model_version", flat=True)) == {new_id}


def test_broker_down_keeps_the_site_working_and_the_periodic_check_queues_later(
    site, start_worker, redis_broker, start_beat, caplog
):
    worker = start_worker()
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"), caplog.at_level(logging.ERROR):  # nothing listens there
        rate_movies(site)
        assert site["client"].get(reverse("movies:home")).status_code == 200
    assert Rating.objects.filter(user=site["user"]).count() == THRESHOLD
    assert "Could not queue training job" in caplog.text
    failed = TrainingJob.objects.get()
    assert failed.status == TrainingJob.Status.FAILED and "could not be queued" in failed.error

    # Broker back: beat's periodic check (every second here) queues the training the ratings could not.
    start_beat(RETRAIN_CHECK_SECONDS="1")
    new_id = wait_until(
        lambda: new_active_version(site["v1"].pk), TRAINING_SECONDS, "training queued by the periodic check", worker
    )
    queued_later = TrainingJob.objects.exclude(pk=failed.pk).get()
    assert queued_later.reason == TrainingJob.Reason.PERIODIC and queued_later.model_version_id == new_id


def test_two_triggers_at_once_queue_one_training(site, start_worker, redis_broker):
    worker = start_worker()
    add_new_ratings()
    barrier, results = threading.Barrier(2), []

    def trigger():
        try:
            barrier.wait()
            results.append(training_job_request_if_due(reason=TrainingJob.Reason.NEW_RATINGS))
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([job for job in results if job is not None]) == 1
    new_id = wait_until(lambda: new_active_version(site["v1"].pk), TRAINING_SECONDS, "the one training", worker)
    # The worker activates the new version, then records the job as done: wait for the second step too.
    wait_until(
        lambda: TrainingJob.objects.get().status == TrainingJob.Status.SUCCEEDED, 30, "the job's success", worker
    )
    job = TrainingJob.objects.get()
    assert ModelVersion.objects.count() == 2

    # The same message delivered twice (acks late): the second delivery does nothing.
    from recommender.tasks import model_version_train_task

    model_version_train_task.apply_async(kwargs={"job_id": job.pk})
    worker.wait_for_log(f"Training job {job.pk} is already done", 30)
    assert ModelVersion.objects.count() == 2 and model_version_active_id() == new_id


def test_a_worker_killed_mid_training_leaves_the_model_and_its_lock_lapses(site, start_worker, settings):
    endless = json.dumps({**TINY, "max_epochs": 100_000, "patience": 100_000})
    lock_seconds = 8  # a short lease (renewed every third of it by the heartbeat), so the test waits little
    settings.RETRAIN_LOCK_SECONDS = lock_seconds  # this process judges the lease as the worker does
    doomed = start_worker(RETRAIN_LOCK_SECONDS=str(lock_seconds), RECOMMENDER_TRAINING_OVERRIDES=endless)
    add_new_ratings()
    job = training_job_request_if_due(reason=TrainingJob.Reason.NEW_RATINGS)
    running = wait_until(
        lambda: TrainingJob.objects.filter(pk=job.pk, status="running", model_version__status="training").first(),
        TRAINING_SECONDS,
        "the training to start",
        doomed,
    )
    renewed = datetime.timedelta(seconds=lock_seconds + 1)  # the heartbeat renewed the lease since it was taken
    wait_until(
        lambda: (lock := TrainingLock.objects.first()) and lock.expires_at - lock.acquired_at > renewed,
        60,
        "epochs",
        doomed,
    )
    doomed.kill()  # the worker and its training child: a lost machine

    assert model_version_active_id() == site["v1"].pk
    lock = TrainingLock.objects.get()
    assert f"job {job.pk}" in lock.holder
    assert (
        training_job_request_if_due(reason=TrainingJob.Reason.NEW_RATINGS) is None
    )  # the lock still counts as running
    wait_until(
        lambda: TrainingLock.objects.get().expires_at <= timezone.now(),
        lock_seconds + 2,
        "the dead worker's lock to expire",
    )

    worker = start_worker()
    retry = training_job_request_if_due(reason=TrainingJob.Reason.NEW_RATINGS)
    assert retry is not None
    new_id = wait_until(
        lambda: new_active_version(site["v1"].pk), TRAINING_SECONDS, "the next trigger's training", worker
    )
    running.refresh_from_db()
    lost_version = ModelVersion.objects.get(pk=running.model_version_id)
    assert running.status == TrainingJob.Status.FAILED and "worker was lost" in running.error
    assert lost_version.status == ModelVersion.Status.FAILED and new_id != lost_version.pk


def test_a_corrupt_active_model_falls_back_and_the_next_training_replaces_it(site, start_worker, caplog):
    worker = start_worker()
    v1 = site["v1"]
    path = v1.artifact(artifacts.SERVING_WEIGHTS)
    from django.core.files.storage import default_storage

    default_storage.delete(path)
    default_storage.save(path, __import__("io").BytesIO(b"not the weights"))
    with caplog.at_level(logging.ERROR):
        rate_movies(site)  # also queues the training
        show_home(site)
    assert "corrupt" in caplog.text and f"Model version {v1.pk} taken out of service" in caplog.text
    assert set(RecommendationLog.objects.filter(user=site["user"]).values_list("source", flat=True)) == {"popular"}
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.FAILED and "corrupt" in v1.error  # the admin says why

    new_id = wait_until(lambda: new_active_version(v1.pk), TRAINING_SECONDS, "the replacement model", worker)
    new = ModelVersion.objects.get(pk=new_id)
    assert new.activation_decision == "activated" and "no model was active" in new.activation_details["reason"]
    show_home(site)
    assert RecommendationLog.objects.filter(user=site["user"], model_version=new_id, source="model").exists()

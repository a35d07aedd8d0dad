"""What recommender/apps.py connects at start-up: the retraining trigger, the Celery tasks, the pages it adds to
the catalogue's."""

import pytest
from celery import current_app
from django.urls import reverse

from movies import pages
from movies.signals import ratings_changed
from recommender import retraining, tasks, views
from recommender.models import TrainingJob
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory


def test_the_pages_and_tasks_are_registered():
    assert pages.personal_home() is views.personal_home
    assert pages._movie_sections["similar_movies"] is views.similar_movies_section
    assert current_app.tasks[retraining.TRAIN_MODEL_TASK] is tasks.model_version_train_task._get_current_object()


@pytest.mark.django_db
def test_a_rating_queues_a_training_through_the_registered_task(
    client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.RETRAIN_THRESHOLD = 1
    sent = []
    monkeypatch.setattr(tasks.model_version_train_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    assert ratings_changed.has_listeners()
    client.force_login(UserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("movies:rate"), {"movie": MovieFactory().pk, "score": "4"})
    job = TrainingJob.objects.get()
    assert sent == [{"kwargs": {"job_id": job.pk}, "task_id": job.task_id}]

import pytest
from django.urls import reverse

from recommender.ml import vae
from recommender.models import ModelVersion
from recommender.services import model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY

pytestmark = pytest.mark.django_db


def test_admin_lists_versions_and_activates_one(client, two_taste_catalogue):
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    version = model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 2}))
    failed = ModelVersion.objects.create(status=ModelVersion.Status.FAILED, error="boom")

    listing = client.get(reverse("admin:recommender_modelversion_changelist"))
    assert listing.status_code == 200 and "precision@5" in listing.text and "60 / 30 / 600" in listing.text

    detail = client.get(reverse("admin:recommender_modelversion_change", args=[version.pk]))
    assert 'src="data:image/png;base64,' in detail.text

    url = reverse("admin:recommender_modelversion_changelist")
    response = client.post(url, {"action": "activate", "_selected_action": [failed.pk]}, follow=True)
    assert "only a ready version can be activated" in response.text
    response = client.post(url, {"action": "activate", "_selected_action": [version.pk]}, follow=True)
    assert "is now active" in response.text
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE


def test_training_job_page_follows_a_running_training_in_place(client):
    from recommender.models import TrainingJob
    from recommender.retraining import training_progress

    job = TrainingJob.objects.create(reason="manual", status="running")
    staff = UserFactory(username="watcher", is_staff=True)
    client.force_login(staff)
    page_url = reverse("admin:recommender_trainingjob_change", args=[job.pk])
    progress_url = reverse("admin:recommender_trainingjob_progress", args=[job.pk])
    assert client.get(progress_url).status_code == 403  # staff without the view permission see nothing

    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_trainingjob"))
    page = client.get(page_url)
    assert page.status_code == 200 and "reading the ratings" in page.text
    assert f'hx-get="{progress_url}" hx-trigger="every 2s"' in page.text and "htmx-2.0.11.min.js" in page.text

    TrainingJob.objects.filter(pk=job.pk).update(
        progress=training_progress(epoch=12, max_epochs=60, logs={"loss": 3.0, "val_ndcg@100": 0.41}, elapsed=24.0)
    )
    fragment = client.get(progress_url).text
    assert (
        '<progress max="60" value="12">' in fragment
        and "val_ndcg@100 0.4100" in fragment
        and "at most 96 s left" in fragment
    )
    assert "hx-trigger" in fragment  # still running: it keeps refreshing

    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded")
    finished = client.get(progress_url).text
    assert "hx-trigger" not in finished and "(succeeded)" in finished  # done: the block stops polling
    assert client.get(reverse("admin:recommender_trainingjob_progress", args=[job.pk + 99])).status_code == 404


def _staff_with(client, *codenames):
    from django.contrib.auth.models import Permission

    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(staff)
    return staff


def test_a_staff_member_who_may_only_view_cannot_activate_retrain_or_delete(client, db):
    from recommender.models import TrainingJob

    active = ModelVersion.objects.create(status=ModelVersion.Status.ACTIVE)
    ready = ModelVersion.objects.create(status=ModelVersion.Status.READY)
    _staff_with(client, "view_modelversion", "view_trainingjob")
    url = reverse("admin:recommender_modelversion_changelist")
    listing = client.get(url)
    assert listing.status_code == 200
    assert 'value="activate"' not in listing.text and 'value="retrain_now"' not in listing.text
    assert 'value="delete_selected"' not in listing.text and "Retrain now</button>" not in listing.text
    for action in ("activate", "retrain_now", "delete_selected"):
        client.post(url, {"action": action, "_selected_action": [ready.pk], "post": "yes"})
    assert client.post(reverse("admin:recommender_modelversion_retrain")).status_code == 403
    ready.refresh_from_db()
    assert ready.status == "ready" and ModelVersion.objects.count() == 2 and not TrainingJob.objects.exists()
    # Read-only records: the version page has no Save button, and a POST to it changes nothing.
    page = client.get(reverse("admin:recommender_modelversion_change", args=[active.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert (
        client.post(reverse("admin:recommender_modelversion_change", args=[active.pk]), {"preset": "x"}).status_code
        == 403
    )


def test_each_action_needs_its_own_permission(client, db, monkeypatch):
    from recommender import admin as recommender_admin
    from recommender.models import TrainingJob

    monkeypatch.setattr(recommender_admin, "training_job_enqueue", lambda **kwargs: None)
    ModelVersion.objects.create(status=ModelVersion.Status.ACTIVE)
    ready = ModelVersion.objects.create(status=ModelVersion.Status.READY)
    _staff_with(client, "view_modelversion", "retrain_modelversion")
    url = reverse("admin:recommender_modelversion_changelist")
    listing = client.get(url)
    assert 'value="retrain_now"' in listing.text and 'value="activate"' not in listing.text
    assert client.post(reverse("admin:recommender_modelversion_retrain"), follow=True).status_code == 200
    client.post(url, {"action": "activate", "_selected_action": [ready.pk]})
    ready.refresh_from_db()
    assert ready.status == "ready" and not TrainingJob.objects.exists()


def test_the_active_version_and_pending_jobs_cannot_be_deleted(client, db):
    from recommender.models import TrainingJob

    active = ModelVersion.objects.create(status=ModelVersion.Status.ACTIVE)
    old = ModelVersion.objects.create(status=ModelVersion.Status.FAILED, error="boom")
    _staff_with(client, "view_modelversion", "delete_modelversion", "view_trainingjob", "delete_trainingjob")
    assert client.get(reverse("admin:recommender_modelversion_delete", args=[active.pk])).status_code == 403
    url = reverse("admin:recommender_modelversion_changelist")
    with_active = {"action": "delete_selected", "_selected_action": [active.pk, old.pk], "post": "yes"}
    assert client.post(url, with_active).status_code == 403  # a selection that holds the active version: refused
    assert ModelVersion.objects.count() == 2
    client.post(url, {"action": "delete_selected", "_selected_action": [old.pk], "post": "yes"})
    assert list(ModelVersion.objects.all()) == [active]

    running = TrainingJob.objects.create(reason="manual", status="running")
    done = TrainingJob.objects.create(reason="manual", status="failed", pending=None)
    assert client.get(reverse("admin:recommender_trainingjob_delete", args=[running.pk])).status_code == 403
    jobs = reverse("admin:recommender_trainingjob_changelist")
    both = {"action": "delete_selected", "_selected_action": [running.pk, done.pk], "post": "yes"}
    assert client.post(jobs, both).status_code == 403 and TrainingJob.objects.count() == 2
    client.post(jobs, {"action": "delete_selected", "_selected_action": [done.pk], "post": "yes"})
    assert list(TrainingJob.objects.all()) == [running]

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

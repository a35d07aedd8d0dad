import pytest
from django.test import Client
from django.urls import reverse

from .factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def _axes_enabled(settings):
    # The test settings switch django-axes off for the other apps (Django's client.login sends no request);
    # account tests run with the real throttling, as production does.
    settings.AXES_ENABLED = True


@pytest.fixture
def member(db):
    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def member_client(client: Client, member) -> Client:
    client.force_login(member)
    return client


@pytest.fixture
def log_in(client: Client):
    """Log in through the real log-in page (so django-axes sees every attempt), returning the response."""

    def post(username: str, password: str = PASSWORD, **extra):
        return client.post(reverse("accounts:login"), {"username": username, "password": password, **extra})

    return post

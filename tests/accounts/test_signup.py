import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import MOVIELENS_USERNAME_PREFIX
from movies.importer.movies_and_users import movielens_username

from .factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

GOOD_PASSWORD = "correct-horse-battery"


def sign_up(client, **overrides):
    data = {"username": "newcomer", "email": "", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD, **overrides}
    return client.post(reverse("accounts:signup"), data)


def test_sign_up_creates_the_account_logs_in_and_goes_home(client):
    response = sign_up(client, email="New@Example.COM")

    assert response.status_code == 302 and response.url == reverse("movies:home")
    user = User.objects.get(username="newcomer")
    assert user.check_password(GOOD_PASSWORD)
    assert user.email == "New@example.com"  # the domain is normalised
    assert not user.is_staff and user.movielens_id is None
    assert client.get(reverse("accounts:profile")).status_code == 200  # logged in


def test_e_mail_is_optional(client):
    assert sign_up(client).status_code == 302
    assert User.objects.get(username="newcomer").email == ""


def test_sign_up_returns_to_a_safe_next_page(client):
    response = sign_up(client, next=reverse("accounts:profile"))
    assert response.url == reverse("accounts:profile")


def test_sign_up_ignores_an_off_site_next_page(client):
    response = sign_up(client, next="https://evil.example/phish")
    assert response.url == reverse("movies:home")


def test_mismatched_passwords_are_refused(client):
    response = sign_up(client, password2="something-else-entirely")
    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.text
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize("username", ["movielens_42", "MovieLens_new", "movielens_"])
def test_movielens_usernames_are_reserved(client, username):
    response = sign_up(client, username=username)
    assert response.status_code == 200
    assert "reserved for imported MovieLens users" in response.text
    assert not User.objects.filter(username=username).exists()


@pytest.mark.parametrize("username", ["alice", "ALICE"])
def test_a_taken_username_is_refused(client, username):
    UserFactory(username="alice")
    response = sign_up(client, username=username)
    assert response.status_code == 200
    assert "A user with that username already exists." in response.text
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("password123", "too common"), ("83749261530", "entirely numeric")],
)
def test_weak_passwords_are_refused(client, password, message):
    response = sign_up(client, password1=password, password2=password)
    assert response.status_code == 200
    assert message in response.text
    assert not User.objects.filter(username="newcomer").exists()


def test_missing_fields_are_reported_next_to_them(client):
    response = client.post(reverse("accounts:signup"), {})
    assert response.status_code == 200
    assert response.text.count("This field is required.") == 3


def test_a_logged_in_member_is_sent_on_from_the_sign_up_page(member_client):
    response = member_client.get(reverse("accounts:signup"))
    assert response.status_code == 302 and response.url == reverse("movies:home")


def test_the_importer_names_users_with_the_reserved_prefix():
    """accounts owns the prefix; the MovieLens import (movies) names its users with it."""
    assert movielens_username(42) == f"{MOVIELENS_USERNAME_PREFIX}42"

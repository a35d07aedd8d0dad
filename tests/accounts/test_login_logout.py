import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from .factories import PASSWORD, MovieLensUserFactory, UserFactory

pytestmark = pytest.mark.django_db

INVALID_LOGIN = "That username and password do not match."


def logged_in_user_id(client: Client):
    return client.session.get("_auth_user_id")


def test_log_in_goes_home_with_a_welcome(client, member, log_in):
    response = log_in("alice")
    assert response.status_code == 302 and response.url == reverse("movies:home")
    assert logged_in_user_id(client) == str(member.pk)
    assert "Welcome back, alice." in client.get(response.url).text


def test_log_in_returns_to_a_safe_next_page(member, log_in):
    response = log_in("alice", next=reverse("accounts:profile"))
    assert response.url == reverse("accounts:profile")


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "http://testserver.evil/"])
def test_log_in_ignores_an_unsafe_next_page(member, log_in, next_url):
    assert log_in("alice", next=next_url).url == reverse("movies:home")


def test_the_log_in_page_carries_next_into_its_form(client):
    response = client.get(reverse("accounts:login"), {"next": "/accounts/profile/"})
    assert '<input type="hidden" name="next" value="/accounts/profile/">' in response.text


def test_unknown_user_and_wrong_password_get_the_same_answer(client, member, log_in):
    wrong_password = log_in("alice", "not-the-password")
    unknown_user = log_in("nobody-by-this-name", "not-the-password")

    for response in (wrong_password, unknown_user):
        assert response.status_code == 200
        assert INVALID_LOGIN in response.text
        assert logged_in_user_id(client) is None
    assert wrong_password.context["form"].errors == unknown_user.context["form"].errors


def test_an_inactive_account_gets_the_same_answer_too(client, log_in):
    UserFactory(username="gone", is_active=False)
    response = log_in("gone")
    assert INVALID_LOGIN in response.text and logged_in_user_id(client) is None


def test_imported_movielens_users_log_in_once_an_admin_set_their_password(client, log_in):
    imported = MovieLensUserFactory(movielens_id=7)
    assert not imported.has_usable_password()
    assert INVALID_LOGIN in log_in("movielens_7", "anything-at-all").text
    assert logged_in_user_id(client) is None

    # The admin sets a password on the admin's own "set password" page.
    admin = Client()
    admin.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    response = admin.post(
        reverse("admin:auth_user_password_change", args=[imported.pk]),
        {"password1": "chosen-by-the-admin-42", "password2": "chosen-by-the-admin-42"},
    )
    assert response.status_code == 302, response.context["form"].errors

    response = log_in("movielens_7", "chosen-by-the-admin-42")
    assert response.status_code == 302
    assert logged_in_user_id(client) == str(imported.pk)
    profile = client.get(reverse("accounts:profile")).text
    assert "imported from MovieLens (user 7)" in profile


def test_log_out_by_post_ends_the_session(member_client):
    response = member_client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response.url == reverse("movies:home")
    assert logged_in_user_id(member_client) is None
    assert "You are logged out." in member_client.get(response.url).text


def test_log_out_by_get_is_refused_and_keeps_the_session(member_client, member):
    response = member_client.get(reverse("accounts:logout"))
    assert response.status_code == 405
    assert logged_in_user_id(member_client) == str(member.pk)


def test_log_out_needs_the_csrf_token(member):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(reverse("accounts:logout")).status_code == 403
    assert logged_in_user_id(strict) == str(member.pk)


def test_a_logged_in_member_is_sent_on_from_the_log_in_page(member_client):
    response = member_client.get(reverse("accounts:login"))
    assert response.status_code == 302 and response.url == reverse("movies:home")


def test_the_test_client_can_log_in_with_axes_on(client, member):
    # For other test modules: with AXES_ENABLED, client.login needs a request (force_login never does).
    assert client.login(request=HttpRequest(), username="alice", password=PASSWORD)
    assert logged_in_user_id(client) == str(member.pk)

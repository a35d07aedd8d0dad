"""Abuse limits (django-ratelimit): sign-up, log-in, password resets, password re-checks and ratings answer 429 past
their limit, as a page or as JSON for API-style callers, counted per client address or per member."""

import pytest
from django.urls import reverse

from movies.models import Rating
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def tight(settings):
    """Every limit at 2 a minute, so the third request is refused."""
    settings.RATE_LIMITS = {name: "2/m" for name in settings.RATE_LIMITS}
    return settings


def test_log_ins_with_made_up_usernames_are_limited_per_address(client, tight):
    for n in range(2):
        response = client.post(reverse("accounts:login"), {"username": f"nobody{n}", "password": "wrong"})
        assert response.status_code == 200  # the form again, saying the credentials are wrong
    refused = client.post(reverse("accounts:login"), {"username": "nobody9", "password": "wrong"})
    assert refused.status_code == 429 and "Too many requests" in refused.text and refused["Retry-After"]
    # Another address is not affected, and a GET of the form still works.
    assert (
        client.post(reverse("accounts:login"), {"username": "x", "password": "y"}, REMOTE_ADDR="10.0.0.9").status_code
        == 200
    )
    assert client.get(reverse("accounts:login")).status_code == 200


def test_the_limit_reveals_no_account(client, tight):
    UserFactory(username="alice")
    client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    client.post(reverse("accounts:login"), {"username": "nobody", "password": "wrong"})
    for username in ("alice", "nobody"):  # the same answer whether the account exists or not
        assert client.post(reverse("accounts:login"), {"username": username, "password": "wrong"}).status_code == 429


def test_sign_ups_from_one_address_are_limited(client, tight):
    for n in range(2):
        data = {"username": f"new{n}", "password1": "a long pass phrase 42", "password2": "a long pass phrase 42"}
        client.post(reverse("accounts:signup"), data)
        client.post(reverse("accounts:logout"))
    data = {"username": "new9", "password1": "a long pass phrase 42", "password2": "a long pass phrase 42"}
    assert client.post(reverse("accounts:signup"), data).status_code == 429


def test_password_reset_mails_are_limited(client, tight, mailoutbox):
    UserFactory(email="alice@example.com")
    for _ in range(2):
        client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})
    assert client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"}).status_code == 429
    assert len(mailoutbox) == 2


def test_password_re_checks_are_limited_per_member(client, tight):
    member = UserFactory()
    client.force_login(member)
    for _ in range(2):
        client.post(
            reverse("accounts:password_change"), {"old_password": "guess", "new_password1": "x", "new_password2": "x"}
        )
    assert client.post(reverse("accounts:delete"), {"password": "guess"}).status_code == 429
    member.refresh_from_db()
    assert member.is_active


def test_ratings_are_limited_per_member_with_json_for_api_callers(client, tight):
    member = UserFactory()
    client.force_login(member)
    movies = [MovieFactory() for _ in range(3)]
    for movie in movies[:2]:
        assert client.post(reverse("movies:rate"), {"movie": movie.pk, "score": "4"}, **JSON).status_code == 200
    refused = client.post(reverse("movies:rate"), {"movie": movies[2].pk, "score": "4"}, **JSON)
    assert (
        refused.status_code == 429 and refused.json()["ok"] is False and "Too many requests" in refused.json()["error"]
    )
    assert Rating.objects.filter(user=member).count() == 2
    # Another member is counted apart.
    client.force_login(UserFactory())
    assert client.post(reverse("movies:rate"), {"movie": movies[2].pk, "score": "4"}, **JSON).status_code == 200


def test_the_default_limits_are_far_above_what_a_person_does(settings):
    from django_ratelimit.core import _split_rate

    per_hour = {
        name: count * 3600 / seconds
        for name, (count, seconds) in ((name, _split_rate(rate)) for name, rate in settings.RATE_LIMITS.items())
    }
    assert per_hour["login"] >= 60 and per_hour["signup"] >= 5 and per_hour["rating"] >= 1000

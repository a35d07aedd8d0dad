"""Headers, HEAD, the 403 pages and session limits (issue 13, item 7)."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.sessions import SEEN, STARTED
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory

pytestmark = pytest.mark.django_db


def test_every_response_turns_off_unused_browser_features(client):
    policy = client.get(reverse("movies:home"))["Permissions-Policy"]
    assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy


def test_personal_pages_are_never_stored_guest_pages_may_be(client):
    assert "no-store" not in client.get(reverse("movies:home")).get("Cache-Control", "")
    client.force_login(UserFactory())
    for name in ("movies:home", "movies:my_ratings", "movies:watchlist", "recommender:history", "accounts:profile"):
        response = client.get(reverse(name))
        assert response.status_code == 200 and response["Cache-Control"] == "no-store", name


def test_a_public_image_stays_cacheable_for_a_member(client):
    movie = MovieFactory()
    client.force_login(UserFactory())
    poster = client.get(reverse("movies:poster", args=[movie.pk]))
    assert poster.status_code == 200 and poster["Cache-Control"].startswith("public")


def test_head_works_wherever_get_does(client):
    movie = MovieFactory()
    guest_pages = [
        reverse("movies:home"),
        reverse("movies:catalogue"),
        reverse("movies:top_rated"),
        reverse("movies:detail", args=[movie.pk]),
    ]
    for url in guest_pages:
        assert client.head(url).status_code == 200, url
    client.force_login(UserFactory())
    for name in ("movies:my_ratings", "movies:watchlist", "recommender:history", "accounts:profile", "accounts:delete"):
        assert client.head(reverse(name)).status_code == 200, name


def test_a_failed_csrf_check_gets_the_sites_page_or_json():
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory())
    page = strict.post(reverse("movies:rate"), {"movie": 1, "score": "4"})
    assert page.status_code == 403 and "Not allowed" in page.text and "Reload the page" in page.text
    api = strict.post(reverse("movies:rate"), {"movie": 1, "score": "4"}, HTTP_ACCEPT="application/json")
    assert (
        api.status_code == 403
        and api.json() == {"ok": False, "error": api.json()["error"]}
        and "expired" in api.json()["error"]
    )


def _age_session(client, **seconds_ago):
    session = client.session
    now = int(time.time())
    for key, ago in seconds_ago.items():
        session[{"started": STARTED, "seen": SEEN}[key]] = now - ago
    session.save()


def test_an_idle_session_ends(client, settings):
    settings.SESSION_IDLE_SECONDS, settings.SESSION_ABSOLUTE_SECONDS = 3600, 14 * 86400
    client.force_login(UserFactory())
    assert client.get(reverse("movies:my_ratings")).status_code == 200
    _age_session(client, started=7200, seen=600)
    assert client.get(reverse("movies:my_ratings")).status_code == 200  # active 10 minutes ago: still in
    _age_session(client, started=7200, seen=3601)
    response = client.get(reverse("movies:my_ratings"))
    assert response.status_code == 302 and reverse("accounts:login") in response.url


def test_a_session_ends_two_weeks_after_logging_in_however_active(client, settings):
    settings.SESSION_IDLE_SECONDS, settings.SESSION_ABSOLUTE_SECONDS = 3 * 86400, 14 * 86400
    client.force_login(UserFactory())
    client.get(reverse("movies:my_ratings"))
    _age_session(client, started=14 * 86400 + 1, seen=60)
    assert client.get(reverse("movies:my_ratings")).status_code == 302

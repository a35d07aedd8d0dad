"""Repeated failed log-ins are throttled by django-axes (per username and client address together)."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.throttling import client_ip_address

from .factories import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED_OUT = "Too many failed log-in attempts"


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


def fail(log_in, times: int, username: str = "alice"):
    return [log_in(username, "wrong-password") for _ in range(times)]


def test_the_limit_is_a_handful(limit):
    assert 3 <= limit <= 10


def test_failures_below_the_limit_still_get_the_form(member, log_in, limit):
    responses = fail(log_in, limit - 1)
    for response in responses:
        assert response.status_code == 200 and "That username and password do not match." in response.text


def test_the_limit_th_failure_locks_out_even_the_right_password(client, member, log_in, limit, settings):
    *_, last = fail(log_in, limit)
    assert last.status_code == 429
    cooloff_minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    assert LOCKED_OUT in last.text and f"for {cooloff_minutes} minutes" in last.text
    assert reverse("accounts:password_reset") in last.text

    response = log_in("alice", PASSWORD)
    assert response.status_code == 429 and LOCKED_OUT in response.text
    assert "_auth_user_id" not in client.session


def test_unknown_usernames_lock_out_the_same_way(db, log_in, limit):
    # The lockout itself must not reveal whether an account exists.
    *_, last = fail(log_in, limit, username="nobody-by-this-name")
    assert last.status_code == 429 and LOCKED_OUT in last.text


def test_the_lockout_ends_after_the_cool_off(client, member, log_in, limit, settings):
    fail(log_in, limit)
    assert log_in("alice").status_code == 429

    cool_off_ago = datetime.datetime.now(datetime.UTC) - settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=cool_off_ago)
    response = log_in("alice")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(member.pk)


def test_a_successful_log_in_resets_the_count(client, member, log_in, limit):
    fail(log_in, limit - 1)
    assert log_in("alice").status_code == 302
    client.post(reverse("accounts:logout"))

    *_, last = fail(log_in, limit - 1)
    assert last.status_code == 200
    assert log_in("alice").status_code == 302


def test_another_address_is_not_locked_out(member, log_in, limit):
    fail(log_in, limit)
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    response = elsewhere.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_resetting_the_password_lifts_the_lockout(client, member, log_in, limit):
    fail(log_in, limit)
    client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/" in line)
    form_page = client.get(link, follow=True)
    new_password = {"new_password1": "a-brand-new-secret-9", "new_password2": "a-brand-new-secret-9"}
    client.post(form_page.redirect_chain[-1][0], new_password)

    assert log_in("alice", "a-brand-new-secret-9").status_code == 302


@pytest.mark.parametrize(
    ("proxy_count", "forwarded_for", "expected"),
    [
        (0, "198.51.100.1", "10.0.0.1"),  # no trusted proxy: the header is ignored
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a forged left-most entry is not trusted
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", "10.0.0.1"),  # fewer entries than proxies: fall back to the peer
    ],
)
def test_client_address_behind_trusted_proxies(settings, proxy_count, forwarded_for, expected):
    settings.ACCOUNTS_TRUSTED_PROXY_COUNT = proxy_count
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_ip_address(request) == expected

import re

import pytest
from django.core import mail
from django.urls import reverse

from .factories import PASSWORD, MovieLensUserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-secret-9"
SENT_MESSAGE = "If an account exists for that address, we sent an e-mail"


def test_password_change_keeps_the_member_logged_in(member_client, member):
    response = member_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response.url == reverse("accounts:password_change_done")
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert member_client.get(reverse("accounts:profile")).status_code == 200


def test_password_change_needs_the_old_password(member_client, member):
    response = member_client.post(
        reverse("accounts:password_change"),
        {"old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in response.text
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_password_change_refuses_mismatched_new_passwords(member_client, member):
    response = member_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"},
    )
    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.text
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def reset_link(message) -> str:
    return re.search(r"https?://testserver(/accounts/password/reset/\S+/\S+/)", message.body).group(1)


def test_password_reset_by_e_mail_end_to_end(client, member, log_in):
    response = client.post(reverse("accounts:password_reset"), {"email": "ALICE@example.com"})
    assert response.status_code == 302 and response.url == reverse("accounts:password_reset_done")
    assert SENT_MESSAGE in client.get(response.url).text

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your MyNextMovie password"
    assert "alice" in message.body

    # Following the link swaps the token for a session and shows the form.
    form_page = client.get(reset_link(message), follow=True)
    assert form_page.status_code == 200 and "Choose a new password" in form_page.text
    set_password_url = form_page.redirect_chain[-1][0]

    mismatched = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": "other-password-77"})
    assert "The two password fields didn’t match." in mismatched.text

    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done.url == reverse("accounts:password_reset_complete")
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)

    assert log_in("alice", NEW_PASSWORD).status_code == 302
    # The link works once.
    assert "This link no longer works" in client.get(reset_link(message), follow=True).text


def test_an_unknown_address_gets_the_same_answer_and_no_e_mail(client, member):
    known = client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"}, follow=True)
    unknown = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"}, follow=True)

    assert known.redirect_chain == unknown.redirect_chain == [(reverse("accounts:password_reset_done"), 302)]
    assert SENT_MESSAGE in unknown.text
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]


def test_accounts_without_a_usable_password_get_no_e_mail(client):
    # An imported MovieLens user with an address an admin added still needs the admin to set a password first.
    MovieLensUserFactory(movielens_id=3, email="ml3@example.com")
    response = client.post(reverse("accounts:password_reset"), {"email": "ml3@example.com"})
    assert response.url == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_a_bad_address_is_reported_on_the_form(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "not-an-address"})
    assert response.status_code == 200 and "Enter a valid email address." in response.text

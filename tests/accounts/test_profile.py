import pytest
from django.urls import reverse

from tests.movies.factories import RatingFactory

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

PROFILE = {
    "email": "alice@example.org",
    "age": "34",
    "gender": "F",
    "occupation": "engineer",
    "zip_code": "55455",
    "current_password": PASSWORD,
}


def test_the_profile_shows_the_member_and_their_rating_count(member_client, member):
    RatingFactory(user=member)
    RatingFactory(user=member)
    text = member_client.get(reverse("accounts:profile")).text
    assert "alice" in text and "2 ratings" in text
    assert reverse("accounts:password_change") in text and reverse("accounts:delete") in text


def test_the_member_edits_their_demographics(member_client, member):
    response = member_client.post(reverse("accounts:profile"), PROFILE)
    assert response.status_code == 302 and response.url == reverse("accounts:profile")

    member.refresh_from_db()
    assert (member.email, member.age, member.gender, member.occupation, member.zip_code) == (
        "alice@example.org",
        34,
        "F",
        "engineer",
        "55455",
    )
    assert "Your profile is saved." in member_client.get(response.url).text


def test_every_demographic_can_be_cleared(member_client, member):
    member_client.post(reverse("accounts:profile"), PROFILE)
    member_client.post(reverse("accounts:profile"), {**dict.fromkeys(PROFILE, ""), "current_password": PASSWORD})
    member.refresh_from_db()
    assert (member.email, member.age, member.gender, member.occupation, member.zip_code) == ("", None, "", "", "")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", "0", "greater than or equal to 1"),
        ("age", "131", "less than or equal to 130"),
        ("age", "old", "Enter a whole number."),
        ("gender", "Q", "Select a valid choice."),
        ("email", "not-an-address", "Enter a valid email address."),
        ("zip_code", "1" * 17, "at most 16 characters"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(member_client, member, field, value, message):
    response = member_client.post(reverse("accounts:profile"), {**PROFILE, field: value})
    assert response.status_code == 200
    assert message in response.text
    member.refresh_from_db()
    assert member.email == "alice@example.com" and member.age is None


def test_the_form_cannot_change_anything_but_the_demographics(member_client, member):
    other = UserFactory(username="bob", email="bob@example.com")
    member_client.post(
        reverse("accounts:profile"),
        {**PROFILE, "username": "bob", "is_staff": "on", "is_superuser": "on", "movielens_id": "1", "id": other.pk},
    )
    member.refresh_from_db()
    other.refresh_from_db()
    assert member.username == "alice" and member.movielens_id is None
    assert not member.is_staff and not member.is_superuser
    assert member.age == 34
    assert other.email == "bob@example.com" and other.age is None


def test_only_the_owner_can_edit_their_profile(client, member):
    response = client.post(reverse("accounts:profile"), PROFILE)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    member.refresh_from_db()
    assert member.age is None and member.email == "alice@example.com"

    client.force_login(UserFactory(username="bob"))
    client.post(reverse("accounts:profile"), PROFILE)
    member.refresh_from_db()
    assert member.age is None  # bob's post edited bob's profile, never alice's


def test_occupations_already_in_use_are_suggested(member_client):
    UserFactory(occupation="librarian")
    UserFactory(occupation="technician")
    text = member_client.get(reverse("accounts:profile")).text
    assert '<datalist id="occupation-suggestions">' in text
    assert '<option value="librarian">' in text and '<option value="technician">' in text


def test_changing_the_email_needs_the_current_password(member_client, member):
    response = member_client.post(reverse("accounts:profile"), {**PROFILE, "current_password": ""})
    assert response.status_code == 200 and "Enter your current password to change your e-mail address." in response.text
    response = member_client.post(reverse("accounts:profile"), {**PROFILE, "current_password": "wrong-password"})
    assert "Enter your current password" in response.text
    member.refresh_from_db()
    assert member.email == "alice@example.com" and member.age is None


def test_demographics_alone_need_no_password(member_client, member):
    response = member_client.post(
        reverse("accounts:profile"), {**PROFILE, "email": "alice@example.com", "current_password": ""}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.age == 34 and member.email == "alice@example.com"

"""The account services enforce their rules whoever calls them, not only through the forms."""

import pytest
from django.core.exceptions import ValidationError

from accounts.services import user_sign_up, user_update_profile, username_is_reserved

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("username", "reserved"),
    [("movielens_1", True), ("MOVIELENS_x", True), ("movielens", False), ("my_movielens_1", False)],
)
def test_reserved_usernames(username, reserved):
    assert username_is_reserved(username) is reserved


def test_sign_up_refuses_a_reserved_username():
    with pytest.raises(ValidationError) as error:
        user_sign_up(username="movielens_9", password="correct-horse-battery")
    assert "reserved" in str(error.value)


def test_sign_up_refuses_a_weak_password():
    with pytest.raises(ValidationError):
        user_sign_up(username="newcomer", password="123")


def test_sign_up_stores_a_hashed_password():
    user = user_sign_up(username="newcomer", password="correct-horse-battery", email="n@Example.com")
    assert user.pk and user.password != "correct-horse-battery" and user.check_password("correct-horse-battery")
    assert user.email == "n@example.com"


def test_profile_update_validates_the_age(member):
    with pytest.raises(ValidationError):
        user_update_profile(user=member, age=200)

"""Writes to user accounts."""

from axes.utils import reset as axes_reset
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import MOVIELENS_USERNAME_PREFIX, User

RESERVED_USERNAME_MESSAGE = (
    f"Usernames starting with “{MOVIELENS_USERNAME_PREFIX}” are reserved for imported MovieLens users. "
    "Please choose another one."
)
PROFILE_FIELDS = ("email", "age", "gender", "occupation", "zip_code")


def username_is_reserved(username: str) -> bool:
    # Case-insensitive: "MovieLens_7" would be just as confusing next to the imported "movielens_7".
    return username.casefold().startswith(MOVIELENS_USERNAME_PREFIX)


@transaction.atomic
def user_sign_up(*, username: str, password: str, email: str = "") -> User:
    """Create a site account; the password must pass the configured validators."""
    if username_is_reserved(username):
        raise ValidationError({"username": RESERVED_USERNAME_MESSAGE})
    user = User(username=username, email=User.objects.normalize_email(email))
    user.full_clean(exclude=["password"])
    validate_password(password, user)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def user_update_profile(
    *, user: User, email: str = "", age: int | None = None, gender: str = "", occupation: str = "", zip_code: str = ""
) -> User:
    """Save the optional demographics a user tells about themselves (all may be left empty)."""
    user.email = User.objects.normalize_email(email)
    user.age = age
    user.gender = gender
    user.occupation = occupation.strip()
    user.zip_code = zip_code.strip()
    user.full_clean(exclude=["password"])
    user.save(update_fields=PROFILE_FIELDS)
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete the account; its ratings and tags go with it (on_delete=CASCADE)."""
    user.delete()


def user_login_failures_reset(*, user: User) -> int:
    """Forget failed log-ins for the user, e.g. once they proved who they are by resetting their password."""
    return axes_reset(username=user.get_username())

"""Reads about user accounts."""

from .models import User

# MovieLens 100K's list (u.occupation): what the profile form suggests. A fixed list, never what other users typed,
# which would show one person's input to everyone.
OCCUPATION_SUGGESTIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive", "healthcare",
    "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer", "retired", "salesman",
    "scientist", "student", "technician", "writer",
)  # fmt: skip


def user_occupation_suggestions() -> list[str]:
    """Occupations offered as suggestions on the profile form (people may type another)."""
    return list(OCCUPATION_SUGGESTIONS)


def user_rating_count(*, user: User) -> int:
    return user.ratings.count()

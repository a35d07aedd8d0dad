"""Reads about user accounts."""

from .models import User


def user_occupation_suggestions(*, limit: int = 40) -> list[str]:
    """Occupations already in use (MovieLens ships a fixed list), offered as suggestions on the profile form."""
    occupations = (
        User.objects.exclude(occupation="").order_by("occupation").values_list("occupation", flat=True).distinct()
    )
    return list(occupations[:limit])


def user_rating_count(*, user: User) -> int:
    return user.ratings.count()

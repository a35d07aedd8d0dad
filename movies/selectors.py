"""Reads from the movie catalogue."""
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from .models import ImportRun, Movie, Rating


def movie_list_most_rated(*, limit: int = 12) -> QuerySet[Movie]:
    return Movie.objects.filter(rating_count__gt=0).prefetch_related("genres").order_by("-rating_count", "title")[:limit]


def catalogue_counts() -> dict[str, int]:
    return {
        "movies": Movie.objects.count(),
        "users": get_user_model().objects.count(),
        "ratings": Rating.objects.count(),
    }


def import_run_latest() -> ImportRun | None:
    return ImportRun.objects.order_by("-finished_at").first()

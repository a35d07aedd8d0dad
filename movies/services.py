"""The site's writes to the movie catalogue: ratings, watchlist, not-interested, and the movies' stored rating
statistics. The bulk MovieLens import lives in movies.importer (movies.importer.load.movielens_import)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .importer.errors import excerpt
from .models import RATING_SCORES, Movie, NotInterested, Rating, WatchlistItem
from .page_cache import guest_pages_invalidate
from .signals import ratings_changed

__all__ = [
    "RatingError",
    "movie_refresh_rating_stats",
    "not_interested_add",
    "not_interested_remove",
    "parse_score",
    "rating_delete",
    "rating_set",
    "watchlist_add",
    "watchlist_remove",
]


def movie_refresh_rating_stats(*, movie_ids: Iterable[int] | None = None) -> int:
    """Recompute the stored rating count and mean of the given movies (all when None); returns how many changed."""
    if movie_ids is None:
        updated = _movie_refresh_all_rating_stats()
        guest_pages_invalidate()  # a whole new set of statistics (an import): no guest page may stay
        return updated
    ratings = Rating.objects.filter(movie=OuterRef("pk")).order_by().values("movie")
    return Movie.objects.filter(pk__in=list(movie_ids)).update(
        rating_count=Coalesce(Subquery(ratings.annotate(n=Count("pk")).values("n")), 0),
        rating_mean=Subquery(ratings.annotate(mean=Avg("score")).values("mean")),
    )


def _movie_refresh_all_rating_stats() -> int:
    # One grouped scan of the ratings instead of two correlated subqueries per movie: 2.1 s instead of 28.2 s for
    # 10 million ratings on PostgreSQL. UPDATE ... FROM works on PostgreSQL and SQLite (3.33+); only the spelling of
    # a NULL-safe "differs" is theirs.
    movies, ratings = Movie._meta.db_table, Rating._meta.db_table
    differs = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {movies} SET rating_count = stats.n, rating_mean = stats.mean "
            f"FROM (SELECT movie_id, COUNT(*) AS n, AVG(score) AS mean FROM {ratings} GROUP BY movie_id) AS stats "
            f"WHERE {movies}.id = stats.movie_id AND ({movies}.rating_count, {movies}.rating_mean) {differs} (stats.n, stats.mean)"
        )
        updated = cursor.rowcount
    updated += (
        Movie.objects.filter(rating_count__gt=0)
        .filter(~Exists(Rating.objects.filter(movie=OuterRef("pk"))))
        .update(rating_count=0, rating_mean=None)
    )
    return updated


# ------------------------------------------------------------------------------------------- site ratings


class RatingError(ValueError):
    """A rating the site refuses, with a message fit to show the person who sent it."""


def parse_score(value: object) -> float:
    """Accept 0.5 to 5 in half-star steps, from a form string or a number; anything else is a clear error."""
    try:
        score = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise RatingError(f"{excerpt(value)} is not a number of stars: choose 0.5 to 5 in half-star steps.") from None
    if math.isnan(score) or score not in RATING_SCORES:  # NaN, out of range or not a half step
        raise RatingError(f"{excerpt(value, quoted=False)} stars is not a rating: choose 0.5 to 5 in half-star steps.")
    return score


@transaction.atomic
def rating_set(*, user, movie: Movie, score: object) -> Rating:
    """Create or change the user's rating of a movie; the movie leaves their watchlist once rated."""
    stars = parse_score(score)
    rating, _ = Rating.objects.update_or_create(
        user=user, movie=movie, defaults={"score": stars, "rated_at": timezone.now()}
    )
    WatchlistItem.objects.filter(user=user, movie=movie).delete()
    movie_refresh_rating_stats(movie_ids=[movie.pk])
    transaction.on_commit(_retraining_check, robust=True)
    return rating


@transaction.atomic
def rating_delete(*, user, movie: Movie) -> bool:
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        movie_refresh_rating_stats(movie_ids=[movie.pk])
        transaction.on_commit(_retraining_check, robust=True)
    return bool(deleted)


def _retraining_check() -> None:
    # After commit, so the training snapshot sees the rating; robust: a failure here must not fail the request.
    # movies knows nothing of what listens: recommender connects its retraining trigger in its AppConfig.ready.
    ratings_changed.send(sender=Rating)


def watchlist_add(*, user, movie: Movie) -> WatchlistItem:
    if Rating.objects.filter(user=user, movie=movie).exists():
        raise RatingError(f"You have already rated {movie}; the watchlist is for movies you have not seen.")
    item, _ = WatchlistItem.objects.get_or_create(user=user, movie=movie)
    return item


def watchlist_remove(*, user, movie: Movie) -> bool:
    return bool(WatchlistItem.objects.filter(user=user, movie=movie).delete()[0])


def not_interested_add(*, user, movie: Movie) -> NotInterested:
    item, _ = NotInterested.objects.get_or_create(user=user, movie=movie)
    return item


def not_interested_remove(*, user, movie: Movie) -> bool:
    return bool(NotInterested.objects.filter(user=user, movie=movie).delete()[0])

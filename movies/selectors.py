"""Reads from the movie catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Cast

from .models import RATING_SCORES, Genre, Movie, NotInterested, Rating, WatchlistItem, searchable


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.order_by("name")


SORTS = {
    "popular": ("-rating_count", "title"),
    "title": ("title", "year"),
    "newest": ("-year", "title"),
    "best": ("-rating_mean", "-rating_count"),
}


def movie_search(
    *,
    query: str = "",
    genre_id: int | None = None,
    year: int | None = None,
    decade: int | None = None,
    sort: str = "popular",
) -> QuerySet[Movie]:
    """Catalogue search: title words match case- and accent-insensitively ('amelie' finds 'Amélie')."""
    movies = Movie.objects.all()
    for word in searchable(query).split():
        movies = movies.filter(search_title__contains=word)
    if genre_id:
        movies = movies.filter(genres=genre_id)
    if year:
        movies = movies.filter(year=year)
    elif decade:
        movies = movies.filter(year__gte=decade, year__lt=decade + 10)
    return movies.order_by(*SORTS.get(sort, SORTS["popular"])).prefetch_related("genres")


def popular_movies(
    *, limit: int = 10, exclude_movie_ids: Sequence[int] = (), genre_id: int | None = None
) -> QuerySet[Movie]:
    """Top movies by damped (Bayesian) average: a movie with a few 5-star ratings does not win.

    score = (n * mean + m * C) / (n + m), with C the mean of all ratings and m = RECOMMENDER_POPULAR_DAMPING;
    movies with fewer than RECOMMENDER_POPULAR_MIN_RATINGS ratings are left out. The guest pages list them, and
    the recommender serves them when it has no model (the settings keep their RECOMMENDER_ names).
    """
    totals = Movie.objects.aggregate(
        ratings=Sum("rating_count"), stars=Sum(F("rating_mean") * F("rating_count"), output_field=FloatField())
    )
    global_mean = (totals["stars"] or 0.0) / totals["ratings"] if totals["ratings"] else 3.5
    damping = float(settings.RECOMMENDER_POPULAR_DAMPING)
    movies = Movie.objects.filter(rating_count__gte=settings.RECOMMENDER_POPULAR_MIN_RATINGS)
    if genre_id is not None:
        movies = movies.filter(genres=genre_id)
    return (
        movies.exclude(pk__in=list(exclude_movie_ids))
        .annotate(
            damped_mean=(F("rating_mean") * F("rating_count") + damping * global_mean)
            / (Cast("rating_count", FloatField()) + damping)
        )
        .order_by("-damped_mean", "-rating_count", "pk")
        .prefetch_related("genres")[:limit]
    )


def rating_distribution(*, movie: Movie) -> list[tuple[float, int]]:
    counts = dict(
        Rating.objects.filter(movie=movie).values_list("score").annotate(n=Count("pk")).values_list("score", "n")
    )
    return [(score, counts.get(score, 0)) for score in RATING_SCORES]


def user_rating_of(*, user, movie: Movie) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user=user, movie=movie).first()


def user_ratings(*, user) -> QuerySet[Rating]:
    return (
        Rating.objects.filter(user=user).select_related("movie").prefetch_related("movie__genres").order_by("-rated_at")
    )


def user_scores(*, user, movie_ids) -> dict[int, float]:
    """{movie id: the user's stars} for the movies on a page, in one query."""
    if not user.is_authenticated:
        return {}
    return dict(Rating.objects.filter(user=user, movie_id__in=list(movie_ids)).values_list("movie_id", "score"))


def user_rating_summary(*, user) -> dict:
    """How many ratings, their distribution over the half stars, and the genres the user rates highest."""
    ratings = Rating.objects.filter(user=user)
    counts = dict(ratings.values_list("score").annotate(n=Count("pk")).values_list("score", "n"))
    total = sum(counts.values())
    mean = sum(score * n for score, n in counts.items()) / total if total else None
    genres = (
        Genre.objects.filter(movies__ratings__user=user)
        .annotate(n=Count("movies__ratings"), liked=Count("movies__ratings", filter=Q(movies__ratings__score__gte=4)))
        .order_by("-liked", "-n", "name")[:8]
    )
    return {
        "total": total,
        "mean": mean,
        "distribution": [(score, counts.get(score, 0)) for score in RATING_SCORES],
        "most_common": max(counts.values(), default=0),
        "favourite_genres": [{"genre": g, "rated": g.n, "liked": g.liked} for g in genres],
    }


def excluded_from_recommendations(*, user) -> set[int]:
    """Movies on the watchlist or marked "not interested": never recommended."""
    watch = WatchlistItem.objects.filter(user=user).order_by().values_list("movie_id", flat=True)
    hidden = NotInterested.objects.filter(user=user).order_by().values_list("movie_id", flat=True)
    return set(watch.union(hidden))


def watchlist(*, user) -> QuerySet[WatchlistItem]:
    return WatchlistItem.objects.filter(user=user).select_related("movie").prefetch_related("movie__genres")


def onboarding_movies(*, user, limit: int = 12) -> list[Movie]:
    """Well-known, varied movies to rate first: the most rated, at most two sharing a first genre."""
    rated = Rating.objects.filter(user=user).values_list("movie_id", flat=True) if user.is_authenticated else []
    candidates = (
        Movie.objects.filter(rating_count__gt=0)
        .exclude(pk__in=rated)
        .order_by("-rating_count")
        .prefetch_related("genres")[: limit * 6]
    )
    picked, per_genre = [], {}
    for movie in candidates:
        first_genre = next(iter(g.name for g in movie.genres.all()), "")
        if per_genre.get(first_genre, 0) < 2:
            picked.append(movie)
            per_genre[first_genre] = per_genre.get(first_genre, 0) + 1
        if len(picked) == limit:
            break
    # A small catalogue may have too few genres for variety: top up with the next most rated.
    picked += [movie for movie in candidates if movie not in picked][: limit - len(picked)]
    return picked

"""A member's recommendation history: which movies the site recommended to them, and when.

The recommendations page records nothing when it is fetched (a GET has no side effects). Once loaded, it POSTs
the ids of the movies it shows (recommender.views.history_record, with htmx); they are recorded only if they are
what the server recommends to this member now, with the server's own source, predicted stars and model version.
Without JavaScript nothing is recorded: the history then lists only what was shown with JavaScript on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import QuerySet
from django.utils import timezone

from movies.pages import MAX_SHOWN, ONBOARDING_TARGET, PAGE_STEP

from .models import RecommendationLog
from .recommendations import SOURCE_MODEL, MovieRecommendation, personal_recommendations, registry


class HistoryError(ValueError):
    """What was sent cannot be recorded; the message says why, for the caller."""


def recommendation_history(*, user) -> QuerySet[RecommendationLog]:
    """Every movie recommended to the user, most recently shown first."""
    return RecommendationLog.objects.filter(user=user).select_related("movie", "model_version")


def recommendation_log_record(*, user, recommendations: Iterable[MovieRecommendation], version_id: int | None) -> None:
    """Remember what was shown to a registered user (their recommendation history), one upsert per page."""
    now = timezone.now()
    RecommendationLog.objects.bulk_create(
        [
            RecommendationLog(
                user=user,
                movie=r.movie,
                source=r.source,
                predicted_rating=r.predicted_rating,
                model_version_id=version_id if r.source == SOURCE_MODEL else None,
                first_shown_at=now,
                last_shown_at=now,
            )
            for r in recommendations
        ],
        update_conflicts=True,
        unique_fields=["user", "movie"],
        update_fields=["last_shown_at", "source", "predicted_rating", "model_version"],
    )


def parse_movie_ids(values: Sequence[str]) -> list[int]:
    """The posted movie ids: whole numbers, at least one, at most MAX_SHOWN, none twice."""
    if not values:
        raise HistoryError("No movies were sent: post the ids of the movies shown, as `movie` fields.")
    if len(values) > MAX_SHOWN:
        raise HistoryError(f"Too many movies: a page shows at most {MAX_SHOWN}.")
    try:
        ids = [int(value) for value in values]
    except ValueError:
        raise HistoryError("Movie ids are whole numbers.") from None
    if len(set(ids)) != len(ids):
        raise HistoryError("The same movie was sent twice.")
    return ids


def recommendation_shown_record(*, user, movie_ids: Sequence[int]) -> list[MovieRecommendation]:
    """Record that `movie_ids` were shown to `user`, after checking they are what the server recommends to them.

    The page shows a prefix of the user's ranking, whole "Show more" steps of PAGE_STEP cards, so the same number
    of recommendations, rounded up to a step, must contain every id. All or nothing: one id the server would not
    recommend (not recommended, or no longer: the user rated it, or a new model is serving) records none.
    """
    if user.ratings.count() < ONBOARDING_TARGET:
        raise HistoryError(f"Nothing is recommended before you have rated {ONBOARDING_TARGET} movies.")
    limit = min(-(-len(movie_ids) // PAGE_STEP) * PAGE_STEP, MAX_SHOWN)
    recommended = {r.movie.pk: r for r in personal_recommendations(user=user, limit=limit)}
    loaded = registry.current()
    unknown = [pk for pk in movie_ids if pk not in recommended]
    if unknown:
        listed = ", ".join(str(pk) for pk in unknown[:10]) + (" and more" if len(unknown) > 10 else "")
        raise HistoryError(f"Not among your current recommendations, so nothing was recorded: movie {listed}.")
    shown = [recommended[pk] for pk in movie_ids]
    recommendation_log_record(user=user, recommendations=shown, version_id=loaded.version_id if loaded else None)
    return shown

"""Posters and plots from TMDb, fetched in the background (Celery, default queue) and kept on the movie.

movie_details_request(movie) is what a page calls: it queues one fetch for a movie that lacks details, at most once
per TMDB_REQUEST_GUARD_SECONDS, and never waits for it or reaches TMDb itself. The task downloads, the database
and the storage keep what it found, so TMDb is asked about a movie once.
"""

from __future__ import annotations

import hashlib
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from .models import Movie
from .tmdb import TMDbClient, TMDbError, TMDbUnavailable, tmdb_enabled

logger = logging.getLogger(__name__)

FETCH_TASK = "movies.fetch_movie_details"
MAX_RETRIES = 3
ERROR_LENGTH = Movie._meta.get_field("details_error").max_length


def movies_lacking_details() -> QuerySet[Movie]:
    return Movie.objects.filter(details_fetched_at=None)


def _save_poster(movie: Movie, content: bytes, extension: str) -> str:
    # The content's hash in the name: a new poster gets a new URL, so the old one can be cached for long.
    digest = hashlib.sha256(content).hexdigest()[:12]
    return default_storage.save(f"posters/{movie.pk}-{digest}.{extension}", ContentFile(content))


def _record(movie_id: int, **fields) -> None:
    # update(), not save(): rating statistics or an admin edit written meanwhile are not overwritten.
    if "details_error" in fields:
        fields["details_error"] = fields["details_error"][:ERROR_LENGTH]
    Movie.objects.filter(pk=movie_id).update(**fields)


def movie_details_fetch(movie_id: int, *, client: TMDbClient | None = None) -> Movie | None:
    """The task's body: find the movie on TMDb (by its tmdb_id, else by title and year), store poster and plot.

    Raises TMDbUnavailable for the task to retry; a permanent failure is recorded in details_error. The plot is
    kept even when the poster is refused.
    """
    movie = Movie.objects.filter(pk=movie_id).first()
    if movie is None:
        return None
    client = client or TMDbClient()
    now = timezone.now()
    try:
        tmdb_id = movie.tmdb_id or client.find_id(movie.title, movie.year)
        if tmdb_id is None:
            _record(movie.pk, details_fetched_at=now, details_error="no TMDb search result matches the title and year")
            return Movie.objects.get(pk=movie.pk)
        details = client.movie(tmdb_id)
    except TMDbUnavailable:
        raise
    except TMDbError as error:
        _record(movie.pk, details_fetched_at=now, details_error=str(error))
        return Movie.objects.get(pk=movie.pk)
    fields = {
        "tmdb_id": movie.tmdb_id or details.tmdb_id,
        "plot": details.overview,
        "director": details.director[:200],
        "top_cast": ", ".join(details.cast)[:500],
        "details_fetched_at": now,
        "details_error": "",
    }
    old_poster = movie.poster.name
    if details.poster_path:
        try:
            poster = client.poster(details.poster_path)
        except TMDbUnavailable:
            raise
        except TMDbError as error:
            fields["details_error"] = str(error)
        else:
            fields["poster"] = _save_poster(movie, poster.content, poster.extension)
    _record(movie.pk, **fields)
    if old_poster and fields.get("poster", old_poster) != old_poster:
        default_storage.delete(old_poster)
    return Movie.objects.get(pk=movie.pk)


@shared_task(
    name=FETCH_TASK,
    bind=True,
    ignore_result=True,
    autoretry_for=(TMDbUnavailable,),
    max_retries=MAX_RETRIES,
    retry_backoff=10,  # 10 s, 20 s, 40 s (with jitter): a busy or briefly down TMDb gets room
    retry_backoff_max=300,
    retry_jitter=True,
    rate_limit="20/s",  # per worker; TMDb allows about 40 requests a second, and a fetch makes two or three
    soft_time_limit=120,
    time_limit=150,
)
def fetch_movie_details(self, movie_id: int) -> None:
    try:
        movie_details_fetch(movie_id)
    except TMDbUnavailable as error:
        if self.request.retries >= self.max_retries:
            # Given up for now: recorded, but details_fetched_at stays empty so a later run tries again.
            logger.warning("TMDb details for movie %s failed after %s retries: %s", movie_id, self.max_retries, error)
            _record(movie_id, details_error=f"{error} (after {self.max_retries} retries)")
            return
        raise  # autoretry_for: retried with backoff


def movie_details_queue(movie: Movie) -> bool:
    """Send the fetch task; False (logged) when the broker cannot be reached."""
    try:
        # retry=False: a page that asks must not wait on a broker that is down.
        fetch_movie_details.apply_async(args=[movie.pk], retry=False)
    except Exception as error:  # noqa: BLE001 - any broker or network error: the page must still be served
        logger.error("Could not queue the TMDb fetch of movie %s (is the broker down?): %s", movie.pk, error)
        return False
    return True


def movie_details_request(movie: Movie) -> bool:
    """Called by the movie page: queue one background fetch for a movie that lacks details.

    Does nothing without TMDB_API_KEY or when the movie has details. At most once per TMDB_REQUEST_GUARD_SECONDS
    per movie (cache.add is atomic, and shared between web processes with Redis). Never raises, never waits for the
    fetch, never reaches TMDb itself. True when a fetch was queued.
    """
    if not tmdb_enabled() or movie.details_fetched_at is not None:
        return False
    try:
        if not cache.add(f"movies:tmdb-requested:{movie.pk}", 1, timeout=settings.TMDB_REQUEST_GUARD_SECONDS):
            return False
    except Exception as error:  # noqa: BLE001 - a cache that is down must not break the page
        logger.error("Could not check the TMDb request guard of movie %s: %s", movie.pk, error)
        return False
    return movie_details_queue(movie)

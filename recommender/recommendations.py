"""Recommendations for the views: the active VAE served with NumPy (no TensorFlow in web processes).

Each process loads the active model once, shares it across threads, and every few seconds makes one cheap
indexed query to learn whether another version became active; a swap replaces one reference, so requests
in flight finish on the model they started with. With no usable model, popular movies are served and
marked as such. Reads only, apart from taking a broken active version out of service (versions.py); what the
user was shown is recorded by history.py, on the page's request (a POST), never here.

The weights are memory-mapped from a local cache that all processes on the machine share (serving_cache.py), or,
with RECOMMENDER_SERVING_CACHE_DIR empty, read into each process's own memory.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from movies.models import Movie
from movies.pages import PAGE_STEP
from movies.selectors import excluded_from_recommendations, movies_for_cards, popular_movies, user_rating_scores

from . import artifacts, serving_cache
from .ml.inference import VAERecommender
from .models import ModelVersion
from .selectors import model_version_active_id
from .versions import model_version_retire_broken

logger = logging.getLogger(__name__)

SOURCE_MODEL = "model"
SOURCE_POPULAR = "popular"
LIKED_STARS = 4.0  # "Because you rated X highly" only ever names a movie rated this or more
SHOWN_PAGE_SIZE = PAGE_STEP  # cards per "Show more" step


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    recommender: VAERecommender
    movie_ids: np.ndarray  # column -> Movie pk
    column_of: dict[int, int]  # Movie pk -> column
    cache_folder: str | None = None  # its folder in the serving cache, when memory-mapped from there


@dataclass(frozen=True)
class MovieRecommendation:
    movie: Movie
    score: float
    predicted_rating: float | None
    source: str  # SOURCE_MODEL or SOURCE_POPULAR
    because: Movie | None = None  # the user's highly rated movie most like this one


def load_model_version(version: ModelVersion) -> LoadedModel:
    """Read a version's serving files, verifying their checksums: the weights memory-mapped from the serving
    cache (unpacked from storage once per machine) or, without a cache, read from storage into this process."""
    index = artifacts.artifact_read(
        folder=version.artifact_path,
        name=artifacts.MOVIE_INDEX,
        expected_sha256=version.artifact_sha256.get(artifacts.MOVIE_INDEX),
    )
    weights_sha256 = version.artifact_sha256.get(artifacts.SERVING_WEIGHTS)
    root, recommender, cache_folder = serving_cache.cache_root(), None, None
    if root is not None:
        try:
            recommender = VAERecommender(
                serving_cache.serving_weights_open(
                    root=root,
                    version_id=version.pk,
                    artifact_folder=version.artifact_path,
                    artifact_sha256=weights_sha256,
                )
            )
            cache_folder = serving_cache.folder_name(version.pk, weights_sha256)
        except OSError as error:  # the local disk (full, read-only), not the model: serve it from memory instead
            logger.warning("Serving cache %s unusable, loading a private copy: %s", root, error)
    if recommender is None:
        weights = artifacts.artifact_read(
            folder=version.artifact_path, name=artifacts.SERVING_WEIGHTS, expected_sha256=weights_sha256
        )
        with np.load(io.BytesIO(weights), allow_pickle=False) as archive:
            recommender = VAERecommender({name: archive[name] for name in archive.files})
    movie_ids = np.asarray(json.loads(index)["movie_ids"], dtype=np.int64)
    if len(movie_ids) != recommender.n_items:
        raise artifacts.ArtifactError(f"movie index has {len(movie_ids)} movies, the model {recommender.n_items}")
    column_of = {int(pk): col for col, pk in enumerate(movie_ids)}
    return LoadedModel(version.pk, recommender, movie_ids, column_of, cache_folder)


class ModelRegistry:
    """The process-wide active model, re-checked at most every `check_seconds`."""

    def __init__(self, check_seconds: float) -> None:
        self.check_seconds = check_seconds
        self._loaded: LoadedModel | None = None
        self._failed_version_id: int | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> LoadedModel | None:
        if time.monotonic() - self._checked_at < self.check_seconds:
            return self._loaded
        with self._lock:
            if time.monotonic() - self._checked_at >= self.check_seconds:
                self._refresh()
                self._checked_at = time.monotonic()
        return self._loaded

    def _refresh(self) -> None:
        active_id = model_version_active_id()
        if active_id is None:
            self._loaded = None
            return
        if (self._loaded and self._loaded.version_id == active_id) or active_id == self._failed_version_id:
            return
        try:
            self._loaded = load_model_version(ModelVersion.objects.get(pk=active_id))
            self._failed_version_id = None
            logger.info("Serving model version %s", active_id)
            self._prune_cache()
        except artifacts.ArtifactBroken as error:
            # Its files are gone or corrupt: reading again will not help. Take it out of service (it is marked
            # failed, with the reason, for the admin) and serve the last good version instead.
            restored = model_version_retire_broken(version_id=active_id, reason=str(error))
            self._failed_version_id = active_id
            if restored is not None and restored.pk != active_id:
                self._refresh()
        except (artifacts.ArtifactError, ValueError, KeyError, OSError, ModelVersion.DoesNotExist) as error:
            # Perhaps passing (storage unreachable): keep serving what we had (or popular movies) and do not retry
            # the same version on every check.
            self._failed_version_id = active_id
            logger.error(
                "Cannot load model version %s, keeping %s: %s",
                active_id,
                f"version {self._loaded.version_id}" if self._loaded else "popular movies",
                error,
            )

    def _prune_cache(self) -> None:
        """Old versions' folders out of the serving cache: the served one and the one unpacked before it stay."""
        root = serving_cache.cache_root()
        if root is None or self._loaded.cache_folder is None:
            return
        try:
            removed = serving_cache.serving_cache_prune(root=root, current=self._loaded.cache_folder)
        except OSError as error:  # a full or read-only disk must not stop serving
            logger.warning("Cannot prune the serving cache %s: %s", root, error)
            return
        if removed:
            logger.info("Serving cache: removed %s", ", ".join(removed))

    def reset(self) -> None:
        with self._lock:
            self._loaded, self._failed_version_id, self._checked_at = None, None, float("-inf")


registry = ModelRegistry(check_seconds=settings.RECOMMENDER_VERSION_CHECK_SECONDS)


# ------------------------------------------------------------------------------------------- popular movies


def _popular_recommendations(limit: int, exclude: Sequence[int]) -> list[MovieRecommendation]:
    return [
        MovieRecommendation(movie=movie, score=float(movie.damped_mean), predicted_rating=None, source=SOURCE_POPULAR)
        for movie in popular_movies(limit=limit, exclude_movie_ids=exclude)
    ]


# ------------------------------------------------------------------------------------------- personal


def recommendations_for_ratings(
    *, ratings: Mapping[int, float], limit: int = 10, exclude_movie_ids: Sequence[int] = ()
) -> list[MovieRecommendation]:
    """Top movies for a set of {movie pk: stars}, folded in through the encoder; rated movies excluded."""
    loaded = registry.current()
    exclude = {*ratings.keys(), *exclude_movie_ids}
    if loaded is None or not ratings:
        return _popular_recommendations(limit, list(exclude))
    known = {loaded.column_of[pk]: score for pk, score in ratings.items() if pk in loaded.column_of}
    if not known:
        return _popular_recommendations(limit, list(exclude))
    recommender = loaded.recommender
    # Rated movies the model does not know are not among its columns; the rest are left out by recommend().
    excluded_columns = [loaded.column_of[pk] for pk in exclude_movie_ids if pk in loaded.column_of]
    picked = recommender.recommend(known, n=limit, exclude_items=excluded_columns)
    liked = [column for column, score in known.items() if score >= LIKED_STARS]
    reasons = _because(recommender, [c.item for c in picked], liked)
    wanted = [int(loaded.movie_ids[c.item]) for c in picked] + [
        int(loaded.movie_ids[col]) for col in set(reasons.values())
    ]
    movies = movies_for_cards(movie_ids=wanted)
    results = []
    for candidate in picked:
        movie = movies.get(int(loaded.movie_ids[candidate.item]))
        if movie is None:  # deleted since training
            continue
        reason = reasons.get(candidate.item)
        results.append(
            MovieRecommendation(
                movie=movie,
                score=candidate.score,
                predicted_rating=candidate.predicted_rating,
                source=SOURCE_MODEL,
                because=movies.get(int(loaded.movie_ids[reason])) if reason is not None else None,
            )
        )
    return results


def _because(recommender: VAERecommender, items: list[int], liked: list[int]) -> dict[int, int]:
    """For each recommended column, the liked column it is most similar to.

    With a similar-items table in the model (recommender.ml.similarity), the liked movie whose table row lists
    the recommendation with the highest score (or that the recommendation's own row lists highest); a
    recommendation related to no liked movie gets no reason rather than a weak one. Without a table, the liked
    movie with the closest output-layer vector.
    """
    if not items or not liked:
        return {}
    neighbours = recommender.weights.get("similar_items_neighbours")
    scores = recommender.weights.get("similar_items_scores")
    if neighbours is not None and scores is not None:
        return _because_by_table(neighbours, scores, items, liked)
    embeddings = recommender.item_embeddings()
    similarity = embeddings[items] @ embeddings[liked].T
    return {item: liked[int(np.argmax(row))] for item, row in zip(items, similarity)}


def _because_by_table(neighbours: np.ndarray, scores: np.ndarray, items: list[int], liked: list[int]) -> dict[int, int]:
    items_array, liked_array = np.asarray(items), np.asarray(liked)
    # Liked movies' rows that list a recommendation, and recommendations' rows that list a liked movie.
    liked_rows, recommended_rows = neighbours[liked_array], neighbours[items_array]
    forward = np.isin(liked_rows, items_array)
    backward = np.isin(recommended_rows, liked_array)
    row_item = np.broadcast_to(items_array[:, None], recommended_rows.shape)
    row_liked = np.broadcast_to(liked_array[:, None], liked_rows.shape)
    item = np.concatenate([liked_rows[forward], row_item[backward]])
    reason = np.concatenate([row_liked[forward], recommended_rows[backward]])
    score = np.concatenate([scores[liked_array][forward], scores[items_array][backward]])
    best: dict[int, int] = {}
    for index in np.lexsort((reason, -score, item)):  # per item: highest score first, then the lower column
        best.setdefault(int(item[index]), int(reason[index]))
    return best


def recommendations_for_user(
    *, user, limit: int = 10, exclude_movie_ids: Sequence[int] = (), ratings: Mapping[int, float] | None = None
) -> list[MovieRecommendation]:
    """The user's current ratings folded in at request time, so a new rating changes the list at once
    (``ratings``: the caller read them already in this request)."""
    if ratings is None:
        ratings = user_rating_scores(user=user)
    return recommendations_for_ratings(ratings=ratings, limit=limit, exclude_movie_ids=exclude_movie_ids)


def similar_movies(*, movie: Movie, limit: int = 10) -> list[tuple[Movie, float]]:
    """The model's similar movies: its similar-items table (recommender.ml.similarity) when it has one, else the
    closest output-layer vectors; empty without a model."""
    loaded = registry.current()
    if loaded is None or movie.pk not in loaded.column_of:
        return []
    pairs = loaded.recommender.similar_items(loaded.column_of[movie.pk], n=limit)
    movies = movies_for_cards(movie_ids=[int(loaded.movie_ids[column]) for column, _ in pairs])
    return [(movies[int(loaded.movie_ids[c])], s) for c, s in pairs if int(loaded.movie_ids[c]) in movies]


def _in_pages_by_predicted_stars(recommended: list[MovieRecommendation], page_size: int) -> list[MovieRecommendation]:
    """The ranking picks which movies each page of cards shows; within a page the cards go by predicted stars.

    The page after "Show more" holds the next movies by ranking, so no movie moves to another page and none
    shows twice; Python's sort is stable, so equal predictions keep their ranking order.
    """
    ordered: list[MovieRecommendation] = []
    for start in range(0, len(recommended), page_size):
        page = recommended[start : start + page_size]
        ordered += sorted(page, key=lambda r: -r.predicted_rating if r.predicted_rating is not None else 0.0)
    return ordered


def personal_recommendations(
    *, user, limit: int = 4, ratings: Mapping[int, float] | None = None
) -> list[MovieRecommendation]:
    """What the recommendations page shows: rated, watchlisted and "not interested" movies left out, and the
    cards of each page in the order of their predicted stars. Records nothing (see history.py)."""
    recommended = recommendations_for_user(
        user=user, limit=limit, exclude_movie_ids=list(excluded_from_recommendations(user=user)), ratings=ratings
    )
    return _in_pages_by_predicted_stars(recommended, SHOWN_PAGE_SIZE)

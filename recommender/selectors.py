"""Reads for the recommender: the training snapshot of the rating matrix, model versions."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from django.db.models import Max, QuerySet

from movies.models import Rating

from .models import ModelVersion

_STREAM_CHUNK = 100_000


@dataclass
class RatingSnapshot:
    """The users x movies star matrix (sparse) with the database ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    movie_ids: np.ndarray
    newest_rated_at: datetime | None

    def stats(self) -> dict:
        return {
            "users": int(self.matrix.shape[0]),
            "movies": int(self.matrix.shape[1]),
            "ratings": int(self.matrix.nnz),
            "newest_rated_at": self.newest_rated_at.isoformat() if self.newest_rated_at else None,
        }


def rating_snapshot() -> RatingSnapshot:
    """Every rating up to the newest one at call time, streamed into a sparse matrix (never dense).

    The watermark is read first and the stream filtered by it, so a rating saved meanwhile is left for the
    next training instead of half-appearing; `newest_rated_at` is what "new ratings since" counts from.
    """
    newest = Rating.objects.aggregate(newest=Max("rated_at"))["newest"]
    rows = (
        Rating.objects.filter(rated_at__lte=newest).order_by().values_list("user_id", "movie_id", "score")
        .iterator(chunk_size=_STREAM_CHUNK)
    ) if newest else iter(())
    users_parts, movies_parts, scores_parts = [], [], []
    while block := list(itertools.islice(rows, _STREAM_CHUNK)):
        users, movies, scores = zip(*block)
        users_parts.append(np.array(users, dtype=np.int64))
        movies_parts.append(np.array(movies, dtype=np.int64))
        scores_parts.append(np.array(scores, dtype=np.float32))
    users = np.concatenate(users_parts) if users_parts else np.zeros(0, np.int64)
    movies = np.concatenate(movies_parts) if movies_parts else np.zeros(0, np.int64)
    scores = np.concatenate(scores_parts) if scores_parts else np.zeros(0, np.float32)
    user_ids, rows_index = np.unique(users, return_inverse=True)
    movie_ids, columns_index = np.unique(movies, return_inverse=True)
    matrix = sp.csr_matrix((scores, (rows_index, columns_index)), shape=(len(user_ids), len(movie_ids)), dtype=np.float32)
    matrix.sort_indices()
    return RatingSnapshot(matrix=matrix, user_ids=user_ids, movie_ids=movie_ids, newest_rated_at=newest)


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_active_id() -> int | None:
    """The cheap check web processes make every few seconds (an indexed lookup of one id)."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("pk", flat=True).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-created_at")

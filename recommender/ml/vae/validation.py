"""Scores of a model on validation users' hidden ratings: NDCG@k, RMSE in stars and flip@10.

Every score runs the deterministic pass (z = z_mean) one batch of users at a time, so that no dense
users x movies matrix of all validation users is ever held at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from recommender.ml import data
from recommender.ml.evaluation import hits_matrix, jaccard_overlap, ndcg_at_k
from recommender.ml.inference import exclude_rated, top_n_indices
from recommender.ml.vae.config import NDCG_CUTOFFS
from recommender.ml.vae.model import RecommenderVAE
from recommender.ml.vae.sparse import sparse_batch


def _deterministic_batches(
    model: RecommenderVAE, inputs: sp.csr_matrix, batch_size: int = 512
) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """The deterministic pass (z = z_mean) over the rows of a normalised CSR matrix, one batch at a time.

    Callers reduce each batch before the next: all validation users' scores at once would be dense
    users x movies (32,508 x 59,047 float32 = 7.7 GB at ML-25M size).
    """
    for start in range(0, inputs.shape[0], batch_size):
        rows = slice(start, min(start + batch_size, inputs.shape[0]))
        if model.vae_config.sparse_input:
            batch = sparse_batch(inputs, np.arange(rows.start, rows.stop))
        else:
            batch = data.densify_rows(inputs, np.arange(rows.start, rows.stop))
        yield rows, {name: np.asarray(value) for name, value in model(batch, training=False).items()}


def _row_slices(n_rows: int, batch_size: int = 512) -> Iterator[tuple[slice, None]]:
    """The row batches of :func:`_deterministic_batches`, without running the model."""
    for start in range(0, n_rows, batch_size):
        yield slice(start, min(start + batch_size, n_rows)), None


def validation_ndcg(inputs: sp.csr_matrix, relevant: sp.csr_matrix, k: int = 100):
    """score(model) -> mean NDCG@k over users with a relevant hidden movie (evaluation's metric)."""

    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    inputs, relevant, n_relevant = inputs[users], relevant[users], n_relevant[users]

    def score(model: RecommenderVAE) -> float:
        if not len(users):
            return 0.0
        per_user = []
        for rows, out in _deterministic_batches(model, inputs):
            top = top_n_indices(exclude_rated(out["ranking_logits"], inputs[rows]), k)
            per_user.append(ndcg_at_k(hits_matrix(top, relevant[rows]), n_relevant[rows], k))
        return float(np.concatenate(per_user).mean())

    return score


def validation_rmse(inputs: sp.csr_matrix, targets: sp.csr_matrix, scale: float, clip: bool = True):
    """score(model) -> RMSE of the rating head on the hidden ratings, in stars (normalised * scale)."""

    def score(model: RecommenderVAE) -> float:
        squared_errors, count = 0.0, 0
        for rows, out in _deterministic_batches(model, inputs):
            predicted = np.clip(out["rating"], 0.0, 1.0) if clip else out["rating"]  # serving clips to 0.5..5 stars
            batch_targets = targets[rows]
            target_rows = np.repeat(np.arange(batch_targets.shape[0]), np.diff(batch_targets.indptr))
            errors = predicted[target_rows, batch_targets.indices] - batch_targets.data
            squared_errors += float(np.square(errors, dtype=np.float64).sum())
            count += len(errors)
        return float(np.sqrt(squared_errors / count) * scale) if count else 0.0

    return score


class _ValidationScorer:
    """NDCG@10, NDCG@100 and flip@10 of per-batch score lists on fixed validation users (the calibration's)."""

    def __init__(self, inputs: sp.csr_matrix, mirrored: sp.csr_matrix, relevant: sp.csr_matrix, n_relevant: np.ndarray):
        self.inputs, self.mirrored, self.relevant, self.n_relevant = inputs, mirrored, relevant, n_relevant

    def score(self, as_rated: list[np.ndarray], mirrored: list[np.ndarray]) -> dict[str, float]:

        per_user: dict[str, list[np.ndarray]] = {f"ndcg@{k}": [] for k in NDCG_CUTOFFS}
        per_user["flip@10"] = []
        for index, (rows, _) in enumerate(_row_slices(self.inputs.shape[0])):
            top = top_n_indices(exclude_rated(as_rated[index], self.inputs[rows]), max(NDCG_CUTOFFS))
            for k in NDCG_CUTOFFS:
                per_user[f"ndcg@{k}"].append(_ndcg_per_user(top, self.relevant[rows], self.n_relevant[rows], k))
            top_mirrored = top_n_indices(exclude_rated(mirrored[index], self.mirrored[rows]), 10)
            per_user["flip@10"].append(jaccard_overlap(top[:, :10], top_mirrored))
        return {name: float(np.concatenate(values).mean()) for name, values in per_user.items()}


def _ndcg_per_user(top: np.ndarray, relevant: sp.csr_matrix, n_relevant: np.ndarray, k: int = 100) -> np.ndarray:

    return ndcg_at_k(hits_matrix(top, relevant), n_relevant, k)

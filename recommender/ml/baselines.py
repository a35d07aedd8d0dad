"""Baselines on a CSR user x movie star-rating matrix: popularity, damped biases, EASE.

Each model has ``fit(matrix) -> self``, ``rank_scores(fold_in)`` (n_users x n_items, higher
is better) and ``predict_ratings(fold_in)`` (stars, or None when the model does not predict
ratings), the interface :func:`recommender.ml.evaluation.evaluate` uses.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recommender.ml.data import RATING_MAX, RATING_MIN, observed_mask


def _item_counts_and_sums(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    by_item = sp.csc_matrix(matrix)
    return np.diff(by_item.indptr).astype(np.float64), np.asarray(by_item.sum(axis=0), dtype=np.float64).ravel()


class PopularityRecommender:
    """Same list for everyone: by number of ratings, or by damped (Bayesian) mean rating.

    ``score="damped_mean"`` ranks by (sum + damping * global mean) / (count + damping) and
    leaves out movies with fewer than ``min_count`` ratings: a cold-start list that does not
    put a movie with a single 5-star rating first.
    """

    def __init__(self, score: str = "count", damping: float = 10.0, min_count: int = 1) -> None:
        if score not in ("count", "damped_mean"):
            raise ValueError("score must be 'count' or 'damped_mean'")
        self.score = score
        self.damping = damping
        self.min_count = min_count
        self.item_scores: np.ndarray | None = None

    def fit(self, matrix: sp.spmatrix) -> "PopularityRecommender":
        matrix = sp.csr_matrix(matrix)
        counts, sums = _item_counts_and_sums(matrix)
        if self.score == "count":
            scores = counts.copy()
        else:
            global_mean = matrix.data.mean() if matrix.nnz else (RATING_MIN + RATING_MAX) / 2
            scores = (sums + self.damping * global_mean) / (counts + self.damping)
        scores[counts < self.min_count] = -np.inf
        self.item_scores = scores
        return self

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return np.tile(self.item_scores, (fold_in.shape[0], 1))

    def predict_ratings(self, fold_in: sp.spmatrix) -> None:
        return None


class BiasRatingModel:
    """rating = global mean + damped movie bias + damped user bias (Koren 2010, section 2.1).

    The user bias is computed from the ratings passed at prediction time, so users unseen
    during ``fit`` (fold-in users, new site visitors) get one too.
    """

    def __init__(self, item_damping: float = 25.0, user_damping: float = 10.0) -> None:
        self.item_damping = item_damping
        self.user_damping = user_damping
        self.global_mean = 0.0
        self.item_bias: np.ndarray | None = None

    def fit(self, matrix: sp.spmatrix) -> "BiasRatingModel":
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        self.global_mean = float(matrix.data.mean())
        counts, sums = _item_counts_and_sums(matrix)
        self.item_bias = (sums - counts * self.global_mean) / (counts + self.item_damping)
        return self

    def user_bias(self, ratings: sp.spmatrix) -> np.ndarray:
        ratings = sp.csr_matrix(ratings, dtype=np.float64)
        residuals = ratings.data - self.global_mean - self.item_bias[ratings.indices]
        rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
        sums = np.bincount(rows, weights=residuals, minlength=ratings.shape[0])
        return sums / (np.diff(ratings.indptr) + self.user_damping)

    def predict_ratings(self, fold_in: sp.spmatrix) -> np.ndarray:
        predictions = self.global_mean + self.item_bias[None, :] + self.user_bias(fold_in)[:, None]
        return np.clip(predictions, RATING_MIN, RATING_MAX)

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return self.predict_ratings(fold_in)


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019), closed form on the binary rated matrix.

    B = I - P diagMat(1 / diag(P)), P = (X^T X + lambda I)^-1, then diag(B) = 0. Needs a dense
    n_items x n_items matrix: fine for thousands of movies, not for ML-25M's 59k.
    """

    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2
        self.item_weights: np.ndarray | None = None

    def fit(self, matrix: sp.spmatrix) -> "EASE":
        rated = observed_mask(matrix).astype(np.float64)
        gram = np.asarray((rated.T @ rated).todense())
        gram[np.diag_indices_from(gram)] += self.l2
        precision = scipy.linalg.inv(gram, overwrite_a=True)
        weights = precision / -np.diag(precision)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.item_weights = weights.astype(np.float32)
        return self

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return np.asarray(observed_mask(fold_in) @ self.item_weights)

    def predict_ratings(self, fold_in: sp.spmatrix) -> None:
        return None

"""Baselines on a CSR user x movie star-rating matrix: popularity, damped biases, EASE variants.

(Over 400 lines on purpose: every baseline the evaluation compares, and their tuning on validation users, side by
side, so one reading shows that they are fitted and tuned alike.)

Each model has ``fit(matrix) -> self``, ``rank_scores(fold_in)`` (n_users x n_items, higher
is better) and ``predict_ratings(fold_in)`` (stars, or None when the model does not predict
ratings), the interface :func:`recommender.ml.evaluation.evaluate` uses.

Plain EASE reads only which movies were rated, so a 1-star rating pulls similar movies up
exactly like a 5-star one. :class:`ValueAwareEASE` also reads whether each rating was liked
or disliked. :func:`select_on_validation` and :class:`Tuned` pick a hyperparameter on
validation users drawn from the training users only, never on the users being scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.ml import closed_form
from recommender.ml.data import (
    RATING_MAX,
    RATING_MIN,
    damped_deviation,
    damped_mean,
    observed_mask,
    ratings_per_user,
    relevance_threshold,
    split_ratings_per_user,
    split_users,
)
from recommender.ml.evaluation import (
    COVERAGE_METRIC,
    DISLIKED_THRESHOLD,
    RANKING_METRICS,
    RATING_METRICS,
    TASTE_METRICS,
    Recommender,
    RecommenderFactory,
    rating_scale,
    score_holdout,
)

# The damping the product's rating model uses (VAE "default" preset): the bias baseline matches it.
PRODUCT_ITEM_DAMPING = 5.0
PRODUCT_USER_DAMPING = 10.0
EASE_L2_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
LOWER_IS_BETTER = frozenset({"disliked@20", "rmse", "mae"})


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

    def fit(self, matrix: sp.spmatrix) -> PopularityRecommender:
        matrix = sp.csr_matrix(matrix)
        counts, sums = _item_counts_and_sums(matrix)
        if self.score == "count":
            scores = counts.copy()
        else:
            global_mean = matrix.data.mean() if matrix.nnz else (RATING_MIN + RATING_MAX) / 2
            scores = damped_mean(sums, counts, self.damping, global_mean)
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

    def fit(self, matrix: sp.spmatrix) -> BiasRatingModel:
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        self.global_mean = float(matrix.data.mean())
        counts, sums = _item_counts_and_sums(matrix)
        self.item_bias = damped_deviation(sums - counts * self.global_mean, counts, self.item_damping)
        return self

    def user_bias(self, ratings: sp.spmatrix) -> np.ndarray:
        ratings = sp.csr_matrix(ratings, dtype=np.float64)
        residuals = ratings.data - self.global_mean - self.item_bias[ratings.indices]
        rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
        sums = np.bincount(rows, weights=residuals, minlength=ratings.shape[0])
        return damped_deviation(sums, np.diff(ratings.indptr), self.user_damping)

    def predict_ratings(self, fold_in: sp.spmatrix) -> np.ndarray:
        predictions = self.global_mean + self.item_bias[None, :] + self.user_bias(fold_in)[:, None]
        return np.clip(predictions, RATING_MIN, RATING_MAX)

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return self.predict_ratings(fold_in)


def liked_indicators(matrix: sp.spmatrix, liked_threshold: float) -> sp.csr_matrix:
    """1.0 where the rating is at least ``liked_threshold``; everything else left out."""
    matrix = sp.csr_matrix(matrix)
    liked = sp.csr_matrix(
        ((matrix.data >= liked_threshold).astype(np.float32), matrix.indices.copy(), matrix.indptr.copy()),
        shape=matrix.shape,
    )
    liked.eliminate_zeros()
    return liked


def signed_feedback(
    matrix: sp.spmatrix, liked_threshold: float, disliked_threshold: float = DISLIKED_THRESHOLD
) -> sp.csr_matrix:
    """+1 where the rating is liked (>= liked_threshold), -1 where disliked (<= disliked_threshold), else absent."""
    matrix = sp.csr_matrix(matrix)
    signs = np.where(matrix.data >= liked_threshold, 1.0, np.where(matrix.data <= disliked_threshold, -1.0, 0.0))
    signed = sp.csr_matrix((signs.astype(np.float32), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    signed.eliminate_zeros()
    return signed


def value_aware_features(
    matrix: sp.spmatrix, liked_threshold: float, disliked_threshold: float = DISLIKED_THRESHOLD
) -> sp.csr_matrix:
    """[0/1 rated | signed feedback]: n_users x 2 n_items, the input of :class:`ValueAwareEASE`."""
    return sp.hstack(
        [observed_mask(matrix), signed_feedback(matrix, liked_threshold, disliked_threshold)], format="csr"
    )


def ease_weights(inputs: sp.spmatrix, l2: float, top_k: int | None = None) -> np.ndarray | sp.csc_matrix:
    """EASE's closed form on 0/1 inputs: B = I - P diagMat(1 / diag(P)), diag(B) = 0 (float32).

    Computed a block of columns at a time (closed_form): whole, or each movie's ``top_k`` largest |weights|.
    """
    inputs = sp.csr_matrix(inputs)
    n_items = inputs.shape[1]
    return closed_form.assemble(closed_form.ease_blocks(inputs, l2), (n_items, n_items), top_k)


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019), closed form on binary indicators.

    ``input="rated"``: which movies were rated, whatever the stars (the classic EASE).
    ``input="liked"``: only the movies rated at least ``liked_threshold`` (None: 4 stars, 3.5
    with half stars, resolved on the matrix given to ``fit``), both to fit and to score.
    Needs a dense n_items x n_items matrix: fine for thousands of movies, not for ML-25M's 59k.
    """

    def __init__(self, l2: float = 500.0, input: str = "rated", liked_threshold: float | None = None) -> None:
        if input not in ("rated", "liked"):
            raise ValueError("input must be 'rated' or 'liked'")
        self.l2 = l2
        self.input = input
        self.liked_threshold = liked_threshold
        self.item_weights: np.ndarray | None = None

    def inputs(self, ratings: sp.spmatrix) -> sp.csr_matrix:
        if self.input == "rated":
            return observed_mask(ratings)
        return liked_indicators(ratings, self.liked_threshold)

    def fit(self, matrix: sp.spmatrix) -> EASE:
        matrix = sp.csr_matrix(matrix)
        if self.input == "liked" and self.liked_threshold is None:
            self.liked_threshold = relevance_threshold(matrix)
        self.item_weights = ease_weights(self.inputs(matrix), self.l2)
        return self

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return np.asarray(self.inputs(fold_in) @ self.item_weights)

    def predict_ratings(self, fold_in: sp.spmatrix) -> None:
        return None


def value_aware_ease_weights(
    matrix: sp.spmatrix,
    l2: float = 500.0,
    liked_threshold: float | None = None,
    disliked_threshold: float = DISLIKED_THRESHOLD,
    target: str = "liked",
    top_k: int | None = None,
) -> np.ndarray | sp.csc_matrix:
    """Ridge weights (2 n_items x n_items, float32) from [rated | signed] features to each movie.

    Column j minimises ||y_j - X b||^2 + l2 ||b||^2 subject to b = 0 on movie j's own two
    features (its rated and its signed column), so a movie never predicts itself. With
    P = (X^T X + l2 I)^-1 and the unconstrained B0 = P X^T Y, the Lagrange conditions give
    b_j = B0_j - P[:, (j, n+j)] mu_j where the 2 x 2 system P[(j, n+j), (j, n+j)] mu_j =
    B0[(j, n+j), j] zeroes both entries. y_j is "movie j liked" (``target="liked"``) or
    "movie j rated" (``target="rated"``). Computed a block of movies at a time (closed_form): whole, or
    only each movie's ``top_k`` largest |weights| (sparse), without a dense features x features matrix.
    """
    if target not in ("liked", "rated"):
        raise ValueError("target must be 'liked' or 'rated'")
    matrix = sp.csr_matrix(matrix)
    liked_threshold = relevance_threshold(matrix) if liked_threshold is None else liked_threshold
    n_items = matrix.shape[1]
    features = value_aware_features(matrix, liked_threshold, disliked_threshold)
    targets = liked_indicators(matrix, liked_threshold) if target == "liked" else observed_mask(matrix)
    blocks = closed_form.value_aware_blocks(features, targets, l2)
    return closed_form.assemble(blocks, (2 * n_items, n_items), top_k)


class ValueAwareEASE:
    """EASE that listens to the stars: inputs are [rated 0/1 | +1 liked, -1 disliked], output n movies.

    A 1-star rating now pushes away what a 5-star rating pulls up. Thresholds: liked >=
    ``liked_threshold`` (None: 4 stars, 3.5 with half stars, resolved on the matrix given to
    ``fit``), disliked <= ``disliked_threshold``. ``target="liked"`` learns to predict liked
    movies, ``"rated"`` watched ones. See :func:`value_aware_ease_weights` for the closed form.
    """

    def __init__(
        self,
        l2: float = 500.0,
        liked_threshold: float | None = None,
        disliked_threshold: float = DISLIKED_THRESHOLD,
        target: str = "liked",
    ) -> None:
        if target not in ("liked", "rated"):
            raise ValueError("target must be 'liked' or 'rated'")
        self.l2 = l2
        self.liked_threshold = liked_threshold
        self.disliked_threshold = disliked_threshold
        self.target = target
        self.item_weights: np.ndarray | None = None

    def fit(self, matrix: sp.spmatrix) -> ValueAwareEASE:
        matrix = sp.csr_matrix(matrix)
        if self.liked_threshold is None:
            self.liked_threshold = relevance_threshold(matrix)
        self.item_weights = value_aware_ease_weights(
            matrix, self.l2, self.liked_threshold, self.disliked_threshold, self.target
        )
        return self

    def features(self, fold_in: sp.spmatrix) -> sp.csr_matrix:
        if self.liked_threshold is None:
            raise RuntimeError("fit the model first: the liked threshold comes from the training matrix")
        return value_aware_features(fold_in, self.liked_threshold, self.disliked_threshold)

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return np.asarray(self.features(fold_in) @ self.item_weights)

    def predict_ratings(self, fold_in: sp.spmatrix) -> None:
        return None


def select_on_validation(
    train_matrix: sp.spmatrix,
    candidates: Mapping[str, RecommenderFactory],
    *,
    validation_fraction: float = 0.2,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    metric: str = "ndcg@100",
) -> tuple[str, dict[str, float]]:
    """Best candidate on validation users drawn from ``train_matrix`` alone: (name, metric per candidate).

    Users with at least two ratings are split (seeded) into inner-train and validation users;
    every candidate factory is fitted on the other rows, and scored by
    :func:`recommender.ml.evaluation.score_holdout` on the validation users with
    ``holdout_fraction`` of each one's ratings hidden. Ties go to the first candidate.
    """
    if metric not in (*RANKING_METRICS, *TASTE_METRICS, COVERAGE_METRIC, *RATING_METRICS):
        raise ValueError(f"unknown metric {metric!r}")
    if not candidates:
        raise ValueError("no candidates to select from")
    matrix = sp.csr_matrix(train_matrix, dtype=np.float32)
    eligible_users = np.flatnonzero(ratings_per_user(matrix) >= 2)
    if len(eligible_users) < 2:
        raise ValueError("selecting on validation needs at least 2 users with 2 or more ratings")
    _, validation_users = split_users(eligible_users, validation_fraction, seed)
    inner_train_users = np.setdiff1d(np.arange(matrix.shape[0]), validation_users)
    fold_in, held_out = split_ratings_per_user(matrix[validation_users], holdout_fraction, seed)
    threshold, bounds = relevance_threshold(matrix), rating_scale(matrix)
    scores = {}
    for name, factory in candidates.items():
        metrics = score_holdout(factory(matrix[inner_train_users]), fold_in, held_out, threshold, rating_bounds=bounds)
        if metric not in metrics:
            raise ValueError(f"{name} does not report {metric}")
        scores[name] = metrics[metric]
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(scores, key=lambda name: sign * scores[name])
    return best, scores


class Tuned:
    """Picks one of ``candidates`` with :func:`select_on_validation` on the training matrix, then refits it on all of it.

    ``selected`` names the winner and ``validation_scores`` holds every candidate's validation
    metric; :func:`recommender.ml.evaluation.evaluate` lists both per fold. A single
    candidate is fitted directly, without validation.
    """

    def __init__(
        self,
        candidates: Mapping[str, RecommenderFactory],
        *,
        validation_fraction: float = 0.2,
        holdout_fraction: float = 0.2,
        seed: int = 0,
        metric: str = "ndcg@100",
    ) -> None:
        if not candidates:
            raise ValueError("no candidates to select from")
        self.candidates = dict(candidates)
        self.options = {
            "validation_fraction": validation_fraction,
            "holdout_fraction": holdout_fraction,
            "seed": seed,
            "metric": metric,
        }
        self.selected: str | None = None
        self.validation_scores: dict[str, float] = {}
        self.model: Recommender | None = None

    def fit(self, matrix: sp.spmatrix) -> Tuned:
        if len(self.candidates) == 1:
            self.selected, self.validation_scores = next(iter(self.candidates)), {}
        else:
            self.selected, self.validation_scores = select_on_validation(matrix, self.candidates, **self.options)
        self.model = self.candidates[self.selected](matrix)
        return self

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        return self.model.rank_scores(fold_in)

    def predict_ratings(self, fold_in: sp.spmatrix) -> np.ndarray | None:
        return self.model.predict_ratings(fold_in)


def tuned_factory(candidates: Mapping[str, RecommenderFactory], **options: Any) -> RecommenderFactory:
    """``fit(train_matrix) -> Tuned`` for evaluate(): each fold selects on its own training users."""
    return lambda matrix: Tuned(candidates, **options).fit(matrix)


def l2_candidates(build: Callable[[float], Any], grid: Sequence[float] = EASE_L2_GRID) -> dict[str, RecommenderFactory]:
    """{"l2=200": factory, ...}: ``build(l2)`` makes an unfitted model, the factory fits it."""
    return {f"l2={l2:g}": (lambda matrix, l2=l2: build(l2).fit(matrix)) for l2 in grid}


BASELINE_NAMES = ("popularity", "bias", "ease", "ease-liked", "ease-value-aware")


def baseline_factories(
    names: Sequence[str] = BASELINE_NAMES,
    *,
    l2_grid: Sequence[float] = EASE_L2_GRID,
    fixed_l2: float | None = None,
    seed: int = 0,
) -> dict[str, RecommenderFactory]:
    """The evaluation's baselines by name; the EASE variants tune l2 on validation users unless ``fixed_l2``."""
    builders: dict[str, Callable[[float], Any]] = {
        "ease": lambda l2: EASE(l2),
        "ease-liked": lambda l2: EASE(l2, input="liked"),
        "ease-value-aware": lambda l2: ValueAwareEASE(l2),
    }
    factories: dict[str, RecommenderFactory] = {}
    for name in names:
        if name == "popularity":
            factories[name] = lambda matrix: PopularityRecommender().fit(matrix)
        elif name == "bias":
            factories[name] = lambda matrix: BiasRatingModel(PRODUCT_ITEM_DAMPING, PRODUCT_USER_DAMPING).fit(matrix)
        elif name in builders:
            grid = (fixed_l2,) if fixed_l2 is not None else tuple(l2_grid)
            factories[name] = tuned_factory(l2_candidates(builders[name], grid), seed=seed)
        else:
            raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINE_NAMES)}")
    return factories

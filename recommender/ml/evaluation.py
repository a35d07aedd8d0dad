"""Offline evaluation of recommenders on a user x movie star-rating matrix.

(Over 400 lines on purpose: the whole protocol, from the folds to every metric and its pooling, in one module, so
that what a reported figure means can be checked in one place.)

Protocol (:func:`evaluate`), strong generalisation as in Liang et al. 2018:

1. Users with at least two ratings are shuffled (``seed``) and cut into ``n_folds`` folds
   (default 5). Each fold is held out once; every model is trained on the other folds' users
   only, on the same folds.
2. For each held-out user a random 80% of the ratings (``1 - holdout_fraction``) is folded
   in (given to the model as the user's history) and 20% is hidden.
3. Hidden ratings >= 4 stars (>= 3.5 when the data has half stars) are relevant. The model
   ranks every movie the user did not rate in the fold-in part; hidden low ratings stay in
   the candidates and count as misses.
4. Ranking metrics, averaged over held-out users with at least one relevant hidden movie:
   Precision@5, Recall@5 (hits / #relevant), F1@5 (per user, then averaged), Recall@20
   normalised by min(20, #relevant) (Liang et al.), NDCG@10 and NDCG@100 (binary gains,
   ideal DCG over min(k, #relevant) hits). Catalogue coverage@10: share of all movies that
   appear in at least one held-out user's top 10, per fold.
5. Rating metrics on all hidden ratings, for models that predict stars: RMSE and MAE.
6. Taste metrics, for every model: does the list listen to what the stars say?
   flip@10 is the mean Jaccard overlap of a user's top 10 with the top 10 for the same
   fold-in with every rating mirrored (r -> min + max - r, the bounds of the whole matrix):
   1.0 means 1-star and 5-star ratings pull the same movies up. disliked@20 is the share of
   hidden ratings in the top 20 that are rated ``disliked_threshold`` (2) stars or less,
   pooled as total disliked hits / total hits (0 when nothing hidden is recommended).

Figures are pooled over all held-out users (each user is held out exactly once); the
per-fold values and their standard deviation are reported too.

:func:`evaluate_rating_splits` adds RMSE/MAE on fixed (train, test) splits such as
MovieLens 100K's u1..u5: train on the base part, predict each test rating from the user's
base ratings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from recommender.ml.data import (
    RATING_MAX,
    RATING_MIN,
    observed_mask,
    ratings_per_user,
    relevance_threshold,
    split_ratings_per_user,
)
from recommender.ml.inference import exclude_rated, top_n_indices


class Recommender(Protocol):
    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray: ...

    def predict_ratings(self, fold_in: sp.csr_matrix) -> np.ndarray | None: ...


RecommenderFactory = Callable[[sp.csr_matrix], Recommender]

RANKING_METRICS = ("precision@5", "recall@5", "f1@5", "recall@20", "ndcg@10", "ndcg@100")
TASTE_METRICS = ("flip@10", "disliked@20")
RATING_METRICS = ("rmse", "mae")
COVERAGE_METRIC = "coverage@10"
LONGEST_LIST = 100
FLIP_DEPTH = 10
DISLIKED_DEPTH = 20
DISLIKED_THRESHOLD = 2.0
# Per-user counts behind disliked@20: summed, not averaged, so users with many hits weigh more.
_HIDDEN_HITS = "hidden_hits@20"
_DISLIKED_HITS = "disliked_hits@20"


def hits_matrix(top_items: np.ndarray, relevant: sp.spmatrix) -> np.ndarray:
    """Boolean (n_users x list length): is the movie at each rank relevant to that user?"""
    is_relevant = sp.csr_matrix(relevant).toarray() > 0
    return np.take_along_axis(is_relevant, top_items, axis=1)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1)


def recall_at_k_capped(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall normalised by min(k, #relevant), so 1.0 is reachable (Liang et al. 2018)."""
    return hits[:, :k].sum(axis=1) / np.maximum(np.minimum(k, n_relevant), 1)


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    precision = precision_at_k(hits, k)
    recall = recall_at_k(hits, n_relevant, k)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_discounts = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = ideal_discounts[np.minimum(n_relevant, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def catalogue_coverage(top_items: np.ndarray, n_items: int, k: int = 10) -> float:
    return len(np.unique(top_items[:, :k])) / n_items


def per_user_ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "precision@5": precision_at_k(hits, 5),
        "recall@5": recall_at_k(hits, n_relevant, 5),
        "f1@5": f1_at_k(hits, n_relevant, 5),
        "recall@20": recall_at_k_capped(hits, n_relevant, 20),
        "ndcg@10": ndcg_at_k(hits, n_relevant, 10),
        "ndcg@100": ndcg_at_k(hits, n_relevant, 100),
    }


def rating_scale(*matrices: sp.spmatrix) -> tuple[float, float]:
    """Lowest and highest stored rating over the matrices: the mirror for flip@10 swaps them."""
    data = np.concatenate([sp.csr_matrix(matrix).data for matrix in matrices])
    if not len(data):
        raise ValueError("rating bounds need at least one rating")
    return float(data.min()), float(data.max())


def mirror_ratings(ratings: sp.spmatrix, bounds: tuple[float, float]) -> sp.csr_matrix:
    """Same movies rated, every rating r replaced by low + high - r (5 stars become 1 and back)."""
    mirrored = sp.csr_matrix(ratings, copy=True)
    mirrored.data = (bounds[0] + bounds[1] - mirrored.data).astype(mirrored.dtype)
    return mirrored


def jaccard_overlap(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row |A ∩ B| / |A ∪ B| of two lists of distinct movie indices."""
    shared = (first[:, :, None] == second[:, None, :]).any(axis=2).sum(axis=1)
    union = first.shape[1] + second.shape[1] - shared
    return shared / np.maximum(union, 1)


def hidden_hits(
    top_items: np.ndarray, held_out: sp.spmatrix, disliked_threshold: float = DISLIKED_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Per user: how many hidden ratings the list contains, and how many of them are disliked."""
    held_out = sp.csr_matrix(held_out)
    values = np.take_along_axis(held_out.toarray(), top_items, axis=1)
    # Hidden is read from the pattern, as everywhere: a stored value never means "not rated".
    present = np.take_along_axis(observed_mask(held_out).toarray() > 0, top_items, axis=1)
    return present.sum(axis=1), (present & (values <= disliked_threshold)).sum(axis=1)


def rating_errors(predictions: np.ndarray, truth: sp.spmatrix) -> np.ndarray:
    """Predicted minus true stars at every explicit entry of ``truth``."""
    truth = sp.csr_matrix(truth)
    rows = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr))
    return np.asarray(predictions)[rows, truth.indices] - truth.data


def rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(errors)))) if len(errors) else float("nan")


def mae(errors: np.ndarray) -> float:
    return float(np.mean(np.abs(errors))) if len(errors) else float("nan")


class _FoldScores:
    """Accumulates per-user values and rating errors for one model on one fold."""

    def __init__(self) -> None:
        self.per_user: dict[str, list[np.ndarray]] = {
            name: [] for name in (*RANKING_METRICS, "flip@10", _HIDDEN_HITS, _DISLIKED_HITS)
        }
        self.errors: list[np.ndarray] = []
        self.top_items: list[np.ndarray] = []

    def add(
        self,
        top_items: np.ndarray,
        relevant: sp.csr_matrix,
        errors: np.ndarray | None,
        flip: np.ndarray,
        hits_and_dislikes: tuple[np.ndarray, np.ndarray],
    ) -> None:
        n_relevant = np.diff(relevant.indptr)
        with_relevant = n_relevant > 0
        self.top_items.append(top_items[:, :10])
        metrics = per_user_ranking_metrics(hits_matrix(top_items, relevant)[with_relevant], n_relevant[with_relevant])
        for name, values in metrics.items():
            self.per_user[name].append(values)
        self.per_user["flip@10"].append(flip)
        self.per_user[_HIDDEN_HITS].append(hits_and_dislikes[0])
        self.per_user[_DISLIKED_HITS].append(hits_and_dislikes[1])
        if errors is not None:
            self.errors.append(errors)

    def concatenated(self) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
        per_user = {name: np.concatenate(parts) for name, parts in self.per_user.items()}
        errors = np.concatenate(self.errors) if self.errors else None
        return per_user, errors, np.concatenate(self.top_items)


def _pooled_metrics(per_user: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Ranking and taste metrics from per-user values (one fold, or all folds concatenated)."""
    metrics = {name: float(per_user[name].mean()) if len(per_user[name]) else 0.0 for name in RANKING_METRICS}
    metrics["flip@10"] = float(per_user["flip@10"].mean()) if len(per_user["flip@10"]) else 0.0
    n_hits = int(per_user[_HIDDEN_HITS].sum())
    metrics["disliked@20"] = float(per_user[_DISLIKED_HITS].sum()) / n_hits if n_hits else 0.0
    return metrics


def _summaries(values_per_fold: list[dict[str, float]], pooled: dict[str, float]) -> dict[str, Any]:
    names = pooled.keys()
    return {
        "metrics": pooled,
        "std_over_folds": {name: float(np.std([fold[name] for fold in values_per_fold])) for name in names},
        "per_fold": values_per_fold,
    }


def user_folds(matrix: sp.csr_matrix, n_folds: int, seed: int) -> list[np.ndarray]:
    """The protocol's folds: users with at least two ratings, shuffled with ``seed``, cut into ``n_folds``."""
    eligible_users = np.flatnonzero(ratings_per_user(matrix) >= 2)
    return np.array_split(np.random.default_rng(seed).permutation(eligible_users), n_folds)


def evaluate(
    matrix: sp.spmatrix,
    recommenders: Mapping[str, RecommenderFactory],
    n_folds: int = 5,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    threshold: float | None = None,
    batch_size: int = 1024,
    log: Callable[[str], None] | None = None,
    max_folds: int | None = None,
    rating_bounds: tuple[float, float] | None = None,
    disliked_threshold: float = DISLIKED_THRESHOLD,
) -> dict[str, Any]:
    """Cross-validate every recommender on the same held-out-user folds (see module docstring).

    ``max_folds`` runs only the first folds (quick screening); the folds themselves do not change.
    ``rating_bounds`` (lowest, highest star) defaults to the whole matrix's. A model that
    records what it chose on its own validation users (``selected``, ``validation_scores``, as
    :class:`recommender.ml.baselines.Tuned` does) gets that choice listed per fold.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    threshold = relevance_threshold(matrix) if threshold is None else threshold
    bounds = rating_scale(matrix) if rating_bounds is None else tuple(map(float, rating_bounds))
    folds = user_folds(matrix, n_folds, seed)
    n_items = matrix.shape[1]

    per_fold: dict[str, list[dict[str, float]]] = {name: [] for name in recommenders}
    pooled_users: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in recommenders}
    pooled_errors: dict[str, list[np.ndarray]] = {name: [] for name in recommenders}
    fit_seconds: dict[str, list[float]] = {name: [] for name in recommenders}
    selections: dict[str, list[Any]] = {name: [] for name in recommenders}

    for fold_index, test_users in enumerate(folds[:max_folds]):
        train_users = np.setdiff1d(np.arange(matrix.shape[0]), np.sort(test_users))
        train_matrix = matrix[train_users]
        fold_in, held_out = split_ratings_per_user(matrix[np.sort(test_users)], holdout_fraction, seed + fold_index)
        relevant = held_out.multiply(held_out >= threshold).tocsr()
        relevant.eliminate_zeros()
        for name, factory in recommenders.items():
            started = time.perf_counter()
            model = factory(train_matrix)
            fit_seconds[name].append(time.perf_counter() - started)
            if hasattr(model, "selected"):
                selections[name].append(
                    {"selected": model.selected, "validation_scores": getattr(model, "validation_scores", None)}
                )
            fold_metrics, per_user, errors = _score_split(
                model, fold_in, held_out, relevant, batch_size, bounds, disliked_threshold
            )
            if errors is not None:
                pooled_errors[name].append(errors)
            per_fold[name].append(fold_metrics)
            pooled_users[name].append(per_user)
            if log:
                log(f"fold {fold_index + 1}/{n_folds} {name}: " + format_metrics(fold_metrics))

    models = {}
    for name in recommenders:
        pooled = _pooled_metrics(
            {metric: np.concatenate([fold[metric] for fold in pooled_users[name]]) for metric in pooled_users[name][0]}
        )
        pooled[COVERAGE_METRIC] = float(np.mean([fold[COVERAGE_METRIC] for fold in per_fold[name]]))
        if pooled_errors[name]:
            all_errors = np.concatenate(pooled_errors[name])
            pooled.update(rmse=rmse(all_errors), mae=mae(all_errors))
        models[name] = {**_summaries(per_fold[name], pooled), "fit_seconds": fit_seconds[name]}
        if selections[name]:
            models[name]["selected"] = [fold["selected"] for fold in selections[name]]
            models[name]["validation_scores"] = [fold["validation_scores"] for fold in selections[name]]
    return {
        "protocol": {
            "n_folds": n_folds,
            "folds_run": len(folds[:max_folds]),
            "holdout_fraction": holdout_fraction,
            "seed": seed,
            "relevance_threshold": threshold,
            "rating_bounds": list(bounds),
            "disliked_threshold": disliked_threshold,
            "n_users": int(matrix.shape[0]),
            "n_items": int(n_items),
            "n_ratings": int(matrix.nnz),
        },
        "models": models,
    }


def evaluate_rating_splits(
    splits: Sequence[tuple[sp.spmatrix, sp.spmatrix]],
    recommenders: Mapping[str, RecommenderFactory],
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """RMSE/MAE on fixed (train, test) splits: train on ``train``, predict ``test`` from each user's train row."""
    per_split: dict[str, list[dict[str, float]]] = {name: [] for name in recommenders}
    pooled_errors: dict[str, list[np.ndarray]] = {name: [] for name in recommenders}
    for split_index, (train_matrix, test_matrix) in enumerate(splits):
        train_matrix = sp.csr_matrix(train_matrix, dtype=np.float32)
        test_matrix = sp.csr_matrix(test_matrix, dtype=np.float32)
        test_users = np.flatnonzero(np.diff(test_matrix.indptr) > 0)
        for name, factory in recommenders.items():
            model = factory(train_matrix)
            predictions = model.predict_ratings(train_matrix[test_users])
            if predictions is None:
                raise ValueError(f"{name} does not predict ratings")
            errors = rating_errors(predictions, test_matrix[test_users])
            per_split[name].append({"rmse": rmse(errors), "mae": mae(errors)})
            pooled_errors[name].append(errors)
            if log:
                log(f"split {split_index + 1}/{len(splits)} {name}: " + format_metrics(per_split[name][-1]))
    models = {}
    for name in recommenders:
        splits_metrics = per_split[name]
        models[name] = {
            "metrics": {
                "rmse": float(np.mean([split["rmse"] for split in splits_metrics])),
                "mae": float(np.mean([split["mae"] for split in splits_metrics])),
            },
            "std_over_folds": {
                "rmse": float(np.std([split["rmse"] for split in splits_metrics])),
                "mae": float(np.std([split["mae"] for split in splits_metrics])),
            },
            "per_fold": splits_metrics,
        }
    return {"protocol": {"n_splits": len(splits)}, "models": models}


def format_metrics(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{name}={value:.4f}" for name, value in metrics.items())


def format_table(results: Mapping[str, Any]) -> str:
    """Markdown table: one row per model, one column per metric present (mean ± std over folds)."""
    models = results["models"]
    columns = [
        metric
        for metric in (*RANKING_METRICS, COVERAGE_METRIC, *TASTE_METRICS, *RATING_METRICS)
        if any(metric in model["metrics"] for model in models.values())
    ]
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, model in models.items():
        cells = []
        for metric in columns:
            if metric in model["metrics"]:
                cells.append(f"{model['metrics'][metric]:.4f} ± {model['std_over_folds'][metric]:.4f}")
            else:
                cells.append("–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _score_split(
    model: Recommender,
    fold_in: sp.csr_matrix,
    held_out: sp.csr_matrix,
    relevant: sp.csr_matrix,
    batch_size: int,
    bounds: tuple[float, float],
    disliked_threshold: float,
) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray | None]:
    """Metrics of one trained model on one split, plus the per-user values and rating errors for pooling."""
    scores = _FoldScores()
    for start in range(0, fold_in.shape[0], batch_size):
        batch = slice(start, start + batch_size)
        batch_fold_in = fold_in[batch]
        top_items = top_n_indices(exclude_rated(model.rank_scores(batch_fold_in), batch_fold_in), LONGEST_LIST)
        mirrored = mirror_ratings(batch_fold_in, bounds)
        # Same depth as the real list: with tied scores a shallower partition may pick other ties.
        mirrored_top = top_n_indices(exclude_rated(model.rank_scores(mirrored), mirrored), LONGEST_LIST)[:, :FLIP_DEPTH]
        predictions = model.predict_ratings(batch_fold_in)
        errors = None if predictions is None else rating_errors(predictions, held_out[batch])
        scores.add(
            top_items,
            relevant[batch],
            errors,
            flip=jaccard_overlap(top_items[:, :FLIP_DEPTH], mirrored_top),
            hits_and_dislikes=hidden_hits(top_items[:, :DISLIKED_DEPTH], held_out[batch], disliked_threshold),
        )
    per_user, errors, top_items = scores.concatenated()
    metrics = _pooled_metrics(per_user)
    metrics[COVERAGE_METRIC] = catalogue_coverage(top_items, fold_in.shape[1], 10)
    if errors is not None:
        metrics.update(rmse=rmse(errors), mae=mae(errors))
    return metrics, per_user, errors


def score_holdout(
    model: Recommender,
    fold_in: sp.spmatrix,
    held_out: sp.spmatrix,
    threshold: float,
    batch_size: int = 1024,
    rating_bounds: tuple[float, float] | None = None,
    disliked_threshold: float = DISLIKED_THRESHOLD,
) -> dict[str, float]:
    """Every metric of the protocol for one trained model on one (fold-in, held-out) split of some users.

    ``rating_bounds`` defaults to the lowest and highest rating in ``fold_in`` and ``held_out``
    together; pass the whole data's when these users may not span the scale.
    """
    fold_in, held_out = sp.csr_matrix(fold_in), sp.csr_matrix(held_out)
    if rating_bounds is None:
        # Without any rating there is nothing to mirror, so any bounds do.
        rating_bounds = rating_scale(fold_in, held_out) if fold_in.nnz + held_out.nnz else (RATING_MIN, RATING_MAX)
    relevant = held_out.multiply(held_out >= threshold).tocsr()
    relevant.eliminate_zeros()
    return _score_split(
        model, fold_in, held_out, relevant, batch_size, tuple(map(float, rating_bounds)), disliked_threshold
    )[0]

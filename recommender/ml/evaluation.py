"""Offline evaluation of recommenders on a user x movie star-rating matrix.

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

Figures are pooled over all held-out users (each user is held out exactly once); the
per-fold values and their standard deviation are reported too.

:func:`evaluate_rating_splits` adds RMSE/MAE on fixed (train, test) splits such as
MovieLens 100K's u1..u5: train on the base part, predict each test rating from the user's
base ratings.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import scipy.sparse as sp

from recommender.ml.data import ratings_per_user, relevance_threshold, split_ratings_per_user
from recommender.ml.inference import exclude_rated, top_n_indices


class Recommender(Protocol):
    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray: ...

    def predict_ratings(self, fold_in: sp.csr_matrix) -> np.ndarray | None: ...


RecommenderFactory = Callable[[sp.csr_matrix], Recommender]

RANKING_METRICS = ("precision@5", "recall@5", "f1@5", "recall@20", "ndcg@10", "ndcg@100")
RATING_METRICS = ("rmse", "mae")
COVERAGE_METRIC = "coverage@10"
LONGEST_LIST = 100


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
    """Accumulates per-user metrics and rating errors for one model on one fold."""

    def __init__(self) -> None:
        self.per_user: dict[str, list[np.ndarray]] = {name: [] for name in RANKING_METRICS}
        self.errors: list[np.ndarray] = []
        self.top_items: list[np.ndarray] = []

    def add(self, top_items: np.ndarray, relevant: sp.csr_matrix, errors: np.ndarray | None) -> None:
        n_relevant = np.diff(relevant.indptr)
        with_relevant = n_relevant > 0
        self.top_items.append(top_items[:, :10])
        metrics = per_user_ranking_metrics(hits_matrix(top_items, relevant)[with_relevant], n_relevant[with_relevant])
        for name, values in metrics.items():
            self.per_user[name].append(values)
        if errors is not None:
            self.errors.append(errors)

    def concatenated(self) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
        per_user = {name: np.concatenate(parts) for name, parts in self.per_user.items()}
        errors = np.concatenate(self.errors) if self.errors else None
        return per_user, errors, np.concatenate(self.top_items)


def _summaries(values_per_fold: list[dict[str, float]], pooled: dict[str, float]) -> dict[str, Any]:
    names = pooled.keys()
    return {
        "metrics": pooled,
        "std_over_folds": {name: float(np.std([fold[name] for fold in values_per_fold])) for name in names},
        "per_fold": values_per_fold,
    }


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
) -> dict[str, Any]:
    """Cross-validate every recommender on the same held-out-user folds (see module docstring).

    ``max_folds`` runs only the first folds (quick screening); the folds themselves do not change.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    threshold = relevance_threshold(matrix) if threshold is None else threshold
    eligible_users = np.flatnonzero(ratings_per_user(matrix) >= 2)
    folds = np.array_split(np.random.default_rng(seed).permutation(eligible_users), n_folds)
    n_items = matrix.shape[1]

    per_fold: dict[str, list[dict[str, float]]] = {name: [] for name in recommenders}
    pooled_users: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in recommenders}
    pooled_errors: dict[str, list[np.ndarray]] = {name: [] for name in recommenders}
    fit_seconds: dict[str, list[float]] = {name: [] for name in recommenders}

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
            fold_metrics, per_user, errors = _score_split(model, fold_in, held_out, relevant, batch_size)
            if errors is not None:
                pooled_errors[name].append(errors)
            per_fold[name].append(fold_metrics)
            pooled_users[name].append(per_user)
            if log:
                log(f"fold {fold_index + 1}/{n_folds} {name}: " + format_metrics(fold_metrics))

    models = {}
    for name in recommenders:
        pooled = {
            metric: float(np.concatenate([fold[metric] for fold in pooled_users[name]]).mean())
            for metric in RANKING_METRICS
        }
        pooled[COVERAGE_METRIC] = float(np.mean([fold[COVERAGE_METRIC] for fold in per_fold[name]]))
        if pooled_errors[name]:
            all_errors = np.concatenate(pooled_errors[name])
            pooled.update(rmse=rmse(all_errors), mae=mae(all_errors))
        models[name] = {**_summaries(per_fold[name], pooled), "fit_seconds": fit_seconds[name]}
    return {
        "protocol": {
            "n_folds": n_folds,
            "folds_run": len(folds[:max_folds]),
            "holdout_fraction": holdout_fraction,
            "seed": seed,
            "relevance_threshold": threshold,
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
        for metric in (*RANKING_METRICS, COVERAGE_METRIC, *RATING_METRICS)
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
    model: Recommender, fold_in: sp.csr_matrix, held_out: sp.csr_matrix, relevant: sp.csr_matrix, batch_size: int
) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray | None]:
    """Metrics of one trained model on one split, plus the per-user values and rating errors for pooling."""
    scores = _FoldScores()
    for start in range(0, fold_in.shape[0], batch_size):
        batch = slice(start, start + batch_size)
        ranking = exclude_rated(model.rank_scores(fold_in[batch]), fold_in[batch])
        predictions = model.predict_ratings(fold_in[batch])
        errors = None if predictions is None else rating_errors(predictions, held_out[batch])
        scores.add(top_n_indices(ranking, LONGEST_LIST), relevant[batch], errors)
    per_user, errors, top_items = scores.concatenated()
    metrics = {metric: float(values.mean()) if len(values) else 0.0 for metric, values in per_user.items()}
    metrics[COVERAGE_METRIC] = catalogue_coverage(top_items, fold_in.shape[1], 10)
    if errors is not None:
        metrics.update(rmse=rmse(errors), mae=mae(errors))
    return metrics, per_user, errors


def score_holdout(
    model: Recommender, fold_in: sp.spmatrix, held_out: sp.spmatrix, threshold: float, batch_size: int = 1024
) -> dict[str, float]:
    """Every metric of the protocol for one trained model on one (fold-in, held-out) split of some users."""
    fold_in, held_out = sp.csr_matrix(fold_in), sp.csr_matrix(held_out)
    relevant = held_out.multiply(held_out >= threshold).tocsr()
    relevant.eliminate_zeros()
    return _score_split(model, fold_in, held_out, relevant, batch_size)[0]

"""Choosing the VAE's configuration honestly: on validation users inside each fold's training users.

:func:`tune` runs the evaluation protocol's folds (:func:`recommender.ml.evaluation.user_folds`, the same
seed gives the same folds as ``evaluate_model``) but never looks at a fold's held-out users: each candidate
is trained on the fold's training users by :func:`recommender.ml.vae.train`, which splits validation users off
them, and is judged by the metrics it stores for those validation users (scored before any part of the model
saw their hidden ratings). Each fold picks its own winner by :func:`pick`; the result says how many folds
each candidate won. When one candidate wins every fold, the figures ``evaluate_model`` reports for it are
those of nested cross-validation: no reported fold took part in the choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.ml import vae
from recommender.ml.evaluation import user_folds

# What "listens to the stars" means for the product (issue targets on the held-out users): a candidate
# whose validation figures break a limit is only chosen when every candidate does.
TASTE_LIMITS = {"flip@10": 0.30, "disliked@20": 0.08}
SELECTION_METRIC = "ndcg@100"


def pick(validation: Mapping[str, Mapping[str, float]], limits: Mapping[str, float] = TASTE_LIMITS) -> str:
    """The candidate with the best validation NDCG@100 among those within the taste limits (all, if none is)."""
    if not validation:
        raise ValueError("no candidates to pick from")
    within = [
        name for name, metrics in validation.items() if all(metrics.get(k, np.inf) <= v for k, v in limits.items())
    ]
    pool = within or list(validation)
    return max(pool, key=lambda name: validation[name][SELECTION_METRIC])


def tune(
    matrix: sp.spmatrix,
    candidates: Mapping[str, vae.VAEConfig],
    *,
    n_folds: int = 5,
    seed: int = 0,
    max_folds: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Validation metrics of every candidate on every fold's training users, each fold's pick and the tally."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    folds = user_folds(matrix, n_folds, seed)[:max_folds]
    per_fold = []
    for fold_index, held_out_users in enumerate(folds):
        train_users = np.setdiff1d(np.arange(matrix.shape[0]), np.sort(held_out_users))
        validation: dict[str, dict[str, float]] = {}
        for name, config in candidates.items():
            started = time.perf_counter()
            result = vae.train(matrix[train_users], config)
            history = result.history
            validation[name] = {
                **result.validation_metrics,
                **{key: history[key][0] for key in _PART_SCORES if key in history},
                "epochs": float(result.epochs_run),
                "fit_seconds": time.perf_counter() - started,
            }
            if log:
                shown = {k: validation[name].get(k) for k in (SELECTION_METRIC, *TASTE_LIMITS, "rmse")}
                log(
                    f"fold {fold_index + 1}/{n_folds} {name}: "
                    + " ".join(f"{k}={v:.4f}" for k, v in shown.items() if v is not None)
                )
        per_fold.append({"validation": validation, "picked": pick(validation)})
    wins = {name: sum(fold["picked"] == name for fold in per_fold) for name in candidates}
    mean_metric = {
        name: float(np.mean([fold["validation"][name][SELECTION_METRIC] for fold in per_fold])) for name in candidates
    }
    chosen = max(candidates, key=lambda name: (wins[name], mean_metric[name]))
    return {
        "protocol": {
            "n_folds": n_folds,
            "folds_run": len(folds),
            "seed": seed,
            "selection": f"best validation {SELECTION_METRIC} within {TASTE_LIMITS}, per fold",
        },
        "configs": {name: config.to_dict() for name, config in candidates.items()},
        "per_fold": per_fold,
        "wins": wins,
        "mean_validation_" + SELECTION_METRIC: mean_metric,
        "chosen": chosen,
        "unanimous": wins[chosen] == len(folds),
    }


# The hybrid's parts, scored on the same validation users while training (vae._calibrate_item_item).
_PART_SCORES = (
    "val_ndcg@100_vae_alone",
    "val_ndcg@100_item_item_alone",
    "val_ndcg@100_hybrid",
    "item_item_l2",
    "item_item_scale",
)

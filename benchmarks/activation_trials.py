"""Does the activation decision keep good retrainings and refuse broken ones? Seeded trials on real ratings.

    python benchmarks/activation_trials.py [--data ML100K_FOLDER] [--trials 10] [--out results/activation-ml100k.json]

The decision under test is the product's (recommender.activation): audit users that no model trains on (the
product's rule: 10% of users by a hash of their id), a fixed fold-in / held-out split of their ratings, per-user
NDCG@100 of both models over the movies both know, paired; a candidate is refused when its mean per-user
difference is below -max(margin, 2 standard errors).

1. Noise: the "active" model of each trial is a seeded retraining on the same data (every rating but the newest
   1%). The spread of the mean paired difference between those models, pair by pair, is the retraining noise;
   the suggested margin is three times its standard deviation.
2. Trials: in each, the candidate is trained with another seed on the same data plus the newest 1% of the
   ratings (the new ratings since the active model) and must be activated; two broken candidates must be
   refused: one trained on shuffled ratings (each rating moved to a random movie) and one stopped after one
   epoch with no movie-to-movie path (the VAE part barely trained).
Decisions use the margin configured in the product (RETRAIN_ACTIVATION_MARGIN's default) and the suggested one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import machine
from benchmarks.ml.movielens import ML100K_DIR
from recommender.ml.audit import ColumnSubset, audit_split, audit_user_mask, paired_comparison, per_user_ndcg
from recommender.ml.data import rating_matrix, relevance_threshold

PRODUCT_MARGIN = 0.015  # RETRAIN_ACTIVATION_MARGIN's default (mynextmovie_site/settings/base.py)
AUDIT_SHARE, AUDIT_LIMIT = 0.1, 5000  # RECOMMENDER_AUDIT_SHARE / _MAX_USERS defaults
NEW_SHARE = 0.01


def load_ratings(folder: Path) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The users x movies matrix of u.data, the user ids (1-based, as in the database) and each rating's order by time."""
    import pandas as pd

    frame = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    users = frame["user"].to_numpy() - 1
    items = frame["item"].to_numpy() - 1
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    return (
        rating_matrix(users, items, frame["rating"].to_numpy(np.float32), shape),
        np.arange(1, shape[0] + 1),
        np.stack([users, items, frame["timestamp"].to_numpy()], axis=1),
    )


def without_newest(matrix: sp.csr_matrix, events: np.ndarray, share: float) -> sp.csr_matrix:
    """The matrix as it was before the newest `share` of the ratings."""
    newest = events[np.argsort(events[:, 2], kind="stable")[-max(1, int(len(events) * share)) :]]
    older = matrix.tolil(copy=True)
    older[newest[:, 0], newest[:, 1]] = 0
    older = older.tocsr()
    older.eliminate_zeros()
    return older


def shuffled(matrix: sp.csr_matrix, seed: int) -> sp.csr_matrix:
    """Each rating moved to a random movie (users keep their number of ratings and their stars)."""
    rng = np.random.default_rng(seed)
    coo = matrix.tocoo()
    columns = rng.integers(0, matrix.shape[1], size=coo.nnz)
    result = sp.csr_matrix((coo.data, (coo.row, columns)), shape=matrix.shape)
    result.sum_duplicates()
    result.data = np.clip(result.data, 0.5, 5.0)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ML100K_DIR, help="MovieLens 100K folder (default: MOVIELENS_PATH)")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--preset", default="default")
    parser.add_argument(
        "--overrides", default="{}", help="JSON hyperparameter overrides (the smoke test makes it tiny)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from recommender.ml import vae

    overrides = json.loads(args.overrides)
    matrix, user_ids, events = load_ratings(args.data)
    audit = audit_user_mask(user_ids, share=AUDIT_SHARE, limit=AUDIT_LIMIT)
    fold_in, held_out = audit_split(matrix[audit])
    threshold = relevance_threshold(matrix)
    usable = (np.diff(fold_in.indptr) > 0) & (np.diff((held_out >= threshold).tocsr().indptr) > 0)
    fold_in, held_out = fold_in[usable], held_out[usable]
    all_columns = np.arange(matrix.shape[1])
    training = matrix[~audit]
    older = without_newest(matrix, events[~audit[events[:, 0]]], NEW_SHARE)[~audit]

    def train_and_score(data: sp.csr_matrix, seed: int, **extra) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        result = vae.train(data, vae.preset(args.preset, **{**overrides, "seed": seed, **extra}))
        scores = per_user_ndcg(
            ColumnSubset(result.serving(), all_columns, matrix.shape[1]), fold_in, held_out, threshold
        )
        return scores, time.perf_counter() - started

    report: dict = {
        "machine": machine(),
        "preset": args.preset,
        "overrides": overrides,
        "trials": args.trials,
        "users": int(matrix.shape[0]),
        "movies": int(matrix.shape[1]),
        "ratings": int(matrix.nnz),
        "audit_users": int(audit.sum()),
        "audit_users_scored": int(fold_in.shape[0]),
        "new_ratings": int(training.nnz - older.nnz),
        "product_margin": PRODUCT_MARGIN,
    }
    actives, candidates, broken_shuffled, broken_one_epoch, seconds = [], [], [], [], []
    for trial in range(args.trials):
        active, took = train_and_score(older, seed=1000 + trial)
        actives.append(active)
        seconds.append(took)
        candidates.append(train_and_score(training, seed=2000 + trial)[0])
        broken_shuffled.append(train_and_score(shuffled(training, seed=trial), seed=3000 + trial)[0])
        broken_one_epoch.append(train_and_score(training, seed=4000 + trial, max_epochs=1, item_item=False)[0])
        print(
            f"trial {trial + 1}/{args.trials}: active {active.mean():.4f}, candidate {candidates[-1].mean():.4f}, "
            f"shuffled {broken_shuffled[-1].mean():.4f}, one epoch {broken_one_epoch[-1].mean():.4f} ({took:.0f} s a training)",
            flush=True,
        )

    noise = [float((a - b).mean()) for a, b in itertools.combinations(actives, 2)]
    suggested = float(np.ceil(3 * np.std(noise, ddof=1) / 0.005) * 0.005) if len(noise) > 1 else PRODUCT_MARGIN
    report["noise"] = {
        "pairs": len(noise),
        "mean_paired_difference_std": float(np.std(noise, ddof=1)) if len(noise) > 1 else None,
        "largest_abs_difference": float(np.max(np.abs(noise))) if noise else None,
        "suggested_margin": suggested,
    }
    report["seconds_per_training_median"] = float(np.median(seconds))
    for name, margin in (("product_margin", PRODUCT_MARGIN), ("suggested_margin", suggested)):
        decisions = {
            kind: [paired_comparison(c, a, margin=margin).to_dict() for c, a in zip(models, actives, strict=True)]
            for kind, models in (
                ("retrained_plus_1pct", candidates),
                ("shuffled", broken_shuffled),
                ("one_epoch", broken_one_epoch),
            )
        }
        report[name] = {
            "margin": margin,
            "activated": {kind: sum(d["accept"] for d in rows) for kind, rows in decisions.items()},
            "decisions": decisions,
        }
    summary = {name: report[name]["activated"] for name in ("product_margin", "suggested_margin")}
    print(json.dumps({"noise": report["noise"], "activated_of": args.trials, **summary}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()

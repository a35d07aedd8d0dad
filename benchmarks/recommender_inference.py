"""Recommendation latency in-process, after warm-up: p50/p95 over many calls.

    .venv/bin/python benchmarks/recommender_inference.py [--calls 500] [--json out.json]

1. The ML-100K model (default preset trained on the real MovieLens 100K, read from its folder): top-10 for a
   user with 100 ratings, NumPy forward pass only (what a web process runs per request).
2. Synthetic 10,000- and 60,000-movie models (same architecture, trained one epoch on random data: latency
   does not depend on the weights' values).
3. Training time of the default preset on the real ML-100K.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.ml import vae  # noqa: E402
from recommender.ml.data import rating_matrix  # noqa: E402

ML100K = Path(os.environ.get("MOVIELENS_PATH", ROOT.parent / "shared" / "datasets" / "ml-100k"))


def latency(recommender, n_items: int, calls: int, n_ratings: int = 100, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    users = [
        dict(zip(rng.choice(n_items, n_ratings, replace=False).tolist(), rng.choice(np.arange(1, 11) / 2, n_ratings).tolist()))
        for _ in range(20)
    ]
    for ratings in users[:5]:  # warm-up
        recommender.recommend(ratings, n=10)
    timings = []
    for call in range(calls):
        started = time.perf_counter()
        recommender.recommend(users[call % len(users)], n=10)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 3), "p95_ms": round(timings[int(0.95 * len(timings)) - 1], 3), "calls": calls}


def ml100k_matrix() -> sp.csr_matrix:
    import pandas as pd

    frame = pd.read_csv(ML100K / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    return rating_matrix(frame["user"].to_numpy() - 1, frame["item"].to_numpy() - 1, frame["rating"].to_numpy(), (943, 1682))


def synthetic_model(n_items: int, n_users: int = 300, per_user: int = 100):
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.zipf(1.3, n_users * per_user) % n_items
    matrix = rating_matrix(users, items, rng.choice(np.arange(1, 11) / 2, len(users)), (n_users, n_items))
    return vae.to_recommender(vae.train(matrix, vae.preset("default", max_epochs=1)).model)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    if (ML100K / "u.data").exists():
        started = time.perf_counter()
        trained = vae.train(ml100k_matrix(), vae.preset("default"))
        results["ml100k_training"] = {"seconds": round(time.perf_counter() - started, 1), "epochs": trained.epochs_run}
        results["ml100k_1682_movies"] = latency(vae.to_recommender(trained.model), 1682, args.calls)
    for n_items in (10_000, 60_000):
        results[f"synthetic_{n_items}_movies"] = latency(synthetic_model(n_items), n_items, args.calls)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Recommendation latency in-process (what a web process runs per request), by catalogue size.

    .venv/bin/python benchmarks/inference_scale.py [--movies 1682,10000,59047] [--calls 300]

For each size, the shipped default architecture (600-d latent, ranking and rating heads, and the movie-to-movie
path where the default switches it on: up to 20,000 movies) with random weights of the real shapes (latency does
not depend on the values): top 10 for a user with 100 ratings, after warm-up, p50/p95/p99 over `--calls` calls,
each call a different user. Also the serving weights' size, what each web process holds in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import percentiles_ms
from benchmarks.ml.latency import random_weights
from recommender.ml.inference import VAERecommender

DEFAULT_SIZES = (1_682, 10_000, 59_047)  # ML-100K, a mid-size catalogue, ML-25M's rated movies
# The default preset's item_item_max_items, written out: importing the preset would load TensorFlow, which web
# processes never do (tests/benchmarks check the two agree).
DEFAULT_ITEM_ITEM_MAX_MOVIES = 20_000


def latency(n_movies: int, *, calls: int, ratings_per_user: int = 100, seed: int = 0) -> dict:
    with_path = n_movies <= DEFAULT_ITEM_ITEM_MAX_MOVIES
    weights = random_weights(n_movies, (), 600, item_item=with_path)
    recommender = VAERecommender(weights)
    rng = np.random.default_rng(seed)
    users = [
        {
            int(m): float(s)
            for m, s in zip(
                rng.choice(n_movies, min(ratings_per_user, n_movies), replace=False),
                rng.choice(np.arange(1, 11) / 2, ratings_per_user),
            )
        }
        for _ in range(50)
    ]
    for ratings in users[:10]:
        recommender.recommend(ratings, n=10)
    timings = []
    for call in range(calls):
        started = time.perf_counter()
        recommender.recommend(users[call % len(users)], n=10)
        timings.append((time.perf_counter() - started) * 1000)
    weight_mb = sum(v.nbytes for v in weights.values() if isinstance(v, np.ndarray)) / 2**20
    return {
        "movies": n_movies,
        "movie_to_movie_path": with_path,
        "calls": calls,
        **percentiles_ms(timings),
        "weights_mb": round(weight_mb, 1),
    }


def run(*, sizes=DEFAULT_SIZES, calls: int = 300, log=print) -> dict:
    results = {}
    for n_movies in sizes:
        results[str(n_movies)] = figures = latency(n_movies, calls=calls)
        log(f"  {n_movies:,} movies: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.movies.split(",") if part]
    print(json.dumps(run(sizes=sizes, calls=args.calls, log=lambda m: print(m, file=sys.stderr)), indent=2))


if __name__ == "__main__":
    main()

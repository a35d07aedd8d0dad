"""A full default training at ML-25M's size, in one command, on whatever device TensorFlow finds (issue 15, item 4).

    .venv/bin/python benchmarks/gpu_training.py [--scale 1.0] [--max-epochs N] [--movies 59047] [--json OUT]

Meant for a GPU host (install `tensorflow[and-cuda]` in place of `tensorflow-cpu`, as the README's GPU worker
section says); it runs on a CPU too, where `--scale 0.05 --max-epochs 2` is a quick check. It builds the seeded
ML-25M-shaped ratings matrix of benchmarks/sparse_training.py in memory (no database, nothing downloaded) and
trains the shipped `default` preset exactly as `train_vae` does (`vae.train`: the ranking phase with early
stopping, the rating phase, validation scoring, the movie-to-movie refit). Reported: the device, each phase's
seconds per epoch (median), the epochs run, the whole training's seconds, the process's peak resident memory and,
on a GPU, TensorFlow's peak GPU memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import print_results
from benchmarks.sparse_training import synthetic_matrix
from benchmarks.synthetic_movielens import ML25M_MOVIES


def device_description(tf) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU only (no GPU visible to TensorFlow)"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"{len(gpus)} GPU(s): {details.get('device_name', gpus[0].name)}"


def run(*, scale: float, max_epochs: int | None, movies: int = ML25M_MOVIES, log=print) -> dict:
    from recommender.ml import vae
    from recommender.ml.vae import tf

    started = time.perf_counter()
    matrix = synthetic_matrix(scale, n_movies=movies)
    generate_seconds = time.perf_counter() - started
    log(f"matrix: {matrix.shape[0]:,} users x {matrix.shape[1]:,} movies, {matrix.nnz:,} ratings")
    overrides = {"max_epochs": max_epochs} if max_epochs else {}
    config = vae.preset("default", **overrides)
    device = device_description(tf)
    log(f"training the default preset on {device}")
    started = time.perf_counter()
    result = vae.train(matrix, config=config)
    train_seconds = time.perf_counter() - started
    history = result.history
    ranking = history.get("epoch_seconds", [])
    rating = history.get("rating_epoch_seconds", [])
    summary = {
        "device": device,
        "scale": scale,
        "users": matrix.shape[0],
        "movies": matrix.shape[1],
        "ratings": int(matrix.nnz),
        "generate_seconds": round(generate_seconds, 1),
        "ranking_epochs": len(ranking),
        "ranking_seconds_per_epoch_median": round(statistics.median(ranking), 1) if ranking else None,
        "rating_epochs": len(rating),
        "rating_seconds_per_epoch_median": round(statistics.median(rating), 1) if rating else None,
        "training_seconds": round(train_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "validation": {k: round(float(v), 4) for k, v in result.validation_metrics.items() if "@" in k},
    }
    if tf.config.list_physical_devices("GPU"):
        summary["peak_gpu_memory_mb"] = round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="users and ratings times this (default: ML-25M)")
    parser.add_argument("--max-epochs", type=int, help="cap the ranking phase's epochs (quick checks)")
    parser.add_argument(
        "--movies", type=int, default=ML25M_MOVIES, help="catalogue width (default: ML-25M's; smaller for smoke tests)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    args = parser.parse_args()
    summary = run(
        scale=args.scale,
        max_epochs=args.max_epochs,
        movies=args.movies,
        log=lambda *a: print(*a, file=sys.stderr, flush=True),
    )
    print_results(summary, args.json)


if __name__ == "__main__":
    main()

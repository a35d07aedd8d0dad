"""One training epoch at ML-25M's shape, the dense input path against the sparse one (issue 15, item 1).

    nice .venv/bin/python benchmarks/sparse_training.py [--scale 1.0] [--paths dense,sparse-keras-adam,sparse]
        [--json out.json]

Builds a seeded ratings matrix in memory with ML-25M's shape (162,541 users x 59,047 movies, 25,000,095
ratings at ``--scale 1``; ``--scale`` shrinks users and ratings, never the catalogue, so the input stays
59,047 wide) with the popularity skew and star shares of ``synthetic_movielens``. Then, for each path in a
child process of its own (so that each peak resident memory is that path's alone), prepares the data as
``vae.train`` does with the default preset and times one epoch of its training phase (the ranking phase:
``model.fit`` over the training users and, for ``RowSparseAdam``, the catch-up it pays once an epoch; no
validation pass). Reports seconds per epoch, the ratio and peaks.

Paths: ``dense`` is the input of the code before issue 15 (a densified input batch, Keras' Adam; the batches come
through the same tf.data pipeline as the other paths'); ``sparse-keras-adam`` the
sparse input with Keras' Adam (which rewrites every row of the input kernels each step); ``sparse`` the product
(sparse input, ``RowSparseAdam``: only the rows a batch touched, fused Adam for the dense weights).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic_movielens import (
    CHUNK_USERS,
    ML25M_MOVIES,
    ML25M_RATINGS,
    ML25M_USERS,
    movie_popularity,
    sample_block,
    star_quantiles,
    user_activity,
)

RESULT_PREFIX = "SPARSE-TRAINING-RESULT "


def synthetic_matrix(scale: float = 1.0, seed: int = 0, n_movies: int = ML25M_MOVIES) -> sp.csr_matrix:
    """Users x movies stars (0.5..5), ML-25M's shape times ``scale`` in users and ratings (``n_movies`` wide)."""
    rng = np.random.default_rng(seed)
    n_users, n_ratings = round(ML25M_USERS * scale), round(ML25M_RATINGS * scale)
    popularity = movie_popularity(rng, n_movies)
    cdf = np.cumsum(popularity)
    quality = rng.normal(0.0, 0.55, size=n_movies) + 0.25 * np.log(popularity * n_movies)
    counts = user_activity(rng, n_users, n_ratings, n_movies)
    leniency = rng.normal(0.0, 0.45, size=n_users)
    users_parts, movies_parts, stars_parts, thresholds = [], [], [], None
    for start in range(0, n_users, CHUNK_USERS):
        block_counts = np.zeros_like(counts)
        block_counts[start : start + CHUNK_USERS] = counts[start : start + CHUNK_USERS]
        users, movies = sample_block(rng, block_counts, cdf)
        latent = quality[movies] + leniency[users] + rng.normal(0.0, 0.8, size=len(users))
        if thresholds is None:
            thresholds = np.quantile(latent, star_quantiles())
        users_parts.append(users.astype(np.int32))
        movies_parts.append(movies.astype(np.int32))
        stars_parts.append(((np.searchsorted(thresholds, latent) + 1) / 2.0).astype(np.float32))
    users, movies, stars = (np.concatenate(parts) for parts in (users_parts, movies_parts, stars_parts))
    return sp.csr_matrix((stars, (users, movies)), shape=(n_users, n_movies))


def _child(path: str, matrix_file: str) -> None:
    """One epoch of the training phase on one path; prints its figures as JSON."""
    from recommender.ml import vae
    from recommender.ml.vae import training
    from recommender.ml.vae.model import TrainingPhase
    from recommender.ml.vae.optimizer import RowSparseAdam

    matrix = sp.load_npz(matrix_file).tocsr()
    config = vae.preset("default", sparse_input=path != "dense", max_epochs=1)
    prepared = training._prepare_data(matrix, config)
    model = training._build_model(config, prepared)
    model.phase = TrainingPhase.RANKING if config.two_phase else TrainingPhase.JOINT
    optimizer = RowSparseAdam if path == "sparse" else vae.keras.optimizers.Adam
    model.compile(optimizer=optimizer(learning_rate=config.learning_rate))
    started = time.perf_counter()
    history = model.fit(prepared.train_batches.as_tf_dataset(), epochs=1, verbose=0)
    if hasattr(model.optimizer, "catch_up"):
        model.optimizer.catch_up()  # what training's OptimizerCatchUp pays once an epoch, before the validation
    seconds = time.perf_counter() - started
    result = {
        "path": path,
        "seconds_per_epoch": round(seconds, 1),
        "steps": len(prepared.train_batches),
        "ranking_loss": round(float(history.history["ranking_loss"][-1]), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--paths", default="dense,sparse-keras-adam,sparse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--matrix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.matrix)
        return {}
    started = time.perf_counter()
    matrix = synthetic_matrix(args.scale, args.seed)
    summary = {
        "scale": args.scale,
        "users": matrix.shape[0],
        "movies": matrix.shape[1],
        "ratings": int(matrix.nnz),
        "generate_seconds": round(time.perf_counter() - started, 1),
        "paths": {},
    }
    print(
        f"matrix: {summary['users']:,} users x {summary['movies']:,} movies, {summary['ratings']:,} ratings", flush=True
    )
    with tempfile.TemporaryDirectory() as folder:
        matrix_file = str(Path(folder) / "ratings.npz")
        sp.save_npz(matrix_file, matrix, compressed=False)
        del matrix
        for path in args.paths.split(","):
            command = [sys.executable, __file__, "--child", path, "--matrix", matrix_file]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            line = next(line for line in output.splitlines() if line.startswith(RESULT_PREFIX))
            summary["paths"][path] = json.loads(line.removeprefix(RESULT_PREFIX))
            print(json.dumps(summary["paths"][path]), flush=True)
    if {"dense", "sparse"} <= summary["paths"].keys():
        dense, sparse_ = summary["paths"]["dense"], summary["paths"]["sparse"]
        summary["sparse_over_dense_time"] = round(sparse_["seconds_per_epoch"] / dense["seconds_per_epoch"], 3)
        summary["speed-up"] = round(dense["seconds_per_epoch"] / sparse_["seconds_per_epoch"], 2)
    print(json.dumps(summary, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()

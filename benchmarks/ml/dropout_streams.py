"""How far flip@10 and NDCG@100 move when only a preset's input-dropout random stream changes (issue 15).

    .venv/bin/python benchmarks/ml/dropout_streams.py [--data ML100K_FOLDER] [--presets default,default-dense-input]
        [--streams 0,1,2] [--folds 5] [--max-folds N] [--overrides JSON] [--json OUT]

The project's evaluation (``recommender.ml.evaluation.evaluate``: held-out-user folds, fold seed 0, the same folds as
``manage.py evaluate_model``) on MovieLens' ``u.data`` (--data, else MOVIELENS_PATH), each preset trained once per
stream. Stream 0 is the preset as it is; stream k re-seeds only the generator of its input-dropout masks
(``seed + 1 + 1000 k``), so the initial weights, the batch order and the validation users stay the same. The spread
of a preset's figures over streams is the noise that a comparison of two presets on one run carries: the sparse and
the dense input draw their masks from different streams (one number per rating against one per cell), so one run
of each differs by at least this much.

Prints, per preset and stream, flip@10 and NDCG@100 per fold and their means, then per preset the mean and the
range over streams (also as JSON with --json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STREAM_SEED_STEP = 1000


@contextlib.contextmanager
def dropout_stream(stream: int) -> Iterator[None]:
    """Models built inside draw their input-dropout masks from stream ``stream`` (0: unchanged)."""
    import keras

    from recommender.ml.vae.model import RecommenderVAE

    original = RecommenderVAE.__init__

    def reseeded(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.dropout_seed = keras.random.SeedGenerator(self.vae_config.seed + 1 + STREAM_SEED_STEP * stream)

    RecommenderVAE.__init__ = reseeded if stream else original
    try:
        yield
    finally:
        RecommenderVAE.__init__ = original


def streamed_factory(config, stream: int):
    from recommender.ml.vae.export import recommender_factory

    fit = recommender_factory(config)

    def fit_on_stream(train_matrix):
        with dropout_stream(stream):
            return fit(train_matrix)

    return fit_on_stream


def run(data: Path, presets: list[str], streams: list[int], folds: int, max_folds: int | None, overrides: dict):
    from benchmarks.activation_trials import load_ratings
    from recommender.ml import evaluation
    from recommender.ml.vae.config import preset

    matrix, _, _ = load_ratings(data)  # u.data, shaped by its largest ids
    factories = {
        f"{name}/stream{stream}": streamed_factory(preset(name, **overrides), stream)
        for name in presets
        for stream in streams
    }
    started = time.perf_counter()
    results = evaluation.evaluate(
        matrix,
        factories,
        n_folds=folds,
        seed=0,
        max_folds=max_folds,
        log=lambda line: print(f"{time.perf_counter() - started:7.0f} s  {line}", flush=True),
    )
    runs = {}
    for label, model in results["models"].items():
        per_fold = model["per_fold"]
        runs[label] = {
            "flip@10": [round(fold["flip@10"], 4) for fold in per_fold],
            "ndcg@100": [round(fold["ndcg@100"], 4) for fold in per_fold],
            "mean_flip@10": float(np.mean([fold["flip@10"] for fold in per_fold])),
            "mean_ndcg@100": float(np.mean([fold["ndcg@100"] for fold in per_fold])),
        }
    summary = {}
    for name in presets:
        flips = [runs[f"{name}/stream{stream}"]["mean_flip@10"] for stream in streams]
        ndcgs = [runs[f"{name}/stream{stream}"]["mean_ndcg@100"] for stream in streams]
        summary[name] = {
            "mean_flip@10": float(np.mean(flips)),
            "flip@10_range": [float(min(flips)), float(max(flips))],
            "mean_ndcg@100": float(np.mean(ndcgs)),
            "ndcg@100_range": [float(min(ndcgs)), float(max(ndcgs))],
        }
    return {
        "data": {"users": matrix.shape[0], "movies": matrix.shape[1], "ratings": int(matrix.nnz)},
        "streams": streams,
        "folds": folds,
        "max_folds": max_folds,
        "overrides": overrides,
        "runs": runs,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("MOVIELENS_PATH")
    parser.add_argument("--data", type=Path, default=Path(default_data) if default_data else None)
    parser.add_argument("--presets", default="default,default-dense-input")
    parser.add_argument("--streams", default="0,1,2", help="comma-separated stream numbers (0: the preset's own)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int)
    parser.add_argument("--overrides", default="{}", help="JSON of VAEConfig fields set on every preset")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args()
    if args.data is None or not (args.data / "u.data").is_file():
        parser.error("give --data (or MOVIELENS_PATH): a folder holding MovieLens 100K's u.data")
    streams = [int(stream) for stream in args.streams.split(",")]
    if any(stream < 0 for stream in streams) or len(set(streams)) != len(streams):
        parser.error("--streams: distinct numbers, 0 or more")
    presets = [name for name in args.presets.split(",") if name]
    results = run(args.data, presets, streams, args.folds, args.max_folds, json.loads(args.overrides))
    for label, figures in results["runs"].items():
        print(
            f"{label}: flip@10 {figures['flip@10']} mean {figures['mean_flip@10']:.4f}, NDCG@100 mean "
            f"{figures['mean_ndcg@100']:.4f}"
        )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

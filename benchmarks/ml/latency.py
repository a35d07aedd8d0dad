"""Serving latency of the NumPy forward pass + top-N for one user with 100 ratings.

    .venv/bin/python benchmarks/ml/latency.py

Weights are random (latency does not depend on their values) but shaped like the shipped
default architecture (no hidden layers, 600-d latent, ranking + rating heads) for ML-100K
(1,682 movies) and for a 60,000-movie catalogue, plus the 600-200 Mult-VAE with the optional
movie-to-movie path at ML-100K size.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.ml.inference import VAERecommender


def random_weights(
    n_items: int,
    encoder_units: tuple[int, ...],
    latent_dim: int,
    item_item: bool,
    bias_residual: bool = True,
    value_aware: bool = True,
    similar_items: int = 50,
) -> dict:
    """Weights of the default's shapes: with ``value_aware`` (the default since 2026-11-27) the encoder reads two
    channels per movie (rated, and +1 liked / -1 disliked) and the movie-to-movie path is 2 n_items x n_items."""
    rng = np.random.default_rng(0)
    n_inputs = 2 * n_items if value_aware else n_items
    widths = [n_inputs, *encoder_units, latent_dim, *reversed(encoder_units)]
    names = [f"encoder_dense_{i}" for i in range(len(encoder_units))] + ["z_mean"]
    names += [f"decoder_dense_{i}" for i in range(len(encoder_units))]
    weights = {}
    for name, fan_in, fan_out in zip(names, widths[:-1], widths[1:]):
        weights[f"{name}_kernel"] = rng.normal(0, 0.05, (fan_in, fan_out)).astype(np.float32)
        weights[f"{name}_bias"] = np.zeros(fan_out, np.float32)
    for head in ("ranking_logits", "rating"):
        weights[f"{head}_kernel"] = rng.normal(0, 0.05, (widths[-1], n_items)).astype(np.float32)
        weights[f"{head}_bias"] = np.zeros(n_items, np.float32)
    if item_item:
        weights["item_item_kernel"] = rng.normal(0, 0.01, (n_inputs, n_items)).astype(np.float32)
    if similar_items:
        weights["similar_items_neighbours"] = rng.integers(0, n_items, (n_items, similar_items)).astype(np.int32)
        weights["similar_items_scores"] = rng.random((n_items, similar_items)).astype(np.float32)
    if bias_residual:  # the default's rating head: bias baseline + residual
        weights["rating_global_mean"] = np.array(0.7, np.float32)
        weights["rating_item_bias"] = rng.normal(0, 0.1, n_items).astype(np.float32)
    weights["metadata"] = np.array(
        json.dumps(
            {
                "n_items": n_items,
                "input_mode": "implicit+signed" if value_aware else "implicit",
                "activation": "tanh",
                "leaky_relu_slope": 0.2,
                "n_encoder_layers": len(encoder_units),
                "n_decoder_layers": len(encoder_units),
                "rating_output": "linear",
                "normalization": "minmax",
                "rating_user_offset_damping": 10.0,
                "rating_mode": "bias_residual" if bias_residual else "offset",
                "item_item_input": "value_aware" if value_aware else "binary",
                "liked_threshold_stars": 4.0,
                "disliked_threshold_stars": 2.0,
            }
        )
    )
    return weights


def measure(recommender: VAERecommender, n_ratings: int = 100, repeats: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(1)
    timings = []
    for _ in range(repeats):
        items = rng.choice(recommender.n_items, n_ratings, replace=False)
        ratings = {int(item): float(rng.integers(1, 6)) for item in items}
        started = time.perf_counter()
        recommender.recommend(ratings, n=10)
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p95_ms": float(np.percentile(timings, 95))}


def main() -> None:
    cases = {
        # The default switches the movie-to-movie path on up to 20,000 movies, off above.
        "default, ML-100K size (1,682 movies, with movie-to-movie path)": random_weights(1682, (), 600, item_item=True),
        "default, 60,000 movies (no movie-to-movie path)": random_weights(60_000, (), 600, item_item=False),
        "default without the path, 1,682 movies": random_weights(1682, (), 600, item_item=False),
    }
    for name, weights in cases.items():
        figures = measure(VAERecommender(weights))
        print(f"{name}: p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms")


if __name__ == "__main__":
    main()

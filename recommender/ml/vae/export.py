"""From a trained or saved Keras model to the NumPy serving model (:mod:`recommender.ml.inference`)."""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import scipy.sparse as sp

from recommender.ml.data import RATING_MAX, RATING_MIN
from recommender.ml.inference import VAERecommender
from recommender.ml.vae.config import LAYER_NORM_EPSILON, VAEConfig
from recommender.ml.vae.model import RecommenderVAE


def load_model(path: str) -> RecommenderVAE:
    return keras.saving.load_model(path)


def to_recommender(model: RecommenderVAE, similar_items: tuple[np.ndarray, np.ndarray] | None = None) -> VAERecommender:
    """The NumPy serving model for a trained Keras model (and its similar-movies table, when given)."""
    return VAERecommender(export_weights(model, similar_items))


def recommender_factory(config: VAEConfig | None = None):
    """``fit(train_matrix) -> VAERecommender`` for :func:`recommender.ml.evaluation.evaluate`."""

    def fit(train_matrix: sp.csr_matrix) -> VAERecommender:
        from recommender.ml import vae  # looked up when called, so a patched ``vae.train`` is the one used

        return vae.train(train_matrix, config).serving()

    return fit


def export_weights(model: Any, similar_items: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Weights of a trained ``vae.RecommenderVAE`` in the serving format (:mod:`recommender.ml.inference`).

    ``similar_items``: the (neighbours, scores) table of :func:`recommender.ml.similarity.similar_items_table`.
    """
    config = model.vae_config
    weights: dict[str, np.ndarray] = {}

    def copy_layer(submodel: Any, name: str) -> None:
        kernel, bias = submodel.get_layer(name).get_weights()
        weights[f"{name}_kernel"] = np.asarray(kernel, dtype=np.float32)
        weights[f"{name}_bias"] = np.asarray(bias, dtype=np.float32)

    for index in range(len(config.encoder_units)):
        copy_layer(model.encoder, f"encoder_dense_{index}")
        if config.encoder_style == "dense_skip":
            gamma, beta = model.encoder.get_layer(f"encoder_norm_{index}").get_weights()
            weights[f"encoder_norm_{index}_gamma"] = np.asarray(gamma, dtype=np.float32)
            weights[f"encoder_norm_{index}_beta"] = np.asarray(beta, dtype=np.float32)
    copy_layer(model.encoder, "z_mean")
    for index in range(len(config.resolved_decoder_units)):
        copy_layer(model.decoder, f"decoder_dense_{index}")
    if config.ranking_head:
        copy_layer(model.decoder, "ranking_logits")
    if config.rating_head:
        copy_layer(model.decoder, "rating")
    if model.item_item is not None and model.item_item.top_k is not None:
        # Top-k: each movie's neighbours (input feature indices) and their weights, scale folded in.
        neighbours, neighbour_weights = model.item_item.effective_neighbours()
        weights["item_item_neighbours"], weights["item_item_neighbour_weights"] = neighbours, neighbour_weights
    elif model.item_item is not None:
        # Scale folded in, diagonal zeroed (as the Keras layer computes it).
        weights["item_item_kernel"] = model.item_item.effective_kernel()
    if getattr(model, "rating_baseline", False):
        weights["rating_global_mean"] = np.asarray(model.rating_global_mean.numpy(), dtype=np.float32)
        weights["rating_item_bias"] = np.asarray(model.rating_item_bias.numpy(), dtype=np.float32)
    metadata = {
        "n_items": int(model.n_items),
        "input_mode": config.input_mode,
        "activation": config.activation,
        "leaky_relu_slope": config.leaky_relu_slope,
        "n_encoder_layers": len(config.encoder_units),
        "encoder_style": config.encoder_style,
        "layer_norm_epsilon": LAYER_NORM_EPSILON,
        "n_decoder_layers": len(config.resolved_decoder_units),
        "rating_output": config.rating_output,
        "rating_user_offset_damping": config.rating_user_offset_damping if config.rating_head else None,
        "rating_mode": config.rating_mode if config.rating_head else None,
        "item_item_input": config.item_item_input,
        "normalization": config.normalization,
        "liked_threshold_stars": _stars(config, model.liked_threshold),
        "disliked_threshold_stars": _stars(config, model.disliked_threshold),
        "config": config.to_dict(),
    }
    if similar_items is not None:
        weights["similar_items_neighbours"] = np.asarray(similar_items[0], dtype=np.int32)
        weights["similar_items_scores"] = np.asarray(similar_items[1], dtype=np.float32)
    weights["metadata"] = np.array(json.dumps(metadata))
    return weights


def _stars(config: Any, normalized: float | None) -> float | None:
    """A normalised threshold back in stars (as the serving model reads ratings)."""
    if normalized is None:
        return None
    if config.normalization == "report-2025":
        return round(float(normalized) * 4.0 + 1.0, 4)
    return round(float(normalized) * (RATING_MAX - RATING_MIN) + RATING_MIN, 4)

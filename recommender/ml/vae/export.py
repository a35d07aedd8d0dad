"""From a trained or saved Keras model to the NumPy serving model (:mod:`recommender.ml.inference`)."""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp

from recommender.ml.inference import VAERecommender, export_weights
from recommender.ml.vae.config import VAEConfig
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

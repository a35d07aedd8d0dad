"""Variational autoencoder recommender (Keras 3, TensorFlow backend).

The default preset is a multinomial VAE (Liang et al. 2018, "Mult-VAE": L2-normalised
input with dropout, softmax log-likelihood) whose likelihood is over the movies a user liked
(>= 4 stars; the encoder sees every rated movie), early-stopped on the validation users'
NDCG@100 with the best epoch restored. On catalogues of up to 20,000 movies its ranking
logits add EASE's movie-to-movie scores (Steck 2019, closed form, frozen) with a weight picked
on validation NDCG@100. A second head predicts stars: the damped user/item bias baseline plus
a residual from the latent code, trained in a second phase with the encoder frozen and kept
only while it lowers the validation RMSE. One forward pass gives a ranking and displayable stars.

Only this package imports TensorFlow/Keras; serving uses :mod:`recommender.ml.inference`. Its modules:

- :mod:`.config`: the options (:class:`VAEConfig`), their allowed values and the named presets;
- :mod:`.layers`: the Keras layers and the encoder and decoder builders;
- :mod:`.model`: :class:`RecommenderVAE`, the model with its own training step, and its :class:`TrainingPhase`;
- :mod:`.validation`: scores of a model on the validation users' hidden ratings (NDCG, RMSE, flip@10);
- :mod:`.callbacks`: early stopping on such a score, epoch timing, the composite prior's refresh;
- :mod:`.calibration`: the movie-to-movie path in closed form, its L2 and weight picked on validation users;
- :mod:`.training`: :func:`train`, a training run step by step, and its :class:`TrainResult`;
- :mod:`.export`: loading a saved model, and the NumPy serving model of a trained one.

Everything callers use is importable from here (``from recommender.ml import vae``, then ``vae.train``).
"""

from recommender.ml.quiet import load_tensorflow

load_tensorflow()  # before the imports below, which then find TensorFlow loaded without its start-up notes

import keras
import tensorflow as tf
from keras import ops

from recommender.ml.inference import VAERecommender, exclude_rated, top_n_indices
from recommender.ml.vae.batches import RowBatchDataset
from recommender.ml.vae.calibration import _calibrate_item_item, _item_item_weights
from recommender.ml.vae.callbacks import BestEpochStopping, EpochTimer, PriorRefresh
from recommender.ml.vae.config import (
    ACTIVATIONS,
    CALIBRATION_USERS,
    COMPOSITE_PRIOR_WEIGHTS,
    COMPOSITE_PRIOR_WIDE_LOG_VAR,
    EARLY_STOPPING,
    ENCODER_STYLES,
    INPUT_MODES,
    ITEM_ITEM_INPUTS,
    ITEM_ITEM_SCALES,
    ITEM_ITEM_SELECTIONS,
    ITEM_ITEM_TRAINING,
    LAYER_NORM_EPSILON,
    NDCG_CUTOFFS,
    NORMALIZATIONS,
    PRESETS,
    PRIORS,
    RANKING_TARGETS,
    RATING_MODES,
    VAEConfig,
    _normalized_stars,
    preset,
)
from recommender.ml.vae.export import load_model, recommender_factory, to_recommender
from recommender.ml.vae.layers import (
    EncoderInput,
    ItemItem,
    Sampling,
    StopGradient,
    build_decoder,
    build_encoder,
    signed_feedback,
)
from recommender.ml.vae.model import RecommenderVAE, TrainingPhase
from recommender.ml.vae.training import (
    TrainResult,
    _liked_threshold,
    _validation_metrics,
    normalize_for,
    train,
)
from recommender.ml.vae.validation import _deterministic_batches, validation_ndcg, validation_rmse

# Everything callers reach as vae.<name>, the private helpers that tests use included.
__all__ = [
    "ACTIVATIONS",
    "CALIBRATION_USERS",
    "COMPOSITE_PRIOR_WEIGHTS",
    "COMPOSITE_PRIOR_WIDE_LOG_VAR",
    "EARLY_STOPPING",
    "ENCODER_STYLES",
    "INPUT_MODES",
    "ITEM_ITEM_INPUTS",
    "ITEM_ITEM_SCALES",
    "ITEM_ITEM_SELECTIONS",
    "ITEM_ITEM_TRAINING",
    "LAYER_NORM_EPSILON",
    "NDCG_CUTOFFS",
    "NORMALIZATIONS",
    "PRESETS",
    "PRIORS",
    "RANKING_TARGETS",
    "RATING_MODES",
    "BestEpochStopping",
    "EncoderInput",
    "EpochTimer",
    "ItemItem",
    "PriorRefresh",
    "RecommenderVAE",
    "RowBatchDataset",
    "Sampling",
    "StopGradient",
    "TrainResult",
    "TrainingPhase",
    "VAEConfig",
    "VAERecommender",
    "_calibrate_item_item",
    "_deterministic_batches",
    "_item_item_weights",
    "_liked_threshold",
    "_normalized_stars",
    "_validation_metrics",
    "build_decoder",
    "build_encoder",
    "exclude_rated",
    "keras",
    "load_model",
    "normalize_for",
    "ops",
    "preset",
    "recommender_factory",
    "signed_feedback",
    "tf",
    "to_recommender",
    "top_n_indices",
    "train",
    "validation_ndcg",
    "validation_rmse",
]

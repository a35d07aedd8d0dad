"""Variational autoencoder recommender (Keras 3, TensorFlow backend).

Structure follows the official Keras VAE example: functional ``build_encoder`` /
``build_decoder`` builders, a registered :class:`Sampling` layer and a ``keras.Model``
subclass with its own ``train_step``/``test_step`` and loss trackers.

The default preset is a multinomial VAE (Liang et al. 2018, "Mult-VAE": L2-normalised
input with dropout, softmax log-likelihood) whose likelihood is over the movies a user liked
(>= 4 stars; the encoder sees every rated movie), early-stopped on the validation users'
NDCG@100 with the best epoch restored. On catalogues of up to 20,000 movies its ranking
logits add EASE's movie-to-movie scores (Steck 2019, closed form, frozen) with a weight picked
on validation NDCG@100. A second head predicts stars: the damped user/item bias baseline plus
a residual from the latent code, trained in a second phase with the encoder frozen and kept
only while it lowers the validation RMSE. One forward pass gives a ranking and displayable stars.

The "report-2025" preset reproduces the 2025 report exactly: 1024-512-256 LeakyReLU
encoder with L2, latent 64, sigmoid output, (r - 1) / 4 normalisation with 0 meaning
"not rated" (1-star ratings vanish), masked MSE + KL with weight 1.

Only this module imports TensorFlow/Keras; serving uses :mod:`recommender.ml.inference`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from recommender.ml import data
from recommender.ml.baselines import BiasRatingModel, ease_weights, value_aware_ease_weights
from recommender.ml.inference import VAERecommender, exclude_rated, export_weights, top_n_indices
from recommender.ml.quiet import load_tensorflow
from recommender.ml.similarity import similar_items_table

load_tensorflow()  # before the imports below, which then find TensorFlow loaded without its start-up notes

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "swish")
ENCODER_STYLES = ("mlp", "dense_skip")
INPUT_MODES = ("ratings", "implicit", "implicit+ratings", "implicit+signed")
NORMALIZATIONS = ("minmax", "report-2025")
RANKING_TARGETS = ("rated", "liked")
EARLY_STOPPING = ("val_loss", "ndcg@100")
ITEM_ITEM_INPUTS = ("implicit", "binary", "value_aware")
RATING_MODES = ("offset", "bias_residual")
ITEM_ITEM_TRAINING = ("joint", "ensemble")
PRIORS = ("standard", "composite")
LAYER_NORM_EPSILON = 0.1  # RecVAE's
ITEM_ITEM_SELECTIONS = ("ndcg@100", "ndcg@10")
NDCG_CUTOFFS = (10, 100)
# Validation users scored when the hybrid's mix is picked: plenty for a stable choice, bounded memory.
CALIBRATION_USERS = 5_000
# RecVAE's composite prior: weights of the standard normal, the old posterior and the wide normal.
COMPOSITE_PRIOR_WEIGHTS = (3 / 20, 15 / 20, 2 / 20)
COMPOSITE_PRIOR_WIDE_LOG_VAR = 10.0
ITEM_ITEM_SCALES = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0, 1000.0)


@dataclass(frozen=True)
class VAEConfig:
    """Every size and rate of the model and its training run."""

    encoder_units: tuple[int, ...] = (600,)
    # "mlp": dense layers in a row; "dense_skip": RecVAE's encoder (Shenbin et al. 2020), where each layer adds
    # every earlier layer's output before its activation and is layer-normalised (equal widths needed).
    encoder_style: str = "mlp"
    latent_dim: int = 200
    # None mirrors the encoder (1024-512-256 -> 256-512-1024).
    decoder_units: tuple[int, ...] | None = None
    activation: str = "tanh"
    leaky_relu_slope: float = 0.2
    l2: float = 0.0
    # "implicit": which movies were rated, L2-normalised (Mult-VAE); "ratings": normalised
    # stars as they are (report); "implicit+ratings": both, concatenated; "implicit+signed": the
    # implicit channel plus a signed one (+1 liked, -1 disliked, 0 in between, same L2 scaling), so
    # that a 1-star rating points the other way from a 5-star one.
    input_mode: str = "implicit"
    input_dropout: float = 0.5
    ranking_head: bool = True
    rating_head: bool = True
    rating_output: str = "linear"
    # "per_user": squared errors summed per user, averaged over the batch (same scale as the
    # multinomial log-likelihood); "mean": averaged over observed entries (report).
    rating_loss: str = "per_user"
    rating_loss_weight: float = 1.0
    # Stop the rating loss from changing the shared layers, so it cannot hurt the ranking.
    rating_head_detached: bool = True
    # L2 on the rating head's kernel (None: the shared ``l2``); it has many weights for few
    # observed ratings and overfits without it.
    rating_l2: float | None = None
    # Predicted rating = movie bias + this user's damped mean offset from the movie biases
    # (computed from the input ratings, as in a bias baseline) + a learned residual.
    # None: no offset (the report's plain output).
    rating_user_offset_damping: float | None = 10.0
    # "rated": the multinomial likelihood is over every rated movie (Liang et al.); "liked":
    # only over movies rated >= ``liked_threshold`` stars, while the encoder still sees every
    # rated movie (what the site should recommend is what the user will like).
    ranking_target: str = "rated"
    # Stars; None: 4 on whole-star data, 3.5 on half-star data (data.relevance_threshold).
    liked_threshold: float | None = None
    # Stars at or below which a rating counts as disliked (the signed input channels).
    disliked_threshold: float = 2.0
    # "val_loss": stop on the validation loss (the report); "ndcg@100": stop on NDCG@100 of
    # the validation users' hidden ratings (liked ones relevant), as Liang et al. select models.
    # Either way the best epoch's weights are restored.
    early_stopping: str = "val_loss"
    # Wide & deep ranking: add a linear movie-to-movie path (EASE-like, n_items^2 weights)
    # from the input straight to the ranking logits. True/False, or None: on when the
    # catalogue has at most ``item_item_max_items`` movies (20,000 movies: 1.6 GB of float32
    # weights; ML-25M's 59k movies would need 14 GB, so it is off there).
    item_item: bool | None = False
    item_item_max_items: int = 20_000
    # False: keep the path at its (EASE) initial weights; only its overall scale is learned.
    item_item_trainable: bool = True
    # "joint": the path is trained with the VAE. "ensemble": the VAE is trained alone (path
    # weight 0), then the path's weight is picked from ITEM_ITEM_SCALES by validation NDCG@100
    # (0 keeps the VAE alone, the largest is EASE with the VAE breaking ties), and the frozen
    # EASE kernel is refitted on every rating (the validation users' included).
    item_item_training: str = "joint"
    # "implicit": L2-normalised rated indicators (as the encoder); "binary": 0/1 (as EASE).
    item_item_input: str = "implicit"
    item_item_l2: float = 0.0
    # Start the movie-to-movie path from EASE's closed form (this L2) on the training users,
    # times ``item_item_init_scale``; None starts it at zero. SGD on ~600 users
    # does not reach EASE's quality from zero within the early-stopping budget.
    item_item_init_ease_l2: float | None = 500.0
    # Ensemble: the closed form's L2 is picked from these on the validation users (with the path's weight);
    # the best L2 grows with the number of users, so one fixed value would only fit one data set.
    item_item_l2_grid: tuple[float, ...] | None = None
    # The validation metric that picks the path's L2 and weight: "ndcg@10" favours the top of the list,
    # which is what the site shows.
    item_item_selection: str = "ndcg@100"
    # The product must listen to the stars: a mix whose validation flip@10 (overlap of the top 10 with every
    # rating mirrored; 1.0 = deaf to the stars) is above this is only picked when every mix is.
    max_flip: float = 0.3
    item_item_init_scale: float = 100.0
    # "offset": movie bias + damped user offset + learned output (trained with the ranking).
    # "bias_residual": the damped user/item bias baseline (baselines.BiasRatingModel, computed
    # from the input ratings) + a residual learned from the latent code in a second phase,
    # with the encoder frozen, early-stopped on the validation RMSE with the zero residual
    # (the plain bias model) as the starting point, so validation RMSE can only improve.
    rating_mode: str = "offset"
    rating_item_damping: float = 25.0
    rating_max_epochs: int | None = None  # None: max_epochs
    # Share of each training user's ratings hidden from the encoder in the rating phase; the
    # residual is fitted on the hidden ones (as at serving time, where targets are unseen).
    rating_input_dropout: float = 0.2
    rating_learning_rate: float | None = None
    beta: float = 0.2
    # The KL weight grows linearly from 0 to ``beta`` over this many epochs (0: constant).
    kl_anneal_epochs: int = 0
    # RecVAE (Shenbin et al. 2020): "composite" replaces the standard normal prior by a mixture of it, the
    # previous epoch's encoder posterior for the same user (which keeps the encoder from forgetting) and a
    # wide normal; the KL term is then a one-sample estimate.
    prior: str = "standard"
    # RecVAE's user-dependent KL weight: beta_per_rating times the number of movies the user rated (in the
    # encoder's input) instead of ``beta``; None keeps the constant ``beta``.
    beta_per_rating: float | None = None
    normalization: str = "minmax"
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 8
    validation_fraction: float = 0.2
    # Share of each validation user's ratings hidden from the encoder and scored as the
    # validation target; 0 reconstructs the full row as the report did.
    validation_holdout_fraction: float = 0.2
    min_user_ratings: int | None = 20
    # Neighbours kept per movie in the similar-movies table served with the model (also where "because you
    # rated X highly" looks for X, so a longer list finds a reason more often).
    similar_items: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}")
        if not (self.ranking_head or self.rating_head):
            raise ValueError("the model needs a ranking head, a rating head or both")
        for name, allowed in (
            ("ranking_target", RANKING_TARGETS),
            ("early_stopping", EARLY_STOPPING),
            ("item_item_input", ITEM_ITEM_INPUTS),
            ("rating_mode", RATING_MODES),
            ("item_item_training", ITEM_ITEM_TRAINING),
            ("prior", PRIORS),
            ("item_item_selection", ITEM_ITEM_SELECTIONS),
            ("encoder_style", ENCODER_STYLES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}")
        object.__setattr__(self, "encoder_units", tuple(self.encoder_units))
        if self.encoder_style == "dense_skip" and len(set(self.encoder_units)) > 1:
            raise ValueError("the dense_skip encoder adds its layers' outputs: every encoder layer needs the same width")
        if self.item_item_l2_grid is not None:
            object.__setattr__(self, "item_item_l2_grid", tuple(self.item_item_l2_grid))
        if self.decoder_units is not None:
            object.__setattr__(self, "decoder_units", tuple(self.decoder_units))

    def resolved_item_item(self, n_items: int) -> bool:
        """Whether a model over ``n_items`` movies gets the movie-to-movie path."""
        if not self.ranking_head:
            return False
        if self.item_item is None:
            return n_items <= self.item_item_max_items
        return bool(self.item_item)

    @property
    def two_phase(self) -> bool:
        """Ranking trained first, then the rating residual alone (see ``rating_mode``)."""
        return self.rating_head and self.ranking_head and self.rating_mode == "bias_residual"

    @property
    def resolved_decoder_units(self) -> tuple[int, ...]:
        return tuple(reversed(self.encoder_units)) if self.decoder_units is None else self.decoder_units

    def to_dict(self) -> dict[str, Any]:
        as_dict = dataclasses.asdict(self)
        as_dict["encoder_units"] = list(self.encoder_units)
        as_dict["decoder_units"] = None if self.decoder_units is None else list(self.decoder_units)
        as_dict["item_item_l2_grid"] = None if self.item_item_l2_grid is None else list(self.item_item_l2_grid)
        return as_dict

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VAEConfig":
        return cls(**values)

    def replace(self, **changes: Any) -> "VAEConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, VAEConfig] = {
    # The product (benchmarks/ml/RESULTS.md): a wide linear encoder of what the user rated and how
    # (+1 liked, -1 disliked) straight into a 600-d latent, a linear decoder; trained on what users
    # liked, early-stopped on validation NDCG@100; plus, on catalogues of up to 20,000 movies, the
    # value-aware EASE movie-to-movie weights mixed in, its L2 and weight picked on validation NDCG@100;
    # stars = damped bias baseline + a residual from the latent code (second phase).
    "default": VAEConfig(
        encoder_units=(),
        latent_dim=600,
        learning_rate=3e-3,
        rating_l2=0.1,
        rating_learning_rate=1e-4,
        ranking_target="liked",
        early_stopping="ndcg@100",
        input_mode="implicit+signed",
        item_item=None,
        item_item_trainable=False,
        item_item_input="value_aware",
        item_item_training="ensemble",
        item_item_l2_grid=(125.0, 250.0, 500.0, 1000.0, 2000.0),
        rating_mode="bias_residual",
        rating_item_damping=5.0,
    ),
    "report-2025": VAEConfig(
        encoder_units=(1024, 512, 256),
        latent_dim=64,
        activation="leaky_relu",
        leaky_relu_slope=0.3,  # Keras' LeakyReLU default, which the report used
        l2=1e-4,
        input_mode="ratings",
        input_dropout=0.0,
        ranking_head=False,
        rating_head=True,
        rating_output="sigmoid",
        rating_loss="mean",
        rating_loss_weight=1.0,
        rating_head_detached=False,
        rating_user_offset_damping=None,
        beta=1.0,
        kl_anneal_epochs=0,
        normalization="report-2025",
        validation_holdout_fraction=0.0,
    ),
    # Multinomial VAE with the report's layer sizes, untuned (the 0.235 P@5 figure).
    "mult-vae-report-sizes": VAEConfig(
        encoder_units=(1024, 512, 256),
        latent_dim=64,
        activation="leaky_relu",
        leaky_relu_slope=0.3,
        l2=1e-4,
        input_dropout=0.5,
        rating_head=False,
        beta=0.2,
    ),
}


# Reported next to the default in the same evaluation run: its VAE part alone, and the value-blind default
# this product had until 2026-11-27 (a 1-star rating pulled similar movies up like a 5-star one).
PRESETS["default-vae-alone"] = PRESETS["default"].replace(item_item=False)
# The default with RecVAE's encoder (Shenbin et al. 2020): five 600-wide dense-skip layers with swish and layer
# norm, a 200-d latent, a linear decoder, the composite prior and a KL weight per rated movie.
PRESETS["recvae"] = PRESETS["default"].replace(
    encoder_units=(600,) * 5, encoder_style="dense_skip", activation="swish", latent_dim=200, decoder_units=(),
    prior="composite", beta_per_rating=0.005, learning_rate=5e-4,
)
PRESETS["value-blind-2026-11"] = PRESETS["default"].replace(
    input_mode="implicit", item_item_input="binary", item_item_l2_grid=None
)


def preset(name: str = "default", **overrides: Any) -> VAEConfig:
    """A named configuration, optionally with some fields changed."""
    return PRESETS[name].replace(**overrides)


@keras.saving.register_keras_serializable(package="recommender")
class Sampling(keras.layers.Layer):
    """Reparameterisation trick: z = mean + exp(log_var / 2) * epsilon, epsilon ~ N(0, I)."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="recommender")
class StopGradient(keras.layers.Layer):
    """Identity forward; no gradient backward (keeps a head from training the layers below it)."""

    def call(self, inputs: Any) -> Any:
        return ops.stop_gradient(inputs)


def signed_feedback(values: Any, mask: Any, liked: float, disliked: float) -> Any:
    """+1 where a rating is liked, -1 where it is disliked, 0 elsewhere (normalised rating units)."""
    is_liked = ops.cast(values >= liked - 1e-6, mask.dtype)
    is_disliked = ops.cast(values <= disliked + 1e-6, mask.dtype)
    return mask * (is_liked - is_disliked)


@keras.saving.register_keras_serializable(package="recommender")
class EncoderInput(keras.layers.Layer):
    """Turns (normalised ratings, observed mask) into the encoder's input features.

    ``liked`` and ``disliked`` are the normalised thresholds of the signed channel ("implicit+signed").
    """

    def __init__(self, mode: str = "implicit", liked: float = 0.778, disliked: float = 0.333, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in INPUT_MODES:
            raise ValueError(f"mode must be one of {INPUT_MODES}")
        self.mode = mode
        self.liked = float(liked)
        self.disliked = float(disliked)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        values, mask = inputs
        if self.mode == "ratings":
            return values
        # Mult-VAE normalises each user's row to unit length (epsilon: users with no ratings).
        norm = ops.sqrt(ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1e-12))
        implicit = mask / norm
        if self.mode == "implicit":
            return implicit
        if self.mode == "implicit+signed":
            return ops.concatenate([implicit, signed_feedback(values, mask, self.liked, self.disliked) / norm], axis=1)
        # Centred so that the lowest rating (normalised to 0) is still visible to the encoder.
        return ops.concatenate([implicit, mask * (values - 0.5)], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "liked": self.liked, "disliked": self.disliked}


def _activation_layer(config: VAEConfig, name: str) -> keras.layers.Layer:
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=config.leaky_relu_slope, name=name)
    return keras.layers.Activation(config.activation, name=name)


def _dense(
    units: int,
    config: VAEConfig,
    name: str,
    activation: str | None = None,
    kernel_initializer: str = "glorot_uniform",
    l2: float | None = None,
) -> keras.layers.Dense:
    l2 = config.l2 if l2 is None else l2
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    return keras.layers.Dense(
        units, activation=activation, kernel_regularizer=regularizer, kernel_initializer=kernel_initializer, name=name
    )


def build_encoder(n_items: int, config: VAEConfig, thresholds: tuple[float, float] = (0.778, 0.333)) -> keras.Model:
    """(values, mask) -> (z_mean, z_log_var, z); ``thresholds``: (liked, disliked) in normalised units."""
    values = keras.Input(shape=(n_items,), name="values")
    mask = keras.Input(shape=(n_items,), name="mask")
    hidden = EncoderInput(config.input_mode, *thresholds, name="encoder_input")([values, mask])
    earlier: list[Any] = []
    for index, units in enumerate(config.encoder_units):
        hidden = _dense(units, config, f"encoder_dense_{index}")(hidden)
        if config.encoder_style == "dense_skip":
            if earlier:
                hidden = keras.layers.Add(name=f"encoder_skip_{index}")([hidden, *earlier])
            hidden = _activation_layer(config, f"encoder_activation_{index}")(hidden)
            hidden = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"encoder_norm_{index}")(hidden)
            earlier.append(hidden)
        else:
            hidden = _activation_layer(config, f"encoder_activation_{index}")(hidden)
    z_mean = _dense(config.latent_dim, config, "z_mean")(hidden)
    z_log_var = _dense(config.latent_dim, config, "z_log_var")(hidden)
    z = Sampling(seed=config.seed, name="sampling")([z_mean, z_log_var])
    return keras.Model([values, mask], [z_mean, z_log_var, z], name="encoder")


def build_decoder(n_items: int, config: VAEConfig) -> keras.Model:
    """z -> {"ranking_logits": ..., "rating": ...} (the heads the config enables)."""
    z = keras.Input(shape=(config.latent_dim,), name="z")
    hidden = z
    for index, units in enumerate(config.resolved_decoder_units):
        hidden = _dense(units, config, f"decoder_dense_{index}")(hidden)
        hidden = _activation_layer(config, f"decoder_activation_{index}")(hidden)
    outputs = {}
    if config.ranking_head:
        # With an EASE-initialised movie-to-movie path, start the deep part at zero so the
        # model starts from EASE's ranking instead of EASE plus random logits.
        ease_start = config.resolved_item_item(n_items) and config.item_item_init_ease_l2 is not None
        initializer = "zeros" if ease_start else "glorot_uniform"
        outputs["ranking_logits"] = _dense(n_items, config, "ranking_logits", kernel_initializer=initializer)(hidden)
    if config.rating_head:
        rating_activation = "sigmoid" if config.rating_output == "sigmoid" else None
        rating_input = StopGradient(name="rating_stop_gradient")(hidden) if config.rating_head_detached else hidden
        # With the user offset (or the bias baseline) the head starts as a bias baseline: a
        # random kernel would add about a star of noise to every prediction at first.
        with_baseline = config.rating_user_offset_damping is not None or config.rating_mode == "bias_residual"
        initializer = "zeros" if with_baseline else "glorot_uniform"
        outputs["rating"] = _dense(n_items, config, "rating", rating_activation, initializer, config.rating_l2)(
            rating_input
        )
    return keras.Model(z, outputs, name="decoder")


@keras.saving.register_keras_serializable(package="recommender")
class ItemItem(keras.layers.Layer):
    """Movie-to-movie ranking path: scale * (x @ kernel), zero diagonal (a movie never predicts itself).

    ``x`` is the rated indicator, L2-normalised per user ("implicit") or 0/1 ("binary", as EASE), or
    ("value_aware") the 0/1 rated indicator next to the signed one (+1 liked, -1 disliked): the kernel is
    then 2 n_items x n_items, so a disliked movie can push its neighbours down. A frozen kernel
    (``trainable_kernel=False``) keeps its initial (EASE) weights and only the scalar scale learns, so
    the path costs no optimizer memory.
    """

    def __init__(
        self,
        n_items: int,
        input_mode: str = "implicit",
        trainable_kernel: bool = True,
        initial_scale: float = 1.0,
        l2: float = 0.0,
        liked: float = 0.778,
        disliked: float = 0.333,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if input_mode not in ITEM_ITEM_INPUTS:
            raise ValueError(f"input_mode must be one of {ITEM_ITEM_INPUTS}")
        if input_mode == "value_aware" and trainable_kernel:
            raise ValueError("the value-aware movie-to-movie path is fitted in closed form: its kernel is frozen")
        self.n_items = n_items
        self.input_mode = input_mode
        self.trainable_kernel = trainable_kernel
        self.initial_scale = initial_scale
        self.l2 = l2
        self.liked = float(liked)
        self.disliked = float(disliked)
        n_features = 2 * n_items if input_mode == "value_aware" else n_items
        self.kernel = self.add_weight(
            shape=(n_features, n_items),
            initializer="zeros",
            regularizer=keras.regularizers.L2(l2) if l2 > 0 and trainable_kernel else None,
            trainable=trainable_kernel,
            name="kernel",
        )
        self.scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(initial_scale), name="scale"
        )
        self.built = True

    def features(self, values: Any, mask: Any) -> Any:
        if self.input_mode == "binary":
            return mask
        if self.input_mode == "value_aware":
            return ops.concatenate([mask, signed_feedback(values, mask, self.liked, self.disliked)], axis=1)
        return mask / ops.sqrt(ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1e-12))

    def call(self, values: Any, mask: Any) -> Any:
        features = self.features(values, mask)
        scores = ops.matmul(features, self.kernel)
        if self.trainable_kernel:
            # Remove each movie's own contribution: x_i * K_ii (diagonal kept out of the fit).
            scores = scores - features * ops.diagonal(self.kernel)[None, :]
        return self.scale * scores

    def effective_kernel(self) -> np.ndarray:
        kernel = np.array(self.kernel.numpy(), dtype=np.float32)
        if self.input_mode != "value_aware":  # the value-aware fit already gives a movie no weight for itself
            np.fill_diagonal(kernel, 0.0)
        return kernel * np.float32(self.scale.numpy())

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_items": self.n_items,
            "input_mode": self.input_mode,
            "trainable_kernel": self.trainable_kernel,
            "initial_scale": self.initial_scale,
            "l2": self.l2,
            "liked": self.liked,
            "disliked": self.disliked,
        }


def _log_normal(x: Any, mean: Any, log_var: Any) -> Any:
    """Elementwise log density of N(mean, exp(log_var)) at x."""
    return -0.5 * (np.log(2 * np.pi) + log_var + ops.square(x - mean) / ops.exp(log_var))


class PriorRefresh(keras.callbacks.Callback):
    """Composite prior: the old encoder takes the current encoder's weights at the start of each epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.old_encoder is not None:
            self.model.old_encoder.set_weights(self.model.encoder.get_weights())


@keras.saving.register_keras_serializable(package="recommender")
class RecommenderVAE(keras.Model):
    """Encoder + decoder with the VAE loss; ``call`` is the deterministic path (z = z_mean)."""

    def __init__(
        self,
        n_items: int,
        config: dict[str, Any],
        kl_anneal_steps: int = 0,
        liked_threshold: float | None = None,
        disliked_threshold: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_items = n_items
        self.vae_config = VAEConfig.from_dict(config)
        self.kl_anneal_steps = kl_anneal_steps
        # Normalised ratings from which a movie counts as liked (the "liked" ranking target and the
        # signed inputs) and up to which it counts as disliked; train() passes them from the data.
        if liked_threshold is None:
            liked_threshold = _normalized_stars(self.vae_config, self.vae_config.liked_threshold or 4.0)
        if disliked_threshold is None:
            disliked_threshold = _normalized_stars(self.vae_config, self.vae_config.disliked_threshold)
        self.liked_threshold = liked_threshold
        self.disliked_threshold = disliked_threshold
        # "joint": every loss term trains every weight (one phase); "ranking" / "rating": the
        # two phases of rating_mode="bias_residual" (see VAEConfig).
        self.phase = "joint"
        self.encoder = build_encoder(n_items, self.vae_config, (liked_threshold, disliked_threshold))
        # The composite prior's frozen copy of the encoder, refreshed at each epoch's start (PriorRefresh).
        self.old_encoder = None
        if self.vae_config.prior == "composite":
            self.old_encoder = build_encoder(n_items, self.vae_config, (liked_threshold, disliked_threshold))
            self.old_encoder.trainable = False
        self.decoder = build_decoder(n_items, self.vae_config)
        self.dropout_seed = keras.random.SeedGenerator(self.vae_config.seed + 1)
        self.item_item = None
        if self.vae_config.resolved_item_item(n_items):
            self.item_item = ItemItem(
                n_items,
                input_mode=self.vae_config.item_item_input,
                trainable_kernel=self.vae_config.item_item_trainable,
                initial_scale=self.vae_config.item_item_init_scale,
                l2=self.vae_config.item_item_l2,
                liked=liked_threshold,
                disliked=disliked_threshold,
                name="item_item",
            )
        self.rating_baseline = self.vae_config.rating_head and self.vae_config.rating_mode == "bias_residual"
        if self.rating_baseline:
            # The bias baseline in normalised units (set by train(); saved with the model).
            self.rating_global_mean = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="rating_global_mean"
            )
            self.rating_item_bias = self.add_weight(
                shape=(n_items,), initializer="zeros", trainable=False, name="rating_item_bias"
            )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ranking_loss_tracker = keras.metrics.Mean(name="ranking_loss")
        self.rating_loss_tracker = keras.metrics.Mean(name="rating_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        # Sub-models are functional and already built; nothing is created lazily.
        self.built = True

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        trackers = [self.loss_tracker]
        if self.vae_config.ranking_head and self.phase != "rating":
            trackers.append(self.ranking_loss_tracker)
        if self.vae_config.rating_head and self.phase != "ranking":
            trackers.append(self.rating_loss_tracker)
        if self.phase == "rating":
            return trackers
        return trackers + [self.kl_loss_tracker]

    def call(self, inputs: tuple[Any, Any], training: bool = False) -> dict[str, Any]:
        values, mask = inputs
        z_mean, _, _ = self.encoder([values, mask], training=training)
        return self._decode(z_mean, values, mask, training)

    def _decode(self, z: Any, values: Any, mask: Any, training: bool) -> dict[str, Any]:
        outputs = self._add_user_offset(self.decoder(z, training=training), values, mask)
        if self.item_item is not None:
            wide = self.item_item(values, mask)
            outputs = {**outputs, "ranking_logits": outputs["ranking_logits"] + wide}
        return outputs

    def _add_user_offset(self, outputs: dict[str, Any], values: Any, mask: Any) -> dict[str, Any]:
        """Shift the rating head by the user's damped mean deviation from the movie biases."""
        damping = self.vae_config.rating_user_offset_damping
        if self.rating_baseline:
            baseline = self.rating_global_mean + self.rating_item_bias[None, :]
            residuals = ops.sum(mask * (values - baseline), axis=1, keepdims=True)
            user_bias = residuals / (ops.sum(mask, axis=1, keepdims=True) + (damping or 0.0))
            return {**outputs, "rating": outputs["rating"] + baseline + user_bias}
        if not self.vae_config.rating_head or damping is None:
            return outputs
        movie_bias = self.decoder.get_layer("rating").bias
        deviations = ops.sum(mask * (values - movie_bias[None, :]), axis=1, keepdims=True)
        offset = deviations / (ops.sum(mask, axis=1, keepdims=True) + damping)
        return {**outputs, "rating": outputs["rating"] + offset}

    def _drop_inputs(self, values: Any, mask: Any) -> tuple[Any, Any]:
        """Denoising: hide a random share of each user's ratings from the encoder."""
        rate = self.vae_config.input_dropout
        if rate <= 0:
            return values, mask
        keep = ops.cast(keras.random.uniform(ops.shape(mask), seed=self.dropout_seed) >= rate, mask.dtype)
        return values * keep, mask * keep

    def _kl_weight(self, mask: Any) -> Any:
        """The KL weight: a scalar, or one per user (RecVAE's beta_per_rating x the user's rated count)."""
        per_rating = self.vae_config.beta_per_rating
        beta = self.vae_config.beta if per_rating is None else per_rating * ops.sum(mask, axis=1)
        beta = ops.convert_to_tensor(beta, dtype="float32")
        if self.kl_anneal_steps <= 0:
            return beta
        progress = ops.cast(self.optimizer.iterations + 1, "float32") / float(self.kl_anneal_steps)
        return beta * ops.minimum(progress, 1.0)

    def _kl_per_user(self, z_mean: Any, z_log_var: Any, z: Any, prior: tuple[Any, Any] | None) -> Any:
        """KL(q(z|x) || p(z)) per user: closed form for N(0, I), a one-sample estimate for the composite prior."""
        if prior is None:
            return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        old_mean, old_log_var = prior
        zeros = ops.zeros_like(z)
        components = [
            _log_normal(z, zeros, zeros),
            _log_normal(z, old_mean, old_log_var),
            _log_normal(z, zeros, zeros + COMPOSITE_PRIOR_WIDE_LOG_VAR),
        ]
        log_prior = ops.logsumexp(
            ops.stack([c + np.log(w) for c, w in zip(components, COMPOSITE_PRIOR_WEIGHTS)], axis=-1), axis=-1
        )
        return ops.sum(_log_normal(z, z_mean, z_log_var) - log_prior, axis=1)

    def _loss_terms(
        self,
        outputs: dict[str, Any],
        z_mean: Any,
        z_log_var: Any,
        target_values: Any,
        target_mask: Any,
        z: Any = None,
        prior: tuple[Any, Any] | None = None,
    ) -> dict[str, Any]:
        terms = {}
        if self.vae_config.ranking_head and self.phase != "rating":
            ranking_target = target_mask
            if self.vae_config.ranking_target == "liked":
                liked = ops.cast(target_values >= self.liked_threshold - 1e-6, target_mask.dtype)
                ranking_target = target_mask * liked
            log_probabilities = ops.log_softmax(outputs["ranking_logits"], axis=1)
            terms["ranking_loss"] = ops.mean(-ops.sum(log_probabilities * ranking_target, axis=1))
        if self.vae_config.rating_head and self.phase != "ranking":
            squared_errors = target_mask * ops.square(outputs["rating"] - target_values)
            if self.vae_config.rating_loss == "mean":
                terms["rating_loss"] = ops.sum(squared_errors) / ops.maximum(ops.sum(target_mask), 1.0)
            else:
                terms["rating_loss"] = ops.mean(ops.sum(squared_errors, axis=1))
        terms["kl_per_user"] = self._kl_per_user(z_mean, z_log_var, z, prior)
        terms["kl_loss"] = ops.mean(terms["kl_per_user"])
        return terms

    def _reconstruction_loss(self, terms: dict[str, Any]) -> Any:
        total = ops.convert_to_tensor(0.0, dtype="float32")
        if "ranking_loss" in terms:
            total = total + terms["ranking_loss"]
        if "rating_loss" in terms:
            total = total + self.vae_config.rating_loss_weight * terms["rating_loss"]
        return total

    def _regularization_loss(self) -> Any:
        rating_losses = self.decoder.get_layer("rating").losses if self.vae_config.rating_head else []
        if self.phase == "rating":
            losses = rating_losses
        elif self.phase == "ranking":
            rating_ids = {id(loss) for loss in rating_losses}
            losses = [loss for loss in self.losses if id(loss) not in rating_ids]
        else:
            losses = self.losses
        return ops.sum(ops.stack(losses)) if losses else 0.0

    def _total_loss(self, terms: dict[str, Any], kl_weight: Any) -> Any:
        if self.phase == "rating":
            return terms["rating_loss"] + self._regularization_loss()
        kl = ops.mean(kl_weight * terms["kl_per_user"])
        return self._reconstruction_loss(terms) + kl + self._regularization_loss()

    def _phase_variables(self) -> list[Any]:
        """The weights the current phase trains."""
        frozen = set()
        if self.item_item is not None and self.vae_config.item_item_training == "ensemble":
            frozen = {id(v) for v in self.item_item.weights}  # its weight is picked after training
        if self.phase == "joint":
            return [v for v in self.trainable_weights if id(v) not in frozen]
        rating_ids = {id(v) for v in self.decoder.get_layer("rating").trainable_weights} if self.vae_config.rating_head else set()
        if self.phase == "rating":
            return [v for v in self.trainable_weights if id(v) in rating_ids]
        return [v for v in self.trainable_weights if id(v) not in rating_ids | frozen]

    def _update_trackers(self, total: Any, terms: dict[str, Any]) -> dict[str, Any]:
        self.loss_tracker.update_state(total)
        if self.phase != "rating":
            self.kl_loss_tracker.update_state(terms["kl_loss"])
        if "ranking_loss" in terms:
            self.ranking_loss_tracker.update_state(terms["ranking_loss"])
        if "rating_loss" in terms:
            self.rating_loss_tracker.update_state(terms["rating_loss"])
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, batch: Any) -> dict[str, Any]:
        (values, mask), (target_values, target_mask) = batch
        if self.phase == "rating":
            return self._rating_train_step(values, mask)
        kl_weight = self._kl_weight(mask)
        variables = self._phase_variables()
        prior = None
        if self.old_encoder is not None:
            # RecVAE evaluates the old posterior on the user's whole (not denoised) input.
            old_mean, old_log_var, _ = self.old_encoder([values, mask], training=False)
            prior = (ops.stop_gradient(old_mean), ops.stop_gradient(old_log_var))
        with tf.GradientTape() as tape:
            dropped_values, dropped_mask = self._drop_inputs(values, mask)
            z_mean, z_log_var, z = self.encoder([dropped_values, dropped_mask], training=True)
            outputs = self._decode(z, dropped_values, dropped_mask, training=True)
            terms = self._loss_terms(outputs, z_mean, z_log_var, target_values, target_mask, z=z, prior=prior)
            total = self._total_loss(terms, kl_weight)
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        logs = self._update_trackers(total, terms)
        return {**logs, "kl_weight": ops.mean(kl_weight)}

    def _rating_train_step(self, values: Any, mask: Any) -> dict[str, Any]:
        """Rating phase: hide a share of each user's ratings, fit the residual on the hidden ones."""
        rate = self.vae_config.rating_input_dropout
        keep = ops.cast(keras.random.uniform(ops.shape(mask), seed=self.dropout_seed) >= rate, mask.dtype)
        input_values, input_mask = values * keep, mask * keep
        hidden_mask = mask * (1.0 - keep)
        variables = self._phase_variables()
        with tf.GradientTape() as tape:
            z_mean, z_log_var, _ = self.encoder([input_values, input_mask], training=False)
            outputs = self._decode(z_mean, input_values, input_mask, training=True)
            terms = self._loss_terms(outputs, z_mean, z_log_var, values, hidden_mask)
            total = self._total_loss(terms, 0.0)
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_trackers(total, terms)

    def test_step(self, batch: Any) -> dict[str, Any]:
        (values, mask), (target_values, target_mask) = batch
        # Validation loss = how well the deterministic pass (z = z_mean) predicts the targets:
        # the KL and L2 terms are training regularisers, and with an annealed KL weight they
        # would make early stopping compare unlike quantities across epochs.
        z_mean, z_log_var, _ = self.encoder([values, mask], training=False)
        outputs = self._decode(z_mean, values, mask, training=False)
        terms = self._loss_terms(outputs, z_mean, z_log_var, target_values, target_mask)
        total = self._reconstruction_loss(terms)
        return self._update_trackers(total, terms)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_items": self.n_items,
            "config": self.vae_config.to_dict(),
            "kl_anneal_steps": self.kl_anneal_steps,
            "liked_threshold": self.liked_threshold,
            "disliked_threshold": self.disliked_threshold,
        }


class RowBatchDataset(keras.utils.PyDataset):
    """Keras view of a :class:`data.RowBatcher`: ((values, mask), (target_values, target_mask))."""

    def __init__(self, batcher: data.RowBatcher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batcher = batcher

    def __len__(self) -> int:
        return len(self.batcher)

    def __getitem__(self, index: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        batch = self.batcher[index]
        return (batch.input_values, batch.input_mask), (batch.target_values, batch.target_mask)

    def on_epoch_end(self) -> None:
        self.batcher.on_epoch_end()


def _deterministic_batches(
    model: "RecommenderVAE", inputs: sp.csr_matrix, batch_size: int = 512
) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """The deterministic pass (z = z_mean) over the rows of a normalised CSR matrix, one batch at a time.

    Callers reduce each batch before the next: all validation users' scores at once would be dense
    users x movies (32,508 x 59,047 float32 = 7.7 GB at ML-25M size).
    """
    for start in range(0, inputs.shape[0], batch_size):
        rows = slice(start, min(start + batch_size, inputs.shape[0]))
        values, mask = data.densify_rows(inputs, np.arange(rows.start, rows.stop))
        yield rows, {name: np.asarray(value) for name, value in model((values, mask), training=False).items()}


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds (training, validation and early-stopping scoring) to the logs as
    ``name``, so the history shows what an epoch costs on the machine that trained it."""

    def __init__(self, name: str = "epoch_seconds") -> None:
        super().__init__()
        self.name = name
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs[self.name] = time.perf_counter() - self._started


class BestEpochStopping(keras.callbacks.Callback):
    """Early stopping on a score computed here (not a Keras metric), best weights restored.

    The score is measured before the first epoch too, so if no epoch beats the starting point
    (e.g. the EASE-initialised path, or the zero rating residual) the start is what is kept.
    The score of each epoch is added to the logs as ``name`` (so History records it).
    """

    def __init__(
        self, score: Any, name: str, mode: str = "max", patience: int = 8, variables: Any = None
    ) -> None:
        super().__init__()
        self.score = score
        self.name = name
        self.sign = 1.0 if mode == "max" else -1.0
        self.patience = patience
        self.variables = variables  # callable -> the variables to snapshot; None: all the model's
        self.initial_score: float | None = None
        self.best_score: float | None = None
        self.best_epoch = 0
        self._best_weights: list[np.ndarray] | None = None
        self._wait = 0

    def _variables(self) -> list[Any]:
        # Trainable weights only: frozen ones (a frozen movie-to-movie kernel) cannot change.
        return list(self.variables()) if self.variables is not None else list(self.model.trainable_weights)

    def _snapshot(self) -> None:
        self._best_weights = [np.array(v.numpy()) for v in self._variables()]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.initial_score = self.best_score = float(self.score(self.model))
        self.best_epoch = 0
        self._wait = 0
        self._snapshot()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = float(self.score(self.model))
        if logs is not None:
            logs[self.name] = current
        if self.sign * (current - self.best_score) > 0:
            self.best_score, self.best_epoch, self._wait = current, epoch + 1, 0
            self._snapshot()
        else:
            self._wait += 1
            if self._wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._best_weights is not None:
            for variable, value in zip(self._variables(), self._best_weights):
                variable.assign(value)


def validation_ndcg(inputs: sp.csr_matrix, relevant: sp.csr_matrix, k: int = 100):
    """score(model) -> mean NDCG@k over users with a relevant hidden movie (evaluation's metric)."""
    from recommender.ml.evaluation import hits_matrix, ndcg_at_k

    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    inputs, relevant, n_relevant = inputs[users], relevant[users], n_relevant[users]

    def score(model: "RecommenderVAE") -> float:
        if not len(users):
            return 0.0
        per_user = []
        for rows, out in _deterministic_batches(model, inputs):
            top = top_n_indices(exclude_rated(out["ranking_logits"], inputs[rows]), k)
            per_user.append(ndcg_at_k(hits_matrix(top, relevant[rows]), n_relevant[rows], k))
        return float(np.concatenate(per_user).mean())

    return score


def validation_rmse(inputs: sp.csr_matrix, targets: sp.csr_matrix, scale: float, clip: bool = True):
    """score(model) -> RMSE of the rating head on the hidden ratings, in stars (normalised * scale)."""

    def score(model: "RecommenderVAE") -> float:
        squared_errors, count = 0.0, 0
        for rows, out in _deterministic_batches(model, inputs):
            predicted = np.clip(out["rating"], 0.0, 1.0) if clip else out["rating"]  # serving clips to 0.5..5 stars
            batch_targets = targets[rows]
            target_rows = np.repeat(np.arange(batch_targets.shape[0]), np.diff(batch_targets.indptr))
            errors = predicted[target_rows, batch_targets.indices] - batch_targets.data
            squared_errors += float(np.square(errors, dtype=np.float64).sum())
            count += len(errors)
        return float(np.sqrt(squared_errors / count) * scale) if count else 0.0

    return score


@dataclass
class TrainResult:
    model: RecommenderVAE
    history: dict[str, list[float]]
    config: VAEConfig
    train_users: np.ndarray = field(repr=False)
    validation_users: np.ndarray = field(repr=False)
    # Every metric of the evaluation protocol on the validation users' hidden ratings, from the model
    # before its movie-to-movie path was refitted on every rating: these ratings were never trained on.
    validation_metrics: dict[str, float] = field(default_factory=dict)
    # Each movie's most similar movies by who liked both (similarity.similar_items_table), for serving.
    similar_items: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def serving(self) -> VAERecommender:
        """The NumPy serving model, with the similar-movies table."""
        return to_recommender(self.model, self.similar_items)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def normalize_for(config: VAEConfig, matrix: sp.spmatrix) -> sp.csr_matrix:
    if config.normalization == "report-2025":
        return data.report_normalize(matrix)
    return data.normalize_ratings(matrix)


def _initial_rating_bias(normalized: sp.csr_matrix, rows: np.ndarray, damping: float = 5.0) -> np.ndarray:
    """Damped per-movie mean rating, so the rating head starts from a sensible baseline."""
    train_part = normalized[rows]
    global_mean = float(train_part.data.mean()) if train_part.nnz else 0.5
    sums = np.asarray(train_part.sum(axis=0)).ravel()
    counts = np.diff(train_part.tocsc().indptr)
    return ((sums + damping * global_mean) / (counts + damping)).astype(np.float32)


def _bias_statistics(normalized: sp.csr_matrix, item_damping: float) -> tuple[float, np.ndarray]:
    """Global mean and damped movie biases exactly as baselines.BiasRatingModel computes them."""
    model = BiasRatingModel(item_damping=item_damping).fit(normalized)
    return model.global_mean, model.item_bias.astype(np.float32)


def _star_bounds(matrix: sp.csr_matrix) -> tuple[float, float]:
    """The lowest and highest rating in the data (what flip@10 mirrors: 1 <-> 5 on ML-100K)."""
    return float(matrix.data.min()), float(matrix.data.max())


def _normalized_stars(config: VAEConfig, stars: float) -> float:
    """A rating in stars in the model's normalised units."""
    if config.normalization == "report-2025":
        return (stars - 1.0) / 4.0
    return (stars - data.RATING_MIN) / (data.RATING_MAX - data.RATING_MIN)


def _liked_threshold(config: VAEConfig, matrix: sp.csr_matrix) -> float:
    """The liked threshold in normalised units."""
    stars = config.liked_threshold if config.liked_threshold is not None else data.relevance_threshold(matrix)
    return _normalized_stars(config, stars)


def _item_item_weights(model: RecommenderVAE, normalized: sp.csr_matrix, l2: float) -> np.ndarray:
    """The movie-to-movie kernel in closed form: EASE, or its value-aware form, on normalised ratings."""
    if model.item_item.input_mode != "value_aware":
        return ease_weights(data.observed_mask(normalized), l2)
    # Normalised thresholds are float32-rounded in the data: a little slack keeps 2 and 4 stars on their side.
    return value_aware_ease_weights(
        normalized, l2, liked_threshold=model.liked_threshold - 1e-6, disliked_threshold=model.disliked_threshold + 1e-6
    )


def train(
    matrix: sp.spmatrix,
    config: VAEConfig | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> TrainResult:
    """Train a VAE on a user x movie star-rating matrix; reproducible for a given ``config.seed``.

    With ``rating_mode="bias_residual"`` training has two phases: the ranking (encoder, decoder,
    movie-to-movie path) with early stopping per ``early_stopping``, then the rating residual
    alone with the encoder frozen, early-stopped on the validation RMSE. ``callbacks`` see the
    first phase; the history has the first phase's keys plus ``rating_loss``, ``val_rating_loss``
    and ``val_rmse`` (stars) per epoch of the second phase.
    """
    config = config or PRESETS["default"]
    keras.utils.set_random_seed(config.seed)

    matrix = sp.csr_matrix(matrix)
    normalized = normalize_for(config, matrix)
    min_ratings = config.min_user_ratings or 1
    users = data.users_with_min_ratings(matrix, min_ratings)
    train_users, validation_users = data.split_users(users, config.validation_fraction, config.seed)
    if len(train_users) == 0 or len(validation_users) == 0:
        raise ValueError("not enough users with enough ratings for a train/validation split")

    validation_inputs = normalized[validation_users]
    validation_targets = None
    if config.validation_holdout_fraction > 0:
        validation_inputs, validation_targets = data.split_ratings_per_user(
            validation_inputs, config.validation_holdout_fraction, seed=config.seed
        )
    validation_batches = RowBatchDataset(
        data.RowBatcher(
            validation_inputs, np.arange(len(validation_users)), config.batch_size, targets=validation_targets
        )
    )
    # Statistics (EASE, the bias baseline) come from every rating except the validation users'
    # hidden ones, so the validation scores stay honest.
    other_rows = np.setdiff1d(np.arange(matrix.shape[0]), validation_users)
    statistics = sp.vstack([normalized[other_rows], validation_inputs], format="csr")
    train_batches = RowBatchDataset(
        data.RowBatcher(normalized, train_users, config.batch_size, shuffle=True, seed=config.seed)
    )

    liked_threshold = _liked_threshold(config, matrix)
    model = RecommenderVAE(
        n_items=matrix.shape[1],
        config=config.to_dict(),
        kl_anneal_steps=config.kl_anneal_epochs * len(train_batches),
        liked_threshold=liked_threshold,
        disliked_threshold=_normalized_stars(config, config.disliked_threshold),
    )
    ensemble = model.item_item is not None and config.item_item_training == "ensemble"
    if model.item_item is not None and config.item_item_init_ease_l2 is not None:
        model.item_item.kernel.assign(_item_item_weights(model, statistics, config.item_item_init_ease_l2))
    if ensemble:
        model.item_item.scale.assign(0.0)
    if model.rating_baseline:
        global_mean, item_bias = _bias_statistics(statistics, config.rating_item_damping)
        model.rating_global_mean.assign(global_mean)
        model.rating_item_bias.assign(item_bias)
    elif config.rating_head and config.rating_output == "linear":
        rating_layer = model.decoder.get_layer("rating")
        kernel, _ = rating_layer.get_weights()
        rating_layer.set_weights([kernel, _initial_rating_bias(normalized, train_users)])

    model.phase = "ranking" if config.two_phase else "joint"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    relevant = None
    if validation_targets is not None:
        relevant = validation_targets.multiply(validation_targets >= liked_threshold - 1e-6).tocsr()
        relevant.eliminate_zeros()
    use_ndcg = config.early_stopping == "ndcg@100" and config.ranking_head and relevant is not None
    if use_ndcg:
        early_stopping: keras.callbacks.Callback = BestEpochStopping(
            validation_ndcg(validation_inputs, relevant), "val_ndcg@100", "max", config.patience
        )
    else:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        )
    history = model.fit(
        train_batches,
        validation_data=validation_batches,
        epochs=config.max_epochs,
        callbacks=[PriorRefresh(), early_stopping, EpochTimer(), *callbacks],
        verbose=verbose,
    )
    history_dict = {name: [float(value) for value in values] for name, values in history.history.items()}
    if use_ndcg:
        history_dict["initial_val_ndcg@100"] = [early_stopping.initial_score]
        history_dict["best_epoch"] = [float(early_stopping.best_epoch)]
    if ensemble:
        low, high = (_normalized_stars(config, stars) for stars in _star_bounds(matrix))
        history_dict.update(
            _calibrate_item_item(model, config, statistics, validation_inputs, relevant, mirror=low + high)
        )

    if config.two_phase and validation_targets is not None:
        history_dict.update(_train_rating_residual(model, config, train_batches, validation_inputs,
                                                   validation_targets, verbose))
    model.phase = "joint"
    if config.two_phase:
        # A fresh optimizer over every trainable weight, so the saved .keras file's optimizer
        # matches the one Keras builds when it loads the model (no phase-2-only state).
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
        model.optimizer.build(model.trainable_variables)
    validation_metrics = {}
    if validation_targets is not None:
        validation_metrics = _validation_metrics(model, matrix, validation_users, config)
    if model.item_item is not None and config.item_item_init_ease_l2 is not None:
        # Only now, with the validation scores taken, may the closed form see every rating.
        l2 = history_dict.get("item_item_l2", [config.item_item_init_ease_l2])[0]
        model.item_item.kernel.assign(_item_item_weights(model, normalized, l2))
    return TrainResult(
        model=model,
        history=history_dict,
        config=config,
        train_users=train_users,
        validation_users=validation_users,
        validation_metrics=validation_metrics,
        similar_items=similar_items_table(matrix, k=config.similar_items),
    )


def _validation_metrics(
    model: RecommenderVAE, matrix: sp.csr_matrix, validation_users: np.ndarray, config: VAEConfig
) -> dict[str, float]:
    """The evaluation protocol's metrics on the validation users' hidden ratings (the same split as training's)."""
    from recommender.ml.evaluation import rating_scale, score_holdout

    fold_in, held_out = data.split_ratings_per_user(
        matrix[validation_users], config.validation_holdout_fraction, seed=config.seed
    )
    threshold = data.relevance_threshold(matrix)
    return score_holdout(to_recommender(model), fold_in, held_out, threshold, rating_bounds=rating_scale(matrix))


def _calibrate_item_item(
    model: RecommenderVAE,
    config: VAEConfig,
    statistics: sp.csr_matrix,
    validation_inputs: sp.csr_matrix,
    relevant: sp.csr_matrix | None,
    mirror: float,
) -> dict[str, list[float]]:
    """Ensemble: pick the movie-to-movie path's L2 and weight on validation users (weight 0 keeps the VAE alone).

    The closed form is fitted on ``statistics`` (no validation user's hidden rating) for each L2 of
    ``item_item_l2_grid``. Among the mixes whose validation flip@10 (top 10 overlap with every rating mirrored,
    ``v -> mirror - v`` in normalised units) is at most ``max_flip``, the best ``item_item_selection`` metric
    wins; when none is, the one that listens most. Also records the validation scores of each part alone and of
    the mix, so that keeping the hybrid is a choice shown on validation users. At most CALIBRATION_USERS
    validation users are scored (seeded), which bounds the memory.
    """
    l2_grid = config.item_item_l2_grid or (config.item_item_init_ease_l2,)
    if relevant is None:
        model.item_item.scale.assign(config.item_item_init_scale)
        return {"item_item_scale": [float(config.item_item_init_scale)], "item_item_l2": [float(l2_grid[0])]}
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    if len(users) > CALIBRATION_USERS:
        users = np.sort(np.random.default_rng(config.seed).choice(users, CALIBRATION_USERS, replace=False))
    inputs, relevant, n_relevant = validation_inputs[users], relevant[users], n_relevant[users]
    mirrored = inputs.copy()
    mirrored.data = (mirror - mirrored.data).astype(mirrored.dtype)
    model.item_item.scale.assign(0.0)
    logits = {
        "as rated": [out["ranking_logits"] for _, out in _deterministic_batches(model, inputs)],
        "mirrored": [out["ranking_logits"] for _, out in _deterministic_batches(model, mirrored)],
    }
    scorer = _ValidationScorer(inputs, mirrored, relevant, n_relevant)
    vae_alone = scorer.score(logits["as rated"], logits["mirrored"])
    metric = config.item_item_selection
    candidates = []  # (l2, scale, scores)
    path_alone = {}
    for l2 in l2_grid:
        model.item_item.kernel.assign(_item_item_weights(model, statistics, l2))
        paths = {name: _path_scores(model, rows) for name, rows in (("as rated", inputs), ("mirrored", mirrored))}
        path_alone[l2] = scorer.score(paths["as rated"], paths["mirrored"])
        for scale in ITEM_ITEM_SCALES:
            mixed = {
                name: [vae + scale * path for vae, path in zip(logits[name], paths[name], strict=True)]
                for name in logits
            }
            candidates.append((l2, scale, scorer.score(mixed["as rated"], mixed["mirrored"])))
        del paths
    listening = [c for c in candidates if c[2]["flip@10"] <= config.max_flip + 1e-9]
    if listening:
        l2, scale, best = max(listening, key=lambda c: c[2][metric])
    else:
        l2, scale, best = min(candidates, key=lambda c: (c[2]["flip@10"], -c[2][metric]))
    model.item_item.kernel.assign(_item_item_weights(model, statistics, l2))
    model.item_item.scale.assign(scale)
    history = {"item_item_scale": [float(scale)], "item_item_l2": [float(l2)]}
    for name in (*(f"ndcg@{k}" for k in NDCG_CUTOFFS), "flip@10"):
        history[f"val_{name}_by_item_item_scale"] = [c[2][name] for c in candidates if c[0] == l2]
        history[f"val_{name}_vae_alone"] = [vae_alone[name]]
        history[f"val_{name}_item_item_alone"] = [path_alone[l2][name]]
        history[f"val_{name}_hybrid"] = [best[name]]
    return history


def _path_scores(model: RecommenderVAE, rows: sp.csr_matrix) -> list[np.ndarray]:
    """The movie-to-movie path's scores (scale 1) for each batch of ``rows``."""
    scores = []
    for batch, _ in _row_slices(rows.shape[0]):
        values, mask = data.densify_rows(rows, np.arange(batch.start, batch.stop))
        scores.append(np.asarray(ops.matmul(model.item_item.features(values, mask), model.item_item.kernel)))
    return scores


def _row_slices(n_rows: int, batch_size: int = 512) -> Iterator[tuple[slice, None]]:
    """The row batches of :func:`_deterministic_batches`, without running the model."""
    for start in range(0, n_rows, batch_size):
        yield slice(start, min(start + batch_size, n_rows)), None


class _ValidationScorer:
    """NDCG@10, NDCG@100 and flip@10 of per-batch score lists on fixed validation users (the calibration's)."""

    def __init__(self, inputs: sp.csr_matrix, mirrored: sp.csr_matrix, relevant: sp.csr_matrix, n_relevant: np.ndarray):
        self.inputs, self.mirrored, self.relevant, self.n_relevant = inputs, mirrored, relevant, n_relevant

    def score(self, as_rated: list[np.ndarray], mirrored: list[np.ndarray]) -> dict[str, float]:
        from recommender.ml.evaluation import jaccard_overlap

        per_user: dict[str, list[np.ndarray]] = {f"ndcg@{k}": [] for k in NDCG_CUTOFFS}
        per_user["flip@10"] = []
        for index, (rows, _) in enumerate(_row_slices(self.inputs.shape[0])):
            top = top_n_indices(exclude_rated(as_rated[index], self.inputs[rows]), max(NDCG_CUTOFFS))
            for k in NDCG_CUTOFFS:
                per_user[f"ndcg@{k}"].append(_ndcg_per_user(top, self.relevant[rows], self.n_relevant[rows], k))
            top_mirrored = top_n_indices(exclude_rated(mirrored[index], self.mirrored[rows]), 10)
            per_user["flip@10"].append(jaccard_overlap(top[:, :10], top_mirrored))
        return {name: float(np.concatenate(values).mean()) for name, values in per_user.items()}


def _ndcg_per_user(top: np.ndarray, relevant: sp.csr_matrix, n_relevant: np.ndarray, k: int = 100) -> np.ndarray:
    from recommender.ml.evaluation import hits_matrix, ndcg_at_k

    return ndcg_at_k(hits_matrix(top, relevant), n_relevant, k)


def _train_rating_residual(
    model: RecommenderVAE,
    config: VAEConfig,
    train_batches: RowBatchDataset,
    validation_inputs: sp.csr_matrix,
    validation_targets: sp.csr_matrix,
    verbose: int | str,
) -> dict[str, list[float]]:
    """Second phase: the rating residual alone, best validation RMSE kept (the start is bias-only)."""
    model.phase = "rating"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.rating_learning_rate or config.learning_rate))
    scale = 4.0 if config.normalization == "report-2025" else data.RATING_MAX - data.RATING_MIN
    rating_layer = model.decoder.get_layer("rating")
    stopping = BestEpochStopping(
        validation_rmse(validation_inputs, validation_targets, scale, clip=config.normalization == "minmax"),
        "val_rmse",
        "min",
        config.patience,
        variables=lambda: rating_layer.weights,
    )
    validation_batches = RowBatchDataset(
        data.RowBatcher(
            validation_inputs, np.arange(validation_inputs.shape[0]), config.batch_size, targets=validation_targets
        )
    )
    history = model.fit(
        train_batches,
        validation_data=validation_batches,
        epochs=config.rating_max_epochs if config.rating_max_epochs is not None else config.max_epochs,
        callbacks=[stopping, EpochTimer()],
        verbose=verbose,
    )
    logs = history.history
    return {
        "rating_loss": [float(v) for v in logs.get("rating_loss", [])],
        "val_rating_loss": [float(v) for v in logs.get("val_rating_loss", [])],
        "val_rmse": [float(v) for v in logs.get("val_rmse", [])],
        "rating_epoch_seconds": [float(v) for v in logs.get("epoch_seconds", [])],
        "initial_val_rmse": [stopping.initial_score],
        "rating_best_epoch": [float(stopping.best_epoch)],
    }


def load_model(path: str) -> RecommenderVAE:
    return keras.saving.load_model(path)


def to_recommender(
    model: RecommenderVAE, similar_items: tuple[np.ndarray, np.ndarray] | None = None
) -> VAERecommender:
    """The NumPy serving model for a trained Keras model (and its similar-movies table, when given)."""
    return VAERecommender(export_weights(model, similar_items))


def recommender_factory(config: VAEConfig | None = None):
    """``fit(train_matrix) -> VAERecommender`` for :func:`recommender.ml.evaluation.evaluate`."""

    def fit(train_matrix: sp.csr_matrix) -> VAERecommender:
        return train(train_matrix, config).serving()

    return fit

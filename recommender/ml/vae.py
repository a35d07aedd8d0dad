"""Variational autoencoder recommender (Keras 3, TensorFlow backend).

Structure follows the official Keras VAE example: functional ``build_encoder`` /
``build_decoder`` builders, a registered :class:`Sampling` layer and a ``keras.Model``
subclass with its own ``train_step``/``test_step`` and loss trackers.

The default preset is a multinomial VAE (Liang et al. 2018, "Mult-VAE": L2-normalised
input with dropout, softmax log-likelihood over movies, annealed KL weight) with a second
head on the same decoder that predicts each movie's star rating (masked squared error on
observed ratings only), so one forward pass gives both a ranking and displayable stars.

The "report-2025" preset reproduces the 2025 report exactly: 1024-512-256 LeakyReLU
encoder with L2, latent 64, sigmoid output, (r - 1) / 4 normalisation with 0 meaning
"not rated" (1-star ratings vanish), masked MSE + KL with weight 1.

Only this module imports TensorFlow/Keras; serving uses :mod:`recommender.ml.inference`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from keras import ops

from recommender.ml import data
from recommender.ml.baselines import EASE
from recommender.ml.inference import VAERecommender, export_weights

ACTIVATIONS = ("tanh", "relu", "leaky_relu")
INPUT_MODES = ("ratings", "implicit", "implicit+ratings")
NORMALIZATIONS = ("minmax", "report-2025")


@dataclass(frozen=True)
class VAEConfig:
    """Every size and rate of the model and its training run."""

    encoder_units: tuple[int, ...] = (600,)
    latent_dim: int = 200
    # None mirrors the encoder (1024-512-256 -> 256-512-1024).
    decoder_units: tuple[int, ...] | None = None
    activation: str = "tanh"
    leaky_relu_slope: float = 0.2
    l2: float = 0.0
    # "implicit": which movies were rated, L2-normalised (Mult-VAE); "ratings": normalised
    # stars as they are (report); "implicit+ratings": both, concatenated.
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
    # Wide & deep ranking: add a linear movie-to-movie path (EASE-like, n_items^2 weights)
    # from the L2-normalised input straight to the ranking logits. Strong on small catalogues;
    # leave it off beyond ~20k movies (memory).
    item_item: bool = False
    item_item_l2: float = 0.0
    # Start the movie-to-movie path from EASE's closed form (this L2) on the training users,
    # times ``item_item_init_scale``; None starts it at zero. SGD on ~600 users
    # does not reach EASE's quality from zero within the early-stopping budget.
    item_item_init_ease_l2: float | None = 500.0
    item_item_init_scale: float = 100.0
    beta: float = 0.2
    # The KL weight grows linearly from 0 to ``beta`` over this many epochs (0: constant).
    kl_anneal_epochs: int = 0
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
        object.__setattr__(self, "encoder_units", tuple(self.encoder_units))
        if self.decoder_units is not None:
            object.__setattr__(self, "decoder_units", tuple(self.decoder_units))

    @property
    def resolved_decoder_units(self) -> tuple[int, ...]:
        return tuple(reversed(self.encoder_units)) if self.decoder_units is None else self.decoder_units

    def to_dict(self) -> dict[str, Any]:
        as_dict = dataclasses.asdict(self)
        as_dict["encoder_units"] = list(self.encoder_units)
        as_dict["decoder_units"] = None if self.decoder_units is None else list(self.decoder_units)
        return as_dict

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VAEConfig":
        return cls(**values)

    def replace(self, **changes: Any) -> "VAEConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, VAEConfig] = {
    # Best of the ML-100K tuning runs (benchmarks/ml/RESULTS.md): a wide linear encoder
    # straight into a 600-d latent, a linear decoder, no hidden layers.
    "default": VAEConfig(encoder_units=(), latent_dim=600, learning_rate=3e-3, rating_l2=0.01),
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


@keras.saving.register_keras_serializable(package="recommender")
class EncoderInput(keras.layers.Layer):
    """Turns (normalised ratings, observed mask) into the encoder's input features."""

    def __init__(self, mode: str = "implicit", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in INPUT_MODES:
            raise ValueError(f"mode must be one of {INPUT_MODES}")
        self.mode = mode

    def call(self, inputs: tuple[Any, Any]) -> Any:
        values, mask = inputs
        if self.mode == "ratings":
            return values
        # Mult-VAE normalises each user's row to unit length (epsilon: users with no ratings).
        implicit = mask / ops.sqrt(ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1e-12))
        if self.mode == "implicit":
            return implicit
        # Centred so that the lowest rating (normalised to 0) is still visible to the encoder.
        return ops.concatenate([implicit, mask * (values - 0.5)], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


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


def build_encoder(n_items: int, config: VAEConfig) -> keras.Model:
    """(values, mask) -> (z_mean, z_log_var, z)."""
    values = keras.Input(shape=(n_items,), name="values")
    mask = keras.Input(shape=(n_items,), name="mask")
    hidden = EncoderInput(config.input_mode, name="encoder_input")([values, mask])
    for index, units in enumerate(config.encoder_units):
        hidden = _dense(units, config, f"encoder_dense_{index}")(hidden)
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
        ease_start = config.item_item and config.item_item_init_ease_l2 is not None
        initializer = "zeros" if ease_start else "glorot_uniform"
        outputs["ranking_logits"] = _dense(n_items, config, "ranking_logits", kernel_initializer=initializer)(hidden)
    if config.rating_head:
        rating_activation = "sigmoid" if config.rating_output == "sigmoid" else None
        rating_input = StopGradient(name="rating_stop_gradient")(hidden) if config.rating_head_detached else hidden
        # With the user offset the head starts as a bias baseline: a random kernel would add
        # about a star of noise to every prediction before training has corrected it.
        initializer = "zeros" if config.rating_user_offset_damping is not None else "glorot_uniform"
        outputs["rating"] = _dense(n_items, config, "rating", rating_activation, initializer, config.rating_l2)(
            rating_input
        )
    return keras.Model(z, outputs, name="decoder")


@keras.saving.register_keras_serializable(package="recommender")
class RecommenderVAE(keras.Model):
    """Encoder + decoder with the VAE loss; ``call`` is the deterministic path (z = z_mean)."""

    def __init__(self, n_items: int, config: dict[str, Any], kl_anneal_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_items = n_items
        self.vae_config = VAEConfig.from_dict(config)
        self.kl_anneal_steps = kl_anneal_steps
        self.encoder = build_encoder(n_items, self.vae_config)
        self.decoder = build_decoder(n_items, self.vae_config)
        self.dropout_seed = keras.random.SeedGenerator(self.vae_config.seed + 1)
        self.item_item = None
        if self.vae_config.item_item and self.vae_config.ranking_head:
            self.implicit_input = EncoderInput("implicit", name="item_item_input")
            l2 = self.vae_config.item_item_l2
            self.item_item = keras.layers.Dense(
                n_items,
                use_bias=False,
                kernel_initializer="zeros",
                kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
                name="item_item",
            )
            self.item_item.build((None, n_items))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ranking_loss_tracker = keras.metrics.Mean(name="ranking_loss")
        self.rating_loss_tracker = keras.metrics.Mean(name="rating_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        # Sub-models are functional and already built; nothing is created lazily.
        self.built = True

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        trackers = [self.loss_tracker]
        if self.vae_config.ranking_head:
            trackers.append(self.ranking_loss_tracker)
        if self.vae_config.rating_head:
            trackers.append(self.rating_loss_tracker)
        return trackers + [self.kl_loss_tracker]

    def call(self, inputs: tuple[Any, Any], training: bool = False) -> dict[str, Any]:
        values, mask = inputs
        z_mean, _, _ = self.encoder([values, mask], training=training)
        return self._decode(z_mean, values, mask, training)

    def _decode(self, z: Any, values: Any, mask: Any, training: bool) -> dict[str, Any]:
        outputs = self._add_user_offset(self.decoder(z, training=training), values, mask)
        if self.item_item is not None:
            wide = self.item_item(self.implicit_input([values, mask]))
            outputs = {**outputs, "ranking_logits": outputs["ranking_logits"] + wide}
        return outputs

    def _add_user_offset(self, outputs: dict[str, Any], values: Any, mask: Any) -> dict[str, Any]:
        """Shift the rating head by the user's damped mean deviation from the movie biases."""
        damping = self.vae_config.rating_user_offset_damping
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

    def _kl_weight(self) -> Any:
        beta = self.vae_config.beta
        if self.kl_anneal_steps <= 0:
            return ops.convert_to_tensor(beta, dtype="float32")
        progress = ops.cast(self.optimizer.iterations + 1, "float32") / float(self.kl_anneal_steps)
        return beta * ops.minimum(progress, 1.0)

    def _loss_terms(
        self, outputs: dict[str, Any], z_mean: Any, z_log_var: Any, target_values: Any, target_mask: Any
    ) -> dict[str, Any]:
        terms = {}
        if self.vae_config.ranking_head:
            log_probabilities = ops.log_softmax(outputs["ranking_logits"], axis=1)
            terms["ranking_loss"] = ops.mean(-ops.sum(log_probabilities * target_mask, axis=1))
        if self.vae_config.rating_head:
            squared_errors = target_mask * ops.square(outputs["rating"] - target_values)
            if self.vae_config.rating_loss == "mean":
                terms["rating_loss"] = ops.sum(squared_errors) / ops.maximum(ops.sum(target_mask), 1.0)
            else:
                terms["rating_loss"] = ops.mean(ops.sum(squared_errors, axis=1))
        terms["kl_loss"] = ops.mean(
            -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        )
        return terms

    def _reconstruction_loss(self, terms: dict[str, Any]) -> Any:
        total = ops.convert_to_tensor(0.0, dtype="float32")
        if "ranking_loss" in terms:
            total = total + terms["ranking_loss"]
        if "rating_loss" in terms:
            total = total + self.vae_config.rating_loss_weight * terms["rating_loss"]
        return total

    def _total_loss(self, terms: dict[str, Any], kl_weight: Any) -> Any:
        total = self._reconstruction_loss(terms) + kl_weight * terms["kl_loss"]
        if self.losses:
            total = total + ops.sum(ops.stack(self.losses))
        return total

    def _update_trackers(self, total: Any, terms: dict[str, Any]) -> dict[str, Any]:
        self.loss_tracker.update_state(total)
        self.kl_loss_tracker.update_state(terms["kl_loss"])
        if "ranking_loss" in terms:
            self.ranking_loss_tracker.update_state(terms["ranking_loss"])
        if "rating_loss" in terms:
            self.rating_loss_tracker.update_state(terms["rating_loss"])
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, batch: Any) -> dict[str, Any]:
        (values, mask), (target_values, target_mask) = batch
        kl_weight = self._kl_weight()
        with tf.GradientTape() as tape:
            dropped_values, dropped_mask = self._drop_inputs(values, mask)
            z_mean, z_log_var, z = self.encoder([dropped_values, dropped_mask], training=True)
            outputs = self._decode(z, dropped_values, dropped_mask, training=True)
            terms = self._loss_terms(outputs, z_mean, z_log_var, target_values, target_mask)
            total = self._total_loss(terms, kl_weight)
        gradients = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        logs = self._update_trackers(total, terms)
        return {**logs, "kl_weight": kl_weight}

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


@dataclass
class TrainResult:
    model: RecommenderVAE
    history: dict[str, list[float]]
    config: VAEConfig
    train_users: np.ndarray = field(repr=False)
    validation_users: np.ndarray = field(repr=False)

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


def train(
    matrix: sp.spmatrix,
    config: VAEConfig | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> TrainResult:
    """Train a VAE on a user x movie star-rating matrix; reproducible for a given ``config.seed``."""
    config = config or PRESETS["default"]
    keras.utils.set_random_seed(config.seed)

    matrix = sp.csr_matrix(matrix)
    normalized = normalize_for(config, matrix)
    min_ratings = config.min_user_ratings or 1
    users = data.users_with_min_ratings(matrix, min_ratings)
    train_users, validation_users = data.split_users(users, config.validation_fraction, config.seed)
    if len(train_users) == 0 or len(validation_users) == 0:
        raise ValueError("not enough users with enough ratings for a train/validation split")

    train_batches = RowBatchDataset(
        data.RowBatcher(normalized, train_users, config.batch_size, shuffle=True, seed=config.seed)
    )
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

    model = RecommenderVAE(
        n_items=matrix.shape[1],
        config=config.to_dict(),
        kl_anneal_steps=config.kl_anneal_epochs * len(train_batches),
    )
    if model.item_item is not None and config.item_item_init_ease_l2 is not None:
        ease = EASE(config.item_item_init_ease_l2).fit(matrix[train_users])
        model.item_item.set_weights([ease.item_weights * config.item_item_init_scale])
    if config.rating_head and config.rating_output == "linear":
        rating_layer = model.decoder.get_layer("rating")
        kernel, _ = rating_layer.get_weights()
        rating_layer.set_weights([kernel, _initial_rating_bias(normalized, train_users)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    history = model.fit(
        train_batches,
        validation_data=validation_batches,
        epochs=config.max_epochs,
        callbacks=[early_stopping, *callbacks],
        verbose=verbose,
    )
    return TrainResult(
        model=model,
        history={name: [float(value) for value in values] for name, values in history.history.items()},
        config=config,
        train_users=train_users,
        validation_users=validation_users,
    )


def load_model(path: str) -> RecommenderVAE:
    return keras.saving.load_model(path)


def to_recommender(model: RecommenderVAE) -> VAERecommender:
    """The NumPy serving model for a trained Keras model."""
    return VAERecommender(export_weights(model))


def recommender_factory(config: VAEConfig | None = None):
    """``fit(train_matrix) -> VAERecommender`` for :func:`recommender.ml.evaluation.evaluate`."""

    def fit(train_matrix: sp.csr_matrix) -> VAERecommender:
        return to_recommender(train(train_matrix, config).model)

    return fit

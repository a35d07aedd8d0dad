"""The Keras layers of the model and the functional encoder and decoder builders.

The layers are registered as Keras serializable (package "recommender"), so a saved model loads again
once this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from keras import ops

from recommender.ml.vae import sparse
from recommender.ml.vae.config import INPUT_MODES, ITEM_ITEM_INPUTS, LAYER_NORM_EPSILON, VAEConfig


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


RowReader = Callable[[Any, Any], Any]  # (kernel, row ids) -> those rows of the kernel


def _first_dense(layer: keras.layers.Dense, hidden: Any, read_rows: RowReader = sparse.gather_rows) -> Any:
    """A Dense layer that also takes a sparse batch (``sparse.CompactColumns``): only the kernel's rows of the
    batch's columns are read (``read_rows``, a gather), so the kernel's gradient is a ``tf.IndexedSlices`` of those
    rows, which ``optimizer.RowSparseAdam`` applies without touching the rest."""
    if isinstance(hidden, sparse.CompactColumns):
        return tf.matmul(hidden.values, read_rows(layer.kernel, hidden.columns)) + layer.bias
    return layer(hidden)


def encoder_stack(
    config: VAEConfig,
    hidden: Any,
    layer: Callable[[str, Callable[[], Any]], Any],
    read_rows: RowReader = sparse.gather_rows,
) -> tuple[Any, Any]:
    """features -> (z_mean, z_log_var); ``layer(name, make)`` makes a layer (build) or looks it up (sparse pass).

    ``hidden`` may be a tf.SparseTensor: only the layers that read the features directly see it, as the dense
    block of the columns it uses (shared by those layers), through ``read_rows``.
    """
    if isinstance(hidden, tf.SparseTensor):
        hidden = sparse.compact_columns(hidden)
    earlier: list[Any] = []
    for index, units in enumerate(config.encoder_units):
        name = f"encoder_dense_{index}"
        hidden = _first_dense(layer(name, lambda n=name, u=units: _dense(u, config, n)), hidden, read_rows)
        if config.encoder_style == "dense_skip":
            if earlier:
                hidden = layer(f"encoder_skip_{index}", lambda i=index: keras.layers.Add(name=f"encoder_skip_{i}"))(
                    [hidden, *earlier]
                )
            hidden = layer(
                f"encoder_activation_{index}", lambda i=index: _activation_layer(config, f"encoder_activation_{i}")
            )(hidden)
            hidden = layer(
                f"encoder_norm_{index}",
                lambda i=index: keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"encoder_norm_{i}"),
            )(hidden)
            earlier.append(hidden)
        else:
            hidden = layer(
                f"encoder_activation_{index}", lambda i=index: _activation_layer(config, f"encoder_activation_{i}")
            )(hidden)
    z_mean = _first_dense(layer("z_mean", lambda: _dense(config.latent_dim, config, "z_mean")), hidden, read_rows)
    z_log_var = _first_dense(
        layer("z_log_var", lambda: _dense(config.latent_dim, config, "z_log_var")), hidden, read_rows
    )
    return z_mean, z_log_var


def build_encoder(n_items: int, config: VAEConfig, thresholds: tuple[float, float] = (0.778, 0.333)) -> keras.Model:
    """(values, mask) -> (z_mean, z_log_var, z); ``thresholds``: (liked, disliked) in normalised units."""
    values = keras.Input(shape=(n_items,), name="values")
    mask = keras.Input(shape=(n_items,), name="mask")
    hidden = EncoderInput(config.input_mode, *thresholds, name="encoder_input")([values, mask])
    z_mean, z_log_var = encoder_stack(config, hidden, lambda name, make: make())
    z = Sampling(seed=config.seed, name="sampling")([z_mean, z_log_var])
    return keras.Model([values, mask], [z_mean, z_log_var, z], name="encoder")


def encode_sparse(
    encoder: keras.Model, config: VAEConfig, features: tf.SparseTensor, read_rows: RowReader = sparse.gather_rows
) -> tuple[Any, Any, Any]:
    """The encoder's layers on sparse features (sparse.encoder_features): (z_mean, z_log_var, z)."""
    z_mean, z_log_var = encoder_stack(config, features, lambda name, make: encoder.get_layer(name), read_rows)
    return z_mean, z_log_var, encoder.get_layer("sampling")([z_mean, z_log_var])


def decode_heads(decoder: keras.Model, config: VAEConfig, z: Any, heads: tuple[str, ...]) -> dict[str, Any]:
    """The decoder's layers, only the heads asked for (the ranking phase needs no 59k-wide rating output)."""
    hidden = z
    for index in range(len(config.resolved_decoder_units)):
        hidden = decoder.get_layer(f"decoder_dense_{index}")(hidden)
        hidden = decoder.get_layer(f"decoder_activation_{index}")(hidden)
    outputs = {}
    if "ranking_logits" in heads and config.ranking_head:
        outputs["ranking_logits"] = decoder.get_layer("ranking_logits")(hidden)
    if "rating" in heads and config.rating_head:
        rating_input = ops.stop_gradient(hidden) if config.rating_head_detached else hidden
        outputs["rating"] = decoder.get_layer("rating")(rating_input)
    return outputs


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
        top_k: int | None = None,
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
        self.top_k = top_k
        self.n_features = 2 * n_items if input_mode == "value_aware" else n_items
        regularizer = keras.regularizers.L2(l2) if l2 > 0 and trainable_kernel else None
        if top_k is None:
            self.kernel = self.add_weight(
                shape=(self.n_features, n_items),
                initializer="zeros",
                regularizer=regularizer,
                trainable=trainable_kernel,
                name="kernel",
            )
        else:
            # Movie j's k strongest inputs (feature indices, ascending) and their weights: k x n, not n x n.
            self.k = min(top_k, self.n_features)
            self.neighbours = self.add_weight(
                shape=(n_items, self.k), initializer="zeros", dtype="int32", trainable=False, name="neighbours"
            )
            self.neighbour_weights = self.add_weight(
                shape=(n_items, self.k),
                initializer="zeros",
                regularizer=regularizer,
                trainable=trainable_kernel,
                name="neighbour_weights",
            )
        self.scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(initial_scale), name="scale")
        self.built = True

    def features(self, values: Any, mask: Any) -> Any:
        if self.input_mode == "binary":
            return mask
        if self.input_mode == "value_aware":
            return ops.concatenate([mask, signed_feedback(values, mask, self.liked, self.disliked)], axis=1)
        return mask / ops.sqrt(ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1e-12))

    def _sparse_kernel_t(self) -> tf.SparseTensor:
        """The top-k kernel, transposed (movies x features), rows in canonical order."""
        rows = tf.repeat(tf.range(self.n_items, dtype=tf.int64), self.k)
        columns = tf.cast(tf.reshape(self.neighbours, [-1]), tf.int64)
        return tf.SparseTensor(
            tf.stack([rows, columns], axis=1),
            tf.reshape(self.neighbour_weights, [-1]),
            [self.n_items, self.n_features],
        )

    def path_scores(self, features: Any) -> Any:
        """features @ kernel, unscaled; ``features`` dense or a tf.SparseTensor (batch x n_features)."""
        if self.top_k is not None:
            if isinstance(features, tf.SparseTensor):
                features = tf.sparse.to_dense(tf.sparse.reorder(features))  # batch x n_features, n <= 20,000
            return tf.transpose(tf.sparse.sparse_dense_matmul(self._sparse_kernel_t(), features, adjoint_b=True))
        if isinstance(features, tf.SparseTensor):
            scores = tf.sparse.sparse_dense_matmul(features, self.kernel)
            if self.trainable_kernel:
                own = tf.sparse.map_values(
                    tf.multiply, features, tf.gather(ops.diagonal(self.kernel), features.indices[:, 1])
                )
                scores = scores - tf.sparse.to_dense(tf.sparse.reorder(own))
            return scores
        scores = ops.matmul(features, self.kernel)
        if self.trainable_kernel:
            # Remove each movie's own contribution: x_i * K_ii (diagonal kept out of the fit).
            scores = scores - features * ops.diagonal(self.kernel)[None, :]
        return scores

    def call(self, values: Any, mask: Any) -> Any:
        return self.scale * self.path_scores(self.features(values, mask))

    def assign_kernel(self, weights: np.ndarray | sp.spmatrix) -> None:
        """Set the closed-form kernel (n_features x n_items); with ``top_k``, each column's k largest |weights|."""
        if self.top_k is None:
            self.kernel.assign(weights.toarray() if sp.issparse(weights) else weights)
            return
        neighbours, neighbour_weights = top_k_columns(weights, self.k, zero_diagonal=self.input_mode != "value_aware")
        self.neighbours.assign(neighbours)
        self.neighbour_weights.assign(neighbour_weights)

    def kernel_matrix(self) -> np.ndarray:
        """The kernel as a dense n_features x n_items array, unscaled, no movie predicting itself."""
        if self.top_k is not None:
            kernel = np.zeros((self.n_features, self.n_items), dtype=np.float32)
            columns = np.repeat(np.arange(self.n_items), self.k)
            weights = np.asarray(self.neighbour_weights.numpy()).ravel()
            kernel[np.asarray(self.neighbours.numpy()).ravel(), columns] = weights
            return kernel
        kernel = np.array(self.kernel.numpy(), dtype=np.float32)
        if self.input_mode != "value_aware":  # the value-aware fit already gives a movie no weight for itself
            np.fill_diagonal(kernel, 0.0)
        return kernel

    def effective_kernel(self) -> np.ndarray:
        """The kernel with its scale folded in, dense (the exported format while the kernel is whole)."""
        return self.kernel_matrix() * np.float32(self.scale.numpy())

    def effective_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """With ``top_k``: (neighbours, weights), movies x k, the scale folded in: what serving gets instead of a
        dense kernel, so neither export nor serving ever holds features x movies floats."""
        return (
            np.asarray(self.neighbours.numpy(), dtype=np.int32),
            np.asarray(self.neighbour_weights.numpy(), dtype=np.float32) * np.float32(self.scale.numpy()),
        )

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
            "top_k": self.top_k,
        }


def _log_normal(x: Any, mean: Any, log_var: Any) -> Any:
    """Elementwise log density of N(mean, exp(log_var)) at x."""
    return -0.5 * (np.log(2 * np.pi) + log_var + ops.square(x - mean) / ops.exp(log_var))


def top_k_columns(
    weights: np.ndarray | sp.spmatrix, k: int, zero_diagonal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours, weights), each n_columns x k: every column's k largest |weights|, feature indices ascending."""
    columns = sp.csc_matrix(weights) if sp.issparse(weights) else None
    n_columns = weights.shape[1]
    neighbours = np.zeros((n_columns, k), dtype=np.int32)
    kept = np.zeros((n_columns, k), dtype=np.float32)
    for start in range(0, n_columns, 1024):  # a block of dense columns at a time
        stop = min(start + 1024, n_columns)
        block = columns[:, start:stop].toarray() if columns is not None else np.asarray(weights[:, start:stop])
        block = block.T.astype(np.float32)
        magnitude = np.abs(block)
        if zero_diagonal:
            own = np.arange(start, stop)
            magnitude[own - start, own] = -1.0  # a movie is never its own neighbour
        top = np.sort(np.argpartition(-magnitude, k - 1, axis=1)[:, :k], axis=1)
        neighbours[start:stop] = top
        kept[start:stop] = np.take_along_axis(block, top, axis=1)
        if zero_diagonal:
            kept[start:stop][top == np.arange(start, stop)[:, None]] = 0.0
    return neighbours, kept

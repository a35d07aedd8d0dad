"""The VAE as one Keras model, with its own training step and training phases.

Structure follows the official Keras VAE example: functional ``build_encoder`` /
``build_decoder`` builders, a registered :class:`Sampling` layer and a ``keras.Model``
subclass with its own ``train_step``/``test_step`` and loss trackers.
"""

from __future__ import annotations

import enum
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from recommender.ml.vae.config import (
    COMPOSITE_PRIOR_WEIGHTS,
    COMPOSITE_PRIOR_WIDE_LOG_VAR,
    VAEConfig,
    _normalized_stars,
)
from recommender.ml.vae.layers import ItemItem, _log_normal, build_decoder, build_encoder
from recommender.ml.vae.sparse_steps import SparseSteps


class TrainingPhase(enum.Enum):
    """What a training step trains (:attr:`RecommenderVAE.phase`).

    ``JOINT``: every loss term trains every weight (one phase); ``RANKING`` and ``RATING``: the two phases of
    ``rating_mode="bias_residual"`` (see :class:`VAEConfig`), the ranking first, then the rating residual alone
    with the encoder frozen.
    """

    JOINT = "joint"
    RANKING = "ranking"
    RATING = "rating"


@keras.saving.register_keras_serializable(package="recommender")
class RecommenderVAE(SparseSteps, keras.Model):
    """Encoder + decoder with the VAE loss; ``call`` is the deterministic path (z = z_mean).

    Batches are dense ``(values, mask)`` pairs or, with ``sparse_input``, ``tf.SparseTensor`` rows (:class:`SparseSteps`).
    """

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
        self.phase = TrainingPhase.JOINT  # train() sets the phase; see TrainingPhase
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
                top_k=self.vae_config.resolved_item_item_top_k(n_items),
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
        if self.vae_config.ranking_head and self.phase is not TrainingPhase.RATING:
            trackers.append(self.ranking_loss_tracker)
        if self.vae_config.rating_head and self.phase is not TrainingPhase.RANKING:
            trackers.append(self.rating_loss_tracker)
        if self.phase is TrainingPhase.RATING:
            return trackers
        return trackers + [self.kl_loss_tracker]

    def call(self, inputs: Any, training: bool = False) -> dict[str, Any]:
        if isinstance(inputs, tf.SparseTensor):
            return self._sparse_call(inputs)
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

    def _kl_weight(self, rated_counts: Any) -> Any:
        """The KL weight: a scalar, or one per user (RecVAE's beta_per_rating x the user's rated count)."""
        per_rating = self.vae_config.beta_per_rating
        beta = self.vae_config.beta if per_rating is None else per_rating * rated_counts
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
        if self.vae_config.ranking_head and self.phase is not TrainingPhase.RATING:
            ranking_target = target_mask
            if self.vae_config.ranking_target == "liked":
                liked = ops.cast(target_values >= self.liked_threshold - 1e-6, target_mask.dtype)
                ranking_target = target_mask * liked
            log_probabilities = ops.log_softmax(outputs["ranking_logits"], axis=1)
            terms["ranking_loss"] = ops.mean(-ops.sum(log_probabilities * ranking_target, axis=1))
        if self.vae_config.rating_head and self.phase is not TrainingPhase.RANKING:
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
        """The L2 terms of the weights this phase trains. A frozen weight's term is a constant that costs a pass over
        the weight each step (the rating head's 600 x 59,047 kernel in the ranking phase, at ML-25M's width)."""
        losses = [weight.regularizer(weight) for weight in self._phase_variables() if weight.regularizer is not None]
        return ops.sum(ops.stack(losses)) if losses else 0.0

    def _total_loss(self, terms: dict[str, Any], kl_weight: Any) -> Any:
        if self.phase is TrainingPhase.RATING:
            return terms["rating_loss"] + self._regularization_loss()
        kl = ops.mean(kl_weight * terms["kl_per_user"])
        return self._reconstruction_loss(terms) + kl + self._regularization_loss()

    def _phase_variables(self) -> list[Any]:
        """The weights the current phase trains."""
        frozen = set()
        if self.item_item is not None and self.vae_config.item_item_training == "ensemble":
            frozen = {id(v) for v in self.item_item.weights}  # its weight is picked after training
        if self.phase is TrainingPhase.JOINT:
            return [v for v in self.trainable_weights if id(v) not in frozen]
        rating_ids = (
            {id(v) for v in self.decoder.get_layer("rating").trainable_weights}
            if self.vae_config.rating_head
            else set()
        )
        if self.phase is TrainingPhase.RATING:
            return [v for v in self.trainable_weights if id(v) in rating_ids]
        return [v for v in self.trainable_weights if id(v) not in rating_ids | frozen]

    def _update_trackers(self, total: Any, terms: dict[str, Any]) -> dict[str, Any]:
        self.loss_tracker.update_state(total)
        if self.phase is not TrainingPhase.RATING:
            self.kl_loss_tracker.update_state(terms["kl_loss"])
        if "ranking_loss" in terms:
            self.ranking_loss_tracker.update_state(terms["ranking_loss"])
        if "rating_loss" in terms:
            self.rating_loss_tracker.update_state(terms["rating_loss"])
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, batch: Any) -> dict[str, Any]:
        if isinstance(batch[0], tf.SparseTensor):
            return self._sparse_train_step(*batch)
        (values, mask), (target_values, target_mask) = batch
        if self.phase is TrainingPhase.RATING:
            return self._rating_train_step(values, mask)
        kl_weight = self._kl_weight(ops.sum(mask, axis=1))
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
        if isinstance(batch[0], tf.SparseTensor):
            return self._sparse_test_step(*batch)
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

"""The training, test and inference passes of :class:`~recommender.ml.vae.model.RecommenderVAE` on sparse batches.

A mixin of the model: the same weights, loss terms and phases as its dense steps, with the batch as a
``tf.SparseTensor`` of normalised ratings (:mod:`.sparse`). The dense steps stay for ``sparse_input=False``.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from recommender.ml.vae import sparse
from recommender.ml.vae.layers import RowReader, decode_heads, encode_sparse


class SparseSteps:
    """Sparse-batch counterparts of the model's ``call``, ``train_step`` and ``test_step``."""

    def _heads(self) -> tuple[str, ...]:
        """The heads the current phase's loss reads (the ranking phase skips the 59k-wide rating output)."""
        from recommender.ml.vae.model import TrainingPhase

        if self.phase is TrainingPhase.RANKING:
            return ("ranking_logits",)
        if self.phase is TrainingPhase.RATING:
            return ("rating",)
        return ("ranking_logits", "rating")

    def _encode_sparse(
        self, encoder: keras.Model, x: tf.SparseTensor, read_rows: RowReader = sparse.gather_rows
    ) -> tuple[Any, Any, Any]:
        features = sparse.encoder_features(
            x, self.vae_config.input_mode, self.n_items, self.liked_threshold, self.disliked_threshold
        )
        return encode_sparse(encoder, self.vae_config, features, read_rows)

    def _training_row_reader(self) -> RowReader:
        """How a training step's first layer reads its kernels' rows: with a row-sparse optimizer, as they stand
        once the optimizer has paid the momentum steps it owes them (RowSparseAdam.current_rows), so that the
        gradient is taken where Adam's weights would be."""
        current_rows = getattr(self.optimizer, "current_rows", None)
        if current_rows is None:
            return sparse.gather_rows
        if not self.optimizer.built:  # its state is read before apply_gradients would build it
            self.optimizer.build(self.trainable_variables)
        return current_rows

    def _sparse_decode(self, z: Any, x: tf.SparseTensor, heads: tuple[str, ...]) -> dict[str, Any]:
        outputs = self._sparse_user_offset(decode_heads(self.decoder, self.vae_config, z, heads), x)
        if self.item_item is not None and "ranking_logits" in outputs:
            features = sparse.item_item_features(
                x, self.item_item.input_mode, self.n_items, self.liked_threshold, self.disliked_threshold
            )
            wide = self.item_item.scale * self.item_item.path_scores(features)
            outputs = {**outputs, "ranking_logits": outputs["ranking_logits"] + wide}
        return outputs

    def _sparse_user_offset(self, outputs: dict[str, Any], x: tf.SparseTensor) -> dict[str, Any]:
        """The model's ``_add_user_offset`` with the sums taken over the rated entries."""
        if "rating" not in outputs:
            return outputs
        damping = self.vae_config.rating_user_offset_damping
        counts = sparse.row_counts(x)
        movies = x.indices[:, 1]
        if self.rating_baseline:
            baseline = self.rating_global_mean + self.rating_item_bias
            residuals = sparse.row_sums(x, x.values - tf.gather(baseline, movies))
            user_bias = residuals / (counts + (damping or 0.0))
            return {**outputs, "rating": outputs["rating"] + baseline[None, :] + user_bias[:, None]}
        if damping is None:
            return outputs
        movie_bias = self.decoder.get_layer("rating").bias
        offset = sparse.row_sums(x, x.values - tf.gather(movie_bias, movies)) / (counts + damping)
        return {**outputs, "rating": outputs["rating"] + offset[:, None]}

    def _sparse_loss_terms(
        self,
        outputs: dict[str, Any],
        z_mean: Any,
        z_log_var: Any,
        target: tf.SparseTensor,
        z: Any = None,
        prior: tuple[Any, Any] | None = None,
    ) -> dict[str, Any]:
        """The model's ``_loss_terms``: -sum(x * log_softmax) as a gather at the target's entries."""
        terms = {}
        if "ranking_logits" in outputs:
            weights = tf.ones_like(target.values)
            if self.vae_config.ranking_target == "liked":
                weights = tf.cast(target.values >= self.liked_threshold - 1e-6, tf.float32)
            # -sum(w * log_softmax) at the rated columns, as sum(w) * logsumexp - sum(w * logit): the same loss
            # without a users x movies log_softmax to build and differentiate (a few percent of an epoch).
            logits = outputs["ranking_logits"]
            log_partition = ops.logsumexp(logits, axis=1)
            rated_logits = sparse.row_sums(target, sparse.gather(logits, target) * weights)
            terms["ranking_loss"] = ops.mean(sparse.row_sums(target, weights) * log_partition - rated_logits)
        if "rating" in outputs:
            squared_errors = ops.square(sparse.gather(outputs["rating"], target) - target.values)
            if self.vae_config.rating_loss == "mean":
                terms["rating_loss"] = ops.sum(squared_errors) / ops.maximum(
                    ops.cast(ops.size(squared_errors), "float32"), 1.0
                )
            else:
                terms["rating_loss"] = ops.mean(sparse.row_sums(target, squared_errors))
        terms["kl_per_user"] = self._kl_per_user(z_mean, z_log_var, z, prior)
        terms["kl_loss"] = ops.mean(terms["kl_per_user"])
        return terms

    def _sparse_call(self, x: tf.SparseTensor) -> dict[str, Any]:
        z_mean, _, _ = self._encode_sparse(self.encoder, x)
        return self._sparse_decode(z_mean, x, ("ranking_logits", "rating"))

    def _sparse_train_step(self, x: tf.SparseTensor, target: tf.SparseTensor) -> dict[str, Any]:
        from recommender.ml.vae.model import TrainingPhase

        if self.phase is TrainingPhase.RATING:
            return self._sparse_rating_train_step(x)
        kl_weight = self._kl_weight(sparse.row_counts(x))
        variables = self._phase_variables()
        prior = None
        if self.old_encoder is not None:
            old_mean, old_log_var, _ = self._encode_sparse(self.old_encoder, x)
            prior = (ops.stop_gradient(old_mean), ops.stop_gradient(old_log_var))
        with tf.GradientTape() as tape:
            dropped = x
            if self.vae_config.input_dropout > 0:
                dropped, _ = sparse.drop_entries(x, self.vae_config.input_dropout, self.dropout_seed)
            z_mean, z_log_var, z = self._encode_sparse(self.encoder, dropped, self._training_row_reader())
            outputs = self._sparse_decode(z, dropped, self._heads())
            terms = self._sparse_loss_terms(outputs, z_mean, z_log_var, target, z=z, prior=prior)
            total = self._total_loss(terms, kl_weight)
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        logs = self._update_trackers(total, terms)
        return {**logs, "kl_weight": ops.mean(kl_weight)}

    def _sparse_rating_train_step(self, x: tf.SparseTensor) -> dict[str, Any]:
        """Rating phase: hide a share of each user's ratings, fit the residual on the hidden ones."""
        input_ratings, keep = sparse.drop_entries(x, self.vae_config.rating_input_dropout, self.dropout_seed)
        hidden_target = sparse.keep_entries(x, tf.logical_not(keep))
        variables = self._phase_variables()
        with tf.GradientTape() as tape:
            z_mean, z_log_var, _ = self._encode_sparse(self.encoder, input_ratings)
            outputs = self._sparse_decode(z_mean, input_ratings, ("rating",))
            terms = self._sparse_loss_terms(outputs, z_mean, z_log_var, hidden_target)
            total = self._total_loss(terms, 0.0)
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_trackers(total, terms)

    def _sparse_test_step(self, x: tf.SparseTensor, target: tf.SparseTensor) -> dict[str, Any]:
        z_mean, z_log_var, _ = self._encode_sparse(self.encoder, x)
        outputs = self._sparse_decode(z_mean, x, self._heads())
        terms = self._sparse_loss_terms(outputs, z_mean, z_log_var, target)
        return self._update_trackers(self._reconstruction_loss(terms), terms)

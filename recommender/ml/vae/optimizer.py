"""Adam for a wide sparse input: each step reads and writes only the rows a batch touched.

The default encoder reads two channels per movie straight into the latent code, so at ML-25M's width its two
first kernels are 118,094 x 600 each, 80% of the model's weights, while a batch of 128 users touches a few
thousand movies. Keras' Adam densifies a sparse gradient and rewrites every row and both moments each step
(memory bound: most of a CPU epoch once the input product itself is sparse). Here a sparse gradient
(``tf.IndexedSlices``, what ``tf.gather`` of a kernel gives; see ``layers._first_dense``) updates only its rows,
with their moments: the "lazy" Adam of TensorFlow Addons' ``LazyAdam`` (rows a batch does not touch keep their
moments and weights, instead of decaying). A dense gradient goes through TensorFlow's fused Adam kernel, one pass
over the weights instead of a dozen element-wise ops; its update is Keras' Adam's.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="recommender")
class RowSparseAdam(keras.optimizers.Adam):
    """Keras' Adam, lazy on sparse gradients (only the touched rows and their moments), fused on dense ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError("RowSparseAdam has no AMSGrad variant")
        super().__init__(*args, **kwargs)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        if isinstance(variable, keras.Variable):
            variable = variable.value  # the tf.Variable under it
        m, v = self._momentums[index].value, self._velocities[index].value
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        learning_rate = tf.cast(learning_rate, dtype)
        epsilon = tf.cast(self.epsilon, dtype)
        if isinstance(gradient, tf.IndexedSlices):
            step_size = learning_rate * tf.sqrt(1.0 - beta_2_power) / (1.0 - beta_1_power)
            self._sparse_update(gradient, variable, m, v, step_size, beta_1, beta_2, epsilon)
            return
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=beta_1_power,
            beta2_power=beta_2_power,
            lr=learning_rate,
            beta1=beta_1,
            beta2=beta_2,
            epsilon=epsilon,
            grad=tf.cast(gradient, dtype),
        )

    def _sparse_update(
        self,
        gradient: tf.IndexedSlices,
        variable: tf.Variable,
        m: tf.Variable,
        v: tf.Variable,
        step_size: Any,
        beta_1: Any,
        beta_2: Any,
        epsilon: Any,
    ) -> None:
        # A row may appear more than once (two reads of one kernel): sum its slices first. The encoder's gather
        # reads each row once, so the sum (a pass over every value) is skipped when the rows are already unique.
        rows, positions = tf.unique(gradient.indices)
        values = tf.cast(gradient.values, variable.dtype)
        values = tf.cond(
            tf.size(rows) < tf.size(gradient.indices),
            lambda: tf.math.unsorted_segment_sum(values, positions, tf.size(rows)),
            lambda: values,
        )
        m_rows = beta_1 * tf.gather(m, rows) + (1.0 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1.0 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(step_size * m_rows / (tf.sqrt(v_rows) + epsilon), rows))

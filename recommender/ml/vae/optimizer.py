"""Adam for a wide sparse input: each step reads and writes only the rows a batch touched.

The default encoder reads two channels per movie straight into the latent code, so at ML-25M's width its two
first kernels are 118,094 x 600 each, 80% of the model's weights, while a batch of 128 users touches a few
thousand movies. Keras' Adam densifies a sparse gradient and rewrites every row and both moments each step
(memory bound: most of a CPU epoch once the input product itself is sparse). Here a sparse gradient
(``tf.IndexedSlices``, what ``tf.gather`` of a kernel gives; see ``layers._first_dense``) updates only its rows,
with their moments.

Unlike TensorFlow Addons' ``LazyAdam``, the rows a batch does not touch are not frozen. Adam keeps moving a row on
its momentum while its gradient is zero; a lazy Adam that skips those steps trains a different model, the more so
the fewer rows a step touches (rare movies; input dropout). On ML-100K with the dense path's dropout masks, one
epoch of the lazy update ended 13% of the largest weight away from Adam's weights; this one ends 0.5% away, and
its validation NDCG@100 matches Adam's to four digits.

So each row remembers the step it was last updated at, and owes the k steps since: ``sum(step_size(last + i) *
r^i, i = 1..k) * m / (sqrt(v) + eps)`` with ``r = beta_1 / sqrt(beta_2)``, its moments decayed by ``beta^k``.
That is Adam's update for k zero-gradient steps, up to epsilon not scaled with the decaying velocity (the geometric
terms fade within a few dozen steps, while the velocity decays by 0.1% a step). The training step's forward pass
reads a row as if paid (:meth:`RowSparseAdam.current_rows`), so its gradient is taken where Adam's weights are; the
update pays it with the new step, and :meth:`RowSparseAdam.catch_up` pays every row before a validation.

Both kinds of update go through TensorFlow's fused Adam kernel, one multi-threaded pass instead of a dozen
element-wise ops (its update is Keras' Adam's): a dense gradient on the variable itself, a sparse one on the
touched rows copied into scratch variables, their moments first decayed over the missed steps, then written back.
The update takes the rows' state from the forward pass's read when the gradient's rows are the rows it read.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from recommender.ml.vae import sparse


@keras.saving.register_keras_serializable(package="recommender")
class RowSparseAdam(keras.optimizers.Adam):
    """Keras' Adam, row-sparse on sparse gradients (touched rows, missed steps caught up), fused on dense ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError("RowSparseAdam has no AMSGrad variant")
        super().__init__(*args, **kwargs)

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        # The step at which each row was last updated (0: never), for the catch-up of the steps it missed.
        self._last_steps = [
            self.add_variable(shape=(variable.shape[0] if len(variable.shape) else 1,), dtype="int64", name="last_step")
            for variable in var_list
        ]
        self._sparse_indexes: set[int] = set()  # the variables that have had a sparse update
        self._caught_up_at = 0  # the step of the last catch_up (a second call at the same step has nothing to do)
        self._row_reads: dict[int, _RowRead] = {}  # this step's current_rows reads, for its update to reuse
        with tf.init_scope():  # built inside the first traced training step
            self._row_scratch = _RowScratch(var_list)

    def _missed_update(self, m_rows: Any, v_rows: Any, last: Any, missed: Any, learning_rate: Any) -> Any:
        """What Adam would have subtracted from rows last updated at step ``last`` over the ``missed`` steps since,
        each with a zero gradient: ``sum(step_size(last + i) * r^i, i = 1..missed) * m / (sqrt(v) + epsilon)``.

        The sum is a geometric one times the step size at the r^i-weighted mean step, which is exact for a step
        size that changes linearly (the bias correction changes slowly once past the first steps).
        """
        dtype = m_rows.dtype
        ratio = tf.cast(self.beta_1, dtype) / tf.sqrt(tf.cast(self.beta_2, dtype))
        k = tf.cast(missed, dtype)
        ratio_k = tf.pow(ratio, k)
        weights = ratio * (1.0 - ratio_k) / (1.0 - ratio)
        weighted_steps = ratio * (1.0 - (k + 1.0) * ratio_k + k * ratio_k * ratio) / tf.square(1.0 - ratio)
        mean_offset = tf.math.divide_no_nan(weighted_steps, weights)
        step_size = self._step_size(learning_rate, tf.cast(last, dtype) + tf.maximum(mean_offset, 1.0), dtype)
        epsilon = tf.cast(self.epsilon, dtype)
        return (step_size * weights)[:, None] * m_rows / (tf.sqrt(v_rows) + epsilon)

    def current_rows(self, variable: Any, rows: Any) -> Any:
        """``variable[rows]`` as Adam would have them now: the gathered rows less the steps this optimizer owes them.

        The training step's forward pass reads the first layer's rows through this, so the gradient is taken at
        Adam's weights; the owed part is a constant to the gradient, which stays the gathered rows'
        ``tf.IndexedSlices``. The next update applies the same owed steps to the variable itself, reusing what this
        read gathered and worked out when the gradient's rows are these rows (:class:`_RowRead`).
        """
        index = self._trainable_variables_indices.get(self._var_key(variable)) if self.built else None
        gathered = sparse.gather_rows(variable, rows)
        if index is None:
            return gathered
        last_rows = tf.gather(self._last_steps[index].value, rows)
        m_rows, v_rows = tf.gather(self._momentums[index].value, rows), tf.gather(self._velocities[index].value, rows)
        missed = tf.cast(self.iterations, tf.int64) - last_rows
        current = gathered - tf.stop_gradient(
            self._missed_update(m_rows, v_rows, last_rows, missed, self.learning_rate)
        )
        self._row_reads[index] = _RowRead(rows, last_rows, m_rows, v_rows, current)
        return current

    def catch_up(self) -> None:
        """Bring every row of the sparsely updated variables up to the last step (eager; before a validation)."""
        if not self.built or int(self.iterations) == self._caught_up_at:
            return
        self._caught_up_at = int(self.iterations)
        steps = tf.cast(self.iterations, tf.int64)
        for index in sorted(self._sparse_indexes):
            variable = self._trainable_variables[index]
            variable = variable.value if isinstance(variable, keras.Variable) else variable
            m, v, last = self._momentums[index].value, self._velocities[index].value, self._last_steps[index].value
            missed = steps - last
            dtype = variable.dtype
            variable.assign_sub(self._missed_update(m, v, last, missed, self.learning_rate))
            missed = tf.cast(missed, dtype)[:, None]
            m.assign(m * tf.pow(tf.cast(self.beta_1, dtype), missed))
            v.assign(v * tf.pow(tf.cast(self.beta_2, dtype), missed))
            last.assign(tf.fill(tf.shape(last), steps))

    def _step_size(self, learning_rate: Any, step: Any, dtype: Any) -> Any:
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        return tf.cast(learning_rate, dtype) * tf.sqrt(1.0 - tf.pow(beta_2, step)) / (1.0 - tf.pow(beta_1, step))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        if isinstance(variable, keras.Variable):
            variable = variable.value  # the tf.Variable under it
        m, v = self._momentums[index].value, self._velocities[index].value
        if isinstance(gradient, tf.IndexedSlices):
            self._sparse_indexes.add(index)
            self._sparse_update(index, _RowUpdate(gradient, variable.dtype), variable, m, v, learning_rate)
            return
        # A dense update brings every row up to date (it owes them nothing).
        self._last_steps[index].assign(tf.fill(tf.shape(self._last_steps[index]), self.iterations + 1))
        self._fused_adam(variable, m, v, tf.cast(gradient, variable.dtype), learning_rate)

    def _fused_adam(self, variable: tf.Variable, m: tf.Variable, v: tf.Variable, gradient: Any, learning_rate: Any):
        """Keras' Adam step in TensorFlow's fused kernel: one multi-threaded pass instead of a dozen element-wise ops."""
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=gradient,
        )

    def _sparse_update(
        self,
        index: int,
        gradient: _RowUpdate,
        variable: tf.Variable,
        m: tf.Variable,
        v: tf.Variable,
        learning_rate: Any,
    ) -> None:
        """Adam on the gradient's rows: pay the steps each row missed, then one Adam step, in the scratch variables
        (the fused kernel needs variables), and write the rows back."""
        rows, values = gradient.rows, gradient.values
        last = self._last_steps[index].value
        step = tf.cast(self.iterations + 1, tf.int64)

        def gather_state() -> tuple[Any, Any, Any, Any]:
            last_rows = tf.gather(last, rows)
            m_rows, v_rows = tf.gather(m, rows), tf.gather(v, rows)
            missed = step - 1 - last_rows  # zero-gradient steps since the row's last update
            owed = self._missed_update(m_rows, v_rows, last_rows, missed, learning_rate)
            return last_rows, m_rows, v_rows, tf.gather(variable, rows) - owed

        read = self._row_reads.pop(index, None)
        if read is None or not read.same_graph(rows):
            last_rows, m_before, v_before, current = gather_state()
        else:  # the forward pass gathered these rows' state already (a few gathers of rows x 600 each, per step)
            last_rows, m_before, v_before, current = tf.cond(read.covers(rows), read.state, gather_state)
        # The moments decay over the missed steps; the fused step then applies the last decay and the gradient.
        missed = tf.cast(step - 1 - last_rows, variable.dtype)[:, None]
        weights, momentum, velocity = self._row_scratch.slots[index]
        weights.assign(current)
        momentum.assign(tf.pow(tf.cast(self.beta_1, variable.dtype), missed) * m_before)
        velocity.assign(tf.pow(tf.cast(self.beta_2, variable.dtype), missed) * v_before)
        self._fused_adam(weights, momentum, velocity, values, learning_rate)
        m.scatter_update(tf.IndexedSlices(momentum.value(), rows))
        v.scatter_update(tf.IndexedSlices(velocity.value(), rows))
        last.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step), rows))
        variable.scatter_update(tf.IndexedSlices(weights.value(), rows))


class _RowRead:
    """What :meth:`RowSparseAdam.current_rows` gathered for a variable's rows: their last steps, moments and current
    weights. The update reuses them when its rows are exactly these rows in this order, as a single gather's gradient
    gives; otherwise (rows read twice, another read) it gathers again."""

    def __init__(self, rows: Any, last_rows: Any, m_rows: Any, v_rows: Any, current: Any) -> None:
        self.rows = tf.cast(tf.reshape(rows, [-1]), tf.int64)
        self._state = (last_rows, m_rows, v_rows, current)

    def state(self) -> tuple[Any, Any, Any, Any]:
        return self._state

    def same_graph(self, rows: Any) -> bool:
        """Both from one trace of the training step (or both eager): a read left by another trace is not reused."""
        return getattr(self.rows, "graph", None) is getattr(rows, "graph", None)

    def covers(self, rows: Any) -> Any:
        rows = tf.cast(rows, tf.int64)
        return tf.cond(
            tf.equal(tf.size(rows), tf.size(self.rows)),
            lambda: tf.reduce_all(tf.equal(rows, self.rows)),
            lambda: tf.constant(False),
        )


class _RowScratch:
    """Per variable, three tf.Variables of any number of rows (weights, momentum, velocity) that hold one step's
    rows for TensorFlow's fused Adam kernel. Working memory, not optimizer state: a plain object, so neither Keras
    nor TensorFlow tracks or saves them."""

    def __init__(self, var_list: list[Any]) -> None:
        self.slots = [self._slots(variable) for variable in var_list]

    @staticmethod
    def _slots(variable: Any) -> tuple[tf.Variable, tf.Variable, tf.Variable] | None:
        if not len(variable.shape):
            return None
        row_shape = list(variable.shape[1:])
        return tuple(
            tf.Variable(
                tf.zeros([0, *row_shape], variable.dtype),
                shape=tf.TensorShape([None, *row_shape]),
                trainable=False,
                name=f"row_scratch_{name}",
            )
            for name in ("weights", "momentum", "velocity")
        )


class _RowUpdate:
    """A sparse gradient as unique rows and their summed values.

    A row may appear more than once (two reads of one kernel): its slices are summed. The encoder's gather reads
    each row once, so the sum (a pass over every value) is skipped when the rows are already unique.
    """

    def __init__(self, gradient: tf.IndexedSlices, dtype: Any) -> None:
        self.rows, positions = tf.unique(gradient.indices)
        values = tf.cast(gradient.values, dtype)
        self.values = tf.cond(
            tf.size(self.rows) < tf.size(gradient.indices),
            lambda: tf.math.unsorted_segment_sum(values, positions, tf.size(self.rows)),
            lambda: values,
        )

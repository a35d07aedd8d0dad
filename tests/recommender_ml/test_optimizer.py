"""Issue 15: RowSparseAdam is Keras' Adam on dense gradients and touches only a sparse gradient's rows, owing the
rows a step skips the moves Adam would have made, until they come back or catch_up() pays them."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from recommender.ml import vae
from recommender.ml.vae.layers import encode_sparse
from recommender.ml.vae.optimizer import RowSparseAdam
from recommender.ml.vae.sparse import encoder_features, sparse_batch

INITIAL = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")


def _train(optimizer, rows_per_step, densify: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few steps of sum(scale * kernel[rows] ** 2), the rows read as the model's training step reads them
    (through RowSparseAdam.current_rows); returns the kernel and its two moments."""
    kernel = keras.Variable(INITIAL.copy())
    optimizer.build([kernel])
    read_rows = getattr(optimizer, "current_rows", tf.gather)
    for step, rows in enumerate(rows_per_step):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(read_rows(kernel, tf.constant(rows)) ** 2 * (step + 1))
        gradient = tape.gradient(loss, kernel)
        if densify:
            gradient = tf.convert_to_tensor(gradient)
        optimizer.apply_gradients([(gradient, kernel)])
    index = optimizer._get_variable_index(kernel)
    return kernel.numpy(), optimizer._momentums[index].numpy(), optimizer._velocities[index].numpy()


def test_a_dense_gradient_gets_keras_adams_update() -> None:
    every_row = [list(range(8))] * 4
    expected = _train(keras.optimizers.Adam(learning_rate=0.1), every_row, densify=True)
    got = _train(RowSparseAdam(learning_rate=0.1), every_row, densify=True)
    for expected_array, got_array in zip(expected, got, strict=True):
        np.testing.assert_allclose(got_array, expected_array, rtol=1e-4, atol=1e-5)


def test_a_sparse_gradient_updates_only_its_rows_and_their_moments() -> None:
    steps = [[0, 2], [2, 5], [0, 5]]
    kernel, momentum, velocity = _train(RowSparseAdam(learning_rate=0.1), steps)
    untouched = [1, 3, 4, 6, 7]
    np.testing.assert_array_equal(kernel[untouched], INITIAL[untouched])
    assert not momentum[untouched].any() and not velocity[untouched].any()
    assert (np.abs(kernel[[0, 2, 5]] - INITIAL[[0, 2, 5]]) > 1e-3).all()


TARGET = np.random.default_rng(2).normal(size=(8, 3)).astype("float32")


def _fit_target(optimizer, rows_per_step, densify: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps of sum((kernel[rows] - target[rows]) ** 2): a gradient that depends on where the rows are."""
    kernel = keras.Variable(INITIAL.copy())
    optimizer.build([kernel])
    read_rows = getattr(optimizer, "current_rows", tf.gather)
    for rows in rows_per_step:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((read_rows(kernel, tf.constant(rows)) - TARGET[rows]) ** 2)
        gradient = tape.gradient(loss, kernel)
        optimizer.apply_gradients([(tf.convert_to_tensor(gradient) if densify else gradient, kernel)])
    index = optimizer._get_variable_index(kernel)
    return kernel.numpy(), optimizer._momentums[index].numpy(), optimizer._velocities[index].numpy()


def _random_steps(n_steps: int, seed: int = 1) -> list[list[int]]:
    """Steps that each touch a random subset of the 8 rows: every row misses runs of steps of varying length."""
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(8, size=int(rng.integers(1, 4)), replace=False).tolist()) for _ in range(n_steps)]


def test_rows_a_step_skips_catch_up_with_keras_adam() -> None:
    """Adam keeps moving a row on its momentum while its gradient is zero; the row-sparse update owes those moves,
    reads the rows as if paid (current_rows) and pays them when the row comes back or at catch_up(). A lazy Adam
    (rows frozen between touches) ends a sizeable share of the movement away; the catch-up, a small one."""
    steps = _random_steps(80)
    expected = _fit_target(keras.optimizers.Adam(learning_rate=0.02), steps, densify=True)
    optimizer = RowSparseAdam(learning_rate=0.02)
    kernel, _, _ = _fit_target(optimizer, steps)
    movement = np.abs(expected[0] - INITIAL).max()
    owed = np.abs(kernel - expected[0]).max()
    optimizer.catch_up()
    assert owed > 0.02 * movement  # before catch_up, the rows the last steps skipped are behind
    np.testing.assert_allclose(optimizer._trainable_variables[0].numpy(), expected[0], atol=0.01 * movement)
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), expected[1], rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), expected[2], rtol=0.05, atol=1e-3)


def test_a_returning_row_first_takes_the_steps_it_missed() -> None:
    """Row 0 is touched at steps 1 and 5 only: after step 5 it is where Keras' Adam puts it, without a catch_up."""
    steps = [[0, 1], [1], [1], [1], [0, 1]]
    expected, _, _ = _fit_target(keras.optimizers.Adam(learning_rate=0.02), steps, densify=True)
    got, _, _ = _fit_target(RowSparseAdam(learning_rate=0.02), steps)
    movement = np.abs(expected[:2] - INITIAL[:2]).max()
    np.testing.assert_allclose(got[:2], expected[:2], atol=0.01 * movement)


def test_catch_up_twice_at_one_step_changes_nothing() -> None:
    optimizer = RowSparseAdam(learning_rate=0.1)
    _train(optimizer, [[0, 1], [1]])
    optimizer.catch_up()
    once = [variable.numpy().copy() for variable in optimizer.variables]
    optimizer.catch_up()
    for before, after in zip(once, (variable.numpy() for variable in optimizer.variables), strict=True):
        np.testing.assert_array_equal(after, before)


def test_repeated_rows_are_summed_as_the_dense_gradient_would_be() -> None:
    """A row read twice in one step gets the sum of both slices; rows never read stay at zero moments."""
    steps = [[0, 2, 2, 5]] * 3
    expected = _train(keras.optimizers.Adam(learning_rate=0.1), steps, densify=True)
    got = _train(RowSparseAdam(learning_rate=0.1), steps)
    for expected_array, got_array in zip(expected, got, strict=True):
        np.testing.assert_allclose(got_array, expected_array, rtol=1e-4, atol=1e-5)


def test_amsgrad_is_refused() -> None:
    with pytest.raises(ValueError, match="AMSGrad"):
        RowSparseAdam(amsgrad=True)


def test_the_sparse_encoders_kernel_gradient_covers_only_the_batchs_movies(ratings) -> None:
    config = vae.preset("default", item_item=False)
    model = vae.RecommenderVAE(ratings.shape[1], config.to_dict())
    normalized = vae.normalize_for(config, ratings)
    batch = sparse_batch(normalized, np.arange(3))
    kernel = model.encoder.get_layer("z_mean").kernel
    with tf.GradientTape() as tape:
        features = encoder_features(
            batch, config.input_mode, model.n_items, model.liked_threshold, model.disliked_threshold
        )
        z_mean, _, _ = encode_sparse(model.encoder, config, features)
        loss = tf.reduce_sum(z_mean**2)
    gradient = tape.gradient(loss, kernel)
    assert isinstance(gradient, tf.IndexedSlices)
    movies = np.unique(normalized[:3].indices)
    # Two input channels per movie (implicit and signed): rows m and n_items + m.
    expected_rows = np.concatenate([movies, movies + ratings.shape[1]])
    assert sorted(np.unique(gradient.indices.numpy()).tolist()) == sorted(expected_rows.tolist())


def test_the_configuration_names_the_optimizer() -> None:
    from recommender.ml.vae.training import _optimizer

    assert isinstance(_optimizer(vae.preset("default"), 1e-3), RowSparseAdam)
    keras_adam = _optimizer(vae.preset("default-keras-adam"), 1e-3)
    assert type(keras_adam) is keras.optimizers.Adam
    with pytest.raises(ValueError, match="optimizer must be one of"):
        vae.preset("default", optimizer="sgd")


def test_training_pays_what_it_owes_before_each_epoch_is_scored(ratings) -> None:
    """OptimizerCatchUp runs first at each epoch's end (and before Keras' validation): a callback after it, like the
    early stopping that scores and keeps the weights, finds no row of the sparse kernels behind the last step."""
    seen = []

    class RowsOwed(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            optimizer = self.model.optimizer
            steps = int(optimizer.iterations)
            owed = [int(np.sum(steps - last.numpy())) for last in optimizer._last_steps]
            seen.append((steps, sorted(optimizer._sparse_indexes), owed))

    config = vae.preset("default-vae-alone", max_epochs=2, patience=2, batch_size=16, rating_max_epochs=1)
    vae.train(ratings, config, callbacks=[RowsOwed()])
    assert len(seen) == 2 and seen[1][0] == 2 * seen[0][0]  # both epochs trained
    for _, sparse_indexes, owed in seen:
        assert sparse_indexes  # the two first-layer kernels
        assert all(owed[index] == 0 for index in sparse_indexes)


def test_the_catch_up_callback_calls_the_optimizer_when_it_can() -> None:
    from recommender.ml.vae.callbacks import OptimizerCatchUp

    calls = []
    callback = OptimizerCatchUp()
    callback.set_model(
        type("Model", (), {"optimizer": type("Optimizer", (), {"catch_up": lambda self: calls.append(1)})()})()
    )
    callback.on_test_begin()
    callback.on_epoch_end(0)
    assert len(calls) == 2
    callback.set_model(type("Model", (), {"optimizer": keras.optimizers.Adam()})())
    callback.on_epoch_end(0)  # Keras' Adam owes nothing: no error


def test_the_update_reuses_what_the_forward_read_gathered(monkeypatch) -> None:
    """The training step's read (current_rows) gathered the rows' state; the update of the same rows takes it from
    there instead of gathering again, and ends where a fresh gather would."""
    from recommender.ml.vae import optimizer as optimizer_module

    reused = []
    state = optimizer_module._RowRead.state
    monkeypatch.setattr(optimizer_module._RowRead, "state", lambda self: reused.append(1) or state(self))
    steps = _random_steps(30)
    kernel, momentum, velocity = _fit_target(RowSparseAdam(learning_rate=0.02), steps)
    assert len(reused) == len(steps)
    monkeypatch.setattr(optimizer_module._RowRead, "covers", lambda self, rows: tf.constant(False))
    expected = _fit_target(RowSparseAdam(learning_rate=0.02), steps)  # every update gathers afresh
    for expected_array, got_array in zip(expected, (kernel, momentum, velocity), strict=True):
        np.testing.assert_allclose(got_array, expected_array, rtol=1e-6, atol=1e-7)


def test_an_update_of_other_rows_than_the_read_gathers_its_own() -> None:
    """A read of rows 0 and 2 followed by a gradient for rows 1 and 3 updates rows 1 and 3 from their own state."""

    def run(read_first: bool) -> list[np.ndarray]:
        optimizer = RowSparseAdam(learning_rate=0.1)
        kernel = keras.Variable(INITIAL.copy())
        optimizer.build([kernel])
        for step in range(3):
            if read_first:
                optimizer.current_rows(kernel, tf.constant([0, 2]))
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((tf.gather(kernel.value, tf.constant([1, 3])) - TARGET[[1, 3]]) ** 2 * (step + 1))
            optimizer.apply_gradients([(tape.gradient(loss, kernel), kernel)])
        return [variable.numpy() for variable in optimizer.variables]

    for expected, got in zip(run(read_first=False), run(read_first=True), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_the_rows_read_gathers_in_place_without_copying_the_variable() -> None:
    """tf.gather of a Keras variable reads all of it, which TensorFlow copies once a sparse update has touched the
    variable (two 118,094 x 600 kernels a step at ML-25M's width); gather_rows is a resource gather."""
    from recommender.ml.vae.sparse import gather_rows

    kernel = keras.Variable(INITIAL.copy())
    graph = tf.function(lambda rows: gather_rows(kernel, rows)).get_concrete_function(tf.TensorSpec([None], tf.int64))
    op_types = {op.type for op in graph.graph.get_operations()}
    assert "ResourceGather" in op_types and "ReadVariableOp" not in op_types
    np.testing.assert_array_equal(gather_rows(kernel, tf.constant([3, 1])).numpy(), INITIAL[[3, 1]])


def test_the_optimizer_saves_only_adams_state() -> None:
    """The fused kernel's scratch rows are working memory: not among the optimizer's saved variables."""
    optimizer = RowSparseAdam(learning_rate=0.1)
    _train(optimizer, [[0, 2], [2, 5]])
    names = [variable.name for variable in optimizer.variables]
    assert not [name for name in names if "scratch" in name]
    assert len(names) == 2 + 3  # iterations, learning rate; momentum, velocity and last step of the kernel

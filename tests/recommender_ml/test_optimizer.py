"""Issue 15: RowSparseAdam is Keras' Adam on dense gradients and touches only a sparse gradient's rows."""

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
    """A few steps of sum(scale * kernel[rows] ** 2); returns the kernel and its two moments."""
    kernel = keras.Variable(INITIAL.copy())
    for step, rows in enumerate(rows_per_step):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(kernel, tf.constant(rows)) ** 2 * (step + 1))
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


def test_untouched_rows_keep_their_moments_lazily() -> None:
    """Row 0 is skipped at step 2: Keras' Adam would decay its moments and move it; the lazy update does neither."""
    optimizer = RowSparseAdam(learning_rate=0.1)
    after_first, momentum_first, _ = _train(optimizer, [[0, 1]])
    kernel = keras.Variable(after_first)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.gather(kernel, tf.constant([1])) ** 2)
    fresh = RowSparseAdam(learning_rate=0.1)
    fresh.build([kernel])
    fresh._momentums[0].assign(momentum_first)
    fresh.apply_gradients([(tape.gradient(loss, kernel), kernel)])
    np.testing.assert_array_equal(kernel.numpy()[0], after_first[0])
    np.testing.assert_array_equal(fresh._momentums[0].numpy()[0], momentum_first[0])


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

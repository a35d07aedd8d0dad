"""Issue 15: the sparse input path matches the dense one; the top-k movie-to-movie weights stay bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from recommender.ml import baselines, closed_form, data, vae
from recommender.ml.inference import VAERecommender
from recommender.ml.vae.model import TrainingPhase
from recommender.ml.vae.sparse import sparse_batch
from tests.recommender_ml.conftest import synthetic_ratings
from tests.recommender_ml.test_vae import tiny

CASES = {
    "default": {"item_item": True, "item_item_top_k": None},
    "default top-k": {"item_item": True},
    "recvae": {},
    "mult-vae-report-sizes": {},
    "report-2025": {},
}


def _model(name: str, ratings: sp.csr_matrix) -> vae.RecommenderVAE:
    preset_name = name.split()[0]
    config = vae.preset(
        preset_name, input_dropout=0.0, encoder_units=vae.preset(preset_name).encoder_units, **CASES[name]
    )
    keras.utils.set_random_seed(0)
    model = vae.RecommenderVAE(ratings.shape[1], config.to_dict())
    if model.item_item is not None:
        model.item_item.assign_kernel(vae._item_item_weights(model, data.normalize_ratings(ratings), 100.0))
        model.item_item.scale.assign(0.5)
    return model


def _loss_and_gradients(model, loss):
    variables = model._phase_variables()
    with tf.GradientTape() as tape:
        total = loss()
    return float(total), [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(total, variables)]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("phase", [TrainingPhase.JOINT, TrainingPhase.RANKING, TrainingPhase.RATING])
def test_sparse_and_dense_paths_give_the_same_outputs_loss_and_gradients(name, phase, ratings) -> None:
    model = _model(name, ratings)
    if phase is TrainingPhase.RANKING and not model.vae_config.ranking_head:
        pytest.skip("no ranking head")
    if phase is TrainingPhase.RATING and not model.vae_config.rating_head:
        pytest.skip("no rating head")
    model.phase = phase
    normalized = vae.normalize_for(model.vae_config, ratings)
    rows = np.arange(24)
    values, mask = data.densify_rows(normalized, rows)
    batch = sparse_batch(normalized, rows)
    for key, dense_output in model((values, mask)).items():
        np.testing.assert_allclose(model(batch)[key], dense_output, atol=2e-5)

    def dense_loss():
        z_mean, z_log_var, _ = model.encoder([values, mask])
        outputs = model._decode(z_mean, values, mask, True)
        terms = model._loss_terms(outputs, z_mean, z_log_var, values, mask)
        return model._total_loss(terms, 0.2)

    def sparse_loss():
        z_mean, z_log_var, _ = model._encode_sparse(model.encoder, batch)
        outputs = model._sparse_decode(z_mean, batch, model._heads())
        terms = model._sparse_loss_terms(outputs, z_mean, z_log_var, batch)
        return model._total_loss(terms, 0.2)

    dense_total, dense_gradients = _loss_and_gradients(model, dense_loss)
    sparse_total, sparse_gradients = _loss_and_gradients(model, sparse_loss)
    assert sparse_total == pytest.approx(dense_total, rel=1e-5)
    for sparse_gradient, dense_gradient in zip(sparse_gradients, dense_gradients, strict=True):
        np.testing.assert_allclose(sparse_gradient, dense_gradient, atol=1e-5 * max(1.0, np.abs(dense_gradient).max()))


def test_sparse_training_reaches_the_dense_paths_accuracy(ratings) -> None:
    settings = {"max_epochs": 6, "patience": 6, "rating_max_epochs": 2}
    sparse_run = vae.train(ratings, vae.preset("default", **settings))
    dense_run = vae.train(ratings, vae.preset("default", sparse_input=False, **settings))
    assert sparse_run.epochs_run == dense_run.epochs_run
    sparse_ndcg, dense_ndcg = (run.validation_metrics["ndcg@100"] for run in (sparse_run, dense_run))
    assert sparse_ndcg == pytest.approx(dense_ndcg, abs=0.05)
    # Serving reads the same weights whichever path trained them.
    assert set(sparse_run.serving().weights) == set(dense_run.serving().weights)


def test_with_the_dense_paths_dropout_masks_sparse_training_trains_the_dense_weights(monkeypatch) -> None:
    """The sparse path draws its dropout per rating, the dense one per cell; given the dense path's masks, the sparse
    path (row-sparse Adam; most movies untouched by each step) ends where the dense one (Adam) does: 0.2% of the
    largest weight's movement apart. A lazy Adam, which freezes the rows a step skips, ends 13% apart."""
    from recommender.ml.vae import sparse

    def dense_masks(x, rate, seed_generator):
        uniform = keras.random.uniform(tf.cast(x.dense_shape, tf.int32), seed=seed_generator)
        keep = tf.gather_nd(uniform, x.indices) >= rate
        return sparse.keep_entries(x, keep), keep

    monkeypatch.setattr(sparse, "drop_entries", dense_masks)
    ratings = synthetic_ratings(n_users=120, n_items=200, ratings_per_user=20)
    settings = {"max_epochs": 4, "patience": 4, "batch_size": 16, "rating_max_epochs": 1}
    runs = [
        vae.train(ratings, vae.preset("default-vae-alone", sparse_input=flag, **settings)) for flag in (True, False)
    ]
    sparse_kernel, dense_kernel = (run.model.encoder.get_layer("z_mean").kernel.numpy() for run in runs)
    initial = vae.RecommenderVAE(ratings.shape[1], runs[1].model.vae_config.to_dict()).encoder
    movement = np.abs(dense_kernel - initial.get_layer("z_mean").kernel.numpy()).max()
    assert np.abs(sparse_kernel - dense_kernel).max() < 0.01 * movement
    assert runs[0].history["loss"] == pytest.approx(runs[1].history["loss"], rel=1e-4)


def test_models_saved_before_the_options_load_dense() -> None:
    saved = vae.preset("default").to_dict()
    del saved["sparse_input"], saved["item_item_top_k"]
    config = vae.VAEConfig.from_dict(saved)
    assert config.sparse_input is False and config.item_item_top_k is None


def test_top_k_weights_are_the_dense_weights_top_k(ratings) -> None:
    for dense, top in (
        (
            baselines.value_aware_ease_weights(ratings, 200.0),
            baselines.value_aware_ease_weights(ratings, 200.0, top_k=7),
        ),
        (
            baselines.ease_weights(data.observed_mask(ratings), 200.0),
            baselines.ease_weights(data.observed_mask(ratings), 200.0, top_k=7),
        ),
    ):
        top = top.toarray()
        assert top.shape == dense.shape
        assert (np.count_nonzero(top, axis=0) <= 7).all()
        for column in range(dense.shape[1]):
            strongest = np.sort(np.abs(dense[:, column]))[-7:]
            np.testing.assert_allclose(np.sort(np.abs(top[:, column]))[-7:], strongest, rtol=1e-6)
            kept = top[:, column] != 0
            np.testing.assert_array_equal(top[kept, column], dense[kept, column])


def test_woodbury_columns_equal_the_dense_inverse() -> None:
    features = sp.random(30, 200, density=0.1, random_state=1, format="csr")
    precision = closed_form.Precision(features, 50.0)
    assert precision.woodbury
    dense = np.linalg.inv((features.T @ features).toarray() + 50.0 * np.eye(200))
    np.testing.assert_allclose(precision.columns(np.arange(200)), dense, atol=1e-12)


def test_top_k_weights_of_20000_movies_fit_in_a_small_memory_budget() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 300, 20_000, 40
    users = np.repeat(np.arange(n_users), per_user)
    movies = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    stars = rng.integers(1, 6, size=len(users)).astype(np.float32)
    ratings = sp.csr_matrix((stars, (users, movies)), shape=(n_users, n_items))
    tracemalloc.start()
    weights = baselines.value_aware_ease_weights(ratings, 500.0, top_k=20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The dense 2n x n float32 weights alone would be 3.2 GB, the 2n x 2n inverse 6.4 GB.
    assert peak < 400 * 2**20
    assert weights.shape == (2 * n_items, n_items) and weights.nnz <= 20 * n_items


def test_the_movie_to_movie_kernel_stays_whole_while_it_is_small() -> None:
    config = vae.preset("default")
    assert config.item_item_input == "value_aware"
    assert config.resolved_item_item_top_k(1_682) is None  # ML-100K: 2 x 1,682 x 1,682 floats, 22 MB
    assert config.resolved_item_item_top_k(10_000) == config.item_item_top_k  # 800 MB: top-k
    assert config.replace(item_item_input="binary").resolved_item_item_top_k(5_000) is None  # 100 MB
    assert config.replace(item_item_top_k=None).resolved_item_item_top_k(20_000) is None
    assert config.replace(item_item_dense_max_mb=0).resolved_item_item_top_k(50) == config.item_item_top_k


def test_a_top_k_path_is_exported_and_served_without_a_dense_kernel(ratings) -> None:
    result = vae.train(ratings, tiny(max_epochs=2, item_item=True, item_item_dense_max_mb=0))
    served = result.serving()
    assert "item_item_kernel" not in served.weights
    n_items = ratings.shape[1]
    assert served.weights["item_item_neighbours"].shape == (n_items, min(100, 2 * n_items))
    # The same scores as serving the whole kernel those neighbours make (scale folded in).
    dense = {k: v for k, v in served.weights.items() if not k.startswith("item_item_neighbour")}
    dense["item_item_kernel"] = result.model.item_item.effective_kernel()
    users = sp.csr_matrix(ratings[:7])
    np.testing.assert_allclose(
        served.rank_scores(users), VAERecommender(dense).rank_scores(users), rtol=1e-5, atol=1e-6
    )
    one = sp.csr_matrix(ratings[3])
    np.testing.assert_allclose(served.rank_scores(one), VAERecommender(dense).rank_scores(one), rtol=1e-5, atol=1e-6)


def test_training_where_keras_sees_a_gpu_keeps_the_sparse_steps_out_of_xla(ratings, monkeypatch) -> None:
    """Keras compiles the steps with XLA when it finds a GPU, and XLA cannot compile the sparse steps (a batch's
    number of ratings and movies varies). Keras is made to see a GPU here: XLA still runs on the CPU, so the
    training fails if the sparse steps are handed to it."""
    import types

    tf = pytest.importorskip("tensorflow")
    real = tf.config.list_physical_devices
    gpu = types.SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda device_type=None: [*real(device_type), *([gpu] * (not device_type))]
    )
    result = vae.train(ratings, tiny("default", max_epochs=1, rating_max_epochs=1))
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"]).all()
    assert len(result.history["rating_loss"]) == 1

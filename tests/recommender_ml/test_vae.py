from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

keras = pytest.importorskip("keras")

from recommender.ml import baselines, data, evaluation, vae
from recommender.ml.inference import VAERecommender, save_weights
from recommender.ml.vae.export import export_weights

# Smaller than the default preset but with two hidden layers, for the model-only tests (unlike tests.conftest.TINY,
# which the Django tests use, it keeps the preset's batch size, learning rate and minimum ratings).
TWO_LAYER_TINY = {"encoder_units": (32, 16), "latent_dim": 8, "max_epochs": 3, "patience": 2}  # rating phase too


def tiny(preset_name: str = "default", **overrides: object) -> vae.VAEConfig:
    return vae.preset(preset_name, **{**TWO_LAYER_TINY, **overrides})


@pytest.fixture(scope="module")
def trained(ratings: sp.csr_matrix) -> vae.TrainResult:
    return vae.train(ratings, tiny())


def dense_batch(config: vae.VAEConfig, matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return data.densify_rows(vae.normalize_for(config, matrix), rows)


def test_default_preset_is_a_multinomial_vae_with_rating_head() -> None:
    config = vae.preset()
    assert config.ranking_head and config.rating_head
    assert config.input_dropout > 0 and config.normalization == "minmax"
    assert (config.batch_size, config.max_epochs, config.patience) == (128, 200, 8)


def test_report_preset_matches_the_report() -> None:
    config = vae.preset("report-2025")
    assert config.encoder_units == (1024, 512, 256) and config.resolved_decoder_units == (256, 512, 1024)
    assert config.latent_dim == 64 and config.activation == "leaky_relu"
    assert config.rating_output == "sigmoid" and not config.ranking_head
    assert config.normalization == "report-2025" and config.beta == 1.0


def test_encoder_and_decoder_shapes() -> None:
    config = tiny()
    encoder = vae.build_encoder(50, config)
    decoder = vae.build_decoder(50, config)
    values = np.zeros((4, 50), dtype=np.float32)
    z_mean, z_log_var, z = encoder([values, values])
    assert z_mean.shape == z_log_var.shape == z.shape == (4, 8)
    outputs = decoder(z_mean)
    assert outputs["ranking_logits"].shape == (4, 50) and outputs["rating"].shape == (4, 50)
    assert [layer.name for layer in decoder.layers if layer.name.startswith("decoder_dense")] == [
        "decoder_dense_0",
        "decoder_dense_1",
    ]
    assert decoder.get_layer("decoder_dense_0").units == 16  # mirrored


def test_sampling_layer_is_registered_and_serialisable() -> None:
    layer = vae.Sampling(seed=3, name="sampling")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, vae.Sampling) and restored.seed == 3
    z_mean = np.zeros((2, 4), dtype=np.float32)
    very_small_variance = np.full((2, 4), -40.0, dtype=np.float32)
    np.testing.assert_allclose(layer([z_mean, very_small_variance]), z_mean, atol=1e-6)


def test_one_star_ratings_count_in_the_rating_loss() -> None:
    matrix = data.rating_matrix([0], [1], [1.0], shape=(1, 3))  # the user's only rating: 1 star
    # ranking_target="rated": every rated movie is a ranking target (with "liked", the default,
    # a 1-star movie is deliberately not one; its rating still counts in the rating loss).
    config = tiny(rating_user_offset_damping=None, ranking_target="rated")
    model = vae.RecommenderVAE(3, config.to_dict())
    values, mask = dense_batch(config, matrix, np.array([0]))
    assert mask[0, 1] == 1.0
    predicted = np.full((1, 3), 0.9, dtype=np.float32)
    terms = model._loss_terms(
        {"ranking_logits": np.zeros((1, 3), np.float32), "rating": predicted},
        np.zeros((1, 8), np.float32),
        np.zeros((1, 8), np.float32),
        values,
        mask,
    )
    expected = (0.9 - (1.0 - 0.5) / 4.5) ** 2
    np.testing.assert_allclose(float(terms["rating_loss"]), expected, rtol=1e-5)
    assert float(terms["ranking_loss"]) > 0  # the 1-star movie is a reconstruction target too

    # The report's pipeline loses it: nothing is observed, so nothing is learned from it.
    report = tiny("report-2025")
    _report_values, report_mask = dense_batch(report, matrix, np.array([0]))
    assert report_mask.sum() == 0


def test_training_history_and_early_stopping(trained: vae.TrainResult) -> None:
    assert {"loss", "val_loss", "ranking_loss", "rating_loss", "kl_loss"} <= set(trained.history)
    assert 1 <= trained.epochs_run <= 3
    assert trained.config == tiny()
    assert not set(trained.train_users) & set(trained.validation_users)
    assert len(trained.validation_users) == 16  # 20% of 80 users


def test_history_records_the_seconds_of_every_epoch(trained: vae.TrainResult) -> None:
    seconds = trained.history["epoch_seconds"]
    assert len(seconds) == trained.epochs_run and all(s > 0 for s in seconds)
    rating_seconds = trained.history["rating_epoch_seconds"]
    assert len(rating_seconds) == len(trained.history["val_rmse"]) and all(s > 0 for s in rating_seconds)


def test_validation_scores_stream_batches_and_match_a_single_pass(
    trained: vae.TrainResult, ratings: sp.csr_matrix
) -> None:
    # Scored batch by batch (memory bounded by the batch at ML-25M size); the result must not depend on batching.
    normalized = vae.normalize_for(trained.config, ratings)
    fold_in, held_out = data.split_ratings_per_user(normalized, 0.2, seed=1)
    relevant = held_out.multiply(held_out >= 0.7).tocsr()
    relevant.eliminate_zeros()
    batches = list(vae._deterministic_batches(trained.model, fold_in, batch_size=7))
    assert [rows.stop - rows.start for rows, _ in batches][:-1] == [7] * (len(batches) - 1)
    logits = np.concatenate([out["ranking_logits"] for _, out in batches])
    with_relevant = np.diff(relevant.indptr) > 0
    top = vae.top_n_indices(vae.exclude_rated(logits, fold_in), 100)[with_relevant]
    expected = evaluation.ndcg_at_k(
        evaluation.hits_matrix(top, relevant[with_relevant]), np.diff(relevant.indptr)[with_relevant], 100
    )
    assert vae.validation_ndcg(fold_in, relevant)(trained.model) == pytest.approx(float(expected.mean()), abs=1e-9)
    predicted = np.clip(np.concatenate([out["rating"] for _, out in batches]), 0, 1)
    errors = evaluation.rating_errors(predicted, held_out)
    assert vae.validation_rmse(fold_in, held_out, 4.5)(trained.model) == pytest.approx(
        float(np.sqrt(np.mean(errors**2)) * 4.5), rel=1e-6
    )


def test_min_user_ratings_leaves_out_light_users(ratings: sp.csr_matrix) -> None:
    light_user = sp.csr_matrix(([5.0], ([0], [0])), shape=(1, ratings.shape[1]), dtype=np.float32)
    matrix = sp.vstack([ratings, light_user], format="csr")
    result = vae.train(matrix, tiny(max_epochs=1))
    used = set(result.train_users) | set(result.validation_users)
    assert ratings.shape[0] not in used and len(used) == ratings.shape[0]


def test_training_is_reproducible_with_a_seed(ratings: sp.csr_matrix) -> None:
    config = tiny(max_epochs=2, kl_anneal_epochs=1)
    first = vae.train(ratings, config)
    second = vae.train(ratings, config)
    timings = {"epoch_seconds", "rating_epoch_seconds"}  # wall-clock, the only part that may differ
    assert {k: v for k, v in first.history.items() if k not in timings} == {
        k: v for k, v in second.history.items() if k not in timings
    }
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_kl_weight_anneals(ratings: sp.csr_matrix) -> None:
    result = vae.train(ratings, tiny(max_epochs=2, patience=5, kl_anneal_epochs=2, beta=0.4))
    assert result.history["kl_weight"][0] < result.history["kl_weight"][1] <= 0.4 + 1e-6


def test_save_and_load_round_trip(trained: vae.TrainResult, ratings: sp.csr_matrix, tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    trained.model.save(path)
    restored = vae.load_model(str(path))
    assert restored.vae_config == trained.model.vae_config
    values, mask = dense_batch(trained.config, ratings, np.arange(10))
    before, after = trained.model((values, mask)), restored((values, mask))
    for head in ("ranking_logits", "rating"):
        np.testing.assert_allclose(np.asarray(before[head]), np.asarray(after[head]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "preset_name, overrides",
    [
        ("default", {}),
        ("default", {"input_mode": "implicit+ratings", "activation": "leaky_relu", "decoder_units": (24,)}),
        ("default", {"encoder_units": (), "latent_dim": 12, "rating_head": False}),
        ("default", {"item_item": True, "input_mode": "implicit+ratings", "rating_l2": 0.01}),
        ("default", {"item_item": True, "input_mode": "implicit", "item_item_input": "binary"}),
        ("default", {"prior": "composite", "beta_per_rating": 0.01}),
        ("recvae", {"encoder_units": (24, 24, 24), "latent_dim": 8}),
        ("report-2025", {}),
    ],
)
def test_numpy_forward_matches_keras(ratings: sp.csr_matrix, preset_name: str, overrides: dict, tmp_path: Path) -> None:
    config = tiny(preset_name, max_epochs=2, **overrides)
    model = vae.train(ratings, config).model
    path = tmp_path / "weights.npz"
    save_weights(export_weights(model), path)
    recommender = VAERecommender.load(path)
    rows = np.arange(20)
    keras_outputs = model(dense_batch(config, ratings, rows))
    scores, stars = recommender.forward(ratings[rows])
    if config.rating_head:
        keras_rating = np.asarray(keras_outputs["rating"])
        denormalize = data.report_denormalize if preset_name == "report-2025" else data.denormalize_ratings
        np.testing.assert_allclose(stars, np.clip(denormalize(keras_rating), 0.5, 5.0), atol=1e-5, rtol=1e-5)
    expected_scores = keras_outputs["ranking_logits"] if config.ranking_head else None
    if expected_scores is not None:
        np.testing.assert_allclose(scores, np.asarray(expected_scores), atol=1e-5, rtol=1e-5)
    else:
        np.testing.assert_allclose(scores, stars)


def test_recommender_factory_and_model_learn_the_taste_groups(ratings: sp.csr_matrix) -> None:
    recommender = vae.recommender_factory(tiny(max_epochs=30, patience=30, learning_rate=3e-3))(ratings)
    first_half_fan = {item: 5.0 for item in range(5)}
    recommended = [r.item for r in recommender.recommend(first_half_fan, n=5)]
    assert sum(item < ratings.shape[1] // 2 for item in recommended) >= 4


def test_export_weights_includes_metadata(trained: vae.TrainResult) -> None:
    weights = export_weights(trained.model)
    # The default input has two channels per movie: rated (L2-normalised) and signed (+1 liked, -1 disliked).
    assert weights["encoder_dense_0_kernel"].shape == (100, 32)
    assert weights["ranking_logits_kernel"].shape == (32, 50)  # decoder mirrors to 16 -> 32
    assert VAERecommender(weights).metadata["n_items"] == 50


def test_save_and_load_with_movie_to_movie_path(ratings: sp.csr_matrix, tmp_path: Path) -> None:
    config = tiny(max_epochs=1, item_item=True)
    model = vae.train(ratings, config).model
    path = tmp_path / "wide.keras"
    model.save(path)
    restored = vae.load_model(str(path))
    values, mask = dense_batch(config, ratings, np.arange(5))
    np.testing.assert_allclose(
        np.asarray(model((values, mask))["ranking_logits"]),
        np.asarray(restored((values, mask))["ranking_logits"]),
        rtol=1e-6,
        atol=1e-6,
    )


# --- Round 2: NDCG early stopping, liked-only target, movie-to-movie switch, bias + residual ---


def _validation_split(config: vae.VAEConfig, matrix: sp.csr_matrix, result: vae.TrainResult):
    """The (fold-in, hidden) split of the validation users that train() scores each epoch."""
    normalized = vae.normalize_for(config, matrix)
    return data.split_ratings_per_user(
        normalized[result.validation_users], config.validation_holdout_fraction, seed=config.seed
    )


def test_early_stopping_on_validation_ndcg_restores_the_best_epoch(ratings: sp.csr_matrix) -> None:
    config = tiny(early_stopping="ndcg@100", item_item=False, max_epochs=6, patience=2, learning_rate=1e-2)
    result = vae.train(ratings, config)
    scores = result.history["val_ndcg@100"]
    assert len(scores) == result.epochs_run and {"loss", "val_loss"} <= set(result.history)
    best = max([result.history["initial_val_ndcg@100"][0], *scores])
    fold_in, hidden = _validation_split(config, ratings, result)
    liked = vae._liked_threshold(config, ratings)
    relevant = hidden.multiply(hidden >= liked - 1e-6).tocsr()
    relevant.eliminate_zeros()
    assert vae.validation_ndcg(fold_in, relevant)(result.model) == pytest.approx(best, abs=1e-9)
    best_epoch = int(result.history["best_epoch"][0])
    assert best_epoch == 0 or scores[best_epoch - 1] == pytest.approx(best)


def test_best_epoch_stopping_keeps_the_start_when_no_epoch_beats_it(ratings: sp.csr_matrix) -> None:
    model = vae.RecommenderVAE(ratings.shape[1], tiny(item_item=False).to_dict())
    start = [w.copy() for w in model.get_weights()]
    scores = iter([0.5, 0.4, 0.3])  # the start, then two worse epochs
    stopping = vae.BestEpochStopping(lambda _: next(scores), "val_score", "max", patience=2)
    stopping.set_model(model)
    stopping.on_train_begin()
    for epoch in range(2):
        for weight in model.trainable_weights:
            weight.assign(weight + 1.0)
        logs: dict = {}
        stopping.on_epoch_end(epoch, logs)
        assert "val_score" in logs
    assert model.stop_training and stopping.best_epoch == 0
    stopping.on_train_end()
    for before, after in zip(start, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_liked_target_ignores_disliked_movies_in_the_ranking_loss() -> None:
    config = tiny(ranking_target="liked", item_item=False)
    model = vae.RecommenderVAE(3, config.to_dict(), liked_threshold=(4.0 - 0.5) / 4.5)
    matrix = data.rating_matrix([0, 0], [0, 1], [5.0, 2.0], shape=(1, 3))
    values, mask = dense_batch(config, matrix, np.array([0]))
    logits = np.array([[1.0, 2.0, 0.0]], dtype=np.float32)
    outputs = {"ranking_logits": logits, "rating": np.zeros((1, 3), np.float32)}
    zeros = np.zeros((1, 8), np.float32)
    terms = model._loss_terms(outputs, zeros, zeros, values, mask)
    log_softmax = logits[0] - np.log(np.exp(logits[0]).sum())
    np.testing.assert_allclose(float(terms["ranking_loss"]), -log_softmax[0], rtol=1e-5)  # movie 1 (2 stars) left out
    rated = vae.RecommenderVAE(3, tiny(ranking_target="rated", item_item=False).to_dict())
    terms = rated._loss_terms(outputs, zeros, zeros, values, mask)
    np.testing.assert_allclose(float(terms["ranking_loss"]), -(log_softmax[0] + log_softmax[1]), rtol=1e-5)


def test_liked_threshold_follows_the_data() -> None:
    whole = data.rating_matrix([0, 0], [0, 1], [4.0, 3.0], shape=(1, 2))
    half = data.rating_matrix([0, 0], [0, 1], [3.5, 3.0], shape=(1, 2))
    config = vae.preset("default")
    assert vae._liked_threshold(config, whole) == pytest.approx((4.0 - 0.5) / 4.5)
    assert vae._liked_threshold(config, half) == pytest.approx((3.5 - 0.5) / 4.5)


def test_movie_to_movie_path_is_switched_by_catalogue_size() -> None:
    config = vae.preset("default")
    assert config.item_item is None  # decided by size
    assert config.resolved_item_item(1_682) and config.resolved_item_item(20_000)
    assert not config.resolved_item_item(59_047)  # ML-25M: n_items^2 weights would not fit in 8 GB
    assert not config.replace(item_item_max_items=40).resolved_item_item(50)
    assert vae.preset("default", item_item=False).resolved_item_item(50) is False
    assert vae.preset("default", item_item=True).resolved_item_item(10**6) is True
    small = vae.RecommenderVAE(50, tiny().to_dict())
    large = vae.RecommenderVAE(50, tiny(item_item_max_items=40).to_dict())
    assert small.item_item is not None and large.item_item is None
    assert not small.item_item.kernel.trainable  # the default keeps EASE's weights frozen (whole while small)
    bounded = vae.RecommenderVAE(50, tiny(item_item_dense_max_mb=0).to_dict())
    assert not bounded.item_item.neighbour_weights.trainable  # and as top-k neighbours past the memory bound


def test_item_item_path_starts_from_ease_with_a_zero_diagonal(ratings: sp.csr_matrix) -> None:
    config = tiny(max_epochs=1)
    model = vae.train(ratings, config).model
    kernel = model.item_item.kernel_matrix()
    assert np.all(np.diag(kernel) == 0) and np.abs(kernel).sum() > 0


def test_bias_plus_residual_is_never_worse_than_the_bias_baseline_on_validation(ratings: sp.csr_matrix) -> None:
    config = tiny(rating_mode="bias_residual", rating_max_epochs=5, patience=2)
    result = vae.train(ratings, config)
    history = result.history
    assert {"rating_loss", "val_rmse", "initial_val_rmse"} <= set(history)
    # The zero residual is the bias model itself: its validation RMSE is the starting point.
    fold_in, hidden = _validation_split(config, ratings, result)
    normalized = vae.normalize_for(config, ratings)
    others = np.setdiff1d(np.arange(ratings.shape[0]), result.validation_users)
    statistics = sp.vstack([normalized[others], fold_in], format="csr")
    statistics.data = data.denormalize_ratings(statistics.data)
    bias = baselines.BiasRatingModel(config.rating_item_damping, config.rating_user_offset_damping).fit(statistics)
    stars_fold_in = fold_in.copy()
    stars_fold_in.data = data.denormalize_ratings(stars_fold_in.data)
    stars_hidden = hidden.copy()
    stars_hidden.data = data.denormalize_ratings(stars_hidden.data)
    bias_rmse = evaluation.rmse(evaluation.rating_errors(bias.predict_ratings(stars_fold_in), stars_hidden))
    assert history["initial_val_rmse"][0] == pytest.approx(bias_rmse, abs=1e-4)
    served = vae.to_recommender(result.model)
    final_rmse = evaluation.rmse(evaluation.rating_errors(served.predict_ratings(stars_fold_in), stars_hidden))
    assert final_rmse <= bias_rmse + 1e-6
    assert final_rmse == pytest.approx(min([bias_rmse, *history["val_rmse"]]), abs=1e-4)


def test_zero_residual_predicts_exactly_the_bias_baseline(ratings: sp.csr_matrix) -> None:
    config = tiny(rating_mode="bias_residual", max_epochs=1, rating_max_epochs=1, validation_holdout_fraction=0.2)
    model = vae.train(ratings, config).model
    rating_layer = model.decoder.get_layer("rating")
    rating_layer.set_weights([np.zeros_like(w) for w in rating_layer.get_weights()])
    served = vae.to_recommender(model)
    # Fit the baseline on the same statistics train() used, in stars.
    global_mean = float(model.rating_global_mean.numpy()) * 4.5 + 0.5
    bias = baselines.BiasRatingModel()
    bias.global_mean = global_mean
    bias.item_bias = model.rating_item_bias.numpy().astype(np.float64) * 4.5
    np.testing.assert_allclose(served.predict_ratings(ratings[:10]), bias.predict_ratings(ratings[:10]), atol=1e-5)


def test_a_phase_adds_the_l2_of_only_the_weights_it_trains(ratings) -> None:
    """The ranking phase leaves the rating head alone, so its L2 term (a pass over a 600 x n_movies kernel each
    step) is not in that phase's loss; the rating and joint phases pay it."""
    from recommender.ml.vae.model import TrainingPhase

    model = vae.RecommenderVAE(ratings.shape[1], tiny("default", item_item=False, rating_l2=0.1, l2=0.0).to_dict())
    rating_kernel = model.decoder.get_layer("rating").kernel
    rating_kernel.assign(np.ones(rating_kernel.shape, dtype="float32"))
    expected = 0.1 * rating_kernel.shape[0] * rating_kernel.shape[1]
    model.phase = TrainingPhase.RANKING
    assert float(model._regularization_loss()) == 0.0
    for phase in (TrainingPhase.RATING, TrainingPhase.JOINT):
        model.phase = phase
        assert float(model._regularization_loss()) == pytest.approx(expected, rel=1e-5)

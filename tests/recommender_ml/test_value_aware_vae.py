"""The VAE listens to the stars: value-aware inputs and path, honest stored metrics, similar-movies table."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

keras = pytest.importorskip("keras")

from recommender.ml import data, evaluation, vae

# Small but long enough for the taste groups of conftest.synthetic_ratings to be learnt.
SMALL = {"encoder_units": (), "latent_dim": 16, "max_epochs": 25, "patience": 25, "min_user_ratings": 5}


@pytest.fixture(scope="module")
def listening(ratings: sp.csr_matrix) -> vae.TrainResult:
    return vae.train(ratings, vae.preset("default", **SMALL))


@pytest.fixture(scope="module")
def value_blind(ratings: sp.csr_matrix) -> vae.TrainResult:
    return vae.train(ratings, vae.preset("value-blind-2026-11", **SMALL))


def first_half_share(recommender, ratings: dict[int, float], n_items: int, n: int = 10) -> float:
    top = [r.item for r in recommender.recommend(ratings, n=n)]
    return sum(item < n_items // 2 for item in top) / len(top)


def test_a_low_rating_pushes_similar_movies_down_and_a_high_one_pulls_them_up(listening, ratings) -> None:
    n_items = ratings.shape[1]
    served = listening.serving()
    loved = {item: 5.0 for item in range(8)}
    hated = {item: 1.0 for item in range(8)}
    assert first_half_share(served, loved, n_items) >= 0.8
    assert first_half_share(served, hated, n_items) <= 0.2


def test_the_value_blind_model_treats_one_star_as_five(value_blind, ratings) -> None:
    served = value_blind.serving()
    loved = [r.item for r in served.recommend({item: 5.0 for item in range(8)}, n=10)]
    hated = [r.item for r in served.recommend({item: 1.0 for item in range(8)}, n=10)]
    assert loved == hated


def test_flip_and_disliked_metrics_separate_listening_from_value_blind(listening, value_blind, ratings) -> None:
    fold_in, held_out = data.split_ratings_per_user(ratings[:40], 0.2, seed=3)
    listens = evaluation.score_holdout(listening.serving(), fold_in, held_out, 4.0, rating_bounds=(1.0, 5.0))
    blind = evaluation.score_holdout(value_blind.serving(), fold_in, held_out, 4.0, rating_bounds=(1.0, 5.0))
    assert blind["flip@10"] == pytest.approx(1.0)
    assert listens["flip@10"] < 0.5


def test_stored_validation_metrics_come_from_a_model_that_never_saw_the_hidden_ratings(listening, ratings) -> None:
    config = listening.config
    model = listening.model
    validation_users = listening.validation_users
    normalized = vae.normalize_for(config, ratings)
    visible, _ = data.split_ratings_per_user(
        normalized[validation_users], config.validation_holdout_fraction, config.seed
    )
    others = np.setdiff1d(np.arange(ratings.shape[0]), validation_users)
    statistics = sp.vstack([normalized[others], visible], format="csr")
    served_final = listening.serving()
    l2 = listening.history["item_item_l2"][0]
    final_kernel = model.item_item.kernel_matrix()
    try:
        model.item_item.assign_kernel(vae._item_item_weights(model, statistics, l2))
        honest = vae._validation_metrics(model, ratings, validation_users, config)
    finally:
        model.item_item.assign_kernel(final_kernel)
    assert listening.validation_metrics == pytest.approx(honest)
    # The served path is the one refitted on every rating (the validation users' hidden ones included),
    # which is why the stored figures must not come from it.
    np.testing.assert_allclose(served_final.weights["item_item_kernel"], model.item_item.effective_kernel())
    weights = vae._item_item_weights(model, statistics, l2)  # whole while small, top-k (sparse) past the bound
    assert not np.allclose(final_kernel, weights.toarray() if sp.issparse(weights) else weights)


def test_the_hybrid_records_each_part_on_validation_users(listening) -> None:
    history = listening.history
    for key in ("val_ndcg@100_vae_alone", "val_ndcg@100_item_item_alone", "val_ndcg@100_hybrid", "item_item_l2"):
        assert len(history[key]) == 1 and np.isfinite(history[key][0])
    assert history["item_item_l2"][0] in listening.config.item_item_l2_grid
    # Weight 0 (the VAE alone) is one of the candidates, so the mix is never below the VAE on validation.
    assert history["val_ndcg@100_hybrid"][0] >= history["val_ndcg@100_vae_alone"][0]
    assert 0.0 <= listening.validation_metrics["flip@10"] <= 1.0


def test_similar_movies_come_from_the_served_table(listening, ratings) -> None:
    served = listening.serving()
    neighbours = served.weights["similar_items_neighbours"]
    assert neighbours.shape == (ratings.shape[1], listening.config.similar_items)
    for item in (0, 30):
        similar = [other for other, _ in served.similar_items(item, n=5)]
        assert item not in similar
        assert similar == [int(n) for n in neighbours[item] if n >= 0][:5]
        same_half = sum((other < 25) == (item < 25) for other in similar)
        assert same_half >= 4


def test_the_similar_movies_table_survives_save_and_load(listening, tmp_path) -> None:
    path = tmp_path / "weights.npz"
    listening.serving().save(path)
    restored = vae.VAERecommender.load(path)
    assert restored.similar_items(3, n=5) == listening.serving().similar_items(3, n=5)


def test_composite_prior_with_per_rating_beta_trains_and_reloads(ratings, tmp_path) -> None:
    config = vae.preset("default", **{**SMALL, "max_epochs": 2}, prior="composite", beta_per_rating=0.01)
    result = vae.train(ratings, config)
    assert all(np.isfinite(result.history["kl_loss"]))
    path = tmp_path / "composite.keras"
    result.model.save(path)
    restored = vae.load_model(str(path))
    values, mask = data.densify_rows(vae.normalize_for(config, ratings), np.arange(6))
    np.testing.assert_allclose(
        np.asarray(result.model((values, mask))["ranking_logits"]),
        np.asarray(restored((values, mask))["ranking_logits"]),
        rtol=1e-5,
        atol=1e-5,
    )

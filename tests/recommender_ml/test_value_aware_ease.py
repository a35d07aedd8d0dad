"""EASE variants that read the stars: liked-only input and the value-aware (rated + signed) ridge."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml import evaluation
from recommender.ml.baselines import (
    EASE,
    PopularityRecommender,
    ValueAwareEASE,
    signed_feedback,
    value_aware_ease_weights,
    value_aware_features,
)


def random_stars(n_users: int = 30, n_items: int = 6, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rated = rng.random((n_users, n_items)) < 0.5
    return sp.csr_matrix(np.where(rated, rng.integers(1, 6, size=rated.shape), 0).astype(np.float32))


def test_signed_feedback_marks_liked_and_disliked_only() -> None:
    stars = sp.csr_matrix(np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]], dtype=np.float32))
    np.testing.assert_array_equal(signed_feedback(stars, 4.0, 2.0).toarray(), [[1, 1, 0, -1, -1, 0]])
    features = value_aware_features(stars, 4.0, 2.0).toarray()
    np.testing.assert_array_equal(features, [[1, 1, 1, 1, 1, 0, 1, 1, 0, -1, -1, 0]])


def test_value_aware_weights_match_a_brute_force_ridge_per_movie() -> None:
    stars = random_stars()
    n_items, l2 = stars.shape[1], 3.0
    weights = value_aware_ease_weights(stars, l2, liked_threshold=4.0, disliked_threshold=2.0, target="liked")
    assert weights.shape == (2 * n_items, n_items) and weights.dtype == np.float32
    features = value_aware_features(stars, 4.0, 2.0).toarray().astype(np.float64)
    liked = (stars.toarray() >= 4.0).astype(np.float64)
    for movie in range(n_items):
        own = [movie, n_items + movie]
        # A movie's own rated and signed features never score it.
        np.testing.assert_array_equal(weights[own, movie], 0.0)
        others = np.setdiff1d(np.arange(2 * n_items), own)
        inputs = features[:, others]
        expected = np.linalg.solve(inputs.T @ inputs + l2 * np.eye(len(others)), inputs.T @ liked[:, movie])
        np.testing.assert_allclose(weights[others, movie], expected, rtol=1e-5, atol=1e-6)


def test_value_aware_rated_target_predicts_what_is_rated() -> None:
    stars = random_stars(seed=1)
    weights = value_aware_ease_weights(stars, 2.0, 4.0, 2.0, target="rated")
    features = value_aware_features(stars, 4.0, 2.0).toarray().astype(np.float64)
    rated = (stars.toarray() > 0).astype(np.float64)
    others = np.setdiff1d(np.arange(12), [0, 6])
    inputs = features[:, others]
    expected = np.linalg.solve(inputs.T @ inputs + 2.0 * np.eye(10), inputs.T @ rated[:, 0])
    np.testing.assert_allclose(weights[others, 0], expected, rtol=1e-5, atol=1e-6)


def test_value_aware_model_scores_with_its_features_and_training_threshold() -> None:
    half_stars = random_stars(seed=2)
    half_stars.data[0] = 3.5  # half stars in training: liked means >= 3.5
    model = ValueAwareEASE(5.0).fit(half_stars)
    assert model.liked_threshold == 3.5
    fold_in = sp.csr_matrix(np.array([[3.5, 0, 1, 0, 0, 5]], dtype=np.float32))
    # 3.5 counts as liked even though this fold-in alone has no other half star.
    np.testing.assert_array_equal(model.features(fold_in).toarray()[0, 6:], [1, 0, -1, 0, 0, 1])
    np.testing.assert_allclose(
        model.rank_scores(fold_in), model.features(fold_in).toarray() @ model.item_weights, rtol=1e-5
    )
    assert model.predict_ratings(fold_in) is None
    with pytest.raises(ValueError):
        ValueAwareEASE(target="watched")


def test_liked_input_ease_uses_only_liked_movies() -> None:
    stars = random_stars(seed=3)
    model = EASE(4.0, input="liked").fit(stars)
    assert model.liked_threshold == 4.0
    liked = (stars.toarray() >= 4.0).astype(np.float32)
    np.testing.assert_allclose(model.item_weights, EASE(4.0).fit(sp.csr_matrix(liked)).item_weights, rtol=1e-5)
    np.testing.assert_allclose(model.rank_scores(stars[:4]), liked[:4] @ model.item_weights, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        EASE(input="stars")


def test_flip_is_exactly_one_for_value_blind_models_and_low_for_value_aware(ratings: sp.csr_matrix) -> None:
    models = {
        "popularity": lambda matrix: PopularityRecommender().fit(matrix),
        "ease": lambda matrix: EASE(10.0).fit(matrix),
        "ease-liked": lambda matrix: EASE(10.0, input="liked").fit(matrix),
        "value-aware": lambda matrix: ValueAwareEASE(10.0).fit(matrix),
    }
    results = evaluation.evaluate(ratings, models, n_folds=4, max_folds=2)["models"]
    assert results["popularity"]["metrics"]["flip@10"] == 1.0
    assert results["ease"]["metrics"]["flip@10"] == 1.0
    # Mirrored stars turn a user's taste group around: the list must change almost entirely.
    assert results["value-aware"]["metrics"]["flip@10"] < 0.3
    assert results["ease-liked"]["metrics"]["flip@10"] < 0.3
    # Listening to the stars also beats the rated-only EASE at finding liked movies on two taste groups.
    assert results["value-aware"]["metrics"]["ndcg@100"] > results["ease"]["metrics"]["ndcg@100"]

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml.baselines import EASE, BiasRatingModel, PopularityRecommender

# users x movies, 0 = not rated
HAND_RATINGS = sp.csr_matrix(
    np.array(
        [
            [5.0, 3.0, 0.0],
            [4.0, 0.0, 1.0],
            [5.0, 0.0, 0.0],
        ],
        dtype=np.float32,
    )
)


def test_popularity_by_count() -> None:
    model = PopularityRecommender().fit(HAND_RATINGS)
    np.testing.assert_array_equal(model.item_scores, [3, 1, 1])
    assert model.rank_scores(HAND_RATINGS[:2]).shape == (2, 3)
    assert model.predict_ratings(HAND_RATINGS) is None


def test_popularity_damped_mean_with_min_count() -> None:
    model = PopularityRecommender(score="damped_mean", damping=2.0, min_count=1).fit(HAND_RATINGS)
    global_mean = 18.0 / 5
    expected = [(14 + 2 * global_mean) / 5, (3 + 2 * global_mean) / 3, (1 + 2 * global_mean) / 3]
    np.testing.assert_allclose(model.item_scores, expected)
    strict = PopularityRecommender(score="damped_mean", damping=2.0, min_count=2).fit(HAND_RATINGS)
    assert np.isneginf(strict.item_scores[1]) and np.isneginf(strict.item_scores[2])


def test_bias_model_by_hand() -> None:
    model = BiasRatingModel(item_damping=0.0, user_damping=0.0).fit(HAND_RATINGS)
    mu = 18.0 / 5
    assert model.global_mean == pytest.approx(mu)
    item_bias = [(14 - 3 * mu) / 3, 3 - mu, 1 - mu]
    np.testing.assert_allclose(model.item_bias, item_bias)
    user0_bias = ((5 - mu - item_bias[0]) + (3 - mu - item_bias[1])) / 2
    predictions = model.predict_ratings(HAND_RATINGS[:1])
    np.testing.assert_allclose(predictions[0, 2], np.clip(mu + item_bias[2] + user0_bias, 0.5, 5), rtol=1e-6)


def test_bias_model_damping_shrinks_towards_global_mean() -> None:
    model = BiasRatingModel(item_damping=3.0, user_damping=10.0).fit(HAND_RATINGS)
    mu = 18.0 / 5
    np.testing.assert_allclose(model.item_bias[1], (3 - mu) / (1 + 3.0))
    unseen = sp.csr_matrix((1, 3), dtype=np.float32)
    np.testing.assert_allclose(model.predict_ratings(unseen)[0], mu + model.item_bias)


def test_ease_closed_form_properties() -> None:
    rng = np.random.default_rng(0)
    rated = (rng.random((30, 8)) < 0.4).astype(np.float32)
    stars = sp.csr_matrix(rated * rng.integers(1, 6, size=rated.shape))
    l2 = 5.0
    model = EASE(l2).fit(stars)
    weights = model.item_weights.astype(np.float64)
    np.testing.assert_allclose(np.diag(weights), 0.0)
    # Stationarity of the constrained least squares: off-diagonal of (G + l2 I) B equals G.
    gram = rated.T.astype(np.float64) @ rated
    product = (gram + l2 * np.eye(8)) @ weights
    off_diagonal = ~np.eye(8, dtype=bool)
    np.testing.assert_allclose(product[off_diagonal], gram[off_diagonal], atol=1e-4)
    # Scores use which movies were rated, not the star values.
    np.testing.assert_allclose(model.rank_scores(stars[:3]), rated[:3] @ model.item_weights, rtol=1e-5)


def test_ease_recommends_co_rated_movie() -> None:
    # Movies 0 and 1 are always rated together; 2 is rated by others.
    matrix = sp.csr_matrix(np.array([[4, 5, 0], [3, 4, 0], [5, 5, 0], [0, 0, 4], [0, 2, 4]], dtype=np.float32))
    scores = EASE(0.5).fit(matrix).rank_scores(sp.csr_matrix(np.array([[5, 0, 0]], dtype=np.float32)))
    assert scores[0, 1] > scores[0, 2]

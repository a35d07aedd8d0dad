"""NumPy serving; models are built from hand-made weights, so no Keras is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml.inference import VAERecommender, as_rating_rows, exclude_rated, top_n_indices

N_ITEMS = 6


def hand_made_weights(seed: int = 0, input_mode: str = "implicit") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    input_width = 2 * N_ITEMS if input_mode == "implicit+ratings" else N_ITEMS
    shapes = {
        "encoder_dense_0": (input_width, 4),
        "z_mean": (4, 3),
        "decoder_dense_0": (3, 4),
        "ranking_logits": (4, N_ITEMS),
        "rating": (4, N_ITEMS),
    }
    weights = {}
    for name, shape in shapes.items():
        weights[f"{name}_kernel"] = rng.normal(size=shape).astype(np.float32)
        weights[f"{name}_bias"] = rng.normal(size=shape[1]).astype(np.float32)
    metadata = {
        "n_items": N_ITEMS,
        "input_mode": input_mode,
        "activation": "tanh",
        "leaky_relu_slope": 0.2,
        "n_encoder_layers": 1,
        "n_decoder_layers": 1,
        "rating_output": "linear",
        "normalization": "minmax",
        "rating_user_offset_damping": 10.0,
    }
    weights["metadata"] = np.array(json.dumps(metadata))
    return weights


@pytest.fixture()
def recommender() -> VAERecommender:
    return VAERecommender(hand_made_weights())


def test_forward_matches_a_hand_written_pass(recommender: VAERecommender) -> None:
    w = recommender.weights
    stars = {0: 4.0, 3: 1.0}
    x = np.zeros(N_ITEMS, np.float32)
    x[[0, 3]] = 1 / np.sqrt(2)
    hidden = np.tanh(x @ w["encoder_dense_0_kernel"] + w["encoder_dense_0_bias"])
    z = hidden @ w["z_mean_kernel"] + w["z_mean_bias"]
    hidden = np.tanh(z @ w["decoder_dense_0_kernel"] + w["decoder_dense_0_bias"])
    logits = hidden @ w["ranking_logits_kernel"] + w["ranking_logits_bias"]
    normalized = {item: (value - 0.5) / 4.5 for item, value in stars.items()}
    offset = sum(value - w["rating_bias"][item] for item, value in normalized.items()) / (2 + 10.0)
    rating = hidden @ w["rating_kernel"] + w["rating_bias"] + offset
    scores, predicted = recommender.forward(stars)
    np.testing.assert_allclose(scores[0], logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted[0], np.clip(rating * 4.5 + 0.5, 0.5, 5.0), rtol=1e-5, atol=1e-6)


def test_sparse_dense_and_dict_inputs_agree(recommender: VAERecommender) -> None:
    dense = np.array([[4.0, 0, 0, 1.0, 0, 0]], dtype=np.float32)
    from_dict = recommender.forward({0: 4.0, 3: 1.0})
    for other in (recommender.forward(dense), recommender.forward(sp.csr_matrix(dense))):
        np.testing.assert_allclose(other[0], from_dict[0])
        np.testing.assert_allclose(other[1], from_dict[1])


def test_recommend_excludes_rated_sorts_and_clips(recommender: VAERecommender) -> None:
    recommendations = recommender.recommend({0: 4.0, 3: 1.0}, n=10)
    items = [r.item for r in recommendations]
    assert len(items) == N_ITEMS - 2 and not {0, 3} & set(items)
    scores = [r.score for r in recommendations]
    assert scores == sorted(scores, reverse=True)
    assert all(0.5 <= r.predicted_rating <= 5.0 for r in recommendations)
    assert len(recommender.recommend({0: 4.0}, n=2)) == 2
    assert 0 in [r.item for r in recommender.recommend({0: 4.0}, n=N_ITEMS, exclude_rated_items=False)]


def test_recommend_leaves_out_the_columns_asked_and_still_fills_the_list(recommender: VAERecommender) -> None:
    # The watchlist and "not interested" reach recommend() as columns: the list is filled past them.
    ratings = {0: 4.0}
    full = [r.item for r in recommender.recommend(ratings, n=N_ITEMS)]
    dropped = full[:2]
    kept = recommender.recommend(ratings, n=2, exclude_items=dropped)
    assert [r.item for r in kept] == full[2:4]
    assert [r.item for r in recommender.recommend(ratings, n=N_ITEMS, exclude_items=[0, *dropped])] == full[2:]
    unrated = recommender.recommend(ratings, n=N_ITEMS, exclude_rated_items=False, exclude_items=dropped)
    assert 0 in [r.item for r in unrated] and not set(dropped) & {r.item for r in unrated}
    assert recommender.recommend(ratings, n=3, exclude_items=range(1, N_ITEMS)) == []


def test_a_dict_of_ratings_in_any_order_is_one_sorted_row_and_bad_columns_are_refused() -> None:
    rows = as_rating_rows({4: 2.0, 1: 4.5, 3: 0.5}, N_ITEMS)
    assert rows.shape == (1, N_ITEMS) and rows.has_sorted_indices
    np.testing.assert_array_equal(rows.toarray(), [[0, 4.5, 0, 0.5, 2.0, 0]])
    assert as_rating_rows({}, N_ITEMS).nnz == 0
    for bad in ({N_ITEMS: 3.0}, {-1: 3.0}):
        with pytest.raises(ValueError, match="movie columns"):
            as_rating_rows(bad, N_ITEMS)


def _variant(name: str) -> VAERecommender:
    weights = hand_made_weights(seed=3)
    metadata = json.loads(str(weights["metadata"]))
    if name == "bias residual":
        metadata["rating_mode"] = "bias_residual"
        weights["rating_global_mean"] = np.float32(0.6)
        weights["rating_item_bias"] = np.linspace(-0.2, 0.2, N_ITEMS, dtype=np.float32)
    elif name == "rating head only":
        del weights["ranking_logits_kernel"], weights["ranking_logits_bias"]
    weights["metadata"] = np.array(json.dumps(metadata))
    return VAERecommender(weights)


@pytest.mark.parametrize("variant", ["damped offset", "bias residual", "rating head only"])
def test_recommend_gives_the_scores_and_stars_of_the_whole_forward_pass(variant: str) -> None:
    # recommend() works out the stars of the shown movies only; they must be the full pass's, movie for movie.
    model = _variant(variant)
    ratings = {1: 4.5, 4: 2.0}
    scores, stars = model.forward(ratings)
    recommendations = model.recommend(ratings, n=3)
    items = [r.item for r in recommendations]
    assert items == [item for item in np.argsort(-scores[0], kind="stable") if item not in ratings][:3]
    np.testing.assert_allclose([r.score for r in recommendations], scores[0, items], rtol=1e-6)
    np.testing.assert_allclose([r.predicted_rating for r in recommendations], stars[0, items], rtol=1e-6)


def test_similar_items_by_cosine_of_output_columns(recommender: VAERecommender) -> None:
    similar = recommender.similar_items(2, n=3)
    assert len(similar) == 3 and 2 not in [item for item, _ in similar]
    vectors = recommender.weights["ranking_logits_kernel"].T
    cosine = vectors @ vectors[2] / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(vectors[2]))
    cosine[2] = -np.inf
    assert [item for item, _ in similar] == list(np.argsort(-cosine)[:3])
    np.testing.assert_allclose([value for _, value in similar], np.sort(cosine)[::-1][:3], rtol=1e-5)


def test_npz_round_trip(recommender: VAERecommender, tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    recommender.save(path)
    loaded = VAERecommender.load(path)
    assert loaded.metadata == recommender.metadata
    np.testing.assert_array_equal(loaded.forward({1: 5.0})[0], recommender.forward({1: 5.0})[0])


def test_implicit_plus_ratings_input_mode_runs() -> None:
    recommender = VAERecommender(hand_made_weights(input_mode="implicit+ratings"))
    scores, stars = recommender.forward({0: 0.5, 1: 5.0})
    assert scores.shape == stars.shape == (1, N_ITEMS)


def test_top_n_and_exclusion_helpers() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]])
    np.testing.assert_array_equal(top_n_indices(scores, 2), [[1, 3], [0, 1]])
    rated = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0]]))
    np.testing.assert_array_equal(top_n_indices(exclude_rated(scores, rated), 2), [[3, 2], [1, 2]])
    with pytest.raises(ValueError):
        as_rating_rows(np.zeros(3), 4)


def test_serving_modules_do_not_import_tensorflow_keras_or_django() -> None:
    # Checked in a fresh interpreter: other tests in this session may have imported Keras.
    code = (
        "import sys, recommender.ml.inference, recommender.ml.evaluation, recommender.ml.baselines;"
        "bad = [m for m in ('tensorflow', 'keras', 'django') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    project_root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

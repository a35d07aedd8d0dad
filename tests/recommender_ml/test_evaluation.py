from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml import evaluation
from recommender.ml.baselines import EASE, BiasRatingModel, PopularityRecommender
from recommender.ml.data import observed_mask, split_ratings_per_user

BASELINES = {
    "popularity": lambda matrix: PopularityRecommender().fit(matrix),
    "bias": lambda matrix: BiasRatingModel().fit(matrix),
    "ease": lambda matrix: EASE(10.0).fit(matrix),
}


def test_metrics_on_a_hand_computed_example() -> None:
    hits = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
    n_relevant = np.array([2, 3])
    np.testing.assert_allclose(evaluation.precision_at_k(hits, 5), [0.4, 0.0])
    np.testing.assert_allclose(evaluation.recall_at_k(hits, n_relevant, 5), [1.0, 0.0])
    np.testing.assert_allclose(evaluation.f1_at_k(hits, n_relevant, 5), [2 * 0.4 / 1.4, 0.0])
    ideal = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(evaluation.ndcg_at_k(hits, n_relevant, 5), [(1 + 1 / math.log2(4)) / ideal, 0.0])


def test_recall_at_20_is_capped_by_min_20_relevant() -> None:
    hits = np.zeros((1, 20), dtype=bool)
    hits[0, :10] = True
    many = np.array([25])
    assert evaluation.recall_at_k(hits, many, 20)[0] == pytest.approx(10 / 25)
    assert evaluation.recall_at_k_capped(hits, many, 20)[0] == pytest.approx(10 / 20)
    assert evaluation.recall_at_k_capped(hits, np.array([10]), 20)[0] == pytest.approx(1.0)


def test_ndcg_is_one_for_a_perfect_ranking() -> None:
    hits = np.array([[1, 1, 1, 0, 0, 0]], dtype=bool)
    assert evaluation.ndcg_at_k(hits, np.array([3]), 100)[0] == pytest.approx(1.0)


def test_hits_coverage_and_rating_errors() -> None:
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    top_items = np.array([[3, 0, 1], [2, 1, 0]])
    np.testing.assert_array_equal(evaluation.hits_matrix(top_items, relevant), [[1, 0, 1], [0, 0, 1]])
    assert evaluation.catalogue_coverage(top_items, 10, k=2) == pytest.approx(4 / 10)
    truth = sp.csr_matrix(np.array([[0, 4.0], [2.0, 0]], dtype=np.float32))
    errors = evaluation.rating_errors(np.array([[9.0, 3.0], [4.0, 9.0]]), truth)
    np.testing.assert_allclose(sorted(errors), [-1.0, 2.0])
    assert evaluation.rmse(errors) == pytest.approx(math.sqrt(2.5))
    assert evaluation.mae(errors) == pytest.approx(1.5)


def test_evaluate_end_to_end_on_synthetic_data(ratings: sp.csr_matrix) -> None:
    results = evaluation.evaluate(ratings, BASELINES, n_folds=4, seed=1)
    json.dumps(results)  # JSON-ready
    assert results["protocol"]["relevance_threshold"] == 4.0
    models = results["models"]
    assert len(models["ease"]["per_fold"]) == 4
    for name, model in models.items():
        for metric in evaluation.RANKING_METRICS + (evaluation.COVERAGE_METRIC,) + evaluation.TASTE_METRICS:
            assert 0.0 <= model["metrics"][metric] <= 1.0, (name, metric)
            assert len(model["per_fold"]) == 4 and metric in model["std_over_folds"]
    assert "rmse" in models["bias"]["metrics"] and "rmse" not in models["ease"]["metrics"]
    # The two taste groups are invisible to a global popularity list.
    assert models["ease"]["metrics"]["precision@5"] > models["popularity"]["metrics"]["precision@5"] + 0.2
    # Bias ranks by predicted stars: mirrored stars reverse its user offset only, so its list barely moves.
    assert models["bias"]["metrics"]["flip@10"] > 0.9
    assert results["protocol"]["rating_bounds"] == [1.0, 5.0]
    table = evaluation.format_table(results)
    assert table.count("\n") == 2 + len(models) - 1 and "precision@5" in table and "flip@10" in table


class _FixedRanking:
    """Ranks movies by index, lowest first, whatever the ratings."""

    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray:
        return np.tile(-np.arange(fold_in.shape[1], dtype=np.float32), (fold_in.shape[0], 1))

    def predict_ratings(self, fold_in: sp.csr_matrix) -> None:
        return None


def test_disliked_share_of_hidden_hits_by_hand() -> None:
    n_items = 25
    fold_in = np.zeros((3, n_items), dtype=np.float32)
    fold_in[:, 0] = 4.0
    held_out = np.zeros_like(fold_in)
    # Top 20 is movies 1..20 for everyone (movie 0 is rated).
    held_out[0, [1, 2, 24]] = [1.0, 5.0, 2.0]  # two hits, one disliked; 24 is outside the top 20
    held_out[1, [3, 5]] = [2.0, 3.0]  # two hits, one disliked (3 stars is not disliked)
    held_out[2, 22] = 1.0  # no hit
    metrics = evaluation.score_holdout(
        _FixedRanking(), sp.csr_matrix(fold_in), sp.csr_matrix(held_out), threshold=4.0, rating_bounds=(1.0, 5.0)
    )
    assert metrics["disliked@20"] == pytest.approx(2 / 4)
    strict = evaluation.score_holdout(
        _FixedRanking(), sp.csr_matrix(fold_in), sp.csr_matrix(held_out), 4.0, disliked_threshold=1.0
    )
    assert strict["disliked@20"] == pytest.approx(1 / 4)
    assert metrics["flip@10"] == 1.0
    no_hits = evaluation.score_holdout(_FixedRanking(), sp.csr_matrix(fold_in[2:]), sp.csr_matrix(held_out[2:]), 4.0)
    assert no_hits["disliked@20"] == 0.0


def test_hidden_hits_counts_per_user() -> None:
    held_out = sp.csr_matrix(np.array([[0, 1.0, 0, 4.0], [5.0, 0, 0, 0]], dtype=np.float32))
    hits, disliked = evaluation.hidden_hits(np.array([[1, 3, 0], [1, 2, 3]]), held_out, 2.0)
    np.testing.assert_array_equal(hits, [2, 0])
    np.testing.assert_array_equal(disliked, [1, 0])


def test_mirror_and_jaccard() -> None:
    whole = sp.csr_matrix(np.array([[1.0, 4.0, 0.0, 5.0]], dtype=np.float32))
    np.testing.assert_array_equal(evaluation.mirror_ratings(whole, (1.0, 5.0)).toarray(), [[5, 2, 0, 1]])
    half = sp.csr_matrix(np.array([[0.5, 4.0, 5.0]], dtype=np.float32))
    assert evaluation.rating_scale(half) == (0.5, 5.0)
    np.testing.assert_array_equal(evaluation.mirror_ratings(half, (0.5, 5.0)).toarray(), [[5, 1.5, 0.5]])
    overlap = evaluation.jaccard_overlap(np.array([[0, 1, 2], [0, 1, 2]]), np.array([[2, 1, 3], [4, 5, 6]]))
    np.testing.assert_allclose(overlap, [2 / 4, 0.0])


class _StarSum:
    """Scores every movie by the user's total stars on movies 0 and 1: listens to values, not to which movie."""

    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray:
        dense = fold_in.toarray()
        weights = np.linspace(1.0, -1.0, fold_in.shape[1], dtype=np.float32)
        return (dense[:, :2].sum(axis=1, keepdims=True) - 6.0) * weights[None, :]

    def predict_ratings(self, fold_in: sp.csr_matrix) -> None:
        return None


def test_flip_when_mirrored_stars_reverse_the_list() -> None:
    n_items = 30
    fold_in = np.zeros((2, n_items), dtype=np.float32)
    fold_in[0, :2] = [5.0, 5.0]  # mirrored: 1 + 1, the opposite sign around 6
    fold_in[1, :2] = [3.0, 3.0]  # mirrored: the same, so the same list
    held_out = np.zeros_like(fold_in)
    held_out[:, 29] = 4.0
    metrics = evaluation.score_holdout(
        _StarSum(), sp.csr_matrix(fold_in), sp.csr_matrix(held_out), 4.0, rating_bounds=(1.0, 5.0)
    )
    # User 0: movies 2..11 against 20..29, no overlap; user 1: all scores 0, same list both times.
    assert metrics["flip@10"] == pytest.approx((0.0 + 1.0) / 2)


def test_evaluate_with_a_tiny_vae(ratings: sp.csr_matrix) -> None:
    pytest.importorskip("keras")
    from recommender.ml import vae

    config = vae.preset("default", encoder_units=(16,), latent_dim=8, max_epochs=2, patience=1)
    results = evaluation.evaluate(ratings, {"vae": vae.recommender_factory(config)}, n_folds=2, max_folds=1)
    assert results["protocol"]["folds_run"] == 1
    assert {"precision@5", "ndcg@100", "rmse"} <= set(results["models"]["vae"]["metrics"])


def test_evaluate_rating_splits(ratings: sp.csr_matrix) -> None:
    splits = [split_ratings_per_user(ratings, 0.2, seed=seed) for seed in (0, 1)]
    results = evaluation.evaluate_rating_splits(splits, {"bias": BASELINES["bias"]})
    assert len(results["models"]["bias"]["per_fold"]) == 2
    assert 0 < results["models"]["bias"]["metrics"]["rmse"] < 2
    with pytest.raises(ValueError):
        evaluation.evaluate_rating_splits(splits, {"ease": BASELINES["ease"]})


@pytest.mark.real_data
def test_baselines_on_real_movielens_100k(ml100k_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "ml"))
    from movielens import load_ml100k

    models = {"popularity": BASELINES["popularity"], "ease-500": lambda matrix: EASE(500.0).fit(matrix)}
    results = evaluation.evaluate(load_ml100k(ml100k_path), models, n_folds=5, seed=0)["models"]
    # The issue author's figures with this protocol: 0.156 / 0.279 and 0.334 / 0.503.
    assert results["popularity"]["metrics"]["precision@5"] == pytest.approx(0.156, abs=0.02)
    assert results["ease-500"]["metrics"]["precision@5"] == pytest.approx(0.334, abs=0.02)
    assert results["ease-500"]["metrics"]["ndcg@100"] == pytest.approx(0.503, abs=0.02)


class _TiedCoRated:
    """Value-blind (reads only which movies were rated) and full of tied scores: integer co-rating weights."""

    def __init__(self, n_items: int) -> None:
        self.weights = np.random.default_rng(0).integers(0, 2, size=(n_items, n_items)).astype(np.float32)

    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray:
        return np.asarray(observed_mask(fold_in) @ self.weights)

    def predict_ratings(self, fold_in: sp.csr_matrix) -> None:
        return None


def test_flip_is_exactly_one_for_a_value_blind_model_with_ties() -> None:
    # Ties must be broken the same way for both lists, or a value-blind model would seem to listen.
    rng = np.random.default_rng(1)
    stars = np.where(rng.random((200, 300)) < 0.02, rng.integers(1, 6, size=(200, 300)), 0).astype(np.float32)
    fold_in, held_out = split_ratings_per_user(sp.csr_matrix(stars), 0.2, seed=0)
    assert evaluation.score_holdout(_TiedCoRated(300), fold_in, held_out, 4.0)["flip@10"] == 1.0

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
        for metric in evaluation.RANKING_METRICS + (evaluation.COVERAGE_METRIC,):
            assert 0.0 <= model["metrics"][metric] <= 1.0, (name, metric)
    assert "rmse" in models["bias"]["metrics"] and "rmse" not in models["ease"]["metrics"]
    # The two taste groups are invisible to a global popularity list.
    assert models["ease"]["metrics"]["precision@5"] > models["popularity"]["metrics"]["precision@5"] + 0.2
    table = evaluation.format_table(results)
    assert table.count("\n") == 2 + len(models) - 1 and "precision@5" in table


def test_evaluate_with_a_tiny_vae(ratings: sp.csr_matrix) -> None:
    pytest.importorskip("keras")
    from recommender.ml import vae

    config = vae.preset("default", encoder_units=(16,), latent_dim=8, max_epochs=2, patience=1)
    results = evaluation.evaluate(ratings, {"vae": vae.recommender_factory(config)}, n_folds=2, max_folds=1)
    assert results["protocol"]["folds_run"] == 1
    assert {"precision@5", "ndcg@100", "rmse"} <= set(results["models"]["vae"]["metrics"])


def test_evaluate_rating_splits(ratings: sp.csr_matrix) -> None:
    from recommender.ml.data import split_ratings_per_user

    splits = [split_ratings_per_user(ratings, 0.2, seed=seed) for seed in (0, 1)]
    results = evaluation.evaluate_rating_splits(splits, {"bias": BASELINES["bias"]})
    assert len(results["models"]["bias"]["per_fold"]) == 2
    assert 0 < results["models"]["bias"]["metrics"]["rmse"] < 2
    with pytest.raises(ValueError):
        evaluation.evaluate_rating_splits(splits, {"ease": BASELINES["ease"]})


ML100K = Path("/work/shared/datasets/ml-100k")


@pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason="MovieLens 100K not available")
def test_baselines_on_real_movielens_100k() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "ml"))
    from movielens import load_ml100k

    models = {"popularity": BASELINES["popularity"], "ease-500": lambda matrix: EASE(500.0).fit(matrix)}
    results = evaluation.evaluate(load_ml100k(), models, n_folds=5, seed=0)["models"]
    # The issue author's figures with this protocol: 0.156 / 0.279 and 0.334 / 0.503.
    assert results["popularity"]["metrics"]["precision@5"] == pytest.approx(0.156, abs=0.02)
    assert results["ease-500"]["metrics"]["precision@5"] == pytest.approx(0.334, abs=0.02)
    assert results["ease-500"]["metrics"]["ndcg@100"] == pytest.approx(0.503, abs=0.02)

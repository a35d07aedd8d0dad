"""Honest hyperparameter selection: validation users come from the training matrix only."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml import evaluation
from recommender.ml.baselines import (
    EASE,
    BiasRatingModel,
    PopularityRecommender,
    Tuned,
    baseline_factories,
    l2_candidates,
    select_on_validation,
    tuned_factory,
)


def _row_keys(matrix: sp.spmatrix) -> list[tuple]:
    matrix = sp.csr_matrix(matrix)
    return [
        tuple(zip(matrix.indices[start:end].tolist(), matrix.data[start:end].tolist()))
        for start, end in zip(matrix.indptr[:-1], matrix.indptr[1:])
    ]


class _Spy:
    """Popularity model that remembers every matrix it was fitted on and every fold-in it scored."""

    def __init__(self, log: dict[str, list]) -> None:
        self.log = log

    def fit(self, matrix: sp.spmatrix) -> _Spy:
        self.log["fitted"].append(sp.csr_matrix(matrix))
        self.model = PopularityRecommender().fit(matrix)
        return self

    def rank_scores(self, fold_in: sp.spmatrix) -> np.ndarray:
        self.log["scored"].append(sp.csr_matrix(fold_in))
        return self.model.rank_scores(fold_in)

    def predict_ratings(self, fold_in: sp.spmatrix) -> None:
        return None


def test_selection_only_sees_the_users_of_the_matrix_it_gets(ratings: sp.csr_matrix) -> None:
    train, outside = ratings[:50], ratings[50:]
    log: dict[str, list] = {"fitted": [], "scored": []}
    best, scores = select_on_validation(train, {"a": lambda m: _Spy(log).fit(m), "b": lambda m: _Spy(log).fit(m)})
    assert best == "a" and set(scores) == {"a", "b"}  # a tie goes to the first candidate
    train_rows, outside_rows = set(_row_keys(train)), set(_row_keys(outside))
    fitted_rows = set(_row_keys(log["fitted"][0]))
    assert fitted_rows < train_rows and not fitted_rows & outside_rows
    # Each scored fold-in (as given, or mirrored for flip@10) rates a subset of the movies
    # of a training user who was not fitted on.
    validation_movies = [{movie for movie, _ in row} for row in train_rows - fitted_rows]
    assert len(validation_movies) == 10  # 20% of 50
    for scored in log["scored"]:
        for fold_in_row in _row_keys(scored):
            assert any({movie for movie, _ in fold_in_row} < movies for movies in validation_movies)


def test_selection_picks_the_better_candidate(ratings: sp.csr_matrix) -> None:
    candidates = {
        "popularity": lambda m: PopularityRecommender().fit(m),
        "ease": lambda m: EASE(10.0).fit(m),
    }
    best, scores = select_on_validation(ratings, candidates, seed=3)
    assert best == "ease" and scores["ease"] > scores["popularity"] + 0.1
    # Lower is better for disliked@20: the choice follows the metric's direction.
    best_disliked, disliked = select_on_validation(ratings, candidates, metric="disliked@20", seed=3)
    assert disliked[best_disliked] == min(disliked.values())
    with pytest.raises(ValueError, match="unknown metric"):
        select_on_validation(ratings, candidates, metric="accuracy")


def test_selection_needs_validation_users() -> None:
    one_user = sp.csr_matrix(np.array([[5.0, 4.0, 0.0], [0.0, 0.0, 3.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2 users"):
        select_on_validation(one_user, {"a": lambda m: EASE().fit(m), "b": lambda m: EASE().fit(m)})


def test_tuned_refits_the_winner_on_the_whole_training_matrix(ratings: sp.csr_matrix) -> None:
    fitted_rows: list[int] = []

    def ease(matrix: sp.spmatrix) -> EASE:
        fitted_rows.append(matrix.shape[0])
        return EASE(10.0).fit(matrix)

    model = Tuned({"popularity": lambda m: PopularityRecommender().fit(m), "ease": ease}).fit(ratings)
    assert model.selected == "ease" and set(model.validation_scores) == {"popularity", "ease"}
    assert fitted_rows == [64, 80]  # inner-train users, then all of them
    np.testing.assert_allclose(model.rank_scores(ratings[:3]), EASE(10.0).fit(ratings).rank_scores(ratings[:3]))
    assert model.predict_ratings(ratings[:3]) is None
    single = Tuned({"only": lambda m: BiasRatingModel().fit(m)}).fit(ratings)
    assert single.selected == "only" and single.validation_scores == {}
    assert single.predict_ratings(ratings[:2]).shape == (2, ratings.shape[1])


def test_evaluate_lists_the_choice_of_every_fold(ratings: sp.csr_matrix) -> None:
    factory = tuned_factory(l2_candidates(EASE, (1.0, 50.0)))
    results = evaluation.evaluate(ratings, {"ease": factory}, n_folds=4, max_folds=2)["models"]["ease"]
    assert len(results["selected"]) == 2 and set(results["selected"]) <= {"l2=1", "l2=50"}
    assert all(set(scores) == {"l2=1", "l2=50"} for scores in results["validation_scores"])


def test_baseline_factories() -> None:
    factories = baseline_factories(fixed_l2=100.0)
    assert list(factories) == ["popularity", "bias", "ease", "ease-liked", "ease-value-aware"]
    stars = sp.csr_matrix(np.array([[5, 1, 0], [4, 0, 2], [0, 2, 5], [1, 5, 4]], dtype=np.float32))
    bias = factories["bias"](stars)
    assert (bias.item_damping, bias.user_damping) == (5.0, 10.0)  # the product's damping
    fixed = factories["ease-value-aware"](stars)
    assert fixed.selected == "l2=100" and fixed.model.l2 == 100.0
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_factories(["knn"])

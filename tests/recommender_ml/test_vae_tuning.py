"""tune(): each fold picks a VAE configuration on validation users split off its own training users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("keras")

from recommender.ml import evaluation, tuning, vae

QUICK = {"encoder_units": (), "latent_dim": 8, "max_epochs": 2, "patience": 2, "min_user_ratings": 5}


def test_pick_prefers_the_best_candidate_within_the_taste_limits() -> None:
    validation = {
        "value-blind": {"ndcg@100": 0.60, "flip@10": 1.0, "disliked@20": 0.05},
        "listening": {"ndcg@100": 0.55, "flip@10": 0.2, "disliked@20": 0.05},
        "listening-worse": {"ndcg@100": 0.50, "flip@10": 0.1, "disliked@20": 0.05},
    }
    assert tuning.pick(validation) == "listening"
    # With no candidate within the limits, the best score wins anyway (and the result says which won).
    assert tuning.pick({k: {**v, "flip@10": 0.9} for k, v in validation.items()}) == "value-blind"
    with pytest.raises(ValueError):
        tuning.pick({})


def test_tune_never_trains_or_scores_on_a_folds_held_out_users(ratings: sp.csr_matrix, monkeypatch) -> None:
    seen_shapes = []
    real_train = vae.train

    def spying_train(matrix, config=None, **kwargs):
        seen_shapes.append(matrix.shape[0])
        seen_rows.append({tuple(matrix[i].indices) + tuple(matrix[i].data) for i in range(matrix.shape[0])})
        return real_train(matrix, config, **kwargs)

    seen_rows: list[set] = []
    monkeypatch.setattr(vae, "train", spying_train)
    candidates = {"a": vae.preset("default", **QUICK), "b": vae.preset("value-blind-2026-11", **QUICK)}
    results = tuning.tune(ratings, candidates, n_folds=4, seed=0, max_folds=2)

    folds = evaluation.user_folds(sp.csr_matrix(ratings, dtype=np.float32), 4, 0)
    for fold_index in range(2):
        held_out = {tuple(ratings[i].indices) + tuple(ratings[i].data.astype(np.float32)) for i in folds[fold_index]}
        for trained_on in seen_rows[2 * fold_index : 2 * fold_index + 2]:
            assert not held_out & trained_on
    assert seen_shapes == [ratings.shape[0] - len(folds[0])] * 2 + [ratings.shape[0] - len(folds[1])] * 2
    assert results["protocol"]["folds_run"] == 2 and len(results["per_fold"]) == 2
    for fold in results["per_fold"]:
        assert set(fold["validation"]) == {"a", "b"}
        assert {"ndcg@100", "flip@10", "disliked@20", "fit_seconds"} <= set(fold["validation"]["a"])
        assert fold["picked"] == tuning.pick(fold["validation"])
    assert sum(results["wins"].values()) == 2
    assert results["chosen"] in candidates
    # The value-blind candidate cannot tell 1 star from 5: flip@10 is 1 on its validation users.
    assert all(fold["validation"]["b"]["flip@10"] == pytest.approx(1.0) for fold in results["per_fold"])

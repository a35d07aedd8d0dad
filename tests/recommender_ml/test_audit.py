"""Audit users and the paired comparison behind the activation decision (recommender.ml.audit)."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml.audit import (
    AUDIT_MIN_RATINGS,
    ColumnSubset,
    audit_split,
    audit_user_mask,
    paired_comparison,
    per_user_ndcg,
    tolerated_loss,
)


def test_audit_users_are_a_stable_share_chosen_by_id():
    ids = np.arange(1, 20_001)
    mask = audit_user_mask(ids, share=0.1, limit=100_000)
    assert 0.09 < mask.mean() < 0.11
    # Stable: the same ids give the same choice in any order and whatever other users exist.
    shuffled = np.random.default_rng(0).permutation(ids)
    assert set(shuffled[audit_user_mask(shuffled, share=0.1, limit=100_000)]) == set(ids[mask])
    assert set(ids[:5000][audit_user_mask(ids[:5000], share=0.1, limit=100_000)]) == set(ids[:5000][mask[:5000]])
    # Not simply the lowest or every tenth id.
    assert (
        not np.array_equal(np.flatnonzero(mask), np.arange(0, 20_000, 10)) and mask[:2000].any() and mask[-2000:].any()
    )


def test_audit_users_are_capped_by_the_lowest_hashes_and_can_be_turned_off():
    ids = np.arange(1, 20_001)
    capped = audit_user_mask(ids, share=0.1, limit=50)
    assert capped.sum() == 50
    assert (capped <= audit_user_mask(ids, share=0.1, limit=100_000)).all()  # a subset of the uncapped choice
    assert audit_user_mask(ids, share=0.1, limit=50)[capped].all()
    assert not audit_user_mask(ids, share=0.0, limit=50).any()
    assert not audit_user_mask(np.array([], dtype=np.int64), share=0.1, limit=50).any()


def test_audit_split_is_fixed_and_keeps_users_with_enough_ratings():
    rng = np.random.default_rng(1)
    dense = (rng.random((30, 40)) < 0.4) * rng.integers(1, 6, size=(30, 40))
    dense[0] = 0
    dense[0, : AUDIT_MIN_RATINGS - 1] = 5  # too few to split
    ratings = sp.csr_matrix(dense.astype(np.float32))
    fold_in, held_out = audit_split(ratings)
    again = audit_split(ratings)
    assert fold_in.shape[0] == 29
    assert (fold_in != again[0]).nnz == 0 and (held_out != again[1]).nnz == 0
    assert fold_in.multiply(held_out).nnz == 0 and (fold_in + held_out).nnz == ratings[1:].nnz


class _Fixed:
    """Ranks every movie by a fixed score vector."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float32)

    def rank_scores(self, fold_in):
        return np.tile(self.scores, (fold_in.shape[0], 1))


def test_per_user_ndcg_and_a_column_subset():
    fold_in = sp.csr_matrix(np.array([[5, 0, 0, 0], [0, 0, 0, 4]], dtype=np.float32))
    held_out = sp.csr_matrix(np.array([[0, 5, 0, 0], [0, 0, 2, 0]], dtype=np.float32))
    good = per_user_ndcg(_Fixed([0, 3, 2, 1]), fold_in, held_out, threshold=4)
    assert good[0] == pytest.approx(1.0) and good[1] == 0.0  # user 2 liked nothing held out
    # Seen through columns [3, 1] of a 4-movie model: movie 1 of the subset is the model's movie 1.
    subset = ColumnSubset(_Fixed([0, 9, 0, 1]), np.array([3, 1]), 4)
    assert subset.rank_scores(sp.csr_matrix(np.ones((1, 2), np.float32))).tolist() == [[1.0, 9.0]]


def test_paired_comparison_accepts_noise_and_refuses_a_real_loss():
    rng = np.random.default_rng(2)
    active = rng.random(400)
    same = active + rng.normal(0, 0.01, 400)
    worse = active - 0.1 + rng.normal(0, 0.01, 400)
    assert paired_comparison(same, active, margin=0.01).accept
    refused = paired_comparison(worse, active, margin=0.01)
    assert not refused.accept and refused.mean_difference == pytest.approx(-0.1, abs=0.01)
    # The paired test is sharper than comparing means: a loss of 0.02 for everyone is found although users vary widely.
    assert not paired_comparison(active - 0.02, active, margin=0.01).accept
    # With 3 users the evidence is weak: two standard errors tolerated.
    few = paired_comparison(np.array([0.2, 0.9, 0.1]), np.array([0.5, 0.5, 0.5]), margin=0.01)
    assert few.margin == pytest.approx(tolerated_loss(few.standard_error, 0.01)) and few.margin > 0.01 and few.accept
    with pytest.raises(ValueError, match="at least 2 users"):
        paired_comparison(np.array([0.1]), np.array([0.2]), margin=0.01)

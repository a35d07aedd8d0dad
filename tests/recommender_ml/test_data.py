from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml import data


def test_rating_matrix_keeps_last_rating_of_a_repeated_pair() -> None:
    matrix = data.rating_matrix([0, 0, 1], [2, 2, 0], [3.0, 4.5, 1.0], shape=(2, 3))
    assert matrix.nnz == 2
    assert matrix[0, 2] == 4.5
    assert matrix[1, 0] == 1.0


def test_normalize_keeps_lowest_rating_as_an_observed_entry() -> None:
    matrix = data.rating_matrix([0, 0], [0, 1], [1.0, 5.0], shape=(1, 3))
    normalized = data.normalize_ratings(matrix, low=1.0, high=5.0)
    # The 1-star rating becomes 0 but is still an explicit entry: it is still "rated".
    assert normalized.nnz == 2
    np.testing.assert_array_equal(data.observed_mask(normalized).toarray(), [[1, 1, 0]])
    np.testing.assert_allclose(normalized.toarray(), [[0.0, 1.0, 0.0]])


def test_normalize_default_range_and_inverse() -> None:
    matrix = data.rating_matrix([0, 0, 0], [0, 1, 2], [0.5, 1.0, 5.0], shape=(1, 3))
    normalized = data.normalize_ratings(matrix)
    np.testing.assert_allclose(normalized.data, [0.0, 0.5 / 4.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(data.denormalize_ratings(normalized.data), matrix.data, rtol=1e-6)


def test_report_normalize_reproduces_the_vanishing_one_star_defect() -> None:
    matrix = data.rating_matrix([0, 0], [0, 1], [1.0, 5.0], shape=(1, 2))
    reported = data.report_normalize(matrix)
    assert reported.nnz == 1  # the 1-star rating is gone, as in the report
    np.testing.assert_allclose(data.report_denormalize(reported.data), [5.0])


def test_densify_rows_takes_mask_from_pattern_not_value() -> None:
    matrix = data.normalize_ratings(data.rating_matrix([0, 1], [1, 2], [0.5, 4.0], shape=(3, 4)))
    values, mask = data.densify_rows(matrix, np.array([1, 0]))
    np.testing.assert_array_equal(mask, [[0, 0, 1, 0], [0, 1, 0, 0]])
    assert values[1, 1] == 0.0 and mask[1, 1] == 1.0  # a 0.5-star rating normalises to 0 yet is rated
    assert values.dtype == np.float32 and mask.dtype == np.float32


def test_users_with_min_ratings(ratings: sp.csr_matrix) -> None:
    matrix = data.rating_matrix([0, 0, 0, 1, 2, 2], [0, 1, 2, 0, 1, 2], [4, 4, 4, 4, 4, 4], shape=(3, 3))
    np.testing.assert_array_equal(data.users_with_min_ratings(matrix, 2), [0, 2])
    assert len(data.users_with_min_ratings(ratings, 20)) == ratings.shape[0]


def test_split_users_is_seeded_disjoint_and_80_20() -> None:
    train, validation = data.split_users(np.arange(100), 0.2, seed=3)
    assert len(train) == 80 and len(validation) == 20
    assert not set(train) & set(validation)
    again_train, again_validation = data.split_users(np.arange(100), 0.2, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(validation, again_validation)
    other_train, _ = data.split_users(np.arange(100), 0.2, seed=4)
    assert not np.array_equal(train, other_train)


def test_split_ratings_per_user_partitions_each_row(ratings: sp.csr_matrix) -> None:
    fold_in, held_out = data.split_ratings_per_user(ratings, 0.2, seed=0)
    assert fold_in.nnz + held_out.nnz == ratings.nnz
    assert (fold_in + held_out != ratings).nnz == 0
    assert fold_in.multiply(held_out).nnz == 0
    np.testing.assert_array_equal(np.diff(held_out.indptr), 5)  # 20% of 25 ratings


def test_row_batcher_densifies_one_batch_at_a_time(ratings: sp.csr_matrix, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_size = 16

    def refuse_whole_matrix(self: sp.csr_matrix, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"densified a {self.shape} matrix")

    monkeypatch.setattr(sp.csr_matrix, "toarray", refuse_whole_matrix)
    monkeypatch.setattr(sp.csr_matrix, "todense", refuse_whole_matrix)
    densified_rows: list[int] = []
    original_densify = data.densify_rows

    def recording_densify(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        densified_rows.append(len(rows))
        return original_densify(matrix, rows)

    monkeypatch.setattr(data, "densify_rows", recording_densify)
    batcher = data.RowBatcher(data.normalize_ratings(ratings), np.arange(70), batch_size, shuffle=True, seed=1)
    assert len(batcher) == 5
    seen_rows = 0
    for index in range(len(batcher)):
        batch = batcher[index]
        assert batch.input_values.shape[1] == ratings.shape[1]
        assert batch.input_values.shape[0] <= batch_size
        seen_rows += batch.input_values.shape[0]
    assert seen_rows == 70
    assert max(densified_rows) <= batch_size


def test_row_batcher_reshuffles_with_seed(ratings: sp.csr_matrix) -> None:
    first = data.RowBatcher(ratings, np.arange(64), 16, shuffle=True, seed=5)
    second = data.RowBatcher(ratings, np.arange(64), 16, shuffle=True, seed=5)
    np.testing.assert_array_equal(first[0].input_mask, second[0].input_mask)
    before = first[0].input_mask.copy()
    first.on_epoch_end()
    assert not np.array_equal(before, first[0].input_mask)


def test_row_batcher_targets_can_differ_from_inputs(ratings: sp.csr_matrix) -> None:
    fold_in, held_out = data.split_ratings_per_user(ratings, 0.2, seed=0)
    batch = data.RowBatcher(fold_in, np.arange(8), 8, targets=held_out)[0]
    assert batch.input_mask.sum() == fold_in[:8].nnz
    assert batch.target_mask.sum() == held_out[:8].nnz
    assert not np.any(batch.input_mask * batch.target_mask)


def test_relevance_threshold() -> None:
    whole = data.rating_matrix([0, 0], [0, 1], [4.0, 2.0], shape=(1, 2))
    half = data.rating_matrix([0, 0], [0, 1], [4.5, 2.0], shape=(1, 2))
    assert data.relevance_threshold(whole) == 4.0
    assert data.relevance_threshold(half) == 3.5

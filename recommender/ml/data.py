"""Helpers on a sparse user x movie rating matrix (scipy CSR, values are stars 0.5..5).

Whether a movie is rated is always read from the sparsity pattern (the explicit entries),
never from the stored value. The 2025 report normalised ratings with (r - 1) / 4 and then
treated 0 as "not rated", so every 1-star rating vanished from its masked loss;
:func:`normalize_ratings` keeps those entries. :func:`report_normalize` reproduces the
report's behaviour on purpose, for the "report-2025" preset only.

Nothing here densifies a whole matrix: :class:`RowBatcher` densifies one batch of rows at
a time (ML-25M is 162k users x 59k movies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

RATING_MIN = 0.5
RATING_MAX = 5.0


def rating_matrix(
    user_indices: np.ndarray,
    item_indices: np.ndarray,
    ratings: np.ndarray,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """CSR matrix from 0-based (user, item, rating) triples; a repeated pair keeps its last rating."""
    user_indices = np.asarray(user_indices, dtype=np.int64)
    item_indices = np.asarray(item_indices, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float32)
    # Keep the last occurrence of each (user, item) pair: COO -> CSR would sum duplicates.
    flat = user_indices * shape[1] + item_indices
    _, last_positions = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - last_positions
    matrix = sp.csr_matrix((ratings[keep], (user_indices[keep], item_indices[keep])), shape=shape, dtype=np.float32)
    matrix.sort_indices()
    return matrix


def observed_mask(matrix: sp.spmatrix) -> sp.csr_matrix:
    """1.0 at every explicit entry, whatever its value (a stored 0 still counts as rated)."""
    matrix = sp.csr_matrix(matrix)
    return sp.csr_matrix(
        (np.ones_like(matrix.data, dtype=np.float32), matrix.indices.copy(), matrix.indptr.copy()),
        shape=matrix.shape,
    )


def normalize_ratings(matrix: sp.spmatrix, low: float = RATING_MIN, high: float = RATING_MAX) -> sp.csr_matrix:
    """Map stars to [0, 1] on explicit entries only; the sparsity pattern is left untouched.

    The lowest rating maps to 0 but stays an explicit entry, so it still counts as rated.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.data = (matrix.data - low) / (high - low)
    return matrix


def denormalize_ratings(values: np.ndarray, low: float = RATING_MIN, high: float = RATING_MAX) -> np.ndarray:
    """Inverse of :func:`normalize_ratings`."""
    return values * (high - low) + low


def report_normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """The 2025 report's transform, defect included: (r - 1) / 4, then 0 means "not rated".

    1-star ratings become 0 and are dropped from the pattern, exactly as they vanished from
    the report's dense matrix and its masked loss. Only for reproducing the report's figures.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.data = (matrix.data - 1.0) / 4.0
    matrix.eliminate_zeros()
    return matrix


def report_denormalize(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`report_normalize` for predicted values."""
    return values * 4.0 + 1.0


def damped_mean(sums: np.ndarray, counts: np.ndarray, damping: float, prior: float) -> np.ndarray:
    """(sum + damping * prior) / (count + damping): a mean pulled towards `prior` while the count is small (Bayesian
    average). Popularity scores and the rating head's starting biases use it; the catalogue's top-rated lists compute
    the same in SQL (movies.selectors.popular_movies) and the Keras rating head with tensor ops."""
    return (sums + damping * prior) / (counts + damping)


def damped_deviation(deviation_sums: np.ndarray, counts: np.ndarray, damping: float) -> np.ndarray:
    """sum of deviations / (count + damping): a mean deviation shrunk towards 0 while the count is small (the damped
    movie and user biases of Koren 2010, section 2.1)."""
    return deviation_sums / (counts + damping)


def ratings_per_user(matrix: sp.spmatrix) -> np.ndarray:
    return np.diff(sp.csr_matrix(matrix).indptr)


def users_with_min_ratings(matrix: sp.spmatrix, min_ratings: int = 20) -> np.ndarray:
    """Row indices of users with at least ``min_ratings`` ratings (the report's cleaning rule)."""
    return np.flatnonzero(ratings_per_user(matrix) >= min_ratings)


def split_users(
    user_rows: np.ndarray, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle user rows with ``seed`` and split them into (train, validation)."""
    user_rows = np.asarray(user_rows)
    shuffled = np.random.default_rng(seed).permutation(user_rows)
    n_validation = round(len(shuffled) * validation_fraction)
    if validation_fraction > 0 and len(shuffled) > 1:
        n_validation = min(max(n_validation, 1), len(shuffled) - 1)
    return np.sort(shuffled[n_validation:]), np.sort(shuffled[:n_validation])


def split_ratings_per_user(
    matrix: sp.spmatrix, holdout_fraction: float = 0.2, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split every row's ratings at random into (fold-in, held-out) matrices of the same shape.

    Each row with at least one rating keeps at least one fold-in rating; rows with at least
    two ratings hide at least one.
    """
    matrix = sp.csr_matrix(matrix)
    rng = np.random.default_rng(seed)
    counts = np.diff(matrix.indptr)
    held_out = np.zeros(matrix.nnz, dtype=bool)
    for row, (start, count) in enumerate(zip(matrix.indptr[:-1], counts)):
        if count < 2:
            continue
        n_hidden = min(max(round(count * holdout_fraction), 1), count - 1)
        held_out[start + rng.choice(count, size=n_hidden, replace=False)] = True
    return _select_entries(matrix, ~held_out), _select_entries(matrix, held_out)


def _select_entries(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    selected = sp.csr_matrix(
        (matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape, dtype=matrix.dtype
    )
    selected.sort_indices()
    return selected


def densify_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense (values, mask) float32 arrays for the given rows only; mask comes from the pattern."""
    rows = np.asarray(rows)
    values = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
    mask = np.zeros_like(values)
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    positions = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(rows) else []
    positions = np.asarray(positions, dtype=np.int64)
    batch_rows = np.repeat(np.arange(len(rows)), lengths)
    values[batch_rows, matrix.indices[positions]] = matrix.data[positions]
    mask[batch_rows, matrix.indices[positions]] = 1.0
    return values, mask


@dataclass(frozen=True)
class RowBatch:
    """One densified batch: model inputs and reconstruction targets, each as (values, mask)."""

    input_values: np.ndarray
    input_mask: np.ndarray
    target_values: np.ndarray
    target_mask: np.ndarray


class RowBatcher:
    """Indexable batches of rows, densified lazily one batch at a time.

    ``targets`` defaults to ``inputs`` (plain reconstruction); pass the held-out part of a
    :func:`split_ratings_per_user` split to validate on ratings the model did not see.
    Rows are reshuffled after every epoch when ``shuffle`` is set (seeded).
    """

    def __init__(
        self,
        inputs: sp.spmatrix,
        rows: np.ndarray,
        batch_size: int = 128,
        targets: sp.spmatrix | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.inputs = sp.csr_matrix(inputs)
        self.targets = self.inputs if targets is None else sp.csr_matrix(targets)
        if self.targets.shape != self.inputs.shape:
            raise ValueError("inputs and targets must have the same shape")
        self.rows = np.asarray(rows, dtype=np.int64)
        if len(self.rows) == 0:
            raise ValueError("RowBatcher needs at least one row")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.rows) if shuffle else self.rows

    def __len__(self) -> int:
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def batch_rows(self, index: int) -> np.ndarray:
        """The rows (of ``inputs``) in batch ``index`` of the current order."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> RowBatch:
        batch_rows = self.batch_rows(index)
        input_values, input_mask = densify_rows(self.inputs, batch_rows)
        if self.targets is self.inputs:
            target_values, target_mask = input_values, input_mask
        else:
            target_values, target_mask = densify_rows(self.targets, batch_rows)
        return RowBatch(input_values, input_mask, target_values, target_mask)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(self.rows)


def relevance_threshold(matrix: sp.spmatrix) -> float:
    """4 stars on whole-star data, 3.5 when any half-star rating is present."""
    data = sp.csr_matrix(matrix).data
    has_half_stars = bool(np.any(np.abs(data - np.round(data)) > 1e-6))
    return 3.5 if has_half_stars else 4.0

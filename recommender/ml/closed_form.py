"""EASE and value-aware EASE in closed form, one block of movies (columns of the weights) at a time.

Both need P = (X^T X + l2 I)^-1 over the n (or 2n) input features. With fewer users than features (100,000
ratings over 10,000 movies: about 650 users against 20,000 features) Woodbury's identity gives any
columns of P from a users x users inverse K = (X X^T + l2 I)^-1: P M = (M - X^T K X M) / l2, so no
features x features matrix is ever formed. Otherwise P is inverted densely, as before. Each block of
weight columns is exact; the caller keeps it whole (a dense array) or only each column's k largest
|weights| (a sparse matrix, k per movie), so the memory is K plus a few features x block arrays.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.linalg
import scipy.sparse as sp

FLOAT64_MAX_SIDE = 8_000  # a larger inverse is kept in float32 (8,000^2 float64 = 512 MB)
BLOCK_BYTES = 64 * 2**20  # one features x block array


class Precision:
    """Columns of P = (X^T X + l2 I)^-1: by Woodbury through the users when they are fewer, else dense."""

    def __init__(self, features: sp.spmatrix, l2: float) -> None:
        features = sp.csr_matrix(features)
        features = features[np.diff(features.indptr) > 0]  # users with no input add nothing to X^T X
        n_users, n_features = features.shape
        self.dtype = np.float64 if min(n_users, n_features) <= FLOAT64_MAX_SIDE else np.float32
        self.features = features.astype(self.dtype)
        self.l2 = l2
        self.n_features = n_features
        self.woodbury = n_users < n_features
        if self.woodbury:
            side = (self.features @ self.features.T).toarray()
        else:
            side = (self.features.T @ self.features).toarray()
        side[np.diag_indices_from(side)] += l2
        self.inverse = scipy.linalg.inv(side, overwrite_a=True, check_finite=False)

    def times(self, matrix: np.ndarray) -> np.ndarray:
        """P @ matrix (features x m, dense)."""
        if not self.woodbury:
            return self.inverse @ matrix
        inner = self.inverse @ np.asarray(self.features @ matrix)
        return (matrix - np.asarray(self.features.T @ inner)) / self.l2

    def columns(self, columns: np.ndarray) -> np.ndarray:
        """P[:, columns], features x len(columns)."""
        if not self.woodbury:
            return self.inverse[:, columns]
        unit = np.zeros((self.n_features, len(columns)), dtype=self.dtype)
        unit[columns, np.arange(len(columns))] = 1.0
        return self.times(unit)


def column_blocks(n_columns: int, n_rows: int) -> Iterator[np.ndarray]:
    size = int(np.clip(BLOCK_BYTES // (8 * max(n_rows, 1)), 16, 1024))
    for start in range(0, n_columns, size):
        yield np.arange(start, min(start + size, n_columns))


def ease_blocks(inputs: sp.spmatrix, l2: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(columns, B[:, columns]) of EASE: B = -P / diag(P) off the diagonal, 0 on it."""
    precision = Precision(inputs, l2)
    for columns in column_blocks(inputs.shape[1], inputs.shape[1]):
        block = precision.columns(columns)
        own = np.arange(len(columns))
        block = block / -block[columns, own][None, :]
        block[columns, own] = 0.0
        yield columns, block


def value_aware_blocks(
    features: sp.spmatrix, targets: sp.spmatrix, l2: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(columns, W[:, columns]) of baselines.value_aware_ease_weights: [rated | signed] -> each movie,
    each movie's own two inputs held at zero (the same Lagrange correction, column by column)."""
    precision = Precision(features, l2)
    n_items = targets.shape[1]
    features_t = sp.csr_matrix(features).T.tocsr().astype(precision.dtype)
    targets = sp.csc_matrix(targets).astype(precision.dtype)
    for columns in column_blocks(n_items, 2 * n_items):
        own = np.arange(len(columns))
        rated, signed = precision.columns(columns), precision.columns(columns + n_items)
        weights = precision.times((features_t @ targets[:, columns]).toarray())
        rated_rated, signed_rated = rated[columns, own], rated[columns + n_items, own]
        rated_signed, signed_signed = signed[columns, own], signed[columns + n_items, own]
        rated_weight, signed_weight = weights[columns, own], weights[columns + n_items, own]
        determinant = rated_rated * signed_signed - rated_signed * signed_rated
        mu_rated = (signed_signed * rated_weight - rated_signed * signed_weight) / determinant
        mu_signed = (rated_rated * signed_weight - signed_rated * rated_weight) / determinant
        weights -= rated * mu_rated[None, :] + signed * mu_signed[None, :]
        weights[columns, own] = 0.0
        weights[columns + n_items, own] = 0.0
        del rated, signed
        yield columns, weights


def assemble(
    blocks: Iterator[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int], top_k: int | None = None
) -> np.ndarray | sp.csc_matrix:
    """The weights whole (float32 array), or each column's ``top_k`` largest |weights| (float32 CSC)."""
    if top_k is None:
        dense = np.zeros(shape, dtype=np.float32)
        for columns, block in blocks:
            dense[:, columns] = block
        return dense
    k = min(top_k, shape[0])
    rows, values = [], []
    for _, block in blocks:
        top = np.sort(np.argpartition(-np.abs(block), k - 1, axis=0)[:k], axis=0)
        rows.append(top.T.astype(np.int32))
        values.append(np.take_along_axis(block, top, axis=0).T.astype(np.float32))
    indptr = np.arange(0, shape[1] * k + 1, k)
    kept = sp.csc_matrix((np.concatenate(values).ravel(), np.concatenate(rows).ravel(), indptr), shape=shape)
    kept.eliminate_zeros()
    return kept

"""Similar movies from who liked what: a top-k item-item table, NumPy/SciPy only.

Cosine of the VAE's output-layer columns ranks Toy Story, The Godfather and Fargo among Star Wars' nearest
movies: those columns mostly encode popularity. Here two movies are similar when the same people *liked* both
(stars >= the relevance threshold) more often than their popularity alone explains, with

* a popularity correction, where n_i counts the users who liked i, n_ij those who liked both and N all users:
  ``phi`` (the correlation of the two liked indicators: (N n_ij - n_i n_j) / sqrt(n_i (N - n_i) n_j (N - n_j)),
  co-occurrence beyond what two movies' popularity alone gives), ``cosine`` (n_ij / sqrt(n_i n_j)),
  ``jaccard`` (n_ij / (n_i + n_j - n_ij)) or ``lift`` (N n_ij / (n_i n_j));
* shrinkage: the measure times n_ij / (n_ij + shrinkage), so a pair liked together by two people does not
  outrank one liked together by two hundred;
* optionally, disliked co-ratings subtracting: n_ij becomes n_ij - dislike_weight * d_ij, with d_ij the users
  who liked one of the two and disliked (stars <= ``disliked_threshold``) the other.

Memory stays bounded: the co-occurrence is computed for a block of movies at a time (a sparse product, then
a few dense float32 blocks of at most ``max_block_entries`` cells) and only each row's top k is kept, so no
n_items x n_items matrix is ever built: 20,000 movies and 1.7M ratings took 8 s and 130 MB above the ratings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.ml.data import relevance_threshold

MEASURES = ("phi", "cosine", "jaccard", "lift")
DEFAULT_MEASURE = "phi"
DEFAULT_SHRINKAGE = 10.0  # phi with shrinkage 10: chosen with benchmarks/ml/similar_movies.py (its docstring says why)
DEFAULT_DISLIKE_WEIGHT = 0.0


def _indicator(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """0/1 float32 user x movie matrix of the explicit entries selected by ``keep``."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], matrix.indices[keep])), shape=matrix.shape)


def similar_items_table(
    matrix: sp.spmatrix,
    *,
    k: int = 20,
    liked_threshold: float | None = None,
    measure: str = DEFAULT_MEASURE,
    shrinkage: float = DEFAULT_SHRINKAGE,
    dislike_weight: float = DEFAULT_DISLIKE_WEIGHT,
    disliked_threshold: float = 2.0,
    block_size: int = 1024,
    max_block_entries: int = 1 << 23,
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours int32 n_items x k, scores float32 n_items x k), best first, from a user x movie star matrix.

    Only neighbours with a positive score are listed; the rest of a row is padded with -1 (score 0). A movie
    never lists itself. Equal scores are broken by the lower column, so the table is deterministic.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")
    if k < 1 or shrinkage < 0 or dislike_weight < 0:
        raise ValueError("k must be positive, shrinkage and dislike_weight non-negative")
    matrix = sp.csr_matrix(matrix)
    n_users, n_items = matrix.shape
    threshold = relevance_threshold(matrix) if liked_threshold is None else liked_threshold
    liked = _indicator(matrix, matrix.data >= threshold)
    liked_t = liked.T.tocsr()  # movie x user: a block of movies is a slice of rows
    counts = np.asarray(liked.sum(axis=0)).ravel().astype(np.float32)
    disliked = disliked_t = None
    if dislike_weight > 0:
        disliked = _indicator(matrix, matrix.data <= disliked_threshold)
        disliked_t = disliked.T.tocsr()

    neighbours = np.full((n_items, k), -1, dtype=np.int32)
    scores = np.zeros((n_items, k), dtype=np.float32)
    # A dense block is block x n_items float32 (32 MB at the cap) and a handful live at once, whatever the catalogue.
    block = max(1, min(block_size, max_block_entries // max(n_items, 1)))
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        both = (liked_t[start:stop] @ liked).toarray()
        rows = np.arange(stop - start)
        score = _measure(both, counts[start:stop, None], counts[None, :], n_users, measure)
        if shrinkage > 0:
            score *= both / (both + np.float32(shrinkage))
        if dislike_weight > 0:
            # Evidence against: the people who liked one of the two disliked the other.
            against = (liked_t[start:stop] @ disliked + disliked_t[start:stop] @ liked).toarray()
            agreement = both - np.float32(dislike_weight) * against
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(both > 0, score * agreement / both, np.float32(0.0))
        score[rows, rows + start] = 0.0  # never a movie's own neighbour
        neighbours[start:stop], scores[start:stop] = _top_k_positive(score, k)
    return neighbours, scores


def _measure(both: np.ndarray, count_i: np.ndarray, count_j: np.ndarray, n_users: int, measure: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "phi":
            expected = count_i * count_j
            value = (np.float32(n_users) * both - expected) / np.sqrt(
                count_i * (np.float32(n_users) - count_i) * count_j * (np.float32(n_users) - count_j)
            )
        elif measure == "cosine":
            value = both / np.sqrt(count_i * count_j)
        elif measure == "jaccard":
            value = both / (count_i + count_j - both)
        else:
            value = both * np.float32(n_users) / (count_i * count_j)
    # 0/0 where nobody liked the movie: no evidence, score 0.
    return np.nan_to_num(value.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)


def _top_k_positive(score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the (columns, scores) of the k best positive scores, ties by lower column, padded with -1/0."""
    n_rows, n_cols = score.shape
    neighbours = np.full((n_rows, k), -1, dtype=np.int32)
    values = np.zeros((n_rows, k), dtype=np.float32)
    if n_rows == 0 or n_cols == 0:
        return neighbours, values
    kk = min(k, n_cols)
    # Every score >= the row's k-th largest is a candidate, ties included, so the tie-break below is exact.
    kth = -np.partition(-score, kk - 1, axis=1)[:, kk - 1]
    cutoff = np.maximum(kth, np.float32(0.0))
    candidate = (score >= cutoff[:, None]) & (score > 0)
    row, col = np.nonzero(candidate)
    value = score[row, col]
    order = np.lexsort((col, -value, row))
    row, col, value = row[order], col[order], value[order]
    starts = np.searchsorted(row, np.arange(n_rows))
    position = np.arange(len(row)) - starts[row]
    keep = position < k
    neighbours[row[keep], position[keep]] = col[keep]
    values[row[keep], position[keep]] = value[keep]
    return neighbours, values


def similar_items(neighbours: np.ndarray, scores: np.ndarray, item: int, n: int = 10) -> list[tuple[int, float]]:
    """The first ``n`` listed neighbours of ``item`` as [(item, score)], best first, padding left out."""
    row, row_scores = neighbours[item], scores[item]
    listed = row >= 0
    return [(int(other), float(score)) for other, score in zip(row[listed][:n], row_scores[listed][:n])]

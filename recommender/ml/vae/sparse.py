"""The sparse input path: a batch of users as a ``tf.SparseTensor`` of normalised ratings, never densified.

At ML-25M size a densified batch is 128 x 59,047 (x 2 channels) although a user rates 154 movies on
average: the first layer's dense product was most of an epoch's 90 TFLOP. Here the first layer is a
sparse x dense product, dropout drops entries, and the losses gather the outputs at the rated columns;
only the decoder's softmax stays full. Every function mirrors a dense one in :mod:`.layers` or :mod:`.model`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf


def sparse_batch(matrix: sp.csr_matrix, rows: np.ndarray) -> tf.SparseTensor:
    """The given rows of a CSR matrix as a tf.SparseTensor (explicit zeros kept: a 0.5-star rating is rated)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    batch_rows = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    indices = np.stack([batch_rows, matrix.indices[positions].astype(np.int64)], axis=1)
    values = matrix.data[positions].astype(np.float32)
    return tf.SparseTensor(indices, values, (len(rows), matrix.shape[1]))


def gather_rows(variable: Any, rows: Any) -> Any:
    """``variable[rows]`` as a resource gather, whose gradient is the ``tf.IndexedSlices`` of those rows.

    ``tf.gather`` of a Keras variable reads the whole variable first (Keras' variable has no ``sparse_read``), and
    once a variable has had a sparse update TensorFlow copies it on every whole read: two 118,094 x 600 kernels
    copied each training step at ML-25M's width, a fifth of the sparse step. Its ``tf.Variable`` gathers in place.
    """
    return tf.gather(variable.value if isinstance(variable, keras.Variable) else variable, rows)


class CompactColumns(NamedTuple):
    """A sparse batch as the dense block of the columns it uses: ``values`` (users x k) and ``columns`` (k ids)."""

    columns: Any
    values: Any


def compact_columns(x: tf.SparseTensor) -> CompactColumns:
    """The first layer's input: ``x`` restricted to its used columns, densified.

    A batch of 128 users at ML-25M's width uses a fifth of the 118,094 input columns. Their dense block times
    the gathered kernel rows is a plain matrix product (TensorFlow's sparse x dense product is single-threaded
    and took longer), and at most the size of the densified batch the dense path builds.
    """
    columns, local_columns = tf.unique(x.indices[:, 1])
    indices = tf.stack([x.indices[:, 0], tf.cast(local_columns, tf.int64)], axis=1)
    shape = tf.stack([x.dense_shape[0], tf.cast(tf.size(columns), tf.int64)])
    return CompactColumns(columns, tf.scatter_nd(indices, x.values, shape))


def batch_size(x: tf.SparseTensor) -> Any:
    return tf.cast(x.dense_shape[0], tf.int32)


def row_sums(x: tf.SparseTensor, values: Any = None) -> Any:
    """Per-user sum of ``values`` (one per entry; default the entries themselves)."""
    values = x.values if values is None else values
    return tf.math.unsorted_segment_sum(values, tf.cast(x.indices[:, 0], tf.int32), batch_size(x))


def row_counts(x: tf.SparseTensor) -> Any:
    return row_sums(x, tf.ones_like(x.values))


def gather(dense: Any, x: tf.SparseTensor) -> Any:
    """dense[user, movie] at every entry of ``x``."""
    return tf.gather_nd(dense, x.indices)


def keep_entries(x: tf.SparseTensor, keep: Any) -> tf.SparseTensor:
    return tf.sparse.retain(x, keep)


def drop_entries(x: tf.SparseTensor, rate: float, seed_generator: Any) -> tuple[tf.SparseTensor, Any]:
    """Denoising on entries: each rating hidden with probability ``rate``; returns (kept, keep flags)."""
    keep = keras.random.uniform(tf.shape(x.values), seed=seed_generator) >= rate
    return keep_entries(x, keep), keep


def signed(values: Any, liked: float, disliked: float) -> Any:
    """+1 liked, -1 disliked, 0 in between (layers.signed_feedback on the entries)."""
    return tf.cast(values >= liked - 1e-6, tf.float32) - tf.cast(values <= disliked + 1e-6, tf.float32)


def _with_values(x: tf.SparseTensor, values: Any, offset: int = 0, width: int | None = None) -> tf.SparseTensor:
    indices = x.indices if offset == 0 else x.indices + tf.constant([0, offset], dtype=tf.int64)
    width = x.dense_shape[1] if width is None else width
    return tf.SparseTensor(indices, values, tf.stack([x.dense_shape[0], tf.cast(width, tf.int64)]))


def channels(x: tf.SparseTensor, left: Any, right: Any, n_items: int) -> tf.SparseTensor:
    """[left | right] as one batch x 2 n_items sparse tensor (layers.EncoderInput's concatenation)."""
    indices = tf.concat([x.indices, x.indices + tf.constant([0, n_items], dtype=tf.int64)], axis=0)
    return tf.SparseTensor(indices, tf.concat([left, right], axis=0), tf.stack([x.dense_shape[0], 2 * n_items]))


def encoder_features(x: tf.SparseTensor, mode: str, n_items: int, liked: float, disliked: float) -> tf.SparseTensor:
    """layers.EncoderInput on sparse ratings."""
    if mode == "ratings":
        return x
    # Mult-VAE's unit-length rows, as a per-entry factor.
    inverse_norm = tf.gather(tf.math.rsqrt(tf.maximum(row_counts(x), 1e-12)), x.indices[:, 0])
    if mode == "implicit":
        return _with_values(x, inverse_norm)
    if mode == "implicit+signed":
        return channels(x, inverse_norm, signed(x.values, liked, disliked) * inverse_norm, n_items)
    return channels(x, inverse_norm, x.values - 0.5, n_items)


def item_item_features(x: tf.SparseTensor, mode: str, n_items: int, liked: float, disliked: float) -> tf.SparseTensor:
    """layers.ItemItem.features on sparse ratings."""
    ones = tf.ones_like(x.values)
    if mode == "binary":
        return _with_values(x, ones)
    if mode == "value_aware":
        return channels(x, ones, signed(x.values, liked, disliked), n_items)
    return encoder_features(x, "implicit", n_items, liked, disliked)

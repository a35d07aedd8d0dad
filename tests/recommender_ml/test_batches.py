"""The batches model.fit reads: the same batches as the Keras view, reshuffled after each epoch by a callback, no
tf.data autotuning (whose iterators can stall for seconds when Keras drops them at each epoch's end)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from recommender.ml import data
from recommender.ml.vae import RowBatchDataset
from recommender.ml.vae.batches import ReshuffleEachEpoch


def _users_of(batch, sparse: bool) -> list[tuple]:
    """Each user of a batch as its (movie, value) pairs: what identifies the rows the batch holds, in order."""
    inputs = batch[0]
    if sparse:
        dense = tf.sparse.to_dense(inputs).numpy()
    else:
        dense = np.asarray(inputs[0]) * np.asarray(inputs[1])
    return [tuple(np.flatnonzero(row)) + tuple(np.round(row[row != 0], 4)) for row in dense]


@pytest.mark.parametrize("sparse", [True, False])
def test_the_dataset_feeds_the_keras_views_batches_and_the_callback_reshuffles_them(ratings, sparse) -> None:
    normalized = data.normalize_ratings(ratings)
    users = np.arange(70)  # 70 users in batches of 16: the last batch holds 6
    batches = RowBatchDataset(data.RowBatcher(normalized, users, 16, shuffle=True, seed=3), sparse=sparse)
    reference = RowBatchDataset(data.RowBatcher(normalized, users, 16, shuffle=True, seed=3), sparse=sparse)
    dataset = batches.as_tf_dataset()
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == len(reference) == 5
    epochs = []
    for _ in range(2):
        fed = [_users_of(batch, sparse) for batch in dataset]
        expected = [_users_of(reference[index], sparse) for index in range(len(reference))]
        assert fed == [_users_of(batch, sparse) for batch in dataset]  # the dataset itself never reshuffles
        ReshuffleEachEpoch(batches).on_epoch_end(0)
        reference.on_epoch_end()
        assert fed == expected
        assert [len(batch) for batch in fed] == [16, 16, 16, 16, 6]
        epochs.append(fed)
    assert epochs[0] != epochs[1]  # reshuffled between epochs

"""The training and validation users' ratings as batches for ``model.fit``: dense arrays or sparse tensors."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from recommender.ml import data
from recommender.ml.vae.sparse import sparse_batch


class RowBatchDataset(keras.utils.PyDataset):
    """Keras view of a :class:`data.RowBatcher`: ((values, mask), (target_values, target_mask)) densified, or
    with ``sparse`` (inputs, targets) as tf.SparseTensor rows, which the model's sparse steps take."""

    def __init__(self, batcher: data.RowBatcher, sparse: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batcher = batcher
        self.sparse = sparse

    def __len__(self) -> int:
        return len(self.batcher)

    def __getitem__(self, index: int) -> Any:
        if self.sparse:
            rows = self.batcher.batch_rows(index)
            inputs = sparse_batch(self.batcher.inputs, rows)
            same = self.batcher.targets is self.batcher.inputs
            return inputs, inputs if same else sparse_batch(self.batcher.targets, rows)
        batch = self.batcher[index]
        return (batch.input_values, batch.input_mask), (batch.target_values, batch.target_mask)

    def on_epoch_end(self) -> None:
        self.batcher.on_epoch_end()

    def as_tf_dataset(self) -> Any:
        """These batches for ``model.fit``, as Keras would feed them but without tf.data's autotuning.

        Keras builds a new iterator every epoch (and every validation), and tearing down an autotuned one waits for
        its tuning thread's next wake-up, which backs off towards a minute: at ML-25M's width one epoch in two
        stalled about 20 s after its last step. A batch takes milliseconds to build, so one prefetched is enough.
        The dataset does not reshuffle: :class:`ReshuffleEachEpoch` does, from the training loop's thread. Done by the
        generator, the shuffle would race the iterator Keras builds for the next epoch. Keras also reshuffled once
        before the first epoch and took the batches in a random order: a seeded training is as reproducible as
        before, but not the same run as one made before this change.
        """

        def epoch() -> Any:
            for index in range(len(self)):
                yield self[index]

        signature = tf.nest.map_structure(_any_batch_size, self[0])
        options = tf.data.Options()
        options.autotune.enabled = False
        batches = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        batches = batches.apply(tf.data.experimental.assert_cardinality(len(self)))
        return batches.prefetch(1).with_options(options)


class ReshuffleEachEpoch(keras.callbacks.Callback):
    """New random batches of users for every epoch (``RowBatchDataset.on_epoch_end``) once an epoch has ended."""

    def __init__(self, batches: RowBatchDataset) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.on_epoch_end()


def _any_batch_size(value: Any) -> Any:
    """The type spec of one batch's tensor with the number of users left open (the last batch is smaller)."""
    spec = tf.type_spec_from_value(tf.convert_to_tensor(value) if isinstance(value, np.ndarray) else value)
    shape = tf.TensorShape([None, *spec.shape[1:]])
    if isinstance(spec, tf.SparseTensorSpec):
        return tf.SparseTensorSpec(shape, spec.dtype)
    return tf.TensorSpec(shape, spec.dtype)

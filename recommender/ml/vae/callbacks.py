"""Keras callbacks of a training run: early stopping on a validation score, epoch timing, the composite prior."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np


class PriorRefresh(keras.callbacks.Callback):
    """Composite prior: the old encoder takes the current encoder's weights at the start of each epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.old_encoder is not None:
            self.model.old_encoder.set_weights(self.model.encoder.get_weights())


class OptimizerCatchUp(keras.callbacks.Callback):
    """Applies the updates a row-sparse optimizer still owes the rows no recent batch touched
    (:meth:`~recommender.ml.vae.optimizer.RowSparseAdam.catch_up`), so that validation, early stopping and the
    weights kept see what Adam would have. First in the callback list: before anything scores or copies weights.
    """

    def _catch_up(self) -> None:
        catch_up = getattr(self.model.optimizer, "catch_up", None)
        if catch_up is not None:
            catch_up()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._catch_up()  # Keras' validation loss, computed before on_epoch_end

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._catch_up()


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds (training, validation and early-stopping scoring) to the logs as
    ``name``, so the history shows what an epoch costs on the machine that trained it."""

    def __init__(self, name: str = "epoch_seconds") -> None:
        super().__init__()
        self.name = name
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs[self.name] = time.perf_counter() - self._started


class BestEpochStopping(keras.callbacks.Callback):
    """Early stopping on a score computed here (not a Keras metric), best weights restored.

    The score is measured before the first epoch too, so if no epoch beats the starting point
    (e.g. the EASE-initialised path, or the zero rating residual) the start is what is kept.
    The score of each epoch is added to the logs as ``name`` (so History records it).
    """

    def __init__(self, score: Any, name: str, mode: str = "max", patience: int = 8, variables: Any = None) -> None:
        super().__init__()
        self.score = score
        self.name = name
        self.sign = 1.0 if mode == "max" else -1.0
        self.patience = patience
        self.variables = variables  # callable -> the variables to snapshot; None: all the model's
        self.initial_score: float | None = None
        self.best_score: float | None = None
        self.best_epoch = 0
        self._best_weights: list[np.ndarray] | None = None
        self._wait = 0

    def _variables(self) -> list[Any]:
        # Trainable weights only: frozen ones (a frozen movie-to-movie kernel) cannot change.
        return list(self.variables()) if self.variables is not None else list(self.model.trainable_weights)

    def _snapshot(self) -> None:
        self._best_weights = [np.array(v.numpy()) for v in self._variables()]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.initial_score = self.best_score = float(self.score(self.model))
        self.best_epoch = 0
        self._wait = 0
        self._snapshot()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = float(self.score(self.model))
        if logs is not None:
            logs[self.name] = current
        if self.sign * (current - self.best_score) > 0:
            self.best_score, self.best_epoch, self._wait = current, epoch + 1, 0
            self._snapshot()
        else:
            self._wait += 1
            if self._wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._best_weights is not None:
            for variable, value in zip(self._variables(), self._best_weights):
                variable.assign(value)

"""Training a :class:`RecommenderVAE` on a user x movie star-rating matrix: :func:`train` and its steps.

A run normalises the ratings, splits users into training and validation users (a share of each validation
user's ratings hidden as the target), builds the model, fits the ranking (early-stopped on the validation
users, best epoch restored), picks the movie-to-movie path's L2 and weight on the validation users, fits
the rating residual with the encoder frozen, scores the validation users with the evaluation protocol and
finally refits the movie-to-movie path's closed form on every rating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import keras
import numpy as np
import scipy.sparse as sp

from recommender.ml import data
from recommender.ml.baselines import BiasRatingModel
from recommender.ml.evaluation import rating_scale, score_holdout
from recommender.ml.inference import VAERecommender
from recommender.ml.similarity import similar_items_table
from recommender.ml.vae.batches import ReshuffleEachEpoch, RowBatchDataset
from recommender.ml.vae.calibration import _calibrate_item_item, _item_item_weights
from recommender.ml.vae.callbacks import BestEpochStopping, EpochTimer, OptimizerCatchUp, PriorRefresh
from recommender.ml.vae.config import PRESETS, VAEConfig, _normalized_stars
from recommender.ml.vae.export import to_recommender
from recommender.ml.vae.model import RecommenderVAE, TrainingPhase
from recommender.ml.vae.optimizer import RowSparseAdam
from recommender.ml.vae.validation import validation_ndcg, validation_rmse


@dataclass
class TrainResult:
    model: RecommenderVAE
    history: dict[str, list[float]]
    config: VAEConfig
    train_users: np.ndarray = field(repr=False)
    validation_users: np.ndarray = field(repr=False)
    # Every metric of the evaluation protocol on the validation users' hidden ratings, from the model
    # before its movie-to-movie path was refitted on every rating: these ratings were never trained on.
    validation_metrics: dict[str, float] = field(default_factory=dict)
    # Each movie's most similar movies by who liked both (similarity.similar_items_table), for serving.
    similar_items: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def serving(self) -> VAERecommender:
        """The NumPy serving model, with the similar-movies table."""
        return to_recommender(self.model, self.similar_items)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


@dataclass
class _TrainingData:
    """What one training run works on: the ratings, the user split and the batches built from them."""

    matrix: sp.csr_matrix  # stars
    normalized: sp.csr_matrix
    train_users: np.ndarray
    validation_users: np.ndarray
    # The validation users' ratings the encoder sees and, with a holdout, the hidden ones it is scored on.
    validation_inputs: sp.csr_matrix
    validation_targets: sp.csr_matrix | None
    # The hidden validation ratings at or above the liked threshold (NDCG's relevant movies); None without a holdout.
    relevant: sp.csr_matrix | None
    # Every rating except the validation users' hidden ones: what EASE and the bias baseline are computed from.
    statistics: sp.csr_matrix
    train_batches: RowBatchDataset
    validation_batches: RowBatchDataset
    liked_threshold: float  # normalised units


def train(
    matrix: sp.spmatrix,
    config: VAEConfig | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> TrainResult:
    """Train a VAE on a user x movie star-rating matrix; reproducible for a given ``config.seed``.

    With ``rating_mode="bias_residual"`` training has two phases: the ranking (encoder, decoder,
    movie-to-movie path) with early stopping per ``early_stopping``, then the rating residual
    alone with the encoder frozen, early-stopped on the validation RMSE. ``callbacks`` see the
    first phase; the history has the first phase's keys plus ``rating_loss``, ``val_rating_loss``
    and ``val_rmse`` (stars) per epoch of the second phase.
    """
    config = config or PRESETS["default"]
    keras.utils.set_random_seed(config.seed)
    prepared = _prepare_data(sp.csr_matrix(matrix), config)
    model = _build_model(config, prepared)
    history = _fit_ranking_phase(model, config, prepared, callbacks, verbose)
    if _is_ensemble(model, config):
        history.update(_calibrate_movie_to_movie(model, config, prepared))
    if config.two_phase and prepared.validation_targets is not None:
        history.update(_train_rating_residual(model, config, prepared, verbose))
    _end_training_phases(model, config)
    validation_metrics = _score_validation_users(model, config, prepared)
    _refit_movie_to_movie(model, config, prepared.normalized, history)
    return _assemble_result(model, config, prepared, history, validation_metrics)


def _prepare_data(matrix: sp.csr_matrix, config: VAEConfig) -> _TrainingData:
    """Normalise the ratings, split the users, hide a share of each validation user's ratings, batch the rows."""
    normalized = normalize_for(config, matrix)
    train_users, validation_users = _split_users(matrix, config)
    validation_inputs = normalized[validation_users]
    validation_targets = None
    if config.validation_holdout_fraction > 0:
        validation_inputs, validation_targets = data.split_ratings_per_user(
            validation_inputs, config.validation_holdout_fraction, seed=config.seed
        )
    validation_batches = RowBatchDataset(
        data.RowBatcher(
            validation_inputs, np.arange(len(validation_users)), config.batch_size, targets=validation_targets
        ),
        sparse=config.sparse_input,
    )
    # Statistics (EASE, the bias baseline) come from every rating except the validation users'
    # hidden ones, so the validation scores stay honest.
    other_rows = np.setdiff1d(np.arange(matrix.shape[0]), validation_users)
    statistics = sp.vstack([normalized[other_rows], validation_inputs], format="csr")
    train_batches = RowBatchDataset(
        data.RowBatcher(normalized, train_users, config.batch_size, shuffle=True, seed=config.seed),
        sparse=config.sparse_input,
    )
    liked_threshold = _liked_threshold(config, matrix)
    return _TrainingData(
        matrix=matrix,
        normalized=normalized,
        train_users=train_users,
        validation_users=validation_users,
        validation_inputs=validation_inputs,
        validation_targets=validation_targets,
        relevant=_relevant(validation_targets, liked_threshold),
        statistics=statistics,
        train_batches=train_batches,
        validation_batches=validation_batches,
        liked_threshold=liked_threshold,
    )


def _split_users(matrix: sp.csr_matrix, config: VAEConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation users among those with at least ``min_user_ratings`` ratings."""
    users = data.users_with_min_ratings(matrix, config.min_user_ratings or 1)
    train_users, validation_users = data.split_users(users, config.validation_fraction, config.seed)
    if len(train_users) == 0 or len(validation_users) == 0:
        raise ValueError("not enough users with enough ratings for a train/validation split")
    return train_users, validation_users


def _relevant(validation_targets: sp.csr_matrix | None, liked_threshold: float) -> sp.csr_matrix | None:
    """The hidden validation ratings of liked movies (what NDCG counts as relevant)."""
    if validation_targets is None:
        return None
    relevant = validation_targets.multiply(validation_targets >= liked_threshold - 1e-6).tocsr()
    relevant.eliminate_zeros()
    return relevant


def _is_ensemble(model: RecommenderVAE, config: VAEConfig) -> bool:
    """Whether the movie-to-movie path's weight is picked after training (the VAE trains alone)."""
    return model.item_item is not None and config.item_item_training == "ensemble"


def _build_model(config: VAEConfig, prepared: _TrainingData) -> RecommenderVAE:
    """The model, its movie-to-movie path started from the closed form and its rating head from the biases."""
    model = RecommenderVAE(
        n_items=prepared.matrix.shape[1],
        config=config.to_dict(),
        kl_anneal_steps=config.kl_anneal_epochs * len(prepared.train_batches),
        liked_threshold=prepared.liked_threshold,
        disliked_threshold=_normalized_stars(config, config.disliked_threshold),
    )
    if model.item_item is not None and config.item_item_init_ease_l2 is not None:
        model.item_item.assign_kernel(_item_item_weights(model, prepared.statistics, config.item_item_init_ease_l2))
    if _is_ensemble(model, config):
        model.item_item.scale.assign(0.0)
    _start_rating_head(model, config, prepared)
    return model


def _start_rating_head(model: RecommenderVAE, config: VAEConfig, prepared: _TrainingData) -> None:
    """The bias baseline (bias_residual), or the linear rating head's bias at each movie's damped mean rating."""
    if model.rating_baseline:
        global_mean, item_bias = _bias_statistics(prepared.statistics, config.rating_item_damping)
        model.rating_global_mean.assign(global_mean)
        model.rating_item_bias.assign(item_bias)
    elif config.rating_head and config.rating_output == "linear":
        rating_layer = model.decoder.get_layer("rating")
        kernel, _ = rating_layer.get_weights()
        rating_layer.set_weights([kernel, _initial_rating_bias(prepared.normalized, prepared.train_users)])


def _fit_ranking_phase(
    model: RecommenderVAE,
    config: VAEConfig,
    prepared: _TrainingData,
    callbacks: Iterable[keras.callbacks.Callback],
    verbose: int | str,
) -> dict[str, list[float]]:
    """The first phase (the only one unless two_phase), early-stopped per ``early_stopping``, best epoch kept."""
    model.phase = TrainingPhase.RANKING if config.two_phase else TrainingPhase.JOINT
    _compile(model, config, _optimizer(config, config.learning_rate))
    early_stopping = _early_stopping(config, prepared)
    history = _fit(
        model,
        prepared.train_batches,
        prepared.validation_batches,
        config.max_epochs,
        [OptimizerCatchUp(), PriorRefresh(), early_stopping, EpochTimer(), *callbacks],
        verbose,
    )
    history_dict = {name: [float(value) for value in values] for name, values in history.history.items()}
    if isinstance(early_stopping, BestEpochStopping):
        history_dict["initial_val_ndcg@100"] = [early_stopping.initial_score]
        history_dict["best_epoch"] = [float(early_stopping.best_epoch)]
    return history_dict


def _fit(
    model: RecommenderVAE,
    train: RowBatchDataset,
    validation: RowBatchDataset,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    verbose: int | str,
) -> keras.callbacks.History:
    """``model.fit`` on the batches' tf.data pipelines (``RowBatchDataset.as_tf_dataset``), with new random batches
    of users for every epoch (``fit``'s own shuffle does not apply to a tf.data pipeline)."""
    return model.fit(
        train.as_tf_dataset(),
        validation_data=validation.as_tf_dataset(),
        shuffle=False,
        epochs=epochs,
        callbacks=[ReshuffleEachEpoch(train), *callbacks],
        verbose=verbose,
    )


def _compile(model: RecommenderVAE, config: VAEConfig, optimizer: keras.optimizers.Optimizer) -> None:
    """XLA, which Keras turns on wherever a GPU is present, needs shapes known when it compiles: the sparse steps'
    batches hold a different number of ratings and movies each time, so they run as plain TensorFlow graphs."""
    model.compile(optimizer=optimizer, jit_compile=False if config.sparse_input else "auto")


def _optimizer(config: VAEConfig, learning_rate: float) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return RowSparseAdam(learning_rate=learning_rate)


def _early_stopping(config: VAEConfig, prepared: _TrainingData) -> keras.callbacks.Callback:
    """Stopping on the validation users' NDCG@100 when asked for and measurable, else on the validation loss."""
    if config.early_stopping == "ndcg@100" and config.ranking_head and prepared.relevant is not None:
        return BestEpochStopping(
            validation_ndcg(prepared.validation_inputs, prepared.relevant), "val_ndcg@100", "max", config.patience
        )
    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)


def _calibrate_movie_to_movie(
    model: RecommenderVAE, config: VAEConfig, prepared: _TrainingData
) -> dict[str, list[float]]:
    """Ensemble: the movie-to-movie path's L2 and weight, picked on the validation users."""
    low, high = (_normalized_stars(config, stars) for stars in _star_bounds(prepared.matrix))
    return _calibrate_item_item(
        model, config, prepared.statistics, prepared.validation_inputs, prepared.relevant, mirror=low + high
    )


def _train_rating_residual(
    model: RecommenderVAE, config: VAEConfig, prepared: _TrainingData, verbose: int | str
) -> dict[str, list[float]]:
    """Second phase: the rating residual alone, best validation RMSE kept (the start is bias-only)."""
    validation_inputs, validation_targets = prepared.validation_inputs, prepared.validation_targets
    model.phase = TrainingPhase.RATING
    _compile(model, config, _optimizer(config, config.rating_learning_rate or config.learning_rate))
    scale = 4.0 if config.normalization == "report-2025" else data.RATING_MAX - data.RATING_MIN
    rating_layer = model.decoder.get_layer("rating")
    stopping = BestEpochStopping(
        validation_rmse(validation_inputs, validation_targets, scale, clip=config.normalization == "minmax"),
        "val_rmse",
        "min",
        config.patience,
        variables=lambda: rating_layer.weights,
    )
    validation_batches = RowBatchDataset(
        data.RowBatcher(
            validation_inputs, np.arange(validation_inputs.shape[0]), config.batch_size, targets=validation_targets
        ),
        sparse=config.sparse_input,
    )
    epochs = config.rating_max_epochs if config.rating_max_epochs is not None else config.max_epochs
    history = _fit(model, prepared.train_batches, validation_batches, epochs, [stopping, EpochTimer()], verbose)
    logs = history.history
    return {
        "rating_loss": [float(v) for v in logs.get("rating_loss", [])],
        "val_rating_loss": [float(v) for v in logs.get("val_rating_loss", [])],
        "val_rmse": [float(v) for v in logs.get("val_rmse", [])],
        "rating_epoch_seconds": [float(v) for v in logs.get("epoch_seconds", [])],
        "initial_val_rmse": [stopping.initial_score],
        "rating_best_epoch": [float(stopping.best_epoch)],
    }


def _end_training_phases(model: RecommenderVAE, config: VAEConfig) -> None:
    """Back to the joint phase, which serving and a saved model use."""
    model.phase = TrainingPhase.JOINT
    if config.two_phase:
        # A fresh optimizer over every trainable weight, so the saved .keras file's optimizer
        # matches the one Keras builds when it loads the model (no phase-2-only state).
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
        model.optimizer.build(model.trainable_variables)


def _score_validation_users(model: RecommenderVAE, config: VAEConfig, prepared: _TrainingData) -> dict[str, float]:
    """The evaluation protocol's metrics on the validation users' hidden ratings; none without a holdout."""
    if prepared.validation_targets is None:
        return {}
    return _validation_metrics(model, prepared.matrix, prepared.validation_users, config)


def _refit_movie_to_movie(
    model: RecommenderVAE, config: VAEConfig, normalized: sp.csr_matrix, history: dict[str, list[float]]
) -> None:
    """The movie-to-movie path's closed form refitted on every rating, at the L2 picked (or the configured one)."""
    if model.item_item is not None and config.item_item_init_ease_l2 is not None:
        # Only now, with the validation scores taken, may the closed form see every rating.
        l2 = history.get("item_item_l2", [config.item_item_init_ease_l2])[0]
        model.item_item.assign_kernel(_item_item_weights(model, normalized, l2))


def _assemble_result(
    model: RecommenderVAE,
    config: VAEConfig,
    prepared: _TrainingData,
    history: dict[str, list[float]],
    validation_metrics: dict[str, float],
) -> TrainResult:
    """The trained model with its history, user split, validation scores and similar-movies table."""
    return TrainResult(
        model=model,
        history=history,
        config=config,
        train_users=prepared.train_users,
        validation_users=prepared.validation_users,
        validation_metrics=validation_metrics,
        similar_items=similar_items_table(prepared.matrix, k=config.similar_items),
    )


def _validation_metrics(
    model: RecommenderVAE, matrix: sp.csr_matrix, validation_users: np.ndarray, config: VAEConfig
) -> dict[str, float]:
    """The evaluation protocol's metrics on the validation users' hidden ratings (the same split as training's)."""

    fold_in, held_out = data.split_ratings_per_user(
        matrix[validation_users], config.validation_holdout_fraction, seed=config.seed
    )
    threshold = data.relevance_threshold(matrix)
    return score_holdout(to_recommender(model), fold_in, held_out, threshold, rating_bounds=rating_scale(matrix))


def normalize_for(config: VAEConfig, matrix: sp.spmatrix) -> sp.csr_matrix:
    if config.normalization == "report-2025":
        return data.report_normalize(matrix)
    return data.normalize_ratings(matrix)


def _initial_rating_bias(normalized: sp.csr_matrix, rows: np.ndarray, damping: float = 5.0) -> np.ndarray:
    """Damped per-movie mean rating, so the rating head starts from a sensible baseline."""
    train_part = normalized[rows]
    global_mean = float(train_part.data.mean()) if train_part.nnz else 0.5
    sums = np.asarray(train_part.sum(axis=0)).ravel()
    counts = np.diff(train_part.tocsc().indptr)
    return data.damped_mean(sums, counts, damping, global_mean).astype(np.float32)


def _bias_statistics(normalized: sp.csr_matrix, item_damping: float) -> tuple[float, np.ndarray]:
    """Global mean and damped movie biases exactly as baselines.BiasRatingModel computes them."""
    model = BiasRatingModel(item_damping=item_damping).fit(normalized)
    return model.global_mean, model.item_bias.astype(np.float32)


def _star_bounds(matrix: sp.csr_matrix) -> tuple[float, float]:
    """The lowest and highest rating in the data (what flip@10 mirrors: 1 <-> 5 on ML-100K)."""
    return float(matrix.data.min()), float(matrix.data.max())


def _liked_threshold(config: VAEConfig, matrix: sp.csr_matrix) -> float:
    """The liked threshold in normalised units."""
    stars = config.liked_threshold if config.liked_threshold is not None else data.relevance_threshold(matrix)
    return _normalized_stars(config, stars)

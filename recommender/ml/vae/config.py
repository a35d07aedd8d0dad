"""The options of a training run: :class:`VAEConfig`, the allowed values of its options, and the named presets.

The "report-2025" preset reproduces the 2025 report exactly: 1024-512-256 LeakyReLU
encoder with L2, latent 64, sigmoid output, (r - 1) / 4 normalisation with 0 meaning
"not rated" (1-star ratings vanish), masked MSE + KL with weight 1.

This module needs no TensorFlow, but it is reached through :mod:`recommender.ml.vae`, which loads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from recommender.ml import data

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "swish")
ENCODER_STYLES = ("mlp", "dense_skip")
INPUT_MODES = ("ratings", "implicit", "implicit+ratings", "implicit+signed")
NORMALIZATIONS = ("minmax", "report-2025")
RANKING_TARGETS = ("rated", "liked")
EARLY_STOPPING = ("val_loss", "ndcg@100")
ITEM_ITEM_INPUTS = ("implicit", "binary", "value_aware")
RATING_MODES = ("offset", "bias_residual")
ITEM_ITEM_TRAINING = ("joint", "ensemble")
PRIORS = ("standard", "composite")
LAYER_NORM_EPSILON = 0.1  # RecVAE's
ITEM_ITEM_SELECTIONS = ("ndcg@100", "ndcg@10")
OPTIMIZERS = ("row_sparse_adam", "adam")
NDCG_CUTOFFS = (10, 100)
# Validation users scored when the hybrid's mix is picked: plenty for a stable choice, bounded memory.
CALIBRATION_USERS = 5_000
# RecVAE's composite prior: weights of the standard normal, the old posterior and the wide normal.
COMPOSITE_PRIOR_WEIGHTS = (3 / 20, 15 / 20, 2 / 20)
COMPOSITE_PRIOR_WIDE_LOG_VAR = 10.0
ITEM_ITEM_SCALES = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0, 1000.0)


@dataclass(frozen=True)
class VAEConfig:
    """Every size and rate of the model and its training run."""

    encoder_units: tuple[int, ...] = (600,)
    # "mlp": dense layers in a row; "dense_skip": RecVAE's encoder (Shenbin et al. 2020), where each layer adds
    # every earlier layer's output before its activation and is layer-normalised (equal widths needed).
    encoder_style: str = "mlp"
    latent_dim: int = 200
    # None mirrors the encoder (1024-512-256 -> 256-512-1024).
    decoder_units: tuple[int, ...] | None = None
    activation: str = "tanh"
    leaky_relu_slope: float = 0.2
    l2: float = 0.0
    # "implicit": which movies were rated, L2-normalised (Mult-VAE); "ratings": normalised
    # stars as they are (report); "implicit+ratings": both, concatenated; "implicit+signed": the
    # implicit channel plus a signed one (+1 liked, -1 disliked, 0 in between, same L2 scaling), so
    # that a 1-star rating points the other way from a 5-star one.
    input_mode: str = "implicit"
    input_dropout: float = 0.5
    ranking_head: bool = True
    rating_head: bool = True
    rating_output: str = "linear"
    # "per_user": squared errors summed per user, averaged over the batch (same scale as the
    # multinomial log-likelihood); "mean": averaged over observed entries (report).
    rating_loss: str = "per_user"
    rating_loss_weight: float = 1.0
    # Stop the rating loss from changing the shared layers, so it cannot hurt the ranking.
    rating_head_detached: bool = True
    # L2 on the rating head's kernel (None: the shared ``l2``); it has many weights for few
    # observed ratings and overfits without it.
    rating_l2: float | None = None
    # Predicted rating = movie bias + this user's damped mean offset from the movie biases
    # (computed from the input ratings, as in a bias baseline) + a learned residual.
    # None: no offset (the report's plain output).
    rating_user_offset_damping: float | None = 10.0
    # "rated": the multinomial likelihood is over every rated movie (Liang et al.); "liked":
    # only over movies rated >= ``liked_threshold`` stars, while the encoder still sees every
    # rated movie (what the site should recommend is what the user will like).
    ranking_target: str = "rated"
    # Stars; None: 4 on whole-star data, 3.5 on half-star data (data.relevance_threshold).
    liked_threshold: float | None = None
    # Stars at or below which a rating counts as disliked (the signed input channels).
    disliked_threshold: float = 2.0
    # "val_loss": stop on the validation loss (the report); "ndcg@100": stop on NDCG@100 of
    # the validation users' hidden ratings (liked ones relevant), as Liang et al. select models.
    # Either way the best epoch's weights are restored.
    early_stopping: str = "val_loss"
    # Wide & deep ranking: add a linear movie-to-movie path (EASE-like, n_items^2 weights)
    # from the input straight to the ranking logits. True/False, or None: on when the
    # catalogue has at most ``item_item_max_items`` movies (20,000 movies: 1.6 GB of float32
    # weights; ML-25M's 59k movies would need 14 GB, so it is off there).
    item_item: bool | None = False
    item_item_max_items: int = 20_000
    # False: keep the path at its (EASE) initial weights; only its overall scale is learned.
    item_item_trainable: bool = True
    # "joint": the path is trained with the VAE. "ensemble": the VAE is trained alone (path
    # weight 0), then the path's weight is picked from ITEM_ITEM_SCALES by validation NDCG@100
    # (0 keeps the VAE alone, the largest is EASE with the VAE breaking ties), and the frozen
    # EASE kernel is refitted on every rating (the validation users' included).
    item_item_training: str = "joint"
    # "implicit": L2-normalised rated indicators (as the encoder); "binary": 0/1 (as EASE).
    item_item_input: str = "implicit"
    item_item_l2: float = 0.0
    # Start the movie-to-movie path from EASE's closed form (this L2) on the training users,
    # times ``item_item_init_scale``; None starts it at zero. SGD on ~600 users
    # does not reach EASE's quality from zero within the early-stopping budget.
    item_item_init_ease_l2: float | None = 500.0
    # Ensemble: the closed form's L2 is picked from these on the validation users (with the path's weight);
    # the best L2 grows with the number of users, so one fixed value would only fit one data set.
    item_item_l2_grid: tuple[float, ...] | None = None
    # The validation metric that picks the path's L2 and weight: "ndcg@10" favours the top of the list,
    # which is what the site shows.
    item_item_selection: str = "ndcg@100"
    # The product must listen to the stars: a mix whose validation flip@10 (overlap of the top 10 with every
    # rating mirrored; 1.0 = deaf to the stars) is above this is only picked when every mix is.
    max_flip: float = 0.3
    item_item_init_scale: float = 100.0
    # "offset": movie bias + damped user offset + learned output (trained with the ranking).
    # "bias_residual": the damped user/item bias baseline (baselines.BiasRatingModel, computed
    # from the input ratings) + a residual learned from the latent code in a second phase,
    # with the encoder frozen, early-stopped on the validation RMSE with the zero residual
    # (the plain bias model) as the starting point, so validation RMSE can only improve.
    rating_mode: str = "offset"
    rating_item_damping: float = 25.0
    rating_max_epochs: int | None = None  # None: max_epochs
    # Share of each training user's ratings hidden from the encoder in the rating phase; the
    # residual is fitted on the hidden ones (as at serving time, where targets are unseen).
    rating_input_dropout: float = 0.2
    rating_learning_rate: float | None = None
    beta: float = 0.2
    # The KL weight grows linearly from 0 to ``beta`` over this many epochs (0: constant).
    kl_anneal_epochs: int = 0
    # RecVAE (Shenbin et al. 2020): "composite" replaces the standard normal prior by a mixture of it, the
    # previous epoch's encoder posterior for the same user (which keeps the encoder from forgetting) and a
    # wide normal; the KL term is then a one-sample estimate.
    prior: str = "standard"
    # RecVAE's user-dependent KL weight: beta_per_rating times the number of movies the user rated (in the
    # encoder's input) instead of ``beta``; None keeps the constant ``beta``.
    beta_per_rating: float | None = None
    normalization: str = "minmax"
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 8
    validation_fraction: float = 0.2
    # Share of each validation user's ratings hidden from the encoder and scored as the
    # validation target; 0 reconstructs the full row as the report did.
    validation_holdout_fraction: float = 0.2
    min_user_ratings: int | None = 20
    # Neighbours kept per movie in the similar-movies table served with the model (also where "because you
    # rated X highly" looks for X, so a longer list finds a reason more often).
    similar_items: int = 50
    # Feed the encoder the batch as a sparse tensor (first layer = sparse x dense product, loss gathered at the
    # rated columns) instead of a densified users x movies batch; False keeps the dense path (same weights).
    sparse_input: bool = True
    # "row_sparse_adam": Adam that updates only the input kernel rows a batch touched (and their moments), fused
    # on dense weights (optimizer.RowSparseAdam); "adam": Keras' Adam, every row every step.
    optimizer: str = "row_sparse_adam"
    # Neighbours kept per movie in the movie-to-movie path (the strongest input weights of each movie's
    # column, fitted without a dense movies x movies matrix when users are fewer than inputs), once the whole
    # kernel would take more than item_item_dense_max_mb (ML-100K's 1,682 movies: 22 MB, kept whole; 10,000
    # movies: 800 MB, top-k). None: always whole.
    item_item_top_k: int | None = 100
    item_item_dense_max_mb: float = 128.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}")
        if not (self.ranking_head or self.rating_head):
            raise ValueError("the model needs a ranking head, a rating head or both")
        for name, allowed in (
            ("ranking_target", RANKING_TARGETS),
            ("early_stopping", EARLY_STOPPING),
            ("item_item_input", ITEM_ITEM_INPUTS),
            ("rating_mode", RATING_MODES),
            ("item_item_training", ITEM_ITEM_TRAINING),
            ("prior", PRIORS),
            ("item_item_selection", ITEM_ITEM_SELECTIONS),
            ("encoder_style", ENCODER_STYLES),
            ("optimizer", OPTIMIZERS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}")
        if self.item_item_top_k is not None and self.item_item_top_k < 1:
            raise ValueError("item_item_top_k must be a positive number of neighbours or None")
        object.__setattr__(self, "encoder_units", tuple(self.encoder_units))
        if self.encoder_style == "dense_skip" and len(set(self.encoder_units)) > 1:
            raise ValueError(
                "the dense_skip encoder adds its layers' outputs: every encoder layer needs the same width"
            )
        if self.item_item_l2_grid is not None:
            object.__setattr__(self, "item_item_l2_grid", tuple(self.item_item_l2_grid))
        if self.decoder_units is not None:
            object.__setattr__(self, "decoder_units", tuple(self.decoder_units))

    def resolved_item_item(self, n_items: int) -> bool:
        """Whether a model over ``n_items`` movies gets the movie-to-movie path."""
        if not self.ranking_head:
            return False
        if self.item_item is None:
            return n_items <= self.item_item_max_items
        return bool(self.item_item)

    def resolved_item_item_top_k(self, n_items: int) -> int | None:
        """Neighbours per movie for a model over ``n_items`` movies, or None for the whole kernel.

        A memory rule, not a tuned one: the whole (inputs x movies) float32 kernel is kept while it fits
        ``item_item_dense_max_mb``, where it costs nothing in accuracy; past that, top-k bounds memory.
        """
        if self.item_item_top_k is None:
            return None
        inputs = 2 * n_items if self.item_item_input == "value_aware" else n_items
        return None if inputs * n_items * 4 <= self.item_item_dense_max_mb * 2**20 else self.item_item_top_k

    @property
    def two_phase(self) -> bool:
        """Ranking trained first, then the rating residual alone (see ``rating_mode``)."""
        return self.rating_head and self.ranking_head and self.rating_mode == "bias_residual"

    @property
    def resolved_decoder_units(self) -> tuple[int, ...]:
        return tuple(reversed(self.encoder_units)) if self.decoder_units is None else self.decoder_units

    def to_dict(self) -> dict[str, Any]:
        as_dict = dataclasses.asdict(self)
        as_dict["encoder_units"] = list(self.encoder_units)
        as_dict["decoder_units"] = None if self.decoder_units is None else list(self.decoder_units)
        as_dict["item_item_l2_grid"] = None if self.item_item_l2_grid is None else list(self.item_item_l2_grid)
        return as_dict

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VAEConfig:
        # A model saved before these options had a dense input and a dense movie-to-movie kernel.
        return cls(**{"sparse_input": False, "item_item_top_k": None, **values})

    def replace(self, **changes: Any) -> VAEConfig:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, VAEConfig] = {
    # The product (benchmarks/ml/RESULTS.md): a wide linear encoder of what the user rated and how
    # (+1 liked, -1 disliked) straight into a 600-d latent, a linear decoder; trained on what users
    # liked, early-stopped on validation NDCG@100; plus, on catalogues of up to 20,000 movies, the
    # value-aware EASE movie-to-movie weights mixed in, its L2 and weight picked on validation NDCG@100;
    # stars = damped bias baseline + a residual from the latent code (second phase).
    "default": VAEConfig(
        encoder_units=(),
        latent_dim=600,
        learning_rate=3e-3,
        rating_l2=0.1,
        rating_learning_rate=1e-4,
        ranking_target="liked",
        early_stopping="ndcg@100",
        input_mode="implicit+signed",
        item_item=None,
        item_item_trainable=False,
        item_item_input="value_aware",
        item_item_training="ensemble",
        item_item_l2_grid=(125.0, 250.0, 500.0, 1000.0, 2000.0),
        rating_mode="bias_residual",
        rating_item_damping=5.0,
    ),
    "report-2025": VAEConfig(
        encoder_units=(1024, 512, 256),
        latent_dim=64,
        activation="leaky_relu",
        leaky_relu_slope=0.3,  # Keras' LeakyReLU default, which the report used
        l2=1e-4,
        input_mode="ratings",
        input_dropout=0.0,
        ranking_head=False,
        rating_head=True,
        rating_output="sigmoid",
        rating_loss="mean",
        rating_loss_weight=1.0,
        rating_head_detached=False,
        rating_user_offset_damping=None,
        beta=1.0,
        kl_anneal_epochs=0,
        normalization="report-2025",
        validation_holdout_fraction=0.0,
    ),
    # Multinomial VAE with the report's layer sizes, untuned (the 0.235 P@5 figure).
    "mult-vae-report-sizes": VAEConfig(
        encoder_units=(1024, 512, 256),
        latent_dim=64,
        activation="leaky_relu",
        leaky_relu_slope=0.3,
        l2=1e-4,
        input_dropout=0.5,
        rating_head=False,
        beta=0.2,
    ),
}


# Reported next to the default in the same evaluation run: its VAE part alone, and the value-blind default
# this product had until 2026-11-27 (a 1-star rating pulled similar movies up like a 5-star one).
PRESETS["default-vae-alone"] = PRESETS["default"].replace(item_item=False)
# The default with RecVAE's encoder (Shenbin et al. 2020): five 600-wide dense-skip layers with swish and layer
# norm, a 200-d latent, a linear decoder, the composite prior and a KL weight per rated movie.
PRESETS["recvae"] = PRESETS["default"].replace(
    encoder_units=(600,) * 5,
    encoder_style="dense_skip",
    activation="swish",
    latent_dim=200,
    decoder_units=(),
    prior="composite",
    beta_per_rating=0.005,
    learning_rate=5e-4,
)
# Issue 15's comparisons: the default with a densified input batch, and with the whole (not top-k) movie-to-movie kernel.
PRESETS["default-dense-input"] = PRESETS["default"].replace(sparse_input=False)
PRESETS["default-keras-adam"] = PRESETS["default"].replace(optimizer="adam")
PRESETS["default-dense-item-item"] = PRESETS["default"].replace(item_item_top_k=None)
PRESETS["value-blind-2026-11"] = PRESETS["default"].replace(
    input_mode="implicit", item_item_input="binary", item_item_l2_grid=None
)


def preset(name: str = "default", **overrides: Any) -> VAEConfig:
    """A named configuration, optionally with some fields changed."""
    return PRESETS[name].replace(**overrides)


def _normalized_stars(config: VAEConfig, stars: float) -> float:
    """A rating in stars in the model's normalised units."""
    if config.normalization == "report-2025":
        return (stars - 1.0) / 4.0
    return (stars - data.RATING_MIN) / (data.RATING_MAX - data.RATING_MIN)

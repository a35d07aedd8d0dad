"""The movie-to-movie path in closed form, and (ensemble) its L2 and weight picked on validation users.

On catalogues of up to 20,000 movies the default's ranking logits add EASE's movie-to-movie scores
(Steck 2019, closed form, frozen; value-aware: a disliked movie pushes its neighbours down) with a weight
picked on validation NDCG@100.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.ml import data
from recommender.ml.baselines import ease_weights, value_aware_ease_weights
from recommender.ml.vae.config import CALIBRATION_USERS, ITEM_ITEM_SCALES, NDCG_CUTOFFS, VAEConfig
from recommender.ml.vae.model import RecommenderVAE
from recommender.ml.vae.validation import _deterministic_batches, _row_slices, _ValidationScorer


def _item_item_weights(model: RecommenderVAE, normalized: sp.csr_matrix, l2: float) -> np.ndarray | sp.spmatrix:
    """The movie-to-movie kernel in closed form: EASE, or its value-aware form, on normalised ratings.

    With the path's ``top_k``, only each movie's k strongest inputs, never a dense movies x movies matrix.
    """
    top_k = model.item_item.top_k
    if model.item_item.input_mode != "value_aware":
        return ease_weights(data.observed_mask(normalized), l2, top_k=top_k)
    # Normalised thresholds are float32-rounded in the data: a little slack keeps 2 and 4 stars on their side.
    return value_aware_ease_weights(
        normalized,
        l2,
        liked_threshold=model.liked_threshold - 1e-6,
        disliked_threshold=model.disliked_threshold + 1e-6,
        top_k=top_k,
    )


def _calibrate_item_item(
    model: RecommenderVAE,
    config: VAEConfig,
    statistics: sp.csr_matrix,
    validation_inputs: sp.csr_matrix,
    relevant: sp.csr_matrix | None,
    mirror: float,
) -> dict[str, list[float]]:
    """Ensemble: pick the movie-to-movie path's L2 and weight on validation users (weight 0 keeps the VAE alone).

    The closed form is fitted on ``statistics`` (no validation user's hidden rating) for each L2 of
    ``item_item_l2_grid``. Among the mixes whose validation flip@10 (top 10 overlap with every rating mirrored,
    ``v -> mirror - v`` in normalised units) is at most ``max_flip``, the best ``item_item_selection`` metric
    wins; when none is, the one that listens most. Also records the validation scores of each part alone and of
    the mix, so that keeping the hybrid is a choice shown on validation users. At most CALIBRATION_USERS
    validation users are scored (seeded), which bounds the memory.
    """
    l2_grid = config.item_item_l2_grid or (config.item_item_init_ease_l2,)
    if relevant is None:
        model.item_item.scale.assign(config.item_item_init_scale)
        return {"item_item_scale": [float(config.item_item_init_scale)], "item_item_l2": [float(l2_grid[0])]}
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    if len(users) > CALIBRATION_USERS:
        users = np.sort(np.random.default_rng(config.seed).choice(users, CALIBRATION_USERS, replace=False))
    inputs, relevant, n_relevant = validation_inputs[users], relevant[users], n_relevant[users]
    mirrored = inputs.copy()
    mirrored.data = (mirror - mirrored.data).astype(mirrored.dtype)
    model.item_item.scale.assign(0.0)
    logits = {
        "as rated": [out["ranking_logits"] for _, out in _deterministic_batches(model, inputs)],
        "mirrored": [out["ranking_logits"] for _, out in _deterministic_batches(model, mirrored)],
    }
    scorer = _ValidationScorer(inputs, mirrored, relevant, n_relevant)
    vae_alone = scorer.score(logits["as rated"], logits["mirrored"])
    metric = config.item_item_selection
    candidates = []  # (l2, scale, scores)
    path_alone = {}
    for l2 in l2_grid:
        model.item_item.assign_kernel(_item_item_weights(model, statistics, l2))
        paths = {name: _path_scores(model, rows) for name, rows in (("as rated", inputs), ("mirrored", mirrored))}
        path_alone[l2] = scorer.score(paths["as rated"], paths["mirrored"])
        for scale in ITEM_ITEM_SCALES:
            mixed = {
                name: [vae + scale * path for vae, path in zip(logits[name], paths[name], strict=True)]
                for name in logits
            }
            candidates.append((l2, scale, scorer.score(mixed["as rated"], mixed["mirrored"])))
        del paths
    listening = [c for c in candidates if c[2]["flip@10"] <= config.max_flip + 1e-9]
    if listening:
        l2, scale, best = max(listening, key=lambda c: c[2][metric])
    else:
        l2, scale, best = min(candidates, key=lambda c: (c[2]["flip@10"], -c[2][metric]))
    model.item_item.assign_kernel(_item_item_weights(model, statistics, l2))
    model.item_item.scale.assign(scale)
    history = {"item_item_scale": [float(scale)], "item_item_l2": [float(l2)]}
    for name in (*(f"ndcg@{k}" for k in NDCG_CUTOFFS), "flip@10"):
        history[f"val_{name}_by_item_item_scale"] = [c[2][name] for c in candidates if c[0] == l2]
        history[f"val_{name}_vae_alone"] = [vae_alone[name]]
        history[f"val_{name}_item_item_alone"] = [path_alone[l2][name]]
        history[f"val_{name}_hybrid"] = [best[name]]
    return history


def _path_scores(model: RecommenderVAE, rows: sp.csr_matrix) -> list[np.ndarray]:
    """The movie-to-movie path's scores (scale 1) for each batch of ``rows``."""
    scores = []
    for batch, _ in _row_slices(rows.shape[0]):
        values, mask = data.densify_rows(rows, np.arange(batch.start, batch.stop))
        scores.append(np.asarray(model.item_item.path_scores(model.item_item.features(values, mask))))
    return scores

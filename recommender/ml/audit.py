"""A fair comparison of two trained models: audit users that no model version trains on, scored per user, paired.

Every version leaves the same audit users out of its training (chosen by a hash of their id, so the choice does not
move between trainings), which makes their ratings unseen data for the candidate and the active model alike. Both
models rank for the same users from the same fold-in ratings over the movies both know; the per-user differences
of the metric are paired, so most of the users' own variance cancels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from .data import split_ratings_per_user
from .evaluation import Recommender, hits_matrix, ndcg_at_k
from .inference import exclude_rated, top_n_indices

AUDIT_RULE = "splitmix64(user id) rank"  # stored on each version: versions chosen by another rule are not comparable
AUDIT_MIN_RATINGS = 5  # fewer leave nothing to fold in and hold out
AUDIT_HOLDOUT_FRACTION = 0.2
AUDIT_SPLIT_SEED = 20261127  # the same fold-in/held-out split for every comparison


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each id (Steele et al.'s SplitMix64 finaliser), vectorised."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def audit_user_mask(user_ids: np.ndarray, *, share: float, limit: int) -> np.ndarray:
    """Which users are audit users: those whose hash falls in the lowest `share` of the range, at most `limit`
    of them (the lowest hashes). Deterministic in the ids alone, so a user stays in or out across trainings."""
    user_ids = np.asarray(user_ids)
    mask = np.zeros(len(user_ids), dtype=bool)
    if share <= 0 or limit <= 0 or len(user_ids) == 0:
        return mask
    hashes = _splitmix64(user_ids)
    cutoff = np.uint64(min(share, 1.0) * float(2**64 - 1))
    chosen = np.flatnonzero(hashes <= cutoff)
    if len(chosen) > limit:
        chosen = chosen[np.argsort(hashes[chosen], kind="stable")[:limit]]
    mask[chosen] = True
    return mask


def audit_split(audit_ratings: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The fixed fold-in / held-out split of the audit users that have enough ratings (rows of the others dropped)."""
    audit_ratings = sp.csr_matrix(audit_ratings)
    enough = np.flatnonzero(np.diff(audit_ratings.indptr) >= AUDIT_MIN_RATINGS)
    return split_ratings_per_user(audit_ratings[enough], AUDIT_HOLDOUT_FRACTION, seed=AUDIT_SPLIT_SEED)


class ColumnSubset:
    """A model seen through a subset of its movies: input and output columns are `columns` of the model's own."""

    def __init__(self, model: Recommender, columns: np.ndarray, n_model_columns: int):
        self.model = model
        self.columns = np.asarray(columns)
        self._expand = sp.csr_matrix(
            (np.ones(len(self.columns), np.float32), (np.arange(len(self.columns)), self.columns)),
            shape=(len(self.columns), n_model_columns),
        )

    def rank_scores(self, fold_in: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.model.rank_scores(sp.csr_matrix(fold_in @ self._expand)))[:, self.columns]


def per_user_ndcg(
    model: Recommender,
    fold_in: sp.csr_matrix,
    held_out: sp.csr_matrix,
    threshold: float,
    k: int = 100,
    batch_size: int = 1024,
) -> np.ndarray:
    """NDCG@k of each user (0 for a user with no relevant held-out movie: both models get the same 0)."""
    relevant = held_out.multiply(held_out >= threshold).tocsr()
    relevant.eliminate_zeros()
    scores = []
    for start in range(0, fold_in.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        top = top_n_indices(exclude_rated(model.rank_scores(fold_in[rows]), fold_in[rows]), min(k, fold_in.shape[1]))
        scores.append(ndcg_at_k(hits_matrix(top, relevant[rows]), np.diff(relevant[rows].indptr), k))
    return np.concatenate(scores) if scores else np.zeros(0)


@dataclass
class PairedComparison:
    """Candidate minus active, per user: the mean difference, its standard error and the decision's inputs."""

    users: int
    candidate: float
    active: float
    mean_difference: float
    standard_error: float
    margin: float  # the tolerance actually applied: max(the configured one, 2 standard errors)
    accept: bool

    def to_dict(self) -> dict:
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def tolerated_loss(standard_error: float, margin: float) -> float:
    """How much worse (mean per-user difference) a candidate may score and still be accepted: the retraining noise
    (`margin`, measured between seeded retrainings on the same data) or two standard errors of the mean difference,
    whichever is larger (few audit users are weak evidence either way)."""
    return max(margin, 2 * standard_error)


def paired_comparison(candidate: np.ndarray, active: np.ndarray, *, margin: float) -> PairedComparison:
    """Accept the candidate unless it is worse on average per user by more than `tolerated_loss`."""
    difference = np.asarray(candidate, np.float64) - np.asarray(active, np.float64)
    users = len(difference)
    if users < 2:
        raise ValueError(f"a paired comparison needs at least 2 users, got {users}")
    error = float(difference.std(ddof=1) / np.sqrt(users))
    mean = float(difference.mean())
    tolerance = tolerated_loss(error, margin)
    return PairedComparison(
        users=users,
        candidate=float(np.mean(candidate)),
        active=float(np.mean(active)),
        mean_difference=mean,
        standard_error=error,
        margin=tolerance,
        accept=mean >= -tolerance,
    )

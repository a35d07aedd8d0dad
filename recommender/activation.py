"""The activation decision for a retrained model: is it at least as good as the one in service?

Both models are scored on the audit users (recommender.ml.audit), whose ratings neither was trained on, per user and
paired, over the movies both know. The numbers are kept on the version (`activation_details`) and shown in the admin.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings

from .ml.audit import AUDIT_RULE, ColumnSubset, audit_split, audit_user_mask, per_user_ndcg, tolerated_loss
from .ml.data import relevance_threshold
from .models import ModelVersion
from .recommendations import load_model_version
from .selectors import RatingSnapshot, model_version_active

logger = logging.getLogger(__name__)

ACTIVATION_METRIC = "ndcg@100"
AUDIT_MIN_SITE_USERS = 50  # below this every user trains the model, and each new model is activated


def audit_rule() -> dict:
    """What chose the audit users; two versions are compared fairly only when they left out the same users."""
    return {
        "rule": AUDIT_RULE,
        "share": settings.RECOMMENDER_AUDIT_SHARE,
        "limit": settings.RECOMMENDER_AUDIT_MAX_USERS,
    }


def audit_users_of(snapshot: RatingSnapshot) -> np.ndarray:
    """The snapshot's rows that training must leave out (a boolean mask); none on a site too small to spare them."""
    if len(snapshot.user_ids) < AUDIT_MIN_SITE_USERS:
        return np.zeros(len(snapshot.user_ids), dtype=bool)
    return audit_user_mask(
        snapshot.user_ids, share=settings.RECOMMENDER_AUDIT_SHARE, limit=settings.RECOMMENDER_AUDIT_MAX_USERS
    )


def activation_comparison(*, serving, snapshot: RatingSnapshot, audit: np.ndarray) -> dict:
    """Per-user NDCG@100 of the candidate (`serving`, trained on `snapshot` without the `audit` rows) and of the
    active model on the audit users' fixed held-out ratings, over the movies both models know (all of the
    candidate's when no model is active, or the active one cannot be read)."""
    details: dict = {"metric": ACTIVATION_METRIC, "audit": audit_rule()}
    active = model_version_active()
    details["active_version"] = active.pk if active else None
    loaded = None
    if active is not None:
        if active.data_stats.get("audit") != audit_rule():
            # e.g. trained before audit users existed: it may have seen them, which favours it (a conservative test).
            details["active_audit_note"] = "the active version did not leave out the same audit users"
        try:
            loaded = load_model_version(active)
        except Exception as error:  # noqa: BLE001 - any unreadable file: the candidate replaces it
            details["active_error"] = str(error)[:300]
    common = snapshot.movie_ids if loaded is None else np.intersect1d(snapshot.movie_ids, loaded.movie_ids)
    candidate_columns = np.searchsorted(snapshot.movie_ids, common)
    fold_in, held_out = audit_split(snapshot.matrix[audit])
    fold_in, held_out = fold_in[:, candidate_columns].tocsr(), held_out[:, candidate_columns].tocsr()
    threshold = relevance_threshold(snapshot.matrix)
    # Users left with something to fold in and a liked movie to find; the others would score 0 for both models.
    usable = (np.diff(fold_in.indptr) > 0) & (np.diff((held_out >= threshold).tocsr().indptr) > 0)
    fold_in, held_out = fold_in[usable], held_out[usable]
    details.update(audit_users=int(usable.sum()), movies_compared=len(common))
    if details["audit_users"] < 2:
        return details
    candidate = per_user_ndcg(
        ColumnSubset(serving, candidate_columns, len(snapshot.movie_ids)), fold_in, held_out, threshold
    )
    details["candidate"] = round(float(candidate.mean()), 6)
    if loaded is None:
        return details
    active_columns = np.array([loaded.column_of[int(pk)] for pk in common], dtype=np.int64)
    current = per_user_ndcg(
        ColumnSubset(loaded.recommender, active_columns, len(loaded.movie_ids)), fold_in, held_out, threshold
    )
    difference = candidate - current
    details.update(
        active=round(float(current.mean()), 6),
        mean_difference=round(float(difference.mean()), 6),
        standard_error=round(float(difference.std(ddof=1) / np.sqrt(len(difference))), 6),
        candidate_better_for=int((difference > 0).sum()),
        active_better_for=int((difference < 0).sum()),
    )
    return details


def activation_decide(*, details: dict, active: ModelVersion | None) -> tuple[bool, dict]:
    """Accept or reject with the reason, from the numbers `activation_comparison` stored."""
    details = dict(details)
    configured = settings.RETRAIN_ACTIVATION_MARGIN
    details["configured_margin"] = configured
    candidate, current = details.get("candidate"), details.get("active")
    if active is None:
        return True, {**details, "reason": "no model was active"}
    if details.get("active_version") != active.pk:
        return False, {**details, "reason": f"version {active.pk} was activated during training; not replaced"}
    if details.get("active_error"):
        return True, {
            **details,
            "reason": f"the active version {active.pk} cannot be loaded: {details['active_error']}",
        }
    if candidate is None or current is None:
        users = details.get("audit_users", 0)
        return True, {
            **details,
            "reason": f"too few audit users to compare ({users}); the model trained on newer data is activated",
        }
    margin = tolerated_loss(details.get("standard_error") or 0.0, configured)
    details["margin"] = round(margin, 6)
    accept = candidate - current >= -margin
    details["reason"] = (
        f"{details['metric']} on {details.get('audit_users', '?')} audit users {candidate:.4f} vs active v{active.pk} "
        f"{current:.4f} (tolerated loss {margin:.4f}): "
        + ("not worse, activated" if accept else "worse, kept the active model")
    )
    return accept, details

"""Model versions in and out of service: activating a ready version, and taking a broken active one out.

Separate from services (training) so that serving (recommendations.ModelRegistry) can retire a broken version
without importing the training code, which itself imports serving (activation.py loads the active model).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from movies.page_cache import guest_pages_invalidate

from . import artifacts
from .models import ModelVersion
from .selectors import model_version_active

logger = logging.getLogger(__name__)


class TrainingError(Exception):
    pass


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the one active model, atomically; the previous active one goes back to READY."""
    locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status == ModelVersion.Status.ACTIVE:
        return locked
    if locked.status != ModelVersion.Status.READY:
        raise TrainingError(
            f"model version {locked.pk} is {locked.get_status_display().lower()}; only a ready version can be activated"
        )
    # Refuse to put a model with missing or corrupt files in service.
    for name in (artifacts.SERVING_WEIGHTS, artifacts.MOVIE_INDEX):
        try:
            artifacts.artifact_read(
                folder=locked.artifact_path, name=name, expected_sha256=locked.artifact_sha256.get(name)
            )
        except artifacts.ArtifactError as error:
            raise TrainingError(f"cannot activate model version {locked.pk}: {error}") from error
    ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).update(
        status=ModelVersion.Status.READY
    )
    locked.status = ModelVersion.Status.ACTIVE
    locked.activated_at = timezone.now()
    locked.save(update_fields=["status", "activated_at"])
    logger.info("Model version %s is now active", locked.pk)
    transaction.on_commit(guest_pages_invalidate)  # guests' movie pages show the new model's similar movies
    return locked


@transaction.atomic
def model_version_retire_broken(*, version_id: int, reason: str) -> ModelVersion | None:
    """The active version's files are broken: mark it failed, saying why, and put the last good version back.

    The last good version is the most recently activated ready one whose files pass their checksums. Returns the
    version now active, or None (popular movies are served). When several web processes find the broken version
    at once, the first one changes things and the others only read the result.
    """
    broken = ModelVersion.objects.select_for_update().filter(pk=version_id, status=ModelVersion.Status.ACTIVE).first()
    if broken is None:
        return model_version_active()
    broken.status = ModelVersion.Status.FAILED
    broken.error = f"taken out of service on {timezone.now():%Y-%m-%d %H:%M} UTC, its files cannot be loaded: {reason}"
    broken.save(update_fields=["status", "error"])
    logger.error("Model version %s taken out of service: %s", broken.pk, reason)
    earlier = ModelVersion.objects.filter(status=ModelVersion.Status.READY, activated_at__isnull=False)
    for candidate in earlier.order_by("-activated_at"):
        try:
            restored = model_version_activate(version=candidate)
        except TrainingError as error:
            logger.error("Cannot put model version %s back in service: %s", candidate.pk, error)
            continue
        logger.warning("Model version %s is back in service in place of broken version %s", restored.pk, broken.pk)
        return restored
    return None

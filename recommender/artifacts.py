"""A model version's files, kept in Django's default storage (local disk now, S3-compatible storage by
configuration) and checked against the SHA-256 recorded when they were written."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

KERAS_MODEL = "model.keras"
SERVING_WEIGHTS = "weights.npz"
MOVIE_INDEX = "movie_index.json"
HISTORY = "history.json"
LOSS_PLOT = "loss.png"
METADATA = "metadata.json"

ARTIFACT_ROOT = "models"


class ArtifactError(Exception):
    """A model file cannot be read: missing, unreadable, or its content does not match its recorded checksum."""


class ArtifactBroken(ArtifactError):
    """The file is gone or its content is not what was stored: reading it again will not help."""


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def artifact_folder(version_id: int) -> str:
    return f"{ARTIFACT_ROOT}/v{version_id:05d}"


def artifact_write(*, folder: str, name: str, content: bytes) -> str:
    """Write (or replace) one file; returns its SHA-256."""
    path = f"{folder}/{name}"
    if default_storage.exists(path):
        default_storage.delete(path)
    saved_as = default_storage.save(path, ContentFile(content))
    if saved_as != path:  # a storage that renames on collision would break the recorded layout
        raise ArtifactError(f"storage saved {path} as {saved_as}")
    return sha256_of(content)


def artifact_read(*, folder: str, name: str, expected_sha256: str | None) -> bytes:
    path = f"{folder}/{name}"
    try:
        with default_storage.open(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError as error:
        raise ArtifactBroken(f"{path} is missing from storage ({error})") from error
    except OSError as error:  # e.g. network storage unreachable for a moment
        raise ArtifactError(f"{path} cannot be read from storage ({error})") from error
    if expected_sha256 is None:
        raise ArtifactBroken(f"{path} has no recorded checksum")
    actual = sha256_of(content)
    if actual != expected_sha256:
        raise ArtifactBroken(f"{path} is corrupt: SHA-256 {actual} does not match the recorded {expected_sha256}")
    return content


def artifact_download(*, folder: str, name: str, expected_sha256: str | None, destination: BinaryIO) -> int:
    """Copy one file into `destination` in chunks (a large file never sits whole in memory), checking its SHA-256
    as it streams; returns its size. On a mismatch what was written must be thrown away (the caller's job)."""
    path = f"{folder}/{name}"
    if expected_sha256 is None:
        raise ArtifactBroken(f"{path} has no recorded checksum")
    digest, size = hashlib.sha256(), 0
    try:
        with default_storage.open(path, "rb") as handle:
            for chunk in handle.chunks(chunk_size=2**20):
                digest.update(chunk)
                destination.write(chunk)
                size += len(chunk)
    except FileNotFoundError as error:
        raise ArtifactBroken(f"{path} is missing from storage ({error})") from error
    except OSError as error:
        raise ArtifactError(f"{path} cannot be read from storage ({error})") from error
    if digest.hexdigest() != expected_sha256:
        raise ArtifactBroken(
            f"{path} is corrupt: SHA-256 {digest.hexdigest()} does not match the recorded {expected_sha256}"
        )
    return size


def artifact_check_size(*, folder: str, name: str, expected_size: int) -> None:
    """A cheap check that a file is still in storage, whole: its size (one stat or HEAD request)."""
    path = f"{folder}/{name}"
    try:
        size = default_storage.size(path)
    except FileNotFoundError as error:
        raise ArtifactBroken(f"{path} is missing from storage ({error})") from error
    except OSError as error:
        raise ArtifactError(f"{path} cannot be read from storage ({error})") from error
    if size != expected_size:
        raise ArtifactBroken(f"{path} is corrupt: {size} bytes where {expected_size} were verified")

"""Serving weights on local disk, memory-mapped, so that every web process on a machine shares one copy.

A version's `weights.npz` (in Django storage) is unpacked once per machine into
`<RECOMMENDER_SERVING_CACHE_DIR>/<version id>-<sha256 prefix>/`: one uncompressed `.npy` per array and a
`manifest.json` giving each file's size and SHA-256. The artifact's recorded SHA-256 is checked while it streams
to disk, before anything is unpacked; the folder is built under a temporary name and renamed into place, so it is
whole or absent. Each process then maps every array read-only (`np.load(mmap_mode="r")`): the pages live once in
the kernel's page cache instead of once per worker, and arrays cannot be written (NumPy raises).

Opening checks the manifest, each file's size and SHA-256 (read through the page cache: no private memory, about
0.5 s at ML-25M size, once per process per version: the private load hashed the artifact too); a damaged folder is
rebuilt from storage. A lock file orders processes: openers share it, one builder or pruner holds it alone, so four
workers starting together download and unpack once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.conf import settings

from . import artifacts

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".tmp-"
FORMAT = 1
SHA256_PREFIX = 16  # characters of the artifact's SHA-256 in the folder name
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_]+")  # the exported names; also keeps member names out of other folders


def cache_root() -> Path | None:
    """The cache folder, or None when the setting is empty (each process then loads its own private copy)."""
    value = settings.RECOMMENDER_SERVING_CACHE_DIR
    return Path(value) if value else None


def folder_name(version_id: int, artifact_sha256: str) -> str:
    return f"{version_id}-{artifact_sha256[:SHA256_PREFIX]}"


def serving_weights_open(
    *, root: Path, version_id: int, artifact_folder: str, artifact_sha256: str | None
) -> dict[str, np.ndarray]:
    """The version's serving arrays as read-only memory maps, unpacked from storage first if needed.

    Raises artifacts.ArtifactBroken when the artifact is missing, corrupt or has no recorded checksum (as loading it
    privately does), artifacts.ArtifactError when storage cannot be read, ValueError for an unusable array.
    """
    if not artifact_sha256:
        raise artifacts.ArtifactBroken(f"{artifact_folder}/{artifacts.SERVING_WEIGHTS} has no recorded checksum")
    root.mkdir(parents=True, exist_ok=True)
    target = root / folder_name(version_id, artifact_sha256)
    with _locked(root, fcntl.LOCK_SH):
        arrays, manifest, problem = _open(target, artifact_sha256, hash_files=True)
    if arrays is None:
        with _locked(root, fcntl.LOCK_EX):
            # Another process may have built it while this one waited for the lock.
            arrays, manifest, problem = _open(target, artifact_sha256, hash_files=True)
            if arrays is None:
                if target.exists():
                    logger.warning("Serving cache %s is damaged (%s): unpacking it again", target, problem)
                _build(root, target, artifact_folder, artifact_sha256)
                arrays, manifest, problem = _open(target, artifact_sha256, hash_files=False)
                if arrays is None:
                    raise artifacts.ArtifactError(f"serving cache {target} unusable right after unpacking: {problem}")
    # The local copy matches the recorded checksum; still tell the admin when storage lost or truncated the file.
    artifacts.artifact_check_size(
        folder=artifact_folder, name=artifacts.SERVING_WEIGHTS, expected_size=manifest["artifact_size"]
    )
    return arrays


def serving_cache_prune(*, root: Path, current: str) -> list[str]:
    """Remove old versions' folders, keeping `current` and the one unpacked most recently before it (the previous
    version, which workers that have not switched yet still serve), and what crashed builders left.

    Returns the names removed; removes nothing while another process builds. A process still mapping a removed
    folder's files keeps its pages until it lets go: unlinking a mapped file does not unmap it.
    """
    if not root.is_dir():
        return []
    with _locked(root, fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
        if not held:
            return []
        others = [entry for entry in root.iterdir() if entry.is_dir() and entry.name != current]
        versions = sorted(
            (entry for entry in others if not entry.name.startswith(STAGING_PREFIX)),
            key=lambda entry: entry.stat().st_mtime_ns,
        )
        doomed = [entry for entry in others if entry.name.startswith(STAGING_PREFIX)] + versions[:-1]
        for entry in doomed:
            shutil.rmtree(entry, ignore_errors=True)
    return sorted(entry.name for entry in doomed)


@contextmanager
def _locked(root: Path, operation: int) -> Iterator[bool]:
    """flock on the cache's lock file; yields False when a non-blocking request found it taken."""
    descriptor = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, operation)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock


def _open(
    target: Path, artifact_sha256: str, *, hash_files: bool
) -> tuple[dict[str, np.ndarray] | None, dict | None, str]:
    """(arrays, manifest, "") when the folder is whole and matches its manifest, else (None, None, why not)."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("artifact_sha256") != artifact_sha256:
            return None, None, "its manifest is for another artifact or format"
        files = manifest["files"]
        for name, entry in files.items():
            path = target / f"{name}.npy"
            if path.stat().st_size != entry["size"]:
                return None, None, f"{path.name} has {path.stat().st_size} bytes, not {entry['size']}"
            if hash_files and _file_sha256(path) != entry["sha256"]:
                return None, None, f"{path.name} does not match its SHA-256"
        arrays = {name: np.load(target / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in files}
    except FileNotFoundError as error:
        return None, None, f"missing: {error.filename}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return None, None, f"unreadable: {error}"
    return arrays, manifest, ""


def _build(root: Path, target: Path, artifact_folder: str, artifact_sha256: str) -> None:
    """Download and verify the artifact, unpack it into a staging folder, and rename that into place."""
    for leftover in root.glob(f"{STAGING_PREFIX}*"):  # from a builder that died (none runs: we hold the lock)
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    try:
        archive_path = staging / "artifact.zip"
        with open(archive_path, "wb") as handle:
            size = artifacts.artifact_download(
                folder=artifact_folder,
                name=artifacts.SERVING_WEIGHTS,
                expected_sha256=artifact_sha256,
                destination=handle,
            )
        files = _unpack(archive_path, staging)
        archive_path.unlink()
        manifest = {"format": FORMAT, "artifact_sha256": artifact_sha256, "artifact_size": size, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if target.exists():  # a damaged copy: out of the way first (a rename cannot replace a non-empty folder)
            doomed = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
            os.replace(target, doomed / "old")
            shutil.rmtree(doomed, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("Serving cache %s unpacked (%d arrays, %.1f MB)", target, len(files), size / 1e6)


def _unpack(archive_path: Path, folder: Path) -> dict[str, dict]:
    """Each `.npy` member of the (verified) archive as its own file; checks each maps as a plain array."""
    files: dict[str, dict] = {}
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy") or not _ARRAY_NAME.fullmatch(name) or name in files:
                raise ValueError(f"unexpected member {info.filename!r} in the serving weights")
            digest = hashlib.sha256()
            with archive.open(info) as source, open(folder / info.filename, "wb") as sink:
                while chunk := source.read(2**20):
                    digest.update(chunk)
                    sink.write(chunk)
            files[name] = {"size": info.file_size, "sha256": digest.hexdigest()}
            np.load(folder / info.filename, mmap_mode="r", allow_pickle=False)  # raises for object arrays
    return files


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

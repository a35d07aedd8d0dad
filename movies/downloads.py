"""Fetching official MovieLens archives from GroupLens, checked against the checksum GroupLens publishes."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
RELEASES = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest")
_TIMEOUT_SECONDS = 60


class DownloadError(Exception):
    pass


def _fetch(url: str, destination: Path) -> None:
    with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_release(name: str, folder: Path, *, log: Callable[[str], None] | None = None) -> Path:
    """Download `name`.zip into `folder` (reusing a verified earlier download) and return its path."""
    if name not in RELEASES:
        raise DownloadError(f"unknown MovieLens release {name!r}; choose one of {', '.join(RELEASES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{name}.zip"
    checksum_file = folder / f"{name}.zip.md5"
    try:
        _fetch(f"{BASE_URL}{name}.zip.md5", checksum_file)
        expected = checksum_file.read_text().split()[0].lower()
        if archive.exists() and _md5_of(archive) == expected:
            if log:
                log(f"Using the verified earlier download {archive}")
            return archive
        if log:
            log(f"Downloading {BASE_URL}{name}.zip ...")
        partial = archive.with_suffix(".zip.part")
        _fetch(f"{BASE_URL}{name}.zip", partial)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DownloadError(
            f"could not download {name} from GroupLens ({error}). Without internet access, download "
            f"{BASE_URL}{name}.zip elsewhere and run: manage.py import_movielens /path/to/{name}.zip"
        ) from error
    actual = _md5_of(partial)
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {name}.zip: expected MD5 {expected}, got {actual}; the download was discarded"
        )
    partial.replace(archive)
    return archive

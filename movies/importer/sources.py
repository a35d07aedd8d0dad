"""Where a MovieLens release comes from: a folder or a `.zip` as GroupLens ships it."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from .errors import DatasetError

LAYOUT_100K = "ml-100k"  # u.data, u.item, u.user, u.genre, u.occupation (| and tab separated, Latin-1)
LAYOUT_DAT = "dat"  # ML-1M / ML-10M: ratings.dat, movies.dat, users.dat, tags.dat (:: separated)
LAYOUT_CSV = "csv"  # ML-latest(-small), ML-20M, ML-25M, ML-32M: ratings.csv, movies.csv, links.csv, tags.csv

_RELEASE_NAME = re.compile(r"(ml-(?:\d+[mk]|latest(?:-small)?))", re.IGNORECASE)


@dataclass
class DatasetSource:
    """Files of one release, looked up by their base name wherever the archive nests them."""

    location: Path
    layout: str
    release: str
    _members: dict[str, str] = field(default_factory=dict)  # base name -> path inside the folder or zip
    _zip: zipfile.ZipFile | None = None

    def has(self, name: str) -> bool:
        return name in self._members

    def size(self, name: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._members[name]).file_size
        return Path(self._members[name]).stat().st_size

    def open(self, name: str) -> IO[bytes]:
        if name not in self._members:
            raise DatasetError(f"missing file {name} in {self.location}", file=name)
        if self._zip is not None:
            return self._zip.open(self._members[name])
        return open(self._members[name], "rb")

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _folder_members(folder: Path) -> dict[str, str]:
    members = {p.name: str(p) for p in folder.iterdir() if p.is_file()}
    if not _detect_layout(members):
        # Accept the folder that holds the extracted release too (e.g. downloads/ containing ml-100k/).
        subfolders = [p for p in folder.iterdir() if p.is_dir()]
        candidates = [p for p in subfolders if _detect_layout({q.name: str(q) for q in p.iterdir() if q.is_file()})]
        if len(candidates) == 1:
            return {p.name: str(p) for p in candidates[0].iterdir() if p.is_file()}
    return members


def _zip_members(archive: zipfile.ZipFile) -> dict[str, str]:
    members: dict[str, str] = {}
    for info in archive.infolist():
        if info.is_dir() or "__MACOSX" in info.filename:
            continue
        members.setdefault(Path(info.filename).name, info.filename)
    return members


def _detect_layout(members: dict[str, str]) -> str | None:
    if "u.data" in members and "u.item" in members:
        return LAYOUT_100K
    if "ratings.dat" in members and "movies.dat" in members:
        return LAYOUT_DAT
    if "ratings.csv" in members and "movies.csv" in members:
        return LAYOUT_CSV
    return None


def _release_name(location: Path, layout: str, members: dict[str, str]) -> str:
    if layout == LAYOUT_100K:
        return "ml-100k"
    for name in [location.stem, *sorted({Path(p).parent.name for p in members.values()})]:
        match = _RELEASE_NAME.search(name)
        if match:
            return match.group(1).lower()
    if layout == LAYOUT_DAT:
        return "ml-1m" if "users.dat" in members else "ml-10m"
    return "movielens-csv"


def open_dataset(location: str | Path) -> DatasetSource:
    """Open a MovieLens release from a folder or a zip and detect its layout."""
    path = Path(location).expanduser()
    if not path.exists():
        raise DatasetError(f"{path} does not exist (expected a MovieLens folder or .zip)")
    archive = None
    if path.is_dir():
        members = _folder_members(path)
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        members = _zip_members(archive)
    else:
        raise DatasetError(f"{path} is neither a folder nor a zip archive")
    layout = _detect_layout(members)
    if layout is None:
        if archive is not None:
            archive.close()
        raise DatasetError(
            f"{path} does not look like a MovieLens release: expected u.data + u.item (ML-100K), "
            "ratings.dat + movies.dat (ML-1M, ML-10M) or ratings.csv + movies.csv (ML-latest, ML-20M, ML-25M, ML-32M)"
        )
    return DatasetSource(
        location=path, layout=layout, release=_release_name(path, layout, members), _members=members, _zip=archive
    )

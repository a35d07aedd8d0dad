"""Where a MovieLens release comes from: a folder or a `.zip` as GroupLens ships it."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from .bounded import READ_BYTES, ZIP_DAMAGE, BoundedReader, ImportLimits, check_size, limit_text, open_zip
from .errors import DatasetError, excerpt

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
    limits: ImportLimits = field(default_factory=ImportLimits)

    def has(self, name: str) -> bool:
        return name in self._members

    def size(self, name: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._members[name]).file_size
        return Path(self._members[name]).stat().st_size

    def open(self, name: str, *, whole: bool = False, line_bytes: int | None = None) -> IO[bytes]:
        """The file, read within the bounds (bounded.py); `whole`: it will be read whole into memory; `line_bytes`:
        a tighter bound on its lines than the setting's."""
        if name not in self._members:
            raise DatasetError(f"missing file {name} in {self.location}", file=name)
        bound = "loaded_file_bytes" if whole else "file_bytes"
        size, max_bytes, limit = self.size(name), getattr(self.limits, bound), limit_text(self.limits, bound)
        check_size(name, size, self.limits, bound)
        line_bytes = min(line_bytes or self.limits.line_bytes, self.limits.line_bytes)
        damaged: tuple[type[BaseException], ...] = ()
        if self._zip is None:
            raw: IO[bytes] = open(self._members[name], "rb")  # noqa: SIM115 - closed with the BoundedReader
        else:
            try:
                raw, damaged = self._zip.open(self._members[name]), ZIP_DAMAGE
            except ZIP_DAMAGE as error:
                raise DatasetError(f"damaged archive ({excerpt(error, 100, quoted=False)})", file=name) from error
            # Not a byte more than the zip declared: the declared sizes are what check_zip let through.
            max_bytes, limit = size, f"the {size:,} bytes the archive declares"
        bounded = BoundedReader(raw, name, max_bytes=max_bytes, limit=limit, max_line_bytes=line_bytes, damaged=damaged)
        return io.BufferedReader(bounded, buffer_size=READ_BYTES)

    def read_bytes(self, name: str) -> bytes:
        with self.open(name, whole=True) as handle:
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


def open_dataset(location: str | Path, limits: ImportLimits | None = None) -> DatasetSource:
    """Open a MovieLens release from a folder or a zip and detect its layout (limits: from the settings)."""
    limits = limits or ImportLimits.from_settings()
    path = Path(location).expanduser()
    if not path.exists():
        raise DatasetError(f"{path} does not exist (expected a MovieLens folder or .zip)")
    archive = None
    if path.is_dir():
        members = _folder_members(path)
    elif zipfile.is_zipfile(path):
        archive = open_zip(path, limits)
        members = _zip_members(archive)
    elif path.suffix.lower() == ".zip":
        raise DatasetError(
            f"{path} is neither a folder nor a zip archive: named .zip but not a zip archive, or one damaged or cut "
            "short (download it again)"
        )
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
        location=path,
        layout=layout,
        release=_release_name(path, layout, members),
        _members=members,
        _zip=archive,
        limits=limits,
    )

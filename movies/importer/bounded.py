"""Reading a release within bounds, so a hostile or damaged file costs neither memory nor a traceback.

The sizes a zip declares are checked before anything is inflated (`check_zip`, `check_size`); then every file is read
through `BoundedReader`, which counts what really comes out (a zip can lie about its sizes), refuses a line longer
than the bound before it is ever buffered whole, and turns a damaged archive's errors into DatasetError.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO

import numpy as np
from django.conf import settings

from .errors import DatasetError, excerpt

KIB, MIB, GIB = 1024, 1024**2, 1024**3
# What one read asks of the file underneath.
READ_BYTES = 256 * KIB
# A member smaller than this cannot hurt whatever its ratio (and tiny files compress oddly), so it is not checked.
RATIO_CHECKED_FROM_BYTES = 4 * MIB
# What a damaged zip member raises while it is opened or read: a bad CRC or header (BadZipFile), a corrupt deflate
# stream (zlib.error), data that ends early (EOFError), a corrupt bzip2 (OSError) or LZMA stream, an unsupported
# compression method (NotImplementedError) or an encrypted member (RuntimeError).
ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, lzma.LZMAError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ImportLimits:
    """The bounds, in bytes except the ratio; each field's setting (and environment variable) is in SETTINGS."""

    uncompressed_bytes: int = 4 * GIB  # a zip's files together, as declared (ML-32M: about 1 GB)
    file_bytes: int = 2 * GIB  # any one file, declared and as read (ML-32M's ratings.csv: about 880 MB)
    loaded_file_bytes: int = 256 * MIB  # a file read whole into memory: movies, users, links (a few MB at most)
    compression_ratio: int = 200  # of a zip member (MovieLens files compress about 3-5:1, a zip bomb 1000:1)
    line_bytes: int = 64 * KIB  # one line (MovieLens lines are under 1 KB)

    @classmethod
    def from_settings(cls) -> ImportLimits:
        return cls(**{f.name: int(getattr(settings, SETTINGS[f.name], f.default)) for f in fields(cls)})


SETTINGS = {
    "uncompressed_bytes": "MOVIELENS_MAX_UNCOMPRESSED_BYTES",
    "file_bytes": "MOVIELENS_MAX_FILE_BYTES",
    "loaded_file_bytes": "MOVIELENS_MAX_LOADED_FILE_BYTES",
    "compression_ratio": "MOVIELENS_MAX_COMPRESSION_RATIO",
    "line_bytes": "MOVIELENS_MAX_LINE_BYTES",
}


def limit_text(limits: ImportLimits, name: str) -> str:
    """'the 2,147,483,648-byte limit (MOVIELENS_MAX_FILE_BYTES)': which bound, and the setting that raises it."""
    return f"the {getattr(limits, name):,}-byte limit ({SETTINGS[name]})"


def check_size(file: str, size: int, limits: ImportLimits, name: str) -> None:
    if size > getattr(limits, name):
        raise DatasetError(f"{size:,} bytes, more than {limit_text(limits, name)}", file=file)


def check_zip(archive: zipfile.ZipFile, location: Path, limits: ImportLimits) -> None:
    """Refuse a zip by the sizes it declares, before anything is inflated."""
    total = 0
    for info in archive.infolist():
        name = Path(info.filename).name or info.filename
        check_size(name, info.file_size, limits, "file_bytes")
        ratio = limits.compression_ratio
        if info.file_size >= RATIO_CHECKED_FROM_BYTES and info.file_size > ratio * max(info.compress_size, 1):
            raise DatasetError(
                f"{info.compress_size:,} bytes that inflate to {info.file_size:,}: a compression ratio above "
                f"{ratio}:1 ({SETTINGS['compression_ratio']}); MovieLens files compress about 4:1",
                file=name,
            )
        total += info.file_size
    if total > limits.uncompressed_bytes:
        raise DatasetError(
            f"its files inflate to {total:,} bytes, more than {limit_text(limits, 'uncompressed_bytes')}",
            file=location.name,
        )


def open_zip(location: Path, limits: ImportLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(location)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        # e.g. a download that lost a piece: the end record is there, the directory it points to is not.
        raise DatasetError(
            f"damaged archive ({excerpt(error, 100, quoted=False)}); download it again", file=location.name
        ) from error
    try:
        check_zip(archive, location, limits)
    except DatasetError:
        archive.close()
        raise
    return archive


class BoundedReader(io.RawIOBase):
    """A file as read: at most `max_bytes` (past it: "more than `limit`"), no line over `max_line_bytes`, and the
    errors in `damaged` (a zip member's) reported as a damaged archive; every refusal names the file and the line."""

    def __init__(
        self,
        raw: IO[bytes],
        name: str,
        *,
        max_bytes: int,
        limit: str,
        max_line_bytes: int = ImportLimits.line_bytes,
        damaged: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._raw, self.name, self._max_bytes, self._limit = raw, name, max_bytes, limit
        self._max_line_bytes, self._damaged = max_line_bytes, damaged
        self.bytes_read = 0
        self.lines = 0  # newlines read so far
        self._line_bytes = 0  # bytes of the current, unfinished line

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            chunk = self._raw.read(min(len(buffer), READ_BYTES))
        except self._damaged as error:
            reason = excerpt(error, 100, quoted=False)
            raise DatasetError(f"damaged archive ({reason})", file=self.name, line=self.lines + 1) from error
        self._check(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _check(self, chunk: bytes) -> None:
        allowed = self._max_bytes - self.bytes_read
        if len(chunk) > allowed:
            line = self.lines + chunk[:allowed].count(b"\n") + 1
            raise DatasetError(f"more than {self._limit}", file=self.name, line=line)
        bound, first = self._max_line_bytes, chunk.find(b"\n")
        # The line carried over from the previous reads, then the lines that end inside this chunk (vectorised: a
        # loop per line would cost seconds on ML-32M), then the unfinished one it ends with.
        if self._line_bytes + (len(chunk) if first < 0 else first) > bound:
            self._too_long(self.lines + 1)
        if first < 0:
            self._line_bytes += len(chunk)
        else:
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n"))
            too_long = np.diff(ends) - 1 > bound
            if too_long.any():
                self._too_long(self.lines + 2 + int(np.argmax(too_long)))
            self.lines += len(ends)
            self._line_bytes = len(chunk) - int(ends[-1]) - 1
        self.bytes_read += len(chunk)

    def _too_long(self, line: int) -> None:
        raise DatasetError(f"line longer than {self._max_line_bytes:,} bytes", file=self.name, line=line)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

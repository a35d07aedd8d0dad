"""The ratings file of any layout, streamed in chunks of parallel NumPy arrays (pandas' C parser, then vectorised
checks), so memory stays flat whatever its size (ML-32M has 32 million ratings)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from movies.models import RATING_SCORES

from .errors import MAX_ID, MAX_TIMESTAMP, DatasetError, excerpt
from .sources import DatasetSource

RATINGS_CHUNK_ROWS = 100_000
# A chunk holds 100,000 lines: lines of at most 1 KB keep it near 100 MB whatever the file (a real rating line is
# under 50 bytes; the general line bound, 64 KiB, would let one chunk reach 6 GB).
RATING_LINE_BYTES = 1024
_RATING_COLUMNS = ["user", "movie", "rating", "timestamp"]
_VALID_SCORES = np.array(RATING_SCORES)


@dataclass
class RatingChunk:
    """Parallel arrays for a block of rating lines; `lines` holds each row's line number in the file."""

    file: str
    lines: np.ndarray
    user_ids: np.ndarray
    movie_ids: np.ndarray
    scores: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)


class _ByteCounter(io.RawIOBase):
    """A readable stream that reports progress and can turn ML-1M's two-character '::' into a tab,
    so pandas' fast C parser can read `.dat` files (it only takes one-character separators)."""

    def __init__(
        self, raw: io.BufferedIOBase, on_bytes: Callable[[int], None] | None, replace_double_colon: bool
    ) -> None:
        self._raw, self._on_bytes, self._replace = raw, on_bytes, replace_double_colon
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._raw.read(max(len(buffer) - len(self._pending), 1) if self._replace else len(buffer))
        if self._on_bytes and chunk:
            self._on_bytes(len(chunk))
        if self._replace:
            chunk = self._pending + chunk
            # Hold back a trailing ':' in case its partner starts the next read.
            self._pending = b""
            if chunk.endswith(b":") and not chunk.endswith(b"::"):
                chunk, self._pending = chunk[:-1], b":"
            chunk = chunk.replace(b"::", b"\t")
            if not chunk and self._pending:
                chunk, self._pending = self._pending, b""
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_rating_chunks(
    source: DatasetSource, name: str, *, separator: str, header: bool, on_bytes: Callable[[int], None] | None
) -> Iterator[RatingChunk]:
    raw = source.open(name, line_bytes=RATING_LINE_BYTES)
    stream = io.BufferedReader(_ByteCounter(raw, on_bytes, replace_double_colon=separator == "::"), buffer_size=1 << 20)
    lines_before_data = 1 if header else 0
    try:
        if header:
            header_line = stream.readline().decode("latin-1").strip().lstrip("\ufeff")
            if header_line.split(",") != ["userId", "movieId", "rating", "timestamp"]:
                raise DatasetError(
                    f"expected the header userId,movieId,rating,timestamp, found {header_line!r}", file=name, line=1
                )
        # Default type inference keeps the fast numeric path; a column with a bad value comes back as text
        # and _validate_rating_frame finds the row.
        # A fifth, normally empty column catches rows with an extra field: with exactly four names pandas would
        # silently take the first field of such a row as an index and shift the others.
        reader = pd.read_csv(
            stream,
            sep="\t" if separator == "::" else separator,
            header=None,
            names=[*_RATING_COLUMNS, "extra"],
            index_col=False,
            chunksize=RATINGS_CHUNK_ROWS,
            skip_blank_lines=False,
            # No rating is quoted: a stray '"' must not open a field that runs on over the following lines.
            quoting=csv.QUOTE_NONE,
            encoding="latin-1",
            engine="c",
        )
        line = lines_before_data + 1
        for frame in reader:
            yield _validate_rating_frame(frame, name, line)
            line += len(frame)
    except pd.errors.ParserError as error:
        message = str(error)
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if match:
            _, line_number, found = (int(g) for g in match.groups())
            raise DatasetError(
                f"expected 4 fields, found {found}", file=name, line=line_number + lines_before_data
            ) from error
        raise DatasetError(f"malformed rows ({message.strip()})", file=name) from error
    finally:
        raw.close()


def _validate_rating_frame(frame: pd.DataFrame, name: str, first_line: int) -> RatingChunk:

    def fail(column: str, bad: np.ndarray, reason: str) -> None:
        row = int(np.argmax(bad))
        raw_value = frame[column].iat[row]
        shown = f"{raw_value:g}" if isinstance(raw_value, (int, float, np.number)) else excerpt(str(raw_value))
        message = f"missing {column} field" if pd.isna(raw_value) else f"{column} {shown} {reason}"
        raise DatasetError(message, file=name, line=first_line + row)

    extra = frame["extra"].notna().to_numpy()
    if extra.any():
        raise DatasetError("expected 4 fields, found 5", file=name, line=first_line + int(np.argmax(extra)))
    frame = frame[_RATING_COLUMNS]
    blank = frame.isna().all(axis=1).to_numpy()
    keep = ~blank
    numbers = {}
    for column in _RATING_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        bad = np.isnan(values) & keep
        if bad.any():
            fail(column, bad, "is not a number")
        numbers[column] = values
    for column in ("user", "movie", "timestamp"):
        values = numbers[column]
        bad = keep & ((values != np.floor(values)) | (values < 0))
        if bad.any():
            fail(column, bad, "is not a non-negative whole number")
        largest = MAX_TIMESTAMP if column == "timestamp" else MAX_ID
        bad = keep & (values > largest)
        if bad.any():
            fail(
                column, bad, f"is larger than {largest:,}" + (" (after the year 2100)" if column == "timestamp" else "")
            )
    bad = keep & ~np.isin(numbers["rating"], _VALID_SCORES)
    if bad.any():
        fail("rating", bad, "is outside 0.5-5 stars in half-star steps")
    return RatingChunk(
        file=name,
        lines=first_line + np.flatnonzero(keep),
        user_ids=numbers["user"][keep].astype(np.int64),
        movie_ids=numbers["movie"][keep].astype(np.int64),
        scores=numbers["rating"][keep],
        timestamps=numbers["timestamp"][keep].astype(np.int64),
    )

"""PostgreSQL's binary COPY format, for rows of fixed-width columns that are never NULL, encoded and decoded by NumPy.

The one place that knows the layout: the MovieLens importer writes ratings with it (COPY ... FROM STDIN) and the
recommender reads its training snapshot with it (COPY ... TO STDOUT). No Python object per row either way.

A stream is a header (an 11-byte signature, 32-bit flags, a 32-bit header-extension length and that many bytes),
then one tuple per row (a 16-bit field count, then for each field a 32-bit byte length and the value, big-endian),
then a trailer (a field count of -1). ``bigint`` and ``double precision`` are 8-byte integers and IEEE floats;
``timestamptz`` counts microseconds from 2000-01-01 UTC, and is a ``datetime64[us]`` (UTC) on the NumPy side.
Django-free: nothing here touches a connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # no flags, no header extension
TRAILER = (-1).to_bytes(2, "big", signed=True)

# PostgreSQL type -> (wire dtype, NumPy dtype the caller gives and gets).
_TYPES = {
    "bigint": (np.dtype(">i8"), np.dtype(np.int64)),
    "double precision": (np.dtype(">f8"), np.dtype(np.float64)),
    "timestamptz": (np.dtype(">i8"), np.dtype("datetime64[us]")),
}
_POSTGRES_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us").astype(np.int64)  # from 1970-01-01


@dataclass(frozen=True)
class RowLayout:
    """The columns of one COPY, in order: (name, PostgreSQL type) pairs, each type a key of _TYPES."""

    columns: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        unknown = [kind for _, kind in self.columns if kind not in _TYPES]
        if unknown:
            raise ValueError(f"binary COPY here handles {', '.join(_TYPES)} only, not {', '.join(unknown)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def definitions(self) -> str:
        """The columns as SQL, for a table that COPY fills: "user_id bigint, score double precision"."""
        return ", ".join(f"{name} {kind}" for name, kind in self.columns)

    @property
    def dtype(self) -> np.dtype:
        """One tuple on the wire: the field count, then each field's length and value."""
        fields = [("fields", ">i2")]
        for name, kind in self.columns:
            fields += [(f"{name}_len", ">i4"), (name, _TYPES[kind][0])]
        return np.dtype(fields)


def encode(layout: RowLayout, columns: Mapping[str, np.ndarray]) -> bytes:
    """A complete binary COPY stream (header, rows, trailer) of equal-length column arrays, without a Python loop."""
    n_rows = len(columns[layout.names[0]])
    rows = np.empty(n_rows, dtype=layout.dtype)
    rows["fields"] = len(layout.columns)
    for name, kind in layout.columns:
        wire, native = _TYPES[kind]
        rows[f"{name}_len"] = wire.itemsize
        values = np.asarray(columns[name])
        if kind == "timestamptz":
            if values.dtype.kind != "M":  # plain numbers would be taken for microseconds, silently
                raise TypeError(f"{name}: a timestamptz column takes datetime64 values, not {values.dtype}")
            rows[name] = values.astype(native).astype(np.int64) - _POSTGRES_EPOCH_US
        else:
            rows[name] = values
    return HEADER + rows.tobytes() + TRAILER


def decode(
    layout: RowLayout, blocks: Iterable[bytes], *, batch_rows: int = 1_000_000
) -> Iterator[dict[str, np.ndarray]]:
    """Decode a binary COPY stream that arrives in blocks of any size, yielding columns about batch_rows rows at a time.

    Columns come in native byte order and the NumPy dtypes of _TYPES. Raises ValueError on a stream that is not a
    binary COPY of this layout (a wrong signature, another field count or width, a NULL, bytes after the rows).
    """
    row = layout.dtype
    pending = bytearray()
    header_done = False
    for block in blocks:
        pending.extend(block)
        if not header_done:
            header_done = _strip_header(pending)
        if header_done and len(pending) >= batch_rows * row.itemsize:
            yield _decode_rows(layout, pending)
    if not header_done:
        raise ValueError("a binary COPY stream ended inside its header")
    if len(pending) >= row.itemsize:
        yield _decode_rows(layout, pending)
    if bytes(pending) != TRAILER:
        raise ValueError(f"{len(pending)} stray bytes at the end of a binary COPY stream (expected its 2-byte trailer)")


def _strip_header(pending: bytearray) -> bool:
    """Remove the header from the front of pending once it is all there; False while it is still arriving."""
    fixed = len(SIGNATURE) + 8
    if len(pending) < fixed:
        return False
    if bytes(pending[: len(SIGNATURE)]) != SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY stream (wrong signature)")
    extension = int.from_bytes(pending[fixed - 4 : fixed], "big")
    if len(pending) < fixed + extension:
        return False
    del pending[: fixed + extension]
    return True


def _decode_rows(layout: RowLayout, pending: bytearray) -> dict[str, np.ndarray]:
    """Decode (and remove) every complete row at the front of pending."""
    row = layout.dtype
    n_bytes = len(pending) // row.itemsize * row.itemsize
    rows = np.frombuffer(bytes(pending[:n_bytes]), dtype=row)
    del pending[:n_bytes]
    ok = rows["fields"] == len(layout.columns)
    for name, kind in layout.columns:
        ok &= rows[f"{name}_len"] == _TYPES[kind][0].itemsize
    if not ok.all():
        raise ValueError(f"row {int(np.argmin(ok))} of a binary COPY block does not have the layout {layout.columns}")
    columns = {}
    for name, kind in layout.columns:
        native = _TYPES[kind][1]
        if kind == "timestamptz":
            columns[name] = (rows[name].astype(np.int64) + _POSTGRES_EPOCH_US).astype(native)
        else:
            columns[name] = rows[name].astype(native)
    return columns

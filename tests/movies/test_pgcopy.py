"""PostgreSQL's binary COPY format (movies/pgcopy.py): what the importer writes and the recommender reads."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from movies import pgcopy

LAYOUT = pgcopy.RowLayout(
    (("user_id", "bigint"), ("movie_id", "bigint"), ("score", "double precision"), ("rated_at", "timestamptz"))
)


def some_rows(n: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "user_id": rng.integers(1, 2**40, n),
        "movie_id": np.arange(n, dtype=np.int64) - 3,  # negative, zero and positive
        "score": rng.choice(np.arange(1, 11) / 2, n),
        # Before 2000 (negative on the wire), the epochs themselves, and microseconds.
        "rated_at": np.array(["1995-06-01T12:00:00", "1970-01-01", "2000-01-01", "2024-02-29T23:59:59.999999"] * n)[
            :n
        ].astype("datetime64[us]"),
    }


def decoded(layout: pgcopy.RowLayout, blocks, **options) -> dict[str, np.ndarray]:
    batches = list(pgcopy.decode(layout, blocks, **options))
    return {name: np.concatenate([batch[name] for batch in batches]) for name in layout.names}


def in_blocks(payload: bytes, size: int) -> list[bytes]:
    return [payload[start : start + size] for start in range(0, len(payload), size)]


@pytest.mark.parametrize("block_size", [1, 5, 38, 1 << 20])
def test_encoded_rows_decode_to_the_same_values_whatever_the_blocks(block_size):
    rows = some_rows()
    payload = pgcopy.encode(LAYOUT, rows)

    assert payload.startswith(pgcopy.HEADER) and payload.endswith(pgcopy.TRAILER)
    assert len(payload) == len(pgcopy.HEADER) + 7 * LAYOUT.dtype.itemsize + 2
    back = decoded(LAYOUT, in_blocks(payload, block_size), batch_rows=3)
    for name in LAYOUT.names:
        np.testing.assert_array_equal(back[name], rows[name])
    assert [back[name].dtype for name in LAYOUT.names] == [np.int64, np.int64, np.float64, np.dtype("datetime64[us]")]


def test_no_rows_and_the_wire_values():
    empty = {**{name: np.zeros(0, np.int64) for name in LAYOUT.names}, "rated_at": np.zeros(0, "datetime64[us]")}
    assert pgcopy.encode(LAYOUT, empty) == pgcopy.HEADER + pgcopy.TRAILER
    assert list(pgcopy.decode(LAYOUT, [pgcopy.HEADER + pgcopy.TRAILER])) == []
    one = pgcopy.RowLayout((("rated_at", "timestamptz"),))
    payload = pgcopy.encode(one, {"rated_at": np.array(["2000-01-01T00:00:01"], "datetime64[s]")})
    # One field of 8 bytes: 1,000,000 microseconds after PostgreSQL's epoch.
    assert payload[19:-2] == (1).to_bytes(2, "big") + (8).to_bytes(4, "big") + (1_000_000).to_bytes(8, "big")


def test_timestamps_must_be_datetimes_not_numbers():
    with pytest.raises(TypeError, match="datetime64"):
        pgcopy.encode(LAYOUT, {**some_rows(), "rated_at": np.array([0] * 7)})


def test_a_stream_that_is_not_this_layout_is_refused():
    payload = pgcopy.encode(LAYOUT, some_rows())
    with pytest.raises(ValueError, match="signature"):
        list(pgcopy.decode(LAYOUT, [b"PGCOPZ" + payload[6:]]))
    with pytest.raises(ValueError, match="stray bytes"):
        list(pgcopy.decode(LAYOUT, [payload[:-2]]))  # no trailer: a stream cut short at a row's end
    with pytest.raises(ValueError, match="stray bytes"):
        list(pgcopy.decode(LAYOUT, [payload[:-5]]))
    with pytest.raises(ValueError, match="inside its header"):
        list(pgcopy.decode(LAYOUT, [payload[:10]]))
    three = pgcopy.RowLayout(LAYOUT.columns[:3])
    with pytest.raises(ValueError, match="layout"):
        list(pgcopy.decode(three, [pgcopy.encode(three, some_rows(3))[:19] + payload[19:]]))
    null_score = bytearray(payload)
    null_score[19 + 2 + 12 + 12 : 19 + 2 + 12 + 12 + 4] = (-1).to_bytes(4, "big", signed=True)
    with pytest.raises(ValueError, match="layout"):
        list(pgcopy.decode(LAYOUT, [bytes(null_score)]))
    with pytest.raises(ValueError, match="only"):
        pgcopy.RowLayout((("title", "text"),))


@pytest.mark.django_db(transaction=True)
def test_postgresql_reads_what_is_encoded_and_writes_what_is_decoded():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's COPY path; CI runs the suite on PostgreSQL too")
    rows = some_rows()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE copy_round_trip ({LAYOUT.definitions})")
        with cursor.cursor.copy("COPY copy_round_trip FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgcopy.encode(LAYOUT, rows))
        with cursor.cursor.copy(
            f"COPY (SELECT {', '.join(LAYOUT.names)} FROM copy_round_trip) TO STDOUT (FORMAT BINARY)"
        ) as copy:
            back = decoded(LAYOUT, copy)
        cursor.execute("DROP TABLE copy_round_trip")
    for name in LAYOUT.names:
        np.testing.assert_array_equal(back[name], rows[name])

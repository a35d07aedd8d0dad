"""The importer's large-file paths: PostgreSQL binary COPY and its bulk mode, reading ahead in a thread, repeated
lines and tags, and a failure late in a file. Small synthetic releases stand in for ML-25M."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import connection

from benchmarks.synthetic_movielens import generate
from movies.importer import DatasetError, load, rating_chunks, writers
from movies.importer.load import movielens_import
from movies.models import ImportRun, Rating, Tag

from .test_importer import snapshot

pytestmark = pytest.mark.django_db(transaction=True)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's COPY path; CI runs the suite on PostgreSQL too"
)


def rating_table_schema() -> dict:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Rating._meta.db_table)
    return {
        name: (c["columns"], c["unique"], c["index"], c["foreign_key"], c["check"]) for name, c in constraints.items()
    }


@pytest.fixture
def release(tmp_path):
    folder = tmp_path / "ml-synthetic"
    generate(folder, n_ratings=5000, n_users=60, seed=3, log=lambda _: None)
    return folder


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 700 rows, so a 5,000-rating file spans several (and the reader thread runs ahead)."""
    monkeypatch.setattr(rating_chunks, "RATINGS_CHUNK_ROWS", 700)


@postgresql_only
def test_bulk_load_gives_the_same_database_and_restores_every_index_and_foreign_key(release, small_chunks, monkeypatch):
    schema = rating_table_schema()
    assert any(c[3] for c in schema.values())  # the foreign keys are there to begin with

    monkeypatch.setattr(load, "BULK_LOAD_MIN_BYTES", 0)
    run = movielens_import(location=str(release))
    assert rating_table_schema() == schema
    assert run.ratings_created == Rating.objects.count() == 5000
    bulk = snapshot()

    Rating.objects.all().delete()
    monkeypatch.setattr(load, "BULK_LOAD_MIN_BYTES", 1 << 40)  # row-checked upserts, constraints in place
    movielens_import(location=str(release))
    assert snapshot() == bulk

    again = movielens_import(location=str(release))  # bulk re-import: nothing new, nothing rewritten
    assert (again.ratings_created, again.ratings_updated) == (0, 5000)
    assert snapshot() == bulk and rating_table_schema() == schema


@postgresql_only
def test_binary_copy_payload_round_trips():
    users, movies = np.array([1, 2, 3]), np.array([10, 20, 2**40])
    scores, seconds = np.array([0.5, 3.5, 5.0]), np.array([0, 881250949, 1574327703])
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copy_check (user_id bigint, movie_id bigint, score double precision, rated_at timestamptz)"
        )
        with cursor.cursor.copy("COPY copy_check FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(writers.pg_copy_ratings_payload(users, movies, scores, seconds))
        cursor.execute("SELECT user_id, movie_id, score, rated_at FROM copy_check ORDER BY user_id")
        rows = cursor.fetchall()
    assert rows == [
        (int(u), int(m), float(s), datetime.fromtimestamp(int(t), tz=UTC))
        for u, m, s, t in zip(users, movies, scores, seconds)
    ]


def test_a_bad_line_late_in_the_file_rolls_back_everything_and_leaves_the_schema(release, small_chunks, monkeypatch):
    monkeypatch.setattr(load, "BULK_LOAD_MIN_BYTES", 0)
    schema = rating_table_schema()
    ratings = release / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines[4500] = lines[4500].rsplit(",", 2)[0] + ",7.0,881250949"  # a rating out of range in the 7th chunk
    ratings.write_text("\n".join(lines) + "\n")

    with pytest.raises(DatasetError) as raised:
        movielens_import(location=str(release))

    assert raised.value.line == 4501 and "rating 7" in str(raised.value)
    assert not Rating.objects.exists() and not ImportRun.objects.exists()
    assert rating_table_schema() == schema
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "movielens-ratings-reader"]


def test_a_pair_rated_twice_keeps_the_later_line_within_and_across_chunks(release, small_chunks):
    ratings = release / "ratings.csv"
    lines = ratings.read_text().splitlines()
    first_user, first_movie = lines[1].split(",")[:2]
    second_user, second_movie = lines[2].split(",")[:2]
    lines.insert(3, f"{first_user},{first_movie},0.5,900000000")  # the same chunk
    lines.append(f"{second_user},{second_movie},1.5,900000001")  # a later chunk
    ratings.write_text("\n".join(lines) + "\n")

    run = movielens_import(location=str(release))

    assert run.ratings_created == 5000 and run.ratings_updated == 2
    pairs = {
        (r.user.movielens_id, r.movie.movielens_id): r.score for r in Rating.objects.select_related("user", "movie")
    }
    assert pairs[(int(first_user), int(first_movie))] == 0.5
    assert pairs[(int(second_user), int(second_movie))] == 1.5


def test_a_tag_repeated_in_the_file_is_stored_once(release):
    tags = release / "tags.csv"
    lines = tags.read_text().splitlines()
    tags.write_text("\n".join([*lines, lines[1], lines[1]]) + "\n")

    run = movielens_import(location=str(release))

    assert run.tags_created == Tag.objects.count() == len(lines) - 1


def test_reading_ahead_hands_over_chunks_in_order_and_stops_with_its_consumer():
    closed = threading.Event()

    def chunks():
        try:
            yield from range(100)
        finally:
            closed.set()

    assert list(load.read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]
    ahead = load.read_ahead(chunks())
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()  # the consumer stops early (an error while writing): the thread and the file are released
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "movielens-ratings-reader"]


def test_reading_ahead_raises_the_readers_error_after_the_good_chunks():
    def chunks():
        yield "first"
        raise DatasetError("bad line", file="ratings.csv", line=9)

    ahead = load.read_ahead(chunks())
    assert next(ahead) == "first"
    with pytest.raises(DatasetError, match="bad line"):
        next(ahead)

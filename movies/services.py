"""Writes to the movie catalogue."""
from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import astuple
from datetime import UTC, datetime

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .importer import DatasetError, open_dataset
from .importer.readers import MovieRecord, RatingChunk, Reader, UserRecord, reader_for
from .models import RATING_SCORES, Genre, ImportRun, Movie, NotInterested, Rating, Tag, WatchlistItem
from .signals import ratings_changed

logger = logging.getLogger(__name__)

MOVIELENS_USERNAME_PREFIX = "movielens_"
_WRITE_BATCH = 5_000
_TAG_BATCH = 50_000
_IN_QUERY_BATCH = 10_000  # stays under SQLite's limit on bound parameters
# PostgreSQL: a ratings file this large (about 400,000 ratings) is loaded with the table's foreign keys and
# secondary indexes dropped and rebuilt (see _PostgresRatingCopy).
BULK_LOAD_MIN_BYTES = 10 * 1024 * 1024

# Opens a progress display for a total of bytes and returns something with .update(n_bytes).
ProgressFactory = Callable[[int, str], AbstractContextManager]


class _NoProgress:
    def update(self, _n: int) -> None:
        pass


def movielens_username(movielens_id: int) -> str:
    return f"{MOVIELENS_USERNAME_PREFIX}{movielens_id}"


@transaction.atomic
def movielens_import(
    *, location: str, dry_run: bool = False, progress: ProgressFactory | None = None
) -> ImportRun:
    """Import (or re-import) a MovieLens release from a folder or zip, in one transaction.

    Idempotent: movies, MovieLens users, ratings and tags are matched on their MovieLens ids and updated in
    place, so a second run leaves the same database. Site users and their ratings are never touched. Any bad
    line raises DatasetError and rolls everything back. With dry_run the whole import runs and is rolled back.
    """
    started_at = timezone.now()
    with open_dataset(location) as source:
        _refuse_mixed_releases(source.release)
        reader = reader_for(source)
        run = ImportRun(release=source.release, layout=source.layout, source=str(source.location), started_at=started_at)
        movie_pks = _import_movies(reader, run)
        user_importer = _UserImporter()
        user_importer.upsert(reader.users(), run)
        _import_ratings(reader, movie_pks, user_importer, run, progress)
        _import_tags(reader, movie_pks, user_importer, run)
        movie_refresh_rating_stats()
        run.users_created = user_importer.created
        run.finished_at = timezone.now()
        if dry_run:
            transaction.set_rollback(True)
        else:
            run.save()
    logger.info("Imported %s from %s: %s", run.release, run.source, run_summary(run))
    return run


def movie_refresh_rating_stats(*, movie_ids: Iterable[int] | None = None) -> int:
    """Recompute the stored rating count and mean of the given movies (all when None); returns how many changed."""
    if movie_ids is None:
        return _movie_refresh_all_rating_stats()
    ratings = Rating.objects.filter(movie=OuterRef("pk")).order_by().values("movie")
    return Movie.objects.filter(pk__in=list(movie_ids)).update(
        rating_count=Coalesce(Subquery(ratings.annotate(n=Count("pk")).values("n")), 0),
        rating_mean=Subquery(ratings.annotate(mean=Avg("score")).values("mean")),
    )


def _movie_refresh_all_rating_stats() -> int:
    # One grouped scan of the ratings instead of two correlated subqueries per movie: 2.1 s instead of 28.2 s for
    # 10 million ratings on PostgreSQL. UPDATE ... FROM works on PostgreSQL and SQLite (3.33+); only the spelling of
    # a NULL-safe "differs" is theirs.
    movies, ratings = Movie._meta.db_table, Rating._meta.db_table
    differs = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {movies} SET rating_count = stats.n, rating_mean = stats.mean "
            f"FROM (SELECT movie_id, COUNT(*) AS n, AVG(score) AS mean FROM {ratings} GROUP BY movie_id) AS stats "
            f"WHERE {movies}.id = stats.movie_id AND ({movies}.rating_count, {movies}.rating_mean) {differs} (stats.n, stats.mean)"
        )
        updated = cursor.rowcount
    updated += Movie.objects.filter(rating_count__gt=0).filter(~Exists(Rating.objects.filter(movie=OuterRef("pk")))).update(
        rating_count=0, rating_mean=None
    )
    return updated


def run_summary(run: ImportRun) -> str:
    return (
        f"movies {run.movies_created} created, {run.movies_updated} updated; "
        f"users {run.users_created} created, {run.users_updated} updated; "
        f"ratings {run.ratings_created} created, {run.ratings_updated} already present (refreshed); "
        f"tags {run.tags_created} created"
    )


def _refuse_mixed_releases(release: str) -> None:
    # Each release numbers its users (and ML-100K its movies) its own way: mixing two would merge strangers.
    previous = ImportRun.objects.exclude(release=release).values_list("release", flat=True).first()
    if previous:
        raise DatasetError(
            f"this database already holds MovieLens {previous}; {release} numbers its users and movies differently, "
            "so it must go into a fresh database (set DATABASE_URL to a new one)"
        )


def _import_movies(reader: Reader, run: ImportRun) -> dict[int, int]:
    records = reader.movies()
    _refuse_duplicate_movies([m.movielens_id for m in records])
    genre_pks = _ensure_genres([*reader.genres(), *(g for m in records for g in m.genres)])

    fields = ("title", "year", "release_date", "imdb_id", "imdb_url", "tmdb_id")
    through = Movie.genres.through
    genres_of: dict[int, set[int]] = {}
    for movie_pk, genre_pk in through.objects.values_list("movie_id", "genre_id"):
        genres_of.setdefault(movie_pk, set()).add(genre_pk)
    existing = {
        row[0]: (row[1], (*row[2:], genres_of.get(row[1], set())))
        for row in Movie.objects.values_list("movielens_id", "pk", *fields)
    }

    def wanted(movie: MovieRecord) -> tuple:
        return (*_movie_values(movie), {genre_pks[g] for g in movie.genres})

    changed = [m for m in records if m.movielens_id not in existing or existing[m.movielens_id][1] != wanted(m)]
    run.movies_created = sum(1 for m in changed if m.movielens_id not in existing)
    run.movies_updated = len(changed) - run.movies_created
    Movie.objects.bulk_create(
        [Movie(movielens_id=m.movielens_id, **dict(zip(fields, _movie_values(m)))) for m in changed],
        update_conflicts=True, unique_fields=["movielens_id"], update_fields=[*fields, "search_title"], batch_size=_WRITE_BATCH,
    )
    movie_pks = dict(Movie.objects.values_list("movielens_id", "pk"))
    changed_pks = [movie_pks[m.movielens_id] for m in changed]
    for start in range(0, len(changed_pks), _IN_QUERY_BATCH):
        through.objects.filter(movie_id__in=changed_pks[start : start + _IN_QUERY_BATCH]).delete()
    through.objects.bulk_create(
        [through(movie_id=movie_pks[m.movielens_id], genre_id=genre_pks[g]) for m in changed for g in m.genres],
        batch_size=_WRITE_BATCH,
    )
    return movie_pks


def _movie_values(movie: MovieRecord) -> tuple:
    return (movie.title, movie.year, movie.release_date, movie.imdb_id, movie.imdb_url, movie.tmdb_id)


def _ensure_genres(names: Iterable[str]) -> dict[str, int]:
    Genre.objects.bulk_create([Genre(name=name) for name in dict.fromkeys(names)], ignore_conflicts=True)
    return dict(Genre.objects.values_list("name", "pk"))


def _refuse_duplicate_movies(ids: list[int]) -> None:
    values, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
    if (counts > 1).any():
        raise DatasetError(f"movie id {int(values[np.argmax(counts > 1)])} appears more than once in the movie list")


def _unusable_password() -> str:
    # What make_password(None) stores (the prefix marks it unusable, a random suffix makes each unique), from one
    # call to the system's random source instead of 40: 0.6 us instead of 29 us, 4.7 s of ML-25M's 162,540 users.
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)


class _UserImporter:
    """MovieLens users: created on first sight with an unusable password, matched on their MovieLens id."""

    fields = ("age", "gender", "occupation", "zip_code")

    def __init__(self) -> None:
        User = get_user_model()
        self.model = User
        rows = User.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "pk", *self.fields)
        self.pks: dict[int, int] = {row[0]: row[1] for row in rows}
        self.values: dict[int, tuple] = {row[0]: row[2:] for row in rows}
        self.taken_usernames = set(
            User.objects.filter(username__startswith=MOVIELENS_USERNAME_PREFIX, movielens_id__isnull=True)
            .values_list("username", flat=True)
        )
        self.created = 0
        self._lookup: _IdLookup | None = None  # sorted arrays of self.pks, rebuilt after users are created

    def _new_user(self, movielens_id: int, values: dict | None = None):
        username = movielens_username(movielens_id)
        if username in self.taken_usernames:
            raise DatasetError(
                f"a site account is already called {username!r}; rename it in the admin, then import again"
            )
        # An unusable password: imported people cannot log in until an admin sets one.
        return self.model(username=username, movielens_id=movielens_id, password=_unusable_password(), **(values or {}))

    def upsert(self, records: list[UserRecord], run: ImportRun) -> None:
        values_of = {r.movielens_id: dict(zip(self.fields, astuple(r)[1:])) for r in records}
        changed = [i for i, values in values_of.items() if self.values.get(i) != tuple(values.values())]
        new = [i for i in changed if i not in self.pks]
        updated = [i for i in changed if i in self.pks]
        run.users_updated = len(updated)
        self._create([self._new_user(i, values_of[i]) for i in new])
        self.model.objects.bulk_update(
            [self.model(pk=self.pks[i], **values_of[i]) for i in updated], list(self.fields), batch_size=_WRITE_BATCH
        )
        self.values.update((i, tuple(values_of[i].values())) for i in changed)

    def pks_for(self, movielens_ids: np.ndarray) -> np.ndarray:
        """Primary keys for an array of MovieLens user ids, creating the users not seen yet (vectorised lookup)."""
        if self._lookup is None:
            self._lookup = _IdLookup(self.pks)
        seen = self._lookup.known(movielens_ids)
        if not seen.all():
            self._create([self._new_user(i) for i in np.unique(movielens_ids[~seen]).tolist()])
            self._lookup = _IdLookup(self.pks)
        return self._lookup.pks[self._lookup.positions(movielens_ids)]

    def _create(self, users: list) -> None:
        if not users:
            return
        self.model.objects.bulk_create(users, batch_size=_WRITE_BATCH)
        if users[0].pk is None:  # backends that cannot return ids from a bulk insert
            ids = [u.movielens_id for u in users]
            for start in range(0, len(ids), _IN_QUERY_BATCH):
                self.pks.update(
                    self.model.objects.filter(movielens_id__in=ids[start : start + _IN_QUERY_BATCH]).values_list("movielens_id", "pk")
                )
        else:
            self.pks.update((u.movielens_id, u.pk) for u in users)
        self.created += len(users)
        self._lookup = None


class _IdLookup:
    """Vectorised MovieLens id -> primary key (sorted arrays), for movies and users; pks_for names the first line
    that cites an unknown movie."""

    def __init__(self, pks_by_id: dict[int, int]) -> None:
        ids = np.fromiter(pks_by_id.keys(), dtype=np.int64, count=len(pks_by_id))
        order = np.argsort(ids)
        self.ids = ids[order]
        self.pks = np.fromiter(pks_by_id.values(), dtype=np.int64, count=len(pks_by_id))[order]

    def positions(self, movielens_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, movielens_ids).clip(0, max(len(self.ids) - 1, 0))

    def known(self, movielens_ids: np.ndarray) -> np.ndarray:
        if not len(self.ids):
            return np.zeros(len(movielens_ids), bool)
        return self.ids[self.positions(movielens_ids)] == movielens_ids

    def pks_for(self, movielens_ids: np.ndarray, file: str, lines: np.ndarray) -> np.ndarray:
        known = self.known(movielens_ids)
        if not known.all():
            row = int(np.argmin(known))
            raise DatasetError(f"movie {int(movielens_ids[row])} is not in the movie list", file=file, line=int(lines[row]))
        return self.pks[self.positions(movielens_ids)]


def _timestamps_for_db(seconds: np.ndarray) -> list:
    if connection.vendor == "sqlite":
        # Django stores SQLite datetimes as UTC text; formatting in NumPy is ~50x faster than per-row datetimes.
        return np.char.replace(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "T", " ").tolist()
    return [datetime.fromtimestamp(int(s), tz=UTC) for s in seconds]


def _last_of_each_pair(user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
    """Positions that keep the last line of each (user, movie) pair, in (user, movie) order.

    A file that rates the same movie twice keeps its later line, as the row-by-row upsert always did. Key order
    also keeps B-tree inserts local: about twice as fast as file order.
    """
    order = np.lexsort((np.arange(len(user_ids)), movie_ids, user_ids))
    users, movies = user_ids[order], movie_ids[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (users[1:] != users[:-1]) | (movies[1:] != movies[:-1])
    return order[last]


class _Upsert:
    """Rows through one INSERT ... ON CONFLICT statement, executemany in slices (SQLite, and any other backend)."""

    def __init__(self, cursor, sql: str) -> None:
        self.cursor, self.sql = cursor, sql

    def write_rows(self, rows: list[tuple]) -> None:
        for start in range(0, len(rows), _WRITE_BATCH * 4):
            self.cursor.executemany(self.sql, rows[start : start + _WRITE_BATCH * 4])

    def finish(self) -> None:
        pass


class _RatingUpsert(_Upsert):
    def __init__(self, cursor) -> None:
        # Raw upsert: the ORM would build 25 million model instances for ML-25M. ON CONFLICT is what makes a
        # re-import update in place instead of failing.
        super().__init__(cursor, (
            f"INSERT INTO {Rating._meta.db_table} (user_id, movie_id, score, rated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id, movie_id) DO UPDATE SET score = excluded.score, rated_at = excluded.rated_at"
        ))

    def write(self, user_ids: np.ndarray, movie_ids: np.ndarray, scores: np.ndarray, seconds: np.ndarray) -> None:
        self.write_rows(list(zip(user_ids.tolist(), movie_ids.tolist(), scores.tolist(), _timestamps_for_db(seconds))))


# PostgreSQL binary COPY: one row is a field count, then each field's length and big-endian value.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PG_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_COPY_ROW = np.dtype([
    ("fields", ">i2"), ("user_len", ">i4"), ("user_id", ">i8"), ("movie_len", ">i4"), ("movie_id", ">i8"),
    ("score_len", ">i4"), ("score", ">f8"), ("rated_at_len", ">i4"), ("rated_at", ">i8"),
])
_PG_EPOCH_SECONDS = 946_684_800  # timestamptz counts microseconds from 2000-01-01 UTC


def pg_copy_ratings_payload(user_ids: np.ndarray, movie_ids: np.ndarray, scores: np.ndarray, seconds: np.ndarray) -> bytes:
    """A complete binary COPY stream of (user_id, movie_id, score, rated_at) rows, built by NumPy without a Python loop."""
    rows = np.empty(len(user_ids), dtype=_PG_COPY_ROW)
    rows["fields"] = 4
    rows["user_len"] = rows["movie_len"] = rows["score_len"] = rows["rated_at_len"] = 8
    rows["user_id"], rows["movie_id"], rows["score"] = user_ids, movie_ids, scores
    rows["rated_at"] = (seconds.astype(np.int64) - _PG_EPOCH_SECONDS) * 1_000_000
    return _PG_COPY_HEADER + rows.tobytes() + _PG_COPY_TRAILER


class _PostgresStagedWrite:
    """PostgreSQL: each batch goes by COPY into a temporary table, then into its table by one set-based statement.

    No per-row statement and no SQL text to parse per row; dropped at commit (or at finish, for a second import
    in the same transaction).
    """

    def __init__(self, cursor, *, stage: str, columns: str, insert: str) -> None:
        self.cursor, self.stage, self.columns, self.insert = cursor, stage, columns, insert
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} ({columns}) ON COMMIT DROP")

    def _load(self, fill: Callable, *, binary: bool) -> None:
        names = ", ".join(column.split()[0] for column in self.columns.split(","))
        options = " (FORMAT BINARY)" if binary else ""
        with self.cursor.cursor.copy(f"COPY {self.stage} ({names}) FROM STDIN{options}") as copy:  # psycopg's own cursor
            fill(copy)
        self.cursor.execute(self.insert)
        self.cursor.execute(f"TRUNCATE {self.stage}")

    def finish(self) -> None:
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.stage}")


class _PostgresRatingCopy(_PostgresStagedWrite):
    """Ratings on PostgreSQL: binary COPY of each chunk (built by NumPy: no Python datetimes, no text to parse) and
    one upsert from it. Rows whose score and date did not change are left alone, so a re-import does not rewrite
    (and bloat) the table. The whole 1M-rating import command took 43.6 s with executemany, 16.8 s this way.

    With ``bulk`` (a large file), the ratings table's foreign keys and secondary indexes are dropped for the load
    and rebuilt at the end, inside the import's transaction (a failure restores them with everything else): per-row
    foreign-key checks, deferred to the commit, and index maintenance then cost one pass each; the 1M import fell to
    7.4 s. The price is an exclusive lock on the ratings table until the import commits, so pages that read ratings
    wait: large imports belong in a maintenance window (README). The (user, movie) unique index stays: upserts need it.
    """

    def __init__(self, cursor, *, bulk: bool) -> None:
        self.table = Rating._meta.db_table
        stage = "movielens_rating_stage"
        super().__init__(
            cursor, stage=stage, columns="user_id bigint, movie_id bigint, score double precision, rated_at timestamptz",
            insert=(
                f"INSERT INTO {self.table} AS r (user_id, movie_id, score, rated_at) "
                f"SELECT user_id, movie_id, score, rated_at FROM {stage} "
                "ON CONFLICT (user_id, movie_id) DO UPDATE SET score = excluded.score, rated_at = excluded.rated_at "
                "WHERE (r.score, r.rated_at) IS DISTINCT FROM (excluded.score, excluded.rated_at)"
            ),
        )
        self.dropped_foreign_keys: list[tuple[str, str]] = []
        self.dropped_indexes: list[tuple[str, str]] = []
        if bulk:
            self._drop_foreign_keys_and_secondary_indexes()

    def _drop_foreign_keys_and_secondary_indexes(self) -> None:
        # Definitions are read back from the catalogue, so they are recreated exactly as the migrations made them.
        self.cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [self.table],
        )
        self.dropped_foreign_keys = list(self.cursor.fetchall())
        self.cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND NOT x.indisunique "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            [self.table],
        )
        self.dropped_indexes = list(self.cursor.fetchall())
        for name, _ in self.dropped_foreign_keys:
            self.cursor.execute(f'ALTER TABLE {self.table} DROP CONSTRAINT "{name}"')
        for name, _ in self.dropped_indexes:
            self.cursor.execute(f'DROP INDEX "{name}"')

    def write(self, user_ids: np.ndarray, movie_ids: np.ndarray, scores: np.ndarray, seconds: np.ndarray) -> None:
        payload = pg_copy_ratings_payload(user_ids, movie_ids, scores, seconds)
        self._load(lambda copy: copy.write(payload), binary=True)

    def finish(self) -> None:
        super().finish()
        if self.dropped_indexes or self.dropped_foreign_keys:
            # Sorting for an index build is much faster with more than the default 64 MB of working memory.
            self.cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in self.dropped_indexes:
            self.cursor.execute(definition)
        for name, definition in self.dropped_foreign_keys:
            # One validating join over the table instead of one lookup per row.
            self.cursor.execute(f'ALTER TABLE {self.table} ADD CONSTRAINT "{name}" {definition}')


def _read_ahead(chunks: Iterator[RatingChunk], depth: int = 2) -> Iterator[RatingChunk]:
    """Parse the next chunks in a thread while this one writes the current chunk to the database.

    Parsing (pandas, NumPy) and the database server then work at the same time on two cores. Errors raised while
    parsing (a bad line) come out here, in order; if the consumer stops early, the thread stops too.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(item: object) -> bool:
        """Wait for a free slot; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            hand_over(error)
        else:
            hand_over(done)

    thread = threading.Thread(target=produce, name="movielens-ratings-reader", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the generator's own cleanup (its file), now that no thread runs it


def _import_ratings(
    reader: Reader, movie_pks: dict[int, int], users: _UserImporter, run: ImportRun, progress: ProgressFactory | None
) -> None:
    movies = _IdLookup(movie_pks)
    before = Rating.objects.count()
    rows = 0
    display = progress(reader.ratings_size(), reader.ratings_file) if progress else nullcontext(_NoProgress())
    with display as bar, connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            writer = _PostgresRatingCopy(cursor, bulk=reader.ratings_size() >= BULK_LOAD_MIN_BYTES)
        else:
            writer = _RatingUpsert(cursor)
        chunk: RatingChunk
        for chunk in _read_ahead(reader.ratings(on_bytes=bar.update)):
            movie_ids = movies.pks_for(chunk.movie_ids, chunk.file, chunk.lines)
            user_ids = users.pks_for(chunk.user_ids)
            keep = _last_of_each_pair(user_ids, movie_ids)
            writer.write(user_ids[keep], movie_ids[keep], chunk.scores[keep], chunk.timestamps[keep])
            rows += len(chunk)
        writer.finish()
    run.ratings_created = Rating.objects.count() - before
    run.ratings_updated = rows - run.ratings_created


def _import_tags(reader: Reader, movie_pks: dict[int, int], users: _UserImporter, run: ImportRun) -> None:
    """Tags in batches: one vectorised user/movie lookup and one set-based write per batch (ML-25M has 1.1 million)."""
    movies = _IdLookup(movie_pks)
    max_length = Tag._meta.get_field("text").max_length
    before = Tag.objects.count()
    with connection.cursor() as cursor:
        writer = _PostgresTagCopy(cursor) if connection.vendor == "postgresql" else _TagInsert(cursor)
        records = iter(reader.tags())
        while batch := list(itertools.islice(records, _TAG_BATCH)):
            lines = np.fromiter((r.line for r in batch), dtype=np.int64, count=len(batch))
            movie_ids = movies.pks_for(np.fromiter((r.movie_id for r in batch), np.int64, len(batch)), reader.tags_file, lines)
            user_ids = users.pks_for(np.fromiter((r.user_id for r in batch), np.int64, len(batch)))
            tagged_at = _timestamps_for_db(np.fromiter((r.timestamp for r in batch), np.int64, len(batch)))
            writer.write_rows(list(zip(user_ids.tolist(), movie_ids.tolist(), (r.text[:max_length] for r in batch), tagged_at)))
        writer.finish()
    run.tags_created = Tag.objects.count() - before


class _TagInsert(_Upsert):
    """A tag already present stays as it is."""

    def __init__(self, cursor) -> None:
        super().__init__(cursor, (
            f"INSERT INTO {Tag._meta.db_table} (user_id, movie_id, text, tagged_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id, movie_id, text) DO NOTHING"
        ))


class _PostgresTagCopy(_PostgresStagedWrite):
    def __init__(self, cursor) -> None:
        stage = "movielens_tag_stage"
        # DISTINCT: a file may repeat a tag, and one INSERT cannot touch the same conflicting row twice.
        super().__init__(
            cursor, stage=stage, columns="user_id bigint, movie_id bigint, text text, tagged_at timestamptz",
            insert=(
                f"INSERT INTO {Tag._meta.db_table} (user_id, movie_id, text, tagged_at) "
                f"SELECT DISTINCT ON (user_id, movie_id, text) user_id, movie_id, text, tagged_at FROM {stage} "
                "ON CONFLICT (user_id, movie_id, text) DO NOTHING"
            ),
        )

    def write_rows(self, rows: list[tuple]) -> None:
        def fill(copy) -> None:
            for row in rows:
                copy.write_row(row)

        self._load(fill, binary=False)


# ------------------------------------------------------------------------------------------- site ratings


class RatingError(ValueError):
    """A rating the site refuses, with a message fit to show the person who sent it."""


def parse_score(value: object) -> float:
    """Accept 0.5 to 5 in half-star steps, from a form string or a number; anything else is a clear error."""
    try:
        score = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise RatingError(f"{value!r} is not a number of stars: choose 0.5 to 5 in half-star steps.") from None
    if score != score or score not in RATING_SCORES:  # NaN, out of range or not a half step
        raise RatingError(f"{value} stars is not a rating: choose 0.5 to 5 in half-star steps.")
    return score


@transaction.atomic
def rating_set(*, user, movie: Movie, score: object) -> Rating:
    """Create or change the user's rating of a movie; the movie leaves their watchlist once rated."""
    stars = parse_score(score)
    rating, _ = Rating.objects.update_or_create(user=user, movie=movie, defaults={"score": stars, "rated_at": timezone.now()})
    WatchlistItem.objects.filter(user=user, movie=movie).delete()
    movie_refresh_rating_stats(movie_ids=[movie.pk])
    transaction.on_commit(_retraining_check, robust=True)
    return rating


@transaction.atomic
def rating_delete(*, user, movie: Movie) -> bool:
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        movie_refresh_rating_stats(movie_ids=[movie.pk])
        transaction.on_commit(_retraining_check, robust=True)
    return bool(deleted)


def _retraining_check() -> None:
    # After commit, so the training snapshot sees the rating; robust: a failure here must not fail the request.
    # movies knows nothing of what listens: recommender connects its retraining trigger in its AppConfig.ready.
    ratings_changed.send(sender=Rating)


def watchlist_add(*, user, movie: Movie) -> WatchlistItem:
    if Rating.objects.filter(user=user, movie=movie).exists():
        raise RatingError(f"You have already rated {movie}; the watchlist is for movies you have not seen.")
    item, _ = WatchlistItem.objects.get_or_create(user=user, movie=movie)
    return item


def watchlist_remove(*, user, movie: Movie) -> bool:
    return bool(WatchlistItem.objects.filter(user=user, movie=movie).delete()[0])


def not_interested_add(*, user, movie: Movie) -> NotInterested:
    item, _ = NotInterested.objects.get_or_create(user=user, movie=movie)
    return item


def not_interested_remove(*, user, movie: Movie) -> bool:
    return bool(NotInterested.objects.filter(user=user, movie=movie).delete()[0])

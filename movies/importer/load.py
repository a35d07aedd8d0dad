"""`movielens_import`: a whole MovieLens release into the database in one transaction.

The order of the work: refuse a second release, movies and genres, MovieLens users, ratings (parsed a chunk ahead in
a thread while the previous chunk is written), tags, then the movies' stored rating statistics. The readers
(readers.py, rating_chunks.py) know the files; movies_and_users.py and writers.py know the tables.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from movies.models import ImportRun, Rating, Tag
from movies.services import movie_refresh_rating_stats

from .errors import DatasetError
from .movies_and_users import IdLookup, UserImporter, import_movies
from .rating_chunks import RatingChunk
from .readers import Reader, reader_for
from .sources import open_dataset
from .writers import last_of_each_pair, rating_writer, tag_writer, timestamps_for_db

logger = logging.getLogger(__name__)

_TAG_BATCH = 50_000
# PostgreSQL: a ratings file this large (about 400,000 ratings) is loaded with the table's foreign keys and
# secondary indexes dropped and rebuilt (see writers.PostgresRatingCopy).
BULK_LOAD_MIN_BYTES = 10 * 1024 * 1024

# Opens a progress display for a total of bytes and returns something with .update(n_bytes).
ProgressFactory = Callable[[int, str], AbstractContextManager]


class _NoProgress:
    def update(self, _n: int) -> None:
        pass


@transaction.atomic
def movielens_import(*, location: str, dry_run: bool = False, progress: ProgressFactory | None = None) -> ImportRun:
    """Import (or re-import) a MovieLens release from a folder or zip, in one transaction.

    Idempotent: movies, MovieLens users, ratings and tags are matched on their MovieLens ids and updated in
    place, so a second run leaves the same database. Site users and their ratings are never touched. Any bad
    line raises DatasetError and rolls everything back. With dry_run the whole import runs and is rolled back.
    """
    started_at = timezone.now()
    with open_dataset(location) as source:
        _refuse_mixed_releases(source.release)
        reader = reader_for(source)
        run = ImportRun(
            release=source.release, layout=source.layout, source=str(source.location), started_at=started_at
        )
        movie_pks = import_movies(reader, run)
        user_importer = UserImporter()
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


def _import_ratings(
    reader: Reader, movie_pks: dict[int, int], users: UserImporter, run: ImportRun, progress: ProgressFactory | None
) -> None:
    movies = IdLookup(movie_pks)
    before = Rating.objects.count()
    rows = 0
    display = progress(reader.ratings_size(), reader.ratings_file) if progress else nullcontext(_NoProgress())
    with display as bar, connection.cursor() as cursor:
        writer = rating_writer(cursor, bulk=reader.ratings_size() >= BULK_LOAD_MIN_BYTES)
        chunk: RatingChunk
        for chunk in read_ahead(reader.ratings(on_bytes=bar.update)):
            movie_ids = movies.pks_for(chunk.movie_ids, chunk.file, chunk.lines)
            user_ids = users.pks_for(chunk.user_ids)
            keep = last_of_each_pair(user_ids, movie_ids)
            writer.write(user_ids[keep], movie_ids[keep], chunk.scores[keep], chunk.timestamps[keep])
            rows += len(chunk)
        writer.finish()
    run.ratings_created = Rating.objects.count() - before
    run.ratings_updated = rows - run.ratings_created


def _import_tags(reader: Reader, movie_pks: dict[int, int], users: UserImporter, run: ImportRun) -> None:
    """Tags in batches: one vectorised user/movie lookup and one set-based write per batch (ML-25M has 1.1 million)."""
    movies = IdLookup(movie_pks)
    max_length = Tag._meta.get_field("text").max_length
    before = Tag.objects.count()
    with connection.cursor() as cursor:
        writer = tag_writer(cursor)
        # Each tag cut as it is read: a batch holds 50,000, and one CSV field may run to 128 KB.
        records = (r if len(r.text) <= max_length else replace(r, text=r.text[:max_length]) for r in reader.tags())
        while batch := list(itertools.islice(records, _TAG_BATCH)):
            n = len(batch)
            lines = np.fromiter((r.line for r in batch), dtype=np.int64, count=n)
            movie_ids = movies.pks_for(np.fromiter((r.movie_id for r in batch), np.int64, n), reader.tags_file, lines)
            user_ids = users.pks_for(np.fromiter((r.user_id for r in batch), np.int64, n))
            tagged_at = timestamps_for_db(np.fromiter((r.timestamp for r in batch), np.int64, n))
            texts = (r.text for r in batch)
            writer.write_rows(list(zip(user_ids.tolist(), movie_ids.tolist(), texts, tagged_at)))
        writer.finish()
    run.tags_created = Tag.objects.count() - before


def read_ahead(chunks: Iterator[RatingChunk], depth: int = 2) -> Iterator[RatingChunk]:
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
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
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

"""Movies (with their genres) and MovieLens users: upserted from the release's records, matched on their MovieLens
ids, and those ids mapped to primary keys by vectorised lookups for the ratings and tags that cite them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import astuple

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

from accounts.models import MOVIELENS_USERNAME_PREFIX
from movies.models import Genre, ImportRun, Movie

from .errors import DatasetError
from .readers import MovieRecord, Reader, UserRecord
from .writers import IN_QUERY_BATCH, WRITE_BATCH


def movielens_username(movielens_id: int) -> str:
    return f"{MOVIELENS_USERNAME_PREFIX}{movielens_id}"


def import_movies(reader: Reader, run: ImportRun) -> dict[int, int]:
    """Create or update the release's movies and their genres; returns MovieLens movie id -> primary key."""
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
        update_conflicts=True,
        unique_fields=["movielens_id"],
        update_fields=[*fields, "search_title"],
        batch_size=WRITE_BATCH,
    )
    movie_pks = dict(Movie.objects.values_list("movielens_id", "pk"))
    changed_pks = [movie_pks[m.movielens_id] for m in changed]
    for start in range(0, len(changed_pks), IN_QUERY_BATCH):
        through.objects.filter(movie_id__in=changed_pks[start : start + IN_QUERY_BATCH]).delete()
    through.objects.bulk_create(
        [through(movie_id=movie_pks[m.movielens_id], genre_id=genre_pks[g]) for m in changed for g in m.genres],
        batch_size=WRITE_BATCH,
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


class UserImporter:
    """MovieLens users: created on first sight with an unusable password, matched on their MovieLens id."""

    fields = ("age", "gender", "occupation", "zip_code")

    def __init__(self) -> None:
        User = get_user_model()
        self.model = User
        rows = User.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "pk", *self.fields)
        self.pks: dict[int, int] = {row[0]: row[1] for row in rows}
        self.values: dict[int, tuple] = {row[0]: row[2:] for row in rows}
        self.taken_usernames = set(
            User.objects.filter(username__startswith=MOVIELENS_USERNAME_PREFIX, movielens_id__isnull=True).values_list(
                "username", flat=True
            )
        )
        self.created = 0
        self._lookup: IdLookup | None = None  # sorted arrays of self.pks, rebuilt after users are created

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
            [self.model(pk=self.pks[i], **values_of[i]) for i in updated], list(self.fields), batch_size=WRITE_BATCH
        )
        self.values.update((i, tuple(values_of[i].values())) for i in changed)

    def pks_for(self, movielens_ids: np.ndarray) -> np.ndarray:
        """Primary keys for an array of MovieLens user ids, creating the users not seen yet (vectorised lookup)."""
        if self._lookup is None:
            self._lookup = IdLookup(self.pks)
        seen = self._lookup.known(movielens_ids)
        if not seen.all():
            self._create([self._new_user(i) for i in np.unique(movielens_ids[~seen]).tolist()])
            self._lookup = IdLookup(self.pks)
        return self._lookup.pks[self._lookup.positions(movielens_ids)]

    def _create(self, users: list) -> None:
        if not users:
            return
        self.model.objects.bulk_create(users, batch_size=WRITE_BATCH)
        if users[0].pk is None:  # backends that cannot return ids from a bulk insert
            ids = [u.movielens_id for u in users]
            for start in range(0, len(ids), IN_QUERY_BATCH):
                self.pks.update(
                    self.model.objects.filter(movielens_id__in=ids[start : start + IN_QUERY_BATCH]).values_list(
                        "movielens_id", "pk"
                    )
                )
        else:
            self.pks.update((u.movielens_id, u.pk) for u in users)
        self.created += len(users)
        self._lookup = None


class IdLookup:
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
            raise DatasetError(
                f"movie {int(movielens_ids[row])} is not in the movie list", file=file, line=int(lines[row])
            )
        return self.pks[self.positions(movielens_ids)]

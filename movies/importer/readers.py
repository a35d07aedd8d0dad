"""Layout-specific readers. Small files (movies, users, links) are read whole; ratings (rating_chunks.py) and tags
stream in chunks so memory stays flat whatever the file size (ML-32M has 32 million ratings)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from ..links import is_web_link
from .errors import MAX_ID, MAX_TIMESTAMP, DatasetError, excerpt
from .rating_chunks import RatingChunk, read_rating_chunks
from .sources import LAYOUT_100K, LAYOUT_CSV, LAYOUT_DAT, DatasetSource
from .titles import split_title

# ML-1M users.dat stores occupations as codes (its README lists them).
ML1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)


@dataclass(frozen=True)
class MovieRecord:
    movielens_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    release_date: date | None = None
    imdb_url: str = ""
    imdb_id: str = ""
    tmdb_id: int | None = None


@dataclass(frozen=True)
class UserRecord:
    movielens_id: int
    age: int | None = None
    gender: str = ""
    occupation: str = ""
    zip_code: str = ""


@dataclass(frozen=True)
class TagRecord:
    line: int
    user_id: int
    movie_id: int
    text: str
    timestamp: int


# ---------------------------------------------------------------------------------------------- helpers


def decode(source: DatasetSource, name: str, encodings: tuple[str, ...]) -> str:
    """Decode a whole (small) file, trying each encoding; name the line of the first bad byte if none fits."""
    data = source.read_bytes(name)
    errors = []
    for encoding in encodings:
        try:
            return data.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError as error:
            errors.append(error)
    first = errors[0]
    raise DatasetError(
        f"not valid {first.encoding.upper()} text (byte 0x{data[first.start]:02x}); is this the file GroupLens ships?",
        file=name,
        line=data[: first.start].count(b"\n") + 1,
    ) from first


def _parse_int(
    value: str, what: str, name: str, line: int, *, allow_empty: bool = False, largest: int = MAX_ID
) -> int | None:
    value = value.strip()
    if not value and allow_empty:
        return None
    try:
        number = int(value)
    except ValueError:
        raise DatasetError(f"{what} {excerpt(value)} is not a whole number", file=name, line=line) from None
    if number < 0:
        raise DatasetError(f"{what} {excerpt(value)} is negative", file=name, line=line)
    if number > largest:
        raise DatasetError(f"{what} {excerpt(value)} is larger than {largest:,}", file=name, line=line)
    return number


def _split_fields(text: str, separator: str, expected: int, name: str) -> Iterator[tuple[int, list[str]]]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(separator)
        if len(fields) != expected:
            raise DatasetError(
                f"expected {expected} fields separated by {separator!r}, found {len(fields)}",
                file=name,
                line=line_number,
            )
        yield line_number, fields


def _parse_release_date(value: str, name: str, line: int) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.strptime(value, "%d-%b-%Y").date()
    except ValueError:
        raise DatasetError(f"release date {excerpt(value)} is not like 01-Jan-1995", file=name, line=line) from None


# ---------------------------------------------------------------------------------------------- readers


class Reader:
    """What every layout provides. Subclasses read their files; the import service drives them."""

    ratings_file: str
    tags_file: str | None = None

    def __init__(self, source: DatasetSource) -> None:
        self.source = source

    def genres(self) -> list[str]:
        return sorted({genre for movie in self.movies() for genre in movie.genres})

    def movies(self) -> list[MovieRecord]:
        raise NotImplementedError

    def users(self) -> list[UserRecord]:
        return []

    def ratings(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[RatingChunk]:
        raise NotImplementedError

    def tags(self) -> Iterator[TagRecord]:
        return iter(())

    def ratings_size(self) -> int:
        return self.source.size(self.ratings_file)


class MovieLens100KReader(Reader):
    ratings_file = "u.data"
    _movies: list[MovieRecord] | None = None

    def genres(self) -> list[str]:
        if not self.source.has("u.genre"):
            return super().genres()
        text = decode(self.source, "u.genre", ("utf-8", "latin-1"))
        return [fields[0] for _, fields in _split_fields(text, "|", 2, "u.genre")]

    def _genre_columns(self) -> list[str]:
        if self.source.has("u.genre"):
            text = decode(self.source, "u.genre", ("utf-8", "latin-1"))
            by_index = {int(fields[1]): fields[0] for _, fields in _split_fields(text, "|", 2, "u.genre")}
            return [by_index[i] for i in sorted(by_index)]
        raise DatasetError("missing file u.genre (it names u.item's genre columns)", file="u.genre")

    def movies(self) -> list[MovieRecord]:
        if self._movies is not None:
            return self._movies
        genre_names = self._genre_columns()
        text = decode(self.source, "u.item", ("utf-8", "latin-1"))
        movies = []
        for line, fields in _split_fields(text, "|", 5 + len(genre_names), "u.item"):
            movie_id = _parse_int(fields[0], "movie id", "u.item", line)
            flags = fields[5:]
            if any(flag not in ("0", "1") for flag in flags):
                raise DatasetError("genre columns must be 0 or 1", file="u.item", line=line)
            release_date = _parse_release_date(fields[2], "u.item", line)
            title, year = split_title(fields[1])
            movies.append(
                MovieRecord(
                    movielens_id=movie_id,
                    title=title,
                    year=year or (release_date.year if release_date else None),
                    release_date=release_date,
                    imdb_url=fields[4].strip() if is_web_link(fields[4]) else "",  # never javascript: links
                    genres=tuple(name for name, flag in zip(genre_names, flags) if flag == "1"),
                )
            )
        self._movies = movies
        return movies

    def users(self) -> list[UserRecord]:
        if not self.source.has("u.user"):
            return []
        text = decode(self.source, "u.user", ("utf-8", "latin-1"))
        users = []
        for line, (user_id, age, gender, occupation, zip_code) in _split_fields(text, "|", 5, "u.user"):
            if gender not in ("M", "F", ""):
                raise DatasetError(f"gender {excerpt(gender)} is not M or F", file="u.user", line=line)
            users.append(
                UserRecord(
                    movielens_id=_parse_int(user_id, "user id", "u.user", line),
                    age=_parse_int(age, "age", "u.user", line, allow_empty=True),
                    gender=gender,
                    occupation=occupation.strip(),
                    zip_code=zip_code.strip(),
                )
            )
        return users

    def ratings(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[RatingChunk]:
        return read_rating_chunks(self.source, "u.data", separator="\t", header=False, on_bytes=on_bytes)


class DatReader(Reader):
    """ML-1M and ML-10M: '::'-separated files; movies.dat is Latin-1 in ML-1M and UTF-8 in ML-10M."""

    ratings_file = "ratings.dat"

    @property
    def tags_file(self) -> str | None:  # type: ignore[override]
        return "tags.dat" if self.source.has("tags.dat") else None

    def movies(self) -> list[MovieRecord]:
        text = decode(self.source, "movies.dat", ("utf-8", "latin-1"))
        movies = []
        for line, (movie_id, raw_title, genres) in _split_fields(text, "::", 3, "movies.dat"):
            title, year = split_title(raw_title)
            movies.append(
                MovieRecord(
                    movielens_id=_parse_int(movie_id, "movie id", "movies.dat", line),
                    title=title,
                    year=year,
                    genres=_split_genres(genres),
                )
            )
        return movies

    def users(self) -> list[UserRecord]:
        if not self.source.has("users.dat"):
            return []
        text = decode(self.source, "users.dat", ("utf-8", "latin-1"))
        users = []
        for line, (user_id, gender, age, occupation, zip_code) in _split_fields(text, "::", 5, "users.dat"):
            code = _parse_int(occupation, "occupation code", "users.dat", line)
            if code >= len(ML1M_OCCUPATIONS):
                raise DatasetError(f"occupation code {code} is not one of 0-20", file="users.dat", line=line)
            users.append(
                UserRecord(
                    movielens_id=_parse_int(user_id, "user id", "users.dat", line),
                    gender=gender.strip(),
                    age=_parse_int(age, "age", "users.dat", line),
                    occupation=ML1M_OCCUPATIONS[code],
                    zip_code=zip_code.strip(),
                )
            )
        return users

    def ratings(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[RatingChunk]:
        return read_rating_chunks(self.source, "ratings.dat", separator="::", header=False, on_bytes=on_bytes)

    def tags(self) -> Iterator[TagRecord]:
        if not self.source.has("tags.dat"):
            return
        with self.source.open("tags.dat") as raw:
            lines = enumerate(io.TextIOWrapper(raw, encoding="utf-8", errors="strict"), start=1)
            try:
                for line, text in lines:
                    fields = text.rstrip("\r\n").split("::")
                    if fields == [""]:
                        continue
                    if len(fields) != 4:
                        raise DatasetError(
                            f"expected 4 fields separated by '::', found {len(fields)}", file="tags.dat", line=line
                        )
                    yield _tag_record(fields, "tags.dat", line)
            except UnicodeDecodeError as error:
                raise DatasetError("not valid UTF-8 text", file="tags.dat") from error


class CsvReader(Reader):
    """ML-latest(-small), ML-20M, ML-25M, ML-32M: UTF-8 CSV with a header and quoted titles."""

    ratings_file = "ratings.csv"

    @property
    def tags_file(self) -> str | None:  # type: ignore[override]
        return "tags.csv" if self.source.has("tags.csv") else None

    def _rows(self, name: str, header: list[str]) -> Iterator[tuple[int, list[str]]]:
        rows = csv.reader(io.StringIO(decode(self.source, name, ("utf-8",)), newline=""))
        yield from self._check_rows(rows, name, header)

    @staticmethod
    def _check_rows(rows: Iterator[list[str]], name: str, header: list[str]) -> Iterator[tuple[int, list[str]]]:
        try:
            found = next(rows, None)
            if found is None or found[: len(header)] != header:
                raise DatasetError(
                    f"expected the header {','.join(header)}, found {','.join(found or [])!r}", file=name, line=1
                )
            for fields in rows:
                line = rows.line_num  # type: ignore[attr-defined]
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise DatasetError(
                        f"expected {len(header)} comma-separated fields, found {len(fields)}", file=name, line=line
                    )
                yield line, fields
        except csv.Error as error:
            raise DatasetError(f"malformed CSV ({error})", file=name, line=rows.line_num) from error  # type: ignore[attr-defined]

    def _links(self) -> dict[int, tuple[str, int | None]]:
        if not self.source.has("links.csv"):
            return {}
        links = {}
        for line, (movie_id, imdb_id, tmdb_id) in self._rows("links.csv", ["movieId", "imdbId", "tmdbId"]):
            imdb_number = _parse_int(imdb_id, "imdbId", "links.csv", line, allow_empty=True)
            links[_parse_int(movie_id, "movieId", "links.csv", line)] = (
                f"tt{imdb_number:07d}" if imdb_number is not None else "",
                _parse_int(tmdb_id, "tmdbId", "links.csv", line, allow_empty=True),
            )
        return links

    def movies(self) -> list[MovieRecord]:
        links = self._links()
        movies = []
        for line, (movie_id, raw_title, genres) in self._rows("movies.csv", ["movieId", "title", "genres"]):
            number = _parse_int(movie_id, "movieId", "movies.csv", line)
            title, year = split_title(raw_title)
            imdb_id, tmdb_id = links.get(number, ("", None))
            movies.append(
                MovieRecord(
                    movielens_id=number,
                    title=title,
                    year=year,
                    genres=_split_genres(genres),
                    imdb_id=imdb_id,
                    tmdb_id=tmdb_id,
                )
            )
        return movies

    def ratings(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[RatingChunk]:
        return read_rating_chunks(self.source, "ratings.csv", separator=",", header=True, on_bytes=on_bytes)

    def tags(self) -> Iterator[TagRecord]:
        if not self.source.has("tags.csv"):
            return
        with self.source.open("tags.csv") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
            try:
                for line, fields in self._check_rows(
                    csv.reader(text), "tags.csv", ["userId", "movieId", "tag", "timestamp"]
                ):
                    yield _tag_record(fields, "tags.csv", line)
            except UnicodeDecodeError as error:
                raise DatasetError("not valid UTF-8 text", file="tags.csv") from error


def _split_genres(field: str) -> tuple[str, ...]:
    # ML-20M and later write "(no genres listed)" for a movie without genres.
    return tuple(g for g in (part.strip() for part in field.split("|")) if g and g != "(no genres listed)")


def _tag_record(fields: list[str], name: str, line: int) -> TagRecord:
    user_id, movie_id, text, timestamp = fields
    return TagRecord(
        line=line,
        user_id=_parse_int(user_id, "user id", name, line),
        movie_id=_parse_int(movie_id, "movie id", name, line),
        text=text.strip(),
        timestamp=_parse_int(timestamp, "timestamp", name, line, largest=MAX_TIMESTAMP),
    )


READERS: dict[str, type[Reader]] = {LAYOUT_100K: MovieLens100KReader, LAYOUT_DAT: DatReader, LAYOUT_CSV: CsvReader}


def reader_for(source: DatasetSource) -> Reader:
    return READERS[source.layout](source)

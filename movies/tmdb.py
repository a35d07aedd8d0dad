"""A small TMDb (The Movie Database) client: a movie's details and credits, a title search, a poster download.

Used only by the Celery task in movies/tasks.py, never on the request path. Every request has connect and read
timeouts; transient failures (network, timeouts, 429 and 5xx answers) raise TMDbUnavailable, which the task retries,
and anything else TMDbError, which it records. Error messages never carry the URL: its query holds the API key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import requests
from django.conf import settings

from .models import searchable
from .posters import display_title

POSTER_SIZE = "w342"  # 342x513: sharp on a card and on the movie page, about 30-60 KB
# Stored and served from the site's own origin, so only raster formats (an SVG could carry script), checked by their
# first bytes as well as by the Content-Type the server claims.
IMAGE_TYPES = {
    "image/jpeg": ("jpg", (b"\xff\xd8\xff",)),
    "image/png": ("png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": ("webp", (b"RIFF",)),
}
POSTER_PATH = re.compile(r"^/[A-Za-z0-9_-]{1,100}\.(?:jpg|jpeg|png|webp)$")
MATCH_RATIO = 0.85  # how alike (difflib) a search result's title must be to the movie's to be taken
CAST_SHOWN = 3


class TMDbError(Exception):
    """A permanent failure: not found, a refused answer or image. Recorded on the movie, not retried."""


class TMDbUnavailable(TMDbError):
    """A transient failure: no answer in time, a connection error, 429 or 5xx. The task retries it."""


@dataclass(frozen=True)
class MovieDetails:
    tmdb_id: int
    title: str
    overview: str
    release_date: str
    poster_path: str
    director: str = ""
    cast: tuple[str, ...] = ()


@dataclass(frozen=True)
class Poster:
    content: bytes
    extension: str


def tmdb_enabled() -> bool:
    return bool(settings.TMDB_API_KEY)


def search_query(title: str) -> str:
    """What to search TMDb for: "Shawshank Redemption, The (1994)" is filed by TMDb as "The Shawshank Redemption"."""
    return display_title(re.sub(r"\s*\(\d{4}\)\s*$", "", title))


class TMDbClient:
    def __init__(self, *, api_key: str | None = None, session: requests.Session | None = None) -> None:
        self.api_key = settings.TMDB_API_KEY if api_key is None else api_key
        self.api_url = settings.TMDB_API_URL.rstrip("/")
        self.image_url = settings.TMDB_IMAGE_URL.rstrip("/")
        # (connect, read): the read timeout applies to each wait for bytes, so a stalled server cannot hold a worker.
        seconds = settings.TMDB_TIMEOUT_SECONDS
        self.timeout = (min(seconds, 5.0), seconds)
        self.max_image_bytes = settings.TMDB_MAX_IMAGE_BYTES
        self.session = session or requests.Session()
        self.session.max_redirects = 3
        self.session.headers["Accept"] = "application/json"
        if self.api_key.startswith("eyJ"):  # a v4 "API read access token" (a JWT) goes in a header
            self.session.headers["Authorization"] = f"Bearer {self.api_key}"

    # ------------------------------------------------------------------------------------------- requests

    def _get(self, url: str, what: str, params: dict | None = None, *, stream: bool = False) -> requests.Response:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout, stream=stream)
        except requests.Timeout:
            raise TMDbUnavailable(f"TMDb did not answer in time ({what})") from None
        except requests.RequestException as error:  # connection refused, reset, DNS, too many redirects
            raise TMDbUnavailable(f"TMDb could not be reached ({what}: {type(error).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise TMDbUnavailable(f"TMDb answered {response.status_code} ({what})")
        if response.status_code != 200:
            response.close()
            raise TMDbError(f"TMDb answered {response.status_code} ({what})")
        return response

    def _json(self, path: str, what: str, **params) -> dict:
        if not self.api_key.startswith("eyJ"):
            params["api_key"] = self.api_key
        response = self._get(f"{self.api_url}{path}", what, params)
        try:
            data = response.json()
        except ValueError:
            raise TMDbError(f"TMDb sent something that is not JSON ({what})") from None
        if not isinstance(data, dict):
            raise TMDbError(f"TMDb sent an unexpected answer ({what})")
        return data

    # ------------------------------------------------------------------------------------------- the API

    def movie(self, tmdb_id: int) -> MovieDetails:
        """GET /movie/{id}, with its credits in the same request (append_to_response)."""
        data = self._json(f"/movie/{int(tmdb_id)}", f"movie {tmdb_id}", append_to_response="credits")
        credits = data.get("credits") if isinstance(data.get("credits"), dict) else {}
        crew = [person for person in credits.get("crew") or [] if isinstance(person, dict)]
        cast = [person for person in credits.get("cast") or [] if isinstance(person, dict)]
        directors = [str(person.get("name") or "") for person in crew if person.get("job") == "Director"]
        cast.sort(key=lambda person: person.get("order") if isinstance(person.get("order"), int) else 999)
        return MovieDetails(
            tmdb_id=int(data.get("id") or tmdb_id),
            title=str(data.get("title") or ""),
            overview=str(data.get("overview") or ""),
            release_date=str(data.get("release_date") or ""),
            poster_path=str(data.get("poster_path") or ""),
            director=", ".join(name for name in directors[:2] if name),
            cast=tuple(str(person.get("name")) for person in cast[:CAST_SHOWN] if person.get("name")),
        )

    def search(self, title: str, year: int | None) -> list[dict]:
        """GET /search/movie: the results for a title, narrowed to a year when there is one."""
        params = {"query": search_query(title), "include_adult": "false"}
        if year:
            params["year"] = year
        results = self._json("/search/movie", "search", **params).get("results")
        return [result for result in results or [] if isinstance(result, dict) and result.get("id")]

    def find_id(self, title: str, year: int | None) -> int | None:
        """The TMDb id of the best search result for a title and year, or None when no result is alike enough."""
        results = self.search(title, year)
        if not results and year:  # TMDb's year is the first release anywhere; MovieLens' can differ by one
            results = self.search(title, None)
        return best_match(title, year, results)

    def poster(self, poster_path: str) -> Poster:
        """Download a poster (w342): a JPEG, PNG or WebP of at most TMDB_MAX_IMAGE_BYTES, else TMDbError."""
        if not POSTER_PATH.match(poster_path):
            raise TMDbError("TMDb gave a poster path of an unexpected form")
        response = self._get(f"{self.image_url}/{POSTER_SIZE}{poster_path}", "poster", stream=True)
        with response:
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in IMAGE_TYPES:
                raise TMDbError(f"the poster was refused: {kind[:40] or 'no type'} is not a JPEG, PNG or WebP image")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_image_bytes:
                raise TMDbError(f"the poster was refused: {declared} bytes is over {self.max_image_bytes}")
            content = bytearray()
            try:
                for chunk in response.iter_content(64 * 1024):
                    content += chunk
                    if len(content) > self.max_image_bytes:  # a missing or false Content-Length
                        raise TMDbError(f"the poster was refused: over {self.max_image_bytes} bytes")
            except requests.RequestException:
                raise TMDbUnavailable("the poster download broke off or stalled") from None
        extension, signatures = IMAGE_TYPES[kind]
        if not content.startswith(signatures) or (extension == "webp" and content[8:12] != b"WEBP"):
            raise TMDbError(f"the poster was refused: its bytes are not a {extension.upper()} image")
        return Poster(bytes(content), extension)


def _year_of(result: dict) -> int | None:
    date = str(result.get("release_date") or "")
    return int(date[:4]) if date[:4].isdigit() else None


def best_match(title: str, year: int | None, results: list[dict]) -> int | None:
    """The result whose title is most alike (MATCH_RATIO at least) and whose year is nearest; TMDb's order breaks
    ties (it ranks by popularity). None when nothing is alike enough: a wrong poster is worse than a generated one."""
    wanted = searchable(search_query(title))
    best, best_key = None, None
    for rank, result in enumerate(results):
        names = {searchable(str(result.get(field) or "")) for field in ("title", "original_title")} - {""}
        ratio = max((difflib.SequenceMatcher(None, wanted, name).ratio() for name in names), default=0.0)
        found_year = _year_of(result)
        distance = abs(found_year - year) if year and found_year else 5
        if ratio < MATCH_RATIO or (year and found_year and distance > 1):
            continue
        key = (round(ratio, 2), -distance, -rank)
        if best_key is None or key > best_key:
            best, best_key = int(result["id"]), key
    return best

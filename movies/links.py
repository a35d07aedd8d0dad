"""Links the site stores from imported files or renders: http(s) addresses only (never javascript: or data:)."""

from urllib.parse import urlencode, urlsplit


def is_web_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def imdb_search_link(*, title: str, year: int | None) -> str:
    """IMDb's title search for a movie: ML-100K's `us.imdb.com/M/title-exact?...` links no longer resolve."""
    query = f"{title} ({year})" if year else title
    return f"https://www.imdb.com/find/?{urlencode({'q': query, 's': 'tt'})}"


def is_legacy_imdb_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.netloc.lower().endswith("imdb.com") and parts.path.startswith("/M/")

"""Links the site stores from imported files or renders: http(s) addresses only (never javascript: or data:)."""

from urllib.parse import urlsplit


def is_web_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)

"""The guest pages (top-rated, by genre, a movie's page) are the same for every visitor: served from Django's cache.

Redis when REDIS_URL is set (shared by every web process), local memory otherwise. An entry lives
GUEST_PAGE_CACHE_SECONDS (60 s: a rating moves a damped average by a hair, so a minute-old list is right), and
all entries are dropped at once when the catalogue's statistics are recomputed (an import) or another model goes
into service (similar movies change), through a generation number in their keys. Only anonymous GET/HEAD requests with no pending message are cached or served from it: the
page then holds nothing personal (no CSRF token, no rating forms).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

GENERATION_KEY = "movies:guest-pages:generation"


def guest_pages_invalidate() -> None:
    """Every cached guest page is stale (a new generation); called when the statistics are recomputed."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet: nothing cached under one either
        cache.set(GENERATION_KEY, 1, None)


def _cacheable(request: HttpRequest) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and not request.user.is_authenticated
        and settings.GUEST_PAGE_CACHE_SECONDS > 0
        and not len(get_messages(request))  # len() does not consume them
    )


def _key(request: HttpRequest, name: str) -> str:
    generation = cache.get_or_set(GENERATION_KEY, 1, None)
    # Only the parameters the page reads: a tracking parameter must not make a new entry per visitor.
    params = "&".join(f"{k}={request.GET.get(k, '')}" for k in ("genre", "show"))
    # The path too: "/" and "/top/" render the same list but mark a different navigation link as current.
    return f"movies:guest-page:{generation}:{name}:{request.path}:{params}"[:250]


def cached_guest_page(name: str, render_page: Callable[[HttpRequest], HttpResponse], request: HttpRequest):
    """The page from the cache when a guest asks for it, else rendered (and stored when it is a plain 200)."""
    if not _cacheable(request):
        return render_page(request)
    key = _key(request, name)
    body = cache.get(key)
    if body is not None:
        return HttpResponse(body)
    response = render_page(request)
    if response.status_code == 200 and not len(get_messages(request)) and not response.cookies:
        cache.set(key, response.content, settings.GUEST_PAGE_CACHE_SECONDS)
    return response

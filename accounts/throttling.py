"""Throttling: the client address django-axes counts failed log-ins against, and the abuse limits
(django-ratelimit) on sign-up, log-in, password resets and re-checks, and ratings."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit.decorators import ratelimit


def client_ip_address(request: HttpRequest) -> str | None:
    """The address failed log-ins are counted against (settings.AXES_CLIENT_IP_CALLABLE).

    Behind reverse proxies REMOTE_ADDR is the nearest proxy, which would make every visitor share one
    counter. Each trusted proxy appends the address it saw to X-Forwarded-For, so the client is the
    ACCOUNTS_TRUSTED_PROXY_COUNT-th entry from the right; anything further left is the client's own claim.
    """
    proxy_count = settings.ACCOUNTS_TRUSTED_PROXY_COUNT
    if proxy_count > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxy_count:
            return forwarded[-proxy_count]
    return request.META.get("REMOTE_ADDR")


# ------------------------------------------------------------------------------------------- abuse limits
# django-ratelimit counts requests in the cache; settings.RATE_LIMITS holds the rates, read on every request.


def client_address_key(group: str, request: HttpRequest) -> str:
    return client_ip_address(request) or "unknown"


def member_key(group: str, request: HttpRequest) -> str:
    """The member (their id), or the address for a visitor who is not logged in."""
    if request.user.is_authenticated:
        return f"member:{request.user.pk}"
    return f"address:{client_address_key(group, request)}"


def rate_of(name: str):
    def rate(group: str, request: HttpRequest) -> str:
        return settings.RATE_LIMITS[name]

    return rate


def limited(name: str, *, key=client_address_key, method: str = "POST"):
    """A view decorator: at most settings.RATE_LIMITS[name] `method` requests per key, else 429 (rate_limited)."""
    return ratelimit(group=f"mynextmovie.{name}", key=key, rate=rate_of(name), method=method, block=True)


def wants_json(request: HttpRequest) -> bool:
    """An API-style caller: it asks for JSON and not for a page."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def rate_limited(request: HttpRequest, exception=None) -> HttpResponse:
    """settings.RATELIMIT_VIEW: 429, as JSON for API-style callers, else a page that says what to do."""
    message = "Too many requests from you in a short time. Please wait a few minutes, then try again."
    if wants_json(request):
        response = JsonResponse({"ok": False, "error": message}, status=429)
    else:
        response = render(request, "accounts/rate_limited.html", {"message": message}, status=429)
    response["Retry-After"] = "600"
    return response

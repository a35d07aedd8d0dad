"""Log-in throttling support for django-axes."""

from django.conf import settings
from django.http import HttpRequest


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

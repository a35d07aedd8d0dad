"""Site-wide security responses: headers on every response, and the page (or JSON) when a CSRF check fails."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from accounts.throttling import wants_json

# Browser features the site never uses, turned off for it and anything it could be made to embed.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response; `Cache-Control: no-store` on every page served to a logged-in member,
    so a shared computer's browser or a proxy never keeps someone's ratings, history or profile."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        # A response that declares itself public (a poster, the same for everybody) keeps its own caching.
        if user is not None and user.is_authenticated and "public" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: the site's own 403 page, or JSON for API-style callers."""
    message = "This form has expired or was not sent from this site. Reload the page and try again."
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=403)
    return render(request, "403.html", {"message": message}, status=403)

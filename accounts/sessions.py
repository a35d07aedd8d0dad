"""Session limits: a member is logged out after SESSION_IDLE_SECONDS without a request (sliding), and in any case
SESSION_ABSOLUTE_SECONDS after logging in. The last-seen time is written at most every few minutes, not on every
request, so an active member costs no session write per page."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

STARTED = "_session_started_at"
SEEN = "_session_seen_at"
SEEN_RESOLUTION_SECONDS = 300


class SessionLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._enforce(request)
        return self.get_response(request)

    @staticmethod
    def _enforce(request: HttpRequest) -> None:
        now = int(time.time())
        session = request.session
        started, seen = session.get(STARTED), session.get(SEEN)
        if started is None:  # the first request after logging in (or a session from before these limits)
            session[STARTED] = session[SEEN] = now
            return
        if now - started > settings.SESSION_ABSOLUTE_SECONDS or now - (seen or started) > settings.SESSION_IDLE_SECONDS:
            logout(request)
            messages.info(request, "You were logged out after a while; please log in again.")
            return
        if seen is None or now - seen >= SEEN_RESOLUTION_SECONDS:
            session[SEEN] = now

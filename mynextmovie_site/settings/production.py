"""Production settings: HTTPS only, secrets from the environment, `check --deploy` clean."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import DEBUG, SECRET_KEY, env, require_production_secret_key

if DEBUG:
    # DEBUG shows tracebacks, settings and SQL to anyone who triggers an error: never in production.
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is true, which the production settings refuse: unset it, or use mynextmovie_site.settings.local."
    )
require_production_secret_key(SECRET_KEY, DEBUG)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="MyNextMovie <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

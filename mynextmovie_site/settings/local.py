"""Settings for running the site on your own machine (`./dev run`, `manage.py`)."""

from .base import *
from .base import DEBUG, DEVELOPMENT_KEY_PREFIX, SECRET_KEY, STATIC_ROOT, require_production_secret_key

if DEBUG and not SECRET_KEY:
    SECRET_KEY = f"{DEVELOPMENT_KEY_PREFIX}-local-development-only"
require_production_secret_key(SECRET_KEY, DEBUG)

# Serve static files straight from the source folders: no collectstatic step locally.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# WhiteNoise also serves STATIC_ROOT; an empty one is fine here (files come from the finders).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

"""Settings for the test suite (pytest-django). DATABASE_URL picks SQLite or PostgreSQL."""
from .base import *  # noqa: F403
from .base import STATIC_ROOT
from .base import DEVELOPMENT_KEY_PREFIX

SECRET_KEY = f"{DEVELOPMENT_KEY_PREFIX}-test-only"
DEBUG = False
# Fast hashing: the suite creates many users; production keeps the default PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# WhiteNoise also serves STATIC_ROOT; an empty one is fine here (files come from the finders).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Django's test client logs in without a request, which django-axes refuses; tests/accounts switches it back on
# to exercise the real throttling end to end.
AXES_ENABLED = False

"""Settings for the test suite (pytest-django). DATABASE_URL picks SQLite or PostgreSQL."""

import os
import tempfile
from pathlib import Path

from .base import *
from .base import DATABASES, DEVELOPMENT_KEY_PREFIX, STATIC_ROOT, env

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

# Celery and retraining: an in-process broker, so no test needs a server. tests/background run a real worker
# against Redis: they set CELERY_BROKER_URL for the worker and switch this process's app to the same Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
# Trainings follow one another as fast as the tests need; the tests of the pace and the backoff set these.
RETRAIN_MIN_INTERVAL_SECONDS = env.int("RETRAIN_MIN_INTERVAL_SECONDS", default=0)
RETRAIN_BACKOFF_SECONDS = env.int("RETRAIN_BACKOFF_SECONDS", default=0)
# In-process trainings run inside a test's transaction, which a heartbeat's own connection cannot see: a long lease
# keeps the heartbeat quiet there; the real-worker tests set the default lease.
RETRAIN_LOCK_SECONDS = env.int("RETRAIN_LOCK_SECONDS", default=600)
CELERY_RESULT_BACKEND = "cache+memory://"
if CELERY_BROKER_URL.startswith("memory"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# The worker those tests start reads artifacts the test process wrote, and the reverse: files, not memory.
if _artifact_root := env.str("TEST_ARTIFACT_ROOT", default=""):
    STORAGES = {
        **STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": _artifact_root}},
    }
# On SQLite the test database is a file (not memory), so that worker process can open it; one per test run.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    import os
    import tempfile

    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"mynextmovie-test-{os.getpid()}.sqlite3")
    }

# Guest pages straight from the view: tests change the catalogue and look again at once (movies/page_cache.py has
# its own tests, which turn the cache on).
GUEST_PAGE_CACHE_SECONDS = 0
CARD_CACHE_SECONDS = 0
# Each test process unpacks serving weights in its own folder: concurrent runs must not prune each other's copies.
RECOMMENDER_SERVING_CACHE_DIR = str(Path(tempfile.gettempdir()) / f"mynextmovie-serving-cache-{os.getpid()}")

"""Settings shared by every environment, read from the environment through django-environ.

An optional `.env` file at the project root is read first; real environment variables win.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "accounts",
    "movies",
    "recommender",
    "axes",
    "django_ratelimit",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Logs a member out after SESSION_IDLE_SECONDS without a request, or SESSION_ABSOLUTE_SECONDS after logging in.
    "accounts.sessions.SessionLimitsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy (django-csp): scripts, styles and images from this site only, nothing inline.
    "csp.middleware.CSPMiddleware",
    # Permissions-Policy everywhere; Cache-Control: no-store on pages served to a logged-in member.
    "mynextmovie_site.security.SecurityHeadersMiddleware",
    # Turns a rate limit hit (django-ratelimit) into RATELIMIT_VIEW's 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Last, as django-axes asks: it turns a flagged lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out client is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "mynextmovie_site.urls"
WSGI_APPLICATION = "mynextmovie_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% url %} remembered (mynextmovie_site/routes.py): list pages reverse the same routes for every card;
            # {% capture %} (mynextmovie_site/capture.py): the header renders each navigation once.
            "builtins": ["mynextmovie_site.routes", "mynextmovie_site.capture"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _default_sqlite_url() -> str:
    # The embedded default keeps its files under var/, which git ignores.
    VAR_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'db.sqlite3'}"


DATABASES = {"default": env.db_url("DATABASE_URL", default=_default_sqlite_url())}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers (web) and a writer (import, training jobs) work at the same time;
    # IMMEDIATE transactions avoid "database is locked" upgrades mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
# A connection kept for a minute, checked before reuse: opening one (and, on SQLite, its PRAGMAs) cost a member's
# page about a millisecond.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Where `import_movielens --download` keeps the archives it fetched.
MOVIELENS_DOWNLOAD_DIR = Path(env.str("MOVIELENS_DOWNLOAD_DIR", default=str(VAR_DIR / "downloads")))
# A local MovieLens 100K (folder or .zip) for `ensure_catalogue` (./dev run) and the real-data tests; ./dev sets it
# to the shared copy beside the checkout when there is one. Unset: ensure_catalogue downloads the release.
MOVIELENS_PATH = env.str("MOVIELENS_PATH", default="")
# What an imported release may hold (movies/importer/bounded.py), so a zip bomb or a huge line is refused before it
# costs memory: a zip's files together and any one file (ML-32M: about 1 GB, its ratings.csv 880 MB), a file read
# whole into memory (movies, users, links: a few MB), a zip member's compression ratio (MovieLens: about 4:1) and a
# line (MovieLens: under 1 KB).
MOVIELENS_MAX_UNCOMPRESSED_BYTES = env.int("MOVIELENS_MAX_UNCOMPRESSED_BYTES", default=4 * 1024**3)
MOVIELENS_MAX_FILE_BYTES = env.int("MOVIELENS_MAX_FILE_BYTES", default=2 * 1024**3)
MOVIELENS_MAX_LOADED_FILE_BYTES = env.int("MOVIELENS_MAX_LOADED_FILE_BYTES", default=256 * 1024**2)
MOVIELENS_MAX_COMPRESSION_RATIO = env.int("MOVIELENS_MAX_COMPRESSION_RATIO", default=200)
MOVIELENS_MAX_LINE_BYTES = env.int("MOVIELENS_MAX_LINE_BYTES", default=64 * 1024)

# Posters and plots from TMDb (movies/tmdb.py, fetched by a Celery task, never on the request path). Without a key
# every poster is generated (movies/posters.py) and nothing reaches TMDb. The URLs are settings so tests use a stub.
TMDB_API_KEY = env.str("TMDB_API_KEY", default="")
TMDB_API_URL = env.str("TMDB_API_URL", default="https://api.themoviedb.org/3")
TMDB_IMAGE_URL = env.str("TMDB_IMAGE_URL", default="https://image.tmdb.org/t/p")
TMDB_TIMEOUT_SECONDS = env.float("TMDB_TIMEOUT_SECONDS", default=10.0)  # per request: connecting, and each read
TMDB_MAX_IMAGE_BYTES = env.int("TMDB_MAX_IMAGE_BYTES", default=2 * 1024**2)  # a w342 poster is about 30-60 KB
# A movie page asks for a movie's details at most once in this long (a cache key guards it).
TMDB_REQUEST_GUARD_SECONDS = env.int("TMDB_REQUEST_GUARD_SECONDS", default=6 * 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

DEVELOPMENT_KEY_PREFIX = "django-insecure"


def require_production_secret_key(secret_key: str, debug: bool) -> None:
    """Refuse to start without DEBUG when the secret key is missing or a development one."""
    if debug:
        return
    if not secret_key:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment or in .env "
            "(./dev run writes one for you), or set DJANGO_DEBUG=true for development."
        )
    if secret_key.startswith(DEVELOPMENT_KEY_PREFIX) or len(secret_key) < 50 or len(set(secret_key)) < 5:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is a development key or too weak (at least 50 characters, "
            "not starting with 'django-insecure'). Generate one with: python -c "
            '"from django.core.management.utils import get_random_secret_key as k; print(k())"'
        )


# Recommender
RECOMMENDER_VERSION_CHECK_SECONDS = env.float("RECOMMENDER_VERSION_CHECK_SECONDS", default=5.0)
# Local folder where the active model's weights are unpacked as .npy files that every web process memory-maps,
# sharing one copy in the page cache (recommender/serving_cache.py). Empty: each process loads a private copy.
RECOMMENDER_SERVING_CACHE_DIR = env.str("RECOMMENDER_SERVING_CACHE_DIR", default=str(VAR_DIR / "serving-cache"))
# Guest pages (top rated, by genre) come from the cache for this long (movies/page_cache.py); 0 turns it off.
GUEST_PAGE_CACHE_SECONDS = env.int("GUEST_PAGE_CACHE_SECONDS", default=60)
RECOMMENDER_POPULAR_MIN_RATINGS = env.int("RECOMMENDER_POPULAR_MIN_RATINGS", default=20)
RECOMMENDER_POPULAR_DAMPING = env.float("RECOMMENDER_POPULAR_DAMPING", default=20.0)

# Accounts
from datetime import timedelta  # kept with the block that needs it

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "movies:home"
LOGOUT_REDIRECT_URL = "movies:home"
# Password reset links stay valid for a day (Django's default is three).
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

# django-axes: throttle repeated failed log-ins. Attempts are counted per username and client IP together,
# so a stranger cannot lock a real person out from elsewhere and unknown usernames lock out exactly like
# real ones (the lockout page never tells whether an account exists).
AXES_FAILURE_LIMIT = env.int("ACCOUNTS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ACCOUNTS_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no "AXES: BEGIN" log line from every process and management command
# Our own page (HTTP 429) that says how long to wait and offers a password reset.
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip_address"
# Sessions: at most two weeks after logging in, and ended after three days without a visit (sliding).
SESSION_ABSOLUTE_SECONDS = env.int("DJANGO_SESSION_ABSOLUTE_SECONDS", default=14 * 24 * 3600)
SESSION_IDLE_SECONDS = env.int("DJANGO_SESSION_IDLE_SECONDS", default=3 * 24 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
# Abuse limits (django-ratelimit), per client address (as AXES_CLIENT_IP_CALLABLE finds it) or per member, set so
# that a real person never meets them; a hit answers 429 (a page, or JSON for API-style callers). "N/m", "N/h",
# "N/d" or "N/10m". Counters live in the cache: with REDIS_URL, shared by every web process.
RATELIMIT_VIEW = "accounts.throttling.rate_limited"
# Every page, the admin included, carries no inline script, style attribute or event handler, so the policy can
# refuse them all: an injected `<script>` or `onerror=` does not run. htmx is told not to inject its indicator
# style (templates/base.html, static/js/admin-htmx.js); data: images are the admin's inlined loss plots.
# CSP_EXTRA_IMG_SOURCES adds image hosts (e.g. a CDN serving MEDIA_URL).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *env.list("CSP_EXTRA_IMG_SOURCES", default=[])],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# A failed CSRF check: the site's 403 page, or JSON for API-style callers (not Django's unstyled page).
CSRF_FAILURE_VIEW = "mynextmovie_site.security.csrf_failure"
RATE_LIMITS = {
    # Log-in attempts from one address, whatever the usernames: floods of made-up names and password spraying.
    "login": env.str("RATE_LIMIT_LOGIN", default="30/10m"),
    "signup": env.str("RATE_LIMIT_SIGNUP", default="10/h"),
    "password_reset": env.str("RATE_LIMIT_PASSWORD_RESET", default="5/h"),
    # Re-checks of a member's own password: changing it, deleting the account, changing the e-mail address.
    "password_check": env.str("RATE_LIMIT_PASSWORD_CHECK", default="10/h"),
    "profile": env.str("RATE_LIMIT_PROFILE", default="30/h"),
    "rating": env.str("RATE_LIMIT_RATING", default="120/m"),
    "rating_daily": env.str("RATE_LIMIT_RATING_DAILY", default="2000/d"),
}
# Behind N reverse proxies that each append to X-Forwarded-For, the client is the Nth address from the right;
# 0 (the default) uses REMOTE_ADDR. Never set it higher than the proxies really there: clients can forge the rest.
ACCOUNTS_TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

# Celery and retraining
# REDIS_URL is the broker and result store (production, CI). Without it an embedded broker keeps messages as
# files under var/celery/, so `./dev run` starts a real worker on a fresh machine with no server to install.
REDIS_URL = env.str("REDIS_URL", default="")
# The cache: Redis when configured (shared by every web process: the abuse limits' counters), else each process's
# own memory (one process in development; limits then count per process, said by silencing the check below).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# The movie part of each card (poster, title, genres, score), the same for everyone: each process's own memory,
# since a round trip to Redis would cost what rendering it does. An entry lives CARD_CACHE_SECONDS, the staleness
# the guest pages and the damped score's prior already accept; its key holds the rating count and mean.
CARD_CACHE_SECONDS = env.int("CARD_CACHE_SECONDS", default=60)
CACHES["cards"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "movie-cards",
    "OPTIONS": {"MAX_ENTRIES": 20_000},
}
CELERY_DIR = VAR_DIR / "celery"
RETRAIN_THRESHOLD = env.int("RETRAIN_THRESHOLD", default=500)  # new or changed ratings since the last snapshot
# Beat's periodic check: queues a training the rating trigger could not, and recovers one whose worker died.
RETRAIN_CHECK_SECONDS = env.float("RETRAIN_CHECK_SECONDS", default=30.0)
RETRAIN_SOFT_TIME_LIMIT = env.int("RETRAIN_SOFT_TIME_LIMIT", default=2 * 60 * 60)
RETRAIN_HARD_TIME_LIMIT = env.int("RETRAIN_HARD_TIME_LIMIT", default=RETRAIN_SOFT_TIME_LIMIT + 15 * 60)
# The lease a running training holds on the training lock, renewed by a heartbeat every third of it: a killed
# worker blocks training this long, plus one periodic check, at most.
RETRAIN_LOCK_SECONDS = env.int("RETRAIN_LOCK_SECONDS", default=45)
# A training that failed because the database went away waits this long for it to come back, to record why.
RETRAIN_DATABASE_WAIT_SECONDS = env.int("RETRAIN_DATABASE_WAIT_SECONDS", default=10 * 60)
# Pace: no automatic training starts within this many seconds of the last successful one's start, so heavy rating traffic
# does not keep the cores training back to back. Backoff: after failures in a row, automatic trainings wait
# RETRAIN_BACKOFF_SECONDS, doubled per failure, at most RETRAIN_BACKOFF_MAX_SECONDS. Manual trainings skip both.
RETRAIN_MIN_INTERVAL_SECONDS = env.int("RETRAIN_MIN_INTERVAL_SECONDS", default=10 * 60)
RETRAIN_BACKOFF_SECONDS = env.int("RETRAIN_BACKOFF_SECONDS", default=60)
RETRAIN_BACKOFF_MAX_SECONDS = env.int("RETRAIN_BACKOFF_MAX_SECONDS", default=60 * 60)
# Audit users: a share of the users (by a hash of their id, at most a number of them) that no model version trains
# on, so a retrained model and the active one are compared on ratings neither has seen (recommender.activation).
RECOMMENDER_AUDIT_SHARE = env.float("RECOMMENDER_AUDIT_SHARE", default=0.1)
RECOMMENDER_AUDIT_MAX_USERS = env.int("RECOMMENDER_AUDIT_MAX_USERS", default=5000)
# A retrained model goes into service unless its mean per-user NDCG@100 on the audit users is lower than the active
# model's by more than this (or by more than two standard errors, when larger): the noise measured between seeded
# retrainings on the same data (benchmarks/activation_trials.py).
RETRAIN_ACTIVATION_MARGIN = env.float("RETRAIN_ACTIVATION_MARGIN", default=0.015)
RECOMMENDER_TRAINING_PRESET = env.str("RECOMMENDER_TRAINING_PRESET", default="default")
# JSON hyperparameter overrides for background trainings, e.g. {"max_epochs": 50}.
RECOMMENDER_TRAINING_OVERRIDES = env.json("RECOMMENDER_TRAINING_OVERRIDES", default={})
RETRAIN_QUEUE = "training"  # only GPU hosts consume it

CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost//"
)  # host unused; named to quiet kombu
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or f"file://{CELERY_DIR / 'results'}")
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "processed", "results", "control"):
        (CELERY_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) exchanges; kombu's default is ./control in the working directory.
        "control_folder": str(CELERY_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above the hard time limit, or Redis hands a long training to a second worker while the first still runs.
        "visibility_timeout": RETRAIN_HARD_TIME_LIMIT + 10 * 60,
        # A web request that enqueues must not hang on a broker that is down.
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"recommender.train_model": {"queue": RETRAIN_QUEUE}}
# State lives in TrainingJob rows; not storing results also keeps enqueueing from touching the result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a worker busy training must not hold further messages
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Expires: checks that waited behind a long task are dropped, not run in a burst.
    "retraining-check": {
        "task": "recommender.retraining_check",
        "schedule": RETRAIN_CHECK_SECONDS,
        "options": {"expires": RETRAIN_CHECK_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(CELERY_DIR / "beat-schedule")

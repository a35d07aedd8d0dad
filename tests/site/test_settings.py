"""Configuration: environment-driven settings, refusing unsafe production starts, `check --deploy` clean."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import PROJECT_ROOT

STRONG_KEY = "k3Jx9-Zq_" * 8


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_check_deploy_is_clean():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.production",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        ("", "DJANGO_SECRET_KEY is not set"),
        ("django-insecure-local-development-only-but-long-enough-to-pass-length", "development key"),
    ],
)
@pytest.mark.parametrize("settings_module", ["mynextmovie_site.settings.production", "mynextmovie_site.settings.local"])
def test_refuses_to_start_without_a_real_secret_key(settings_module, secret_key, message, tmp_path):
    result = run_manage(
        # An empty variable still wins over a key in a developer's .env file.
        "check",
        DJANGO_SETTINGS_MODULE=settings_module,
        DJANGO_SECRET_KEY=secret_key,
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_debug_is_opt_in():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.local",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.stdout.strip().endswith("False"), result.stderr
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.local",
        DJANGO_DEBUG="true",
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.stdout.strip().endswith("True"), result.stderr


def test_database_url_selects_postgresql():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST'])",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/mynextmovie",
    )
    assert "django.db.backends.postgresql mynextmovie 127.0.0.1" in result.stdout, result.stderr


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_ci_asked_for():
    # .ci/run runs the suite a second time with DATABASE_URL=postgres://...; this makes sure it really did.
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected

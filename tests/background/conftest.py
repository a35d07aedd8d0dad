"""Real services for the background-training tests: Redis and Celery worker processes started here.

Redis: a private redis-server on a free port when the binary is installed (isolated, and stoppable), else
REDIS_URL or 127.0.0.1:6379 (database 15). Without Redis the tests skip, unless CI is set: there they fail.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, TINY

WORKER_READY_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    if shutil.which("redis-server"):
        port = _free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if _redis_answers(url):
                break
            time.sleep(0.05)
        yield url
        server.terminate()
        server.wait(10)
        return
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    if not _redis_answers(url):
        message = f"Redis is not reachable at {url} and redis-server is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the real-service tests")
        pytest.skip(f"{message} (these tests need a real Redis; CI runs them)")
    yield url


@pytest.fixture
def redis_broker(redis_url, settings):
    """This process's Celery app publishes to the test Redis (queues emptied first), restored afterwards."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    with celery_broker(redis_url):
        yield redis_url


@contextmanager
def celery_broker(url: str):
    from mynextmovie_site.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options
    _switch_broker(app, url, {"visibility_timeout": 3600, "socket_connect_timeout": 1})
    try:
        yield app
    finally:
        _switch_broker(app, *saved)


def _switch_broker(app, url, options) -> None:
    from kombu import pools

    app.conf.broker_url, app.conf.broker_transport_options = url, options
    pools.reset()  # kombu keeps connection pools per broker address, process-wide
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def shared_artifacts(settings, tmp_path):
    """Artifacts in files, so the worker process and this one see the same model versions."""
    root = tmp_path / "artifacts"
    root.mkdir()
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


def database_url() -> str:
    """The test database pytest-django created, as a URL the worker can use."""
    from django.db import connection

    params = connection.settings_dict
    if params["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{params['NAME']}"
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


class Worker:
    """A real `celery -A mynextmovie_site worker` process (solo pool, both queues) against the test database."""

    def __init__(self, *, redis_url: str, artifact_root: Path, log_path: Path, env: dict[str, str] | None = None):
        from django.conf import settings

        self.log_path = log_path
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mynextmovie_site.settings.test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": redis_url,
            "TEST_ARTIFACT_ROOT": str(artifact_root),
            "RECOMMENDER_TRAINING_OVERRIDES": json.dumps(TINY),
            "RETRAIN_THRESHOLD": str(settings.RETRAIN_THRESHOLD),  # as this process has it (tests lower it)
            "RETRAIN_ACTIVATION_MARGIN": "1.0",  # tiny models are noisy: activation itself is what is under test
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mynextmovie_site", "worker", "-Q", "default,training",
             "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO", "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=PROJECT_ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.wait_for_log("ready.", WORKER_READY_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from the worker within {seconds} s:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: what an OOM kill or a lost machine looks like to Celery."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture
def start_worker(redis_broker, shared_artifacts, tmp_path):
    started: list[Worker] = []

    def start(**env) -> Worker:
        worker = Worker(redis_url=redis_broker, artifact_root=shared_artifacts, log_path=tmp_path / f"worker-{len(started)}.log", env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(condition, seconds: float, what: str, worker: Worker | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}" + (f"\nworker log:\n{worker.log()[-4000:]}" if worker else ""))

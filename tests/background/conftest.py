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

from benchmarks.measure import celery_worker_command, private_redis_server, redis_answers
from tests.conftest import PROJECT_ROOT, TINY

WORKER_READY_SECONDS = 60
SITE_THRESHOLD = 5  # new ratings that queue a training on the `site` fixture


@pytest.fixture
def site(two_taste_catalogue, settings, shared_artifacts, client, shared_training):
    """Version 1 trained here and active; a newcomer logged in; a threshold of SITE_THRESHOLD new ratings."""
    from recommender.ml import vae
    from recommender.services import model_version_activate, model_version_train
    from tests.accounts.factories import UserFactory

    settings.RETRAIN_THRESHOLD = SITE_THRESHOLD
    first = model_version_activate(version=model_version_train(config=vae.preset("default", **TINY)))
    user = UserFactory(username="newcomer")
    client.force_login(user)
    return {"v1": first, "user": user, "movies": two_taste_catalogue["movies"], "client": client}


@pytest.fixture
def published(monkeypatch):
    """Training tasks sent are recorded here instead of reaching a broker."""
    from recommender import tasks

    sent = []
    monkeypatch.setattr(tasks.model_version_train_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    return sent


@pytest.fixture(scope="session")
def redis_url():
    if shutil.which("redis-server"):
        with private_redis_server() as url:
            yield url
        return
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    if not redis_answers(url):
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
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
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
    """A real `celery -A mynextmovie_site worker` process (both queues, each task in a fresh child process, as
    `./dev run` starts it) against the test database."""

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
        self._log = open(log_path, "w")  # noqa: SIM115 - open while the worker runs, closed in stop()
        self.process = subprocess.Popen(
            celery_worker_command(
                hostname=f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
                extra=("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ),
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker and its pool child are stopped together
        )
        self.wait_for_log("ready.", WORKER_READY_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_summary(self, records: int = 40) -> str:
        """The worker's last log records without their tracebacks (one failure's traceback fills 4,000 characters
        and hides what came before it), then the end of the log as it is."""
        log = self.log()
        lines = [line[:300] for line in log.splitlines() if line.startswith("[")]
        return "\n".join(lines[-records:]) + "\n--- the end of the log:\n" + log[-3000:]

    def wait_for_log(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from the worker within {seconds} s:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the worker and its pool child: what a lost machine looks like to Celery."""
        self._kill_group()
        self.process.wait(10)

    def training_child(self):
        """The pool child process (the one that runs a task), once there is one."""
        import psutil

        children = psutil.Process(self.process.pid).children()
        return children[0] if children else None

    def kill_training_child(self) -> int:
        """SIGKILL to the child running the task, as the kernel's OOM killer would; the worker itself lives on."""
        child = self.training_child()
        assert child is not None, "the worker has no pool child"
        child.kill()
        return child.pid

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            # Cold shutdown (SIGQUIT): a warm one (SIGTERM) would wait for a training in flight to end.
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._kill_group()  # a pool child the shutdown left behind
        self._log.close()


@pytest.fixture
def start_worker(redis_broker, shared_artifacts, tmp_path):
    started: list[Worker] = []

    def start(**env) -> Worker:
        worker = Worker(
            redis_url=redis_broker,
            artifact_root=shared_artifacts,
            log_path=tmp_path / f"worker-{len(started)}.log",
            env=env,
        )
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
    raise AssertionError(
        f"timed out after {seconds} s waiting for {what}" + (f"\nworker log:\n{worker.log_summary()}" if worker else "")
    )


@pytest.fixture
def start_beat(redis_broker, tmp_path):
    """A real `celery -A mynextmovie_site beat` process sending the periodic check to the test Redis."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(**env) -> subprocess.Popen:
        log = open(tmp_path / f"beat-{len(started)}.log", "w")  # noqa: SIM115 - open for the process's life, closed at teardown
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mynextmovie_site",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / f"beat-schedule-{len(started)}"),
            ],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "mynextmovie_site.settings.test",
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": redis_broker,
                **env,
            },
        )
        started.append((beat, log))
        return beat

    yield start
    for beat, log in started:
        beat.terminate()
        beat.wait(15)
        log.close()


class FlakyTcpProxy:
    """A TCP proxy in front of the database that can drop every connection and refuse new ones for a while: a
    database blip as the worker sees it (a restart, a failover, a network cut), with the real server untouched."""

    def __init__(self, target_host: str, target_port: int):
        import threading

        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._down = threading.Event()
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            # The timeout bounds the connect only: left on, it would cut any connection idle for 5 s (a worker
            # computing its serving arrays) as if the database had gone down.
            upstream.settimeout(None)
            with self._guard:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
            with self._guard:
                self._open.difference_update((source, sink))

    def go_down(self) -> None:
        self._down.set()
        with self._guard:
            doomed, self._open = list(self._open), set()
        for end in doomed:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def come_back(self) -> None:
        self._down.clear()

    def close(self) -> None:
        self.go_down()
        self.listener.close()

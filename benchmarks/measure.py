"""Shared measuring tools of the benchmarks: a command's wall time and peak memory, percentiles, the machine."""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ML100K = Path(os.environ.get("MOVIELENS_PATH", "MOVIELENS_PATH-is-not-set"))  # set by ./dev, or by hand


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    output: str

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s, peak {self.peak_rss_mb:.0f} MB"


class CommandFailed(RuntimeError):
    pass


# Runs the command as its child and writes the child's rusage to a file. Linux carries a process's peak memory
# (ru_maxrss) across fork and exec, so a command started straight from a benchmark that already holds a lot of
# memory would report the benchmark's peak; started from this small go-between, it reports its own.
_GO_BETWEEN = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as report:
    json.dump({"peak_rss_kb": usage.ru_maxrss, "exit_code": code}, report)
sys.exit(code if code >= 0 else 1)
"""


def run_measured(command: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None) -> Measured:
    """Run a command; its wall time and its own peak resident memory (the kernel's ru_maxrss for that process)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rusage.json"
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                [PYTHON, "-c", _GO_BETWEEN, str(report), *command],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise CommandFailed(f"{' '.join(command)} ran past {timeout} s") from error
        seconds = time.perf_counter() - started
        usage = (
            json.loads(report.read_text()) if report.exists() else {"peak_rss_kb": 0, "exit_code": completed.returncode}
        )
    if usage["exit_code"] != 0:
        raise CommandFailed(f"{' '.join(command)} exited with {usage['exit_code']}:\n{completed.stdout[-3000:]}")
    return Measured(seconds=seconds, peak_rss_mb=usage["peak_rss_kb"] / 1024, output=completed.stdout)


def percentiles_ms(timings_ms: list[float]) -> dict[str, float]:
    values = np.asarray(timings_ms)
    return {f"p{q}_ms": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)}


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "system": platform.system(),
        "gpu": None,  # no kernel string: results are committed
    }


def django_env(*, database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a measured Django command: the site's own settings (files on disk, as in service) on the
    given database, and nothing inherited that points elsewhere (a .env's database, a broker)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "DJANGO_", "CELERY_", "REDIS_", "RETRAIN_"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.local",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=database_url,
        DJANGO_MEDIA_ROOT=str(workdir / "media"),
        DJANGO_STATIC_ROOT=str(workdir / "static"),
    )
    env.update(extra)
    return env


def manage(*args: str) -> list[str]:
    return [PYTHON, str(ROOT / "manage.py"), *args]


POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def postgres_database(name: str) -> str:
    """(Re)create an empty PostgreSQL database for one benchmark; returns its URL."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def postgres_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------------------- local services
# Shared by the benchmarks and the real-service tests (tests/background).


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class ServiceStartError(RuntimeError):
    pass


@contextmanager
def private_redis_server(start_seconds: float = 10):
    """A redis-server of our own on a free port (no persistence), stopped afterwards; yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + start_seconds
        while not redis_answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise ServiceStartError(f"the private redis-server on port {port} did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def celery_worker_command(*, hostname: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The worker as `./dev run` starts it: both queues, each task in a fresh child process."""
    return [
        sys.executable, "-m", "celery", "-A", "mynextmovie_site", "worker", "-Q", "default,training",
        "--concurrency", "1", "--max-tasks-per-child", "1", "--loglevel", "INFO", "--hostname", hostname, *extra,
    ]  # fmt: skip


def print_results(results: dict, json_path: Path | None = None) -> None:
    """A benchmark's figures as JSON on stdout (its progress goes to stderr), and in ``json_path`` when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")


@contextmanager
def work_folder(path: Path | None, *, prefix: str, keep: bool = False, log=print):
    """``path``, or a new temporary folder removed afterwards (kept, and said so, with ``keep``)."""
    folder = path or Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if path is None and not keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif path is None:
            log(f"work folder kept: {folder}")

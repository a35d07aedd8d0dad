"""The site over real HTTP: gunicorn (2 sync workers) on loopback under wrk, with a trained model in service.

    .venv/bin/python benchmarks/http_load.py [--data ML100K_FOLDER] [--epochs N] [--train-args "--OPTION VALUE"]
                                             [--connections 8] [--duration 15] [--workdir DIR --keep] [--json OUT]
                                             [--workdir DIR --reuse]

In a work folder (a temporary one unless --workdir) it builds a fresh SQLite database with the production
settings, imports MovieLens (--data, else MOVIELENS_PATH), trains and activates
the default VAE (`train_vae --activate`; --epochs N is passed on as --max-epochs N, --train-args as they are: at
the synthetic 1M size `--item-item-l2-grid 500` fits the movie-to-movie path once instead of for five L2 values,
which changes no shape the pages serve), collects the static files
and creates a logged-in session for the imported user whose rating count is closest to 100. With --reuse it loads
the site an earlier run left in --workdir instead (same catalogue and model, no import or training): a before/after
comparison of serving code at the 10M size then takes minutes, not a quarter of an hour each. It then serves
`mynextmovie_site.wsgi` with gunicorn, checks each page answers what it should, warms both workers up, and
loads each page in turn with wrk (closed loop, --connections connections for --duration seconds):

- "guest home": `/` without a session, the top-rated movies of all genres;
- "guest genre page": `/top/?genre=<Drama>`;
- "recommendations": `/` with the session cookie, the personal recommendations page (NumPy inference);
- "movie page (guest)" and "(member)": the most rated movie's page, without and with the session cookie;
- "catalogue (member)": `/movies/` with the session cookie, 24 cards with their rating controls;
- "my ratings": `/me/ratings/`, the first page of the member's ratings;
- "static file": the stylesheet, served by WhiteNoise from the same workers: the stack's floor.

Guest pages come from Django's cache after their first request (movies/page_cache.py), as in production.

Reported per page: requests/second, latency p50/p95/p99 in ms, errors (socket errors and 4xx/5xx) and non-2xx
answers. Then, per web worker after the load: resident memory (RSS) and unique memory (USS) in MiB, the
largest of the workers reported, and whether TensorFlow is mapped into a worker (it must not be: web processes
serve with NumPy only). Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages must import

from benchmarks.measure import free_port, print_results, work_folder

WORKERS = 2
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"
MiB = 2**20

# Run with the project's environment: logs in an imported MovieLens user (no password) by writing the same
# session keys django.contrib.auth.login() writes, and picks the genre page to load.
SESSION_SCRIPT = f"""
import json
from importlib import import_module

import django

django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db.models import Count, F
from django.db.models.functions import Abs

from movies.models import Genre, Movie

assert {SESSION_BACKEND!r} in settings.AUTHENTICATION_BACKENDS
user = (get_user_model().objects.filter(movielens_id__isnull=False).annotate(n=Count("ratings"))
        .annotate(distance=Abs(F("n") - 100)).order_by("distance", "pk").first())
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = user._meta.pk.value_to_string(user)
session[BACKEND_SESSION_KEY] = {SESSION_BACKEND!r}
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
genre = Genre.objects.filter(name="Drama").first() or Genre.objects.order_by("pk").first()
movie_id = Movie.objects.order_by("-rating_count", "pk").values_list("pk", flat=True).first()
print(json.dumps({{
    "cookie": f"{{settings.SESSION_COOKIE_NAME}}={{session.session_key}}", "username": user.get_username(),
    "ratings": user.n, "genre_id": genre.pk, "genre": genre.name, "movie_id": movie_id,
}}))
"""

# wrk runs one Lua state per thread: response() counts non-2xx answers per thread, done() adds them up and prints
# one JSON line (latencies in microseconds) after the marker.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non_2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non_2xx = non_2xx + 1 end
end
function done(summary, latency, requests)
  local non_2xx_total = 0
  for _, thread in ipairs(threads) do non_2xx_total = non_2xx_total + thread:get("non_2xx") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "non_2xx": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, non_2xx_total,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def default_data() -> Path:
    return Path(os.environ.get("MOVIELENS_PATH") or "MOVIELENS_PATH-is-not-set")


def site_environment(folder: Path) -> dict[str, str]:
    """Production settings on plain HTTP, everything under `folder`; nothing inherited that changes the site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback: no redirect to https
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        DJANGO_MEDIA_ROOT=str(folder / "media"),
        DJANGO_STATIC_ROOT=str(folder / "static"),
        REDIS_URL="",  # set, though empty, so a project .env cannot point the site at a real broker
    )
    return env


def run_checked(what: str, args: list[str], env: dict[str, str]) -> str:
    """Run a Python command from the project root; on failure, raise with the end of its output."""
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def prepare_site(
    data: Path, epochs: int | None, env: dict[str, str], log, train_args: tuple[str, ...] = (), reuse: bool = False
) -> dict:
    """Database, catalogue, active model, static files; returns the session and genre to load. With `reuse`, the
    catalogue and the model are the ones an earlier run left in the folder."""
    steps = (
        ["migrate"],
        *(
            ()
            if reuse
            else (
                ["import_movielens", str(data)],
                ["train_vae", "--activate", *(["--max-epochs", str(epochs)] if epochs else []), *train_args],
            )
        ),
        ["collectstatic", "--noinput"],  # the production settings serve static files from a manifest
    )
    for step in steps:
        command = f"manage.py {' '.join(step)}"
        log(command)
        run_checked(command, ["manage.py", *step, "--verbosity", "0"], env)
    output = run_checked("session creation", ["-c", SESSION_SCRIPT], env)
    return json.loads(output.strip().splitlines()[-1])


def start_gunicorn(folder: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    # No access log: writing a line per request would be measured too. Errors and Django's logs go to a file.
    # No control socket: its default path is per user, shared with any other gunicorn running on the machine.
    with open(folder / "gunicorn.log", "ab") as log_file:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mynextmovie_site.wsgi",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{port}",
                "--error-logfile",
                str(folder / "gunicorn.log"),
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def get(url: str, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def wait_until_serving(server: subprocess.Popen, base: str, folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log_tail = (folder / "gunicorn.log").read_text()[-3000:]
            raise RuntimeError(f"gunicorn exited ({server.returncode}):\n{log_tail}")
        try:
            get(base + "/")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s; see {folder / 'gunicorn.log'}")


def check_pages(base: str, pages: dict[str, tuple[str, str | None]], username: str) -> None:
    """Each page answers 200; the home page with the cookie is the personal recommendations of a trained model, and
    every page with the cookie is the member's own."""
    for name, (path, cookie) in pages.items():
        status, body = get(base + path, cookie)
        member = username in body
        expected = 'data-testid="recommendation-list"' in body if (cookie and path == "/") else True
        if status != 200 or member != bool(cookie) or not expected or 'data-testid="popular-notice"' in body:
            raise RuntimeError(f"{name} ({path}) is not the expected page: status {status}, member {member}")


def static_path(base: str) -> str:
    """The stylesheet's URL as the home page links it (a hashed name under the production settings)."""
    _, body = get(base + "/")
    match = re.search(r'href="(/static/css/site[^"]*\.css)"', body)
    if not match:
        raise RuntimeError("the home page links no stylesheet")
    return match.group(1)


def warm_up(base: str, pages: dict[str, tuple[str, str | None]], per_worker: int = 4) -> None:
    # Concurrent requests, so both sync workers load the model and fill their caches before being measured.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * WORKERS) as pool:
        for path, cookie in pages.values():
            list(pool.map(lambda _, path=path, cookie=cookie: get(base + path, cookie), range(per_worker * WORKERS)))


def load(url: str, cookie: str | None, script: Path, connections: int, duration: float) -> dict:
    """One closed-loop wrk run; requests/second, latency percentiles in ms, errors."""
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script)]
    done = subprocess.run(
        [*args, *(["-H", f"Cookie: {cookie}"] if cookie else []), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    kinds = {kind: raw[kind] for kind in ("connect", "read", "write", "timeout", "status")}
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        **{f"p{q}_ms": round(raw[f"p{q}_us"] / 1000, 2) for q in (50, 95, 99)},
        "requests": raw["requests"],
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "non_2xx": raw["non_2xx"],
    }


def worker_memory(server: subprocess.Popen) -> dict:
    """RSS and USS of the largest gunicorn worker, and whether any worker maps a TensorFlow library."""
    workers = psutil.Process(server.pid).children()
    if len(workers) != WORKERS:
        raise RuntimeError(f"expected {WORKERS} gunicorn workers, found {len(workers)}")
    memory = [worker.memory_full_info() for worker in workers]
    mapped = [m.path.lower() for worker in workers for m in worker.memory_maps()]
    return {
        "worker_rss_mb": round(max(m.rss for m in memory) / MiB, 1),
        "worker_uss_mb": round(max(m.uss for m in memory) / MiB, 1),
        "tensorflow_in_workers": any("tensorflow" in path for path in mapped),
    }


def stop(server: subprocess.Popen) -> None:
    server.terminate()  # graceful: the master stops its workers
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run(
    *,
    data: Path,
    workdir: Path,
    epochs: int | None,
    connections: int,
    duration: float,
    train_args: tuple[str, ...] = (),
    reuse: bool = False,
    log=print,
) -> dict:
    """Set up the site in `workdir` (an empty or new folder), load it, and return the figures. With `reuse`, load
    the site an earlier run left in `workdir` instead (same catalogue and model: before/after runs of the serving
    code)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: install it: apt-get install wrk")
    if reuse:
        if not (workdir / "db.sqlite3").is_file():
            raise ValueError(f"{workdir} holds no site to reuse: run once with --workdir {workdir} first")
    elif not data.is_dir():
        raise FileNotFoundError(f"MovieLens data folder not found: {data} (pass --data or set MOVIELENS_PATH)")
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise ValueError(f"{workdir} is not empty: the benchmark needs a fresh database (or pass --reuse)")

    started = time.perf_counter()
    env = site_environment(workdir)
    site = prepare_site(data, epochs, env, log, train_args, reuse)
    setup_seconds = time.perf_counter() - started
    script = workdir / "report.lua"
    script.write_text(WRK_SCRIPT)
    pages = {
        "guest home": ("/", None),
        "guest genre page": (f"/top/?genre={site['genre_id']}", None),
        "recommendations": ("/", site["cookie"]),
        "movie page (guest)": (f"/movies/{site['movie_id']}/", None),
        "movie page (member)": (f"/movies/{site['movie_id']}/", site["cookie"]),
        # The member pages with the most on them: 24 cards with rating controls, a page of the member's ratings.
        "catalogue (member)": ("/movies/", site["cookie"]),
        "my ratings": ("/me/ratings/", site["cookie"]),
    }

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(workdir, env, port)
    try:
        wait_until_serving(server, base, workdir)
        check_pages(base, pages, site["username"])
        # The floor: a static file (the stylesheet, as the pages link it) served by WhiteNoise in the same workers.
        pages = {"static file": (static_path(base), None), **pages}
        warm_up(base, pages)
        results = {}
        for name, (path, cookie) in pages.items():
            log(f"wrk: {name} ({path}), {connections} connections, {duration:g} s")
            results[name] = load(base + path, cookie, script, connections, duration)
        memory = worker_memory(server)
    finally:
        stop(server)
    floor = results["static file"]["rps"]
    return {
        "pages": results,
        # Each page's throughput as a share of the static file's, measured in the same run.
        "share_of_static_rps": {name: round(page["rps"] / floor, 3) for name, page in results.items()},
        **memory,
        "workers": WORKERS,
        "connections": connections,
        "duration_s": duration,
        "setup_seconds": round(setup_seconds, 1),
        "train_args": list(train_args),
        "reused_site": reuse,
        "genre": site["genre"],
        "recommendations_user": {"username": site["username"], "ratings": site["ratings"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="MovieLens folder (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="empty or new folder for the site (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--epochs", type=int, help="train_vae --max-epochs (default: the preset's)")
    parser.add_argument("--train-args", default="", help="more train_vae options, e.g. '--item-item-l2-grid 500'")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per page")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this file")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="load the site an earlier run left in --workdir, without importing or training again",
    )
    args = parser.parse_args()
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir: the folder an earlier run kept")
    log = functools.partial(print, file=sys.stderr)  # stdout carries only the JSON
    with work_folder(args.workdir, prefix="http_load_", keep=args.keep, log=log) as workdir:
        results = run(
            data=args.data,
            workdir=workdir,
            epochs=args.epochs,
            train_args=tuple(shlex.split(args.train_args)),
            reuse=args.reuse,
            connections=args.connections,
            duration=args.duration,
            log=log,
        )
    print_results(results, args.json)


if __name__ == "__main__":
    main()

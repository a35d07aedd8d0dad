"""Background retraining latency: from the rating that crosses RETRAIN_THRESHOLD to the new model serving.

    .venv/bin/python benchmarks/celery_retrain.py [--data ML100K_FOLDER] [--threshold 100] [--epochs N]
                                                  [--check-seconds S] [--database-url postgres://...] [--json OUT]

Everything is the real pipeline, on its own services: a fresh database (SQLite in the work folder, or the empty
PostgreSQL database given), model files in <workdir>/media (FileSystemStorage, shared with the worker), MovieLens
imported, an initial model trained and activated (`manage.py train_vae --activate`), a private redis-server (or
REDIS_URL) and a real `celery -A mynextmovie_site worker -Q default,training --concurrency 1 --max-tasks-per-child 1`
(as `./dev run` starts it: each task in a fresh child process).

This process plays the web process: it serves the active model through `recommender.recommendations.registry`
(NumPy only, as the views do), posts RETRAIN_THRESHOLD ratings through `movies.services.rating_set` (each commits,
so its on_commit retraining check really runs), and t0 is when the crossing rating's `rating_set` returns. It then
polls every 0.1 s until the registry serves the new version, and reports the total and its parts, from database
timestamps on one clock:

- queue wait: t0 -> the worker marks the job running (broker, task dispatch, lock, new-ratings re-check);
- worker start: job running -> the version's training starts (TensorFlow's import, paid on a worker's first training);
- training: the version's training_started_at -> training_finished_at (snapshot, fit, evaluation of the new and
  the active model, artifact storage);
- activation: training finished -> activated_at (the activation decision and the atomic swap);
- pick-up: activated_at -> served here; bounded by RECOMMENDER_VERSION_CHECK_SECONDS (5 as shipped) since this
  process asks the registry continuously, like a web process that always has requests (an idle one swaps at its
  next request).

Then, with `--trainings N` (default 5), N-1 more trainings are queued by hand one after the other, and the
worker's resident memory (parent and pool child) is read after each: it must not grow from one training to the
next. Throughout, a thread in this process requests the rater's personal home page (the recommendations, through
Django's full request stack, no HTTP server) every 50 ms: the page latency while idle and while a training runs.

The default trains with the shipped preset and the shipped activation decision (the real figure); `--epochs 1`
makes a smoke test (with `--activation-margin 1` so that a barely trained model is activated anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages must import

from benchmarks.measure import ServiceStartError, celery_worker_command, private_redis_server, redis_answers

POLL_SECONDS = 0.1
WORKER_READY_SECONDS = 120  # the worker imports Django and the project; slow on a busy 2-core machine
RATERS = 4
WORKER_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


class BenchmarkError(Exception):
    """Why the benchmark cannot run or did not finish, in words for the person running it."""


# ------------------------------------------------------------------------------------------- services


@contextmanager
def redis_broker(log):
    """A private redis-server on a free port when installed (isolated, stopped afterwards), else REDIS_URL."""
    if not shutil.which("redis-server"):
        url = os.environ.get("REDIS_URL", "")
        if not url:
            raise BenchmarkError(
                "redis-server is not installed and REDIS_URL is not set: install redis-server "
                "or point REDIS_URL at a Redis"
            )
        if not redis_answers(url):
            raise BenchmarkError(f"Redis is not reachable at REDIS_URL={url} (and redis-server is not installed)")
        log(f"Using the Redis at REDIS_URL {url}")
        yield url
        return
    try:
        with private_redis_server() as url:
            log(f"Started a private redis-server at {url}")
            yield url
    except ServiceStartError as error:
        raise BenchmarkError(str(error)) from error


@contextmanager
def celery_worker(log_path: Path, log):
    """The real worker on both queues, with this process's environment (same database, storage, settings)."""
    command = celery_worker_command(hostname="benchmark@benchmark")  # a fixed name: the results are committed
    with open(log_path, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=output, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while "ready." not in log_path.read_text(errors="replace"):
                if process.poll() is not None:
                    raise BenchmarkError(f"the Celery worker exited ({process.returncode}):\n{_tail(log_path)}")
                if time.monotonic() - started > WORKER_READY_SECONDS:
                    raise BenchmarkError(f"no worker ready after {WORKER_READY_SECONDS} s:\n{_tail(log_path)}")
                time.sleep(0.1)
            log(f"Celery worker ready in {time.monotonic() - started:.1f} s (log: {log_path})")
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # warm shutdown would wait for a training in flight, hence the kill
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


def worker_errors(log_path: Path) -> list[str]:
    return [line for line in log_path.read_text(errors="replace").splitlines() if WORKER_ERROR.search(line)]


# ------------------------------------------------------------------------------------------- setup


def configure_environment(
    *,
    workdir: Path,
    database_url: str,
    redis_url: str,
    threshold: int,
    epochs: int | None,
    check_seconds: float | None,
    activation_margin: float | None = None,
) -> None:
    """One environment for this process and the worker it starts, set before Django reads its settings."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mynextmovie_site.settings.local",
            # Not DEBUG, which keeps every SQL query in memory (the import makes many); local settings then want a key.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "DJANGO_MEDIA_ROOT": str(workdir / "media"),
            "DJANGO_STATIC_ROOT": str(workdir / "static"),
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_RESULT_BACKEND": redis_url,
            "RETRAIN_THRESHOLD": str(threshold),
            "RECOMMENDER_TRAINING_PRESET": "default",
            "RECOMMENDER_TRAINING_OVERRIDES": json.dumps({"max_epochs": epochs} if epochs else {}),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if activation_margin is None:
        os.environ.pop("RETRAIN_ACTIVATION_MARGIN", None)  # the shipped decision
    else:
        os.environ["RETRAIN_ACTIVATION_MARGIN"] = str(activation_margin)
    if check_seconds is None:
        os.environ.pop("RECOMMENDER_VERSION_CHECK_SECONDS", None)  # the shipped default
    else:
        os.environ["RECOMMENDER_VERSION_CHECK_SECONDS"] = str(check_seconds)


def import_movielens(data: Path, log) -> dict:
    from django.core.management import call_command

    from movies.importer.load import movielens_import
    from movies.models import Movie, Rating
    from recommender.models import ModelVersion

    call_command("migrate", verbosity=0)
    if Rating.objects.exists() or ModelVersion.objects.exists():
        raise BenchmarkError("the database already has ratings or model versions; give the benchmark an empty one")
    started = time.perf_counter()
    run = movielens_import(location=str(data))
    seconds = time.perf_counter() - started
    stats = {
        "release": run.release,
        "ratings": Rating.objects.count(),
        "movies": Movie.objects.count(),
        "import_s": round(seconds, 2),
    }
    log(f"Imported {run.release}: {stats['ratings']:,} ratings, {stats['movies']:,} movies in {seconds:.1f} s")
    return stats


def train_initial_model(epochs: int | None, log) -> dict:
    """`manage.py train_vae --activate` in its own process, so this one stays NumPy-only like a web process."""
    from recommender.selectors import model_version_active

    log("Training the initial model (manage.py train_vae --activate)...")
    command = [sys.executable, "manage.py", "train_vae", "--activate"]
    if epochs:
        command += ["--max-epochs", str(epochs)]
    completed = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchmarkError(f"the initial training failed:\n{(completed.stdout + completed.stderr)[-3000:]}")
    version = model_version_active()
    log(f"Initial model v{version.pk}: {version.metrics['epochs']} epochs, {version.training_seconds:.1f} s")
    return {"id": version.pk, "epochs": version.metrics["epochs"], "training_s": round(version.training_seconds, 2)}


def rating_plan(threshold: int) -> list[tuple]:
    """`threshold` new (user, movie, stars): a few MovieLens users, round-robin, on movies they have not rated."""
    from accounts.models import User
    from movies.models import Movie

    rng = random.Random(0)
    raters = list(User.objects.filter(ratings__isnull=False).distinct().order_by("pk")[: min(RATERS, threshold)])
    per_user = -(-threshold // len(raters))
    unrated = {user: list(Movie.objects.exclude(ratings__user=user).order_by("pk")[:per_user]) for user in raters}
    stars = (2.0, 3.0, 3.5, 4.0, 4.5, 5.0)
    plan = [(user, unrated[user][i], rng.choice(stars)) for i in range(per_user) for user in raters]
    if len(plan) < threshold or any(len(movies) < per_user for movies in unrated.values()):
        raise BenchmarkError(f"the catalogue is too small for {threshold} new ratings from {len(raters)} users")
    return plan[:threshold]


# ------------------------------------------------------------------------------------------- measurement


def post_ratings(plan: list[tuple]) -> tuple:
    """Each rating through the real service in its own committed transaction; returns t0, the job and timings."""
    from django.utils import timezone

    from movies.services import rating_set
    from recommender.models import TrainingJob

    durations = []
    for user, movie, stars in plan:
        if TrainingJob.objects.exists():
            raise BenchmarkError(f"a training was queued after {len(durations)} of {len(plan)} ratings, before the end")
        started = time.perf_counter()
        rating_set(user=user, movie=movie, score=stars)
        durations.append(time.perf_counter() - started)
    t0 = timezone.now()
    job = TrainingJob.objects.first()
    if job is None:
        raise BenchmarkError(f"{len(plan)} ratings queued no training job; is RETRAIN_THRESHOLD {len(plan)} in effect?")
    return t0, job, durations


def wait_until_served(*, job, old_version_id: int, t0, timeout: float, worker: subprocess.Popen, worker_log: Path, log):
    """Poll the job, its version and the web registry until the registry serves a new version; returns when."""
    from django.utils import timezone

    from recommender.models import ModelVersion, TrainingJob
    from recommender.recommendations import registry

    deadline = time.monotonic() + timeout
    seen = set()
    while True:
        job.refresh_from_db()
        version = ModelVersion.objects.filter(pk=job.model_version_id).first()
        for event in (f"job {job.status}", version and f"version v{version.pk} {version.status}"):
            if event and event not in seen:
                seen.add(event)
                log(f"  {(timezone.now() - t0).total_seconds():7.1f} s  {event}")
        loaded = registry.current()
        if loaded is not None and loaded.version_id != old_version_id:
            return timezone.now(), loaded.version_id
        if job.status in (TrainingJob.Status.FAILED, TrainingJob.Status.SKIPPED):
            raise BenchmarkError(f"training job {job.pk} {job.status}: {job.error}\n{_tail(worker_log)}")
        if version and version.activation_decision == "rejected":
            raise BenchmarkError(f"version v{version.pk} was not activated: {version.activation_details.get('reason')}")
        if worker.poll() is not None:
            raise BenchmarkError(f"the Celery worker exited ({worker.returncode}):\n{_tail(worker_log)}")
        if time.monotonic() > deadline:
            raise BenchmarkError(f"no new model served within {timeout:.0f} s (job {job.status}):\n{_tail(worker_log)}")
        time.sleep(POLL_SECONDS)


def wait_until_job_done(job, timeout: float = 30) -> None:
    """The job is marked succeeded just after the activation, which the registry may have seen first."""
    from recommender.models import TrainingJob

    deadline = time.monotonic() + timeout
    while job.status in (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        job.refresh_from_db()


def top_movies(user) -> tuple[list[int], int | None]:
    """The user's top 10 as the views compute them, and the version that served them."""
    from recommender.recommendations import recommendations_for_user, registry

    movies = [r.movie.pk for r in recommendations_for_user(user=user, limit=10)]
    loaded = registry.current()
    return movies, loaded.version_id if loaded else None


def breakdown(*, t0, job, version, served_at) -> dict[str, float]:
    """Consecutive parts of t0 -> served, so they add up to the total."""
    moments = {
        "queue_wait_s": job.started_at,
        "worker_start_s": version.training_started_at,
        "training_s": version.training_finished_at,
        "activation_s": version.activated_at,
        "pickup_s": served_at,
    }
    parts, previous = {}, t0
    for name, moment in moments.items():
        parts[name] = round((moment - previous).total_seconds(), 3)
        previous = moment
    return parts


def _ms(seconds: list[float]) -> dict[str, float]:
    values = {"median": statistics.median(seconds), "max": max(seconds), "crossing": seconds[-1]}
    return {name: round(value * 1000, 1) for name, value in values.items()}


class PageProbe:
    """Requests the user's personal home page every 50 ms from a thread; (when, milliseconds) per request."""

    def __init__(self, user):
        import threading

        self.user, self.samples = user, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        from django.db import connection
        from django.test import Client
        from django.urls import reverse
        from django.utils import timezone

        client = Client(SERVER_NAME="localhost")
        client.force_login(self.user)
        url = reverse("movies:home")
        try:
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                response = client.get(url)
                if response.status_code != 200:
                    raise BenchmarkError(f"the home page answered {response.status_code}")
                self.samples.append((timezone.now(), (time.perf_counter() - started) * 1000))
        finally:
            connection.close()

    def between(self, start, end) -> list[float]:
        return [ms for when, ms in self.samples if start <= when <= end]

    def outside(self, intervals) -> list[float]:
        return [ms for when, ms in self.samples if not any(start <= when <= end for start, end in intervals)]


def page_ms(samples: list[float]) -> dict:
    if not samples:
        return {"requests": 0}
    ordered = sorted(samples)
    return {
        "requests": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


def worker_memory_mb(worker: subprocess.Popen) -> dict[str, float]:
    """Resident memory of the worker's parent process and of its pool child (idle, between trainings)."""
    import psutil

    parent = psutil.Process(worker.pid)
    children = parent.children(recursive=True)
    child = sum(process.memory_info().rss for process in children)
    return {
        "parent_mb": round(parent.memory_info().rss / 2**20, 1),
        "child_mb": round(child / 2**20, 1),
        "total_mb": round((parent.memory_info().rss + child) / 2**20, 1),
    }


def settle_memory(worker: subprocess.Popen, wait_seconds: float = 60) -> dict[str, float]:
    """After a task the pool child exits and a fresh one is forked: read the memory once the new child is there."""
    import psutil

    time.sleep(3)
    deadline = time.monotonic() + wait_seconds
    while not psutil.Process(worker.pid).children(recursive=True) and time.monotonic() < deadline:
        time.sleep(0.2)
    return worker_memory_mb(worker)


def more_trainings(count: int, *, worker, worker_log: Path, timeout: float, log) -> list[dict]:
    """Queue `count` trainings by hand one after the other; each one's outcome and the worker's memory after it."""
    from recommender.models import ModelVersion, TrainingJob
    from recommender.retraining import training_job_enqueue

    rows = []
    for n in range(count):
        job = training_job_enqueue(reason=TrainingJob.Reason.MANUAL)
        if job is None:
            raise BenchmarkError("a training was still queued; cannot queue the next one")
        wait_until_job_done(job, timeout=timeout)
        if job.status != TrainingJob.Status.SUCCEEDED:
            raise BenchmarkError(f"training job {job.pk} {job.status}: {job.error}\n{_tail(worker_log)}")
        version = ModelVersion.objects.get(pk=job.model_version_id)
        rows.append(
            {
                "version": version.pk,
                "training_s": round(version.training_seconds, 1),
                "decision": version.activation_decision,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
                "memory_after": settle_memory(worker),
            }
        )
        log(
            f"  training {n + 2}: v{version.pk} {version.activation_decision} in {version.training_seconds:.0f} s, "
            f"worker {rows[-1]['memory_after']['total_mb']:.0f} MB"
        )
    return rows


# ------------------------------------------------------------------------------------------- entry points


def run(
    *,
    data: Path,
    workdir: Path,
    epochs: int | None,
    threshold: int,
    database_url: str | None = None,
    timeout: float = 900,
    check_seconds: float | None = None,
    activation_margin: float | None = None,
    trainings: int = 5,
    log=print,
) -> dict:
    """Set everything up in `workdir`, measure one retraining from the crossing rating to serving, tear down.

    Sets os.environ and calls django.setup() in this process, so call it once per process (the benchmark
    orchestrator runs each benchmark in a fresh subprocess). Raises BenchmarkError with the reason when Redis or
    the data is missing, or the retraining fails or times out.
    """
    data, workdir = Path(data).resolve(), Path(workdir).resolve()
    if not data.exists():
        raise BenchmarkError(f"no MovieLens data at {data}: pass --data (a folder or .zip) or set MOVIELENS_PATH")
    workdir.mkdir(parents=True, exist_ok=True)
    if database_url is None and (workdir / "db.sqlite3").exists():
        raise BenchmarkError(f"{workdir} already holds a db.sqlite3; use an empty work folder")
    load_start = os.getloadavg()
    with redis_broker(log) as redis_url:
        configure_environment(
            workdir=workdir,
            database_url=database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
            redis_url=redis_url,
            threshold=threshold,
            epochs=epochs,
            check_seconds=check_seconds,
            activation_margin=activation_margin,
        )
        import django

        django.setup()
        from django.conf import settings

        dataset = import_movielens(data, log)
        initial = train_initial_model(epochs, log)
        plan = rating_plan(threshold)
        worker_log = workdir / "worker.log"
        with celery_worker(worker_log, log) as worker:
            result = measure(
                plan=plan,
                initial=initial,
                timeout=timeout,
                worker=worker,
                worker_log=worker_log,
                log=log,
                trainings=trainings,
            )
        result.update(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "data": {"name": data.name, **dataset},  # not the path: results are committed
                "settings": {
                    "RETRAIN_THRESHOLD": settings.RETRAIN_THRESHOLD,
                    "RETRAIN_ACTIVATION_MARGIN": settings.RETRAIN_ACTIVATION_MARGIN,
                    "RECOMMENDER_AUDIT_SHARE": settings.RECOMMENDER_AUDIT_SHARE,
                    "RECOMMENDER_VERSION_CHECK_SECONDS": settings.RECOMMENDER_VERSION_CHECK_SECONDS,
                    "RECOMMENDER_TRAINING_OVERRIDES": settings.RECOMMENDER_TRAINING_OVERRIDES,
                },
                "worker_errors": worker_errors(worker_log),
            }
        )
    return result


def measure(
    *, plan: list[tuple], initial: dict, timeout: float, worker, worker_log: Path, log, trainings: int = 1
) -> dict:
    from recommender.models import ModelVersion
    from recommender.recommendations import registry

    loaded = registry.current()
    if loaded is None or loaded.version_id != initial["id"]:
        raise BenchmarkError(f"the web registry does not serve the initial model v{initial['id']}")
    rater = plan[-1][0]
    memory_before = worker_memory_mb(worker)
    with PageProbe(rater) as probe:
        time.sleep(5)  # idle pages first
        log(f"Posting {len(plan)} ratings from {len({user for user, _, _ in plan})} users...")
        t0, job, durations = post_ratings(plan)
        before, before_version = top_movies(rater)
        log(f"Threshold crossed; training job {job.pk} queued. Waiting for the new model to be served:")
        served_at, served_id = wait_until_served(
            job=job, old_version_id=initial["id"], t0=t0, timeout=timeout, worker=worker, worker_log=worker_log, log=log
        )
        after, after_version = top_movies(rater)
        wait_until_job_done(job)
        memory_first = settle_memory(worker)
        extra = more_trainings(trainings - 1, worker=worker, worker_log=worker_log, timeout=timeout, log=log)
    version = ModelVersion.objects.get(pk=job.model_version_id)
    total = round((served_at - t0).total_seconds(), 3)
    log(f"New model v{served_id} served {total:.1f} s after the crossing rating")
    training_windows = [(version.training_started_at, version.training_finished_at)] + [
        (row["started_at"], row["finished_at"]) for row in extra
    ]
    memory_after = [memory_first] + [row.pop("memory_after") for row in extra]
    for row in extra:
        row.pop("started_at"), row.pop("finished_at")
    pages = {
        "while_idle": page_ms(probe.outside(training_windows)),
        "while_training": page_ms([ms for start, end in training_windows for ms in probe.between(start, end)]),
    }
    log(f"Home page while idle {pages['while_idle']}, while training {pages['while_training']}")
    memory = {
        "before_any_training": memory_before,
        "after_each_training": memory_after,
        "last_over_first": round(memory_after[-1]["total_mb"] / memory_after[0]["total_mb"], 3),
    }
    return {
        "total_s": total,
        "breakdown_s": breakdown(t0=t0, job=job, version=version, served_at=served_at),
        "initial_version": initial,
        "new_version": {
            "id": version.pk,
            "served_id": served_id,
            "epochs": version.metrics.get("epochs"),
            "training_s": round(version.training_seconds, 2),
            "activation_decision": version.activation_decision,
            "activation_reason": version.activation_details.get("reason"),
            "data_stats": version.data_stats,
        },
        "job": {
            "id": job.pk,
            "status": job.status,
            "new_ratings": job.new_ratings,
            "worker": job.worker,
            "error": job.error,
        },
        "ratings_posted": len(plan),
        "rating_set_ms": _ms(durations),
        "home_page_ms": pages,
        "worker_memory": memory,
        "further_trainings": extra,
        "rater_top10": {
            "user": rater.username,
            "before": before,
            "before_version": before_version,
            "after": after,
            "after_version": after_version,
            "changed": before != after,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("MOVIELENS_PATH"),
        help="MovieLens folder or .zip (default: MOVIELENS_PATH)",
    )
    parser.add_argument("--workdir", type=Path, help="database, model files, worker log (default: a temp folder)")
    parser.add_argument("--epochs", type=int, help="max_epochs of every training: 1 for a smoke test (default: preset)")
    parser.add_argument("--threshold", type=int, default=100, help="RETRAIN_THRESHOLD, ratings posted (%(default)s)")
    parser.add_argument("--check-seconds", type=float, help="RECOMMENDER_VERSION_CHECK_SECONDS (default: as shipped)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use instead of a fresh SQLite file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the new model (%(default)s)")
    parser.add_argument(
        "--trainings", type=int, default=5, help="trainings in all, for the worker's memory (%(default)s)"
    )
    parser.add_argument("--activation-margin", type=float, help="RETRAIN_ACTIVATION_MARGIN (default: as shipped)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the result here")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("no MovieLens data: pass --data or set MOVIELENS_PATH")

    def log(message: str) -> None:  # progress on stderr, the JSON alone on stdout
        print(message, file=sys.stderr, flush=True)

    try:
        scratch = nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory(prefix="celery-retrain-")
        with scratch as workdir:
            result = run(
                data=args.data,
                workdir=Path(workdir),
                epochs=args.epochs,
                threshold=args.threshold,
                database_url=args.database_url,
                timeout=args.timeout,
                check_seconds=args.check_seconds,
                activation_margin=args.activation_margin,
                trainings=args.trainings,
                log=log,
            )
    except BenchmarkError as error:
        parser.exit(2, f"error: {error}\n")
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

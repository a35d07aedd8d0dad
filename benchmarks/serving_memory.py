"""Web worker memory with the serving weights memory-mapped from the shared cache vs a private copy per worker.

    .venv/bin/python benchmarks/serving_memory.py [--movies 59047] [--workers 4] [--requests 50] [--json OUT]

In a temporary folder: a SQLite site with the production settings, `--movies` movies, one member with 100 ratings
and an active model version whose `weights.npz` has the shapes the default preset exports at that size (random
values, as benchmarks/inference_scale.py builds them: value-aware 2-channel input, 600-d latent, ranking and rating
heads, bias-residual rating, 50-neighbour similar-movies table; the movie-to-movie path only up to 20,000 movies).
Then, once per mode, gunicorn with `--workers` sync workers serves the member's recommendations page
(`--requests` x workers requests, as many connections as workers, so every worker loads the model and serves)
and each worker's memory is read with psutil: RSS, USS (pages only it holds: what it adds to the machine) and PSS.

- "memory-mapped": RECOMMENDER_SERVING_CACHE_DIR set (the default): the weights unpacked once into the cache and
  mapped read-only by every worker;
- "private": RECOMMENDER_SERVING_CACHE_DIR empty: each worker reads the artifact into its own memory (the old path).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.http_load import ROOT, free_port, get, run_checked, site_environment, stop, wait_until_serving
from benchmarks.measure import print_results, work_folder

MiB = 2**20

# Run with the site's settings: the catalogue, a member with 100 ratings, its session, and the active version.
SETUP_SCRIPT = """
import io, json, random, sys
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils import timezone
from benchmarks.inference_scale import DEFAULT_ITEM_ITEM_MAX_MOVIES
from benchmarks.ml.latency import random_weights
from movies.models import Movie, Rating
from recommender import artifacts
from recommender.ml.inference import save_weights
from recommender.models import ModelVersion

n_movies = int(sys.argv[1])
Movie.objects.bulk_create(
    [Movie(movielens_id=i + 1, title=f"Movie {i + 1}", year=1950 + i % 70) for i in range(n_movies)], batch_size=5000
)
movie_ids = list(Movie.objects.order_by("pk").values_list("pk", flat=True))
user = get_user_model().objects.create(username="bench-member")
rng = random.Random(0)
now = timezone.now()
Rating.objects.bulk_create(
    [Rating(user=user, movie_id=pk, score=rng.choice([1.0, 2.5, 3.5, 4.0, 5.0]), rated_at=now)
     for pk in rng.sample(movie_ids, 100)]
)
weights = random_weights(n_movies, (), 600, item_item=n_movies <= DEFAULT_ITEM_ITEM_MAX_MOVIES)
buffer = io.BytesIO()
save_weights(weights, buffer)
version = ModelVersion.objects.create(status=ModelVersion.Status.READY)
folder = artifacts.artifact_folder(version.pk)
version.artifact_path = folder
version.artifact_sha256 = {
    artifacts.SERVING_WEIGHTS: artifacts.artifact_write(
        folder=folder, name=artifacts.SERVING_WEIGHTS, content=buffer.getvalue()),
    artifacts.MOVIE_INDEX: artifacts.artifact_write(
        folder=folder, name=artifacts.MOVIE_INDEX, content=json.dumps({"movie_ids": movie_ids}).encode()),
}
version.status = ModelVersion.Status.ACTIVE
version.activated_at = now
version.save()
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = user._meta.pk.value_to_string(user)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(json.dumps({
    "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
    "weights_mb": round(sum(a.nbytes for a in weights.values()) / 2**20, 1),
    "arrays": {name: list(a.shape) for name, a in weights.items() if a.ndim},
    "artifact_mb": round(len(buffer.getvalue()) / 2**20, 1),
}))
"""


def start_gunicorn(folder: Path, env: dict[str, str], port: int, workers: int, mode: str) -> subprocess.Popen:
    log = folder / f"gunicorn-{mode}.log"
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mynextmovie_site.wsgi", "--workers", str(workers)]
            + ["--bind", f"127.0.0.1:{port}", "--error-logfile", str(log), "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


MAX_ROUNDS = 20


def _worker_figures(server: subprocess.Popen, workers: int) -> list[dict]:
    processes = psutil.Process(server.pid).children()
    if len(processes) != workers:
        raise RuntimeError(f"expected {workers} gunicorn workers, found {len(processes)}")
    figures = []
    for process in processes:
        memory = process.memory_full_info()
        mapped = sum(m.rss for m in process.memory_maps() if "serving-cache" in m.path)
        figures.append(
            {
                "rss_mb": round(memory.rss / MiB, 1),
                "uss_mb": round(memory.uss / MiB, 1),
                "pss_mb": round(memory.pss / MiB, 1),
                "cache_mapped_resident_mb": round(mapped / MiB, 1),
            }
        )
    return figures


def _has_served(mode: str, worker: dict, site: dict) -> bool:
    if mode == "private":
        return worker["rss_mb"] >= site["weights_mb"] / 2
    return worker["cache_mapped_resident_mb"] > 0


def serve_and_measure(folder: Path, env: dict[str, str], *, mode: str, workers: int, requests: int, site: dict):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(folder, env, port, workers, mode)
    try:
        wait_until_serving(server, base, folder, timeout=120)
        started = time.perf_counter()
        answers, figures = [], []
        # Sync workers take whichever request reaches them first: a fast page can leave one worker idle through a
        # whole round, so rounds go on (at most MAX_ROUNDS) until every worker has loaded the model.
        for _ in range(MAX_ROUNDS):
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                answers += pool.map(lambda _: get(base + "/", site["cookie"]), range(requests * workers))
            figures = _worker_figures(server, workers)
            if all(_has_served(mode, worker, site) for worker in figures):
                break
        seconds = time.perf_counter() - started
        personal = sum(status == 200 and 'data-testid="recommendation-list"' in body for status, body in answers)
        if personal != len(answers):
            raise RuntimeError(f"{mode}: {len(answers) - personal} of {len(answers)} answers are not recommendations")
        if not all(_has_served(mode, worker, site) for worker in figures):
            what = "loaded the model" if mode == "private" else "mapped the cache"
            raise RuntimeError(f"a worker never {what}: {figures}")
    finally:
        stop(server)
    return {
        "workers": figures,
        "max_uss_mb": max(f["uss_mb"] for f in figures),
        "max_rss_mb": max(f["rss_mb"] for f in figures),
        "sum_pss_mb": round(sum(f["pss_mb"] for f in figures), 1),
        "requests": len(answers),
        "seconds": round(seconds, 1),
    }


def run(*, n_movies: int, workers: int, requests: int, workdir: Path, log=print) -> dict:
    env = site_environment(workdir)
    for step in (["migrate"], ["collectstatic", "--noinput"]):
        log(f"manage.py {' '.join(step)}")
        run_checked(f"manage.py {step[0]}", ["manage.py", *step, "--verbosity", "0"], env)
    log(f"site with {n_movies:,} movies and an active model")
    site = json.loads(run_checked("setup", ["-c", SETUP_SCRIPT, str(n_movies)], env).strip().splitlines()[-1])
    results = {"movies": n_movies, "weights_mb": site["weights_mb"], "artifact_mb": site["artifact_mb"]}
    results["arrays"] = site["arrays"]
    modes = {"memory-mapped": str(workdir / "serving-cache"), "private": ""}
    for mode, cache in modes.items():
        log(f"gunicorn, {workers} workers, {mode} weights: {requests * workers} requests")
        results[mode] = serve_and_measure(
            workdir,
            {**env, "RECOMMENDER_SERVING_CACHE_DIR": cache},
            mode=mode,
            workers=workers,
            requests=requests,
            site=site,
        )
        log(f"  USS per worker {[f['uss_mb'] for f in results[mode]['workers']]} MiB")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies", type=int, default=59_047)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=50, help="recommendation pages per worker")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this file")
    args = parser.parse_args(argv)
    with work_folder(None, prefix="serving_memory_") as workdir:
        results = run(
            n_movies=args.movies,
            workers=args.workers,
            requests=args.requests,
            workdir=workdir,
            log=lambda m: print(m, file=sys.stderr),
        )
    print_results(results, args.json)


if __name__ == "__main__":
    main()

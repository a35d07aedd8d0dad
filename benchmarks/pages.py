"""Server time of the main pages with the real ML-100K catalogue and a trained model, in-process.

    .venv/bin/python benchmarks/pages.py [--requests 200] [--epochs 200]

Builds a fresh SQLite database in a temporary folder, imports ML-100K, trains and activates the default VAE,
then times Django's full request handling (middleware, views, templates, database) with the test client:
the guest home page, a genre page, and the recommendations page of a user with 100 ratings. Medians and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--data", default=os.environ.get("MOVIELENS_PATH"))
    args = parser.parse_args()
    if not args.data:
        parser.error("no MovieLens data: pass its folder or set MOVIELENS_PATH")
    folder = tempfile.mkdtemp()
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.test",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("import_movielens", args.data, verbosity=0)
    from django.contrib.auth import get_user_model

    from movies.models import Genre, Rating
    from recommender.ml import vae
    from recommender.services import model_version_activate, model_version_train

    model_version_activate(version=model_version_train(config=vae.preset("default", max_epochs=args.epochs)))
    user = get_user_model().objects.filter(movielens_id__isnull=False).order_by("pk")[0]
    user_with_100 = next(
        u
        for u in get_user_model().objects.filter(movielens_id__isnull=False)
        if Rating.objects.filter(user=u).count() >= 100
    )
    drama = Genre.objects.get(name="Drama")

    guest, member = Client(), Client()
    member.force_login(user_with_100)
    pages = {
        "guest home": (guest, "/"),
        "guest genre page": (guest, f"/top/?genre={drama.pk}"),
        "recommendations (100 ratings)": (member, "/"),
    }
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "pages": {},
    }
    if os.environ.get("PROFILE_PAGE"):
        import cProfile
        import pstats

        client, url = pages[os.environ["PROFILE_PAGE"]]
        client.get(url)
        profiler = cProfile.Profile()
        profiler.runctx("for _ in range(20): client.get(url)", globals(), locals())
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return
    for name, (client, url) in pages.items():
        for _ in range(10):
            assert client.get(url).status_code == 200  # warm-up: model load, template caches
        queries = []

        def record(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            client.get(url)
        timings = []
        for _ in range(args.requests):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results["pages"][name] = {
            "p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[int(0.95 * len(timings)) - 1], 2),
            "queries": len(queries),
            "requests": args.requests,
        }
    del user
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Training speed and peak memory of the shipped model, the whole path as `manage.py train_vae` runs it.

    .venv/bin/python benchmarks/training_scale.py DATABASE_URL [--epochs 1]

In a process of its own (so its peak resident memory is the training's alone): read every rating from the database
into a sparse matrix, train the default preset for `--epochs` epochs and as many rating-phase epochs, score the
validation users, store the artifacts. Reports the snapshot time, seconds per epoch (training, validation loss and
the NDCG@100 early-stopping pass), the time of everything after training, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PYTHON, django_env, run_measured

RESULT_PREFIX = "TRAINING-RESULT "


def run(*, database_url: str, workdir: Path, epochs: int, log=print) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    env = django_env(database_url=database_url, workdir=workdir)
    log(f"  training {epochs} epoch(s) on {database_url.rsplit('/', 1)[-1]} ...")
    measured = run_measured([PYTHON, __file__, "--child", "--epochs", str(epochs)], env=env)
    line = next(line for line in measured.output.splitlines() if line.startswith(RESULT_PREFIX))
    result = json.loads(line.removeprefix(RESULT_PREFIX))
    result.update(command_seconds=round(measured.seconds, 1), peak_rss_mb=round(measured.peak_rss_mb, 1))
    log(f"  {result['ratings']:,} ratings: {result['seconds_per_epoch']} s/epoch, {measured}")
    return result


def _child(epochs: int) -> None:
    import django

    django.setup()
    from recommender import services
    from recommender.ml import vae

    timings: dict[str, float] = {}
    take_snapshot = services.rating_snapshot

    def peak_mb() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def timed_snapshot():
        started = time.perf_counter()
        snapshot = take_snapshot()
        timings["snapshot_seconds"] = round(time.perf_counter() - started, 2)
        timings["snapshot_peak_rss_mb"] = peak_mb()
        return snapshot

    def record_epoch_peak(epoch: int, logs: dict) -> None:
        timings["ranking_epochs_peak_rss_mb"] = peak_mb()

    store_artifacts = services._store_artifacts

    def store_and_record_peaks(*args, **kwargs):
        timings["before_storing_peak_rss_mb"] = peak_mb()
        return store_artifacts(*args, **kwargs)

    # Measured where the service calls them, not a second time. Peaks are high-water marks: each says how much
    # memory the run had needed by that point, so the phase that sets the overall peak can be told.
    services.rating_snapshot = timed_snapshot
    services._store_artifacts = store_and_record_peaks
    config = vae.preset("default", max_epochs=epochs, rating_max_epochs=epochs, patience=epochs)
    started = time.perf_counter()
    version = services.model_version_train(config=config, on_epoch_end=record_epoch_peak)
    total = time.perf_counter() - started
    history = version.history
    epoch_seconds = history.get("epoch_seconds", [])
    rating_seconds = history.get("rating_epoch_seconds", [])
    sizes = {
        name: os.path.getsize(Path(os.environ["DJANGO_MEDIA_ROOT"]) / version.artifact_path / name)
        for name in version.artifact_sha256
    }
    result = {
        **version.data_stats,
        **timings,
        "epochs": len(epoch_seconds),
        "rating_epochs": len(rating_seconds),
        "seconds_per_epoch": round(statistics.median(epoch_seconds), 1) if epoch_seconds else None,
        "seconds_per_rating_epoch": round(statistics.median(rating_seconds), 1) if rating_seconds else None,
        "movie_to_movie_path": config.resolved_item_item(version.data_stats["movies"]),
        "training_seconds": round(total, 1),
        "other_seconds": round(
            total - timings.get("snapshot_seconds", 0) - sum(epoch_seconds) - sum(rating_seconds), 1
        ),
        "validation": {k: round(v, 4) for k, v in version.metrics.items() if k in ("ndcg@100", "precision@5", "rmse")},
        "artifact_mb": {name: round(size / 2**20, 1) for name, size in sizes.items()},
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.epochs)
    if not args.database_url:
        parser.error("give the URL of a database that holds ratings (e.g. one kept by import_scale.py --keep)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mnm-training-"))
    print(
        json.dumps(
            run(
                database_url=args.database_url,
                workdir=workdir,
                epochs=args.epochs,
                log=lambda message: print(message, file=sys.stderr),
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

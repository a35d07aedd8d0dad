"""Every scale benchmark in one command: `make bench` (or `.venv/bin/python benchmarks/run_all.py`).

    .venv/bin/python benchmarks/run_all.py [--only import,training,inference,http,celery] [--sizes 1m,10m,25m]
                                           [--sqlite-sizes 1m,10m] [--quick] [--output benchmarks/results]

1. Synthetic MovieLens-25M-shaped datasets (benchmarks/synthetic_movielens.py, seeded) at the given sizes, kept
   under var/bench-data/ (BENCH_DATA) and made again only when missing; the real ML-100K where it is on the machine.
2. import: `import_movielens` into fresh SQLite and PostgreSQL databases, with PostgreSQL COPY as the reference.
3. training: the default model on the imported PostgreSQL databases (ML-100K, 1M and the largest size): seconds
   per epoch and peak memory (3 epochs, 1 at the largest size).
4. inference: recommendations in-process for 1,682, 10,000 and 59,047 movies.
5. http: gunicorn (2 workers) under wrk on loopback, ML-100K and its trained model.
6. celery: from the rating that crosses the retraining threshold to the new model serving, at ML-100K size.

Writes `scale.json` (merged: a stage run alone replaces only its own figures) and `scale.md` under --output, with
the date, the machine and the command. PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
`--quick` runs everything at a tiny size in a minute or two, as the smoke test does.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import import_scale, inference_scale, synthetic_movielens, training_scale
from benchmarks.measure import ML100K, PYTHON, ROOT, machine, postgres_drop
from benchmarks.report import render_markdown

STAGES = ("import", "training", "inference", "http", "celery")
DEFAULT_SIZES = ("1m", "10m", "25m")


def dataset_folder(size: str, data_root: Path, log) -> Path:
    """The synthetic dataset of this size, generated when missing (or when made with other settings)."""
    n_ratings = synthetic_movielens.parse_count(size)
    folder = data_root / f"synthetic-{size}"
    summary = folder / "synthetic.json"
    if summary.exists() and json.loads(summary.read_text()).get("ratings") == n_ratings:
        return folder
    log(f"Generating the synthetic {size} dataset in {folder} ...")
    started = time.perf_counter()
    synthetic_movielens.generate(folder, n_ratings=n_ratings, seed=0, log=lambda message: None)
    log(f"  done in {time.perf_counter() - started:.0f} s")
    return folder


def stage_import(datasets: dict[str, Path], sqlite_sizes: set[str], workdir: Path, log) -> dict:
    results = {}
    for name, folder in datasets.items():
        for backend in ("sqlite", "postgresql"):
            if backend == "sqlite" and name not in sqlite_sizes:
                continue
            log(f"Import {name} into {backend}")
            # PostgreSQL databases stay for the training stage.
            results[f"{name}/{backend}"] = import_scale.run(
                data=folder,
                backend=backend,
                workdir=workdir / "import",
                name=name.replace("-", "_"),
                keep=backend == "postgresql",
                log=log,
            )
    return results


def stage_training(datasets: dict[str, Path], previous_import: dict, workdir: Path, quick: bool, log) -> dict:
    # Median of 3 epochs where an epoch is short; one epoch of the largest dataset (minutes on a CPU).
    small = [name for name in datasets if name in ("ml-100k", "1m")]
    largest = list(datasets)[-1]
    results = {}
    for name in list(datasets) if quick else dict.fromkeys([*small, largest]):
        imported = previous_import.get(f"{name}/postgresql") or {}
        if not imported.get("database_url"):
            log(f"Training {name}: skipped, no imported PostgreSQL database (run the import stage first)")
            continue
        epochs = 3 if name in small and not quick else 1
        log(f"Training {name} ({epochs} epoch(s))")
        results[name] = training_scale.run(
            database_url=imported["database_url"], workdir=workdir / "training" / name, epochs=epochs, log=log
        )
    return results


def stage_http(data: Path, workdir: Path, quick: bool, log) -> dict:
    from benchmarks import http_load

    log("HTTP: gunicorn (2 workers) under wrk")
    return http_load.run(
        data=data,
        workdir=workdir / "http",
        epochs=1 if quick else None,
        connections=2 if quick else 8,
        duration=2 if quick else 15,
        log=log,
    )


def stage_celery(data: Path, workdir: Path, quick: bool, log) -> dict:
    log("Celery: threshold-crossing rating -> new model serving")
    out = workdir / "celery.json"
    command = [
        PYTHON,
        str(ROOT / "benchmarks" / "celery_retrain.py"),
        "--data",
        str(data),
        "--workdir",
        str(workdir / "celery"),
        "--json",
        str(out),
    ]
    if quick:
        command += ["--epochs", "1", "--threshold", "20"]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def run(*, stages, sizes, sqlite_sizes, quick: bool, output: Path, workdir: Path, data_root: Path, log=print) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "scale.json"
    results = json.loads(results_path.read_text()) if results_path.exists() and not quick else {}
    results.update(
        date=time.strftime("%Y-%m-%d %H:%M"),
        machine=machine(),
        command="make bench" if not quick else "benchmarks/run_all.py --quick",
    )
    results.setdefault("stages", {})

    datasets: dict[str, Path] = {}
    if ML100K.exists() and not quick:
        datasets["ml-100k"] = ML100K
    for size in sizes:
        datasets[size] = dataset_folder(size, data_root, log)
    small = datasets.get("ml-100k") or next(iter(datasets.values()))

    def record(stage: str, figures: dict) -> None:
        results["stages"][stage] = figures
        results.setdefault("measured", {})[stage] = time.strftime("%Y-%m-%d %H:%M")
        results_path.write_text(json.dumps(results, indent=2))
        (output / "scale.md").write_text(render_markdown(results))

    if "import" in stages:
        record("import", stage_import(datasets, set(sqlite_sizes) | {"ml-100k"}, workdir, log))
    if "training" in stages:
        record("training", stage_training(datasets, results["stages"].get("import", {}), workdir, quick, log))
    if "inference" in stages:
        log("Inference in-process")
        record(
            "inference",
            inference_scale.run(
                sizes=(200, 1_000) if quick else inference_scale.DEFAULT_SIZES, calls=20 if quick else 300, log=log
            ),
        )
    if "http" in stages:
        record("http", stage_http(small, workdir, quick, log))
    if "celery" in stages:
        record("celery", stage_celery(small, workdir, quick, log))
    if quick:  # a smoke run leaves no databases behind
        for figures in results["stages"].get("import", {}).values():
            if (figures.get("database_url") or "").startswith("postgres"):
                postgres_drop(figures["database_url"].rsplit("/", 1)[-1])
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(STAGES), help=f"stages, comma-separated: {','.join(STAGES)}")
    parser.add_argument(
        "--sizes", default=",".join(DEFAULT_SIZES), help="synthetic sizes in ratings (default %(default)s)"
    )
    parser.add_argument("--sqlite-sizes", help="sizes also imported into SQLite (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, short runs: checks that everything works")
    parser.add_argument(
        "--output",
        type=Path,
        help="where scale.json and scale.md go (default: benchmarks/results; "
        "with --quick, the scratch folder, so a smoke run never replaces the real figures)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BENCH_DATA", ROOT / "var" / "bench-data")))
    args = parser.parse_args(argv)
    stages = [s for s in args.only.split(",") if s]
    if unknown := set(stages) - set(STAGES):
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    sizes = [s for s in args.sizes.split(",") if s]
    try:
        for size in sizes:
            synthetic_movielens.parse_count(size)
    except ValueError:
        parser.error(f"--sizes takes counts such as 100k,1m,25m, not {args.sizes!r}")
    if args.quick:
        sizes = ["3k"]
    sqlite_sizes = sizes if args.sqlite_sizes is None else [s for s in args.sqlite_sizes.split(",") if s]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mnm-bench-"))
    output = args.output or (workdir / "results" if args.quick else ROOT / "benchmarks" / "results")
    log = lambda message: print(message, file=sys.stderr, flush=True)
    log(
        f"Command: {shlex.join(['benchmarks/run_all.py', *(argv if argv is not None else sys.argv[1:])])}; scratch: {workdir}"
    )
    results = run(
        stages=stages,
        sizes=sizes,
        sqlite_sizes=sqlite_sizes,
        quick=args.quick,
        output=output,
        workdir=workdir,
        data_root=workdir / "data" if args.quick else args.data,
        log=log,
    )
    log(f"Results: {output / 'scale.json'} and {output / 'scale.md'}")
    print(render_markdown(results))


if __name__ == "__main__":
    main()

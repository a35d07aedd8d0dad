"""The Markdown table of benchmarks/run_all.py's results (benchmarks/results/scale.md), with the targets checked."""

from __future__ import annotations

MB_PER_GB = 1024
LARGEST_IMPORT = "25m/postgresql"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _gb(mb: float | None) -> str:
    return "–" if mb is None else (f"{mb / MB_PER_GB:.2f} GB" if mb >= MB_PER_GB else f"{mb:.0f} MB")


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def targets(results: dict) -> list[list[str]]:
    """(target, measured, verdict) for each target of issue 6 that the results cover."""
    stages = results.get("stages", {})
    rows = []

    def check(name: str, measured: str, met: bool, miss: str = "") -> None:
        rows.append([name, measured, "met" if met else f"**missed** {miss}".rstrip()])

    imported = stages.get("import", {}).get(LARGEST_IMPORT)
    if imported:
        seconds, peak = imported["command_seconds"], imported["peak_rss_mb"]
        check(
            "25M ratings into PostgreSQL in under 5 minutes",
            f"{seconds:.0f} s",
            seconds < 300,
            f"by {seconds - 300:.0f} s",
        )
        check("... with peak memory under 2 GB", _gb(peak), peak < 2 * MB_PER_GB, f"by {_gb(peak - 2 * MB_PER_GB)}")
    training = stages.get("training", {})
    largest = max(training.values(), key=lambda t: t["ratings"], default=None)
    if largest and largest["ratings"] >= 20_000_000:
        peak = largest["peak_rss_mb"]
        check(
            f"training at {largest['ratings'] / 1e6:.0f}M ratings: peak memory under 8 GB",
            _gb(peak),
            peak < 8 * MB_PER_GB,
            f"by {_gb(peak - 8 * MB_PER_GB)}",
        )
    http = stages.get("http")
    if http:
        errors = sum(page["errors"] + page.get("non_2xx", 0) for page in http["pages"].values())
        check("HTTP: no errors under load", f"{errors} errors", errors == 0)
        check(
            "HTTP: one web worker under 300 MB resident", f"{http['worker_rss_mb']:.0f} MB", http["worker_rss_mb"] < 300
        )
        check(
            "HTTP: no TensorFlow in web workers",
            "none" if not http["tensorflow_in_workers"] else "loaded",
            not http["tensorflow_in_workers"],
        )
    return rows


def render_markdown(results: dict) -> str:
    stages = results.get("stages", {})
    m = results.get("machine", {})
    lines = [
        "# Scale benchmarks (generated)",
        "",
        f"Produced by `{results.get('command', 'make bench')}` on {results.get('date')}. Machine: {m.get('cpu')}, "
        f"{m.get('cores')} cores, {m.get('memory_gib')} GiB RAM, no GPU, {m.get('system')}, Python {m.get('python')}. "
        "Stages measured: "
        + ", ".join(f"{stage} {date}" for stage, date in results.get("measured", {}).items())
        + ". Commentary: benchmarks/RESULTS.md.",
        "",
    ]
    if rows := targets(results):
        lines += ["## Targets", "", *_table(["target", "measured", ""], rows), ""]
    if imported := stages.get("import"):
        lines += ["## Import (`manage.py import_movielens`, whole command, fresh database)", ""]
        rows = []
        for r in imported.values():
            copy = r.get("copy_reference") or {}
            rows.append(
                [
                    r["dataset"],
                    r["backend"],
                    _n(r["ratings"]),
                    _n(r["users"]),
                    _n(r["movies"]),
                    _n(r["tags"]),
                    f"{r['command_seconds']:.1f} s",
                    _n(r["ratings_per_second"]),
                    _gb(r["peak_rss_mb"]),
                    _gb(r["database_mb"]),
                    f"{copy['same_table_seconds']:.1f} s" if copy else "–",
                    f"{copy['bare_table_seconds']:.1f} s" if copy else "–",
                    f"{r['seconds_vs_copy_same_table']:.2f}" if copy else "–",
                ]
            )
        lines += _table(
            [
                "dataset",
                "database",
                "ratings",
                "users",
                "movies",
                "tags",
                "time",
                "ratings/s",
                "peak memory",
                "database size",
                "COPY, same table",
                "COPY, bare table",
                "import ÷ COPY same table",
            ],
            rows,
        )
        lines += [
            "",
            (
                "COPY: the same ratings (ids already mapped, binary format) loaded by plain COPY and committed, into a copy "
                "of the ratings table with its indexes, check and deferred foreign keys, and into a table with none."
            ),
            "",
        ]
    if training := stages.get("training"):
        lines += ["## Training (default preset, `model_version_train` as `train_vae` runs it, own process)", ""]
        rows = [
            [
                name,
                f"{_n(t['users'])} x {_n(t['movies'])}",
                _n(t["ratings"]),
                f"{t['snapshot_seconds']:.1f} s",
                f"{t['seconds_per_epoch']} s ({t['epochs']})",
                f"{t['seconds_per_rating_epoch']} s ({t['rating_epochs']})",
                f"{t['other_seconds']:.0f} s",
                f"{t['training_seconds']:.0f} s",
                _gb(t["peak_rss_mb"]),
                "yes" if t["movie_to_movie_path"] else "no",
                f"{sum(t['artifact_mb'].values()):.0f} MB",
            ]
            for name, t in training.items()
        ]
        lines += _table(
            [
                "dataset",
                "users x movies",
                "ratings",
                "read ratings",
                "s/epoch (epochs)",
                "rating phase s/epoch",
                "rest",
                "total",
                "peak memory",
                "movie-to-movie path",
                "model files",
            ],
            rows,
        )
        lines += [
            "",
            (
                "An epoch includes the validation loss and the NDCG@100 early-stopping pass over the validation users. "
                '"Rest": EASE fits and the mixing-weight search (movie-to-movie path), scoring the validation users, '
                "storing the files."
            ),
            "",
        ]
    if inference := stages.get("inference"):
        lines += ["## Recommendations in-process (NumPy forward pass + top 10, user with 100 ratings)", ""]
        rows = [
            [
                _n(r["movies"]),
                "yes" if r["movie_to_movie_path"] else "no",
                f"{r['p50_ms']} ms",
                f"{r['p95_ms']} ms",
                f"{r['p99_ms']} ms",
                f"{r['weights_mb']:.0f} MB",
                r["calls"],
            ]
            for r in inference.values()
        ]
        lines += _table(
            ["movies", "movie-to-movie path", "p50", "p95", "p99", "weights per web process", "calls"], rows
        )
        lines.append("")
    if http := stages.get("http"):
        lines += [
            (
                f"## HTTP: gunicorn, {http['workers']} sync workers, wrk with {http['connections']} connections, "
                f"{http['duration_s']:g} s per page, loopback"
            ),
            "",
        ]
        rows = [
            [
                name,
                p["rps"],
                f"{p['p50_ms']} ms",
                f"{p['p95_ms']} ms",
                f"{p['p99_ms']} ms",
                _n(p["requests"]),
                p["errors"] + p.get("non_2xx", 0),
            ]
            for name, p in http["pages"].items()
        ]
        lines += _table(["page", "requests/s", "p50", "p95", "p99", "requests", "errors"], rows)
        lines += [
            "",
            (
                f"Largest web worker after the load: {http['worker_rss_mb']:.0f} MB resident ({http['worker_uss_mb']:.0f} MB "
                f"unique); TensorFlow in web workers: {'yes' if http['tensorflow_in_workers'] else 'no'}."
            ),
            "",
        ]
    if celery := stages.get("celery"):
        parts = celery["breakdown_s"]
        lines += ["## Background retraining: threshold-crossing rating -> new model serving", ""]
        lines += _table(["total", *parts], [[f"{celery['total_s']:.1f} s", *(f"{v:.2f} s" for v in parts.values())]])
        new = celery["new_version"]
        lines += [
            "",
            (
                f"{celery['ratings_posted']} ratings posted (RETRAIN_THRESHOLD {celery['settings']['RETRAIN_THRESHOLD']}), "
                f"{celery['database']}, Redis broker, one worker (a fresh child per task); new model: {new['epochs']} epochs, "
                f"{new['activation_decision']}."
            ),
            "",
        ]
    return "\n".join(lines)

"""`make bench` at a tiny size, so the scale benchmarks cannot rot; and the measuring tools they rely on.

The HTTP and Celery stages have their own smoke tests (test_http_load_smoke.py, test_celery_retrain_smoke.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import report
from benchmarks.measure import POSTGRES_ADMIN_URL, CommandFailed, run_measured
from tests.conftest import PROJECT_ROOT


def _postgres_answers() -> bool:
    import psycopg

    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.mark.benchmark_smoke
def test_quick_run_imports_trains_and_serves_at_a_tiny_size(tmp_path):
    if not _postgres_answers():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; CI must run the benchmark smoke tests")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} (BENCH_POSTGRES_URL)")
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/run_all.py",
            "--quick",
            "--only",
            "import,training,inference",
            "--workdir",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((tmp_path / "results" / "scale.json").read_text())
    stages = results["stages"]

    for backend in ("sqlite", "postgresql"):
        imported = stages["import"][f"3k/{backend}"]
        assert imported["ratings"] == 3000 and imported["users"] > 0 and imported["movies"] > 0
        assert imported["command_seconds"] > 0 and imported["peak_rss_mb"] > 50
    copy = stages["import"]["3k/postgresql"]["copy_reference"]
    assert copy["same_table_seconds"] >= 0 and copy["bare_table_seconds"] >= 0

    trained = stages["training"]["3k"]
    assert trained["ratings"] == 3000 and trained["epochs"] == 1 and trained["rating_epochs"] == 1
    assert trained["seconds_per_epoch"] > 0 and trained["peak_rss_mb"] > trained["snapshot_peak_rss_mb"] > 0
    assert trained["artifact_mb"]["weights.npz"] > 0

    for figures in stages["inference"].values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]

    markdown = (tmp_path / "results" / "scale.md").read_text()
    assert "## Import" in markdown and "## Training" in markdown and "## Recommendations in-process" in markdown
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL) as connection:  # a quick run leaves no database behind
        assert not connection.execute("SELECT 1 FROM pg_database WHERE datname = 'mnm_bench_3k'").fetchall()


def test_inference_benchmark_follows_the_default_presets_switch():
    from benchmarks.inference_scale import DEFAULT_ITEM_ITEM_MAX_MOVIES
    from recommender.ml import vae

    config = vae.preset("default")
    assert config.item_item is None and config.item_item_max_items == DEFAULT_ITEM_ITEM_MAX_MOVIES


def test_run_measured_reports_the_commands_own_peak_memory_and_failures():
    allocate = [sys.executable, "-c", "import numpy; a = numpy.ones(300 * 2**20 // 8); print('done')"]
    measured = run_measured(allocate)
    assert measured.peak_rss_mb >= 300 and measured.output.strip() == "done"
    ballast = b"x" * (600 * 2**20)  # this process is now large: a command it starts must not report its size
    small = run_measured([sys.executable, "-c", "pass"])
    del ballast
    assert small.peak_rss_mb < 100
    with pytest.raises(CommandFailed, match="exited with 3"):
        run_measured([sys.executable, "-c", "import sys; print('why'); sys.exit(3)"])


def test_the_report_checks_each_target_and_says_by_how_much_one_was_missed():
    results = {
        "stages": {
            "import": {"25m/postgresql": {"command_seconds": 312.0, "peak_rss_mb": 900.0}},
            "training": {"25m": {"ratings": 25_000_000, "peak_rss_mb": 9216.0}},
            "http": {
                "pages": {"guest home": {"errors": 0, "non_2xx": 0}},
                "worker_rss_mb": 150.0,
                "tensorflow_in_workers": False,
            },
        }
    }
    verdicts = {row[0]: row[2] for row in report.targets(results)}
    assert verdicts["25M ratings into PostgreSQL in under 5 minutes"] == "**missed** by 12 s"
    assert verdicts["... with peak memory under 2 GB"] == "met"
    assert verdicts["training at 25M ratings: peak memory under 8 GB"] == "**missed** by 1.00 GB"
    assert verdicts["HTTP: no errors under load"] == "met"
    assert verdicts["HTTP: one web worker under 300 MB resident"] == "met"

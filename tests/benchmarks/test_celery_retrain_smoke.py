"""The background-retraining benchmark at a tiny size, so it cannot rot: real Redis, worker, trainings and swap.

It runs in a subprocess (the benchmark sets up Django itself, on its own database); no test database is needed.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.celery_retrain import redis_answers
from benchmarks.synthetic_movielens import generate
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.benchmark_smoke

THRESHOLD = 20


def _no_redis_reason() -> str | None:
    if shutil.which("redis-server"):
        return None
    url = os.environ.get("REDIS_URL")
    if url and redis_answers(url):
        return None
    return "redis-server is not installed and REDIS_URL is not set or not reachable"


def test_celery_retrain_benchmark_measures_a_real_retraining(tmp_path):
    if reason := _no_redis_reason():
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the benchmark smoke tests")
        pytest.skip(f"{reason} (the benchmark needs a real Redis; CI runs it)")
    data = tmp_path / "data"
    # ML-25M's proportions give too few users for 3,000 ratings (generate refuses them): 60 users, 50 ratings each.
    generate(data, n_ratings=3000, n_users=60, seed=0, log=lambda _: None)
    out = tmp_path / "out.json"
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/celery_retrain.py",
            "--data",
            str(data),
            "--workdir",
            str(tmp_path / "work"),
            "--epochs",
            "1",
            "--threshold",
            str(THRESHOLD),
            "--timeout",
            "300",
            "--json",
            str(out),
            "--trainings",
            "2",
            "--activation-margin",
            "1",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(out.read_text())

    assert result["data"]["ratings"] == 3000
    assert result["ratings_posted"] == THRESHOLD
    assert result["job"]["status"] == "succeeded" and result["job"]["new_ratings"] == THRESHOLD
    initial, new = result["initial_version"], result["new_version"]
    assert new["id"] != initial["id"] and new["served_id"] == new["id"]
    assert new["epochs"] == 1 and new["activation_decision"] == "activated"
    assert new["data_stats"]["ratings"] == 3000 + THRESHOLD  # trained on the ratings that triggered it
    top10 = result["rater_top10"]
    assert top10["before_version"] == initial["id"] and top10["after_version"] == new["id"]

    parts = result["breakdown_s"]
    assert set(parts) == {"queue_wait_s", "worker_start_s", "training_s", "activation_s", "pickup_s"}
    assert all(0 <= part <= result["total_s"] for part in parts.values())
    assert sum(parts.values()) == pytest.approx(result["total_s"], abs=0.01)  # consecutive parts of the same span
    # The web process swaps within one version check (plus the poll and the load of a tiny model).
    assert parts["pickup_s"] <= result["settings"]["RECOMMENDER_VERSION_CHECK_SECONDS"] + 2
    assert result["worker_errors"] == []
    # A second training, the worker's memory after each, and the home page timed while idle and while training.
    assert len(result["further_trainings"]) == 1 and result["further_trainings"][0]["decision"] == "activated"
    memory = result["worker_memory"]
    assert len(memory["after_each_training"]) == 2 and all(
        row["parent_mb"] > 0 and row["total_mb"] >= row["parent_mb"] for row in memory["after_each_training"]
    )
    assert memory["last_over_first"] == pytest.approx(
        memory["after_each_training"][1]["total_mb"] / memory["after_each_training"][0]["total_mb"], abs=1e-3
    )
    assert (
        result["home_page_ms"]["while_idle"]["requests"] > 0
        and result["home_page_ms"]["while_training"]["requests"] > 0
    )

"""The issue-15 training benchmarks at a tiny size, so they cannot rot: the dense-against-sparse epoch (a few
hundred users, still ML-25M's 59,047 movies wide) and the one-command full training meant for a GPU host (a
2,000-movie catalogue: at 59,047 movies its similar-movies table, at 5,000 its movie-to-movie fits, took a minute here)."""

import json
import subprocess
import sys

import pytest

from benchmarks.sparse_training import synthetic_matrix
from tests.conftest import PROJECT_ROOT


def test_the_synthetic_matrix_has_ml25m_shape_and_half_stars():
    matrix = synthetic_matrix(scale=0.001)
    assert matrix.shape == (163, 59_047) and 24_000 <= matrix.nnz <= 25_100
    stars = set(matrix.data.tolist())
    assert stars <= {s / 2 for s in range(1, 11)} and len(stars) >= 8


@pytest.mark.benchmark_smoke
def test_the_full_training_benchmark_reports_its_figures():
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_training.py", "--scale", "0.002", "--max-epochs", "1", "--movies", "2000"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(done.stdout)
    assert figures["movies"] == 2_000 and figures["ranking_epochs"] == 1
    assert figures["ranking_seconds_per_epoch_median"] > 0 and figures["training_seconds"] > 0
    assert figures["device"].startswith(("CPU only", "1 GPU", "2 GPU", "4 GPU", "8 GPU"))
    assert figures["peak_rss_mb"] > 0 and "ndcg@100" in figures["validation"]


@pytest.mark.benchmark_smoke
def test_the_epoch_benchmark_times_the_dense_and_sparse_paths():
    done = subprocess.run(
        [sys.executable, "benchmarks/sparse_training.py", "--scale", "0.0005", "--paths", "dense,sparse"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    summary = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert summary["movies"] == 59_047 and set(summary["paths"]) == {"dense", "sparse"}
    for figures in summary["paths"].values():
        assert figures["steps"] >= 1 and figures["seconds_per_epoch"] > 0 and figures["peak_rss_mb"] > 0
    assert summary["speed-up"] > 0

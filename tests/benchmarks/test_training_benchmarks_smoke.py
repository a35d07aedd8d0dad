"""The issue-15 training benchmarks at a tiny size (a few hundred users, still ML-25M's 59,047 movies wide), so
they cannot rot: the dense-against-sparse epoch and the one-command full training meant for a GPU host."""

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
        [sys.executable, "benchmarks/gpu_training.py", "--scale", "0.002", "--max-epochs", "1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(done.stdout)
    assert figures["movies"] == 59_047 and figures["ranking_epochs"] == 1
    assert figures["ranking_seconds_per_epoch_median"] > 0 and figures["training_seconds"] > 0
    assert figures["device"].startswith(("CPU only", "1 GPU", "2 GPU", "4 GPU", "8 GPU"))
    assert figures["peak_rss_mb"] > 0 and "ndcg@100" in figures["validation"]

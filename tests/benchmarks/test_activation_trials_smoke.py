"""The activation benchmark at a tiny size, so it cannot rot: seeded retrainings, a broken candidate, the decisions."""

import json

import numpy as np
import pytest

from tests.benchmarks.scripts import run_for_json
from tests.conftest import TINY

pytestmark = pytest.mark.benchmark_smoke


def write_u_data(folder, *, users=300, movies=40, seed=0):
    """Two taste groups in MovieLens 100K's u.data layout (user, item, rating, timestamp; tab-separated)."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, users + 1):
        liked = range(1, movies // 2 + 1) if user % 2 else range(movies // 2 + 1, movies + 1)
        disliked = [m for m in range(1, movies + 1) if m not in liked]
        for movie in rng.choice(list(liked), size=10, replace=False):
            lines.append(f"{user}\t{movie}\t{rng.choice([4, 5])}\t{rng.integers(8e8, 9e8)}")
        for movie in rng.choice(disliked, size=3, replace=False):
            lines.append(f"{user}\t{movie}\t{rng.choice([1, 2])}\t{rng.integers(8e8, 9e8)}")
    folder.mkdir()
    (folder / "u.data").write_text("\n".join(lines) + "\n")


def test_activation_trials_keep_retrainings_and_refuse_shuffled_ratings(tmp_path):
    write_u_data(tmp_path / "data")
    out = tmp_path / "out.json"
    overrides = json.dumps({**TINY, "max_epochs": 6, "min_user_ratings": 3})
    report = run_for_json(
        "benchmarks/activation_trials.py",
        *("--data", str(tmp_path / "data"), "--trials", "2", "--overrides", overrides, "--out", str(out)),
        out=out,
    )
    assert report["users"] == 300 and 15 <= report["audit_users"] <= 45 and report["new_ratings"] > 0
    assert report["noise"]["pairs"] == 1 and report["noise"]["suggested_margin"] > 0
    decided = report["product_margin"]
    assert decided["activated"]["retrained_plus_1pct"] == 2  # the same data plus 1%: kept
    assert decided["activated"]["shuffled"] == 0  # ratings moved to random movies: refused
    first = decided["decisions"]["shuffled"][0]
    assert first["users"] == report["audit_users_scored"] and first["mean_difference"] < -first["margin"]

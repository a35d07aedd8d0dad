"""The dropout-stream benchmark at a tiny size, so it cannot rot: stream k changes the dropout masks and nothing else."""

import json

import pytest

from tests.benchmarks.scripts import run_for_json
from tests.benchmarks.test_activation_trials_smoke import write_u_data
from tests.conftest import TINY

pytestmark = pytest.mark.benchmark_smoke


def _streams(data, out, **overrides) -> dict:
    overrides = json.dumps({**TINY, "encoder_units": [], "rating_max_epochs": 1, **overrides})
    return run_for_json(
        "benchmarks/ml/dropout_streams.py",
        *("--data", str(data), "--presets", "default", "--streams", "0,1", "--folds", "3", "--max-folds", "1"),
        *("--overrides", overrides, "--json", str(out)),
        out=out,
    )


def test_another_stream_changes_the_model_only_through_its_dropout_masks(tmp_path):
    write_u_data(tmp_path / "data")
    with_dropout = _streams(tmp_path / "data", tmp_path / "with.json", input_dropout=0.5)
    without = _streams(tmp_path / "data", tmp_path / "without.json", input_dropout=0.0)
    assert with_dropout["data"] == {"users": 300, "movies": 40, "ratings": 3900}
    runs = with_dropout["runs"]
    assert set(runs) == {"default/stream0", "default/stream1"} and len(runs["default/stream0"]["flip@10"]) == 1
    assert runs["default/stream0"] != runs["default/stream1"]  # other masks, another model
    # Without input dropout the stream is never drawn from: the same initial weights, batches and users.
    assert without["runs"]["default/stream0"] == without["runs"]["default/stream1"]
    summary = with_dropout["summary"]["default"]
    assert summary["flip@10_range"][0] <= summary["mean_flip@10"] <= summary["flip@10_range"][1]

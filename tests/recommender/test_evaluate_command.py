import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import TINY

pytestmark = pytest.mark.django_db


def test_evaluate_model_compares_the_vae_with_baselines(two_taste_catalogue, tmp_path, monkeypatch):
    from recommender.ml import vae

    monkeypatch.setitem(vae.PRESETS, "tiny", vae.preset("default", **TINY))
    output = tmp_path / "evaluation.json"
    out = io.StringIO()

    call_command(
        "evaluate_model", "--presets", "tiny", "--folds", "3", "--max-folds", "1", "--output", str(output), stdout=out
    )

    results = json.loads(output.read_text())
    models = results["cross_validation"]["models"]
    assert set(models) == {"popularity", "bias", "ease", "ease-liked", "ease-value-aware", "vae:tiny"}
    ranking = {"precision@5", "recall@5", "f1@5", "recall@20", "ndcg@10", "ndcg@100", "coverage@10"}
    for name, model in models.items():
        assert ranking | {"flip@10", "disliked@20"} <= set(model["metrics"]), name
    assert {"rmse", "mae"} <= set(models["bias"]["metrics"]) and {"rmse", "mae"} <= set(models["vae:tiny"]["metrics"])
    # On two clean taste groups, EASE must beat popularity: the evaluation really measures personalisation.
    assert models["ease"]["metrics"]["ndcg@100"] > models["popularity"]["metrics"]["ndcg@100"]
    # Rated-only EASE cannot hear a 1-star rating; the value-aware one turns its list around.
    assert models["ease"]["metrics"]["flip@10"] == 1.0 and models["popularity"]["metrics"]["flip@10"] == 1.0
    assert models["ease-value-aware"]["metrics"]["flip@10"] < 0.5
    # Each EASE variant chose its l2 on its own validation users, once per fold run.
    for name in ("ease", "ease-liked", "ease-value-aware"):
        assert len(models[name]["selected"]) == 1 and models[name]["selected"][0].startswith("l2=")
        assert set(models[name]["validation_scores"][0]) == {
            "l2=50",
            "l2=100",
            "l2=200",
            "l2=500",
            "l2=1000",
            "l2=2000",
        }
    protocol = results["cross_validation"]["protocol"]
    assert protocol["rating_bounds"] == [1.0, 5.0] and protocol["relevance_threshold"] == 3.5
    assert results["baselines"]["bias_damping"] == {"item": 5.0, "user": 10.0}
    assert results["data"]["ratings"] == 600 and protocol["n_folds"] == 3
    assert "| vae:tiny |" in out.getvalue() and "flip@10" in out.getvalue()


def test_evaluate_model_baselines_only_with_a_fixed_lambda(two_taste_catalogue, tmp_path):
    output = tmp_path / "evaluation.json"
    call_command(
        "evaluate_model",
        *("--presets", "", "--baselines", "popularity,ease-value-aware", "--ease-lambda", "300"),
        *("--folds", "2", "--output", str(output)),
        stdout=io.StringIO(),
    )
    results = json.loads(output.read_text())
    models = results["cross_validation"]["models"]
    assert set(models) == {"popularity", "ease-value-aware"}
    assert models["ease-value-aware"]["selected"] == ["l2=300", "l2=300"] and "selected" not in models["popularity"]


def test_evaluate_model_rejects_bad_input(two_taste_catalogue):
    with pytest.raises(CommandError, match="unknown preset"):
        call_command("evaluate_model", "--presets", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="unknown baseline"):
        call_command("evaluate_model", "--baselines", "ease,knn", stdout=io.StringIO())
    with pytest.raises(CommandError, match="nothing to evaluate"):
        call_command("evaluate_model", "--presets", "", "--baselines", "", stdout=io.StringIO())
    with pytest.raises(CommandError, match="at least 2"):
        call_command("evaluate_model", "--folds", "1", stdout=io.StringIO())
    with pytest.raises(CommandError, match="positive"):
        call_command("evaluate_model", "--ease-lambda", "0", stdout=io.StringIO())


def test_evaluate_model_needs_ratings(db):
    with pytest.raises(CommandError, match="too few"):
        call_command("evaluate_model", stdout=io.StringIO())

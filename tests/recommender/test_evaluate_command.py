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

    call_command("evaluate_model", "--presets", "tiny", "--folds", "3", "--max-folds", "1", "--output", str(output), stdout=out)

    results = json.loads(output.read_text())
    models = results["cross_validation"]["models"]
    assert set(models) == {"popularity", "bias", "ease-500", "vae:tiny"}
    for name in ("popularity", "ease-500", "vae:tiny"):
        assert {"precision@5", "recall@5", "f1@5", "recall@20", "ndcg@10", "ndcg@100", "coverage@10"} <= set(models[name]["metrics"])
    assert {"rmse", "mae"} <= set(models["bias"]["metrics"]) and {"rmse", "mae"} <= set(models["vae:tiny"]["metrics"])
    # On two clean taste groups, EASE must beat popularity: the evaluation really measures personalisation.
    assert models["ease-500"]["metrics"]["ndcg@100"] > models["popularity"]["metrics"]["ndcg@100"]
    assert results["data"]["ratings"] == 600 and results["cross_validation"]["protocol"]["n_folds"] == 3
    assert "| vae:tiny |" in out.getvalue()


def test_evaluate_model_rejects_bad_input(two_taste_catalogue):
    with pytest.raises(CommandError, match="unknown preset"):
        call_command("evaluate_model", "--presets", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="at least 2"):
        call_command("evaluate_model", "--folds", "1", stdout=io.StringIO())


def test_evaluate_model_needs_ratings(db):
    with pytest.raises(CommandError, match="too few"):
        call_command("evaluate_model", stdout=io.StringIO())

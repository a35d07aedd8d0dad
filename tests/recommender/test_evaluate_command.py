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


def write_official_splits(folder, n_users=12, n_movies=9):
    """Five small u1.base/u1.test ... pairs in ML-100K's tab-separated format (1-based ids, a timestamp)."""
    import numpy as np

    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 6):
        for part, per_user in (("base", 6), ("test", 2)):
            lines = [
                f"{user}\t{movie}\t{rng.integers(1, 6)}\t88125{user:04d}"
                for user in range(1, n_users + 1)
                for movie in rng.choice(np.arange(1, n_movies + 1), size=per_user, replace=False)
            ]
            (folder / f"u{n}.{part}").write_text("\n".join(lines) + "\n")
    return folder


def test_official_splits_are_read_as_matrices_of_movielens_ids_minus_one(tmp_path):
    from recommender.ml.movielens import read_official_splits

    folder = write_official_splits(tmp_path / "ml-100k")
    (folder / "u2.test").write_text("12\t9\t4\t881250949\n1\t1\t2\t881250950\n")

    splits = read_official_splits(folder)

    assert len(splits) == 5 and all(m.shape == (12, 9) for pair in splits for m in pair)
    assert splits[1][1].toarray()[11, 8] == 4.0 and splits[1][1].toarray()[0, 0] == 2.0 and splits[1][1].nnz == 2
    assert all(train.nnz == 72 for train, _ in splits)
    assert read_official_splits(folder, shape=(943, 1682))[0][0].shape == (943, 1682)
    (folder / "u3.test").unlink()
    with pytest.raises(FileNotFoundError, match="u3.test is missing"):
        read_official_splits(folder)


def test_evaluate_model_reports_the_official_splits(two_taste_catalogue, tmp_path):
    output = tmp_path / "evaluation.json"
    folder = write_official_splits(tmp_path / "ml-100k")
    arguments = ("--presets", "", "--baselines", "bias", "--folds", "2", "--splits", str(folder))
    arguments += ("--output", str(output))
    out = io.StringIO()
    call_command("evaluate_model", *arguments, stdout=out)
    splits = json.loads(output.read_text())["official_splits"]
    assert splits["protocol"] == {"n_splits": 5} and len(splits["models"]["bias"]["per_fold"]) == 5
    assert 0 < splits["models"]["bias"]["metrics"]["mae"] <= splits["models"]["bias"]["metrics"]["rmse"]
    assert "Official u1-u5 splits" in out.getvalue()

    (folder / "u5.base").unlink()
    with pytest.raises(CommandError, match=r"u5.base is missing: --splits needs the ML-100K folder"):
        call_command("evaluate_model", *arguments, stdout=io.StringIO())

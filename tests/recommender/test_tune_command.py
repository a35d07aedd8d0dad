import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import TINY

pytestmark = pytest.mark.django_db


def test_tune_vae_compares_candidates_on_validation_users(two_taste_catalogue, tmp_path, monkeypatch):
    from recommender.ml import vae

    monkeypatch.setitem(vae.PRESETS, "tiny", vae.preset("default", **TINY))
    output = tmp_path / "tuning.json"
    out = io.StringIO()
    call_command(
        "tune_vae",
        "--presets",
        "tiny",
        "--candidate",
        "tiny-blind=tiny:input_mode=implicit,item_item_input=binary",
        "--folds",
        "3",
        "--max-folds",
        "1",
        "--output",
        str(output),
        stdout=out,
    )
    results = json.loads(output.read_text())
    assert set(results["configs"]) == {"tiny", "tiny-blind"}
    assert results["configs"]["tiny-blind"]["input_mode"] == "implicit"
    fold = results["per_fold"][0]
    assert fold["picked"] in ("tiny", "tiny-blind") and results["chosen"] == fold["picked"]
    assert fold["validation"]["tiny-blind"]["flip@10"] == pytest.approx(1.0)
    assert "| tiny-blind |" in out.getvalue() and "Chosen:" in out.getvalue()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--presets", "nope"], "unknown preset"),
        (["--folds", "1"], "at least 2"),
        (["--candidate", "broken"], "expected NAME=PRESET"),
        (["--candidate", "x=nope"], "unknown preset"),
        (["--candidate", "x=default:input_mode=nonsense"], "input_mode must be one of"),
        (["--candidate", "x=default:latent_dim"], "is not key=value"),
        (["--presets", ""], "nothing to compare"),
    ],
)
def test_tune_vae_rejects_bad_input(two_taste_catalogue, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("tune_vae", *arguments, stdout=io.StringIO())

"""Site-wide rough edges (issue 14, items 7 and 8): favicon, robots.txt, descriptions, the model-version admin."""

import io

import pytest
from django.urls import reverse

from recommender.ml import vae
from recommender.services import loss_plot_png, model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY

pytestmark = pytest.mark.django_db


def test_favicon_and_robots_answer_at_the_root(client):
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 301 and favicon["Location"].endswith("favicon.svg")
    page = client.get(reverse("movies:home")).text
    assert 'rel="icon"' in page and "favicon.svg" in page
    robots = client.get("/robots.txt")
    assert robots.status_code == 200 and robots["Content-Type"].startswith("text/plain")
    assert "Disallow: /admin/" in robots.text


def test_every_page_describes_itself(client):
    for url in (reverse("movies:home"), reverse("movies:catalogue"), reverse("accounts:login")):
        assert '<meta name="description" content="' in client.get(url).text, url


def test_the_loss_plot_draws_each_loss_on_its_own_scale():
    from PIL import Image

    history = {"loss": [400.0, 370.0, 360.0], "val_loss": [70.0, 65.0, 64.0]}
    two_panels = Image.open(io.BytesIO(loss_plot_png(history, title="v1")))
    one_panel = Image.open(io.BytesIO(loss_plot_png({"loss": history["loss"]}, title="v1")))
    assert two_panels.width == 2 * one_panel.width and two_panels.height == one_panel.height


def test_the_model_version_page_reads_top_down_and_cannot_be_edited(client, two_taste_catalogue):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    version = model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 2}))
    page = client.get(reverse("admin:recommender_modelversion_change", args=[version.pk])).text
    plot, history = page.index('class="loss-plot"'), page.index("History per epoch")
    assert plot < page.index("Validation") < history  # the plot first, the long JSON last
    history_block = page[history - 400 : history]
    assert "<details" in history_block or "collapse" in history_block  # folded away
    assert 'name="_save"' not in page and 'name="_continue"' not in page  # no Save on a read-only record
    assert '<table class="metrics-table">' in page and "ndcg@100" in page
    listing = client.get(reverse("admin:recommender_modelversion_changelist")).text
    assert "precision@5" in listing and "<br>ndcg@100" in listing  # one metric a line: the list fits the screen

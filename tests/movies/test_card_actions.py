"""A card's member buttons (movie_tags.card_actions): small forms htmx posts, built as one string."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from tests.movies.factories import MovieFactory

pytestmark = pytest.mark.django_db

CARD_ACTIONS = Template("{% load movie_tags %}{% card_actions movie target onboarding %}")


def _render(movie, target: str, onboarding: bool, path: str = "/?show=8&x=<b>") -> str:
    request = RequestFactory().get(path)
    return CARD_ACTIONS.render(
        Context(
            {"request": request, "csrf_token": "tok<en>", "movie": movie, "target": target, "onboarding": onboarding}
        )
    )


def _forms(html: str) -> list[str]:
    return re.findall(r"<form .*?</form>", html)


def test_a_recommendation_gets_watchlist_and_not_interested_forms_with_csrf() -> None:
    movie = MovieFactory(title="Alien")
    html = _render(movie, '#recommendations"', onboarding=False)
    assert html.startswith('<div class="card-actions">') and html.endswith("</div>")
    watchlist, not_interested = _forms(html)
    for form, route in ((watchlist, "movies:watchlist_toggle"), (not_interested, "movies:not_interested")):
        action = reverse(route)
        assert f'method="post" action="{action}" hx-post="{action}"' in form
        assert 'hx-target="#recommendations&quot;" hx-select="#recommendations&quot;"' in form  # escaped
        assert '<input type="hidden" name="csrfmiddlewaretoken" value="tok&lt;en&gt;">' in form
        assert f'<input type="hidden" name="movie" value="{movie.pk}">' in form
        assert '<input type="hidden" name="next" value="/?show=8&amp;x=%3Cb%3E">' in form
    assert ">+ Watchlist</button>" in watchlist
    assert f'data-testid="not-interested-{movie.pk}">Not interested</button>' in not_interested


def test_while_onboarding_a_card_offers_to_skip_the_movie_its_title_escaped() -> None:
    movie = MovieFactory(title="<script>x</script>")
    (form,) = _forms(_render(movie, "#onboarding", onboarding=True))
    assert f'action="{reverse("movies:onboarding_skip")}"' in form
    assert f'data-testid="skip-{movie.pk}">Haven\'t seen it' in form
    assert ": &lt;script&gt;x&lt;/script&gt;</span>" in form and "<script>" not in form


def test_without_a_csrf_token_no_empty_token_field_is_written() -> None:
    movie = MovieFactory()
    request = RequestFactory().get("/")
    html = CARD_ACTIONS.render(Context({"request": request, "movie": movie, "target": "#x", "onboarding": False}))
    assert "csrfmiddlewaretoken" not in html and len(_forms(html)) == 2

"""Content-Security-Policy (issue 13, item 7): the header, and pages that need nothing it refuses."""

from html.parser import HTMLParser

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from recommender.ml import vae
from recommender.models import TrainingJob
from recommender.services import model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY
from tests.movies.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


class InlineCodeFinder(HTMLParser):
    """What a strict policy (no 'unsafe-inline') blocks: inline scripts, <style>, style= and on*= attributes."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") not in ("application/json",):
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> element at line {self.getpos()[0]}")
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> at line {self.getpos()[0]}")


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.found


def test_every_page_carries_a_strict_policy(client):
    for url in (reverse("movies:home"), reverse("accounts:login"), reverse("admin:login")):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'", url
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", url
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", url
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, url


def test_the_finder_sees_what_the_policy_would_block():
    assert len(inline_code('<p style="x" onclick="y"></p><script>alert(1)</script><style>p{}</style>')) == 4
    assert inline_code('<script src="/static/a.js" defer></script><p class="bar w-40"></p>') == []


def test_htmx_is_told_not_to_inject_its_indicator_style(client):
    page = client.get(reverse("movies:home")).text
    assert '"includeIndicatorStyles":false' in page and '"allowEval":false' in page


def _assert_clean(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert inline_code(response.text) == [], url


def test_guest_and_member_pages_have_no_inline_code(client):
    movies = MovieFactory.create_batch(3)
    guest_pages = [
        reverse("movies:home"),
        reverse("movies:top_rated"),
        reverse("movies:catalogue"),
        reverse("movies:detail", args=[movies[0].pk]),
        reverse("accounts:login"),
        reverse("accounts:signup"),
        reverse("accounts:password_reset"),
    ]
    _assert_clean(client, guest_pages)
    member = UserFactory()
    for movie, score in zip(movies, (5.0, 3.5, 1.0), strict=True):
        RatingFactory(user=member, movie=movie, score=score)
    client.force_login(member)
    member_pages = [
        reverse("movies:home"),
        reverse("movies:detail", args=[movies[0].pk]),  # with its rating-distribution bars
        reverse("movies:my_ratings"),
        reverse("movies:about_my_ratings"),  # bars
        reverse("movies:watchlist"),
        reverse("recommender:history"),
        reverse("accounts:profile"),
        reverse("accounts:password_change"),
        reverse("accounts:delete"),
    ]
    _assert_clean(client, member_pages)


def test_onboarding_and_error_pages_have_no_inline_code(client):
    MovieFactory.create_batch(3)
    client.force_login(UserFactory())
    assert "progress" in client.get(reverse("movies:home")).text  # a new member is on-boarded
    _assert_clean(client, [reverse("movies:home")])
    request = RequestFactory().get("/")
    for template in ("403.html", "404.html", "500.html"):
        assert inline_code(render_to_string(template, request=request)) == [], template


def test_admin_pages_have_no_inline_code(client, two_taste_catalogue):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    version = model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 2}))
    job = TrainingJob.objects.create(reason="manual", status="running")
    movie = two_taste_catalogue["movies"][0]
    _assert_clean(
        client,
        [
            reverse("admin:index"),
            reverse("admin:recommender_modelversion_changelist"),
            reverse("admin:recommender_modelversion_change", args=[version.pk]),  # the inlined loss plot
            reverse("admin:recommender_trainingjob_change", args=[job.pk]),  # htmx progress
            reverse("admin:movies_movie_changelist"),
            reverse("admin:movies_movie_change", args=[movie.pk]),
        ],
    )

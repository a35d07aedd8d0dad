"""The one-click half-star rating control (issue 14, item 2): a radio group that saves on change with htmx, posts
with a Save button without JavaScript, clears from the same control, and is the same on every page that rates."""

import re
from collections import Counter
from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from movies.models import Rating
from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.conftest import PROJECT_ROOT
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


class Controls(HTMLParser):
    """The rating controls of a page: their forms' attributes, radios, labels, legends and buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.ids: list[str] = []
        self._label_for: str | None = None
        self._in_legend = False
        self._in_noscript = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "form" and "rating-form" in (a.get("class") or ""):
            self.forms.append({"attrs": a, "radios": [], "labels": {}, "legend": "", "buttons": []})
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("type") == "radio":
            form["radios"].append(a)
        elif tag == "label":
            self._label_for = a.get("for")
            form["labels"][self._label_for] = ""
        elif tag == "legend":
            self._in_legend = True
        elif tag == "noscript":
            self._in_noscript = True
        elif tag == "button":
            form["buttons"].append({**a, "noscript": self._in_noscript})

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None
        elif tag == "legend":
            self._in_legend = False
        elif tag == "noscript":
            self._in_noscript = False

    def handle_data(self, data):
        if not self.forms:
            return
        if self._label_for:
            self.forms[-1]["labels"][self._label_for] += data
        if self._in_legend:
            self.forms[-1]["legend"] += data


def controls(html: str) -> Controls:
    parser = Controls()
    parser.feed(html)
    return parser


@pytest.fixture
def member(client):
    user = UserFactory(username="rater")
    client.force_login(user)
    return user


@pytest.fixture
def movies(settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    drama = GenreFactory(name="Drama")
    films = [MovieFactory(title=f"Film {i}") for i in range(6)]
    for film in films:
        film.genres.add(drama)
        RatingFactory(movie=film, score=4.0)
    movie_refresh_rating_stats()
    return films


def test_the_control_is_a_radio_group_of_ten_half_stars(client, member, movies):
    film = movies[0]
    RatingFactory(user=member, movie=film, score=3.5)
    page = client.get(reverse("movies:detail", args=[film.pk])).text
    (form,) = controls(page).forms
    assert [r["value"] for r in form["radios"]] == ["0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"]
    assert {r["name"] for r in form["radios"]} == {"score"}
    labels = [form["labels"][r["id"]].strip() for r in form["radios"]]
    assert labels[:3] == ["0.5 stars", "1 star", "1.5 stars"] and labels[-1] == "5 stars"
    assert [r["value"] for r in form["radios"] if "checked" in r] == ["3.5"]  # the current rating
    assert form["legend"].strip() == f"Your rating of {film.title}"
    assert '<fieldset class="star-rating"' in page
    halves = re.findall(r'class="star (star-left|star-right)"', page)
    assert halves == ["star-left", "star-right"] * 5  # each label draws one half of a star


def test_with_htmx_a_change_saves_and_refreshes_the_region_and_messages(client, member, movies):
    page = client.get(reverse("movies:detail", args=[movies[0].pk])).text
    attrs = controls(page).forms[0]["attrs"]
    assert attrs["hx-post"] == reverse("movies:rate") and attrs["hx-trigger"].startswith("change")
    assert attrs["hx-target"] == attrs["hx-select"] == "#movie" and attrs["hx-select-oob"] == "#messages"
    assert attrs["method"] == "post" and attrs["action"] == reverse("movies:rate")


def test_without_javascript_a_save_button_posts_the_form(client, member, movies):
    film = movies[0]
    page = client.get(reverse("movies:detail", args=[film.pk])).text
    buttons = controls(page).forms[0]["buttons"]
    assert [b["data-testid"] for b in buttons if b["noscript"]] == [f"rate-{film.pk}"]  # shown only without JS
    response = client.post(reverse("movies:rate"), {"movie": film.pk, "score": "4.5", "next": f"/movies/{film.pk}/"})
    assert response.status_code == 302 and Rating.objects.get(user=member, movie=film).score == 4.5


def test_clear_removes_the_rating_from_the_same_control(client, member, movies):
    film = movies[0]
    page = client.get(reverse("movies:detail", args=[film.pk])).text
    assert f'data-testid="clear-{film.pk}"' not in page  # nothing to clear yet

    RatingFactory(user=member, movie=film, score=2.0)
    page = client.get(reverse("movies:detail", args=[film.pk])).text
    clear = next(b for b in controls(page).forms[0]["buttons"] if b.get("data-testid") == f"clear-{film.pk}")
    assert not clear["noscript"]  # with and without JavaScript
    clear_form = re.search(rf'<form id="{clear["form"]}" method="post" action="([^"]+)"', page)
    assert clear_form and clear_form.group(1) == reverse("movies:rating_delete")
    assert f'hx-post="{reverse("movies:rating_delete")}"' in page.split(f'id="{clear["form"]}"')[1].split(">")[0]

    response = client.post(reverse("movies:rating_delete"), {"movie": film.pk, "next": f"/movies/{film.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/movies/{film.pk}/"
    assert not Rating.objects.filter(user=member, movie=film).exists()


def test_clearing_answers_api_callers_like_rating_does(client, member, movies):
    film = movies[0]
    client.post(reverse("movies:rate"), {"movie": film.pk, "score": "3"})
    cleared = client.post(reverse("movies:rating_delete"), {"movie": film.pk}, **JSON)
    assert cleared.status_code == 200 and cleared.json() == {
        "ok": True,
        "message": f"Your rating of {film} was removed.",
        "movie": film.pk,
        "score": None,
    }
    again = client.post(reverse("movies:rating_delete"), {"movie": film.pk}, **JSON)
    assert again.status_code == 404 and again.json() == {"ok": False, "error": f"You had not rated {film}."}


def test_every_page_that_rates_uses_the_control(client, member, movies):
    film = movies[0]
    onboarding = client.get(reverse("movies:home")).text
    assert "Rate at least" in onboarding
    for movie in movies[:5]:
        RatingFactory(user=member, movie=movie, score=3.0)
    pages = {
        "onboarding": onboarding,
        "recommendations": client.get(reverse("movies:home")).text,  # no model: the popular fallback, same cards
        "top rated": client.get(reverse("movies:top_rated")).text,
        "catalogue": client.get(reverse("movies:catalogue")).text,
        "movie page": client.get(reverse("movies:detail", args=[film.pk])).text,
        "my ratings": client.get(reverse("movies:my_ratings")).text,
    }
    for name, page in pages.items():
        found = controls(page)
        assert found.forms, name
        assert all(len(f["radios"]) == 10 and f["legend"] for f in found.forms), name
        assert 'name="score"' in page and "<select" not in page.split('class="rating-form"')[1][:2000], name
    assert "Picked for you" in pages["recommendations"]


def test_radio_ids_are_unique_even_when_a_movie_is_shown_twice(client, member, movies):
    film = movies[0]
    request = RequestFactory().get("/")
    request.user = member
    html = Template(
        "{% load movie_tags %}{% rating_form movie scores '#a' %}{% rating_form movie scores '#a' %}"
        "{% rating_form movie scores '#a' 'other' %}"
    ).render(Context({"movie": film, "scores": {film.pk: 4.0}, "request": request}))
    found = controls(html)
    assert len(found.forms) == 3 and all(len(f["radios"]) == 10 for f in found.forms)
    assert [i for i, n in Counter(found.ids).items() if n > 1] == []
    labels_for = re.findall(r'<label for="([^"]+)"', html)
    assert len(labels_for) == 30 and set(labels_for) <= set(found.ids)

    for page in (client.get(reverse("movies:home")).text, client.get(reverse("movies:catalogue")).text):
        assert [i for i, n in Counter(controls(page).ids).items() if n > 1] == []


def test_the_control_escapes_what_it_shows_and_carries_the_csrf_token(member):
    # Built as one string (movie_tags.rating_form), so nothing is escaped for it: every outside value is checked.
    film = MovieFactory(title='<script>x</script> & "Co"')
    request = RequestFactory().get("/?show=8&x=<b>")
    request.user = member
    template = Template("{% load movie_tags %}{% rating_form movie scores target %}")
    context = {"movie": film, "scores": {film.pk: 4.5}, "target": '#a"', "request": request, "csrf_token": "t<k>"}
    html = template.render(Context(context))
    assert "<script>" not in html and html.count("&lt;script&gt;x&lt;/script&gt; &amp; &quot;Co&quot;") == 2
    assert html.count('<input type="hidden" name="csrfmiddlewaretoken" value="t&lt;k&gt;">') == 2  # rate, clear
    assert html.count('<input type="hidden" name="next" value="/?show=8&amp;x=%3Cb%3E">') == 2
    assert html.count('hx-target="#a&quot;" hx-select="#a&quot;"') == 2
    assert f'<span class="star-value" data-testid="own-score-{film.pk}">4.5 / 5</span>' in html
    (form,) = controls(html).forms
    assert form["attrs"]["hx-target"] == '#a"' and form["legend"] == f"Your rating of {film.title}"

    without_token = template.render(Context({**context, "csrf_token": None, "scores": {}}))
    assert "csrfmiddlewaretoken" not in without_token and "Not rated" in without_token
    assert "star-clear" not in without_token and "-clear" not in without_token


def test_ids_stay_the_same_between_renders_so_htmx_keeps_the_focus(client, member, movies):
    first = controls(client.get(reverse("movies:catalogue")).text).ids
    assert first == controls(client.get(reverse("movies:catalogue")).text).ids


# ------------------------------------------------------------------------------------------- its stylesheet


def _hex_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_hex_luminance(a), _hex_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_stars_css_is_linked_and_its_colours_pass_wcag_aa_in_the_dark_theme(client):
    assert "/static/css/stars.css" in client.get(reverse("movies:home")).text
    site = (PROJECT_ROOT / "static/css/site.css").read_text()
    stars = (PROJECT_ROOT / "static/css/stars.css").read_text()
    variables = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", site.split("}")[0]))
    # Only the theme's variables: no colour of its own that could fall below AA.
    colours = set(re.findall(r"(?:color|outline|box-shadow)[^;]*?(var\(--[a-z-]+\)|#[0-9a-fA-F]{3,6})", stars))
    assert colours <= {"var(--accent)", "var(--muted)", "var(--text)"}, colours
    for background in (variables["panel"], variables["bg"]):  # cards and tables sit on one or the other
        assert contrast(variables["accent"], background) >= 4.5  # filled stars
        assert contrast(variables["muted"], background) >= 4.5  # empty stars, the legend and the value
        assert contrast(variables["text"], background) >= 3  # the focus ring (non-text contrast)
    assert ":focus-visible" in stars

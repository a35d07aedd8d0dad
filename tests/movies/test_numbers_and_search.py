"""Numbers that agree, search as you type and the catalogue's rough edges (issue 14, items 4, 6 and 7)."""

import datetime
import re

import pytest
from django.urls import reverse

from movies.models import Movie
from movies.selectors import damped_score, movie_search, rating_prior
from movies.services import movie_refresh_rating_stats
from movies.templatetags.movie_tags import release_date
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def few_and_many(settings):
    """'Lucky Few' has two 5-star ratings; 'Loved Classic' thirty ratings of 4.5; 'Fine Film' thirty of 3.5."""
    settings.RECOMMENDER_POPULAR_DAMPING = 20.0
    lucky, classic, fine = (MovieFactory(title=t) for t in ("Lucky Few", "Loved Classic", "Fine Film"))
    for _ in range(2):
        RatingFactory(movie=lucky, score=5.0)
    for _ in range(30):
        RatingFactory(movie=classic, score=4.5)
        RatingFactory(movie=fine, score=3.5)
    movie_refresh_rating_stats()
    return lucky, classic, fine


def card_scores(html: str) -> list[tuple[str, float]]:
    """(title, shown score) for each card, in page order."""
    cards = re.findall(r'<li class="card".*?</li>', html, flags=re.DOTALL)
    found = []
    for card in cards:
        title = re.search(r'<h2 class="card-title"><a href="[^"]+">([^<]+)</a>', card).group(1)
        score = re.search(r'class="score"[^>]*>★ ([0-9.]+)<', card).group(1)
        found.append((title, float(score)))
    return found


def test_best_rated_sorts_by_the_damped_score_the_cards_show(client, few_and_many):
    html = client.get(reverse("movies:catalogue"), {"sort": "best"}).text
    shown = card_scores(html)
    assert [title for title, _ in shown] == ["Loved Classic", "Fine Film", "Lucky Few"] or shown[0][
        0
    ] == "Loved Classic"
    scores = [score for _, score in shown]
    assert scores == sorted(scores, reverse=True)  # the numbers beside the titles are in order
    assert shown[0][0] == "Loved Classic"  # two 5-star ratings do not beat thirty of 4.5


def test_a_card_shows_the_same_score_wherever_it_appears(client, few_and_many, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    expected = damped_score(mean=5.0, count=2, prior=rating_prior())
    top = dict(card_scores(client.get(reverse("movies:top_rated")).text))
    catalogue = dict(card_scores(client.get(reverse("movies:catalogue"), {"q": "lucky"}).text))
    assert top["Lucky Few"] == catalogue["Lucky Few"] == round(expected, 1)
    assert "2 ratings" in client.get(reverse("movies:catalogue"), {"q": "lucky"}).text  # the count beside it


def test_the_movie_page_shows_the_score_and_its_own_average(client, few_and_many):
    lucky = few_and_many[0]
    page = client.get(reverse("movies:detail", args=[lucky.pk])).text
    score = re.search(r'data-testid="movie-score">★ ([0-9.]+)', page).group(1)
    average = re.search(r'data-testid="movie-average">★ ([0-9.]+) from 2 ratings', page).group(1)
    assert float(average) == 5.0 and float(score) < 5.0


def test_typed_words_put_the_best_title_matches_first():
    for title, count in (("Alien Nation", 50), ("Aliens", 80), ("Alien", 5), ("The Alien Hunter", 200)):
        Movie.objects.filter(pk=MovieFactory(title=title).pk).update(rating_count=count)
    titles = [m.title for m in movie_search(query="alien", sort="relevance")]
    assert titles[0] == "Alien"  # the exact title, although the least rated
    assert titles[1:3] == ["Aliens", "Alien Nation"]  # titles that start with the words, most rated first
    assert titles[3] == "The Alien Hunter"


def test_search_as_you_type_is_wired_and_still_a_plain_form(client):
    MovieFactory(title="Heat")
    page = client.get(reverse("movies:catalogue")).text
    form = re.search(r'<form method="get" class="filters".*?>', page, flags=re.DOTALL).group(0)
    assert 'hx-get="/movies/"' in form and "delay:300ms" in form and 'hx-target="#catalogue-results"' in form
    assert 'action="/movies/"' in form  # without JavaScript, the Search button submits it
    partial = client.get(reverse("movies:catalogue"), {"q": "heat"}, HTTP_HX_REQUEST="true").text
    assert 'id="catalogue-results"' in partial and "Heat" in partial


def test_a_long_search_is_answered_not_cut_short(client):
    MovieFactory(title="Heat")
    page = client.get(reverse("movies:catalogue")).text
    assert 'maxlength="200"' not in page  # the browser no longer cuts the words silently
    response = client.get(reverse("movies:catalogue"), {"q": "heat" * 125})
    assert response.status_code == 200
    assert "Search with at most 200 characters (this one has 500)" in response.text
    assert "1 movie" not in re.search(r'id="catalogue-results".*?</section>', response.text, flags=re.DOTALL).group(0)


def test_genres_with_nothing_to_list_get_no_chip(client, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    drama, unknown = GenreFactory(name="Drama"), GenreFactory(name="unknown")
    listed, unlisted = MovieFactory(), MovieFactory()
    listed.genres.add(drama)
    unlisted.genres.add(unknown)
    RatingFactory(movie=listed)
    movie_refresh_rating_stats()
    page = client.get(reverse("movies:top_rated")).text
    assert f"?genre={drama.pk}" in page and f"?genre={unknown.pk}" not in page


def test_a_placeholder_release_date_shows_only_the_year():
    assert release_date(datetime.date(1995, 1, 1)) == "1995"
    assert release_date(datetime.date(1995, 7, 14)) == "14 July 1995"
    assert release_date(None) == ""


def test_whole_star_data_gets_no_empty_half_star_rows(client):
    whole, halves = MovieFactory(), MovieFactory()
    RatingFactory(movie=whole, score=4.0)
    RatingFactory(movie=halves, score=3.5)
    whole_page = client.get(reverse("movies:detail", args=[whole.pk])).text
    halves_page = client.get(reverse("movies:detail", args=[halves.pk])).text
    assert ">4.0 ★<" in whole_page and ">4.5 ★<" not in whole_page
    assert ">4.5 ★<" in halves_page and ">0.5 ★<" in halves_page


def test_old_imdb_links_become_imdb_searches():
    movie = MovieFactory(title="Toy Story", year=1995, imdb_url="http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)")
    assert movie.imdb_link == "https://www.imdb.com/find/?q=Toy+Story+%281995%29&s=tt"
    movie.imdb_id = "tt0114709"
    assert movie.imdb_link == "https://www.imdb.com/title/tt0114709/"

"""The movie part of a card comes from the "cards" cache (issue 15, item 5); the member's own part never does."""

import pytest
from django.core.cache import caches
from django.urls import reverse

from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    caches["cards"].clear()
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    movie = MovieFactory(title="Card Classic")
    movie.genres.add(drama)
    RatingFactory(movie=movie, score=4.5)
    movie_refresh_rating_stats()
    yield movie, comedy
    caches["cards"].clear()


def _card(client, movie) -> str:
    page = client.get(reverse("movies:top_rated")).text
    start = page.index(f'data-movie="{movie.pk}"')
    return page[start : page.index("</li>", start)]


def test_a_cached_card_is_reused_until_its_statistics_change(client, settings, catalogue):
    settings.CARD_CACHE_SECONDS = 60
    movie, comedy = catalogue
    client.force_login(UserFactory())  # members never get the guest page cache: this is the card cache alone
    assert "Drama" in _card(client, movie) and "1 rating" in _card(client, movie)
    movie.genres.set([comedy])
    assert "Drama" in _card(client, movie)  # the same counts: from the cache, for at most CARD_CACHE_SECONDS
    RatingFactory(movie=movie, score=3.0)
    movie_refresh_rating_stats()
    card = _card(client, movie)
    assert "Comedy" in card and "Drama" not in card and "2 ratings" in card


def test_with_no_card_cache_a_change_shows_at_once(client, catalogue):
    movie, comedy = catalogue
    client.force_login(UserFactory())
    assert "Drama" in _card(client, movie)
    movie.genres.set([comedy])
    assert "Comedy" in _card(client, movie)


def test_each_members_own_rating_is_never_taken_from_the_cache(client, settings, catalogue):
    settings.CARD_CACHE_SECONDS = 60
    movie, _ = catalogue
    rater, other = UserFactory(), UserFactory()
    RatingFactory(movie=movie, user=rater, score=2.5)
    movie_refresh_rating_stats()
    client.force_login(rater)
    assert "2.5 / 5" in _card(client, movie)
    client.force_login(other)
    card = _card(client, movie)
    assert "Not rated" in card and "2.5 / 5" not in card


def test_a_movies_star_distribution_is_reused_until_its_statistics_change(client, settings, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.CARD_CACHE_SECONDS = 60
    movie, _ = catalogue
    page = reverse("movies:detail", args=[movie.pk])
    client.force_login(UserFactory())

    def distribution_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page).status_code == 200
        return sum("GROUP BY" in q["sql"] and "movies_rating" in q["sql"] for q in queries.captured_queries)

    assert distribution_queries() == 1
    assert distribution_queries() == 0  # the same statistics: from the cache
    RatingFactory(movie=movie, score=2.0)
    movie_refresh_rating_stats()
    assert distribution_queries() == 1
    assert "2 ratings" in client.get(page).text


def _genre_queries(read_cards) -> tuple[dict, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        movies = list(read_cards())
        names = {movie.pk: [genre.name for genre in movie.genres.all()] for movie in movies}
    return names, sum("movies_genre" in q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize("selector", ["movies_for_cards", "movie_search", "popular_movies"])
def test_cards_movies_leave_their_genres_to_an_uncached_head(settings, catalogue, selector):
    """With the card cache on, a cached head reads no genres: none are prefetched, and an uncached head reads its
    own; with the cache off, every card's genres come in one query. The same for every list of cards."""
    from movies import selectors

    movie, comedy = catalogue
    other = MovieFactory(title="Other")
    other.genres.add(comedy)
    RatingFactory(movie=other, score=3.0)
    movie_refresh_rating_stats()
    read_cards = {
        "movies_for_cards": lambda: selectors.movies_for_cards(movie_ids=[movie.pk, other.pk]).values(),
        "movie_search": lambda: selectors.movie_search(),
        "popular_movies": lambda: selectors.popular_movies(limit=5),
    }[selector]
    settings.CARD_CACHE_SECONDS = 0
    names, genre_queries = _genre_queries(read_cards)
    assert names == {movie.pk: ["Drama"], other.pk: ["Comedy"]} and genre_queries == 1
    settings.CARD_CACHE_SECONDS = 60
    names, genre_queries = _genre_queries(read_cards)
    assert names == {movie.pk: ["Drama"], other.pk: ["Comedy"]} and genre_queries == 2  # read on demand, per card


def test_my_ratings_page_reads_no_genres(client, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    movie, _ = catalogue
    member = UserFactory()
    RatingFactory(user=member, movie=movie, score=2.5)
    client.force_login(member)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("movies:my_ratings")).text
    assert "Card Classic" in page and f'data-testid="own-score-{movie.pk}">2.5 / 5' in page
    assert not any("movies_genre" in q["sql"] for q in queries.captured_queries)


def _filters(page: str) -> str:
    return page[page.index('<form method="get" class="filters"') : page.index("</form>", page.index('class="filters"'))]


def test_the_catalogues_filter_form_is_cached_per_parameters_and_shows_what_was_asked(client, settings, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, comedy = catalogue
    settings.CARD_CACHE_SECONDS = 60
    url = reverse("movies:catalogue")
    first = _filters(client.get(url, {"genre": comedy.pk, "sort": "best"}).text)
    with CaptureQueriesContext(connection) as queries:
        again = _filters(client.get(url, {"genre": comedy.pk, "sort": "best"}).text)
    assert again == first and f'<option value="{comedy.pk}" selected>Comedy</option>' in again
    assert '<option value="best" selected>' in again
    # The genre is validated (one query), the options are not read again to render the form.
    assert sum("movies_genre" in q["sql"] for q in queries.captured_queries) == 1
    other = _filters(client.get(url, {"q": "<b>classic", "year": "1870x"}).text)
    assert 'value="&lt;b&gt;classic"' in other and " selected>" not in other.replace('value="" selected>', "")
    assert "Enter a whole number." in other and "Enter a whole number." not in first

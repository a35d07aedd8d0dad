"""Guest pages from the cache (issue 15, item 5): same for every visitor, refreshed when the statistics change."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from movies.models import Movie
from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached_catalogue(settings):
    settings.GUEST_PAGE_CACHE_SECONDS = 60
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    drama = GenreFactory(name="Drama")
    movie = MovieFactory(title="Cached Classic")
    movie.genres.add(drama)
    RatingFactory(movie=movie, score=4.5)
    movie_refresh_rating_stats()
    return movie, drama


def test_a_guest_page_is_rendered_once_then_served_without_a_query(client, cached_catalogue, django_assert_num_queries):
    _, drama = cached_catalogue
    first = client.get(reverse("movies:top_rated"), {"genre": drama.pk})
    assert first.status_code == 200 and "Cached Classic" in first.text
    with django_assert_num_queries(0):
        again = client.get(reverse("movies:top_rated"), {"genre": drama.pk})
    assert again.status_code == 200 and again.content == first.content
    assert "Content-Security-Policy" in again  # the site's headers still go on a cached page


def test_each_page_and_genre_has_its_own_entry(client, cached_catalogue):
    _, drama = cached_catalogue
    home = client.get(reverse("movies:home")).text
    top = client.get(reverse("movies:top_rated")).text
    genre = client.get(reverse("movies:top_rated"), {"genre": drama.pk}).text
    assert 'aria-current="page">Home' in home and 'aria-current="page">Top rated' in top
    assert "Top-rated Drama movies" in genre and "Top-rated Drama movies" not in top


def test_new_statistics_refresh_every_guest_page(client, cached_catalogue):
    movie, _ = cached_catalogue
    client.get(reverse("movies:top_rated"))
    Movie.objects.filter(pk=movie.pk).update(title="Renamed Classic")
    assert "Cached Classic" in client.get(reverse("movies:top_rated")).text  # served from the cache
    movie_refresh_rating_stats()  # what an import ends with
    assert "Renamed Classic" in client.get(reverse("movies:top_rated")).text


def test_members_and_pending_messages_never_use_the_cache(client, cached_catalogue):
    client.get(reverse("movies:top_rated"))  # a guest fills the cache
    member = UserFactory(username="cinephile")
    client.force_login(member)
    page = client.get(reverse("movies:top_rated")).text
    assert "cinephile" in page  # rendered for the member, not the guest's copy
    client.logout()
    assert "cinephile" not in client.get(reverse("movies:top_rated")).text  # nor was the member's page stored
    bad_genre = client.get(reverse("movies:top_rated"), {"genre": "999999"})
    assert "There is no such genre" in bad_genre.text
    assert "There is no such genre" not in client.get(reverse("movies:top_rated")).text


def test_the_cache_can_be_turned_off(client, cached_catalogue, settings):
    settings.GUEST_PAGE_CACHE_SECONDS = 0
    client.get(reverse("movies:top_rated"))
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("movies:top_rated"))
    assert len(queries) > 0  # rendered again


def test_a_guests_movie_page_is_cached_a_members_is_not(client, cached_catalogue, django_assert_num_queries):
    movie, _ = cached_catalogue
    url = reverse("movies:detail", args=[movie.pk])
    first = client.get(url)
    with django_assert_num_queries(0):
        assert client.get(url).content == first.content
    client.force_login(UserFactory(username="moviegoer"))
    page = client.get(url).text
    assert "moviegoer" in page and "<legend>Your rating" in page  # their own page, with the rating control
    assert client.get(reverse("movies:detail", args=[999_999])).status_code == 404


def test_a_new_model_in_service_refreshes_guest_pages():
    from django.core.cache import cache

    from movies.page_cache import GENERATION_KEY, guest_pages_invalidate

    cache.set(GENERATION_KEY, 5, None)
    guest_pages_invalidate()
    assert cache.get(GENERATION_KEY) == 6

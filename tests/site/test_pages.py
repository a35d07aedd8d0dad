import pytest
from django.urls import reverse

from movies.services import movie_refresh_rating_stats
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


def test_home_page_with_an_empty_catalogue_explains_how_to_load_it(client):
    response = client.get(reverse("movies:home"))
    assert response.status_code == 200
    assert "import_movielens" in response.text


def test_home_page_lists_the_most_rated_movies(client, django_assert_max_num_queries):
    drama = GenreFactory(name="Drama")
    popular, obscure = MovieFactory(title="Popular One"), MovieFactory(title="Obscure One")
    popular.genres.add(drama)
    for _ in range(3):
        RatingFactory(movie=popular, score=4.5)
    RatingFactory(movie=obscure, score=2.0)
    movie_refresh_rating_stats()

    with django_assert_max_num_queries(8):
        response = client.get(reverse("movies:home"))

    text = response.text
    assert text.index("Popular One") < text.index("Obscure One")
    assert "Drama" in text and "3 ratings" in text


def test_unknown_page_gets_the_styled_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.text and "site.css" in response.text

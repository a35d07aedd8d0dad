import pytest
from django.urls import reverse

from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def catalogue():
    drama = GenreFactory(name="Drama")
    movies = [MovieFactory(title=f"Film {i}", year=1990 + i) for i in range(30)]
    for movie in movies:
        movie.genres.add(drama)
    users = [UserFactory() for _ in range(5)]
    for user in users:
        for movie in movies:
            RatingFactory(user=user, movie=movie, score=3.5)
    movie_refresh_rating_stats()
    return movies


def test_movie_list_shows_counts_without_a_query_per_row(staff_client, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("admin:movies_movie_changelist"))
    assert response.status_code == 200
    assert "Film 3" in response.text and "3.50" in response.text


def test_movie_search_and_filters(staff_client, catalogue):
    GenreFactory(name="Comedy")
    response = staff_client.get(reverse("admin:movies_movie_changelist"), {"q": "Film 12"})
    assert "Film 12" in response.text and "Film 13" not in response.text
    response = staff_client.get(reverse("admin:movies_movie_changelist"), {"decade": "2010"})
    assert "Film 25" in response.text and "Film 5<" not in response.text
    drama = catalogue[0].genres.get()
    response = staff_client.get(reverse("admin:movies_movie_changelist"), {"genres__id__exact": drama.pk})
    assert response.status_code == 200 and "Film 0" in response.text


def test_rating_list_is_bounded(staff_client, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse("admin:movies_rating_changelist"))
    assert response.status_code == 200
    assert response.text.count("Film ") >= 100  # one page of the 150 ratings, names joined in one query


def test_rating_change_form_uses_autocomplete(staff_client, catalogue):
    response = staff_client.get(reverse("admin:movies_rating_add"))
    assert response.status_code == 200
    assert "admin-autocomplete" in response.text
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "movies", "model_name": "rating", "field_name": "movie", "term": "Film 2"},
    )
    assert response.status_code == 200 and "Film 2" in response.text


def test_user_admin_shows_demographics(staff_client):
    UserFactory(username="movielens_7", movielens_id=7, age=33, occupation="writer")
    response = staff_client.get(reverse("admin:accounts_user_changelist"), {"q": "movielens_7"})
    assert "writer" in response.text and "33" in response.text


def test_admin_requires_staff(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:movies_movie_changelist"))
    assert response.status_code == 302 and "login" in response["Location"]

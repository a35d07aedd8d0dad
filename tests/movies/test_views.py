import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import format_html

from movies import pages
from movies.models import NotInterested, Rating, WatchlistItem
from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def rated_catalogue(settings):
    """Two genres; 'Crowd Pleaser' is loved by many, 'One Hit' has a single 5-star rating."""
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 3
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    crowd, one_hit, dull, laugh = (
        MovieFactory(title="Crowd Pleaser"),
        MovieFactory(title="One Hit"),
        MovieFactory(title="Dull Drama"),
        MovieFactory(title="Big Laugh"),
    )
    crowd.genres.add(drama)
    dull.genres.add(drama)
    one_hit.genres.add(drama)
    laugh.genres.add(comedy)
    RatingFactory(movie=one_hit, score=5.0)
    for _ in range(6):
        RatingFactory(movie=crowd, score=4.5)
        RatingFactory(movie=dull, score=2.0)
        RatingFactory(movie=laugh, score=4.0)
    movie_refresh_rating_stats()
    return {"drama": drama, "comedy": comedy, "crowd": crowd, "one_hit": one_hit, "dull": dull, "laugh": laugh}


@pytest.fixture
def member(client):
    user = UserFactory(username="member")
    client.force_login(user)
    return user


# ------------------------------------------------------------------------------------------- guest


def test_guest_sees_top_rated_by_damped_average(client, rated_catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = client.get(reverse("movies:home"))
    text = response.text
    assert response.status_code == 200
    assert text.index("Crowd Pleaser") < text.index("Big Laugh") < text.index("Dull Drama")
    assert "One Hit" not in text  # one rating is not enough
    assert "All genres" in text and "Comedy" in text and "6 ratings" in text


def test_guest_picks_a_genre(client, rated_catalogue):
    response = client.get(reverse("movies:top_rated"), {"genre": rated_catalogue["comedy"].pk})
    assert "Big Laugh" in response.text and "Crowd Pleaser" not in response.text
    response = client.get(reverse("movies:top_rated"), {"genre": "999999"})
    assert "no such genre" in response.text and "Crowd Pleaser" in response.text


def test_show_more_adds_four_at_a_time(client, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    movies = [MovieFactory(title=f"Film {i:02d}") for i in range(10)]
    for i, movie in enumerate(movies):
        RatingFactory(movie=movie, score=5.0 - i * 0.5)
    movie_refresh_rating_stats()
    first = client.get(reverse("movies:top_rated"))
    assert first.text.count('class="card"') == 4 and "show=8" in first.text
    more = client.get(reverse("movies:top_rated"), {"show": 8})
    assert more.text.count('class="card"') == 8
    assert client.get(reverse("movies:top_rated"), {"show": "lots"}).text.count('class="card"') == 4


# ------------------------------------------------------------------------------------------- onboarding and recommendations


def test_a_newcomer_is_asked_to_rate_well_known_movies_first(client, member, rated_catalogue):
    response = client.get(reverse("movies:home"))
    assert "Rate at least 5 movies" in response.text and "0 of 5 rated" in response.text
    assert "Crowd Pleaser" in response.text  # the most rated come first
    for movie in ("crowd", "dull", "laugh", "one_hit"):
        client.post(reverse("movies:rate"), {"movie": rated_catalogue[movie].pk, "score": "4"})
    assert "4 of 5 rated" in client.get(reverse("movies:home")).text


def test_without_a_model_popular_movies_are_clearly_marked(client, member, rated_catalogue):
    for movie in [MovieFactory() for _ in range(5)]:
        RatingFactory(user=member, movie=movie, score=3.0)
    response = client.get(reverse("movies:home"))
    assert "not ready yet" in response.text and "Crowd Pleaser" in response.text


def test_the_personal_home_page_comes_from_the_app_that_registers_it(client, member, rated_catalogue, monkeypatch):
    for movie in [MovieFactory() for _ in range(5)]:
        RatingFactory(user=member, movie=movie, score=3.0)
    assert "Picked for you" in client.get(reverse("movies:home")).text  # the recommender's, registered at start-up

    monkeypatch.setattr(pages, "_personal_home", None)  # a site without the recommender
    response = client.get(reverse("movies:home"))
    assert response.status_code == 200 and "All genres" in response.text and "Crowd Pleaser" in response.text


def test_not_interested_and_watchlist_hide_movies_from_recommendations(client, member, rated_catalogue):
    for movie in [MovieFactory() for _ in range(5)]:
        RatingFactory(user=member, movie=movie, score=3.0)
    crowd, laugh = rated_catalogue["crowd"], rated_catalogue["laugh"]
    client.post(reverse("movies:not_interested"), {"movie": crowd.pk})
    client.post(reverse("movies:watchlist_toggle"), {"movie": laugh.pk})
    recommended = client.get(reverse("movies:home")).text.split('<section id="recommendations">')[1]
    assert "Crowd Pleaser" not in recommended and "Big Laugh" not in recommended and "Dull Drama" in recommended
    assert "Big Laugh" in client.get(reverse("movies:watchlist")).text

    client.post(reverse("movies:rate"), {"movie": laugh.pk, "score": "4.5"})
    assert not WatchlistItem.objects.filter(user=member).exists()  # rating it takes it off the watchlist
    client.post(reverse("movies:not_interested"), {"movie": crowd.pk, "action": "remove"})
    assert not NotInterested.objects.exists()


# ------------------------------------------------------------------------------------------- rating


def test_rating_saves_and_redirects_back(client, member, rated_catalogue):
    crowd = rated_catalogue["crowd"]
    response = client.post(reverse("movies:rate"), {"movie": crowd.pk, "score": "3.5", "next": f"/movies/{crowd.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/movies/{crowd.pk}/"
    assert Rating.objects.get(user=member, movie=crowd).score == 3.5
    crowd.refresh_from_db()
    assert crowd.rating_count == 7
    page = client.get(f"/movies/{crowd.pk}/")
    assert "You rated it" in page.text and "3.5" in page.text

    client.post(reverse("movies:rate"), {"movie": crowd.pk, "score": "5"})
    assert Rating.objects.get(user=member, movie=crowd).score == 5.0 and Rating.objects.filter(user=member).count() == 1


def test_rating_never_redirects_off_site(client, member, rated_catalogue):
    response = client.post(
        reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("movies:home")


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("6", "not a rating"),
        ("0", "not a rating"),
        ("4.3", "not a rating"),
        ("-1", "not a rating"),
        ("abc", "not a number"),
        ("", "Choose a rating"),
        ("nan", "not a rating"),
    ],
)
def test_bad_scores_store_nothing_and_say_why(client, member, rated_catalogue, score, message):
    before = Rating.objects.count()
    api = client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": score}, **JSON)
    assert api.status_code == 400 and message in api.json()["error"]
    page = client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": score}, follow=True)
    assert message in page.text
    assert Rating.objects.count() == before


def test_unknown_movie_is_a_clear_400(client, member):
    response = client.post(reverse("movies:rate"), {"movie": 987654, "score": "4"}, **JSON)
    assert response.status_code == 400 and "no such movie" in response.json()["error"]
    assert not Rating.objects.exists()


def test_anonymous_rating_is_refused(client, rated_catalogue):
    api = client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4"}, **JSON)
    assert api.status_code == 401 and "Log in" in api.json()["error"]
    page = client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4"})
    assert page.status_code == 302 and page["Location"].startswith(reverse("accounts:login"))
    assert Rating.objects.count() == 19


def test_rating_needs_post_and_csrf(member, rated_catalogue):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4"}).status_code == 403
    assert strict.get(reverse("movies:rate")).status_code == 405
    assert not Rating.objects.filter(user=member).exists()


def test_json_success(client, member, rated_catalogue):
    response = client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4.5"}, **JSON)
    assert response.status_code == 200 and response.json() == {
        "ok": True,
        "message": "You rated Crowd Pleaser (1999) 4.5 stars.",
        "movie": rated_catalogue["crowd"].pk,
        "score": 4.5,
    }


def test_only_the_owner_changes_their_ratings(client, member, rated_catalogue):
    someone_else = Rating.objects.exclude(user=member).first()
    original = someone_else.score
    client.post(reverse("movies:rate"), {"movie": someone_else.movie_id, "score": "1", "user": someone_else.user_id})
    assert Rating.objects.get(user=member).score == 1.0  # the member's own rating was made instead
    client.post(reverse("movies:rating_delete"), {"movie": someone_else.movie_id, "user": someone_else.user_id})
    assert not Rating.objects.filter(user=member).exists()
    someone_else.refresh_from_db()
    assert someone_else.score == original


# ------------------------------------------------------------------------------------------- my pages


def test_my_ratings_change_and_delete(client, member, rated_catalogue):
    crowd = rated_catalogue["crowd"]
    client.post(reverse("movies:rate"), {"movie": crowd.pk, "score": "2"})
    page = client.get(reverse("movies:my_ratings"))
    assert "Crowd Pleaser" in page.text and 'name="score" value="2" checked' in page.text
    response = client.post(reverse("movies:rating_delete"), {"movie": crowd.pk}, follow=True)
    assert "was removed" in response.text and not Rating.objects.filter(user=member).exists()
    again = client.post(reverse("movies:rating_delete"), {"movie": crowd.pk}, **JSON)
    assert again.status_code == 404


def test_about_my_ratings(client, member, rated_catalogue):
    for movie, score in (("crowd", "5"), ("dull", "4"), ("laugh", "1")):
        client.post(reverse("movies:rate"), {"movie": rated_catalogue[movie].pk, "score": score})
    page = client.get(reverse("movies:about_my_ratings"))
    assert '<strong data-testid="rating-total">3</strong>' in page.text and "3.33" in page.text
    assert page.text.index(">Drama<") < page.text.index(">Comedy<")  # two liked dramas come first
    assert "2 liked of 2" in page.text


def test_watchlist_refuses_a_rated_movie(client, member, rated_catalogue):
    client.post(reverse("movies:rate"), {"movie": rated_catalogue["crowd"].pk, "score": "4"})
    response = client.post(reverse("movies:watchlist_toggle"), {"movie": rated_catalogue["crowd"].pk}, **JSON)
    assert response.status_code == 400 and "already rated" in response.json()["error"]


@pytest.mark.parametrize(
    "name", ["movies:my_ratings", "movies:about_my_ratings", "movies:watchlist", "recommender:history"]
)
def test_personal_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


# ------------------------------------------------------------------------------------------- catalogue


def test_catalogue_search_is_case_and_accent_insensitive(client, db):
    MovieFactory(title="Amélie")
    MovieFactory(title="Les Misérables")
    MovieFactory(title="Heat")
    assert "Amélie" in client.get(reverse("movies:catalogue"), {"q": "AMELIE"}).text
    response = client.get(reverse("movies:catalogue"), {"q": "miserables"})
    assert "Les Misérables" in response.text and "Heat" not in response.text


def test_catalogue_filters_and_pagination(client, rated_catalogue, django_assert_max_num_queries):
    for i in range(30):
        MovieFactory(title=f"Old {i}", year=1950)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("movies:catalogue"), {"year": 1950, "sort": "title"})
    assert "30 movies" in response.text and "Page 1 of 2" in response.text
    assert "page=2" in response.text and "year=1950" in response.text
    response = client.get(reverse("movies:catalogue"), {"genre": rated_catalogue["comedy"].pk})
    assert "Big Laugh" in response.text and "Crowd Pleaser" not in response.text
    bad = client.get(reverse("movies:catalogue"), {"year": "soon", "genre": "x"})
    assert bad.status_code == 200 and "Enter a whole number" in bad.text


def test_movie_page(client, rated_catalogue):
    crowd = rated_catalogue["crowd"]
    crowd.imdb_id = "tt0111161"
    crowd.save()
    response = client.get(reverse("movies:detail", args=[crowd.pk]))
    assert response.status_code == 200
    assert "https://www.imdb.com/title/tt0111161/" in response.text and "Drama" in response.text
    assert "4.5 ★" in response.text and "Log in" in response.text
    assert client.get(reverse("movies:detail", args=[999999])).status_code == 404


def test_movie_page_sections_come_from_the_apps_that_register_them(client, rated_catalogue, monkeypatch):
    crowd = rated_catalogue["crowd"]
    monkeypatch.setattr(pages, "_movie_sections", {})
    plain = client.get(reverse("movies:detail", args=[crowd.pk]))
    assert plain.status_code == 200 and "How people rated it" in plain.text

    pages.movie_section_register(
        "extra", lambda request, movie: format_html("<section id=extra>More about {}</section>", movie.title)
    )
    pages.movie_section_register("nothing", lambda request, movie: "")
    text = client.get(reverse("movies:detail", args=[crowd.pk])).text
    assert "<section id=extra>More about Crowd Pleaser</section>" in text

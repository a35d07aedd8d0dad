"""The recommender's pages: the personal home page at "/", the recommendation history and the POST that records it,
and the movie page's "Similar movies"."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recommender.ml import vae
from recommender.models import RecommendationLog
from recommender.services import model_version_activate, model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY
from tests.movies.factories import RatingFactory
from tests.recommender.fakes import FakeRecommender, rate, table_from

pytestmark = pytest.mark.django_db
RECORD = "/me/history/shown/"  # recommender:history_record
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def shown_ids(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li class="card" data-movie="(\d+)"', page)]


def recorder_ids(page: str) -> list[int]:
    form = page.split('data-testid="history-recorder"')[1].split("</form>")[0]
    return [int(pk) for pk in re.findall(r'name="movie" value="(\d+)"', form)]


@pytest.fixture
def member(fake_model, client):
    """Past onboarding, served a fake model that recommends columns 4-11 in that order."""
    movies = fake_model(FakeRecommender(scores=[0, 0, 0, 0, 12, 11, 10, 9, 8, 7, 6, 5], stars=[4.0] * 12))
    user = UserFactory(username="member")
    rate(user, movies, {0: 4.0, 1: 4.5, 2: 3.0, 3: 5.0})
    RatingFactory(user=user, score=4.0)  # a fifth rating, of a movie the model does not know
    client.force_login(user)
    return {"user": user, "movies": movies}


def test_recommendations_page_with_a_trained_model(
    client, two_taste_catalogue, django_assert_max_num_queries, shared_training
):
    model_version_activate(
        version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 30, "patience": 30}))
    )
    movies = two_taste_catalogue["movies"]
    user = UserFactory(username="fan")
    for movie in movies[:6]:
        RatingFactory(user=user, movie=movie, score=5.0)
    client.force_login(user)
    client.get(reverse("movies:home"))  # loads the model once

    with django_assert_max_num_queries(14):
        response = client.get(reverse("movies:home"))

    assert response.status_code == 200 and "Picked for you" in response.text
    assert (
        response.text.count('class="card"') == 4 and "rate it" in response.text and "Because you rated" in response.text
    )
    assert response.text.count("Movie 0") + response.text.count("Movie 1") >= 3  # the fan's group: movies 0-14
    assert not RecommendationLog.objects.exists()  # a GET records nothing

    # The page's htmx POST records what it showed, with the model's predictions and version.
    recorded = client.post(RECORD, {"movie": recorder_ids(response.text)})
    assert recorded.status_code == 200 and recorded.json() == {"ok": True, "recorded": 4}
    assert RecommendationLog.objects.filter(user=user, source="model", model_version__status="active").count() == 4

    history = client.get(reverse("recommender:history"))
    assert history.text.count("<tr>") == 5  # header + the four recommended


def test_a_get_of_the_personal_home_page_writes_nothing(client, member):
    client.get(reverse("movies:home"))  # the first request of a session may refresh things
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("movies:home"), {"show": 8})
    assert page.status_code == 200 and len(shown_ids(page.text)) == 8
    assert [q["sql"] for q in queries.captured_queries if WRITES.match(q["sql"])] == []
    assert not RecommendationLog.objects.exists()


def test_the_page_posts_what_it_shows_and_that_is_recorded(client, member):
    page = client.get(reverse("movies:home"), {"show": 8}).text
    assert 'hx-trigger="load"' in page and f'hx-post="{RECORD}"' in page
    assert recorder_ids(page) == shown_ids(page)

    response = client.post(RECORD, {"movie": recorder_ids(page)})

    assert response.status_code == 200 and response.json() == {"ok": True, "recorded": 8}
    entries = RecommendationLog.objects.filter(user=member["user"])
    assert sorted(entries.values_list("movie_id", flat=True)) == sorted(shown_ids(page))
    # What the server recommends is recorded, never anything the client says about it.
    assert set(entries.values_list("source", "predicted_rating")) == {("model", 4.0)}
    first_seen = entries.get(movie=member["movies"][4]).first_shown_at

    again = client.post(RECORD, {"movie": recorder_ids(page)[:4]})  # seen again: one row per movie, updated
    assert again.json()["recorded"] == 4 and entries.count() == 8
    entry = entries.get(movie=member["movies"][4])
    assert entry.first_shown_at == first_seen and entry.last_shown_at > first_seen


@pytest.mark.parametrize(
    ("movies", "message"),
    [
        ([], "No movies were sent"),
        (["abc"], "whole numbers"),
        (["1.5"], "whole numbers"),
        ([str(i) for i in range(49)], "at most 48"),
    ],
)
def test_malformed_input_is_a_clear_400(client, member, movies, message):
    response = client.post(RECORD, {"movie": movies})
    assert response.status_code == 400 and message in response.json()["error"] and not response.json()["ok"]
    assert not RecommendationLog.objects.exists()


def test_only_movies_recommended_to_this_member_now_are_recorded(client, member):
    movies = member["movies"]
    rated = movies[0].pk  # rated by the member: never recommended
    later = movies[10].pk  # recommended, but not among the first four shown
    twice = movies[4].pk
    for sent, reason in (
        ([twice, rated], "Not among your current recommendations"),
        ([later], "Not among your current recommendations"),
        ([987654], "movie 987654"),
        ([twice, twice], "twice"),
    ):
        response = client.post(RECORD, {"movie": sent})
        assert response.status_code == 400 and reason in response.json()["error"], sent
    assert not RecommendationLog.objects.exists()  # all or nothing


def test_only_the_owner_records_their_history(client, member):
    """The user is the session's: a `user` field is ignored, and another member's recommendations do not count."""
    other = UserFactory(username="other")
    ids = recorder_ids(client.get(reverse("movies:home")).text)
    client.post(RECORD, {"movie": ids, "user": other.pk})
    assert set(RecommendationLog.objects.values_list("user", flat=True)) == {member["user"].pk}

    newcomer = Client()
    newcomer.force_login(UserFactory(username="newcomer"))  # not past onboarding: nothing is recommended to them
    response = newcomer.post(RECORD, {"movie": ids})
    assert response.status_code == 400 and "rated 5 movies" in response.json()["error"]
    assert not RecommendationLog.objects.filter(user__username="newcomer").exists()


def test_anonymous_visitors_cannot_record(client):
    response = client.post(RECORD, {"movie": [1]})
    assert response.status_code == 403 and "Log in" in response.json()["error"]
    assert not RecommendationLog.objects.exists()


def test_recording_needs_post_and_csrf(member):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member["user"])
    ids = recorder_ids(strict.get(reverse("movies:home")).text)
    assert strict.post(RECORD, {"movie": ids}).status_code == 403  # no CSRF token
    assert strict.get(RECORD).status_code == 405
    assert not RecommendationLog.objects.exists()


def test_history_needs_a_login(client):
    response = client.get(reverse("recommender:history"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert (reverse("recommender:history"), reverse("recommender:history_record")) == ("/me/history/", RECORD)


def test_the_movie_page_shows_the_models_similar_movies(client, fake_model):
    table = table_from({(0, 3): 0.9, (0, 7): 0.5}, n_items=12)
    movies = fake_model(FakeRecommender(scores=[0] * 12, stars=[3.0] * 12, table=table))
    page = client.get(reverse("movies:detail", args=[movies[0].pk])).text
    similar = page.split('data-testid="similar-movies"')[1].split("</section>")[0]
    assert "Similar movies" in similar and similar.index("Fake 03") < similar.index("Fake 07")
    assert "Similar movies" not in client.get(reverse("movies:detail", args=[movies[5].pk])).text  # none: no section

import datetime
import io
import logging
import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from movies.models import Movie, Rating
from movies.pages import PAGE_STEP
from movies.selectors import popular_movies
from movies.services import movie_refresh_rating_stats
from recommender import artifacts, recommendations
from recommender.ml import vae
from recommender.models import ModelVersion
from recommender.recommendations import (
    SOURCE_MODEL,
    SOURCE_POPULAR,
    personal_recommendations,
    recommendations_for_ratings,
    recommendations_for_user,
    registry,
    similar_movies,
)
from recommender.services import model_version_activate, model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY
from tests.movies.factories import MovieFactory, RatingFactory
from tests.recommender.fakes import FakeRecommender, rate, table_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def active_model(two_taste_catalogue, shared_training):
    return model_version_activate(
        version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 30, "patience": 30}))
    )


def group_share(recommended, group) -> float:
    return sum(1 for r in recommended if r.movie.pk in group) / len(recommended)


def test_recommendations_follow_the_users_taste(active_model, two_taste_catalogue, django_assert_max_num_queries):
    movies = two_taste_catalogue["movies"]
    group_a, group_b = {m.pk for m in movies[:15]}, {m.pk for m in movies[15:]}
    fan_of_a = UserFactory(username="new-fan-a")
    for movie in movies[:5]:
        RatingFactory(user=fan_of_a, movie=movie, score=5.0)

    registry.current()  # load once; what follows is the per-request cost
    with django_assert_max_num_queries(4):
        recommended = recommendations_for_user(user=fan_of_a, limit=5)

    assert len(recommended) == 5 and all(r.source == SOURCE_MODEL for r in recommended)
    assert not {r.movie.pk for r in recommended} & {m.pk for m in movies[:5]}  # rated movies excluded
    assert group_share(recommended, group_a) >= 0.8
    assert all(0.5 <= r.predicted_rating <= 5.0 for r in recommended)
    assert recommended == sorted(recommended, key=lambda r: -r.score)
    assert all(r.because is None or r.because.pk in {m.pk for m in movies[:5]} for r in recommended)
    assert any(r.because is not None for r in recommended)

    # A user's newest ratings change the list at once, without retraining.
    for movie in movies[15:25]:
        RatingFactory(user=fan_of_a, movie=movie, score=5.0)
    for rating in Rating.objects.filter(user=fan_of_a, movie__in=movies[:5]):
        rating.score = 0.5
        rating.save()
    assert group_share(recommendations_for_user(user=fan_of_a, limit=5), group_b) >= 0.6


def test_anonymous_ratings_and_exclusions(active_model, two_taste_catalogue):
    movies = two_taste_catalogue["movies"]
    hidden = movies[20]
    recommended = recommendations_for_ratings(
        ratings={movies[16].pk: 5.0, movies[17].pk: 4.5}, limit=10, exclude_movie_ids=[hidden.pk]
    )
    picked = {r.movie.pk for r in recommended}
    assert len(recommended) == 10 and hidden.pk not in picked and movies[16].pk not in picked


def test_cold_start_gets_popular_movies_marked_as_such(active_model, two_taste_catalogue, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    recommended = recommendations_for_user(user=UserFactory(username="newcomer"), limit=4)
    assert len(recommended) == 4 and all(r.source == SOURCE_POPULAR and r.predicted_rating is None for r in recommended)


def test_without_a_model_popular_movies_are_served(two_taste_catalogue, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    recommended = recommendations_for_ratings(ratings={two_taste_catalogue["movies"][0].pk: 5.0}, limit=3)
    assert [r.source for r in recommended] == [SOURCE_POPULAR] * 3
    assert two_taste_catalogue["movies"][0].pk not in {r.movie.pk for r in recommended}


def test_popular_uses_a_damped_average(db, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    settings.RECOMMENDER_POPULAR_DAMPING = 10
    one_perfect, well_loved, disliked = (
        MovieFactory(title="One perfect rating"),
        MovieFactory(title="Well loved"),
        MovieFactory(),
    )
    RatingFactory(movie=one_perfect, score=5.0)
    for _ in range(40):
        RatingFactory(movie=well_loved, score=4.5)
        RatingFactory(movie=disliked, score=2.0)
    movie_refresh_rating_stats()
    assert [m.title for m in popular_movies(limit=2)] == ["Well loved", "One perfect rating"]
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 5
    assert one_perfect not in list(popular_movies(limit=3))


def test_similar_movies_come_from_the_same_taste_group(active_model, two_taste_catalogue):
    movies = two_taste_catalogue["movies"]
    similar = similar_movies(movie=movies[3], limit=5)
    assert len(similar) == 5 and movies[3] not in [m for m, _ in similar]
    assert sum(1 for m, _ in similar if m.pk in {x.pk for x in movies[:15]}) >= 4
    assert similar_movies(movie=MovieFactory(), limit=5) == []  # a movie the model never saw


def test_processes_switch_to_a_newly_active_version(active_model, two_taste_catalogue):
    assert registry.current().version_id == active_model.pk
    newer = model_version_activate(
        version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 1}))
    )
    assert registry.current().version_id == newer.pk


def test_version_checks_are_rate_limited(active_model, two_taste_catalogue, django_assert_num_queries):
    registry.check_seconds = 3600
    registry.current()
    with django_assert_num_queries(0):
        for _ in range(20):
            assert registry.current().version_id == active_model.pk


def test_a_corrupt_active_model_is_taken_out_of_service_and_logged(active_model, two_taste_catalogue, caplog, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    corrupt_serving_weights(active_model)

    with caplog.at_level(logging.ERROR, logger="recommender"):
        recommended = recommendations_for_ratings(ratings={two_taste_catalogue["movies"][0].pk: 5.0}, limit=3)

    assert [r.source for r in recommended] == [SOURCE_POPULAR] * 3  # no earlier version to fall back on
    active_model.refresh_from_db()
    assert active_model.status == ModelVersion.Status.FAILED and "corrupt" in active_model.error
    assert "taken out of service" in active_model.error and not ModelVersion.objects.filter(status="active").exists()
    assert "corrupt" in caplog.text and f"Model version {active_model.pk} taken out of service" in caplog.text


def test_a_corrupt_active_model_gives_way_to_the_last_good_version(active_model, two_taste_catalogue):
    newer = model_version_activate(
        version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 1}))
    )
    corrupt_serving_weights(newer)
    registry.reset()  # a process starting after the files broke

    recommended = recommendations_for_ratings(ratings={two_taste_catalogue["movies"][0].pk: 5.0}, limit=3)

    assert [r.source for r in recommended] == [SOURCE_MODEL] * 3 and registry.current().version_id == active_model.pk
    newer.refresh_from_db()
    active_model.refresh_from_db()
    assert newer.status == ModelVersion.Status.FAILED and "corrupt" in newer.error
    assert active_model.status == ModelVersion.Status.ACTIVE


def test_storage_that_cannot_be_read_for_a_moment_changes_nothing(
    active_model, two_taste_catalogue, monkeypatch, settings
):
    def unreachable(*args, **kwargs):
        raise ConnectionResetError("storage unreachable")

    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    registry.reset()
    monkeypatch.setattr(default_storage, "open", unreachable)
    recommended = recommendations_for_ratings(ratings={two_taste_catalogue["movies"][0].pk: 5.0}, limit=3)
    assert {r.source for r in recommended} == {SOURCE_POPULAR}
    active_model.refresh_from_db()
    assert active_model.status == ModelVersion.Status.ACTIVE  # not marked broken for a passing fault


def corrupt_serving_weights(version: ModelVersion) -> None:
    path = version.artifact(artifacts.SERVING_WEIGHTS)
    default_storage.delete(path)
    default_storage.save(path, io.BytesIO(b"not the weights"))


def test_a_movie_deleted_after_training_is_skipped(active_model, two_taste_catalogue):
    movies = two_taste_catalogue["movies"]
    before = recommendations_for_ratings(ratings={movies[0].pk: 5.0}, limit=3)
    Movie.objects.filter(pk=before[0].movie.pk).delete()
    after = recommendations_for_ratings(ratings={movies[0].pk: 5.0}, limit=3)
    assert before[0].movie.pk not in {r.movie.pk for r in after}


def test_snapshot_excludes_nothing_it_reports(two_taste_catalogue):
    from recommender.selectors import rating_snapshot

    user = two_taste_catalogue["users"][0]
    RatingFactory(
        user=user, movie=MovieFactory(), score=3.0, rated_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    )
    snapshot = rating_snapshot()
    assert snapshot.matrix.nnz == 601 and snapshot.newest_rated_at.year == 2030
    assert snapshot.matrix.shape == (60, 31)


def test_postgresql_reads_the_snapshot_by_binary_copy_with_the_same_result(two_taste_catalogue):
    from django.db import connection
    from django.db.models import Max

    from movies.models import Rating
    from recommender.selectors import _rating_arrays_by_copy, _rating_arrays_by_query

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's COPY path; CI runs the suite on PostgreSQL too")
    watermark = Rating.objects.aggregate(newest=Max("rated_at"))["newest"]
    user = two_taste_catalogue["users"][0]
    RatingFactory(user=user, movie=MovieFactory(), score=0.5, rated_at=watermark + datetime.timedelta(seconds=1))

    by_copy, by_query = _rating_arrays_by_copy(watermark), _rating_arrays_by_query(watermark)

    def triples(arrays):
        return sorted(zip(*(a.tolist() for a in arrays)))

    assert len(by_copy[0]) == 600  # the rating after the watermark is left for the next training
    assert triples(by_copy) == triples(by_query)
    assert [a.dtype for a in by_copy] == [np.int64, np.int64, np.float32]


# ------------------------------------------------------------------------------------------- with a fake model


def test_because_names_only_movies_rated_4_or_more_by_the_table(fake_model):
    # Rated: 0 and 1 liked, 2 at 3.5 stars, 3 and 4 disliked; the model recommends 5-8 in that order.
    table = table_from(
        {
            (3, 5): 0.9,
            (5, 3): 0.9,  # 5 is closest to a disliked movie, then to liked 0
            (0, 5): 0.2,
            (5, 0): 0.2,
            (2, 6): 0.8,
            (6, 2): 0.8,
            (1, 6): 0.3,
            (0, 6): 0.1,  # 6: a 3.5-star movie, then liked 1 highest
            (4, 7): 0.7,
            (7, 4): 0.7,  # 7 relates to a disliked movie only
            (8, 1): 0.4,  # 8 lists liked 1 in its own row
        },
        n_items=12,
    )
    movies = fake_model(FakeRecommender(scores=[0, 0, 0, 0, 0, 9, 8, 7, 6, 0, 0, 0], stars=[3.0] * 12, table=table))
    user = UserFactory(username="mixed-feelings")
    rate(user, movies, {0: 5.0, 1: 4.0, 2: 3.5, 3: 1.0, 4: 2.0})

    because = {r.movie.pk: r.because for r in recommendations_for_user(user=user, limit=4)}

    assert because == {movies[5].pk: movies[0], movies[6].pk: movies[1], movies[7].pk: None, movies[8].pk: movies[1]}


def test_because_without_a_table_names_the_closest_liked_movie(fake_model):
    # Without a table: item vectors, where the recommendation is closest to a disliked and a 3.5-star movie.
    vectors = np.eye(12, dtype=np.float32)
    vectors[2] = vectors[3] = vectors[3].copy()
    vectors[5] = 0.8 * vectors[3] + 0.6 * vectors[1]  # cosine 0.8 with the unliked two, 0.6 with liked 1
    scores = [0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]
    movies = fake_model(FakeRecommender(scores=scores, stars=[4.0] * 12, embeddings=vectors))
    user = UserFactory(username="no-table")
    rate(user, movies, {0: 4.5, 1: 4.0, 2: 3.5, 3: 0.5})

    recommended = recommendations_for_user(user=user, limit=1)

    assert recommended[0].movie == movies[5] and recommended[0].because == movies[1]
    low = UserFactory(username="nothing-liked")
    rate(low, movies, {2: 3.5, 3: 1.0})
    assert all(r.because is None for r in recommendations_for_user(user=low, limit=5))


def test_cards_show_each_page_in_the_order_of_predicted_stars(fake_model, client):
    # Ranking picks 4-11 in order; predicted stars disagree with that order within each page of four.
    stars = [3.0, 3.0, 3.0, 3.0, 3.9, 4.5, 4.1, 4.8, 3.0, 4.9, 4.2, 4.2]
    movies = fake_model(FakeRecommender(scores=[0, 0, 0, 0, 12, 11, 10, 9, 8, 7, 6, 5], stars=stars))
    user = UserFactory(username="orderly")
    rate(user, movies, {0: 4.0, 1: 4.0, 2: 4.0, 3: 4.0})
    RatingFactory(user=user, score=4.0)  # a fifth rating, of a movie the model does not know: past onboarding

    first = personal_recommendations(user=user, limit=4)
    both = personal_recommendations(user=user, limit=8)

    assert [r.movie for r in first] == [movies[7], movies[5], movies[6], movies[4]]
    # The next page holds the next four by ranking, ordered by stars; equal stars (10, 11) keep ranking order.
    assert [r.movie for r in both] == [movies[i] for i in (7, 5, 6, 4, 9, 10, 11, 8)]
    assert [r.predicted_rating for r in both[4:]] == sorted((r.predicted_rating for r in both[4:]), reverse=True)

    client.force_login(user)
    page = client.get(reverse("movies:home"), {"show": 8}).text
    shown = [int(pk) for pk in re.findall(r'<li class="card" data-movie="(\d+)"', page)]
    assert shown == [r.movie.pk for r in both]
    assert re.findall(r"rate it <strong>([\d.]+)", page) == ["4.8", "4.5", "4.1", "3.9", "4.9", "4.2", "4.2", "3.0"]


def test_pages_of_cards_match_the_show_more_step():
    assert recommendations.SHOWN_PAGE_SIZE == PAGE_STEP


def test_similar_movies_come_from_the_models_table(fake_model):
    table = table_from({(0, 3): 0.9, (0, 7): 0.5, (0, 2): 0.1}, n_items=12)
    movies = fake_model(FakeRecommender(scores=[0] * 12, stars=[3.0] * 12, table=table))

    assert similar_movies(movie=movies[0], limit=2) == [
        (movies[3], pytest.approx(0.9)),
        (movies[7], pytest.approx(0.5)),
    ]
    assert similar_movies(movie=movies[5], limit=8) == []  # nothing related: no padding shown

import datetime
import io
import logging

import numpy as np
import pytest
from django.core.files.storage import default_storage

from movies.models import Movie, Rating
from movies.services import movie_refresh_rating_stats
from recommender import artifacts
from recommender.ml import vae
from recommender.recommendations import (
    SOURCE_MODEL,
    SOURCE_POPULAR,
    popular_movies,
    recommendations_for_ratings,
    recommendations_for_user,
    registry,
    similar_movies,
)
from recommender.services import model_version_activate, model_version_train
from tests.accounts.factories import UserFactory
from tests.conftest import TINY
from tests.movies.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def active_model(two_taste_catalogue):
    return model_version_activate(version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 30, "patience": 30})))


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
    recommended = recommendations_for_ratings(ratings={movies[16].pk: 5.0, movies[17].pk: 4.5}, limit=10, exclude_movie_ids=[hidden.pk])
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
    one_perfect, well_loved, disliked = MovieFactory(title="One perfect rating"), MovieFactory(title="Well loved"), MovieFactory()
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
    newer = model_version_activate(version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 1})))
    assert registry.current().version_id == newer.pk


def test_version_checks_are_rate_limited(active_model, two_taste_catalogue, django_assert_num_queries):
    registry.check_seconds = 3600
    registry.current()
    with django_assert_num_queries(0):
        for _ in range(20):
            assert registry.current().version_id == active_model.pk


def test_a_corrupt_artifact_is_detected_and_logged(active_model, two_taste_catalogue, caplog, settings):
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    path = active_model.artifact(artifacts.SERVING_WEIGHTS)
    default_storage.delete(path)
    default_storage.save(path, io.BytesIO(b"not the weights"))

    with caplog.at_level(logging.ERROR, logger="recommender.recommendations"):
        recommended = recommendations_for_ratings(ratings={two_taste_catalogue["movies"][0].pk: 5.0}, limit=3)

    assert [r.source for r in recommended] == [SOURCE_POPULAR] * 3
    assert "corrupt" in caplog.text and f"Cannot load model version {active_model.pk}" in caplog.text


def test_a_movie_deleted_after_training_is_skipped(active_model, two_taste_catalogue):
    movies = two_taste_catalogue["movies"]
    before = recommendations_for_ratings(ratings={movies[0].pk: 5.0}, limit=3)
    Movie.objects.filter(pk=before[0].movie.pk).delete()
    after = recommendations_for_ratings(ratings={movies[0].pk: 5.0}, limit=3)
    assert before[0].movie.pk not in {r.movie.pk for r in after}


def test_snapshot_excludes_nothing_it_reports(two_taste_catalogue):
    from recommender.selectors import rating_snapshot

    user = two_taste_catalogue["users"][0]
    RatingFactory(user=user, movie=MovieFactory(), score=3.0, rated_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
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

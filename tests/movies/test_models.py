import datetime

import pytest
from django.db import IntegrityError, connection, transaction

from movies.models import RATING_SCORES, Rating
from movies.services import movie_refresh_rating_stats
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def test_every_half_star_from_half_to_five_is_stored():
    user = UserFactory()
    for score in RATING_SCORES:
        Rating.objects.create(user=user, movie=MovieFactory(), score=score, rated_at=NOW)
    assert sorted(Rating.objects.values_list("score", flat=True)) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]


@pytest.mark.parametrize("score", [0.0, 0.25, 4.3, 5.5, 6.0, -1.0])
def test_the_database_rejects_other_scores(score):
    user, movie = UserFactory(), MovieFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user=user, movie=movie, score=score, rated_at=NOW)


def test_the_database_rejects_bad_scores_even_from_raw_sql():
    rating = RatingFactory(score=3.0)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Rating._meta.db_table} SET score = 7 WHERE id = %s", [rating.pk])


def test_one_rating_per_user_and_movie():
    rating = RatingFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user=rating.user, movie=rating.movie, score=2.0, rated_at=NOW)


def test_titles_longer_than_the_large_releases_need_fit():
    long_title = "A" * 400
    assert MovieFactory(title=long_title).title == long_title


def test_refresh_rating_stats():
    movie, unrated = MovieFactory(), MovieFactory()
    RatingFactory(movie=movie, score=5.0)
    RatingFactory(movie=movie, score=2.0)

    assert movie_refresh_rating_stats() == 1  # the movies whose figures changed

    movie.refresh_from_db()
    unrated.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (2, 3.5)
    assert (unrated.rating_count, unrated.rating_mean) == (0, None)
    assert movie_refresh_rating_stats() == 0

    Rating.objects.filter(movie=movie).delete()  # a movie that lost every rating goes back to none
    assert movie_refresh_rating_stats() == 1
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (0, None)


def test_indexes_for_ratings_by_user_movie_and_time():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Rating._meta.db_table)
    indexed_leading_columns = {c["columns"][0] for c in constraints.values() if c["index"] or c["unique"]}
    assert {"user_id", "movie_id", "rated_at"} <= indexed_leading_columns

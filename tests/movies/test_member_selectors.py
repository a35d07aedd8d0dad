"""The reads every member page makes (movies.selectors): written as SQL, so checked on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from movies.models import NotInterested, WatchlistItem
from movies.selectors import excluded_from_recommendations, user_rating_scores, user_scores
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ratings():
    """A member who rated alien 0.5 and heat 4 stars; someone else rated up."""
    member, other = UserFactory(), UserFactory()
    alien, heat, up = MovieFactory(), MovieFactory(), MovieFactory()
    RatingFactory(user=member, movie=alien, score=0.5)
    RatingFactory(user=member, movie=heat, score=4.0)
    RatingFactory(user=other, movie=up, score=5.0)
    return member, alien, heat, up


def test_a_members_ratings_are_theirs_only_as_float_stars_in_one_query(ratings) -> None:
    member, alien, heat, _ = ratings
    with CaptureQueriesContext(connection) as queries:
        scores = user_rating_scores(user=member)
    assert scores == {alien.pk: 0.5, heat.pk: 4.0} and len(queries) == 1
    assert all(type(movie) is int and type(stars) is float for movie, stars in scores.items())
    assert user_rating_scores(user=UserFactory()) == {}


def test_the_exclusions_are_the_watchlist_and_not_interested_of_the_member_only() -> None:
    member, other = UserFactory(), UserFactory()
    listed, hidden, both, elsewhere = (MovieFactory() for _ in range(4))
    WatchlistItem.objects.create(user=member, movie=listed)
    WatchlistItem.objects.create(user=member, movie=both)
    NotInterested.objects.create(user=member, movie=hidden)
    NotInterested.objects.create(user=member, movie=both)
    WatchlistItem.objects.create(user=other, movie=elsewhere)
    NotInterested.objects.create(user=other, movie=elsewhere)
    with CaptureQueriesContext(connection) as queries:
        excluded = excluded_from_recommendations(user=member)
    assert excluded == {listed.pk, hidden.pk, both.pk} and len(queries) == 1
    assert excluded_from_recommendations(user=UserFactory()) == set()


def test_a_pages_scores_are_the_members_own_for_the_movies_asked_only(ratings) -> None:
    member, alien, _heat, up = ratings
    with CaptureQueriesContext(connection) as queries:
        scores = user_scores(user=member, movie_ids=[alien.pk, up.pk])  # heat is rated but not on the page
    assert scores == {alien.pk: 0.5} and len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert (
            user_scores(user=member, movie_ids=[]) == {} and user_scores(user=AnonymousUser(), movie_ids=[up.pk]) == {}
        )
    assert len(queries) == 0

import datetime

import factory

from movies.models import Genre, Movie, Rating
from tests.accounts.factories import UserFactory


class GenreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Genre
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Genre {n}")


class MovieFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Movie

    movielens_id = factory.Sequence(lambda n: 100_000 + n)
    title = factory.Sequence(lambda n: f"Movie {n}")
    year = 1999


class RatingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rating

    user = factory.SubFactory(UserFactory)
    movie = factory.SubFactory(MovieFactory)
    score = 4.0
    rated_at = factory.LazyFunction(lambda: datetime.datetime.now(datetime.UTC))

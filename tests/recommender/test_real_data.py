import pytest

from movies.importer.load import movielens_import
from movies.models import Movie
from recommender.ml import vae
from recommender.recommendations import SOURCE_MODEL, recommendations_for_user, similar_movies
from recommender.services import model_version_activate, model_version_train
from tests.accounts.factories import UserFactory
from tests.movies.factories import RatingFactory

pytestmark = [pytest.mark.django_db, pytest.mark.real_data]


def test_brief_training_on_the_real_movielens_100k(ml100k_path):
    movielens_import(location=str(ml100k_path))

    version = model_version_activate(version=model_version_train(config=vae.preset("default", max_epochs=3)))

    assert version.data_stats["users"] == 943 and version.data_stats["ratings"] == 100_000
    assert version.metrics["precision@5"] > 0.05  # three epochs already beat chance (about 0.01)
    star_wars = Movie.objects.get(movielens_id=50)
    fan = UserFactory(username="sci-fi-fan")
    for movielens_id in (50, 172, 181, 174):  # Star Wars, Empire Strikes Back, Return of the Jedi, Raiders
        RatingFactory(user=fan, movie=Movie.objects.get(movielens_id=movielens_id), score=5.0)
    recommended = recommendations_for_user(user=fan, limit=10)
    assert len(recommended) == 10 and {r.source for r in recommended} == {SOURCE_MODEL}
    assert star_wars not in [r.movie for r in recommended]
    assert len(similar_movies(movie=star_wars, limit=5)) == 5

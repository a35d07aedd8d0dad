import numpy as np
import pytest

from recommender import recommendations
from recommender.models import ModelVersion
from recommender.recommendations import LoadedModel
from tests.movies.factories import MovieFactory


@pytest.fixture
def fake_model(monkeypatch):
    """Serve a FakeRecommender over 12 new movies: install(recommender) -> the movies, column i = movies[i]."""
    movies = [MovieFactory(title=f"Fake {i:02d}") for i in range(12)]
    version = ModelVersion.objects.create(status=ModelVersion.Status.READY)

    def install(recommender):
        ids = np.array([m.pk for m in movies], dtype=np.int64)
        loaded = LoadedModel(version.pk, recommender, ids, {int(pk): col for col, pk in enumerate(ids)})
        monkeypatch.setattr(recommendations.registry, "current", lambda: loaded)
        return movies

    return install

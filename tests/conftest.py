import datetime
import os
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def real_movielens_100k() -> Path | None:
    """The real ML-100K folder, from MOVIELENS_PATH (`./dev test` sets it when the shared copy is beside the checkout;
    never committed: its licence forbids redistribution)."""
    candidate = os.environ.get("MOVIELENS_PATH", "")
    return Path(candidate) if candidate and (Path(candidate) / "u.data").exists() else None


@pytest.fixture
def ml100k_path() -> Path:
    path = real_movielens_100k()
    if path is None:
        pytest.skip("the real MovieLens 100K is not on this machine (set MOVIELENS_PATH to its folder)")
    return path


# Small and quick, but a real VAE with both heads.
TINY = {
    "encoder_units": (32,),
    "latent_dim": 8,
    "max_epochs": 4,
    "batch_size": 16,
    "min_user_ratings": 3,
    "patience": 2,
    "learning_rate": 1e-2,  # few users, so few steps per epoch: a larger step learns the two tastes in seconds
}


@pytest.fixture
def two_taste_catalogue(db):
    """60 users in two taste groups over 30 movies: group A loves movies 0-14, group B movies 15-29.

    Enough structure that a trained model's recommendations follow the group a user's ratings point to.
    """
    from movies.models import Genre, Movie, Rating
    from movies.services import movie_refresh_rating_stats
    from tests.accounts.factories import UserFactory

    rng = np.random.default_rng(7)
    action, romance = Genre.objects.create(name="Action"), Genre.objects.create(name="Romance")
    movies = Movie.objects.bulk_create(
        [Movie(movielens_id=i + 1, title=f"Movie {i:02d}", year=2000 + i % 20) for i in range(30)]
    )
    for i, movie in enumerate(movies):
        movie.genres.add(action if i < 15 else romance)
    # Fixed ids: the same users on every database and in every test, so the audit users (chosen by id) and with them
    # the training data are the same, and `shared_training` can share one training.
    users = [UserFactory(id=10_000 + u, username=f"viewer{u}") for u in range(60)]
    ratings = []
    when = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    for u, user in enumerate(users):
        liked = range(15) if u % 2 == 0 else range(15, 30)
        for i in rng.choice(list(liked), size=8, replace=False):
            ratings.append(Rating(user=user, movie=movies[i], score=float(rng.choice([4.0, 4.5, 5.0])), rated_at=when))
        disliked = range(15, 30) if u % 2 == 0 else range(15)
        for i in rng.choice(list(disliked), size=2, replace=False):
            ratings.append(Rating(user=user, movie=movies[i], score=float(rng.choice([1.0, 1.5, 2.0])), rated_at=when))
    Rating.objects.bulk_create(ratings)
    movie_refresh_rating_stats()
    return {"movies": movies, "users": users}


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: the abuse limits' counters never carry over from another test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def fresh_registry(request):
    """Each test starts with no model loaded and checks the active version on every call."""
    if (
        "django_db_setup" not in request.fixturenames
        and "db" not in request.fixturenames
        and not request.node.get_closest_marker("django_db")
    ):
        yield
        return
    from recommender import recommendations

    recommendations.registry.reset()
    recommendations.registry.check_seconds = 0
    yield
    recommendations.registry.reset()


# ------------------------------------------------------------------------------------------- one training per session
# Training is deterministic for a seed, so tests that only need "a trained model on this data" share one training:
# the first call with a given rating matrix and configuration trains, later ones get the same result back.
# Calls with callbacks (progress, time limits) always train, and tests of training itself never use this.
_TRAININGS: dict[str, object] = {}


def _training_key(matrix, config) -> str:
    import hashlib
    import json

    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix)
    digest = hashlib.sha256(json.dumps([matrix.shape, config.to_dict()], sort_keys=True, default=str).encode())
    for part in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


@pytest.fixture
def shared_training(monkeypatch):
    """Within this test, `vae.train` trains each (ratings, configuration) once per test session."""
    from recommender.ml import vae

    real_train = vae.train

    def train_once(matrix, config=None, callbacks=(), verbose=0):
        if list(callbacks):
            return real_train(matrix, config, callbacks=callbacks, verbose=verbose)
        config = config or vae.VAEConfig()
        key = _training_key(matrix, config)
        if key not in _TRAININGS:
            _TRAININGS[key] = real_train(matrix, config, verbose=verbose)
        return _TRAININGS[key]

    monkeypatch.setattr(vae, "train", train_once)
    return _TRAININGS

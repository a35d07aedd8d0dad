"""The session's shared trainings (tests/conftest.py `shared_training`): the same data and configuration train
once; anything else, or a training watched by callbacks, trains for real."""

from recommender.ml import vae
from tests.conftest import TINY
from tests.recommender_ml.conftest import synthetic_ratings


def test_the_same_data_and_configuration_train_once(shared_training):
    ratings = synthetic_ratings(n_users=40, n_items=20, ratings_per_user=8, seed=3)
    config = vae.preset("default", **{**TINY, "max_epochs": 1})
    first = vae.train(ratings, config)
    assert vae.train(ratings.copy(), config) is first  # same content, another object
    assert vae.train(ratings, vae.preset("default", **{**TINY, "max_epochs": 2})) is not first
    assert vae.train(synthetic_ratings(n_users=40, n_items=20, ratings_per_user=8, seed=4), config) is not first

    class Watcher(vae.keras.callbacks.Callback):
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            Watcher.epochs += 1

    assert vae.train(ratings, config, callbacks=[Watcher()]) is not first and Watcher.epochs == 1

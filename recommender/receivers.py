"""Signal receivers, connected in apps.RecommenderConfig.ready()."""

from . import retraining


def retrain_when_due(sender, **kwargs) -> None:
    """movies.signals.ratings_changed, after the commit of a rating change: queue a training when enough are new."""
    retraining.training_trigger_after_rating()

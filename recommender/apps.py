from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        from movies.signals import ratings_changed

        ratings_changed.connect(_retrain_when_due, dispatch_uid="recommender.retrain_when_due")


def _retrain_when_due(sender, **kwargs) -> None:
    from .services import training_trigger_after_rating  # models are loaded by now

    training_trigger_after_rating()

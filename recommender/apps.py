from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        # Imported here, once the models are loaded. movies imports nothing from recommender: it announces rating
        # changes by a signal and leaves room on its pages (movies.pages), which recommender fills.
        from movies import pages
        from movies.signals import ratings_changed

        from . import tasks  # noqa: F401  registers the Celery tasks, which services publishes by name
        from .receivers import retrain_when_due
        from .views import personal_home, similar_movies_section

        ratings_changed.connect(retrain_when_due, dispatch_uid="recommender.retrain_when_due")
        pages.personal_home_register(personal_home)
        pages.movie_section_register("similar_movies", similar_movies_section)

# Loaded with Django so that shared_task and delay use this app (Celery's usual Django layout).
from .celery import app as celery_app

__all__ = ("celery_app",)

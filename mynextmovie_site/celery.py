"""The Celery app (`celery -A mynextmovie_site worker|beat`): settings come from Django's, prefixed CELERY_."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mynextmovie_site.settings.local")

app = Celery("mynextmovie_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""WSGI entry point (gunicorn mynextmovie_site.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mynextmovie_site.settings.production")

application = get_wsgi_application()

"""WSGI entry point (gunicorn mynextmovie_site.wsgi)."""

from mynextmovie_site.web_process import prepare_web_process

prepare_web_process()  # before Django, and with it NumPy, loads

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

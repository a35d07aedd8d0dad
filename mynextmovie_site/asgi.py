"""ASGI entry point."""

from mynextmovie_site.web_process import prepare_web_process

prepare_web_process()  # before Django, and with it NumPy, loads

from django.core.asgi import get_asgi_application

application = get_asgi_application()

"""WSGI entry point (gunicorn mynextmovie_site.wsgi)."""

import gc

from mynextmovie_site.web_process import prepare_web_process

prepare_web_process()  # before Django, and with it NumPy, loads

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

# Everything loaded so far (Django, the URLconf, NumPy) lives as long as the process: out of the collector's
# way, so a full collection scans only what requests create (shorter pauses, a lower tail latency).
gc.freeze()

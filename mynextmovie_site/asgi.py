"""ASGI entry point."""
import os

# One BLAS thread per web process, set before NumPy loads: a recommendation is a few small matrix products and the
# server already runs a worker per core, so OpenBLAS's own thread pool only oversubscribes the cores (2-3x slower
# pages under load, benchmarks/RESULTS.md). Training processes keep their threads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from django.core.asgi import get_asgi_application  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mynextmovie_site.settings.production")

application = get_asgi_application()

"""Set-up shared by the web entry points (wsgi.py, asgi.py), done before NumPy loads.

One BLAS thread per web process: a recommendation is a few small matrix products and the server already runs a
worker per core, so OpenBLAS's own thread pool only oversubscribes the cores (2-3x slower pages under load,
benchmarks/RESULTS.md). Training processes keep their threads.
"""

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def prepare_web_process() -> None:
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mynextmovie_site.settings.production")

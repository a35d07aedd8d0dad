"""The WSGI and ASGI entry points: one BLAS thread per web process, unless the host says otherwise."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _threads_after_loading(module: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    environment.update(DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.test", **env)
    script = (
        f"import json, os, {module}, numpy; print(json.dumps({{v: os.environ.get(v) for v in {BLAS_VARIABLES!r}}}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["mynextmovie_site.wsgi", "mynextmovie_site.asgi"])
def test_web_processes_get_one_blas_thread(module):
    assert _threads_after_loading(module) == dict.fromkeys(BLAS_VARIABLES, "1")


def test_a_host_setting_wins():
    assert _threads_after_loading("mynextmovie_site.wsgi", OPENBLAS_NUM_THREADS="4")["OPENBLAS_NUM_THREADS"] == "4"

"""Running a benchmark script as its users do, for the smoke tests."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def run_for_json(script: str, *args: str, out: Path, timeout: int = 600) -> dict:
    """``python <script> <args>`` from the project root; fails the test with the end of its stderr unless it exits 0;
    returns the JSON it wrote to ``out``."""
    done = subprocess.run(
        [sys.executable, script, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())

"""TensorFlow loads without its C++ start-up notes, and nothing else written meanwhile is lost."""

import os
import subprocess
import sys

from recommender.ml.quiet import native_stderr_filtered
from tests.conftest import PROJECT_ROOT


def test_native_start_up_notes_are_dropped_and_other_output_kept(capfd):
    with native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n")
        os.write(2, b"E0000 a real error from native code\n")
    assert capfd.readouterr().err == "E0000 a real error from native code\n"


def test_loading_the_vae_prints_nothing():
    completed = subprocess.run(
        [sys.executable, "-c", "import recommender.ml.vae"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert completed.stderr == "" and completed.stdout == ""

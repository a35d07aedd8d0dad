"""Loading TensorFlow without its C++ start-up notes.

TensorFlow's native code prints "All log messages before absl::InitializeLog() ..." and the oneDNN notice straight to
file descriptor 2 while it loads, before any logging setting applies (TF_CPP_MIN_LOG_LEVEL does not reach them). They
are captured at the descriptor while TensorFlow and Keras load; anything else written meanwhile (a real warning or
error) is passed on to stderr unchanged.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager

START_UP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


@contextmanager
def native_stderr_filtered():
    """Capture what native code writes to fd 2 meanwhile; pass on every line but the known start-up notes."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not any(noise in line for noise in START_UP_NOISE)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_tensorflow() -> None:
    """Import TensorFlow and Keras once, quietly; later imports find them loaded."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return
    with native_stderr_filtered():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def real_movielens_100k() -> Path | None:
    """The real ML-100K folder when this machine has it (never committed: its licence forbids redistribution)."""
    candidates = [os.environ.get("MOVIELENS_PATH", ""), str(PROJECT_ROOT.parent / "shared" / "datasets" / "ml-100k")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "u.data").exists():
            return Path(candidate)
    return None


@pytest.fixture
def ml100k_path() -> Path:
    path = real_movielens_100k()
    if path is None:
        pytest.skip("the real MovieLens 100K is not on this machine (set MOVIELENS_PATH to its folder)")
    return path

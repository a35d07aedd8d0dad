"""Read MovieLens 100K (u.data format) from where it lies into CSR matrices; nothing is copied.

The reading itself is recommender.ml.movielens (shared with `manage.py evaluate_model --splits`); this module adds
where the benchmarks find the files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.ml.movielens import ML100K_SHAPE, read_official_splits, read_ratings

__all__ = ["ML100K_DIR", "ML100K_SHAPE", "load_ml100k", "load_official_splits", "ml100k_available", "read_ratings"]

# MOVIELENS_PATH, as everywhere in the project; else the shared folder beside the checkout (development machines).
ML100K_DIR = Path(
    os.environ.get("MOVIELENS_PATH") or Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-100k"
)


def load_ml100k(directory: Path = ML100K_DIR) -> sp.csr_matrix:
    return read_ratings(directory / "u.data")


def load_official_splits(directory: Path = ML100K_DIR) -> list[tuple[sp.csr_matrix, sp.csr_matrix]]:
    return read_official_splits(directory, shape=ML100K_SHAPE)


def ml100k_available(directory: Path = ML100K_DIR) -> bool:
    return (directory / "u.data").is_file()

"""Read MovieLens 100K (u.data format) from where it lies into CSR matrices; nothing is copied."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.ml.data import rating_matrix  # noqa: E402

# MOVIELENS_PATH, as everywhere in the project; else the shared folder beside the checkout (development machines).
ML100K_DIR = Path(os.environ.get("MOVIELENS_PATH") or Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-100k")
ML100K_SHAPE = (943, 1682)


def read_ratings(path: Path, shape: tuple[int, int] = ML100K_SHAPE) -> sp.csr_matrix:
    """u.data / uN.base / uN.test: tab-separated user item rating timestamp, 1-based ids."""
    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    return rating_matrix(frame["user"].to_numpy() - 1, frame["item"].to_numpy() - 1, frame["rating"].to_numpy(), shape)


def load_ml100k(directory: Path = ML100K_DIR) -> sp.csr_matrix:
    return read_ratings(directory / "u.data")


def load_official_splits(directory: Path = ML100K_DIR) -> list[tuple[sp.csr_matrix, sp.csr_matrix]]:
    return [(read_ratings(directory / f"u{n}.base"), read_ratings(directory / f"u{n}.test")) for n in range(1, 6)]


def ml100k_available(directory: Path = ML100K_DIR) -> bool:
    return (directory / "u.data").is_file()


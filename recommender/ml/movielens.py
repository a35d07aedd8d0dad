"""MovieLens 100K's rating files as CSR matrices: u.data, and the official u1..u5 base/test splits.

Rows and columns are the MovieLens user and movie ids minus 1. Django-free: `manage.py evaluate_model --splits` and
the ML benchmarks (benchmarks/ml/) read the files through here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import scipy.sparse as sp

from .data import rating_matrix

ML100K_SHAPE = (943, 1682)  # users x movies
OFFICIAL_SPLITS = tuple((f"u{n}.base", f"u{n}.test") for n in range(1, 6))
_COLUMNS = ["user", "movie", "rating", "timestamp"]


def read_ratings(path: Path, shape: tuple[int, int] = ML100K_SHAPE) -> sp.csr_matrix:
    """u.data / uN.base / uN.test: tab-separated user, movie, rating, timestamp, with 1-based ids."""
    return _matrix(_read_frame(Path(path)), shape)


def read_official_splits(
    folder: Path, shape: tuple[int, int] | None = None
) -> list[tuple[sp.csr_matrix, sp.csr_matrix]]:
    """The five (train, test) pairs of u1.base/u1.test ... u5.base/u5.test in folder.

    ``shape`` None takes the largest user and movie ids in the ten files. Raises FileNotFoundError naming the first
    missing file before reading any.
    """
    folder = Path(folder)
    for name in (name for pair in OFFICIAL_SPLITS for name in pair):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing")
    frames = [(_read_frame(folder / base), _read_frame(folder / test)) for base, test in OFFICIAL_SPLITS]
    if shape is None:
        every = [frame for pair in frames for frame in pair]
        shape = (max(int(f["user"].max()) for f in every), max(int(f["movie"].max()) for f in every))
    return [(_matrix(base, shape), _matrix(test, shape)) for base, test in frames]


def _read_frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", names=_COLUMNS)


def _matrix(frame: pd.DataFrame, shape: tuple[int, int]) -> sp.csr_matrix:
    users, movies = frame["user"].to_numpy() - 1, frame["movie"].to_numpy() - 1
    return rating_matrix(users, movies, frame["rating"].to_numpy(), shape)

"""Importing MovieLens releases (every layout GroupLens ships) for `manage.py import_movielens`.

sources.py, readers.py and rating_chunks.py know files and formats only; load.py (`movielens_import`) drives the
import, and movies_and_users.py and writers.py write to the database (PostgreSQL's COPY format: movies/pgcopy.py).
"""

from .errors import DatasetError
from .sources import DatasetSource, open_dataset

__all__ = ["DatasetError", "DatasetSource", "open_dataset"]

"""Reading MovieLens releases (every layout GroupLens ships) for `manage.py import_movielens`.

The readers here know files and formats only; `movies.services.movielens_import` writes to the database.
"""
from .errors import DatasetError
from .sources import DatasetSource, open_dataset

__all__ = ["DatasetError", "DatasetSource", "open_dataset"]

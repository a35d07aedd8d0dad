"""manage.py ensure_catalogue: load MovieLens 100K if the catalogue is empty (what `./dev run` calls)."""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from movies.downloads import DownloadError, download_release
from movies.models import Movie

NO_DATA_MESSAGE = """Could not download MovieLens 100K from GroupLens ({error}), and no local copy was given.
Without internet access, get ml-100k.zip from https://grouplens.org/datasets/movielens/100k/ on another machine,
copy it here and run:   MOVIELENS_PATH=/path/to/ml-100k.zip ./dev run"""


def local_movielens_100k() -> str | None:
    """The MOVIELENS_PATH setting, when set."""
    return settings.MOVIELENS_PATH or None


class Command(BaseCommand):
    help = (
        "Import MovieLens 100K when the catalogue is empty: from MOVIELENS_PATH if set, else downloaded from GroupLens."
    )

    def handle(self, *args, **options):
        if Movie.objects.exists():
            self.stdout.write("The catalogue already has movies; nothing to import.")
            return
        local_copy = local_movielens_100k()
        if local_copy:
            if not Path(local_copy).exists():
                raise CommandError(f"MOVIELENS_PATH points at {local_copy}, which does not exist.")
            self.stdout.write(f"Importing MovieLens 100K from {local_copy}")
            call_command("import_movielens", local_copy, stdout=self.stdout, stderr=self.stderr)
            return
        self.stdout.write("Downloading MovieLens 100K from GroupLens")
        try:
            archive = download_release("ml-100k", settings.MOVIELENS_DOWNLOAD_DIR)
        except DownloadError as error:
            raise CommandError(NO_DATA_MESSAGE.format(error=error.__cause__ or error)) from error
        call_command("import_movielens", str(archive), stdout=self.stdout, stderr=self.stderr)

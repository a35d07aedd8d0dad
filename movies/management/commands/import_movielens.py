"""manage.py import_movielens PATH | --download NAME [--dry-run]"""

import sys
from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from movies.downloads import RELEASES, DownloadError, download_release
from movies.importer import DatasetError
from movies.importer.load import movielens_import, run_summary


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (ML-100K, ML-1M, ML-10M, ML-20M, ML-25M, ML-32M, ML-latest, ML-latest-small) "
        "from a folder or .zip, or download it from GroupLens first. Safe to run again: it updates in place."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="folder or .zip of a MovieLens release, as GroupLens ships it")
        parser.add_argument(
            "--download",
            metavar="NAME",
            choices=sorted(RELEASES),
            help=f"download the release from GroupLens, verify its checksum, then import it ({', '.join(sorted(RELEASES))})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="read and validate everything, report counts, write nothing"
        )

    def handle(self, *args, path=None, download=None, dry_run=False, verbosity=1, **options):
        if bool(path) == bool(download):
            raise CommandError("give either a PATH to a MovieLens folder or .zip, or --download NAME")
        if download:
            try:
                path = str(
                    download_release(download, settings.MOVIELENS_DOWNLOAD_DIR, log=self._note if verbosity else None)
                )
            except DownloadError as error:
                raise CommandError(str(error)) from error
        try:
            run = movielens_import(location=path, dry_run=dry_run, progress=self._progress if verbosity else None)
        except DatasetError as error:
            raise CommandError(f"{error}\nNothing was imported: the database is as it was before.") from error
        if verbosity:
            verb = "Validated (dry run, nothing written)" if dry_run else "Imported"
            self.stdout.write(self.style.SUCCESS(f"{verb} MovieLens {run.release} from {run.source}"))
            self.stdout.write(run_summary(run).replace("; ", "\n"))
            seconds = (run.finished_at - run.started_at).total_seconds()
            self.stdout.write(f"in {seconds:.1f} s")

    def _note(self, message: str) -> None:
        self.stderr.write(message)

    @contextmanager
    def _progress(self, total_bytes: int, name: str):
        # A progress bar on a terminal only: logs and CI output stay clean.
        with tqdm(
            total=total_bytes, unit="B", unit_scale=True, desc=name, file=sys.stderr, disable=not sys.stderr.isatty()
        ) as bar:
            yield bar

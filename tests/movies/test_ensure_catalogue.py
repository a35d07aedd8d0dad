import io
import urllib.error

import pytest
from django.core.management import CommandError, call_command

from movies import downloads
from movies.models import Movie
from tests.movies.factories import MovieFactory

from .movielens_files import write_100k

pytestmark = pytest.mark.django_db


def ensure() -> str:
    out = io.StringIO()
    call_command("ensure_catalogue", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_imports_the_local_copy_named_by_movielens_path(tmp_path, settings):
    settings.MOVIELENS_PATH = str(write_100k(tmp_path / "ml-100k"))
    assert "movies 4 created" in ensure()
    assert "nothing to import" in ensure()
    assert Movie.objects.count() == 4


def test_does_nothing_when_the_catalogue_has_movies(settings):
    MovieFactory()
    settings.MOVIELENS_PATH = "/nowhere"
    assert "nothing to import" in ensure()


def test_no_network_and_no_local_copy_says_exactly_that(monkeypatch, settings, tmp_path):
    settings.MOVIELENS_PATH = ""  # no local copy
    settings.MOVIELENS_DOWNLOAD_DIR = tmp_path / "downloads"

    def no_network(url, destination):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(downloads, "_fetch", no_network)
    with pytest.raises(
        CommandError,
        match=r"(?s)Could not download MovieLens 100K .* no local copy was given\..*MOVIELENS_PATH=/path/to/ml-100k.zip ./dev run",
    ):
        ensure()
    assert not Movie.objects.exists()


def test_a_wrong_movielens_path_is_reported(settings, tmp_path):
    settings.MOVIELENS_PATH = str(tmp_path / "missing")
    with pytest.raises(CommandError, match="does not exist"):
        ensure()

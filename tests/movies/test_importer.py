import datetime
import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from movies.importer import DatasetError
from movies.importer.load import movielens_import
from movies.models import Genre, ImportRun, Movie, Rating, Tag
from tests.accounts.factories import UserFactory
from tests.movies.factories import RatingFactory

from .movielens_files import write_1m, write_10m, write_100k, write_csv, zip_folder

pytestmark = pytest.mark.django_db
User = get_user_model()


def snapshot() -> dict:
    """Everything the importer writes, keyed by natural ids so two databases can be compared."""
    return {
        "movies": sorted(
            Movie.objects.values_list(
                "movielens_id",
                "title",
                "year",
                "release_date",
                "imdb_id",
                "imdb_url",
                "tmdb_id",
                "rating_count",
                "rating_mean",
            )
        ),
        "genres": sorted(Movie.genres.through.objects.values_list("movie__movielens_id", "genre__name")),
        "users": sorted(
            User.objects.values_list("username", "movielens_id", "age", "gender", "occupation", "zip_code", "password")
        ),
        "ratings": sorted(Rating.objects.values_list("user__username", "movie__movielens_id", "score", "rated_at")),
        "tags": sorted(Tag.objects.values_list("user__username", "movie__movielens_id", "text", "tagged_at")),
    }


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("import_movielens", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# ------------------------------------------------------------------------------------------- layouts


def test_ml100k_layout(tmp_path):
    run = movielens_import(location=str(write_100k(tmp_path / "ml-100k")))

    assert (run.release, run.layout) == ("ml-100k", "ml-100k")
    assert (Movie.objects.count(), User.objects.count(), Rating.objects.count(), Genre.objects.count()) == (4, 3, 5, 19)
    toy_story = Movie.objects.get(movielens_id=1)
    assert (toy_story.title, toy_story.year, toy_story.release_date) == ("Toy Story", 1995, datetime.date(1995, 1, 1))
    assert sorted(toy_story.genres.values_list("name", flat=True)) == ["Animation", "Children's", "Comedy"]
    assert toy_story.imdb_url.startswith("http://us.imdb.com/")  # stored as imported
    assert toy_story.imdb_link.startswith("https://www.imdb.com/find/?q=Toy+Story")  # the dead form is not linked
    assert Movie.objects.get(movielens_id=2).title == "The Shawshank Redemption"
    assert Movie.objects.get(movielens_id=3).title == "Les Misérables"  # decoded from Latin-1
    assert Movie.objects.get(movielens_id=4).year is None
    person = User.objects.get(movielens_id=2)
    assert (person.username, person.age, person.gender, person.occupation, person.zip_code) == (
        "movielens_2",
        53,
        "F",
        "artist",
        "94043",
    )
    rating = Rating.objects.get(user__movielens_id=1, movie__movielens_id=1)
    assert rating.score == 5.0
    assert rating.rated_at == datetime.datetime.fromtimestamp(881250949, tz=datetime.UTC)
    assert (toy_story.rating_count, toy_story.rating_mean) == (2, 4.5)


def test_ml1m_layout_decodes_codes(tmp_path):
    run = movielens_import(location=str(write_1m(tmp_path / "ml-1m")))

    assert (run.release, run.layout) == ("ml-1m", "dat")
    assert Movie.objects.get(movielens_id=2).title == "Les Misérables"
    person = User.objects.get(movielens_id=1)
    assert (person.gender, person.age, person.occupation, person.zip_code) == ("F", 1, "K-12 student", "48067")
    assert User.objects.get(movielens_id=2).occupation == "self-employed"
    assert Rating.objects.count() == 3


def test_ml10m_layout_half_stars_and_tags(tmp_path):
    run = movielens_import(location=str(write_10m(tmp_path / "ml-10M100K")))

    assert (run.release, run.layout) == ("ml-10m", "dat")
    assert sorted(Rating.objects.values_list("score", flat=True)) == [0.5, 3.0, 4.5]
    assert sorted(Tag.objects.values_list("text", flat=True)) == ["board game", "pixar"]
    assert User.objects.filter(movielens_id__isnull=False).count() == 2  # users come from the ratings


def test_csv_layout_quoted_titles_links_and_tags(tmp_path):
    run = movielens_import(location=str(write_csv(tmp_path / "ml-latest-small")))

    assert (run.release, run.layout) == ("ml-latest-small", "csv")
    president = Movie.objects.get(movielens_id=11)
    assert (president.title, president.year) == ("The American President", 1995)
    assert (president.imdb_id, president.tmdb_id, president.imdb_link) == (
        "tt0112346",
        9087,
        "https://www.imdb.com/title/tt0112346/",
    )
    assert Movie.objects.get(movielens_id=12).tmdb_id is None
    assert Movie.objects.get(movielens_id=13).genres.count() == 0  # "(no genres listed)"
    assert Movie.objects.get(movielens_id=14).title == "Amélie (Fabuleux destin d'Amélie Poulain, Le)"
    assert Rating.objects.get(user__movielens_id=1, movie__movielens_id=11).score == 3.5
    assert Tag.objects.get(movie__movielens_id=14).text == "quirky, french"
    # User 4 only tagged: it still becomes an account.
    assert User.objects.filter(movielens_id=4).exists()
    assert run.users_created == 4 and run.ratings_created == 5 and run.tags_created == 2


def test_zip_as_grouplens_ships_it(tmp_path):
    archive = zip_folder(write_csv(tmp_path / "ml-25m"), tmp_path / "ml-25m.zip")

    run = movielens_import(location=str(archive))

    assert run.release == "ml-25m"
    assert Movie.objects.count() == 5 and Rating.objects.count() == 5


def test_parent_folder_of_the_release_is_accepted(tmp_path):
    write_100k(tmp_path / "downloads" / "ml-100k")
    assert movielens_import(location=str(tmp_path / "downloads")).release == "ml-100k"


# ------------------------------------------------------------------------------------------- idempotence


def test_running_twice_leaves_the_same_database(tmp_path):
    folder = write_csv(tmp_path / "ml-latest-small")
    movielens_import(location=str(folder))
    first = snapshot()

    second_run = movielens_import(location=str(folder))

    assert snapshot() == first
    assert (
        second_run.movies_created,
        second_run.movies_updated,
        second_run.users_created,
        second_run.ratings_created,
    ) == (0, 0, 0, 0)
    assert second_run.ratings_updated == 5


def test_reimport_applies_changes_in_place(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    movielens_import(location=str(folder))
    write_100k(
        folder,
        ratings=[
            "1\t1\t2\t881250949",
            "1\t2\t3\t881250950",
            "2\t1\t4\t891717742",
            "2\t3\t1\t878887116",
            "3\t2\t2\t880606923",
            "3\t4\t5\t880606924",
        ],
    )

    run = movielens_import(location=str(folder))

    assert Rating.objects.get(user__movielens_id=1, movie__movielens_id=1).score == 2.0
    assert run.ratings_created == 1 and Rating.objects.count() == 6
    assert Movie.objects.get(movielens_id=1).rating_mean == 3.0


def test_site_users_and_their_ratings_are_untouched(tmp_path):
    site_rating = RatingFactory(user=UserFactory(username="alice"), score=1.5)
    before = (site_rating.user.password, site_rating.score, site_rating.rated_at)

    movielens_import(location=str(write_100k(tmp_path / "ml-100k")))

    site_rating.refresh_from_db()
    site_rating.user.refresh_from_db()
    assert (site_rating.user.password, site_rating.score, site_rating.rated_at) == before
    assert site_rating.user.movielens_id is None


def test_imported_users_cannot_log_in_until_an_admin_sets_a_password(tmp_path, client):
    movielens_import(location=str(write_100k(tmp_path / "ml-100k")))
    person = User.objects.get(movielens_id=1)
    assert not person.has_usable_password()
    assert not client.login(username="movielens_1", password="")

    person.set_password("chosen-by-the-admin-42")
    person.save()
    movielens_import(location=str(write_100k(tmp_path / "ml-100k")))  # a re-import keeps that password

    assert client.login(username="movielens_1", password="chosen-by-the-admin-42")


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        (["1\t1\t5\t881250949", "1\t2\t3"], r"u\.data, line 2: missing timestamp field"),
        (["1\t1\t5\t881250949", "2\t1\t4\t891717742\textra"], r"u\.data, line 2: expected 4 fields, found 5"),
        (["1\t1\t5\t881250949", "1\t2\t6\t881250950"], r"u\.data, line 2: rating 6 is outside 0\.5-5"),
        (["1\t1\t4.3\t881250949"], r"u\.data, line 1: rating 4\.3 is outside 0\.5-5 stars in half-star steps"),
        (["1\t1\t0\t881250949"], r"u\.data, line 1: rating 0 is outside"),
        (
            ["1\t1\t5\t881250949", "1\t1\t5\t881250949", "x\t2\t3\t881250950"],
            r"u\.data, line 3: user 'x' is not a number",
        ),
        (["1\t1\t5\t881250949", "1\t99\t3\t881250950"], r"u\.data, line 2: movie 99 is not in the movie list"),
    ],
)
def test_bad_ratings_name_file_and_line_and_change_nothing(tmp_path, ratings, expected):
    site_rating = RatingFactory()
    before = snapshot()

    with pytest.raises(DatasetError, match=expected):
        movielens_import(location=str(write_100k(tmp_path / "ml-100k", ratings=ratings)))

    assert snapshot() == before
    assert Rating.objects.filter(pk=site_rating.pk).exists() and not ImportRun.objects.exists()


def test_bad_csv_rating_line_number_counts_the_header(tmp_path):
    ratings = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,11,7,964981247"]
    with pytest.raises(DatasetError, match=r"ratings\.csv, line 3: rating 7 is outside"):
        movielens_import(location=str(write_csv(tmp_path / "ml", ratings=ratings)))
    ratings = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703,9"]
    with pytest.raises(DatasetError, match=r"ratings\.csv, line 2: expected 4 fields, found 5"):
        movielens_import(location=str(write_csv(tmp_path / "ml2", ratings=ratings)))


def test_wrong_encoding_in_a_utf8_release(tmp_path):
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / "movies.csv").write_bytes(
        "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Amélie (2001),Comedy\n".encode("latin-1")
    )

    with pytest.raises(DatasetError, match=r"movies\.csv, line 3: not valid UTF-8"):
        movielens_import(location=str(folder))
    assert not Movie.objects.exists()


def test_missing_and_malformed_files(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.genre").unlink()
    with pytest.raises(DatasetError, match=r"u\.genre"):
        movielens_import(location=str(folder))

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="does not look like a MovieLens release"):
        movielens_import(location=str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="does not exist"):
        movielens_import(location=str(tmp_path / "nowhere"))
    (tmp_path / "not-a-zip.zip").write_text("hello")
    with pytest.raises(DatasetError, match="neither a folder nor a zip"):
        movielens_import(location=str(tmp_path / "not-a-zip.zip"))


def test_malformed_movie_line(tmp_path):
    items = ["1|Toy Story (1995)|01-Jan-1995||http://x|0|1"]
    with pytest.raises(DatasetError, match=r"u\.item, line 1: expected 24 fields"):
        movielens_import(location=str(write_100k(tmp_path / "ml-100k", items=items)))
    folder = write_csv(
        tmp_path / "ml-csv", movies=["movieId,title,genres", "1,Toy Story (1995),Comedy", "x,Broken,Drama"]
    )
    with pytest.raises(DatasetError, match=r"movies\.csv, line 3: movieId 'x' is not a whole number"):
        movielens_import(location=str(folder))


def test_a_second_release_is_refused_in_the_same_database(tmp_path):
    movielens_import(location=str(write_100k(tmp_path / "ml-100k")))
    before = snapshot()

    with pytest.raises(DatasetError, match="already holds MovieLens ml-100k"):
        movielens_import(location=str(write_1m(tmp_path / "ml-1m")))
    assert snapshot() == before


def test_username_taken_by_a_site_account(tmp_path):
    UserFactory(username="movielens_2")
    with pytest.raises(DatasetError, match="already called 'movielens_2'"):
        movielens_import(location=str(write_100k(tmp_path / "ml-100k")))
    assert not Movie.objects.exists()


# ------------------------------------------------------------------------------------------- the command


def test_command_reports_counts_and_dry_run_writes_nothing(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")

    output = run_command(str(folder), "--dry-run")
    assert "dry run" in output and "movies 4 created" in output and "ratings 5 created" in output
    assert not Movie.objects.exists() and not ImportRun.objects.exists()

    output = run_command(str(folder))
    assert "Imported MovieLens ml-100k" in output and "users 3 created, 0 updated" in output
    output = run_command(str(folder))
    assert "ratings 0 created, 5 already present" in output


def test_command_errors_are_clear(tmp_path):
    with pytest.raises(CommandError, match="either a PATH"):
        run_command()
    folder = write_100k(tmp_path / "ml-100k", ratings=["1\t1\t9\t881250949"])
    with pytest.raises(CommandError, match=r"u\.data, line 1: rating 9 .*\nNothing was imported"):
        run_command(str(folder))


# ------------------------------------------------------------------------------------------- download


def test_download_verifies_the_checksum(tmp_path, monkeypatch, settings):
    import hashlib

    from movies import downloads

    archive = zip_folder(write_100k(tmp_path / "src" / "ml-100k"), tmp_path / "src.zip")
    served = {
        "ml-100k.zip": archive.read_bytes(),
        "ml-100k.zip.md5": f"{hashlib.md5(archive.read_bytes()).hexdigest()}  ml-100k.zip\n".encode(),
    }
    fetched = []

    def fake_fetch(url: str, destination: Path) -> None:
        fetched.append(url)
        destination.write_bytes(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(downloads, "_fetch", fake_fetch)
    settings.MOVIELENS_DOWNLOAD_DIR = tmp_path / "downloads"

    assert "movies 4 created" in run_command("--download", "ml-100k")
    assert fetched == [f"{downloads.BASE_URL}ml-100k.zip.md5", f"{downloads.BASE_URL}ml-100k.zip"]

    run_command("--download", "ml-100k")  # the verified archive is reused
    assert len(fetched) == 3

    served["ml-100k.zip.md5"] = b"0" * 32
    with pytest.raises(CommandError, match="checksum mismatch"):
        run_command("--download", "ml-100k")
    assert not (tmp_path / "downloads" / "ml-100k.zip.part").exists()


def test_download_without_network_says_what_to_do(tmp_path, monkeypatch, settings):
    import urllib.error

    from movies import downloads

    def no_network(url, destination):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(downloads, "_fetch", no_network)
    settings.MOVIELENS_DOWNLOAD_DIR = tmp_path
    with pytest.raises(CommandError, match="could not download ml-100k.*import_movielens /path/to/ml-100k.zip"):
        run_command("--download", "ml-100k")


# ------------------------------------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_movielens_100k(ml100k_path):
    run = movielens_import(location=str(ml100k_path))

    assert (Movie.objects.count(), User.objects.count(), Rating.objects.count(), Genre.objects.count()) == (
        1682,
        943,
        100000,
        19,
    )
    assert (run.movies_created, run.users_created, run.ratings_created) == (1682, 943, 100000)
    star_wars = Movie.objects.get(movielens_id=50)
    assert (star_wars.title, star_wars.year, star_wars.rating_count) == ("Star Wars", 1977, 583)
    assert Movie.objects.order_by("-rating_count").first() == star_wars

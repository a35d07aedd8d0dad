"""Security review items (issue 13) guarded here: imported links, occupation suggestions, production DEBUG.
The admin's permissions are tested beside the admin (tests/recommender/test_admin.py)."""

import pytest
from django.urls import reverse

from movies.importer.load import movielens_import
from movies.links import is_web_link
from movies.models import Movie
from tests.accounts.factories import UserFactory
from tests.movies.movielens_files import write_100k
from tests.site.test_settings import STRONG_KEY, run_manage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)", True),
        ("https://www.imdb.com/title/tt0114709/", True),
        ("javascript:alert(document.cookie)", False),
        (" JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/", False),
        ("http:///no-host", False),
        ("", False),
    ],
)
def test_only_web_links_count_as_links(url, allowed):
    assert is_web_link(url) is allowed


def test_an_imported_javascript_link_is_neither_stored_nor_rendered(tmp_path, client):
    genres = "|".join(["0"] * 18 + ["1"])
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||javascript:alert('owned')|{genres}",
        f"2|Heat (1995)|01-Jan-1995||https://www.imdb.com/title/tt0113277/|{genres}",
    ]
    movielens_import(location=str(write_100k(tmp_path / "ml-100k", items=items, ratings=["1\t1\t5\t881250949"])))
    toy_story, heat = Movie.objects.get(movielens_id=1), Movie.objects.get(movielens_id=2)
    assert toy_story.imdb_url == "" and heat.imdb_url == "https://www.imdb.com/title/tt0113277/"
    # A bad link already in the database (from an older import, or the admin) is not rendered either.
    Movie.objects.filter(pk=toy_story.pk).update(imdb_url="javascript:alert('owned')")
    page = client.get(reverse("movies:detail", args=[toy_story.pk]))
    assert page.status_code == 200 and "javascript:" not in page.text
    assert 'href="https://www.imdb.com/title/tt0113277/"' in client.get(reverse("movies:detail", args=[heat.pk])).text


def test_the_profile_suggests_a_fixed_list_of_occupations_never_what_others_typed(client):
    UserFactory(occupation="agent of the secret service, room 42")
    client.force_login(UserFactory())
    page = client.get(reverse("accounts:profile"))
    assert page.status_code == 200
    assert "secret service" not in page.text and '<option value="programmer">' in page.text


def test_production_settings_refuse_debug():
    result = run_manage(
        "check",
        DJANGO_SETTINGS_MODULE="mynextmovie_site.settings.production",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_DEBUG="true",
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.returncode != 0 and "DJANGO_DEBUG is true, which the production settings refuse" in result.stderr


def test_a_huge_bad_value_is_reported_with_file_line_and_a_short_excerpt(tmp_path):
    from movies.importer.errors import DatasetError

    # 60 KB in one field (a longer line is refused as too long before its fields are read: test_importer_bounds).
    huge = "9" * 60_000 + "x"
    toy_story = "1|Toy Story (1995)|01-Jan-1995|||0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"
    folder = write_100k(tmp_path / "ml-100k", items=[toy_story, f"{huge}|Huge (1999)|||" + "|0" * 19])
    with pytest.raises(DatasetError) as caught:
        movielens_import(location=str(folder))
    message = str(caught.value)
    assert message.startswith("u.item, line 2:") and len(message) < 150 and "60,001 characters" in message
    assert not Movie.objects.exists()  # nothing written


def test_errors_never_echo_a_huge_value(client):
    from movies.services import RatingError, parse_score

    for huge in ("x" * 100_000, "9" * 100_000):
        with pytest.raises(RatingError) as caught:
            parse_score(huge)
        assert len(str(caught.value)) < 200 and "100,000 characters" in str(caught.value)
    from movies.forms import CatalogueFilterForm

    form = CatalogueFilterForm({"sort": "s" * 50_000})
    assert not form.is_valid() and len(form.errors["sort"][0]) < 100  # Django's default repeats the value
    assert client.get(reverse("movies:catalogue"), {"sort": "s" * 50_000}).status_code == 200


@pytest.mark.parametrize(
    ("rating_line", "expected"),
    [
        (
            "1\t1\t5\t99999999999999999999",
            r"u\.data, line 2: timestamp .* is larger than 4,102,444,800 \(after the year 2100\)",
        ),
        ("1\t2147483648\t5\t881250949", r"u\.data, line 2: movie 2\.14748e\+09 is larger than 2,147,483,647"),
        ("9223372036854775808\t1\t5\t881250949", r"u\.data, line 2: user .* is larger than 2,147,483,647"),
    ],
)
def test_impossible_timestamps_and_ids_are_refused_with_file_and_line(tmp_path, rating_line, expected):
    from movies.importer.errors import DatasetError

    folder = write_100k(tmp_path / "ml-100k", ratings=["1\t1\t5\t881250949", rating_line])
    with pytest.raises(DatasetError, match=expected):
        movielens_import(location=str(folder))
    assert not Movie.objects.exists()

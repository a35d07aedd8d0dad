"""Generated posters (issue 14, item 1): the SVG, the view that serves it, and the poster on cards, pages and admin."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from movies.posters import display_title, poster_colours, poster_svg, poster_version, title_lines
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory
from tests.security.test_csp import inline_code

SVG = "{http://www.w3.org/2000/svg}"


def svg_text(svg: str) -> str:
    """The words a reader sees: every <text>, whatever its <tspan> lines."""
    root = ET.fromstring(svg)
    return " ".join("".join(text.itertext()) for text in root.iter(f"{SVG}text"))


# ------------------------------------------------------------------------------------------- the SVG


def test_the_poster_is_a_2_by_3_svg_with_title_and_year():
    svg = poster_svg("Toy Story", 1995, ["Animation", "Comedy"])
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 200 300"
    assert "Toy Story" in svg_text(svg) and "1995" in svg_text(svg)
    assert root.find(f"{SVG}title").text == "Toy Story (1995)"


def test_markup_in_a_title_is_escaped():
    title = '<script>alert("x")</script> & "Friends" <img src=x onerror=alert(1)>'
    svg = poster_svg(title, 2001, ["Drama"])
    root = ET.fromstring(svg)  # still valid XML
    assert "<script" not in svg and "<img" not in svg
    assert not [element for element in root.iter() if element.tag.removeprefix(SVG) in ("script", "image", "a")]
    assert "&lt;script&gt;" in svg and "&amp;" in svg
    assert title.replace(" ", "")[:20] in svg_text(svg).replace(" ", "").replace("\n", "")


def test_the_poster_references_nothing_outside_itself():
    svg = poster_svg("Metropolis", 1927, ["Drama", "Sci-Fi"])
    root = ET.fromstring(svg)
    links = [value for element in root.iter() for name, value in element.attrib.items() if "href" in name]
    assert links == []
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert re.findall(r"url\(([^)]*)\)", svg) == ["#field"]  # only its own gradient
    assert "style" not in svg and "<script" not in svg.lower() and " on" not in svg.replace(" one", "")


def test_the_colour_is_deterministic_and_follows_the_genres():
    assert poster_colours(["Comedy", "Romance"]) == poster_colours(["Romance", "Comedy"])  # order does not matter
    assert poster_colours(["Comedy"]) == poster_colours(["Comedy"])
    singles = {genre: poster_colours([genre]) for genre in ("Action", "Comedy", "Drama", "Horror", "Sci-Fi")}
    assert len(set(singles.values())) == len(singles)
    assert poster_colours(["Comedy", "Drama"]) != poster_colours(["Comedy"])
    assert poster_colours(["A genre nobody listed"]) == poster_colours(["A genre nobody listed"])
    assert poster_colours([]) == poster_colours(["(no genres listed)"])
    assert poster_svg("Heat", 1995, ["Crime"]) == poster_svg("Heat", 1995, ["Crime"])
    assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for pair in singles.values() for colour in pair)


def test_titles_wrap_and_long_ones_end_in_an_ellipsis():
    assert title_lines("The Good, the Bad and the Ugly", 12) == ["The Good,", "the Bad and", "the Ugly"]
    assert title_lines("Supercalifragilisticexpialidocious", 10)[0] == "Supercalif"
    lines = title_lines(" ".join(["word"] * 40), 10, max_lines=3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    svg = poster_svg("Night of the Day of the Dawn of the Son of the Bride of the Return of the Terror " * 3, None, [])
    assert len(ET.fromstring(svg).findall(f".//{SVG}tspan")) <= 6


def test_movielens_titles_read_as_on_a_poster():
    assert display_title("Shawshank Redemption, The") == "The Shawshank Redemption"
    assert display_title("City of Lost Children, The (Cité des enfants perdus, La)") == "The City of Lost Children"
    assert display_title("Seven (a.k.a. Se7en)") == "Seven"


def test_the_version_changes_with_what_the_poster_shows():
    base = poster_version("Heat", 1995, ["Crime", "Action"])
    assert base == poster_version("Heat", 1995, ["Action", "Crime"])
    assert (
        len({base, poster_version("Heat 2", 1995, ["Crime", "Action"]), poster_version("Heat", 1995, ["Crime"])}) == 3
    )


# ------------------------------------------------------------------------------------------- the view


@pytest.mark.django_db
def test_the_view_serves_the_svg_with_long_caching_for_its_current_version(client):
    movie = MovieFactory(title="Fargo", year=1996)
    movie.genres.add(GenreFactory(name="Crime"))
    url = reverse("movies:poster", args=[movie.pk])
    version = poster_version("Fargo", 1996, ["Crime"])
    response = client.get(url, {"v": version})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["ETag"] == f'"{version}"'
    ET.fromstring(response.content)
    assert "Fargo" in svg_text(response.text)
    # An old or missing version: the current poster, kept for an hour only.
    stale = client.get(url, {"v": "old"})
    assert stale.status_code == 200 and stale["Cache-Control"] == "public, max-age=3600"
    # Revalidation with the current ETag: 304, no body.
    revalidated = client.get(url, HTTP_IF_NONE_MATCH=f'"{version}"')
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert client.head(url).status_code == 200
    assert client.post(url).status_code == 405


@pytest.mark.django_db
def test_the_version_in_the_url_follows_title_and_genres(client):
    movie = MovieFactory(title="Alien", year=1979)
    first = client.get(reverse("movies:detail", args=[movie.pk])).text
    movie.genres.add(GenreFactory(name="Horror"))
    second = client.get(reverse("movies:detail", args=[movie.pk])).text
    pattern = rf"/movies/{movie.pk}/poster\.svg\?v=(\w+)"
    assert re.search(pattern, first)[1] != re.search(pattern, second)[1]


@pytest.mark.django_db
def test_an_unknown_movie_has_no_poster(client):
    assert client.get(reverse("movies:poster", args=[987654])).status_code == 404


# ------------------------------------------------------------------------------------------- the pages


def _poster_imgs(html: str) -> list[str]:
    return re.findall(r'<img class="poster[^>]*>', html)


@pytest.mark.django_db
def test_cards_show_a_lazy_poster_with_its_size(client):
    movie = MovieFactory(title="Heat & Dust", year=1983)
    response = client.get(reverse("movies:catalogue"))
    images = [image for image in _poster_imgs(response.text) if f"/movies/{movie.pk}/poster.svg?v=" in image]
    assert len(images) == 1
    image = images[0]
    assert 'alt="Poster of Heat &amp; Dust"' in image
    assert 'width="200" height="300"' in image and 'loading="lazy"' in image and 'decoding="async"' in image
    assert inline_code(response.text) == []


@pytest.mark.django_db
def test_the_movie_page_shows_the_poster_without_lazy_loading(client, settings):
    settings.TMDB_API_KEY = ""
    movie = MovieFactory(title="Brazil", year=1985)
    page = client.get(reverse("movies:detail", args=[movie.pk])).text
    [image] = _poster_imgs(page)
    assert "poster-page" in image and 'width="342" height="513"' in image and "loading" not in image
    assert f"/movies/{movie.pk}/poster.svg?v=" in image
    assert "not endorsed or certified by TMDb" not in page  # no TMDb data, no key: no attribution
    assert inline_code(page) == []


@pytest.mark.django_db
def test_a_stored_poster_and_plot_show_with_the_attribution(client, settings):
    settings.TMDB_API_KEY = "key"
    movie = MovieFactory(title="Amélie", year=2001, plot="A shy waitress <b>decides</b> to change lives.")
    movie.poster.save("posters/amelie.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=True)
    page = client.get(reverse("movies:detail", args=[movie.pk])).text
    [image] = _poster_imgs(page)
    assert f'src="/movies/{movie.pk}/poster/amelie' in image and "poster.svg" not in image
    assert "A shy waitress &lt;b&gt;decides&lt;/b&gt; to change lives." in page
    assert page.count("This product uses the TMDb API but is not endorsed or certified by TMDb.") == 2  # page, footer
    assert 'href="https://www.themoviedb.org/"' in page


@pytest.mark.django_db
def test_the_footer_credits_tmdb_only_with_a_key(client, settings):
    settings.TMDB_API_KEY = ""
    assert "TMDb API" not in client.get(reverse("movies:home")).text
    settings.TMDB_API_KEY = "key"
    assert "This product uses the TMDb API" in client.get(reverse("movies:home")).text


# ------------------------------------------------------------------------------------------- admin


@pytest.mark.django_db
def test_the_admin_shows_the_poster_and_plot_read_only(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    movie = MovieFactory(title="Vertigo", year=1958, plot="A detective with a fear of heights.")
    page = client.get(reverse("admin:movies_movie_change", args=[movie.pk])).text
    assert f"/movies/{movie.pk}/poster.svg?v=" in page and "A detective with a fear of heights." in page
    assert 'name="plot"' not in page and 'name="poster"' not in page  # shown, not editable
    assert inline_code(page) == []


@pytest.mark.django_db
def test_a_stored_poster_is_served_by_its_current_name_only(client):
    movie = MovieFactory()
    movie.poster.save(f"{movie.pk}-abc.png", ContentFile(b"\x89PNG\r\n\x1a\nrest"), save=True)
    name = movie.poster.name.rsplit("/", 1)[1]
    response = client.get(reverse("movies:stored_poster", args=[movie.pk, name]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"\x89PNG\r\n\x1a\nrest"
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    for wrong in ("other.png", "..%2Fmodels%2Fv1.npz", name.replace(".png", ".svg")):
        assert client.get(f"/movies/{movie.pk}/poster/{wrong}").status_code == 404, wrong
    other = MovieFactory()
    assert client.get(reverse("movies:stored_poster", args=[other.pk, name])).status_code == 404

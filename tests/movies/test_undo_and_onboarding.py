"""Undo and control (issue 14, item 5): the "Not interested" page, the movie page's list state and buttons, and
onboarding's "Haven't seen it" and genre picker."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from movies.models import NotInterested, Rating, WatchlistItem
from movies.services import movie_refresh_rating_stats
from movies.views import ONBOARDING_SKIPPED, ONBOARDING_SKIPPED_MAX
from tests.accounts.factories import UserFactory
from tests.movies.factories import GenreFactory, MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def member(client):
    user = UserFactory(username="newcomer")
    client.force_login(user)
    return user


@pytest.fixture
def catalogue(settings):
    """20 dramas and 20 comedies; the lower the number, the more ratings (the better known)."""
    settings.RECOMMENDER_POPULAR_MIN_RATINGS = 1
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    others = UserFactory.create_batch(40)
    films = {"Drama": [], "Comedy": []}
    for genre in (drama, comedy):
        for i in range(20):
            movie = MovieFactory(title=f"{genre.name} {i:02d}")
            movie.genres.add(genre)
            for user in others[: 40 - i - (genre.name == "Comedy")]:
                RatingFactory(user=user, movie=movie, score=4.0)
            films[genre.name].append(movie)
    movie_refresh_rating_stats()
    return {"drama": drama, "comedy": comedy, **films}


def card_ids(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li class="card" data-movie="(\d+)"', page)]


# ------------------------------------------------------------------------------------------- not interested page


def test_the_not_interested_page_lists_them_with_an_undo_each(client, member, catalogue):
    first, second = catalogue["Drama"][:2]
    for movie in (first, second):
        client.post(reverse("movies:not_interested"), {"movie": movie.pk})
    page = client.get(reverse("movies:not_interested_list"))
    assert page.status_code == 200 and "Drama 00" in page.text and "Drama 01" in page.text
    undo = page.text.split(f'data-testid="undo-not-interested-{first.pk}"')[0].rsplit("<form", 1)[1]
    assert f'action="{reverse("movies:not_interested")}"' in undo and 'name="action" value="remove"' in undo
    assert 'hx-target="#not-interested"' in undo and "csrfmiddlewaretoken" in undo

    response = client.post(
        reverse("movies:not_interested"),
        {"movie": first.pk, "action": "remove", "next": reverse("movies:not_interested_list")},
        follow=True,
    )
    assert "Drama 00 (1999) can be recommended to you again." in response.text
    assert list(NotInterested.objects.values_list("movie", flat=True)) == [second.pk]
    assert f'data-testid="undo-not-interested-{first.pk}"' not in response.text


def test_the_not_interested_page_is_personal_and_linked_from_the_watchlist(client, member, catalogue):
    NotInterested.objects.create(user=UserFactory(), movie=catalogue["Drama"][0])  # someone else's
    page = client.get(reverse("movies:not_interested_list")).text
    assert "Drama 00" not in page and "not marked any movie" in page
    assert reverse("movies:not_interested_list") in client.get(reverse("movies:watchlist")).text

    anonymous = Client().get(reverse("movies:not_interested_list"))
    assert anonymous.status_code == 302 and reverse("accounts:login") in anonymous["Location"]
    assert client.post(reverse("movies:not_interested_list")).status_code == 405


def test_the_not_interested_message_links_to_undo_but_json_stays_plain(client, member, catalogue):
    movie = catalogue["Drama"][0]
    page = client.post(reverse("movies:not_interested"), {"movie": movie.pk}, follow=True).text
    assert f'will not be recommended to you again. <a href="{reverse("movies:not_interested_list")}">Undo' in page
    api = client.post(reverse("movies:not_interested"), {"movie": movie.pk}, **JSON)
    assert api.json() == {"ok": True, "message": f"{movie} will not be recommended to you again.", "movie": movie.pk}


def test_a_title_in_the_message_is_still_escaped(client, member):
    movie = MovieFactory(title="<b>Bold</b>")
    page = client.post(reverse("movies:not_interested"), {"movie": movie.pk}, follow=True).text
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page and "<b>Bold</b>" not in page


# ------------------------------------------------------------------------------------------- the movie page


def test_the_movie_page_shows_and_changes_the_lists(client, member, catalogue):
    movie = catalogue["Comedy"][3]
    url = reverse("movies:detail", args=[movie.pk])
    page = client.get(url).text
    assert "not-interested-state" not in page and "watchlist-state" not in page
    assert ">Not interested</button>" in page and ">+ Want to watch</button>" in page

    client.post(reverse("movies:watchlist_toggle"), {"movie": movie.pk, "next": url})
    client.post(reverse("movies:not_interested"), {"movie": movie.pk, "next": url})
    page = client.get(url).text
    assert "On your watchlist." in page and "You marked this Not interested." in page
    assert ">Remove from watchlist</button>" in page and ">Undo Not interested</button>" in page
    section = page.split('class="your-rating"')[1].split("</section>")[0]
    assert section.count('hx-target="#movie"') >= 3  # rating, watchlist and not-interested update in place

    client.post(reverse("movies:watchlist_toggle"), {"movie": movie.pk, "action": "remove", "next": url})
    client.post(reverse("movies:not_interested"), {"movie": movie.pk, "action": "remove", "next": url})
    assert not WatchlistItem.objects.exists() and not NotInterested.objects.exists()
    page = client.get(url).text
    assert "On your watchlist." not in page and "You marked this Not interested." not in page


def test_a_rated_movie_offers_not_interested_but_no_watchlist(client, member, catalogue):
    movie = catalogue["Drama"][0]
    RatingFactory(user=member, movie=movie, score=4.0)
    page = client.get(reverse("movies:detail", args=[movie.pk])).text
    assert "Want to watch" not in page and ">Not interested</button>" in page and "Clear" in page


# ------------------------------------------------------------------------------------------- onboarding


def test_each_onboarding_card_has_a_haven_t_seen_it_button(client, member, catalogue):
    page = client.get(reverse("movies:home")).text
    shown = card_ids(page)
    assert len(shown) == 12
    for pk in shown:
        form = page.split(f'data-testid="skip-{pk}"')[0].rsplit("<form", 1)[1]
        assert f'action="{reverse("movies:onboarding_skip")}"' in form and 'hx-target="#main-content"' in form
    assert 'data-testid="skip-' not in client.get(reverse("movies:top_rated")).text  # onboarding only


def test_haven_t_seen_it_skips_the_movie_without_storing_a_rating(client, member, catalogue):
    shown = card_ids(client.get(reverse("movies:home")).text)
    response = client.post(reverse("movies:onboarding_skip"), {"movie": shown[0], "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Rating.objects.filter(user=member).exists()
    page = client.get(reverse("movies:home")).text
    assert shown[0] not in card_ids(page) and len(card_ids(page)) == 12 and "0 of 5 rated" in page

    api = client.post(reverse("movies:onboarding_skip"), {"movie": shown[1]}, **JSON)
    assert api.status_code == 200 and api.json()["ok"] is True and api.json()["movie"] == shown[1]
    assert client.session[ONBOARDING_SKIPPED] == [shown[0], shown[1]]


def test_haven_t_seen_it_with_htmx_answers_the_page_to_swap_in(client, member, catalogue):
    shown = card_ids(client.get(reverse("movies:home")).text)
    response = client.post(reverse("movies:onboarding_skip"), {"movie": shown[0], "next": "/"}, follow=True, **HTMX)
    assert response.status_code == 200 and 'id="main-content"' in response.text
    assert shown[0] not in card_ids(response.text) and "Skipped" in response.text


def test_skipped_movies_are_capped_to_the_latest(client, member, catalogue):
    session = client.session
    session[ONBOARDING_SKIPPED] = list(range(1_000_000, 1_000_000 + ONBOARDING_SKIPPED_MAX))
    session.save()
    movie = catalogue["Drama"][0]
    client.post(reverse("movies:onboarding_skip"), {"movie": movie.pk})
    client.post(reverse("movies:onboarding_skip"), {"movie": movie.pk})  # twice: still once
    skipped = client.session[ONBOARDING_SKIPPED]
    assert len(skipped) == ONBOARDING_SKIPPED_MAX and skipped[-1] == movie.pk and skipped.count(movie.pk) == 1
    assert skipped[0] == 1_000_001  # the oldest went


def test_haven_t_seen_it_refuses_what_a_write_refuses(client, catalogue):
    movie = catalogue["Drama"][0]
    anonymous = client.post(reverse("movies:onboarding_skip"), {"movie": movie.pk}, **JSON)
    assert anonymous.status_code == 401
    user = UserFactory()
    client.force_login(user)
    assert client.post(reverse("movies:onboarding_skip"), {"movie": 987654}, **JSON).status_code == 400
    assert client.get(reverse("movies:onboarding_skip")).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("movies:onboarding_skip"), {"movie": movie.pk}).status_code == 403


def test_the_genre_picker_offers_well_known_movies_of_that_genre(client, member, catalogue):
    comedies = catalogue["Comedy"]
    RatingFactory(user=member, movie=comedies[0], score=4.0)
    page = client.get(reverse("movies:home"), {"genre": catalogue["comedy"].pk}).text
    assert "1 of 5 rated" in page and "Well-known Comedy movies" in page  # the progress is kept
    assert card_ids(page) == [m.pk for m in comedies[1:13]]  # the most rated first, the rated one left out
    assert f'<option value="{catalogue["comedy"].pk}" selected>Comedy</option>' in page
    assert 'name="next" value="/?genre=' in page  # rating or skipping comes back to the same genre

    client.post(reverse("movies:onboarding_skip"), {"movie": comedies[1].pk})
    page = client.get(reverse("movies:home"), {"genre": catalogue["comedy"].pk}).text
    assert card_ids(page) == [m.pk for m in comedies[2:14]]


def test_an_unknown_genre_shows_all_genres_and_says_so(client, member, catalogue):
    page = client.get(reverse("movies:home"), {"genre": "999999"}).text
    assert "no such genre" in page and len(card_ids(page)) == 12


def test_when_everything_was_skipped_onboarding_says_what_to_do(client, member, catalogue):
    comedy = catalogue["comedy"].pk
    for movie in catalogue["Comedy"]:
        client.post(reverse("movies:onboarding_skip"), {"movie": movie.pk})
    page = client.get(reverse("movies:home"), {"genre": comedy}).text
    assert card_ids(page) == [] and "No more movies to offer from Comedy" in page


def test_the_new_pages_need_nothing_the_csp_refuses(client, member, catalogue):
    from tests.security.test_csp import inline_code

    NotInterested.objects.create(user=member, movie=catalogue["Drama"][0])
    for url in (
        reverse("movies:not_interested_list"),
        f"{reverse('movies:home')}?genre={catalogue['comedy'].pk}",
        reverse("movies:detail", args=[catalogue["Drama"][0].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200 and inline_code(response.text) == [], url

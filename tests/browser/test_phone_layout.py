"""A 390x844 phone screen (issue 14, item 3): no page a member can reach scrolls sideways, and the header folds
into a Menu button instead of stacking its links. Debian's Chromium through Playwright, as the journeys."""

import datetime
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from movies.models import Movie, WatchlistItem, searchable
from recommender.ml import vae
from recommender.models import RecommendationLog
from recommender.services import model_version_activate, model_version_train
from tests.conftest import PROJECT_ROOT, TINY

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "screenshots"
PHONE = {"width": 390, "height": 844}

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

LONG_TITLE = "The Extraordinary Adventures of Adèle Blanc-Sec and the Mummies of the Pharaoh's Lost Kingdom"


@pytest.fixture(scope="module")
def phone_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
        )
        yield browser
        browser.close()


@pytest.fixture
def member_on_a_phone(phone_browser, live_server, two_taste_catalogue):
    """A member with ratings, a watchlist, a recommendation history and a model in service, on a phone."""
    movies = two_taste_catalogue["movies"]
    # A long title must wrap, not widen the page (update(): the fixture's objects predate the rating counts).
    Movie.objects.filter(pk=movies[3].pk).update(title=LONG_TITLE, search_title=searchable(LONG_TITLE))
    model_version_activate(version=model_version_train(config=vae.preset("default", **{**TINY, "max_epochs": 3})))
    member = two_taste_catalogue["users"][0]
    WatchlistItem.objects.create(user=member, movie=movies[20])
    now = datetime.datetime.now(datetime.UTC)
    for movie in movies[3:5]:
        RecommendationLog.objects.create(
            user=member, movie=movie, source="model", predicted_rating=4.2, first_shown_at=now, last_shown_at=now
        )
    client = Client()
    client.force_login(member)
    context = phone_browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page, movies
    context.close()


def overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: it never scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def test_no_member_page_scrolls_sideways_on_a_phone(member_on_a_phone):
    page, movies = member_on_a_phone
    urls = [
        reverse("movies:home"),
        reverse("movies:top_rated"),
        reverse("movies:catalogue"),
        reverse("movies:catalogue") + "?q=adventures",
        reverse("movies:detail", args=[movies[3].pk]),
        reverse("movies:my_ratings"),
        reverse("movies:about_my_ratings"),
        reverse("movies:watchlist"),
        reverse("movies:not_interested_list"),
        reverse("recommender:history"),
        reverse("accounts:profile"),
        reverse("accounts:password_change"),
        reverse("accounts:delete"),
    ]
    SCREENSHOTS.mkdir(exist_ok=True)
    too_wide = {}
    for url in urls:
        page.goto(url)
        if overflow(page) > 0:
            too_wide[url] = overflow(page)
        name = url.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "home"
        page.screenshot(path=str(SCREENSHOTS / f"phone-{name}.png"), full_page=True)
    assert too_wide == {}, f"pages wider than a 390 px screen (extra pixels): {too_wide}"


def test_the_header_folds_into_a_menu_on_a_phone(member_on_a_phone):
    page, _ = member_on_a_phone
    page.goto(reverse("movies:my_ratings"))
    header_height = page.locator(".site-header").bounding_box()["height"]
    assert header_height < 0.12 * PHONE["height"], header_height  # it took a third of the screen
    menu = page.locator(".phone-menu")
    assert menu.is_visible() and not page.locator(".main-nav").is_visible()
    assert not menu.get_by_role("link", name="Watchlist").is_visible()
    menu.locator("summary").click()
    menu.get_by_role("link", name="Watchlist").click()
    page.wait_for_url("**/me/watchlist/")
    assert overflow(page) == 0


def test_wide_screens_keep_both_navigations_and_no_menu_button(phone_browser, live_server, two_taste_catalogue):
    context = phone_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto("/")
    assert page.locator(".main-nav").is_visible() and not page.locator(".phone-menu").is_visible()
    assert page.locator(".main-nav").get_by_role("link", name="Browse").is_visible()
    context.close()

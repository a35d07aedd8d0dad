"""What the catalogue's pages share with the apps built on it, without importing them.

Paging: cards come PAGE_STEP at a time ("Show more"), at most MAX_SHOWN. Onboarding: a member rates
ONBOARDING_TARGET movies before the home page shows personal recommendations.

Hooks: an app built on movies fills them in its AppConfig.ready() (the recommender does, in recommender/apps.py):
- the personal home page, which "/" shows to a member past onboarding;
- sections added to each movie page (the recommender's "Similar movies").
Left empty, the site still works: members see the top-rated page at "/", and movie pages have no extra sections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .models import Movie

PAGE_STEP = 4  # the design report shows four movies; "show more" adds four at a time
MAX_SHOWN = 48
ONBOARDING_TARGET = 5  # ratings a newcomer gives before personal recommendations (as MovieLens does)

# personal_home(request, ratings={movie pk: stars}) -> the member's home page (their ratings, read once by the caller)
PersonalHome = Callable[..., HttpResponse]
# section(request, movie) -> safe HTML (render_to_string, format_html) added to the movie page, or "" for none
MovieSection = Callable[[HttpRequest, "Movie"], str]

_personal_home: PersonalHome | None = None
_movie_sections: dict[str, MovieSection] = {}


def shown_count(request: HttpRequest) -> int:
    """How many cards the page shows: ?show=N, kept between PAGE_STEP and MAX_SHOWN."""
    try:
        return max(PAGE_STEP, min(int(request.GET.get("show", PAGE_STEP)), MAX_SHOWN))
    except ValueError:
        return PAGE_STEP


def personal_home_register(view: PersonalHome | None) -> None:
    global _personal_home
    _personal_home = view


def personal_home() -> PersonalHome | None:
    return _personal_home


def movie_section_register(name: str, section: MovieSection) -> None:
    """Add (or replace, by name) a section of the movie page; sections show in the order first registered."""
    _movie_sections[name] = section


def movie_sections(request: HttpRequest, movie: Movie) -> list[str]:
    return [html for html in (section(request, movie) for section in _movie_sections.values()) if html]

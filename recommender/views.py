"""The recommender's pages: a member's personal home page, their recommendation history (and the POST that
records it), and the "Similar movies" section of each movie page.

The personal home page and the movie page section are shown through the catalogue's pages (movies.pages), which
recommender/apps.py fills at start-up: "/" stays `movies:home`, and movies imports nothing from here.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST, require_safe

from movies import selectors as movie_selectors
from movies.models import Movie
from movies.pages import MAX_SHOWN, PAGE_STEP, shown_count

from .history import HistoryError, parse_movie_ids, recommendation_history, recommendation_shown_record
from .recommendations import SOURCE_POPULAR, personal_recommendations, similar_movies

SIMILAR_SHOWN = 8


def personal_home(request: HttpRequest, *, ratings: dict[int, float]) -> HttpResponse:
    """A member's home page past onboarding (movies.views.home calls it): their recommendations.

    Side-effect free: once loaded, the page POSTs the movies it shows to `history_record`."""
    shown = shown_count(request)
    recommended = personal_recommendations(user=request.user, limit=shown, ratings=ratings)
    return render(
        request,
        "recommender/recommendations.html",
        {
            "recommendations": recommended,
            "next_show": shown + PAGE_STEP,
            "has_more": len(recommended) == shown and shown < MAX_SHOWN,
            "from_popular": bool(recommended) and recommended[0].source == SOURCE_POPULAR,
            "rated_count": len(ratings),
        },
    )


@login_required
@require_safe
def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(recommendation_history(user=request.user), 30).get_page(request.GET.get("page"))
    return render(
        request,
        "recommender/history.html",
        {
            "page": page,
            "scores": movie_selectors.user_scores(user=request.user, movie_ids=[e.movie_id for e in page]),
        },
    )


@require_POST
def history_record(request: HttpRequest) -> JsonResponse:
    """Record the movies the recommendations page showed (POST `movie` ids, CSRF-protected; the owner's only).

    JSON: 200 {"ok": true, "recorded": n}; 400 {"ok": false, "error": why} when the ids are malformed or not what
    the server recommends to this member now; 403 for a visitor who is not logged in."""
    if not request.user.is_authenticated:
        return JsonResponse({"ok": False, "error": "Log in to keep a recommendation history."}, status=403)
    try:
        shown = recommendation_shown_record(user=request.user, movie_ids=parse_movie_ids(request.POST.getlist("movie")))
    except HistoryError as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=400)
    return JsonResponse({"ok": True, "recorded": len(shown)})


def similar_movies_section(request: HttpRequest, movie: Movie) -> str:
    """The movie page's "Similar movies" (movies.pages section): the active model's picks, nothing without one."""
    similar = similar_movies(movie=movie, limit=SIMILAR_SHOWN)
    if not similar:
        return ""
    return render_to_string("recommender/_similar_movies.html", {"similar": similar}, request=request)

"""Site pages: guest home, onboarding, movie pages, ratings, watchlist, "not interested" (the catalogue is in
movies.catalogue_views).

Every write is a POST with CSRF, works without JavaScript (POST, redirect, GET) and, with htmx, updates the
page in place. API-style callers (Accept: application/json) get JSON with a 4xx status and a clear message.
The personal home page and the movie page's "Similar movies" come from the recommender through movies.pages;
movies imports nothing from it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from accounts.throttling import limited, member_key, wants_json

from . import pages, selectors, services, tasks
from .forms import MovieChoiceForm, RatingForm
from .models import Genre, Movie
from .page_cache import cached_guest_page
from .pages import ONBOARDING_TARGET, PAGE_STEP, shown_count


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _done(
    request: HttpRequest,
    *,
    ok: bool,
    message: str,
    fallback: str,
    status: int = 400,
    payload: dict | None = None,
    page_message: str | None = None,
) -> HttpResponse:
    """One way to answer every write: JSON for API-style callers, else a message and a redirect back.

    `page_message` is the message's HTML for the page (with a link, say); JSON always gets the plain `message`.
    """
    if wants_json(request):
        return JsonResponse(
            {"ok": True, "message": message, **(payload or {})} if ok else {"ok": False, "error": message},
            status=200 if ok else status,
        )
    (messages.success if ok else messages.error)(request, page_message or message)
    return redirect(_safe_next(request, fallback), permanent=False)


def _chosen_movie(request: HttpRequest) -> Movie | None:
    """The catalogue movie a write names (POST "movie"), or None when there is no such movie."""
    form = MovieChoiceForm(request.POST)
    return form.cleaned_data["movie"] if form.is_valid() else None


def _no_such_movie(request: HttpRequest, *, fallback: str) -> HttpResponse:
    return _done(request, ok=False, message="There is no such movie in the catalogue.", fallback=fallback)


def _login_required_for_writes(view):
    """Anonymous writes get a clear answer: 401 JSON for API-style callers, else the log-in page."""

    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            if wants_json(request):
                return JsonResponse({"ok": False, "error": "Log in to rate movies and keep lists."}, status=401)
            messages.info(request, "Log in (or sign up) to rate movies and get personal recommendations.")
            return redirect(
                f"{reverse('accounts:login')}?{urlencode({'next': _safe_next(request, reverse('movies:home'))})}"
            )
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


# ------------------------------------------------------------------------------------------- home


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Guests get the top-rated page; members first rate a few movies, then get their personal home page."""
    if request.user.is_authenticated:
        # Read once: the count decides onboarding, the ratings themselves are what the recommender folds in.
        ratings = selectors.user_rating_scores(user=request.user)
        if len(ratings) < ONBOARDING_TARGET:
            return _onboarding(request, len(ratings))
        personal_home = pages.personal_home()
        if personal_home is not None:
            return personal_home(request, ratings=ratings)
    return top_rated(request)


@require_safe
def top_rated(request: HttpRequest) -> HttpResponse:
    """Guest mode: pick a genre (or all) and see its best-rated movies by damped average."""
    return cached_guest_page("top-rated", _top_rated, request)


def _top_rated(request: HttpRequest) -> HttpResponse:
    genres = list(selectors.genre_list())
    genre = _genre_asked(request, genres)
    shown = shown_count(request)
    movies = list(selectors.popular_movies(limit=shown + 1, genre_id=genre.pk if genre else None))
    return render(
        request,
        "movies/top_rated.html",
        {
            "genres": genres,
            "genre": genre,
            "movies": movies[:shown],
            "has_more": len(movies) > shown,
            "next_show": shown + PAGE_STEP,
            "scores": selectors.user_scores(user=request.user, movie_ids=[m.pk for m in movies]),
        },
    )


def _genre_asked(request: HttpRequest, genres: list[Genre]) -> Genre | None:
    """The genre of ?genre=<id>, or None (all genres), saying so when the id is not a genre."""
    if not request.GET.get("genre"):
        return None
    genre = next((g for g in genres if str(g.pk) == request.GET["genre"]), None)
    if genre is None:
        messages.error(request, "There is no such genre; showing all genres.")
    return genre


# Movies a newcomer said they have not seen: kept in the session (never stored as ratings), the latest only.
ONBOARDING_SKIPPED = "onboarding_skipped"
ONBOARDING_SKIPPED_MAX = 200


def _onboarding(request: HttpRequest, rated_count: int) -> HttpResponse:
    genres = list(selectors.genre_list())
    genre = _genre_asked(request, genres)
    candidates = selectors.onboarding_movies(
        user=request.user,
        limit=12,
        genre_id=genre.pk if genre else None,
        exclude_movie_ids=request.session.get(ONBOARDING_SKIPPED, []),
    )
    return render(
        request,
        "movies/onboarding.html",
        {
            "movies": candidates,
            "genres": genres,
            "genre": genre,
            "rated_count": rated_count,
            "target": ONBOARDING_TARGET,
            "remaining": ONBOARDING_TARGET - rated_count,
            "scores": {},
        },
    )


@require_POST
@_login_required_for_writes
def onboarding_skip(request: HttpRequest) -> HttpResponse:
    """The onboarding card's "Haven't seen it": the movie is no longer offered; only the session remembers it."""
    movie = _chosen_movie(request)
    if movie is None:
        return _no_such_movie(request, fallback=reverse("movies:home"))
    skipped = [pk for pk in request.session.get(ONBOARDING_SKIPPED, []) if pk != movie.pk] + [movie.pk]
    request.session[ONBOARDING_SKIPPED] = skipped[-ONBOARDING_SKIPPED_MAX:]
    return _done(
        request,
        ok=True,
        message=f"Skipped {movie}: here is another one.",
        fallback=reverse("movies:home"),
        payload={"movie": movie.pk},
    )


@require_safe
def movie_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # A guest's movie page (facts, distribution, similar movies) is the same for every visitor.
    return cached_guest_page("movie", lambda request: _movie_detail(request, pk), request)


def _movie_detail(request: HttpRequest, pk: int) -> HttpResponse:
    movie = get_object_or_404(Movie.objects.prefetch_related("genres"), pk=pk)
    tasks.movie_details_request(movie)  # poster and plot from TMDb, in the background (no-op without a key)
    distribution = selectors.rating_distribution(movie=movie)
    own = selectors.user_rating_of(user=request.user, movie=movie)
    on_watchlist = request.user.is_authenticated and request.user.watchlist.filter(movie=movie).exists()
    not_interested = request.user.is_authenticated and request.user.not_interested.filter(movie=movie).exists()
    return render(
        request,
        "movies/movie_detail.html",
        {
            "movie": movie,
            "distribution": distribution,
            "most_common": max((n for _, n in distribution), default=0),
            "own_rating": own,
            "on_watchlist": on_watchlist,
            "not_interested": not_interested,
            "sections": pages.movie_sections(request, movie),
            "scores": {movie.pk: own.score} if own else {},
        },
    )


# ------------------------------------------------------------------------------------------- writes


@require_POST
@limited("rating", key=member_key)
@limited("rating_daily", key=member_key)
@_login_required_for_writes
def rate(request: HttpRequest) -> HttpResponse:
    form = RatingForm(request.POST)
    if not form.is_valid():
        errors = [message for field_errors in form.errors.values() for message in field_errors]
        return _done(request, ok=False, message=" ".join(errors), fallback=reverse("movies:home"))
    movie, score = form.cleaned_data["movie"], form.cleaned_data["score"]
    services.rating_set(user=request.user, movie=movie, score=score)
    return _done(
        request,
        ok=True,
        message=f"You rated {movie} {score:g} star{'' if score == 1 else 's'}.",
        fallback=reverse("movies:home"),
        payload={"movie": movie.pk, "score": score},
    )


@require_POST
@_login_required_for_writes
def rating_delete(request: HttpRequest) -> HttpResponse:
    movie = _chosen_movie(request)
    if movie is None:
        return _no_such_movie(request, fallback=reverse("movies:my_ratings"))
    if not services.rating_delete(user=request.user, movie=movie):
        return _done(
            request, ok=False, message=f"You had not rated {movie}.", fallback=reverse("movies:my_ratings"), status=404
        )
    return _done(
        request,
        ok=True,
        message=f"Your rating of {movie} was removed.",
        fallback=reverse("movies:my_ratings"),
        payload={"movie": movie.pk, "score": None},
    )


def _movie_list_action(add, remove, added: str, removed: str, added_link: tuple[str, str] | None = None):
    """A POST that adds a movie to one of the user's lists, or with action=remove takes it off; `added_link`
    (URL name, text) is a link the page's message offers after adding (to undo it, say)."""

    @require_POST
    @_login_required_for_writes
    def view(request: HttpRequest) -> HttpResponse:
        movie = _chosen_movie(request)
        if movie is None:
            return _no_such_movie(request, fallback=reverse("movies:home"))
        page_message = None
        try:
            if request.POST.get("action") == "remove":
                remove(user=request.user, movie=movie)
                message = removed.format(movie=movie)
            else:
                add(user=request.user, movie=movie)
                message = added.format(movie=movie)
                if added_link:
                    page_message = format_html('{} <a href="{}">{}</a>', message, reverse(added_link[0]), added_link[1])
        except services.RatingError as error:
            return _done(request, ok=False, message=str(error), fallback=reverse("movies:home"))
        return _done(
            request,
            ok=True,
            message=message,
            fallback=reverse("movies:home"),
            payload={"movie": movie.pk},
            page_message=page_message,
        )

    return view


watchlist_toggle = _movie_list_action(
    services.watchlist_add, services.watchlist_remove, "{movie} is on your watchlist.", "{movie} left your watchlist."
)
not_interested_toggle = _movie_list_action(
    services.not_interested_add,
    services.not_interested_remove,
    "{movie} will not be recommended to you again.",
    "{movie} can be recommended to you again.",
    added_link=("movies:not_interested_list", "Undo or see all"),
)


# ------------------------------------------------------------------------------------------- my pages


@login_required
@require_safe
def my_ratings(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.user_ratings(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "movies/my_ratings.html", {"page": page, "scores": {r.movie_id: r.score for r in page}})


@login_required
@require_safe
def about_my_ratings(request: HttpRequest) -> HttpResponse:
    return render(
        request, "movies/about_my_ratings.html", {"summary": selectors.user_rating_summary(user=request.user)}
    )


@login_required
@require_safe
def my_watchlist(request: HttpRequest) -> HttpResponse:
    return render(request, "movies/watchlist.html", {"items": selectors.watchlist(user=request.user)})


@login_required
@require_safe
def my_not_interested(request: HttpRequest) -> HttpResponse:
    """The movies marked "Not interested", each with an Undo."""
    return render(request, "movies/not_interested.html", {"items": selectors.not_interested(user=request.user)})

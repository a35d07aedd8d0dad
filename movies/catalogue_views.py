"""The catalogue: search by title, genre and year, sorted; results update as you type (htmx) and work without it."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import selectors
from .forms import CatalogueFilterForm
from .models import Movie


@require_safe
def catalogue(request: HttpRequest) -> HttpResponse:
    form = CatalogueFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        # Say what is wrong beside the field and show nothing, rather than every movie as if nothing was asked.
        movies = Movie.objects.none()
    else:
        filters = form.cleaned_data if form.is_bound else {}
        query = filters.get("q") or ""
        movies = selectors.movie_search(
            query=query,
            genre_id=filters["genre"].pk if filters.get("genre") else None,
            year=filters.get("year"),
            # Typed words: the best title matches first unless another order was picked.
            sort=filters.get("sort") or ("relevance" if query.strip() else "popular"),
        )
    page = Paginator(movies, 24).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "movies/catalogue.html",
        {
            "form": form,
            "page": page,
            "query_string": query.urlencode(),
            "scores": selectors.user_scores(user=request.user, movie_ids=[m.pk for m in page]),
        },
    )

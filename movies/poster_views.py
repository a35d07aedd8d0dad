"""Posters: the generated SVG of a movie, the stored TMDb one, and which of them a page shows.

Stored posters are served here, through the storage API, rather than from MEDIA_URL: nothing else serves media
(WhiteNoise serves static files only; the storage also holds model files, which must stay private), and it works the
same with local files or S3. Their URLs carry the file's name, which carries a hash of its content: cached for a year.
"""

from __future__ import annotations

import posixpath

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

from mynextmovie_site.routes import cached_reverse

from .models import Movie
from .posters import poster_svg, poster_version
from .tmdb import IMAGE_TYPES

# A URL that carries the current version never changes content: browsers and proxies keep it for a year.
# Without it (or with an old one) the answer is the current poster, cached for an hour.
VERSIONED_MAX_AGE = 365 * 24 * 3600
UNVERSIONED_MAX_AGE = 3600
STORED_TYPES = {extension: kind for kind, (extension, _) in IMAGE_TYPES.items()}  # what the fetch task stores


def _genre_names(movie: Movie) -> list[str]:
    return [genre.name for genre in movie.genres.all()]  # the prefetched genres, on cards and movie pages


def generated_poster_version(movie: Movie) -> str:
    return poster_version(movie.title, movie.year, _genre_names(movie))


def poster_url(movie: Movie) -> str:
    """The stored TMDb poster when there is one, else the generated SVG at its versioned URL."""
    if movie.poster:
        return cached_reverse("movies:stored_poster", args=[movie.pk, posixpath.basename(movie.poster.name)])
    return f"{cached_reverse('movies:poster', args=[movie.pk])}?v={generated_poster_version(movie)}"


@require_safe
def poster(request: HttpRequest, pk: int) -> HttpResponse:
    movie = get_object_or_404(Movie.objects.prefetch_related("genres"), pk=pk)
    genres = _genre_names(movie)
    version = poster_version(movie.title, movie.year, genres)
    response = HttpResponse(poster_svg(movie.title, movie.year, genres), content_type="image/svg+xml")
    response["ETag"] = f'"{version}"'
    if request.GET.get("v") == version:
        response["Cache-Control"] = f"public, max-age={VERSIONED_MAX_AGE}, immutable"
    else:
        response["Cache-Control"] = f"public, max-age={UNVERSIONED_MAX_AGE}"
    # A revalidation with the current ETag gets a 304 and no body.
    return get_conditional_response(request, etag=response["ETag"], response=response)


@require_safe
def stored_poster(request: HttpRequest, pk: int, name: str) -> FileResponse:
    movie = get_object_or_404(Movie, pk=pk)
    # Only the file this movie records, by its current name: no other path of the storage can be asked for.
    if not movie.poster or posixpath.basename(movie.poster.name) != name:
        raise Http404("No such poster")
    extension = posixpath.splitext(name)[1].lstrip(".")
    if extension not in STORED_TYPES:  # nothing else is served from this origin
        raise Http404("No such poster")
    try:
        handle = default_storage.open(movie.poster.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("The poster file is missing") from None
    response = FileResponse(handle, content_type=STORED_TYPES[extension])
    response["Cache-Control"] = f"public, max-age={VERSIONED_MAX_AGE}, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("movies/<int:pk>/poster.svg", poster, name="poster"),
    path("movies/<int:pk>/poster/<str:name>", stored_poster, name="stored_poster"),
]

from django.shortcuts import render

from .selectors import catalogue_counts, import_run_latest, movie_list_most_rated


def home(request):
    return render(
        request,
        "movies/home.html",
        {"counts": catalogue_counts(), "movies": movie_list_most_rated(), "latest_import": import_run_latest()},
    )

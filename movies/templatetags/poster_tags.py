"""Posters in templates: where a movie's poster is, and whether TMDb supplies data (its attribution is then due)."""

from django import template

from movies.poster_views import poster_url
from movies.tmdb import tmdb_enabled

register = template.Library()


@register.simple_tag
def poster_src(movie) -> str:
    return poster_url(movie)


@register.simple_tag
def tmdb_in_use() -> bool:
    return tmdb_enabled()

"""{% url %} is remembered (mynextmovie_site/routes.py): the same URLs as Django's, per script prefix and URLconf."""

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import NoReverseMatch, clear_script_prefix, reverse, set_script_prefix

from mynextmovie_site import routes


def render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def test_the_url_tag_gives_djangos_urls_without_a_load():
    assert render("{% url 'movies:detail' pk %}", pk=42) == reverse("movies:detail", args=[42])
    assert render("{% url 'movies:detail' pk=7 %}") == reverse("movies:detail", kwargs={"pk": 7})
    assert render("{% url 'movies:home' as home %}[{{ home }}]") == f"[{reverse('movies:home')}]"


def test_a_second_reversal_is_remembered():
    routes._reverse.cache_clear()
    render("{% url 'movies:detail' 3 %}")
    render("{% url 'movies:detail' 3 %}")
    info = routes._reverse.cache_info()
    assert info.hits >= 1 and info.currsize >= 1


def test_a_script_prefix_gets_its_own_urls():
    plain = render("{% url 'movies:detail' 3 %}")
    set_script_prefix("/mnm/")
    try:
        prefixed = render("{% url 'movies:detail' 3 %}")
    finally:
        clear_script_prefix()
    assert prefixed == "/mnm" + plain and render("{% url 'movies:detail' 3 %}") == plain


@override_settings(ROOT_URLCONF="tests.site.urls_for_routes")
def test_another_urlconf_gets_its_own_urls():
    assert render("{% url 'only-here' %}") == "/somewhere-else/"


def test_unknown_routes_still_fail_and_as_var_still_swallows_it():
    with pytest.raises(NoReverseMatch):
        render("{% url 'movies:no-such-page' %}")
    assert render("{% url 'movies:no-such-page' as missing %}[{{ missing }}]") == "[]"


def test_unhashable_arguments_are_reversed_directly():
    assert routes.cached_reverse("movies:detail", args=[5]) == reverse("movies:detail", args=[5])
    with pytest.raises(NoReverseMatch):
        routes.cached_reverse("movies:detail", kwargs={"pk": [5]})

"""{% capture %} (mynextmovie_site/capture.py): a block rendered once, shown wherever its name is used."""

from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.urls import reverse

from tests.accounts.factories import UserFactory


def test_a_captured_block_renders_once_escaped_and_shows_where_its_name_is_used() -> None:
    calls = []

    def counted() -> str:
        calls.append(1)
        return "<b>"

    html = Template("[{% capture part %}{{ value }}|{{ counted }}{% endcapture %}]{{ part }}+{{ part }}").render(
        Context({"value": "a&b", "counted": counted})
    )
    assert html == "[]a&amp;b|&lt;b&gt;+a&amp;b|&lt;b&gt;" and len(calls) == 1


@pytest.mark.parametrize("tag", ["{% capture %}", "{% capture a b %}", "{% capture a-b %}"])
def test_capture_needs_one_variable_name(tag: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="one variable name"):
        Template(tag + "x{% endcapture %}")


@pytest.mark.django_db
def test_the_header_shows_each_navigation_in_the_wide_and_the_phone_layout(client) -> None:
    client.force_login(UserFactory(username="navigator"))
    page = client.get(reverse("movies:catalogue")).text
    header = page.split("<header", 1)[1].split("</header>", 1)[0]
    wide, phone = header.split('<details class="phone-menu', 1)
    for links in (wide, phone):
        assert links.count(f'href="{reverse("movies:watchlist")}"') == 1
        assert links.count(">navigator</a>") == 1 and links.count('name="csrfmiddlewaretoken"') == 1
    assert 'aria-current="page"' in wide and 'aria-current="page"' in phone

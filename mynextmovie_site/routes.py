"""URL reversal, remembered: every card on a list page reverses the same few routes, about 60 times a page.

Django's ``reverse`` walks the resolver each time (about 50 us). The URLs a project reverses are few and never
change while a process runs, so the answer is kept per (route, arguments, script prefix, URLconf): a request
under another prefix or a test with another URLconf gets its own entry.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Library
from django.template.defaulttags import URLNode, url
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape


@lru_cache(maxsize=16_384)
def _reverse(view_name: str, args: tuple, kwargs: tuple, current_app: str | None, *_cache_key: Any) -> str:
    return reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app)


def cached_reverse(
    view_name: str, args: list | tuple = (), kwargs: dict | None = None, current_app: str | None = None
) -> str:
    """``django.urls.reverse``, remembered for hashable arguments."""
    key_args, key_kwargs = tuple(args), tuple(sorted((kwargs or {}).items()))
    if not all(isinstance(value, Hashable) for value in (*key_args, *(v for _, v in key_kwargs))):
        return reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reverse(view_name, key_args, key_kwargs, current_app, get_script_prefix(), urlconf)


class CachedURLNode(URLNode):
    """Django's ``{% url %}`` (same syntax, same errors), reversing through :func:`cached_reverse`."""

    def render(self, context: Any) -> str:
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {name: value.resolve(context) for name, value in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        address = ""
        try:
            address = cached_reverse(view_name, args, kwargs, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = address
            return ""
        return conditional_escape(address) if context.autoescape else address


# A template builtin (settings.TEMPLATES): every template's {% url %} is this one, no {% load %} needed.
register = Library()


@register.tag(name="url")
def cached_url(parser: Any, token: Any) -> CachedURLNode:
    node = url(parser, token)
    return CachedURLNode(node.view_name, node.args, node.kwargs, node.asvar)

from django import template
from django.conf import settings
from django.utils.html import escape
from django.utils.safestring import mark_safe

from movies.models import RATING_SCORES
from movies.selectors import damped_score, rating_prior
from mynextmovie_site.routes import cached_reverse

register = template.Library()

STAR_CHOICES = [(score, f"{'★' * int(score)}{'½' if score % 1 else ''} {score:g}") for score in RATING_SCORES]


def _star_label(score: float) -> str:
    return f"{score:g} star{'' if score == 1 else 's'}"


def _unique_prefix(request, movie, form_id) -> str:
    """An id prefix no other rating control on this page has: a movie's card can be shown twice on one page.

    Counted on the request, so the same page gives the same ids each time (htmx keeps the focus on a radio with the
    same id after it swaps the region in).
    """
    prefix = f"rate-{movie.pk}-{form_id or 'a'}"
    used = getattr(request, "_rating_control_ids", None) if request is not None else None
    if used is None:
        used = {}
        if request is not None:
            request._rating_control_ids = used
    used[prefix] = used.get(prefix, 0) + 1
    return prefix if used[prefix] == 1 else f"{prefix}-{used[prefix]}"


def _star_radios(*, movie_pk: int, prefix: str, own_score: float | None, submit_on_change: bool) -> str:
    """The ten radios and their star labels, built here as one string: one control per card, and the template loop
    rendering them cost about 1.5 ms each (a quarter of the recommendations page). The id prefix is the only text
    not made here, so it is escaped once: format_html escaping each of the 80 values cost most of the rest."""
    prefix = escape(prefix)
    movie_pk = int(movie_pk)
    extra = " data-submit-on-change" if submit_on_change else ""
    radios = []
    for i, score in enumerate(RATING_SCORES, start=1):
        value = f"{score:g}"
        checked = " checked" if own_score == score else ""
        side = "star-right" if i % 2 == 0 else "star-left"
        radios.append(
            f'<input type="radio" id="{prefix}-star{i}" name="score" value="{value}"{checked}{extra}'
            f' data-testid="star-{movie_pk}-{value}">'
            f'<label for="{prefix}-star{i}" class="star {side}" data-stars="{value}">'
            f'<span class="visually-hidden">{_star_label(score)}</span></label>'
        )
    return mark_safe("".join(radios))


def _csrf_input(context) -> str:
    """What ``{% csrf_token %}`` writes: the hidden token field, nothing where the page has no token."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":
        return ""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(token)}">'


def _movie_fields(context, movie_pk: int) -> str:
    """The hidden fields of a member's form about one movie: the CSRF token, the movie and the page to come back to.

    The token and the page are the same for every form of a page (two or three per card): made once per request."""
    request = context.get("request")
    token = context.get("csrf_token")
    shared = getattr(request, "_movie_form_fields", {})
    if token not in shared:
        next_path = escape(request.get_full_path()) if request is not None else ""
        shared[token] = (_csrf_input(context), f'<input type="hidden" name="next" value="{next_path}">')
        if request is not None:
            request._movie_form_fields = shared
    csrf, next_field = shared[token]
    return f'{csrf}<input type="hidden" name="movie" value="{int(movie_pk)}">{next_field}'


def _htmx_post(action: str, target: str, trigger: str = "") -> str:
    """The attributes that make a form post with htmx and swap in ``target`` (and the messages) from the answer."""
    trigger = f' hx-trigger="{trigger}"' if trigger else ""
    return (
        f' hx-post="{action}"{trigger} hx-target="{target}" hx-select="{target}" hx-swap="outerHTML"'
        ' hx-select-oob="#messages"'
    )


@register.simple_tag(takes_context=True)
def rating_form(context, movie, scores=None, target=None, form_id=None) -> str:
    """The half-star rating control for `movie` (a radio group, 0.5 to 5), the user's current rating from `scores`
    checked. `target` is the region htmx refreshes after a change; `form_id` tells apart two controls for one movie.

    With htmx a change saves at once (the delay lets arrow keys walk the stars and saves only where they stop);
    without JavaScript the <noscript> Save button posts the form. Built as one string like the radios inside it:
    every card of a member's page has one, and as an included template it was the largest part of a card.
    """
    request = context.get("request")
    own_score = (scores or {}).get(movie.pk)
    prefix = _unique_prefix(request, movie, form_id)
    radios = _star_radios(movie_pk=movie.pk, prefix=prefix, own_score=own_score, submit_on_change=not target)
    pk, title, prefix = int(movie.pk), escape(movie.title), escape(prefix)
    target = escape(target) if target else ""
    hidden = _movie_fields(context, pk)
    rate = escape(cached_reverse("movies:rate"))
    if own_score:
        value = f"{own_score:g} / 5"  # a half step, written as the radios write it ("3.5", "4")
        clear_button = (
            f'<button type="submit" form="{prefix}-clear" class="link-button star-clear" data-testid="clear-{pk}">'
            f'Clear<span class="visually-hidden"> my rating of {title}</span></button>'
        )
    else:
        value, clear_button = "Not rated", ""
    html = [
        (
            f'<div class="rating-control"><form class="rating-form" id="{prefix}" method="post" action="{rate}"'
            f' data-testid="rating-{pk}"{_htmx_post(rate, target, "change delay:400ms, submit") if target else ""}>'
            f'{hidden}<fieldset class="star-rating" data-testid="score-{pk}">'
            f'<legend>Your rating<span class="visually-hidden"> of {title}</span></legend>'
            f'<span class="star-radios">{radios}</span>'
            f'<span class="star-value" data-testid="own-score-{pk}">{value}</span>{clear_button}</fieldset>'
            f'<noscript><button type="submit" class="button small" data-testid="rate-{pk}">Save</button></noscript>'
            "</form>"
        )
    ]
    if own_score:
        clear = escape(cached_reverse("movies:rating_delete"))
        html.append(
            f'<form id="{prefix}-clear" method="post" action="{clear}" hidden'
            f"{_htmx_post(clear, target) if target else ''}>{hidden}</form>"
        )
    html.append("</div>")
    return mark_safe("".join(html))


# A card's buttons: (route, button); the button's {pk} and {title} are filled in, escaped.
_CARD_ACTIONS = {
    True: [  # onboarding
        (
            "movies:onboarding_skip",
            (
                '<button type="submit" class="link-button" data-testid="skip-{pk}">Haven\'t seen it'
                '<span class="visually-hidden">: {title}</span></button>'
            ),
        )
    ],
    False: [
        ("movies:watchlist_toggle", '<button type="submit" class="link-button">+ Watchlist</button>'),
        (
            "movies:not_interested",
            '<button type="submit" class="link-button" data-testid="not-interested-{pk}">Not interested</button>',
        ),
    ],
}


@register.simple_tag(takes_context=True)
def card_actions(context, movie, target, onboarding=False) -> str:
    """A member's buttons under a card, each a small form htmx posts to refresh `target`: "Haven't seen it" while
    onboarding, else "+ Watchlist" and "Not interested". Built as one string like the star radios: as template
    markup the three forms took about a sixth of the recommendations page's template time."""
    hidden = _movie_fields(context, movie.pk)
    target = escape(target or "")
    forms = []
    for route, button in _CARD_ACTIONS[bool(onboarding)]:
        action = escape(cached_reverse(route))
        forms.append(
            f'<form method="post" action="{action}"{_htmx_post(action, target)}>{hidden}'
            f"{button.format(pk=int(movie.pk), title=escape(movie.title))}</form>"
        )
    return mark_safe(f'<div class="card-actions">{"".join(forms)}</div>')


@register.filter
def percent_of(value, total) -> int:
    return round(100 * value / total) if total else 0


@register.filter
def width_class(percent) -> str:
    """A bar's width as a class (`w-0` to `w-100`, static/css/site.css): no inline style, which the CSP refuses."""
    try:
        return f"w-{min(100, max(0, round(float(percent))))}"
    except (TypeError, ValueError):
        return "w-0"


@register.filter
def stars(score) -> str:
    return dict(STAR_CHOICES).get(score, "")


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.simple_tag
def movie_score(movie) -> float | None:
    """The one score lists show and "Best rated" sorts by: the damped mean (selectors.damped_score).

    Querysets from the selectors annotate it; a movie from elsewhere (a recommendation) is scored the same way.
    """
    annotated = getattr(movie, "damped_mean", None)
    if annotated is not None:
        return annotated
    return damped_score(mean=movie.rating_mean, count=movie.rating_count, prior=rating_prior())


@register.simple_tag
def card_cache_seconds() -> int:
    """How long a card's movie part stays in the "cards" cache (settings.CARD_CACHE_SECONDS; 0: not cached)."""
    return settings.CARD_CACHE_SECONDS


@register.filter
def release_date(day) -> str:
    """ML-100K dates most movies 1 January of their year, a placeholder: show only the year then."""
    if day is None:
        return ""
    return str(day.year) if (day.month, day.day) == (1, 1) else f"{day.day} {day:%B %Y}"

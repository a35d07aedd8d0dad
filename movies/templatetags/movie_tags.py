from django import template

from movies.models import RATING_SCORES

register = template.Library()

STAR_CHOICES = [(score, f"{'★' * int(score)}{'½' if score % 1 else ''} {score:g}") for score in RATING_SCORES]


@register.inclusion_tag("movies/_rating_form.html", takes_context=True)
def rating_form(context, movie, scores=None, target=None, form_id=None):
    """The half-star rating control for `movie`, showing the user's current rating from `scores`."""
    return {
        "movie": movie,
        "own_score": (scores or {}).get(movie.pk),
        "target": target,
        "form_id": form_id,
        "star_choices": STAR_CHOICES,
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
    }


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

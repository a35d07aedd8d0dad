"""Generated posters: an SVG with the title set in type over a colour field chosen from the genres.

Pure functions, no database and no network, so every movie has a poster whether or not TMDb is configured. The
SVG holds no script, no style element and no external reference (fonts are the reader's own serif faces), and all
text is XML-escaped: it is safe to serve from the site's own origin.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 200, 300  # 2:3, the shape of a film poster (TMDb's w342 is 342x513)
STYLE_VERSION = "1"  # bump when the drawing changes, so every cached poster URL changes with it
MARGIN = 16
FONT = "Georgia, 'Times New Roman', serif"
CHAR_WIDTH = 0.56  # a serif letter's average width, in ems: enough to wrap without measuring glyphs
MAX_LINES = 6

# Hue (degrees) per MovieLens genre; genres the table lacks get a hue from their name's hash.
GENRE_HUES = {
    "Action": 8,
    "Adventure": 28,
    "Animation": 290,
    "Children": 175,
    "Children's": 175,
    "Comedy": 45,
    "Crime": 222,
    "Documentary": 140,
    "Drama": 205,
    "Fantasy": 268,
    "Film-Noir": 235,
    "Horror": 352,
    "IMAX": 195,
    "Musical": 320,
    "Mystery": 250,
    "Romance": 335,
    "Sci-Fi": 185,
    "Thriller": 260,
    "War": 75,
    "Western": 20,
}
NEUTRAL = ("#2b3040", "#161922")  # "(no genres listed)", or none at all
NO_GENRE = {"(no genres listed)", "unknown", ""}
# MovieLens files titles as "Shawshank Redemption, The"; a poster reads "The Shawshank Redemption".
TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)$")
ALTERNATE_TITLE = re.compile(r"\s+\((?:a\.k\.a\. )?[^()]*\)$")  # "City of Lost Children, The (Cité des ...)"


def _hue(genre: str) -> int:
    if genre in GENRE_HUES:
        return GENRE_HUES[genre]
    return int.from_bytes(hashlib.sha256(genre.encode()).digest()[:2], "big") % 360


def _hex(hue: float, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(channel * 255) for channel in (red, green, blue)))


def poster_colours(genres: Sequence[str]) -> tuple[str, str]:
    """The colour field's two ends (top, bottom): from the first two genres by name, dark enough for white type."""
    named = sorted({genre for genre in genres if genre not in NO_GENRE})
    if not named:
        return NEUTRAL
    first = _hue(named[0])
    # One genre: a darker shade of its own hue. Two or more: the second genre's hue, so mixes differ from singles.
    second = _hue(named[1]) if len(named) > 1 else first
    return _hex(first, 0.36, 0.55), _hex(second, 0.16 if second == first else 0.22, 0.5)


def display_title(title: str) -> str:
    """The title as a poster reads it: a trailing article moved to the front, an alternate title dropped."""
    title = " ".join(title.split())
    shorter = ALTERNATE_TITLE.sub("", title)
    if shorter:
        title = shorter
    if match := TRAILING_ARTICLE.match(title):
        title = f"{match['article']} {match['rest']}"
    return title


def title_lines(title: str, chars_per_line: int, max_lines: int = MAX_LINES) -> list[str]:
    """Words packed greedily into lines; a word too long for a line is cut; an overflow ends in an ellipsis."""
    words: list[str] = []
    for word in title.split():
        words += [word[i : i + chars_per_line] for i in range(0, len(word), chars_per_line)] or [word]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= chars_per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: chars_per_line - 1].rstrip() + "…"
    return lines


def _layout(title: str) -> tuple[int, list[str]]:
    """The largest type size whose wrapped title fits the poster's width and MAX_LINES lines."""
    for size in (30, 26, 22, 19, 16):
        chars = int((WIDTH - 2 * MARGIN) / (size * CHAR_WIDTH))
        lines = title_lines(title, chars)
        if len(lines) <= min(MAX_LINES, 4 if size >= 22 else MAX_LINES) and not lines[-1].endswith("…"):
            return size, lines
    return size, lines


def poster_svg(title: str, year: int | None, genres: Sequence[str]) -> str:
    """The poster as an SVG document (viewBox 0 0 200 300)."""
    top, bottom = poster_colours(genres)
    shown = display_title(title) or "Untitled"
    size, lines = _layout(shown)
    leading = round(size * 1.15)
    block = leading * (len(lines) - 1)
    first_baseline = round(HEIGHT * 0.45 - block / 2)
    tspans = "".join(
        f'<tspan x="{WIDTH // 2}" y="{first_baseline + i * leading}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    year_text = (
        f'<text x="{WIDTH // 2}" y="{first_baseline + block + round(size * 1.3) + 4}" font-family="{FONT}" '
        f'font-size="15" fill="#ffffff" fill-opacity="0.8" text-anchor="middle">{year}</text>'
        if year
        else ""
    )
    label = " · ".join(sorted(genre for genre in genres if genre not in NO_GENRE)[:3])
    genre_text = (
        f'<text x="{WIDTH // 2}" y="{HEIGHT - MARGIN - 2}" font-family="system-ui, sans-serif" font-size="9" '
        f'fill="#ffffff" fill-opacity="0.7" text-anchor="middle" letter-spacing="0.3">{escape(label.upper())}</text>'
        if label
        else ""
    )
    heading = escape(f"{shown} ({year})" if year else shown)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label={quoteattr(f"Poster of {shown}")}>'
        f"<title>{heading}</title>"
        f'<defs><linearGradient id="field" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/></linearGradient></defs>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#field)"/>'
        f'<rect x="8" y="8" width="{WIDTH - 16}" height="{HEIGHT - 16}" fill="none" stroke="#ffffff" '
        f'stroke-opacity="0.25"/>'
        f'<text font-family="{FONT}" font-size="{size}" font-weight="bold" fill="#ffffff" '
        f'text-anchor="middle">{tspans}</text>'
        f"{year_text}{genre_text}</svg>"
    )


def poster_version(title: str, year: int | None, genres: Sequence[str]) -> str:
    """A short fingerprint of what the poster shows: its URL carries it, so a changed title gets a new URL."""
    key = "\x1f".join([STYLE_VERSION, title, str(year or ""), *sorted(genres)])
    return hashlib.sha256(key.encode()).hexdigest()[:12]

"""MovieLens titles: "Shawshank Redemption, The (1994)" -> ("The Shawshank Redemption", 1994)."""

import re

_YEAR_AT_END = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
# Articles MovieLens moves to the end of a title, in the languages its catalogue uses most.
_TRAILING_ARTICLE = re.compile(
    r"^(?P<main>.+?), (?P<article>The|A|An|Les|La|Le|L'|Il|Die|Das|Der|El|Los|Las|Lo|Un|Une|Det|Den|De|Het)"
    r"(?P<rest>\s*\(.*\))?$"
)


def split_title(raw_title: str) -> tuple[str, int | None]:
    """Return the display title without its year, with a trailing article moved to the front, and the year."""
    text = " ".join(raw_title.split())
    year = None
    match = _YEAR_AT_END.match(text)
    if match and match.group("title"):
        text, year = match.group("title"), int(match.group("year"))
    article_match = _TRAILING_ARTICLE.match(text)
    if article_match:
        article = article_match.group("article")
        separator = "" if article.endswith("'") else " "
        text = f"{article}{separator}{article_match.group('main')}{article_match.group('rest') or ''}"
    return text, year

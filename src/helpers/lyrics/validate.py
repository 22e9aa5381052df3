"""Decide whether a provider's hit is the song that was asked for.

Lyrics providers answer a search with *something*: lyricsgenius, when no hit matches exactly,
returns the first hit that has lyrics, which is how "House of the Rising Sun" came back as a
Dickens text and "Tell Me" as a book chapter. Here a hit is accepted only when

* its title and artist, normalised (:func:`normalise_title`, :func:`normalise_artist`), are
  close to the query by :mod:`rapidfuzz` scores, and
* its text looks like a song (:func:`song_likeness_problems`): not too short or too long, not
  prose paragraphs, not a track list.

Every rejection carries its reasons, so a caller can say *why* nothing was found.

Examples
--------
>>> from helpers.lyrics.validate import normalise_title, match_scores
>>> normalise_title("Levels (feat. Someone) - Radio Edit")
'levels'
>>> match_scores("The Animals", "House of the Rising Sun",
...              "Charles Dickens", "The House of the Rising Sun (Chapter 1)")["artist"] < 50
True
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rapidfuzz import fuzz

#: Minimum rapidfuzz score (0-100) of the normalised titles and artists.
TITLE_THRESHOLD = 85.0
ARTIST_THRESHOLD = 80.0

# Decorations that name a version, not a different song. Matched inside (), [] or after " - ".
_VERSION_WORDS = (
    r"feat\.?|ft\.?|featuring|with|prod\.?|remix|mix|edit|version|remaster(?:ed)?|live|"
    r"acoustic|instrumental|mono|stereo|demo|radio|extended|original|single|album|bonus|"
    r"explicit|clean|deluxe|re-?recorded|taylor's version|from|unplugged|cover|karaoke"
)
_BRACKETED_VERSION = re.compile(
    rf"\s*[\(\[][^\)\]]*\b(?:{_VERSION_WORDS})\b[^\)\]]*[\)\]]", re.IGNORECASE
)
_DASHED_VERSION = re.compile(rf"\s+[-–—]\s+[^-–—]*\b(?:{_VERSION_WORDS})\b.*$", re.IGNORECASE)
_TRAILING_FEAT = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s+.*$", re.IGNORECASE)
_ARTIST_SEPARATORS = re.compile(r"\s*(?:,|;|&|\+|\bx\b|\band\b|\bwith\b|\bvs\.?\b)\s*", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower-case *text*, drop accents and punctuation, squeeze spaces (for comparison only)."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace("’", "'")
    text = re.sub(r"'", "", text)  # don't -> dont, not "don t"
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def strip_decorations(title: str) -> str:
    """Return *title* without version decorations, otherwise as written (for search queries).

    >>> strip_decorations("House of the Rising Sun (feat. X) [Live] - 2011 Remaster")
    'House of the Rising Sun'
    """
    text = str(title)
    previous = None
    while previous != text:  # decorations can be stacked: "X (feat. Y) [Remix]"
        previous = text
        text = _BRACKETED_VERSION.sub("", text)
    text = _TRAILING_FEAT.sub("", _DASHED_VERSION.sub("", text)).strip()
    return text or str(title).strip()


def normalise_title(title: str) -> str:
    """Return *title* without version decorations (feat., remix, edit, live, ...), folded.

    ``"Levels (Radio Edit)"``, ``"Levels - Extended Mix"`` and ``"Levels feat. X"`` all give
    ``"levels"``. A leading "The" is kept (titles differ by it less often than artists).
    """
    text = strip_decorations(title)
    return fold(text) or fold(title)


def normalise_artist(artist: str) -> str:
    """Return the primary artist of *artist*, folded, without a leading "the".

    ``"Calvin Harris feat. Rihanna"`` and ``"Calvin Harris & Disciples"`` give
    ``"calvin harris"``; ``"The Animals"`` gives ``"animals"``.
    """
    text = _TRAILING_FEAT.sub("", _BRACKETED_VERSION.sub("", str(artist)))
    primary = _ARTIST_SEPARATORS.split(text)[0] if text.strip() else text
    folded = fold(primary) or fold(artist)
    return re.sub(r"^the\s+", "", folded)


def _title_score(query: str, candidate: str) -> float:
    a, b = normalise_title(query), normalise_title(candidate)
    # token_sort forgives word order; plain ratio penalises extra words ("tell me chapter 3")
    return float(max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)))


def _artist_score(query: str, candidate: str) -> float:
    def without_feat(name):
        return re.sub(r"^the\s+", "", fold(_TRAILING_FEAT.sub("", _BRACKETED_VERSION.sub("", name))))

    # Artists are often credited in part ("Eric Burdon & The Animals" for "The Animals"), so a
    # subset of the words counts (token_set); the primary artists are compared as a whole.
    primary = fuzz.ratio(normalise_artist(query), normalise_artist(candidate))
    return float(max(primary, fuzz.token_set_ratio(without_feat(query), without_feat(candidate))))


def match_scores(query_artist: str, query_title: str, hit_artist: str, hit_title: str) -> dict:
    """Return rapidfuzz scores (0-100) ``{'title': ..., 'artist': ...}`` of a hit against a query."""
    return {"title": _title_score(query_title, hit_title),
            "artist": _artist_score(query_artist, hit_artist)}


def song_likeness_problems(text: str, *, min_words: int = 12, max_words: int = 3000,
                           max_words_per_line: float = 16.0) -> list[str]:
    """Return why *text* does not look like song lyrics (empty list: it does).

    Parameters
    ----------
    text : str
        Cleaned lyrics.
    min_words, max_words : int
        Word counts outside this range are not a song (a stub, or a book chapter).
    max_words_per_line : float
        Songs have short lines; a median above this means prose paragraphs.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    words = text.split()
    problems = []
    if len(words) < min_words:
        problems.append(f"text has {len(words)} words, fewer than a song's {min_words}")
    if len(words) > max_words:
        problems.append(f"text has {len(words)} words, more than a song's {max_words}")
    if lines:
        per_line = sorted(len(line.split()) for line in lines)
        median = per_line[len(per_line) // 2]
        if median > max_words_per_line:
            problems.append(f"prose, not verse: a median line holds {median} words")
        listed = sum(bool(re.match(r"^(?:\d{1,3}[.)]\s|\d{1,3}\s*[-–.]\s)", line)
                          or re.search(r"\b\d{1,2}:\d{2}\b\s*\)?$", line)) for line in lines)
        if len(lines) >= 4 and listed / len(lines) > 0.5:
            problems.append(f"a track list, not lyrics: {listed} of {len(lines)} lines are numbered entries")
    return problems


@dataclass
class MatchVerdict:
    """Whether a hit is accepted, with its scores and the reasons for a rejection."""

    accepted: bool
    title_score: float
    artist_score: float
    reasons: list[str] = field(default_factory=list)


def validate_hit(query_artist: str, query_title: str, hit_artist: str, hit_title: str,
                 text: str | None = None, *, title_threshold: float = TITLE_THRESHOLD,
                 artist_threshold: float = ARTIST_THRESHOLD) -> MatchVerdict:
    """Accept or reject one provider hit.

    Parameters
    ----------
    query_artist, query_title : str
        What was asked for.
    hit_artist, hit_title : str
        What the provider answered.
    text : str, optional
        The hit's cleaned lyrics; when given it must also look like a song.
    title_threshold, artist_threshold : float
        Minimum scores (0-100).

    Returns
    -------
    MatchVerdict
    """
    scores = match_scores(query_artist, query_title, hit_artist, hit_title)
    reasons = []
    if scores["title"] < title_threshold:
        reasons.append(f"title {hit_title!r} is too far from {query_title!r} "
                       f"(score {scores['title']:.0f} < {title_threshold:.0f})")
    if scores["artist"] < artist_threshold:
        reasons.append(f"artist {hit_artist!r} is too far from {query_artist!r} "
                       f"(score {scores['artist']:.0f} < {artist_threshold:.0f})")
    if text is not None and not reasons:
        reasons.extend(song_likeness_problems(text))
    return MatchVerdict(not reasons, scores["title"], scores["artist"], reasons)

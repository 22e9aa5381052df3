"""Clean lyrics text as providers return it, keeping the lyrics themselves intact.

Genius pages scraped by lyricsgenius carry debris around and inside the lyrics: a header
``"123 ContributorsTranslations…Song Title Lyrics"``, section headers (``[Chorus]``,
``[Verse 1: Artist]``), a ``"You might also like"`` block in the middle, ticket adverts and a
trailing ``"123Embed"``. LRCLIB's synced lyrics carry ``[mm:ss.xx]`` time stamps; lyrics
extracted from LilyPond scores keep lines like ``"unfold 7"``. The cleaners
here remove exactly that debris and zero-width characters; they keep accented letters
(``café``, ``niño``), punctuation, line breaks and the blank line between stanzas.

Examples
--------
>>> from helpers.lyrics.text import clean_lyrics
>>> raw = "2 ContributorsCafé Song Lyrics[Verse 1]\\nUn café, niño\\n\\n[Chorus]\\nLa la123Embed"
>>> print(clean_lyrics(raw))
Un café, niño
<BLANKLINE>
La la
"""

from __future__ import annotations

import re
import unicodedata

#: Invisible characters that break tokens and comparisons (zero-width space/joiners, BOM,
#: word joiner, soft hyphen).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_ZERO_WIDTH_RE = re.compile(f"[{ZERO_WIDTH}]")

# "123 ContributorsTranslationsEspañolHouse of the Rising Sun Lyrics" (first line of a page);
# newer pages follow it with a description that ends in "Read More".
_GENIUS_HEADER = re.compile(r"\A\s*\d+\s*Contributors?[^\n]*?Lyrics", re.IGNORECASE)
_READ_MORE = re.compile(r"\A[^\[]{0,2000}?Read More\s*", re.DOTALL)
_MIGHT_ALSO_LIKE = re.compile(r"\n?[ \t]*You might also like[ \t]*\n?", re.IGNORECASE)
_TICKETS = re.compile(r"\n?See [^\n]{1,80}? Live\s*Get tickets as low as \$\d+(?:\.\d\d)?\n?")
# "…last line123Embed" or a lone "Embed" at the very end (glued to the text, as Genius does).
_EMBED = re.compile(r"(?:\d+\s*)?Embed\s*\Z")
_SECTION_HEADER = re.compile(r"^[ \t]*\[[^\]\n]{1,80}\][ \t]*", re.MULTILINE)
# LilyPond "\\repeat unfold N" left as a line "unfold N" in lyrics extracted from scores (the
# embedded public-domain corpus has 103 such lines).
_TYPESETTING_RESIDUE = re.compile(r"^[ \t]*unfold[ \t]+\d+[ \t]*(?:\n|\Z)", re.MULTILINE)
_LRC_TIMESTAMP = re.compile(r"\[\d{1,2}:\d{2}(?:[.:]\d{1,3})?\]\s?")
_LRC_TAG_LINE = re.compile(r"^\[(?:ar|ti|al|au|by|length|offset|re|ve):[^\]]*\][ \t]*(?:\n|\Z)",
                           re.MULTILINE | re.IGNORECASE)


def remove_zero_width(text: str) -> str:
    """Return *text* without zero-width characters, non-breaking spaces made plain."""
    return _ZERO_WIDTH_RE.sub("", text).replace("\u00a0", " ")


def strip_timestamps(text: str) -> str:
    """Remove LRC time stamps (``[01:23.45]``) and LRC tag lines (``[ar: …]``)."""
    return _LRC_TIMESTAMP.sub("", _LRC_TAG_LINE.sub("", text))


def remove_genius_debris(text: str) -> str:
    """Remove the header, "You might also like", ticket adverts and trailing "Embed" of Genius.

    Section headers are left alone (see :func:`remove_section_headers`).
    """
    header = _GENIUS_HEADER.match(text)
    if header:
        text = text[header.end():]
        if "Read More" in text[:2000]:
            text = _READ_MORE.sub("", text, count=1)
    text = _TICKETS.sub("\n", text)
    text = _MIGHT_ALSO_LIKE.sub("\n", text)
    return _EMBED.sub("", text.rstrip())


def remove_typesetting_residue(text: str) -> str:
    """Remove lines such as ``"unfold 30"`` that score typesetting (LilyPond) leaves in lyrics."""
    return _TYPESETTING_RESIDUE.sub("", text)


def remove_section_headers(text: str) -> str:
    """Remove ``[Chorus]``-style headers at the start of a line, keeping the lines they headed.

    A header alone on a line disappears with its line; a header glued to the first lyric line
    (``"[Verse 1]There is a house"``) leaves the lyric line.
    """
    out = []
    for line in text.split("\n"):
        stripped = _SECTION_HEADER.sub("", line)
        if stripped.strip() or not line.strip():
            out.append(stripped)
        # a line that held only a header is dropped entirely
    return "\n".join(out)


def normalise_layout(text: str) -> str:
    """Tidy whitespace: NFC letters, one space between words, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def clean_lyrics(text: str | None, *, section_headers: bool = True) -> str:
    """Clean provider lyrics for analysis and display.

    Parameters
    ----------
    text : str or None
        Lyrics as a provider returned them (``None`` gives ``""``).
    section_headers : bool
        Remove ``[Chorus]``-style section headers (default).

    Returns
    -------
    str
        The lyrics with Genius debris, LRC time stamps, typesetting residue ("unfold 7") and
        zero-width characters removed;
        accented letters, punctuation, line breaks and stanza breaks (one blank line) kept.
    """
    if not text:
        return ""
    text = remove_zero_width(str(text))
    text = strip_timestamps(text)
    text = remove_genius_debris(text)
    text = remove_typesetting_residue(text)
    if section_headers:
        text = remove_section_headers(text)
    return normalise_layout(text)


def lines(text: str) -> list[str]:
    """Return the non-empty lines of *text*, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def stanzas(text: str) -> list[str]:
    """Return the stanzas of *text* (blocks separated by blank lines)."""
    return [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]

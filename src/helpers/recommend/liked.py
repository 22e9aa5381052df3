"""Liked-songs lists in, matched to the songs of a library.

A user's "Liked songs" arrive in one of these forms:

- the YouTube Music list as copied from its web page (:func:`parse_ytmusic_copy`): blocks of
  title / artist(s) / album separated by blank lines, where several artists are joined by a
  line holding only ``" & "`` (or ``", "`` before the last one); videos have no album line and
  often carry ``"Artist - Title"`` in their title with the uploading channel as "artist";
- a Google Takeout CSV (:func:`read_takeout_csv`): ``music-library-songs.csv`` (``Song Title``,
  ``Album Title``, ``Artist Names`` or ``Artist Name 1..n``, ``Video ID`` or ``Song URL``) or a
  playlist CSV such as ``Liked music.csv`` that holds only video ids;
- explicit library ids, audio paths or URLs (:func:`liked_from_items`).

Titles are normalised (:func:`normalize_title`: feat./remix/edit/version decorations, accents,
punctuation) and matched to a library's artist/title columns with rapidfuzz
(:func:`match_to_library`).

Examples
--------
>>> songs = parse_ytmusic_copy("Lullaby (feat. BISHØP)\\nChocolate Puma\\n & \\nFirebeatz\\nLullaby\\n")
>>> songs[0].artists
('Chocolate Puma', 'Firebeatz')
>>> normalize_title("Prayer in C (Robin Schulz Radio Edit)")
'prayer in c'
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlparse

import pandas as pd
from rapidfuzz import fuzz, process

from helpers.audio.files import names_a_file
from helpers.errors import InputError

#: Lines that join artists inside one block of the YouTube Music copy.
ARTIST_SEPARATORS = frozenset({"&", ","})

#: An "artist" of more words than this before a dash is a sentence, not a name.
MAX_ARTIST_WORDS = 4

#: Words that mark a bracketed or dashed part of a title as a decoration of the same song.
_DECORATION_WORDS = (
    r"feat|ft|featuring|with|remix|remixed|mix|edit|version|remaster|remastered|extended|radio|"
    r"live|acoustic|instrumental|original|official|video|audio|lyrics?|visuali[sz]er|vip|"
    r"bootleg|rework|dub|cover|explicit|clean|mono|stereo|demo|single|album|deluxe|bonus|full|"
    r"club|cut|session|reprise|rerecorded|re-recorded|anniversary|ringtone|hd|hq|4k"
)
_BRACKETED = re.compile(r"\s*[\(\[\{]([^\)\]\}]*)[\)\]\}]")
_DECORATION = re.compile(rf"\b({_DECORATION_WORDS})\b", re.IGNORECASE)
_FEAT_TAIL = re.compile(r"\s+(feat\.?|ft\.?|featuring)(\s+.*)?$", re.IGNORECASE)
_DASH_TAIL = re.compile(r"\s+[-–—]\s+(?P<tail>[^-–—]+)$")
_DURATION = re.compile(r"^\d{1,2}(:\d{2}){1,2}$")
_NON_WORD = re.compile(r"[^\w]+")
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_CHANNEL_SUFFIX = re.compile(r"(\s+-\s+topic|vevo)$", re.IGNORECASE)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "´": "'", "`": "'"})


@dataclass(frozen=True)
class LikedSong:
    """One liked song as the user's list states it (not yet matched to a library).

    Attributes
    ----------
    title : str or None
        Title as listed (``None`` when the source gives only an id).
    artists : tuple of str
        Credited artists, in order; empty when unknown.
    album : str or None
        Album as listed; ``None`` for videos and id-only sources.
    kind : str
        ``'song'`` (title/artist/album block or CSV row), ``'video'`` (a block without album:
        the "artist" line is the uploading channel), ``'id'`` (a library id), ``'path'`` (an
        audio file) or ``'url'`` (to fetch; also Takeout rows that give only a video id).
    uploader : str or None
        For videos: the channel line as listed.
    video_id : str or None
        YouTube video id when the source gives one (Takeout).
    ref : str or None
        For ``'id'``, ``'path'`` and ``'url'`` items: the item itself.
    duration : float or None
        Seconds, when the source lists a duration.
    line : int or None
        1-based line of the source where the entry starts (for messages).
    """

    title: str | None
    artists: tuple[str, ...] = ()
    album: str | None = None
    kind: str = "song"
    uploader: str | None = None
    video_id: str | None = None
    ref: str | None = None
    duration: float | None = None
    line: int | None = None

    @property
    def artist(self) -> str:
        """The credited artists joined as a display string (``"A & B"``)."""
        if len(self.artists) <= 2:
            return " & ".join(self.artists)
        return ", ".join(self.artists[:-1]) + " & " + self.artists[-1]

    @property
    def url(self) -> str | None:
        """A URL the ingest helpers can fetch: the YouTube Music watch page, or a given URL."""
        if self.kind == "url":
            return self.ref
        return f"https://music.youtube.com/watch?v={self.video_id}" if self.video_id else None

    def key(self) -> tuple[str, str]:
        """Normalised (title, first artist) used to spot the same song listed twice."""
        first = self.artists[0] if self.artists else ""
        return normalize_title(self.title or self.ref or ""), normalize_artist(first)


@dataclass(frozen=True)
class SkippedBlock:
    """A fragment of a liked list that is not a song (kept so nothing is dropped silently)."""

    line: int
    text: str
    reason: str


@dataclass
class LikedList:
    """The parsed songs of a liked list plus the fragments that were skipped.

    Iterating, ``len()`` and indexing act on :attr:`songs`.
    """

    songs: list[LikedSong] = field(default_factory=list)
    skipped: list[SkippedBlock] = field(default_factory=list)
    source: str = ""

    def __iter__(self) -> Iterator[LikedSong]:
        return iter(self.songs)

    def __len__(self) -> int:
        return len(self.songs)

    def __getitem__(self, item):
        return self.songs[item]

    def to_frame(self) -> pd.DataFrame:
        """One row per song: title, artist, artists, album, kind, uploader, video_id, line."""
        rows = [{
            "title": s.title, "artist": s.artist, "artists": list(s.artists), "album": s.album,
            "kind": s.kind, "uploader": s.uploader, "video_id": s.video_id, "ref": s.ref,
            "line": s.line,
        } for s in self.songs]
        columns = ["title", "artist", "artists", "album", "kind", "uploader", "video_id", "ref", "line"]
        return pd.DataFrame(rows, columns=columns)

    def deduplicated(self) -> LikedList:
        """Return the list with repeated songs (same normalised title and first artist) dropped."""
        seen, kept = set(), []
        for song in self.songs:
            if song.key() not in seen:
                seen.add(song.key())
                kept.append(song)
        return LikedList(kept, list(self.skipped), self.source)


# --------------------------------------------------------------------------- normalisation


def _fold(text: str) -> str:
    """Casefold, strip accents and unify quotes (``'RÜFÜS'`` -> ``'rufus'``)."""
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("ø", "o").replace("Ø", "o").casefold()


def strip_title_decorations(title: str) -> str:
    """Remove feat./remix/edit/version decorations from a title, keep its case.

    Bracketed parts that name a decoration (``(feat. X)``, ``[Skrillex Remix]``,
    ``(Radio Edit)``, ``(Full Version)``) are dropped, as are a trailing ``feat. X`` and a dashed
    tail such as ``" - Remastered 2011"``. Bracketed parts that belong to the title
    (``"The Island, Pt. 1 (Dawn)"``) stay.
    """
    text = title.translate(_QUOTES).strip()
    text = _BRACKETED.sub(lambda m: "" if _DECORATION.search(m.group(1)) else m.group(0), text)
    text = _FEAT_TAIL.sub("", text)
    tail = _DASH_TAIL.search(text)
    if tail and _DECORATION.search(tail.group("tail")):
        text = text[:tail.start()]
    text = " ".join(text.split())
    return text or " ".join(title.split())


def normalize_title(title: str) -> str:
    """Return a title reduced for matching: decorations, accents, case and punctuation removed.

    Examples
    --------
    >>> normalize_title("Move Ya Body [Shelter Remix] (feat. Nikki Ambers)")
    'move ya body'
    >>> normalize_title("It Don’t Matter")
    'it dont matter'
    """
    text = _fold(strip_title_decorations(title)).replace("&", " and ").replace("'", "")
    return " ".join(_NON_WORD.sub(" ", text).replace("_", " ").split())


def normalize_artist(name: str) -> str:
    """Return an artist name reduced for matching (``"DomDollaVEVO"`` -> ``"domdolla"``).

    Accents, case, punctuation, a leading "the" and YouTube channel suffixes (``" - Topic"``,
    ``"VEVO"``) are removed; ``&`` reads as "and".
    """
    text = _CHANNEL_SUFFIX.sub("", name.strip())
    text = _fold(text).replace("&", " and ").replace("'", "")
    words = _NON_WORD.sub(" ", text).replace("_", " ").split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def split_artist_title(text: str) -> tuple[tuple[str, ...], str] | None:
    """Split a video title ``"Artist A, Artist B & C - Title (Remix)"`` into artists and title.

    Returns ``None`` when *text* has no ``" - "`` separator.
    """
    parts = re.split(r"\s+[-–—]\s+", text.strip(), maxsplit=1)
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        return None
    head, title = parts[0].strip(), parts[1].strip()
    # A dash inside brackets, or a long sentence before it, is not an "Artist - Title" title.
    if any(ch in head for ch in "()[]{}|@#") or head.count("(") != title.count(")") - title.count("("):
        return None
    artists = tuple(a.strip() for a in re.split(r",\s*|\s+&\s+", head) if a.strip())
    if any(len(a.split()) > MAX_ARTIST_WORDS for a in artists):
        return None
    return artists, title


# --------------------------------------------------------------------------- YouTube Music copy


def _read_text(source) -> tuple[str, str]:
    """Return (text, name) for a path or a string holding the list itself."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if not path.is_file():
            raise InputError(path, "liked-songs file does not exist")
        try:
            return path.read_text(encoding="utf-8-sig"), str(path)
        except UnicodeDecodeError as exc:
            raise InputError(path, f"liked-songs file is not UTF-8 text ({exc.reason})") from None
    return str(source), "<text>"


def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, lines) of each block; whitespace-only lines separate blocks.

    Separator lines such as ``" & "`` are not blank, so they stay inside their block.
    """
    block, start = [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if block:
                yield start, block
            block = []
            continue
        if not block:
            start = number
        block.append(line)
    if block:
        yield start, block


def _parse_block(start: int, lines: list[str]) -> LikedSong | SkippedBlock:
    cleaned = [line.strip() for line in lines]
    duration = None
    if len(cleaned) > 1 and _DURATION.match(cleaned[-1]):
        parts = [int(p) for p in cleaned[-1].split(":")]
        duration = float(sum(v * 60 ** i for i, v in enumerate(reversed(parts))))
        cleaned = cleaned[:-1]
    text = " / ".join(cleaned)
    if len(cleaned) == 1:
        reason = "a duration without a song" if _DURATION.match(cleaned[0]) else "a single line, not a title/artist block"
        return SkippedBlock(start, text, reason)
    title = cleaned[0]
    if title in ARTIST_SEPARATORS:
        return SkippedBlock(start, text, "block starts with an artist separator")
    artists, position = [cleaned[1]], 2
    if artists[0] in ARTIST_SEPARATORS:
        return SkippedBlock(start, text, "artist line is a separator")
    while position + 1 < len(cleaned) and cleaned[position] in ARTIST_SEPARATORS:
        artists.append(cleaned[position + 1])
        position += 2
    if any(a in ARTIST_SEPARATORS for a in artists) or (position < len(cleaned) and cleaned[position] in ARTIST_SEPARATORS):
        return SkippedBlock(start, text, "artist separator without an artist after it")
    rest = cleaned[position:]
    if len(rest) > 1:
        return SkippedBlock(start, text, f"{len(rest)} lines after the artists; expected one album line")
    if rest:
        return LikedSong(title, tuple(artists), rest[0], "song", duration=duration, line=start)
    # No album line: a video. Its "artist" is the uploading channel; "Artist - Title" in the
    # title names the real artists more often than the channel does.
    uploader = artists[0] if len(artists) == 1 else None
    split = split_artist_title(title) if uploader else None
    if split is not None:
        return LikedSong(split[1], split[0], None, "video", uploader=uploader, duration=duration, line=start)
    return LikedSong(title, tuple(artists), None, "video", uploader=uploader, duration=duration, line=start)


def parse_ytmusic_copy(source) -> LikedList:
    """Parse a YouTube Music "Liked songs" list copied from its web page.

    Parameters
    ----------
    source : str or path-like
        A path to the text file, or the copied text itself.

    Returns
    -------
    LikedList
        Songs in list order; blocks that are not songs (a stray duration such as ``1:02:50``,
        a lone line) are kept in ``skipped`` with a reason.

    Raises
    ------
    InputError
        The file does not exist, is not UTF-8, or holds no song block at all.

    Notes
    -----
    One block per song: title, artist(s), album. Several artists are on separate lines joined by
    a line holding ``" & "`` (before the last artist) or ``", "``. A block of two lines is a
    video (title, uploading channel); ``"Artist - Title"`` video titles are split. A duration
    line at the end of a block (``3:45``) is read as the song's duration.
    """
    text, name = _read_text(source)
    parsed = LikedList(source=name)
    for start, lines in _blocks(text):
        item = _parse_block(start, lines)
        (parsed.skipped if isinstance(item, SkippedBlock) else parsed.songs).append(item)
    if not parsed.songs:
        raise InputError(name, "no title/artist blocks found; expected a YouTube Music liked list "
                               "copied from the web page or a Takeout CSV")
    return parsed


# --------------------------------------------------------------------------- Google Takeout CSV

_TITLE_COLUMNS = ("song title", "title", "track name", "track title", "song")
_ALBUM_COLUMNS = ("album title", "album", "album name")
_ARTIST_COLUMNS = ("artist names", "artist name", "artists", "artist", "artist name(s)")
_ID_COLUMNS = ("video id", "song url", "video url", "youtube url")
_DURATION_COLUMNS = ("duration seconds", "duration")


def extract_video_id(cell: str) -> str | None:
    """Return the 11-character YouTube video id in *cell* (an id or a ``watch?v=`` URL)."""
    cell = (cell or "").strip()
    if _VIDEO_ID.match(cell):
        return cell
    parsed = urlparse(cell)
    if parsed.scheme in ("http", "https"):
        if parsed.hostname and parsed.hostname.endswith("youtu.be"):
            candidate = parsed.path.strip("/")
        else:
            candidate = (parse_qs(parsed.query).get("v") or [""])[0]
        return candidate if _VIDEO_ID.match(candidate) else None
    return None


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def read_takeout_csv(source) -> LikedList:
    """Read a Google Takeout CSV of liked or library music.

    Parameters
    ----------
    source : str or path-like
        ``music-library-songs.csv`` (``Song Title``, ``Album Title``, ``Artist Names`` or
        ``Artist Name 1``, ``Artist Name 2`` ..., ``Video ID`` or ``Song URL``, optional
        ``Duration Seconds``) or a playlist CSV such as ``Liked music.csv`` (``Video ID``,
        time added; older exports put a playlist header block and a blank line first).
        Header names are matched case-insensitively; a UTF-8 byte-order mark is ignored.

    Returns
    -------
    LikedList
        One song per data row; rows with neither a title nor a video id are skipped with a reason.
        Id-only rows are ``kind='url'`` entries with ``title=None``, a ``video_id`` and the
        YouTube Music watch URL as ``ref`` (the ingest helpers can fetch them).

    Raises
    ------
    InputError
        Missing file, or no header row with a title or video-id column.
    """
    text, name = _read_text(source)
    rows = list(csv.reader(io.StringIO(text)))
    header_at = None
    for number, row in enumerate(rows):
        lowered = [cell.strip().lower() for cell in row]
        if "playlist id" in lowered:  # older exports: a playlist header block comes first
            continue
        if _find(lowered, _TITLE_COLUMNS) is not None or _find(lowered, _ID_COLUMNS) is not None:
            header_at = number
            break
    if header_at is None:
        raise InputError(name, "not a Takeout music CSV: no 'Song Title' or 'Video ID' column")
    header = [cell.strip().lower() for cell in rows[header_at]]
    title_col, album_col = _find(header, _TITLE_COLUMNS), _find(header, _ALBUM_COLUMNS)
    id_col, duration_col = _find(header, _ID_COLUMNS), _find(header, _DURATION_COLUMNS)
    numbered = [i for i, h in enumerate(header) if re.fullmatch(r"artist name \d+", h)]
    artist_cols = numbered or [c for c in [_find(header, _ARTIST_COLUMNS)] if c is not None]

    parsed = LikedList(source=name)
    for number, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(column, row=row):
            return row[column].strip() if column is not None and column < len(row) else ""

        title = cell(title_col) or None
        video_id = extract_video_id(cell(id_col)) if id_col is not None else None
        if title is None and video_id is None:
            parsed.skipped.append(SkippedBlock(number, ",".join(row), "no title and no video id"))
            continue
        artists = tuple(a for a in (cell(c) for c in artist_cols) if a)
        try:
            duration = float(cell(duration_col)) if cell(duration_col) else None
        except ValueError:
            duration = None
        # Id-only rows (playlist exports) can only be fetched, so they are URLs to the workspace.
        kind, ref = ("song", None) if title else ("url", f"https://music.youtube.com/watch?v={video_id}")
        parsed.songs.append(LikedSong(title, artists, cell(album_col) or None, kind,
                                      video_id=video_id, ref=ref, duration=duration, line=number))
    if not parsed.songs:
        raise InputError(name, "the Takeout CSV holds no song rows")
    return parsed


# --------------------------------------------------------------------------- dispatch


def looks_like_csv(text: str) -> bool:
    """True when the first non-blank line of *text* is a CSV header naming a title or video id."""
    for line in text.splitlines():
        if line.strip():
            try:
                header = [c.strip().lower() for c in next(csv.reader([line.lstrip("\ufeff")]))]
            except (csv.Error, StopIteration):
                return False
            return len(header) > 1 and (_find(header, _TITLE_COLUMNS) is not None
                                        or _find(header, _ID_COLUMNS) is not None
                                        or header[0].startswith("playlist id"))
    return False


def read_liked_file(path) -> LikedList:
    """Read a liked-songs file of either format (Takeout CSV or YouTube Music copy).

    Raises
    ------
    InputError
        Missing or unreadable file, or no songs in it.
    """
    text, name = _read_text(Path(path))
    return read_takeout_csv(Path(path)) if looks_like_csv(text) else parse_ytmusic_copy(Path(name))


def liked_from_items(items: Iterable[str]) -> LikedList:
    """Turn command-line items into liked entries: URLs, existing audio paths or library ids.

    Nothing is looked up here; :func:`helpers.recommend.recommender.resolve_liked` resolves ids against a
    library and reads audio paths.
    """
    parsed = LikedList(source="<items>")
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if urlparse(item).scheme in ("http", "https"):
            parsed.songs.append(LikedSong(None, kind="url", ref=item, video_id=extract_video_id(item)))
        elif names_a_file(Path(item).expanduser()):  # a FIFO, loop, ...: its reason is named
            parsed.songs.append(LikedSong(Path(item).stem, kind="path", ref=str(Path(item).expanduser())))
        else:
            parsed.songs.append(LikedSong(None, kind="id", ref=item))
    return parsed


# --------------------------------------------------------------------------- matching


def match_to_library(liked: Iterable[LikedSong], library: pd.DataFrame, *, id_column: str = "id",
                     title_column: str = "title", artist_column: str = "artist",
                     title_threshold: float = 90.0, artist_threshold: float = 85.0) -> pd.DataFrame:
    """Match liked songs to library rows by normalised title and artist.

    A match needs both: the normalised titles agree (rapidfuzz ``ratio`` of at least
    *title_threshold*, 100 = identical after :func:`normalize_title`) and one credited artist
    agrees with the library's artist (``token_set_ratio`` of at least *artist_threshold*, so
    ``"Bob Marley"`` matches ``"Bob Marley & The Wailers"``). Library rows without an artist are
    never matched by title alone, nor are liked entries without a title.

    Parameters
    ----------
    liked : iterable of LikedSong
    library : pandas.DataFrame
        Holds *id_column*, *title_column* and *artist_column*.

    Returns
    -------
    pandas.DataFrame
        One row per liked song: ``title``, ``artist``, ``kind``, ``library_id`` (``None`` when
        unmatched), ``library_artist``, ``library_title``, ``title_score``, ``artist_score``.
    """

    lib_titles = [normalize_title(str(t)) for t in library[title_column].fillna("")]
    lib_artists = [normalize_artist(str(a)) for a in library[artist_column].fillna("")]
    ids = library[id_column].tolist()
    rows = []
    for song in liked:
        best = (None, None, None, 0.0, 0.0)
        if song.title and song.artists:
            query = normalize_title(song.title)
            names = [normalize_artist(a) for a in song.artists if a]
            if song.uploader:
                names.append(normalize_artist(song.uploader))
            for _, title_score, position in process.extract(
                    query, lib_titles, scorer=fuzz.ratio, score_cutoff=title_threshold, limit=20):
                if not lib_artists[position]:
                    continue
                artist_score = max(fuzz.token_set_ratio(n, lib_artists[position]) for n in names)
                if artist_score >= artist_threshold and title_score + artist_score > best[3] + best[4]:
                    best = (ids[position], library[artist_column].iloc[position],
                            library[title_column].iloc[position], title_score, artist_score)
        rows.append({"title": song.title, "artist": song.artist, "kind": song.kind,
                     "library_id": best[0], "library_artist": best[1], "library_title": best[2],
                     "title_score": best[3], "artist_score": best[4]})
    frame = pd.DataFrame(rows, columns=["title", "artist", "kind", "library_id", "library_artist",
                                        "library_title", "title_score", "artist_score"])
    for column in ("library_id", "library_artist", "library_title"):
        frame[column] = pd.Series([r[column] for r in rows], index=frame.index, dtype=object)
    return frame


def fetch_plan(songs: Iterable[LikedSong]) -> pd.DataFrame:
    """How the workspace would get the audio of liked songs that no library holds.

    A song with a video id is fetched from its watch URL; any other is looked up with a YouTube
    search URL whose first result the ingest helpers download (``playlist_entries`` then
    ``fetch_audio``). Nothing is fetched here.

    Returns
    -------
    pandas.DataFrame
        ``title``, ``artist``, ``how`` (``'video id'`` or ``'search'``) and ``url``; one row per
        distinct song (same normalised title and first artist).
    """
    rows, seen = [], set()
    for song in songs:
        if song.key() in seen or not (song.title or song.url):
            continue
        seen.add(song.key())
        if song.url:
            rows.append({"title": song.title, "artist": song.artist, "how": "video id", "url": song.url})
        else:
            query = f"{song.artist} {strip_title_decorations(song.title)}".strip()
            rows.append({"title": song.title, "artist": song.artist, "how": "search",
                         "url": "https://www.youtube.com/results?search_query=" + quote_plus(query)})
    return pd.DataFrame(rows, columns=["title", "artist", "how", "url"])

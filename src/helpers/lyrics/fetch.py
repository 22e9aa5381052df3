"""Fetch a song's lyrics from Genius or LRCLIB, validate the match, and cache the answer.

A fetch asks each provider in turn (default order :data:`DEFAULT_PROVIDERS`, or
``$MUSIC_STUDY_LYRICS_PROVIDERS`` such as ``"genius,lrclib"``) for candidate hits, and accepts
the first hit whose title and artist match the query and whose text looks like a song
(:mod:`helpers.lyrics.validate`). A rejected or missing hit is a ``not_found`` result that says
why — never the wrong song. Answers go to a SQLite cache (:class:`LyricsCache`): a found song is
fetched once; "not found" is remembered for :data:`NOT_FOUND_TTL`; ``refresh=True`` bypasses it.

Providers
---------
``lrclib``
    LRCLIB's open API (``/api/get``, then ``/api/search``); no key. Base URL
    ``$MUSIC_STUDY_LRCLIB_URL`` (default ``https://lrclib.net``). The song's duration is passed
    when known, as LRCLIB asks.
``genius``
    Genius through lyricsgenius (search API + song page). Needs ``$GENIUS_ACCESS_TOKEN``. Base
    URLs ``$MUSIC_STUDY_GENIUS_API_URL`` (default ``https://api.genius.com/``) and
    ``$MUSIC_STUDY_GENIUS_WEB_URL`` (default ``https://genius.com/``).

Both send a User-Agent naming this project, time out after :attr:`RetryPolicy.timeout` seconds
and retry timeouts, connection errors, HTTP 429 and 5xx with exponential backoff (honouring
``Retry-After``). Nothing here runs unless a caller asks for a fetch.

Examples
--------
>>> from helpers.lyrics.fetch import fetch_lyrics          # doctest: +SKIP
>>> result = fetch_lyrics("The Animals", "House of the Rising Sun")   # doctest: +SKIP
>>> result.status, result.provider                         # doctest: +SKIP
('found', 'lrclib')
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import lyricsgenius
import pandas as pd
import requests

from helpers import __version__
from helpers.errors import InputError
from helpers.lyrics.text import clean_lyrics, strip_timestamps
from helpers.lyrics.validate import (
    ARTIST_THRESHOLD,
    TITLE_THRESHOLD,
    normalise_artist,
    normalise_title,
    song_likeness_problems,
    strip_decorations,
    validate_hit,
)
from helpers.paths import data_dir

USER_AGENT = (f"music-recommendation-study/{__version__} "
              "(lyrics research workspace; python-requests)")
PROVIDER_NAMES = ("lrclib", "genius")
DEFAULT_PROVIDERS = ("lrclib", "genius")
NOT_FOUND_TTL = timedelta(days=30)
#: Largest difference (seconds) between a known duration and a hit's duration.
DURATION_TOLERANCE = 15.0

LRCLIB_URL = "https://lrclib.net"
GENIUS_API_URL = "https://api.genius.com/"
GENIUS_WEB_URL = "https://genius.com/"

log = logging.getLogger(__name__)


class ProviderError(Exception):
    """A provider could not answer (timeout, rate limit, server error, malformed answer)."""


class ProviderUnavailable(ProviderError):
    """A provider cannot be used at all here (e.g. Genius without an access token)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for a provider and how often to try again.

    Parameters
    ----------
    timeout : float
        Seconds to wait for a connection and for each read.
    retries : int
        Extra attempts after a timeout, connection error, HTTP 429 or 5xx.
    backoff : float
        First pause in seconds; it doubles after each failed attempt.
    max_backoff : float
        Longest pause, also the cap on a server's ``Retry-After``.
    """

    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0

    def pause(self, attempt: int, retry_after: str | None = None) -> float:
        """Return the pause before attempt number ``attempt + 1`` (attempts count from 0)."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass  # an HTTP date; fall back to our own schedule
        return min(self.backoff * 2 ** attempt, self.max_backoff)


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def http_get(session: requests.Session, url: str, *, params=None, headers=None,
             policy: RetryPolicy = RetryPolicy(), provider: str = "http",
             sleep: Callable[[float], None] = time.sleep) -> requests.Response:
    """GET *url* with retries; return the response when it is 2xx or 404.

    Raises
    ------
    ProviderError
        After the last attempt timed out, failed to connect or answered 429/5xx, or at once
        for any other status.
    """
    last = ""
    for attempt in range(policy.retries + 1):
        retry_after = None
        try:
            response = session.get(url, params=params, headers=headers, timeout=policy.timeout)
        except requests.Timeout:
            last = f"timed out after {policy.timeout:g} s"
        except requests.ConnectionError as exc:
            log.info("%s: cannot connect to %s: %s", provider, url, exc)
            last = "cannot connect"
        except requests.RequestException as exc:  # bad URL, broken encoding: retrying won't help
            log.info("%s: request to %s failed: %s", provider, url, exc)
            raise ProviderError(f"{provider}: request to {url} failed (not a valid request)") from None
        else:
            if response.ok or response.status_code == 404:
                return response
            if response.status_code not in RETRY_STATUS:
                raise ProviderError(f"{provider}: HTTP {response.status_code} from {url}")
            last = f"HTTP {response.status_code}"
            retry_after = response.headers.get("Retry-After")
        if attempt < policy.retries:
            sleep(policy.pause(attempt, retry_after))
    tries = policy.retries + 1
    raise ProviderError(f"{provider}: {last} from {url} ({tries} attempt{'s' * (tries > 1)})")


def _json(response: requests.Response, provider: str):
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{provider}: malformed answer from {response.url} (not JSON)") from None


@dataclass(frozen=True)
class LyricsQuery:
    """What to look for: artist and title, and album and duration (seconds) when known."""

    artist: str
    title: str
    album: str | None = None
    duration: float | None = None


@dataclass
class LyricsHit:
    """One hit a provider offers; its text is loaded only if its title and artist match."""

    provider: str
    artist: str
    title: str
    load_text: Callable[[], str | None]
    url: str = ""
    album: str | None = None
    duration: float | None = None
    problem: str | None = None  # a reason to reject it known before loading its text


@dataclass
class LyricsResult:
    """The outcome of a fetch.

    ``status`` is ``'found'`` (``lyrics`` holds the cleaned text), ``'not_found'`` (every
    provider answered and nothing matched; ``reasons`` says why) or ``'error'`` (a provider
    could not answer, so nothing is known; never cached).
    """

    artist: str
    title: str
    status: str
    provider: str | None = None
    matched_artist: str | None = None
    matched_title: str | None = None
    url: str | None = None
    album: str | None = None
    duration: float | None = None
    title_score: float | None = None
    artist_score: float | None = None
    lyrics: str = ""
    raw_lyrics: str = ""
    reasons: list[str] = field(default_factory=list)
    fetched_at: str | None = None
    cached: bool = False

    @property
    def found(self) -> bool:
        """Whether lyrics were found."""
        return self.status == "found"

    def to_dict(self, raw: bool = False) -> dict:
        """Return a JSON-ready dict (without the raw provider text unless *raw*)."""
        out = asdict(self)
        if not raw:
            out.pop("raw_lyrics")
        return out


# --------------------------------------------------------------------------- providers
class LrclibProvider:
    """LRCLIB (https://lrclib.net): exact lookup, then search.

    Parameters
    ----------
    base_url : str, optional
        Default ``$MUSIC_STUDY_LRCLIB_URL`` or ``https://lrclib.net``.
    policy : RetryPolicy, optional
    max_hits : int
        How many search hits to consider.
    """

    name = "lrclib"

    def __init__(self, base_url: str | None = None, *, policy: RetryPolicy | None = None,
                 max_hits: int = 5, session: requests.Session | None = None):
        self.base_url = (base_url or os.environ.get("MUSIC_STUDY_LRCLIB_URL") or LRCLIB_URL).rstrip("/")
        self.policy = policy or RetryPolicy()
        self.max_hits = max_hits
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def _get(self, path: str, params: dict):
        return http_get(self.session, f"{self.base_url}{path}", params=params,
                        policy=self.policy, provider=self.name)

    def _candidate(self, record) -> LyricsHit:
        if not isinstance(record, dict) or "trackName" not in record or "artistName" not in record:
            raise ProviderError(f"{self.name}: malformed record from {self.base_url} "
                                "(no trackName/artistName)")
        text = record.get("plainLyrics") or strip_timestamps(record.get("syncedLyrics") or "")
        problem = "LRCLIB marks it instrumental" if record.get("instrumental") else None
        return LyricsHit(
            provider=self.name, artist=str(record["artistName"]), title=str(record["trackName"]),
            load_text=lambda: text, url=f"{self.base_url}/api/get/{record.get('id', '')}",
            album=record.get("albumName"), duration=record.get("duration"), problem=problem)

    def candidates(self, query: LyricsQuery) -> Iterator[LyricsHit]:
        """Yield LRCLIB's exact match (if any), then its search hits."""
        title = strip_decorations(query.title)
        artist = strip_decorations(query.artist)
        params = {"artist_name": artist, "track_name": title}
        if query.album:
            params["album_name"] = query.album
        if query.duration:
            params["duration"] = int(round(query.duration))
        seen = set()
        response = self._get("/api/get", params)
        if response.status_code == 200:
            record = _json(response, self.name)
            candidate = self._candidate(record)
            seen.add(record.get("id"))
            yield candidate
        response = self._get("/api/search", {"artist_name": artist, "track_name": title})
        if response.status_code == 404:
            return
        hits = _json(response, self.name)
        if not isinstance(hits, list):
            raise ProviderError(f"{self.name}: malformed search answer from {self.base_url} "
                                "(expected a list)")
        for record in hits[: self.max_hits]:
            if isinstance(record, dict) and record.get("id") in seen and record.get("id") is not None:
                continue
            yield self._candidate(record)


class _PageMissing(Exception):
    pass


def _genius_client_class():
    class GeniusClient(lyricsgenius.Genius):
        """lyricsgenius with configurable roots and this module's retry policy.

        lyricsgenius builds every request in ``Sender._make_request`` from the ``API_ROOT``,
        ``PUBLIC_API_ROOT`` and ``WEB_ROOT`` attributes; overriding that method keeps its
        search and page parsing while routing requests through :func:`http_get` (lyricsgenius
        itself does not retry 429 and turns other statuses into ``AssertionError``).
        """

        def __init__(self, token: str, *, api_root: str, web_root: str, policy: RetryPolicy):
            super().__init__(token, timeout=policy.timeout, sleep_time=0, retries=0,
                             remove_section_headers=False, skip_non_songs=True,
                             user_agent=USER_AGENT)
            # lyricsgenius sets the token header only when the class is literally named
            # "Genius" (PublicAPI checks __class__.__name__), so set it for this subclass.
            self.access_token = "Bearer " + token
            self.authorization_header = {"authorization": self.access_token}
            self.API_ROOT = api_root
            self.WEB_ROOT = web_root
            self.PUBLIC_API_ROOT = web_root + "api/"
            self.policy = policy
            self._session.headers["User-Agent"] = USER_AGENT

        def _make_request(self, path, method="GET", params_=None, public_api=False, web=False,
                          **kwargs):
            if public_api:
                uri, headers = self.PUBLIC_API_ROOT + path, None
            elif web:
                uri, headers = self.WEB_ROOT + path, None
            else:
                uri, headers = self.API_ROOT + path, self.authorization_header
            response = http_get(self._session, uri, params=params_ or None, headers=headers,
                                policy=self.policy, provider="genius")
            if response.status_code == 404:
                raise _PageMissing(uri)
            if web:
                return {"html": response.text}
            data = _json(response, "genius")
            if not isinstance(data, dict):
                raise ProviderError(f"genius: malformed answer from {uri} (expected an object)")
            return data.get("response", data)

    return GeniusClient


class GeniusProvider:
    """Genius through lyricsgenius: song hits of the search API, lyrics from the song page.

    Parameters
    ----------
    token : str, optional
        Default ``$GENIUS_ACCESS_TOKEN``; without one the provider is unavailable.
    api_url, web_url : str, optional
        Roots of the API and of the song pages (defaults from ``$MUSIC_STUDY_GENIUS_API_URL``
        / ``$MUSIC_STUDY_GENIUS_WEB_URL``, else Genius's own).
    policy : RetryPolicy, optional
    max_hits : int
        How many song hits to consider.
    """

    name = "genius"

    def __init__(self, token: str | None = None, *, api_url: str | None = None,
                 web_url: str | None = None, policy: RetryPolicy | None = None,
                 max_hits: int = 5):
        token = token or os.environ.get("GENIUS_ACCESS_TOKEN")
        if not token:
            raise ProviderUnavailable("genius: GENIUS_ACCESS_TOKEN is not set")
        api_url = api_url or os.environ.get("MUSIC_STUDY_GENIUS_API_URL") or GENIUS_API_URL
        web_url = web_url or os.environ.get("MUSIC_STUDY_GENIUS_WEB_URL") or GENIUS_WEB_URL
        self.policy = policy or RetryPolicy()
        self.max_hits = max_hits
        # lyricsgenius logs a warning for pages without lyrics; the caller gets the reason
        # instead, so keep it off stderr (a NullHandler stops logging's last-resort printing).
        logging.getLogger("lyricsgenius").addHandler(logging.NullHandler())
        self.client = _genius_client_class()(
            token, api_root=api_url.rstrip("/") + "/", web_root=web_url.rstrip("/") + "/",
            policy=self.policy)

    def _page_text(self, url: str) -> str | None:
        # lyricsgenius strips "https://genius.com/" from the URL and asks WEB_ROOT for the rest.
        path = urlparse(url).path.lstrip("/")
        try:
            return self.client.lyrics(song_url=GENIUS_WEB_URL + path)
        except _PageMissing:
            return None

    def candidates(self, query: LyricsQuery) -> Iterator[LyricsHit]:
        """Yield the song hits of a Genius search for title and artist."""
        term = f"{strip_decorations(query.title)} {strip_decorations(query.artist)}".strip()
        try:
            response = self.client.search_songs(term, per_page=self.max_hits)
        except _PageMissing as exc:
            raise ProviderError(f"genius: search endpoint missing ({exc})") from None
        hits = response.get("hits") if isinstance(response, dict) else None
        if not isinstance(hits, list):
            raise ProviderError("genius: malformed search answer (no hits list)")
        for hit in hits:
            if not isinstance(hit, dict) or hit.get("type", hit.get("index")) != "song":
                continue  # song hits only: not articles, albums or users
            song = hit.get("result")
            if not isinstance(song, dict) or "title" not in song or "url" not in song:
                raise ProviderError("genius: malformed song hit (no title/url)")
            problem = None
            if song.get("instrumental"):
                problem = "Genius marks it instrumental"
            elif song.get("lyrics_state", "complete") != "complete":
                problem = f"Genius lyrics state is {song.get('lyrics_state')!r}"
            url = str(song["url"])
            yield LyricsHit(
                provider=self.name,
                artist=str((song.get("primary_artist") or {}).get("name", "")),
                title=str(song["title"]), url=url, problem=problem,
                load_text=lambda url=url: self._page_text(url))


def make_provider(name: str, policy: RetryPolicy | None = None):
    """Return the provider called *name* (``'lrclib'`` or ``'genius'``)."""
    if name == "lrclib":
        return LrclibProvider(policy=policy)
    if name == "genius":
        return GeniusProvider(policy=policy)
    raise InputError(name, f"unknown lyrics provider; choose from {', '.join(PROVIDER_NAMES)}")


def provider_order(names: Sequence[str] | str | None = None) -> list[str]:
    """Return provider names in fallback order: *names*, ``$MUSIC_STUDY_LYRICS_PROVIDERS``, default."""
    if names is None:
        names = os.environ.get("MUSIC_STUDY_LYRICS_PROVIDERS") or list(DEFAULT_PROVIDERS)
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in PROVIDER_NAMES:
            raise InputError(name, f"unknown lyrics provider; choose from {', '.join(PROVIDER_NAMES)}")
    if not names:
        raise InputError("providers", "no lyrics provider given")
    return names


# --------------------------------------------------------------------------- cache
def _now() -> datetime:
    return datetime.now(UTC)


def default_cache_path() -> Path:
    """Return ``$MUSIC_STUDY_LYRICS_CACHE`` or ``<data>/cache/lyrics.sqlite``."""
    env = os.environ.get("MUSIC_STUDY_LYRICS_CACHE")
    return Path(env).expanduser() if env else data_dir() / "cache" / "lyrics.sqlite"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS lyrics_cache (
    artist_key TEXT NOT NULL,
    title_key TEXT NOT NULL,
    providers TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (artist_key, title_key, providers)
)
"""


class LyricsCache:
    """SQLite cache of lyrics answers, one row per song and provider set.

    A found song is kept under the provider that found it and serves any later fetch that
    includes that provider; a "not found" is kept under the providers that were asked and
    expires after *not_found_ttl*. The table ``lyrics_cache`` can live in any SQLite file
    (e.g. the label store's) without touching other tables. Raw provider text is stored and
    cleaned again on every read, so better cleaning applies to old entries.

    Parameters
    ----------
    path : path-like, optional
        Default :func:`default_cache_path`.
    not_found_ttl : datetime.timedelta
    clock : callable, optional
        Returns the current UTC time (tests move it forward).
    """

    def __init__(self, path: str | os.PathLike | None = None, *,
                 not_found_ttl: timedelta = NOT_FOUND_TTL, clock: Callable[[], datetime] = _now):
        self.path = Path(path) if path is not None else default_cache_path()
        self.not_found_ttl = not_found_ttl
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Open the database; commit on success, roll back on error, always close."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                raise InputError(self.path, f"is not a usable SQLite lyrics cache ({exc}); "
                                 "move it aside or set MUSIC_STUDY_LYRICS_CACHE") from None
            with conn:  # one transaction
                yield conn
        finally:
            conn.close()

    @staticmethod
    def key(artist: str, title: str) -> tuple[str, str]:
        """Return the cache key of a song: its normalised artist and title."""
        return normalise_artist(artist), normalise_title(title)

    def get(self, artist: str, title: str, providers: Sequence[str]) -> LyricsResult | None:
        """Return the cached answer for a fetch over *providers*, or ``None``."""
        artist_key, title_key = self.key(artist, title)
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT providers, status, record, expires_at FROM lyrics_cache "
                "WHERE artist_key = ? AND title_key = ?", (artist_key, title_key)).fetchall()
        found = {p: rec for p, status, rec, _ in rows if status == "found"}
        for name in providers:
            if name in found:
                return self._result(found[name])
        now = self.clock().isoformat()
        wanted = "+".join(providers)
        for p, status, rec, expires in rows:
            if status == "not_found" and p == wanted and (expires is None or expires > now):
                return self._result(rec)
        return None

    @staticmethod
    def _result(record: str) -> LyricsResult:
        result = LyricsResult(**json.loads(record))
        result.lyrics = clean_lyrics(result.raw_lyrics) if result.raw_lyrics else result.lyrics
        result.cached = True
        return result

    def put(self, result: LyricsResult, providers: Sequence[str]) -> None:
        """Store a ``found`` or ``not_found`` *result*; ``error`` results are not stored."""
        if result.status not in ("found", "not_found"):
            return
        stored_under = result.provider if result.found else "+".join(providers)
        expires = None if result.found else (self.clock() + self.not_found_ttl).isoformat()
        record = json.dumps(asdict(result) | {"cached": False})
        artist_key, title_key = self.key(result.artist, result.title)
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lyrics_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                (artist_key, title_key, stored_under, result.status, record,
                 result.fetched_at or self.clock().isoformat(), expires))

    def get_found(self, artist: str, title: str) -> LyricsResult | None:
        """Return the cached lyrics of a song from any provider, or ``None`` (offline lookup)."""
        artist_key, title_key = self.key(artist, title)
        with self._connect() as conn:
            row = conn.execute(
                "SELECT record FROM lyrics_cache WHERE artist_key = ? AND title_key = ? "
                "AND status = 'found' ORDER BY fetched_at DESC LIMIT 1",
                (artist_key, title_key)).fetchone()
        return self._result(row[0]) if row else None

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM lyrics_cache").fetchone()[0]

    def found_songs(self):
        """Return every cached found song as a DataFrame (artist, title, provider, lyrics, ...)."""

        with self._connect() as conn:
            rows = conn.execute(
                "SELECT record FROM lyrics_cache WHERE status = 'found' ORDER BY fetched_at").fetchall()
        records = [self._result(rec).to_dict() for (rec,) in rows]
        return pd.DataFrame.from_records(records, columns=list(LyricsResult.__dataclass_fields__)
                                         if not records else None)


# --------------------------------------------------------------------------- fetching
def _first_match(provider, query: LyricsQuery, title_threshold: float,
                 artist_threshold: float) -> tuple[LyricsResult | None, list[str]]:
    reasons = []
    n = 0
    for candidate in provider.candidates(query):
        n += 1
        label = f"{provider.name}: {candidate.artist} - {candidate.title}"
        verdict = validate_hit(query.artist, query.title, candidate.artist, candidate.title,
                               title_threshold=title_threshold, artist_threshold=artist_threshold)
        if not verdict.accepted:
            reasons.append(f"{label}: {'; '.join(verdict.reasons)}")
            continue
        if candidate.problem:
            reasons.append(f"{label}: {candidate.problem}")
            continue
        if query.duration and candidate.duration and \
                abs(float(candidate.duration) - float(query.duration)) > DURATION_TOLERANCE:
            reasons.append(f"{label}: lasts {float(candidate.duration):.0f} s, "
                           f"not {float(query.duration):.0f} s")
            continue
        raw = candidate.load_text() or ""
        cleaned = clean_lyrics(raw)
        problems = ["no lyrics text"] if not cleaned else song_likeness_problems(cleaned)
        if problems:
            reasons.append(f"{label}: {'; '.join(problems)}")
            continue
        return LyricsResult(
            artist=query.artist, title=query.title, status="found", provider=provider.name,
            matched_artist=candidate.artist, matched_title=candidate.title, url=candidate.url,
            album=candidate.album, duration=candidate.duration,
            title_score=round(verdict.title_score, 1), artist_score=round(verdict.artist_score, 1),
            lyrics=cleaned, raw_lyrics=raw, reasons=reasons), reasons
    if n == 0:
        reasons.append(f"{provider.name}: no hits for {query.artist!r} - {query.title!r}")
    return None, reasons


def fetch_lyrics(artist: str, title: str, *, album: str | None = None,
                 duration: float | None = None, providers: Sequence[str] | str | None = None,
                 cache: LyricsCache | bool | None = True, refresh: bool = False,
                 policy: RetryPolicy | None = None, title_threshold: float = TITLE_THRESHOLD,
                 artist_threshold: float = ARTIST_THRESHOLD) -> LyricsResult:
    """Fetch, validate and cache the lyrics of one song.

    Parameters
    ----------
    artist, title : str
        The song. Decorations such as "(feat. …)" or "(Radio Edit)" are dropped from the query.
    album : str, optional
    duration : float, optional
        Seconds; passed to LRCLIB and used to reject hits of a different length.
    providers : sequence of str or str, optional
        Fallback order, e.g. ``["genius", "lrclib"]`` or ``"lrclib"``
        (default :func:`provider_order`). A provider named alone must be usable (Genius needs
        a token); in a longer list an unusable one is skipped with a reason.
    cache : LyricsCache or bool
        ``True``: the default cache; ``False``/``None``: no cache.
    refresh : bool
        Ask the providers even if the cache holds an answer (the new answer is stored).
    policy : RetryPolicy, optional
        Timeouts and retries.

    Returns
    -------
    LyricsResult
        ``found``, ``not_found`` (with ``reasons``) or ``error`` (a provider failed; reasons).

    Raises
    ------
    InputError
        Empty artist or title, an unknown provider, or a sole provider that cannot be used.
    """
    if not str(artist).strip() or not str(title).strip():
        raise InputError(f"{artist!r} - {title!r}", "artist and title must both be given")
    names = provider_order(providers)
    reasons, usable = [], []
    for name in names:
        try:
            usable.append(make_provider(name, policy))
        except ProviderUnavailable as exc:
            if len(names) == 1:
                raise InputError(name, str(exc).split(": ", 1)[-1] +
                                 " (get a token at https://genius.com/api-clients)") from None
            reasons.append(f"{exc} (skipped)")
    usable_names = [provider.name for provider in usable]
    # (not "cache or None": an empty LyricsCache has len 0 and is falsy)
    store = LyricsCache() if cache is True else (None if cache is False or cache is None else cache)
    query = LyricsQuery(str(artist).strip(), str(title).strip(), album, duration)
    if store is not None and not refresh and usable_names:
        hit = store.get(query.artist, query.title, usable_names)
        if hit is not None:
            return hit

    answered, failed = [], False
    for provider in usable:
        try:
            found, tried = _first_match(provider, query, title_threshold, artist_threshold)
        except ProviderError as exc:
            reasons.append(str(exc))
            failed = True
            continue
        reasons.extend(tried)
        answered.append(provider.name)
        if found is not None:
            found.reasons = reasons
            found.fetched_at = _now().isoformat()
            if store is not None:
                store.put(found, answered)
            return found
    # "not_found" only when every usable provider answered; otherwise nothing is known
    status = "error" if failed or not answered else "not_found"
    result = LyricsResult(artist=query.artist, title=query.title, status=status,
                          reasons=reasons, fetched_at=_now().isoformat())
    if store is not None and status == "not_found":
        store.put(result, answered)
    return result


def load_liked_lyrics(path: str | os.PathLike, *, fetch_missing: bool = False,
                      providers: Sequence[str] | str | None = None,
                      cache: LyricsCache | bool | None = True,
                      policy: RetryPolicy | None = None, progress=None):
    """Load a liked-songs CSV (``artist``, ``title`` and optionally ``lyrics``) with lyrics.

    Rows without lyrics are looked up in the cache (offline); only with ``fetch_missing=True``
    are the providers asked (this uses the internet).

    Parameters
    ----------
    path : path-like
        CSV with columns ``artist`` and ``title``; ``lyrics``, ``album`` and ``duration``
        (seconds) are used when present.
    fetch_missing : bool
        Fetch lyrics the file and the cache do not hold.
    providers, cache, policy
        As for :func:`fetch_lyrics`.
    progress : callable, optional
        Called with each finished :class:`LyricsResult` (e.g. to print progress).

    Returns
    -------
    pandas.DataFrame
        The file's rows plus ``lyrics`` (cleaned; empty when missing), ``lyrics_status``
        (``given``, ``cached``, ``found``, ``not_found``, ``error`` or ``not_fetched``),
        ``lyrics_provider`` and ``lyrics_reason``.
    """

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "liked-songs file does not exist")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(path, f"is not a readable CSV ({exc})") from None
    missing = {"artist", "title"} - set(table.columns)
    if missing:
        raise InputError(path, f"has no column {', '.join(sorted(missing))} (needs artist, title)")
    store = LyricsCache() if cache is True else (None if cache is False or cache is None else cache)
    given = table["lyrics"] if "lyrics" in table else pd.Series([None] * len(table), index=table.index)
    lyrics, status, provider, reason = [], [], [], []
    for i, row in table.iterrows():
        text = given.loc[i]
        if isinstance(text, str) and text.strip():
            lyrics.append(clean_lyrics(text))
            status.append("given")
            provider.append(None)
            reason.append("")
            continue
        result = store.get_found(row["artist"], row["title"]) if store is not None else None
        if result is None and fetch_missing:
            duration = row.get("duration")
            result = fetch_lyrics(
                row["artist"], row["title"], album=row.get("album") if isinstance(
                    row.get("album"), str) else None,
                duration=float(duration) if pd.notna(duration) and duration else None,
                providers=providers, cache=store if store is not None else False, policy=policy)
        if result is None:
            lyrics.append("")
            status.append("not_fetched")
            provider.append(None)
            reason.append("not in the cache; fetch_missing=False")
            continue
        lyrics.append(result.lyrics)
        status.append("cached" if result.cached and result.found else result.status)
        provider.append(result.provider)
        reason.append("; ".join(result.reasons) if not result.found else "")
        if progress is not None:
            progress(result)
    return table.assign(lyrics=lyrics, lyrics_status=status, lyrics_provider=provider,
                        lyrics_reason=reason)


__all__ = [
    "DEFAULT_PROVIDERS", "GeniusProvider", "LrclibProvider", "LyricsCache", "LyricsQuery",
    "LyricsResult", "ProviderError", "RetryPolicy", "fetch_lyrics", "load_liked_lyrics",
    "provider_order",
]

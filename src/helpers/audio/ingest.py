"""Turn a song URL (anything yt-dlp supports) or a local path into a local audio file.

Downloads go through the yt-dlp Python API, best audio only (yt-dlp runs no program of its
own), and are converted to Ogg Vorbis (which :mod:`soundfile` decodes) by
:func:`helpers.audio.convert_to_ogg`: the ffmpeg that ``imageio-ffmpeg`` installs from PyPI,
limited to the downloaded file and a listed container, with a deadline. Each download is saved under ``data/downloads/`` with a safe file
name, next to a JSON sidecar holding its metadata (title, uploader/artist, duration, source
URL) and its cache key: the full normalised URL, and for sites with their own song ids the
extractor and id. Asking for the same URL again reuses the file.

Only http(s) URLs of public hosts are fetched, and every connection on the way (redirects,
what a page points to) is checked the same way (:mod:`helpers.audio.netsafe`). A download is written
to a temporary folder and renamed into place whole; concurrent requests for one URL wait for one
download.

Limits: a song longer than ``max_duration`` seconds (as announced by the site, else as stated in
the downloaded file's header, before conversion) or larger than ``max_filesize`` bytes is
refused with an :class:`~helpers.errors.InputError` (and any partial file removed).
:func:`enforce_disk_quota` keeps the uploads and downloads folders under a size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from helpers.audio import decode, netsafe
from helpers.audio.decode import convert_to_ogg
from helpers.audio.files import check_audio_path
from helpers.audio.netsafe import check_url
from helpers.cache import read_json, write_json
from helpers.errors import AudioError, InputError
from helpers.paths import data_dir

#: Longest song accepted by default (seconds): a long DJ set is not "a song".
MAX_DURATION_SECONDS = 20 * 60
#: Largest download accepted by default (bytes).
MAX_FILESIZE_BYTES = 100 * 1024 * 1024
#: Longest a download may take, in seconds: a server that sends a byte now and then (each
#: within the socket timeout) is stopped all the same.
MAX_DOWNLOAD_SECONDS = 300.0
#: Extension of the Ogg Vorbis files downloads are converted to.
AUDIO_EXTENSION = "ogg"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class IngestedAudio:
    """A local audio file and what is known about where it came from.

    Attributes
    ----------
    path : Path
        The local audio file.
    title, artist : str or None
        Title and uploader/artist (``None`` when unknown).
    duration : float or None
        Length in seconds.
    source_url : str or None
        The URL it was downloaded from (``None`` for a local file).
    id : str or None
        The site's id of the song (``None`` for a local file).
    """

    path: Path
    title: str | None = None
    artist: str | None = None
    duration: float | None = None
    source_url: str | None = None
    id: str | None = None

    def to_dict(self) -> dict:
        """Return the metadata as JSON-ready values."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class PlaylistEntry:
    """One song of a playlist, not yet downloaded (pass ``url`` to :func:`fetch_audio`)."""

    url: str
    title: str | None = None
    artist: str | None = None
    duration: float | None = None
    id: str | None = None


def is_url(source) -> bool:
    """Return True when *source* looks like a URL (``scheme://...``) rather than a local path."""
    return isinstance(source, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def downloads_dir() -> Path:
    """Return the folder downloads are saved to (``data/downloads``)."""
    return data_dir() / "downloads"


def safe_filename(*parts, max_length: int = 120) -> str:
    """Join *parts* into a file name stem safe on every common file system.

    Accents are folded to ASCII, anything other than letters, digits, ``.``, ``-`` and ``_``
    becomes ``_``, leading dots are dropped (no hidden files, no ``..``), and the result is
    shortened to *max_length* characters.

    Examples
    --------
    >>> safe_filename("dQw4w9WgXcQ", "Rick Astley - Never Gonna Give You Up (Official)")
    'dQw4w9WgXcQ_Rick_Astley_-_Never_Gonna_Give_You_Up_Official'
    >>> safe_filename("x", "../../etc/passwd")
    'x_.._.._etc_passwd'
    """
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    text = re.sub(r"_+", "_", text)[:max_length].rstrip("._-")
    return text or "audio"


def _extract_info(url: str, options: dict) -> dict | None:
    """Ask yt-dlp what *url* holds (no download), as one-line ``InputError`` on failure."""
    # imported here: `music-study predict` starts without yt-dlp (a local file needs none)
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    with netsafe.guard() as guarded:
        try:
            with YoutubeDL(options) as ydl:
                return ydl.extract_info(url, download=False)
        except YoutubeDLError as exc:
            raise InputError(url, _refusal_or(guarded.refused, exc)) from exc
        except OSError as exc:
            reason = _refusal_or(guarded.refused, exc) if guarded.refused else \
                f"cannot reach the server ({exc})"
            raise InputError(url, reason) from exc


def _one_line_reason(exc: BaseException) -> str:
    """Turn a yt-dlp error into a short reason a user can act on."""
    text = _ANSI.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[^\]]+\]\s*(\S+:\s*)?", "", text)
    lowered = text.lower()
    if "requested format is not available" in lowered:
        return "no audio at this address that can be fetched as a direct http(s) stream"
    if "unsupported url" in lowered:
        return "no audio found at this address (unsupported URL or a page without a song)"
    if "postprocessing" in lowered and "codec" in lowered:
        return "the address does not serve audio (the downloaded file has no audio stream)"
    status = re.search(r"HTTP Error (\d{3})(?::\s*([^;(]*))?", text)
    if status:
        return f"download failed: HTTP {status.group(1)} {(status.group(2) or '').strip()}".rstrip()
    for symptom in ("connection refused", "name or service not known", "failed to resolve",
                    "timed out", "network is unreachable", "connection reset",
                    "no route to host", "temporary failure in name resolution"):
        if symptom in lowered:
            return f"cannot reach the server ({symptom})"
    return f"download failed ({text})"


def _ydl_options(**extra) -> dict:
    options = {
        # Direct http(s) streams only, fetched by yt-dlp's own downloaders: every connection
        # then goes through helpers.audio.netsafe's check (an external downloader such as ffmpeg,
        # which HLS may fall back to, would connect without it).
        "format": "bestaudio[protocol^=http]/best[protocol^=http]",
        "external_downloader": {"default": "native"},
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        # yt-dlp only downloads: no ffmpeg run of its own (it would have no deadline), no
        # "fixup" of the file; helpers.audio.convert_to_ogg converts it
        "fixup": "never",
        "socket_timeout": 20,
        "retries": 1,
        "fragment_retries": 1,
        "cachedir": False,
        "logger": _QuietLogger(),
    }
    options.update(extra)
    return options


class _QuietLogger:
    """Keep yt-dlp silent on stdout (``--json`` output must stay one document)."""

    def debug(self, msg):
        pass

    def info(self, msg):
        pass

    def warning(self, msg):
        pass

    def error(self, msg):
        pass


def normalise_url(url: str) -> str:
    """Return the form of *url* the download cache is keyed by.

    Scheme and host are lower-cased, a default port and the ``#fragment`` are dropped and an
    empty path becomes ``/``; path and query are kept whole, so ``.../song.wav`` and
    ``.../sub/song.wav`` stay two different songs.

    Examples
    --------
    >>> normalise_url("HTTPS://Example.ORG:443/sub/Song.wav?x=1#t=10")
    'https://example.org/sub/Song.wav?x=1'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def _cache_key(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def _key_prefix(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


_key_locks: dict[str, threading.Lock] = {}
_key_locks_guard = threading.Lock()


@contextlib.contextmanager
def _locked(key: str):
    """Hold the lock of one cache key: concurrent requests for one URL wait for one download."""
    with _key_locks_guard:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        yield


def _find_cached(folder: Path, key: str) -> IngestedAudio | None:
    """Return the cached download recorded under *key* whose audio file still exists."""
    if not folder.is_dir():
        return None
    for sidecar in sorted(folder.glob(f"{_key_prefix(key)}_*.json")):
        meta = read_json(sidecar)
        if not isinstance(meta, dict):
            continue  # a foreign or damaged file is not a cache hit
        audio = folder / str(meta.get("file", ""))
        if meta.get("cache_key") == key and audio.parent == folder and audio.is_file():
            return IngestedAudio(
                path=audio, title=meta.get("title"), artist=meta.get("artist"),
                duration=meta.get("duration"), source_url=meta.get("source_url"), id=meta.get("id"),
            )
    return None


def cached_download(url: str, download_dir=None) -> Path | None:
    """Return the downloaded file of *url* when it is in the cache, else ``None`` (no network)."""
    folder = Path(download_dir) if download_dir is not None else downloads_dir()
    found = _find_cached(folder, _cache_key("url", normalise_url(url))) if is_url(url) else None
    return None if found is None else found.path


def _write_sidecar(folder: Path, key: str, name: str, document: dict) -> None:
    """Write the cache entry of *key*: ``<key prefix>_<name>.json`` beside the audio file."""
    # the sidecar appears whole, after its audio: it marks a finished entry
    write_json(folder / f"{_key_prefix(key)}_{name}.json", {**document, "cache_key": key},
               indent=2, ensure_ascii=False)


def _local_audio(source) -> IngestedAudio:
    path = Path(source).expanduser()
    # the real reason: missing, folder, FIFO, loop, ...
    check_audio_path(path, source, not_found="file not found (and not an http(s) URL)")
    try:
        duration = decode.probe_audio(path, path_checked=True).duration  # one name counts probes
    except AudioError:  # refused with its reason by the audio checks that follow
        duration = None
    return IngestedAudio(path=path.resolve(), title=path.stem, duration=duration)


def _id_key(info: dict) -> str | None:
    """The extractor's own id of a song, when it names one song (not the generic extractor,
    whose "id" is only the file name of a direct link)."""
    extractor, video_id = info.get("extractor_key"), info.get("id")
    if not extractor or not video_id or str(extractor).lower() == "generic":
        return None
    return _cache_key("id", f"{extractor}:{video_id}")


def fetch_audio(source, *, download_dir=None, max_duration: float = MAX_DURATION_SECONDS,
                max_filesize: int = MAX_FILESIZE_BYTES, refresh: bool = False,
                allow_local: bool = True) -> IngestedAudio:
    """Return a local audio file for *source*: a local path as is, or a downloaded URL.

    Parameters
    ----------
    source : str or path-like
        A local audio file, or an http(s) URL of anything yt-dlp supports (a video page, a
        direct link to an audio file, a web page with an HTML5 ``<audio>`` element).
    download_dir : path-like, optional
        Where downloads go (default ``data/downloads``).
    max_duration : float
        Longest song accepted, in seconds: checked on the duration the site announces before
        downloading, and on the downloaded file's header before it is converted.
    max_filesize : int
        Largest download accepted, in bytes.
    refresh : bool
        Download again even if this URL was downloaded before.
    allow_local : bool
        Accept a local path (the command line); ``False`` refuses anything but an http(s) URL
        (the web page).

    Returns
    -------
    IngestedAudio

    Raises
    ------
    InputError
        Missing local file, a URL that is not http(s) or whose host (or any redirect hop, or
        anything the page points to) is not a public address (see :mod:`helpers.audio.netsafe`),
        unreachable URL, HTTP error, a page without audio, a playlist URL (use
        :func:`playlist_entries`), or a song over the limits. The message is one line naming
        the source.

    Notes
    -----
    The cache is keyed by the full normalised URL (:func:`normalise_url`) and, for sites
    with their own song ids, by extractor and id. A download goes to a temporary folder and
    is renamed into place whole; two requests for the same URL at once wait for one download.

    Examples
    --------
    >>> fetch_audio("data/music/wesnoth_heroes_rite.ogg").title  # doctest: +SKIP
    'wesnoth_heroes_rite'
    """
    if not is_url(source):
        if not allow_local:
            raise InputError(source, "not an http(s) URL")
        return _local_audio(source)
    url = check_url(source)
    folder = Path(download_dir) if download_dir is not None else downloads_dir()
    url_key = _cache_key("url", normalise_url(url))
    with _locked(url_key):
        if not refresh:
            cached = _find_cached(folder, url_key)
            if cached is not None:
                return cached
        info = _extract_info(url, _ydl_options())
        if info is None:
            raise InputError(url, "no audio found at this address")
        if info.get("_type") == "playlist" or info.get("entries") is not None:
            raise InputError(url, "is a playlist, not one song (use playlist_entries to list its songs)")
        _check_limits(url, info, max_duration, max_filesize)
        id_key = _id_key(info)
        if id_key is None:
            return _download(url, info, folder, [url_key], max_duration, max_filesize)
        with _locked(id_key):
            cached = None if refresh else _find_cached(folder, id_key)
            if cached is not None:
                _write_sidecar(folder, url_key, cached.path.stem.split("_", 1)[-1],
                               {**cached.to_dict(), "file": cached.path.name})
                return cached
            return _download(url, info, folder, [id_key, url_key], max_duration, max_filesize)


class _DownloadClock:
    """A yt-dlp progress hook that stops a download once it has run for *seconds*."""

    def __init__(self, seconds: float):
        self._now = time.monotonic
        self.deadline = self._now() + seconds
        self.overdue = False

    def check(self, progress: dict) -> None:
        if progress.get("status") == "downloading" and self._now() > self.deadline:
            # imported here: `music-study predict` starts without yt-dlp
            from yt_dlp.utils import DownloadError

            self.overdue = True
            raise DownloadError("download deadline passed")


def _download(url: str, info: dict, folder: Path, keys: list[str], max_duration: float,
              max_filesize: int) -> IngestedAudio:
    """Download *info* into a temporary folder, check, convert, then rename into the cache.

    yt-dlp only downloads (no post-processor, no "fixup"): the file is checked from its header
    and converted by :func:`helpers.audio.convert_to_ogg`, which runs ffmpeg under the decoders'
    rules (that one file, a listed container, a deadline).
    """
    # imported here: `music-study predict` starts without yt-dlp (a local file needs none)
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError


    title = info.get("title")
    video_id = str(info.get("id") or _key_prefix(keys[0]))
    name = safe_filename(title if title != video_id else None, max_length=80)
    stem = f"{_key_prefix(keys[0])}_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        clock = _DownloadClock(MAX_DOWNLOAD_SECONDS)
        options = _ydl_options(
            outtmpl={"default": str(staging / "audio").replace("%", "%%") + ".%(ext)s"},
            max_filesize=max_filesize, overwrites=True, concurrent_fragment_downloads=1,
            progress_hooks=[clock.check],
        )
        try:
            with netsafe.guard() as guarded, YoutubeDL(options) as ydl:
                info = ydl.process_ie_result(info, download=True)
        except (YoutubeDLError, OSError) as exc:
            if clock.overdue:
                raise InputError(url, f"download did not finish within "
                                      f"{MAX_DOWNLOAD_SECONDS:g} s") from None
            raise InputError(url, _refusal_or(guarded.refused, exc)) from exc
        downloaded = sorted(p for p in staging.iterdir()
                            if p.is_file() and p.name.startswith("audio.") and p.suffix != ".part")
        if not downloaded:
            raise InputError(url, f"download stopped: larger than the {_size(max_filesize)} limit")
        try:  # the header only, before anything is converted
            stated = decode.probe_audio(downloaded[0], source=url)
        except AudioError as exc:
            raise InputError(url, "the address does not serve audio (the downloaded file has "
                                  "no audio stream)") from exc
        if stated.duration is not None and stated.duration > max_duration:
            raise InputError(url, _too_long(stated.duration, max_duration))
        converted = staging / f"converted.{AUDIO_EXTENSION}"
        try:
            convert_to_ogg(downloaded[0], converted, info=stated, source=url)
            duration = decode.probe_audio(converted, source=url).duration
        except AudioError as exc:
            raise AudioError(url, f"downloaded file is not decodable audio ({exc.reason})") from exc
        if duration is not None and duration > max_duration:
            raise InputError(url, _too_long(duration, max_duration))
        path = folder / f"{stem}.{AUDIO_EXTENSION}"
        os.replace(converted, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ingested = IngestedAudio(
        path=path, title=title,
        artist=info.get("artist") or info.get("uploader") or info.get("creator"),
        duration=duration, source_url=url, id=video_id,
    )
    document = {**ingested.to_dict(), "file": path.name, "webpage_url": info.get("webpage_url"),
                "extractor": info.get("extractor_key")}
    for key in keys:
        _write_sidecar(folder, key, name, document)
    return ingested


def _refusal_or(refused: str | None, exc: BaseException) -> str:
    if refused:
        return f"refused: {refused} (only public internet addresses are fetched)"
    return _one_line_reason(exc)


def _too_long(duration: float, max_duration: float) -> str:
    return f"song is {duration / 60:.1f} min long, over the {max_duration / 60:.1f} min limit"


def _check_limits(url: str, info: dict, max_duration: float, max_filesize: int) -> None:
    """Refuse a song by what the site announces, before anything is downloaded."""
    duration = info.get("duration")
    if duration and duration > max_duration:
        raise InputError(url, _too_long(duration, max_duration))
    size = info.get("filesize") or info.get("filesize_approx")
    if size and size > max_filesize:
        raise InputError(url, f"file is {_size(size)}, over the {_size(max_filesize)} limit")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.0f} kB"


def enforce_disk_quota(folders, max_bytes: int, keep=()) -> bool:
    """Remove the oldest audio files of *folders* until they hold at most *max_bytes*.

    Files in *keep* (e.g. every file a label points to, and the files of jobs in progress)
    are never removed; a removed download takes its cache sidecars with it.

    Parameters
    ----------
    folders : iterable of path-like
        Typically ``data/uploads`` and ``data/downloads``.
    max_bytes : int
        The quota.
    keep : iterable of path-like
        Files that stay whatever their age.

    Returns
    -------
    bool
        True when the folders are now within the quota (False: the kept files alone exceed it).
    """
    kept = {Path(p).resolve() for p in keep if p is not None}
    files = [p for folder in map(Path, folders) if folder.is_dir() for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix != ".json"]
    sizes = {p: p.stat().st_size for p in files}
    total = sum(sizes.values())
    for path in sorted(files, key=lambda p: p.stat().st_mtime):
        if total <= max_bytes:
            break
        if path.resolve() in kept:
            continue
        path.unlink(missing_ok=True)
        total -= sizes[path]
        for sidecar in path.parent.glob("*.json"):
            meta = read_json(sidecar)
            if isinstance(meta, dict) and meta.get("file") == path.name:
                sidecar.unlink(missing_ok=True)
    return total <= max_bytes

def playlist_entries(url: str) -> list[PlaylistEntry]:
    """List the songs of a playlist URL without downloading them.

    A URL of a single song gives a one-element list, so callers can treat "a liked-songs list"
    and "one liked song" alike.

    Parameters
    ----------
    url : str
        An http(s) URL of a playlist (YouTube / YouTube Music list, a page with several
        ``<audio>`` elements, a podcast feed, ...).

    Returns
    -------
    list of PlaylistEntry
        In playlist order; pass each ``entry.url`` to :func:`fetch_audio`.

    Raises
    ------
    InputError
        Unsupported or unreachable URL, or a page without any song.
    """
    url = check_url(url)

    info = _extract_info(url, _ydl_options(noplaylist=False, extract_flat="in_playlist"))
    if info is None:
        raise InputError(url, "no songs found at this address")
    is_playlist = info.get("entries") is not None
    raw = list(info.get("entries") or []) if is_playlist else [info]
    # A playlist entry's own address is its `url` (its `webpage_url`, when present, may be the
    # playlist page itself); a single song's `url` is a short-lived stream, so keep its page.
    keys = ("url", "webpage_url", "original_url") if is_playlist else ("webpage_url", "url", "original_url")
    entries = []
    for item in raw:
        if not item:
            continue
        entry_url = next((item[k] for k in keys if item.get(k)), None)
        if not entry_url:
            continue
        entries.append(PlaylistEntry(
            url=entry_url, title=item.get("title"),
            artist=item.get("artist") or item.get("uploader") or item.get("channel"),
            duration=item.get("duration"), id=item.get("id"),
        ))
    if not entries:
        raise InputError(url, "no songs found in this playlist")
    return entries

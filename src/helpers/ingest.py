"""Turn a song URL (anything yt-dlp supports) or a local path into a local audio file.

Downloads go through the yt-dlp Python API, best audio only, and are converted to Ogg Vorbis
(which :mod:`soundfile` decodes) by the ffmpeg that ``imageio-ffmpeg`` installs from PyPI, so
no system ffmpeg is needed. Each download is saved under ``data/downloads/`` with a safe file
name built from the video id and title, next to a JSON sidecar holding its metadata (title,
uploader/artist, duration, source URL). Asking for the same URL again reuses the file.

Limits: a song longer than ``max_duration`` seconds or larger than ``max_filesize`` bytes is
refused with an :class:`~helpers.errors.InputError` (and any partial file removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from helpers.errors import AudioError, InputError
from helpers.paths import data_dir

#: Longest song accepted by default (seconds): a long DJ set is not "a song".
MAX_DURATION_SECONDS = 20 * 60
#: Largest download accepted by default (bytes).
MAX_FILESIZE_BYTES = 100 * 1024 * 1024
#: Audio format downloads are converted to (yt-dlp codec name, file extension).
AUDIO_CODEC, AUDIO_EXTENSION = "vorbis", "ogg"
_URL_SCHEMES = ("http", "https")
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


def _url_key(url: str) -> str:
    return hashlib.sha1(url.strip().encode("utf-8")).hexdigest()[:10]


def _extract_info(url: str, options: dict) -> dict | None:
    """Ask yt-dlp what *url* holds (no download), as one-line ``InputError`` on failure."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    try:
        with YoutubeDL(options) as ydl:
            return ydl.extract_info(url, download=False)
    except YoutubeDLError as exc:
        raise InputError(url, _one_line_reason(exc)) from exc
    except OSError as exc:
        raise InputError(url, f"cannot reach the server ({exc})") from exc


def _one_line_reason(exc: BaseException) -> str:
    """Turn a yt-dlp error into a short reason a user can act on."""
    text = _ANSI.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[^\]]+\]\s*(\S+:\s*)?", "", text)
    lowered = text.lower()
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
    import imageio_ffmpeg

    options = {
        "format": "bestaudio/best",
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
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


def _find_cached(folder: Path, key: str, value: str) -> IngestedAudio | None:
    """Return the download whose sidecar has ``sidecar[key] == value`` and whose audio exists."""
    if not folder.is_dir():
        return None
    for sidecar in sorted(folder.glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a cache hit
        if meta.get(key) == value and (folder / meta.get("file", "")).is_file():
            return IngestedAudio(
                path=folder / meta["file"], title=meta.get("title"), artist=meta.get("artist"),
                duration=meta.get("duration"), source_url=meta.get("source_url"), id=meta.get("id"),
            )
    return None


def _write_json_atomically(path: Path, document: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _probe_duration(path: Path, source: str) -> float:
    import soundfile

    from helpers.audio import decoder_stderr_captured

    try:
        with decoder_stderr_captured():  # libmpg123's notes stay off the terminal
            return float(soundfile.info(str(path)).duration)
    except Exception as exc:  # libsndfile raises several types for bad data
        raise AudioError(source, f"downloaded file is not decodable audio ({exc})") from exc


def _local_audio(source) -> IngestedAudio:
    from helpers.audio import check_audio_path, probe_duration

    path = Path(source).expanduser()
    try:
        check_audio_path(path, source)  # the real reason: missing, folder, FIFO, loop, ...
    except AudioError as exc:
        if exc.reason == "file not found":
            raise AudioError(source, "file not found (and not an http(s) URL)") from None
        raise
    try:
        duration = probe_duration(path)
    except AudioError:  # refused with its reason by the audio checks that follow
        duration = None
    return IngestedAudio(path=path.resolve(), title=path.stem, duration=duration)


def _check_url(source: str) -> str:
    url = source.strip()
    scheme = urlparse(url).scheme.lower()
    if scheme not in _URL_SCHEMES:
        raise InputError(source, f"unsupported URL scheme {scheme!r} (use http or https)")
    return url


def fetch_audio(source, *, download_dir=None, max_duration: float = MAX_DURATION_SECONDS,
                max_filesize: int = MAX_FILESIZE_BYTES, refresh: bool = False) -> IngestedAudio:
    """Return a local audio file for *source*: a local path as is, or a downloaded URL.

    Parameters
    ----------
    source : str or path-like
        A local audio file, or an http(s) URL of anything yt-dlp supports (a video page, a
        direct link to an audio file, a web page with an HTML5 ``<audio>`` element).
    download_dir : path-like, optional
        Where downloads go (default ``data/downloads``).
    max_duration : float
        Longest song accepted, in seconds.
    max_filesize : int
        Largest download accepted, in bytes.
    refresh : bool
        Download again even if this URL was downloaded before.

    Returns
    -------
    IngestedAudio

    Raises
    ------
    InputError
        Missing local file, unsupported or unreachable URL, HTTP error, a page without audio, a
        playlist URL (use :func:`playlist_entries`), or a song over the limits. The message is
        one line naming the source.

    Examples
    --------
    >>> fetch_audio("data/music/wesnoth_heroes_rite.ogg").title  # doctest: +SKIP
    'wesnoth_heroes_rite'
    """
    if not is_url(source):
        return _local_audio(source)
    url = _check_url(source)
    folder = Path(download_dir) if download_dir is not None else downloads_dir()
    if not refresh:
        cached = _find_cached(folder, "source_url", url)
        if cached is not None:
            return cached

    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    info = _extract_info(url, _ydl_options())
    if info is None:
        raise InputError(url, "no audio found at this address")
    if info.get("_type") == "playlist" or info.get("entries") is not None:
        raise InputError(url, "is a playlist, not one song (use playlist_entries to list its songs)")
    _check_limits(url, info, max_duration, max_filesize)

    video_id = str(info.get("id") or _url_key(url))
    if not refresh:
        cached = _find_cached(folder, "id_key", f"{info.get('extractor_key')}:{video_id}")
        if cached is not None:
            return cached

    folder.mkdir(parents=True, exist_ok=True)
    title = info.get("title")
    stem = safe_filename(video_id, title if title != video_id else None)
    template = str(folder / stem).replace("%", "%%") + ".%(ext)s"
    options = _ydl_options(
        outtmpl={"default": template},
        max_filesize=max_filesize,
        overwrites=True,
        postprocessors=[{"key": "FFmpegExtractAudio", "preferredcodec": AUDIO_CODEC}],
    )
    try:
        with YoutubeDL(options) as ydl:
            info = ydl.process_ie_result(info, download=True)
    except YoutubeDLError as exc:
        _remove_partials(folder, stem)
        raise InputError(url, _one_line_reason(exc)) from exc
    except OSError as exc:
        _remove_partials(folder, stem)
        raise InputError(url, f"download failed ({exc})") from exc

    path = folder / f"{stem}.{AUDIO_EXTENSION}"
    if not path.is_file():
        _remove_partials(folder, stem)
        raise InputError(url, f"download stopped: larger than the {_size(max_filesize)} limit")
    duration = _probe_duration(path, url)
    if duration > max_duration:
        _remove_partials(folder, stem)
        raise InputError(url, f"song is {duration / 60:.1f} min long, over the "
                              f"{max_duration / 60:.1f} min limit")
    ingested = IngestedAudio(
        path=path, title=info.get("title"),
        artist=info.get("artist") or info.get("uploader") or info.get("creator"),
        duration=duration, source_url=url, id=video_id,
    )
    _write_json_atomically(folder / f"{stem}.json", {
        **ingested.to_dict(), "file": path.name, "webpage_url": info.get("webpage_url"),
        "extractor": info.get("extractor_key"),
        "id_key": f"{info.get('extractor_key')}:{video_id}",
    })
    return ingested


def _check_limits(url: str, info: dict, max_duration: float, max_filesize: int) -> None:
    duration = info.get("duration")
    if duration and duration > max_duration:
        raise InputError(url, f"song is {duration / 60:.1f} min long, over the "
                              f"{max_duration / 60:.1f} min limit")
    size = info.get("filesize") or info.get("filesize_approx")
    if size and size > max_filesize:
        raise InputError(url, f"file is {_size(size)}, over the {_size(max_filesize)} limit")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.0f} kB"


def _remove_partials(folder: Path, stem: str) -> None:
    for leftover in folder.glob(f"{stem}.*"):
        if leftover.suffix != ".json":
            leftover.unlink(missing_ok=True)


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
    url = _check_url(url)

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

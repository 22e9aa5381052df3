"""Uploads of the web page: safe names, content-addressed files, the disk quota, header checks.

Nothing here needs Flask: an upload is any object with ``filename`` and a readable ``stream``
(werkzeug's ``FileStorage``), so each rule can be tested alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import unicodedata
from contextlib import contextmanager
from pathlib import Path

from helpers.audio.checks import check_audio
from helpers.audio.decode import probe_duration
from helpers.audio.files import AUDIO_SUFFIXES
from helpers.audio.ingest import enforce_disk_quota
from helpers.audio.windows import min_window_seconds
from helpers.errors import InputError
from helpers.paths import data_dir
from helpers.text import clean_text, safe_logger

#: File extensions accepted for upload: the workspace's one list of audio suffixes.
ALLOWED_EXTENSIONS = frozenset(suffix.lstrip(".") for suffix in AUDIO_SUFFIXES)
#: Largest accepted upload, in bytes.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Room for the form fields next to an upload, in bytes (the request may be this much larger).
FORM_ROOM_BYTES = 64 * 1024
#: Longest song (uploads and URLs), in seconds.
MAX_DURATION_SECONDS = 20 * 60
#: Default size limit of ``uploads/`` + ``downloads/`` together, in bytes.
DISK_QUOTA_BYTES = 2 * 1024**3
#: Longest kept upload name (characters of the stem; UTF-8 bytes are capped too).
MAX_NAME_CHARACTERS = 100
#: What an upload or URL gets when the uploads and downloads folders are full.
NO_ROOM = "the server has no room for more songs right now"
_log = safe_logger(__name__)


def uploads_dir() -> Path:
    """Return the folder uploads are saved to (``data/uploads``, git-ignored)."""
    return data_dir() / "uploads"


def too_large_message(max_upload_bytes: int) -> str:
    """The sentence for an upload over the size limit."""
    return f"upload: file is larger than the {max_upload_bytes // 2**20} MB limit"


def clean_filename(original: str, max_characters: int = MAX_NAME_CHARACTERS) -> str:
    """Return a display-safe, file-system-safe version of an uploaded file's name.

    Any script is kept (``Песня.mp3``, ``日本.wav``); folders, control and invisible formatting
    characters (e.g. right-to-left overrides: :func:`helpers.text.clean_text`), characters that
    some file systems forbid and leading dots are removed; the stem is capped at
    *max_characters* characters and 150 UTF-8 bytes, and the extension is lower-cased.

    Examples
    --------
    >>> clean_filename("C:\\\\music\\\\Песня.MP3")
    'Песня.mp3'
    >>> clean_filename("../../etc/passwd")
    'passwd'
    >>> clean_filename("a" * 300 + ".wav") == "a" * 100 + ".wav"
    True
    """
    name = unicodedata.normalize("NFC", str(original)).replace("\\", "/").rsplit("/", 1)[-1]
    name = clean_text(name)
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = name.strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = stem.strip(" .")[:max_characters]
    while len(stem.encode("utf-8")) > 150:
        stem = stem[:-1]
    extension = extension.lower()[:10]
    return f"{stem or 'upload'}.{extension}" if extension else (stem or "upload")


def upload_name(storage) -> str:
    """Return the cleaned name of an upload after checking it names an accepted audio type.

    Raises
    ------
    InputError
        No file chosen, or an extension that is not in :data:`ALLOWED_EXTENSIONS`.
    """
    if not storage.filename:
        raise InputError("upload", "no file chosen")
    shown = clean_filename(storage.filename)
    extension = shown.rsplit(".", 1)[-1] if "." in shown else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise InputError(shown, "not an accepted audio file type (accepted: "
                                f"{', '.join(sorted(ALLOWED_EXTENSIONS))})")
    return shown


def save_upload(storage, folder: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[Path, str]:
    """Save an uploaded file under *folder* with a safe, content-addressed name.

    The name is ``<first 12 hex of sha256>_<cleaned original name>`` (spaces become ``_``):
    the same file uploaded twice lands on the same path, and no name can escape *folder*.

    Returns
    -------
    (Path, str)
        The saved file and the cleaned name to show.

    Raises
    ------
    InputError
        No file, a disallowed extension, an empty file or one over *max_bytes*; the message
        names the upload by its cleaned name, never by a server path.
    """
    shown = upload_name(storage)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f".incoming-{secrets.token_hex(8)}.part"
    size = 0
    try:
        with open(partial, "wb") as handle:
            for block in iter(lambda: storage.stream.read(1 << 20), b""):
                size += len(block)
                if size > max_bytes:
                    raise InputError(shown, f"file is larger than the {max_bytes // 2**20} MB limit")
                digest.update(block)
                handle.write(block)
        if size == 0:
            raise InputError(shown, "file is empty")
        target = folder / f"{digest.hexdigest()[:12]}_{'_'.join(shown.split())}"
        os.replace(partial, target)
        return target, shown
    finally:
        partial.unlink(missing_ok=True)



def stream_size(storage) -> int | None:
    """Bytes of an uploaded file (werkzeug keeps it in a seekable spool), or None."""
    try:
        stream = storage.stream
        here = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return int(size)
    except (AttributeError, OSError, ValueError):
        return None


class DiskRoom:
    """The disk quota of the uploads and downloads folders, checked when an upload is
    accepted: what is on disk, plus what is being saved right now, plus the new upload.

    When that is over the quota, the oldest files nobody needs are removed first (see
    :func:`helpers.audio.ingest.enforce_disk_quota`); if it is still over, the upload is refused.

    Parameters
    ----------
    folders : list of Path
    quota : int
        Bytes.
    protected : callable
        ``protected() -> list of paths`` that must stay (labelled songs, files of jobs).
    """

    def __init__(self, folders, quota: int, protected):
        self.folders = [Path(f) for f in folders]
        self.quota = int(quota)
        self.protected = protected
        self.reserved = 0
        self.pending: set[Path] = set()  # saved, but their job is not recorded yet
        self._lock = threading.Lock()

    def used(self) -> int:
        """Bytes the quota counts now (the files :func:`enforce_disk_quota` would weigh)."""
        total = 0
        for folder in self.folders:
            if folder.is_dir():
                for path in folder.iterdir():
                    if not path.name.startswith(".") and path.suffix != ".json":
                        try:
                            total += path.stat().st_size if path.is_file() else 0
                        except OSError:
                            continue
        return total

    def free(self) -> int:
        """Bytes left under the quota once the oldest files nobody needs are removed (what a
        download may take, so a URL cannot grow the folders past the quota either)."""

        with self._lock:
            enforce_disk_quota(self.folders, max(0, self.quota - self.reserved),
                               keep=[*self.protected(), *self.pending])
            return max(0, self.quota - self.reserved - self.used())

    @contextmanager
    def reserve(self, nbytes: int, shown: str):
        """Hold room for *nbytes* while an upload is saved; yields a function to call with the
        saved path (it is then counted on disk, and kept until the ``with`` block ends)."""

        nbytes = max(0, int(nbytes))
        with self._lock:
            if nbytes > self.quota or self.used() + self.reserved + nbytes > self.quota:
                if nbytes <= self.quota:
                    enforce_disk_quota(self.folders, max(0, self.quota - self.reserved - nbytes),
                                       keep=[*self.protected(), *self.pending])
                if nbytes > self.quota or self.used() + self.reserved + nbytes > self.quota:
                    _log.warning("upload %s (%d bytes) refused: disk quota of %d bytes reached",
                                 shown, nbytes, self.quota)
                    raise InputError(shown, NO_ROOM)
            self.reserved += nbytes
        landed: list[Path] = []

        def saved(path: Path) -> None:
            with self._lock:
                self.reserved -= nbytes
                self.pending.add(Path(path))
                landed.append(Path(path))

        try:
            yield saved
        finally:
            with self._lock:
                if landed:
                    self.pending.discard(landed[0])
                else:
                    self.reserved -= nbytes



def check_upload(path: Path, shown: str, *, max_duration: float = MAX_DURATION_SECONDS,
                 window_seconds: float = 30.0) -> None:
    """Refuse an upload from its header alone: not audio, too short, or too long.

    Raises
    ------
    InputError
        Named by *shown* (the visitor's name for the file), never by the server path.
    """

    try:
        stated = probe_duration(path)
    except InputError:  # not audio: check_audio below gives the reason
        stated = None
    if stated is not None and stated > max_duration:
        raise InputError(shown, f"song is {stated / 60:.1f} min long, over the "
                                f"{max_duration / 60:.1f} min limit")
    try:
        check_audio(path, min_window_seconds(window_seconds), source=shown)
    except InputError as exc:
        raise InputError(shown, without_paths(exc.reason, path, shown)) from None


def without_paths(reason: str, path: Path, shown: str) -> str:
    """Return *reason* with the server-side file (and any other absolute path) replaced, so a
    decoder's message can be shown on the page."""
    reason = reason.replace(str(path), shown).replace(str(path.parent), "")
    return re.sub(r"(?<![\w:/.])/(?:[^\s/'\"]+/)+[^\s'\"),;]*", "(a file)", reason)

"""Which paths the workspace reads as audio, and the one check of a path before anything reads it.

:func:`check_audio_path` refuses a path that is not a readable, non-empty regular file (missing, a
folder, a FIFO, a device, a socket, a symlink loop, permission denied, empty) with the real
reason, before any decoder sees it; :data:`AUDIO_SUFFIXES` is the one list of file name endings
read as audio (folders, the labeler, the web page).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from helpers.errors import AudioError, InputError

#: File name endings read as audio: folders are searched for these (extract, the labeler) and
#: the web page accepts uploads ending so. Each is decoded by libsndfile or by ffmpeg with one
#: of :data:`FFMPEG_INPUT_FORMATS`.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac",
                  ".webm", ".mka", ".wma", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf",
                  ".w64", ".wv")


def names_a_file(path) -> bool:
    """Return True when something other than a folder is at *path*.

    A file, a FIFO, a device, a socket, a symbolic link to nothing or a symlink loop: what the
    audio checks should judge (and name the reason for), rather than a folder to search or a
    name to look up. ``~`` is not expanded here.

    Examples
    --------
    >>> names_a_file("no/such/file.wav"), names_a_file(".")
    (False, False)
    """
    path = Path(path)
    # is_dir first: where stat cannot run at all (a name too long, a folder above that cannot
    # be entered) it raises, as the callers' own is_dir / is_file did before they shared this
    return not path.is_dir() and os.path.lexists(path)


def check_audio_path(path, source=None, *, not_found: str | InputError | None = None
                     ) -> os.stat_result:
    """Refuse a path that is not a readable, non-empty regular file, naming the real reason.

    Parameters
    ----------
    path : path-like
        The file.
    source : str, optional
        The name to report (e.g. the URL or the argument the user typed); default *path*.
    not_found : str or InputError, optional
        What to say when nothing at all is at *path* (a link to a missing file keeps its own
        reason): a reason reported against *source*, or the error to raise; default
        ``"file not found"``. Lets a caller say where else it looked (ingest: "and not an
        http(s) URL") or name the path its own way (the label store: absolute).

    Returns
    -------
    os.stat_result
        The file's status.

    Raises
    ------
    AudioError
        ``file not found``, ``is a folder``, ``is a FIFO (named pipe)``, ``is a device``,
        ``is a socket``, ``symlink loop``, ``permission denied`` or ``file is empty``.
    """
    path = Path(path)
    source = path if source is None else source
    try:
        status = path.stat()
    except FileNotFoundError:
        if os.path.islink(path):
            raise AudioError(source, "file not found (a symbolic link to a missing file)") from None
        if isinstance(not_found, InputError):
            raise not_found from None
        raise AudioError(source, not_found or "file not found") from None
    except PermissionError:
        raise AudioError(source, "permission denied: cannot reach the file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(source, "symlink loop: the path's symbolic links point at each "
                                     "other") from None
        raise AudioError(source, f"cannot read the file ({exc.strerror or exc})") from None
    mode = status.st_mode
    if stat.S_ISDIR(mode):
        raise AudioError(source, "is a folder, not an audio file")
    if stat.S_ISFIFO(mode):
        raise AudioError(source, "is a FIFO (named pipe), not an audio file")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise AudioError(source, "is a device, not an audio file")
    if stat.S_ISSOCK(mode):
        raise AudioError(source, "is a socket, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioError(source, "is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise AudioError(source, "permission denied: cannot read the file") from None
    except OSError as exc:
        raise AudioError(source, f"cannot read the file ({exc.strerror or exc})") from None
    if status.st_size == 0:
        raise AudioError(source, "file is empty")
    return status

"""Decode audio files into the mono 22 050 Hz signal the features are defined on, and window it.

Decoding
--------
libsndfile (through :mod:`soundfile`) reads wav, flac, ogg/vorbis, opus and mp3; anything it
refuses (m4a/aac, webm, wma, ...) goes through an ``ffmpeg`` binary shipped by the PyPI package
``imageio-ffmpeg``, so nothing has to be installed by hand. Either way the decoder yields blocks
at the file's own rate; channels are averaged (as :func:`librosa.to_mono` does) and the signal is
resampled with soxr "HQ" in streaming mode, which gives bit for bit the samples of
``librosa.load(path, sr=22050)``: features computed on it reproduce the GTZAN table.

The decoders read only the file they are given and always end:

* ffmpeg opens that one file through the ``file`` protocol, with the demuxers of
  :data:`FFMPEG_INPUT_FORMATS` only; containers that name other resources (DASH and HLS
  manifests, concat lists, image sequences, ...) get :data:`NOT_AUDIO_REASON`, as any other
  file that is not audio does;
* every ffmpeg run (probe, decode, :func:`convert_to_ogg`) goes through
  :class:`DecoderProcess`: its own process group, its error output drained into a bounded
  buffer while it runs, and a deadline that follows the stated length
  (:func:`decode_deadline`, at most :data:`DECODE_DEADLINE_CAP`), past which the group is
  killed and the user reads :func:`deadline_reason`; libsndfile's time is bounded the same way
  between blocks;
* a user reads one of the module's sentences (:data:`DAMAGED_REASON`, ...), never the decoder's
  own words, which go to the log at INFO level (escaped, shortened: :func:`loggable`).

Memory stays bounded: :func:`iter_file_windows` decodes block by block and holds one window (plus
one block) at a time, so a one-hour file costs no more than a 30-s one. :func:`load_audio` returns
one array and therefore refuses requests longer than :data:`MAX_LOAD_SECONDS`.

Windowing policy
----------------
One rule, stated here and applied by every consumer (whole-song prediction, the labeler, liked
audio in recommendations, batch segments, through :func:`helpers.features.window_features`):

* a window is cut every ``window_seconds`` (no overlap): :func:`iter_windows` /
  :func:`iter_file_windows` yield every window, the last one possibly shorter, so every sample
  is covered;
* a window is *used* when it lasts at least :func:`min_window_seconds` ``= min(``
  :data:`MIN_WINDOW_SECONDS` ``= 10 s, window_seconds)`` and is neither silent (RMS below
  :data:`SILENCE_THRESHOLD_DB`, -60 dBFS, see :func:`is_silent`) nor holds NaN or infinite
  samples; :func:`iter_checked_windows` gives every other window its note (``short``,
  ``silent``, ``non-finite``: :data:`WINDOW_NOTES`);
* a window length is a number of seconds in 3-600 (:func:`check_window_seconds`).

So 30-s windows keep a last part of 10 s or more, and 3-s segments keep full segments only
(the minimum is the window itself). A file with no used window is refused, with one exception
stated by the same function (its ``file_seconds``): liked audio in recommendations shorter than
the minimum is described whole, as one window.

Validation (one rule set for every entry point)
-----------------------------------------------
Every command and widget that reads audio (``extract`` and :mod:`helpers.batch`,
:func:`helpers.features.extract_file`, ``predict`` and :func:`helpers.predict.predict_song`, the
labeler, the web page, ``recommend`` with an audio path) goes through the checks here, so one
file gets one verdict and one reason wherever it is given:

* :func:`check_audio_path`: missing, a folder, a FIFO, a device, a symlink loop, permission
  denied, empty;
* :func:`probe_audio`: not audio (neither libsndfile nor ffmpeg reads it);
* :func:`check_not_truncated` (WAV ``data`` chunk, Ogg end-of-stream flag) before decoding and
  :func:`check_decoded_length` (fewer samples than the header states: mp3, m4a) after it;
* :func:`signal_note` (read by :func:`signal_problem` and window notes): NaN or infinite
  samples, too short, silence.

:func:`check_audio` runs the cheap header checks (:func:`check_audio_info` also returns what
the probe found, which the decoders take as ``info=`` so a file is probed once per call);
:func:`iter_checked_windows` streams windows with a note on each unfit one and refuses a file
with no usable window, naming the reason.
Native decoder chatter (libmpg123's "Note: ..." lines on a damaged mp3) is kept off the
terminal by :func:`decoder_stderr_captured`.

Examples
--------
>>> import numpy as np
>>> from helpers.audio import iter_windows
>>> y = np.zeros(22050 * 70, dtype=np.float32)
>>> [(w.start, w.end) for w in iter_windows(y, window_seconds=30.0)]
[(0.0, 30.0), (30.0, 60.0), (60.0, 70.0)]
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.constants import MIN_FEATURE_SECONDS, SAMPLE_RATE
from helpers.errors import AudioError, InputError

#: The longest stretch :func:`load_audio` decodes into one array (15 minutes); longer files are
#: read window by window with :func:`iter_file_windows`.
MAX_LOAD_SECONDS = 15 * 60.0

#: File name endings read as audio: folders are searched for these (extract, the labeler) and
#: the web page accepts uploads ending so. Each is decoded by libsndfile or by ffmpeg with one
#: of :data:`FFMPEG_INPUT_FORMATS`.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac",
                  ".webm", ".mka", ".wma", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf",
                  ".w64", ".wv")

#: Default level below which :func:`is_silent` calls a window silent (RMS, dB re full scale).
SILENCE_THRESHOLD_DB = -60.0

#: Native-rate samples decoded per block while streaming (about 3 s at 44.1 kHz).
_BLOCK_FRAMES = 1 << 17

_FFMPEG_CHANNELS = {"mono": 1, "stereo": 2}


@dataclass(frozen=True, eq=False)
class Window:
    """One window of a signal.

    Attributes
    ----------
    start, end : float
        Position in the signal, in seconds (``end`` is exclusive).
    samples : np.ndarray
        The window's mono samples.
    """

    start: float
    end: float
    samples: np.ndarray = field(repr=False)
    #: Why the window is unfit to describe the song (see :data:`WINDOW_NOTES`), else ``""``;
    #: filled by :func:`iter_checked_windows`.
    note: str = ""

    @property
    def duration(self) -> float:
        """Length of the window in seconds."""
        return self.end - self.start


@dataclass(frozen=True)
class AudioInfo:
    """What a decoder reports about a file before decoding it.

    Attributes
    ----------
    samplerate : int
        The file's own sample rate.
    channels : int
        Number of channels (0 when ffmpeg downmixes an unusual layout itself).
    duration : float or None
        Length in seconds, when the container states it.
    decoder : str
        ``"soundfile"`` or ``"ffmpeg"``.
    """

    samplerate: int
    channels: int
    duration: float | None
    decoder: str


def ffmpeg_executable() -> str:
    """Return the path of the ffmpeg binary shipped by ``imageio-ffmpeg``."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # none found: starting "ffmpeg" fails, and says so in one sentence
        return "ffmpeg"


def is_silent(samples: np.ndarray, threshold_db: float = SILENCE_THRESHOLD_DB) -> bool:
    """Return True when the RMS level of *samples* is below *threshold_db* dB re full scale.

    An empty array is silent.

    Examples
    --------
    >>> import numpy as np
    >>> is_silent(np.zeros(100)), is_silent(np.full(100, 0.1))
    (True, False)
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return True
    rms = float(np.sqrt(np.mean(samples * samples)))
    return bool(rms <= 0.0 or 20.0 * np.log10(rms) < threshold_db)


def _window_lengths(sr: int, window_seconds: float, hop_seconds: float | None) -> tuple[int, int]:
    if not window_seconds or window_seconds <= 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds!r}")
    hop_seconds = window_seconds if hop_seconds is None else hop_seconds
    if hop_seconds <= 0:
        raise ValueError(f"hop_seconds must be positive, got {hop_seconds!r}")
    window = max(1, int(round(window_seconds * sr)))
    hop = max(1, int(round(hop_seconds * sr)))
    return window, hop


def iter_windows(y: np.ndarray, sr: int = SAMPLE_RATE, window_seconds: float = 30.0,
                 hop_seconds: float | None = None) -> Iterator[Window]:
    """Cut a signal into windows; see the module's windowing policy.

    Parameters
    ----------
    y : np.ndarray
        Mono signal.
    sr : int
        Its sample rate.
    window_seconds : float
        Window length (30 s, the GTZAN clip length, by default; 3 s for the segment table).
    hop_seconds : float, optional
        Distance between window starts; default ``window_seconds`` (no overlap).

    Yields
    ------
    Window
        Every window in order; the last may be shorter. An empty signal yields nothing.
    """
    window, hop = _window_lengths(sr, window_seconds, hop_seconds)
    y = np.asarray(y)
    n = len(y)
    start = 0
    while start < n:
        end = min(start + window, n)
        yield Window(start / sr, end / sr, y[start:end])
        if end >= n:
            return
        start += hop




#: Shortest window used, in seconds, when windows are longer (see :func:`min_window_seconds`):
#: features of a few seconds are not comparable with the 30-s clips the models learn from.
MIN_WINDOW_SECONDS = 10.0

#: Window lengths accepted, in seconds (:func:`check_window_seconds`): below 3 s the features
#: describe a note rather than music (3 s is the GTZAN segment length); above 10 minutes one
#: window would hold a whole song and memory grows with it.
WINDOW_SECONDS_RANGE = (3.0, 600.0)


def min_window_seconds(window_seconds: float, minimum: float | None = None, *,
                       file_seconds: float | None = None,
                       shortest: float = MIN_FEATURE_SECONDS) -> float:
    """Return the shortest window that is used: ``min(MIN_WINDOW_SECONDS, window_seconds)``.

    The one statement of the windowing policy's length rule (see the module's windowing
    policy); prediction, the labeler, recommendations and batch segments all read it.

    Parameters
    ----------
    window_seconds : float
        The window length.
    minimum : float, optional
        An explicit minimum that replaces the rule, returned as is (for experiments, e.g.
        ``predict_song(min_window_seconds=...)``; the workspace's entry points never pass one).
    file_seconds : float, optional
        The stated length of the audio read, passed only by a consumer that describes a file
        shorter than the rule's minimum whole rather than refusing it: liked audio in
        recommendations, where the user chose the song and one rough row serves better than an
        error. Such a file is a single window, which then needs only *shortest* seconds.
    shortest : float
        The least the features describe (:data:`helpers.constants.MIN_FEATURE_SECONDS`; a
        feature set states its own).

    Examples
    --------
    >>> min_window_seconds(30.0), min_window_seconds(3.0), min_window_seconds(30.0, 5)
    (10.0, 3.0, 5.0)
    >>> min_window_seconds(30.0, file_seconds=70.0), min_window_seconds(30.0, file_seconds=8.0)
    (10.0, 1.0)
    """
    if minimum is not None:
        return float(minimum)
    rule = min(MIN_WINDOW_SECONDS, float(window_seconds))
    if file_seconds is not None and file_seconds < rule:
        return min(rule, float(shortest))
    return rule


def check_window_seconds(source, value) -> float:
    """Return *value* as a window length in seconds, or refuse it naming *source*.

    Parameters
    ----------
    source : str or path-like
        What the error names (the song, or the argument the user typed).
    value : float or str
        The window length asked for.

    Returns
    -------
    float
        The window length.

    Raises
    ------
    InputError
        *value* is not a number, not finite, or outside :data:`WINDOW_SECONDS_RANGE`; one line,
        the same sentence from every entry point.

    Examples
    --------
    >>> check_window_seconds("song.ogg", "30")
    30.0
    >>> check_window_seconds("song.ogg", 2)
    Traceback (most recent call last):
    ...
    helpers.errors.InputError: song.ogg: window length 2 s is outside 3-600 s
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(source, f"window length {value!r} is not a number") from None
    if not np.isfinite(seconds):
        raise InputError(source, f"window length {value!r} is not a finite number")
    low, high = WINDOW_SECONDS_RANGE
    if not low <= seconds <= high:
        raise InputError(source, f"window length {seconds:g} s is outside {low:g}-{high:g} s")
    return seconds


# --------------------------------------------------------------------------- validation

#: The one reason given for non-finite samples, by every entry point.
NON_FINITE_REASON = "holds NaN or infinite samples"

#: Window notes (why a window is left out) and how the text timeline spells them.
WINDOW_NOTES = {
    "short": "shorter than the minimum window",
    "silent": "silent",
    "non-finite": NON_FINITE_REASON,
}


def silent_reason(threshold_db: float = SILENCE_THRESHOLD_DB) -> str:
    """The one reason given for a silent file, by every entry point."""
    return f"the audio is silent (RMS level below {threshold_db:g} dBFS)"


def too_short_reason(seconds: float, minimum: float, needs: str = "features") -> str:
    """The one reason given for a file shorter than *minimum* seconds (*needs*: who needs it).

    Examples
    --------
    >>> too_short_reason(0.6, 1.0)
    'too short: 0.60 s of audio; features need at least 1 s'
    """
    return f"too short: {seconds:.2f} s of audio; {needs} need at least {minimum:g} s"


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


def check_not_truncated(path, source=None) -> None:
    """Raise :class:`AudioError` when a WAV or Ogg file was cut off (e.g. an interrupted copy).

    Decoders silently return the samples present, so a cut file would look like a shorter song.
    A WAV file whose ``data`` chunk promises more bytes than the file holds, and an Ogg stream
    whose last page lacks the end-of-stream flag, are refused. (An mp3 or m4a cut off is found
    after decoding, by :func:`check_decoded_length`.)
    """
    path = Path(path)
    source = path if source is None else source
    with open(path, "rb") as handle:
        head = handle.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            _check_wav_data_chunk(path, handle, source)
        elif head[:4] == b"OggS":
            size = path.stat().st_size
            handle.seek(max(0, size - 65536))
            tail = handle.read()
            last = tail.rfind(b"OggS")
            if last < 0 or last + 6 > len(tail) or not tail[last + 5] & 0x04:
                raise AudioError(source, "truncated: the Ogg stream has no end (file cut off?)")


def _check_wav_data_chunk(path: Path, handle, source=None) -> None:
    size = path.stat().st_size
    position = 12
    while position + 8 <= size:
        handle.seek(position)
        chunk = handle.read(8)
        length = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"data":
            held = size - position - 8
            if held <= 0:  # a header and nothing else: there is nothing to call cut off
                raise AudioError(path if source is None else source, "no audio samples")
            if length != 0xFFFFFFFF and position + 8 + length > size:
                raise AudioError(path if source is None else source,
                                 f"truncated: the WAV header promises {length} bytes of audio "
                                 f"but the file holds {held}")
            return
        position += 8 + length + (length & 1)


def check_decoded_length(path, stated: float | None, decoded: float, offset: float = 0.0,
                         duration: float | None = None, source=None) -> None:
    """Refuse a file that decoded to less than its header states (an mp3 or m4a cut off).

    Parameters
    ----------
    stated : float or None
        Length the header states, in seconds (``None``: nothing to compare).
    decoded : float
        Seconds actually decoded from *offset*.
    offset, duration : float
        The part that was asked for.
    """
    if not stated:
        return
    expected = max(0.0, stated - offset)
    if duration is not None:
        expected = min(expected, duration)
    if decoded < expected - max(0.5, 0.01 * expected):
        raise AudioError(path if source is None else source,
                         f"truncated or corrupt: the file states {stated:.1f} s but only "
                         f"{offset + decoded:.1f} s could be decoded")


def check_audio_info(path, min_seconds: float = 0.0, source=None, *,
                     allow_truncated: bool = False, needs: str = "predictions") -> AudioInfo:
    """Refuse a file that is not audio, is cut off, or is shorter than *min_seconds*.

    :func:`check_audio`, returning all the probe found, so the decoders need not probe again
    (pass it as their ``info``).

    Returns
    -------
    AudioInfo
        Sample rate, channels, stated duration and decoder of the file.

    Raises
    ------
    AudioError
        See :func:`check_audio`.
    """
    source = path if source is None else source
    info = probe_audio(path, source=source)
    if not allow_truncated:
        check_not_truncated(path, source=source)
    if info.duration is not None:
        if info.duration <= 0:
            raise AudioError(source, "no audio samples")
        if info.duration < min_seconds:
            raise AudioError(source, too_short_reason(info.duration, min_seconds, needs))
    return info


def check_audio(path, min_seconds: float = 0.0, source=None, *, allow_truncated: bool = False,
                needs: str = "predictions") -> float | None:
    """Refuse a file that is not audio, is cut off, or is shorter than *min_seconds*.

    Cheap: reads headers only, no decoding.

    Parameters
    ----------
    path : path-like
        The file.
    min_seconds : float
        Shortest stated duration accepted.
    source : str, optional
        The name to report; default *path*.
    allow_truncated : bool
        Accept a WAV or Ogg file whose header says it was cut off.
    needs : str
        Who needs *min_seconds* (for the message).

    Returns
    -------
    float or None
        The stated duration in seconds (``None`` when the header does not state it).

    Raises
    ------
    AudioError
        See :func:`check_audio_path`, :func:`probe_audio` and :func:`check_not_truncated`.
    """
    return check_audio_info(path, min_seconds, source, allow_truncated=allow_truncated,
                            needs=needs).duration


def probe_duration(path) -> float | None:
    """Return a file's duration in seconds from its header (libsndfile, else ffmpeg's probe).

    Nothing is decoded. ``None`` when the header states no duration.

    Raises
    ------
    AudioError
        The path is not a readable file, or not audio.
    """
    return probe_audio(path).duration


def signal_note(samples: np.ndarray, length: float, minimum: float,
                threshold_db: float = SILENCE_THRESHOLD_DB, *, silence: bool = True) -> str:
    """Return why a signal is unfit as a short code, ``""`` when it is fit.

    The one ordered rule set behind :func:`signal_problem`, :func:`window_note` and the
    feature functions' own check: non-finite samples (``"non-finite"``), then ``length <
    minimum`` (``"short"``), then silence (``"silent"``).

    Parameters
    ----------
    samples : np.ndarray
        The signal.
    length, minimum : float
        The signal's length and the shortest accepted, in one unit: each caller keeps its own
        comparison (samples against ``min_seconds * sr``, or a window's seconds).
    threshold_db : float
        Silence level, see :func:`is_silent`.
    silence : bool
        Check for silence too (the feature functions describe a silent signal).

    Examples
    --------
    >>> import numpy as np
    >>> signal_note(np.zeros(10), 10, 20), signal_note(np.zeros(10), 10, 5)
    ('short', 'silent')
    """
    if not np.all(np.isfinite(samples)):
        return "non-finite"
    if length < minimum:
        return "short"
    if silence and is_silent(samples, threshold_db):
        return "silent"
    return ""


def signal_reason(note: str, seconds: float, min_seconds: float, needs: str = "features",
                  threshold_db: float = SILENCE_THRESHOLD_DB) -> str | None:
    """Return the reason text of a :func:`signal_note` code (``None`` for ``""``).

    Parameters
    ----------
    note : str
        ``"non-finite"``, ``"short"``, ``"silent"`` or ``""``.
    seconds, min_seconds : float
        The signal's length and the shortest accepted (stated by the ``"short"`` reason).
    needs : str
        Who needs *min_seconds* (see :func:`too_short_reason`).
    threshold_db : float
        Silence level (stated by the ``"silent"`` reason).
    """
    if note == "non-finite":
        return NON_FINITE_REASON
    if note == "short":
        return too_short_reason(seconds, min_seconds, needs)
    if note == "silent":
        return silent_reason(threshold_db)
    return None


def signal_problem(samples: np.ndarray, sr: int = SAMPLE_RATE,
                   min_seconds: float = MIN_FEATURE_SECONDS, needs: str = "features",
                   threshold_db: float = SILENCE_THRESHOLD_DB) -> str | None:
    """Return why a decoded signal cannot be described (``None`` when it can).

    Checked in this order: non-finite samples, too short, silent (:func:`signal_note`).
    """
    samples = np.asarray(samples)
    note = signal_note(samples, len(samples), min_seconds * sr, threshold_db)
    seconds = len(samples) / sr if note == "short" else 0.0  # only that reason states it
    return signal_reason(note, seconds, min_seconds, needs, threshold_db)


def window_note(window: Window, min_window_seconds: float = 0.0,
                threshold_db: float = SILENCE_THRESHOLD_DB, *, sr: int | None = None) -> str:
    """Return the note of one window: ``"non-finite"``, ``"short"``, ``"silent"`` or ``""``.

    With *sr* (the windows' sample rate) the length is compared in samples, the minimum rounded
    as the windows were cut: a full window of a length such as 4.1 s, whose ``end - start`` in
    floating point falls a hair below 4.1, is not called short.
    """
    if sr is None:
        return signal_note(window.samples, window.duration, min_window_seconds, threshold_db)
    return signal_note(window.samples, len(window.samples),
                       max(1, int(round(min_window_seconds * sr))) if min_window_seconds else 0,
                       threshold_db)


def no_usable_window_reason(notes, decoded: float, min_window_seconds: float,
                            needs: str = "predictions",
                            threshold_db: float = SILENCE_THRESHOLD_DB) -> str:
    """The one reason for a file none of whose windows can be used, from the windows' notes."""
    notes = list(notes)
    if not notes:
        return "no audio samples"
    if "non-finite" in notes and all(n in ("non-finite", "short") for n in notes):
        return NON_FINITE_REASON
    if decoded < min_window_seconds:
        return too_short_reason(decoded, min_window_seconds, needs)
    if all(n in ("silent", "short") for n in notes):
        return silent_reason(threshold_db)
    counts = ", ".join(f"{notes.count(n)} {WINDOW_NOTES[n]}" for n in WINDOW_NOTES if n in notes)
    return f"no usable window of at least {min_window_seconds:g} s ({counts})"


def iter_checked_windows(path, window_seconds: float = 30.0, hop_seconds: float | None = None,
                         min_window_seconds: float = 0.0, sr: int = SAMPLE_RATE,
                         offset: float = 0.0, duration: float | None = None, source=None,
                         allow_truncated: bool = False, needs: str = "predictions",
                         threshold_db: float = SILENCE_THRESHOLD_DB, *,
                         info: AudioInfo | None = None) -> Iterator[Window]:
    """Validate a file, then stream its windows, each with its :attr:`Window.note`.

    The same windows as :func:`iter_file_windows`. Before decoding, :func:`check_audio` runs
    (unless *info* says it already did); after the last window the decoded length is compared
    with the stated one (:func:`check_decoded_length`), and a file none of whose windows is
    usable (all short, silent or non-finite) is refused with :func:`no_usable_window_reason`.

    *info*, when given, is what :func:`check_audio_info` returned for this file (with the same
    *allow_truncated*): the check is not repeated and the file is not probed again.

    Raises
    ------
    AudioError
        Any reason of the module's rule set; for the end-of-file checks, after the windows were
        yielded (a consumer that stops early skips them).
    """
    source = path if source is None else source
    if info is None:
        info = check_audio_info(path, source=source, allow_truncated=allow_truncated)
    stated = info.duration
    notes, decoded = [], 0.0
    try:
        for window in iter_file_windows(path, window_seconds=window_seconds,
                                        hop_seconds=hop_seconds, sr=sr, offset=offset,
                                        duration=duration, info=info):
            window = dataclasses.replace(
                window, note=window_note(window, min_window_seconds, threshold_db, sr=sr))
            notes.append(window.note)
            decoded = window.end
            yield window
    except AudioError as exc:
        raise AudioError(source, exc.reason) from None
    if not allow_truncated:
        check_decoded_length(path, stated, decoded, offset, duration, source=source)
    if "" not in notes:
        raise AudioError(source, no_usable_window_reason(notes, decoded, min_window_seconds,
                                                         needs, threshold_db))


# --------------------------------------------------------------------------- decoder chatter

#: Lines native decoders print on their own (libmpg123: "Note: Illegal Audio-MPEG-Header ...",
#: "Warning: ...", "[src/libmpg123/layer3.c:...] error: ...").
_DECODER_CHATTER = re.compile(r"^(?:\[[^\]]*\]\s*)?(?:Note|Warning|error|Error)\b|mpg123")
_capture_lock = threading.Lock()
_capture_state: dict = {"depth": 0, "saved": None, "file": None}


@contextmanager
def decoder_stderr_captured():
    """Keep what C decoders write to file descriptor 2 off the user's terminal.

    While the block runs, descriptor 2 points at a temporary file; afterwards the lines that
    look like decoder notes are dropped and anything else (another thread's log line) is
    written on. Re-entrant and shared between threads: the first to enter redirects, the last
    to leave restores. Where descriptor 2 cannot be redirected, the block runs as is.
    """
    with _capture_lock:
        state = _capture_state
        if state["depth"] == 0:
            saved = capture = None
            try:
                for stream in (sys.stderr, sys.__stderr__):
                    if stream is not None:
                        stream.flush()
                saved = os.dup(2)
                capture = tempfile.TemporaryFile()
                os.dup2(capture.fileno(), 2)
            except (AttributeError, OSError, ValueError):  # no descriptor 2 to redirect
                if saved is not None:
                    os.close(saved)
                    saved = None
                if capture is not None:
                    capture.close()
            else:
                state["saved"], state["file"] = saved, capture
        state["depth"] += 1
    try:
        yield
    finally:
        with _capture_lock:
            state["depth"] -= 1
            if state["depth"] == 0 and state["saved"] is not None:
                saved, capture = state["saved"], state["file"]
                state["saved"] = state["file"] = None
                for stream in (sys.stderr, sys.__stderr__):
                    try:
                        if stream is not None:
                            stream.flush()
                    except (OSError, ValueError):
                        pass
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
                capture.close()
                kept = [line for line in text.splitlines(keepends=True)
                        if line.strip() and not _DECODER_CHATTER.search(line)]
                if kept:
                    os.write(2, "".join(kept).encode("utf-8", "replace"))


# --------------------------------------------------------------------------- decoders

#: What a user reads when a file cannot be decoded: one sentence per cause, never the decoder's
#: own words (those go to the log, at INFO level, escaped and shortened).
NOT_AUDIO_REASON = "cannot decode audio: not a recognised audio format"
NO_AUDIO_STREAM_REASON = "cannot decode audio: the file holds no audio stream"
DAMAGED_REASON = "cannot decode audio: the audio data is damaged"
NO_DECODER_REASON = "cannot decode audio: the decoder could not be started"

#: Sample rates a file may state (a header claiming 1 Hz would make a 1-MB file weeks long).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000

#: Containers ffmpeg may open (its demuxer names). Each holds its audio itself; formats that
#: name other resources (dash, hls, concat, playlists, image sequences, ...) are not listed, so
#: a file cannot make the decoder read anything but itself.
FFMPEG_INPUT_FORMATS = ("wav", "w64", "au", "aiff", "caf", "flac", "ogg", "mp3", "mov",
                        "matroska", "aac", "asf", "wv")
#: Protocols ffmpeg may use: the one file it is given, and the pipe it writes samples to.
FFMPEG_PROTOCOLS = ("file", "pipe")

#: Every decode may take this many seconds ...
DECODE_DEADLINE_BASE = 15.0
#: ... plus this many per second of audio the header states (decoders run at hundreds of times
#: real time; this leaves room for a loaded machine) ...
DECODE_SECONDS_PER_AUDIO_SECOND = 0.25
#: ... and never more than this, which is also the deadline of a file that states no length.
DECODE_DEADLINE_CAP = 300.0
#: Deadline for reading a file's header with ffmpeg.
PROBE_DEADLINE = 15.0
#: Bytes of a decoder's error output kept (its start and its end, each up to this much).
_ERROR_TEXT_LIMIT = 32 * 1024

_log = logging.getLogger(__name__)


def deadline_reason(seconds: float) -> str:
    """The one reason given for a decoder stopped at its deadline.

    Examples
    --------
    >>> deadline_reason(15)
    'cannot decode audio: the decoder did not finish within 15 s'
    """
    return f"cannot decode audio: the decoder did not finish within {seconds:g} s"


def decode_deadline(seconds: float | None) -> float:
    """Return how long decoding *seconds* of audio may take (see :data:`DECODE_DEADLINE_CAP`).

    Examples
    --------
    >>> decode_deadline(240.0), decode_deadline(None)
    (75.0, 300.0)
    """
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return DECODE_DEADLINE_CAP
    return min(DECODE_DEADLINE_CAP, DECODE_DEADLINE_BASE + DECODE_SECONDS_PER_AUDIO_SECOND * seconds)


def loggable(text, limit: int = 300) -> str:
    """Return *text* fit for one log line: control characters escaped, at most *limit* characters.

    Examples
    --------
    >>> loggable("ok\nforged line\x1b[31m")
    'ok\\nforged line\\x1b[31m'
    """
    text = str(text)
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in text[: limit + 1])
    return escaped[:limit] + ("..." if len(escaped) > limit or len(text) > limit else "")


def _last_lines(text: str, n: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


class _BoundedText:
    """The start and the end of a stream of bytes, at most *limit* bytes of each."""

    def __init__(self, limit: int = _ERROR_TEXT_LIMIT):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]
                self.dropped = True

    def text(self) -> str:
        middle = "\n[...]\n" if self.dropped else ""
        return (bytes(self.head) + middle.encode() + bytes(self.tail)).decode("utf-8", "replace")


def _drain_into(stream, sink: _BoundedText) -> None:
    try:
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.add(chunk)
    except (OSError, ValueError):  # the pipe was closed under us: the process is gone
        pass


class DecoderProcess:
    """An external decoder run with a deadline, which never blocks on its own error output.

    The process runs in its own process group. Its error output is drained by a thread into a
    bounded buffer while it runs (a pipe nobody reads fills up and stops the process, which
    then never finishes its audio output). :meth:`read` waits for standard output at most what
    is left of *deadline* seconds, summed over every wait, so a consumer that takes its time
    between reads is not charged for it. Past the deadline the process group is killed and
    :class:`~helpers.errors.AudioError` says :func:`deadline_reason`.

    Parameters
    ----------
    command : list of str
        The program and its arguments.
    deadline : float
        Seconds the process may keep the caller waiting, in all.
    source : str or path-like
        What errors name.
    output : bool
        Read standard output (a decoder); ``False`` discards it (a probe, a conversion).
    """

    def __init__(self, command: list[str], deadline: float, source, *, output: bool = True):
        self.deadline = float(deadline)
        self.source = source
        self._waited = 0.0
        self._errors = _BoundedText()
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if output else subprocess.DEVNULL,
                stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        except OSError as exc:
            _log.info("cannot start %s: %s", loggable(command[0]), loggable(exc))
            raise AudioError(source, NO_DECODER_REASON) from None
        self._drain = threading.Thread(target=_drain_into, args=(self._process.stderr, self._errors),
                                       name="decoder-errors", daemon=True)
        self._drain.start()
        self._poll = None
        if output:
            self._poll = select.poll()
            self._poll.register(self._process.stdout.fileno(), select.POLLIN | select.POLLHUP)

    @property
    def pid(self) -> int:
        """The decoder's process id (also its process group's)."""
        return self._process.pid

    def _overdue(self):
        self.kill()
        _log.info("decoder stopped at its %g-s deadline on %s", self.deadline,
                  loggable(self.source))
        raise AudioError(self.source, deadline_reason(self.deadline))

    def read(self, n: int) -> bytes:
        """Return up to *n* bytes of standard output; fewer only where the output ends."""
        fd = self._process.stdout.fileno()
        parts, have = [], 0
        while have < n:
            left = self.deadline - self._waited
            if left <= 0:
                self._overdue()
            started = time.monotonic()
            ready = self._poll.poll(max(1, int(left * 1000)))
            self._waited += time.monotonic() - started
            if not ready:
                continue
            chunk = os.read(fd, n - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def wait(self) -> int:
        """Wait for the process to end (within what is left of the deadline); its exit status."""
        try:
            return self._process.wait(timeout=max(0.0, self.deadline - self._waited))
        except subprocess.TimeoutExpired:
            self._overdue()

    def kill(self) -> None:
        """Kill the decoder's whole process group (anything it started goes too) and reap it."""
        if self._process.returncode is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._process.wait()
        self.close()

    def close(self) -> None:
        """Release the pipes (after :meth:`wait` or :meth:`kill`)."""
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._drain.join(timeout=5)
        self._process.stderr.close()

    def errors(self) -> str:
        """What the process wrote to its error output (its start and end, bounded)."""
        return self._errors.text()


def ffmpeg_input(path) -> list[str]:
    """ffmpeg's input arguments for *path*: that one file, read by a listed demuxer only.

    The path goes through the ``file:`` protocol (a name such as ``concat:a|b`` or
    ``subfile,,...`` stays a file name), only :data:`FFMPEG_PROTOCOLS` may be opened and only
    :data:`FFMPEG_INPUT_FORMATS` may demux it.
    """
    return ["-protocol_whitelist", ",".join(FFMPEG_PROTOCOLS),
            "-format_whitelist", ",".join(FFMPEG_INPUT_FORMATS),
            "-i", "file:" + os.fspath(Path(path).absolute())]


def _soundfile_info(path: Path) -> AudioInfo | None:
    import soundfile as sf

    try:
        with decoder_stderr_captured(), sf.SoundFile(str(path)) as handle:
            frames, rate, channels = handle.frames, handle.samplerate, handle.channels
            container = handle.format
    except Exception:  # libsndfile does not know the format: let ffmpeg try
        return None
    if container == "RAW":
        # no header at all: libsndfile guessed from the name (".au" read as headerless u-law),
        # so any text or noise file would "decode"; ffmpeg judges it instead
        return None
    # Some formats (mp3 streams without a header) report no frame count.
    duration = frames / rate if 0 < frames < 2**62 and rate > 0 else None
    return AudioInfo(int(rate), int(channels), duration, "soundfile")


def _ffmpeg_info(path: Path, source=None) -> AudioInfo:
    source = source or path
    probe = DecoderProcess([ffmpeg_executable(), "-hide_banner", "-nostdin", *ffmpeg_input(path)],
                           PROBE_DEADLINE, source, output=False)
    try:
        probe.wait()
    finally:
        probe.kill()
    text = probe.errors()
    stream = re.search(r"Stream #\S+.*?: Audio: [^\n]*?(\d+) Hz(?:, ([^,\n]+))?", text)
    if stream is None:
        _log.info("ffmpeg finds no audio in %s: %s", loggable(source), loggable(_last_lines(text)))
        # a real container whose streams are all something else (a video without sound);
        # an audio stream ffmpeg cannot describe (no rate) means it is not audio after all
        no_stream = (re.search(r"Stream #\S+.*?: (?:Video|Subtitle|Data|Attachment):", text)
                     is not None and ": Audio:" not in text)
        raise AudioError(source, NO_AUDIO_STREAM_REASON if no_stream else NOT_AUDIO_REASON)
    layout = (stream.group(2) or "").strip()
    channels = _FFMPEG_CHANNELS.get(layout.split("(")[0].strip(), 0)
    match = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    duration = None
    if match:
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    return AudioInfo(int(stream.group(1)), channels, duration, "ffmpeg")


def probe_audio(path, source=None, *, path_checked: bool = False) -> AudioInfo:
    """Return the sample rate, channels, duration and decoder of an audio file.

    Parameters
    ----------
    path : path-like
        The file.
    source : str, optional
        The name errors report; default *path*.
    path_checked : bool
        The caller has just run :func:`check_audio_path` on *path*: do not repeat it.

    Raises
    ------
    AudioError
        The path fails :func:`check_audio_path`, neither libsndfile nor ffmpeg (limited to
        :data:`FFMPEG_INPUT_FORMATS`, within :data:`PROBE_DEADLINE`) can read it, or it states
        a sample rate outside :data:`MIN_SAMPLE_RATE`-:data:`MAX_SAMPLE_RATE`.
    """
    path = Path(path)
    if not path_checked:  # never hand a FIFO or a device to a decoder
        check_audio_path(path, source)
    info = _soundfile_info(path) or _ffmpeg_info(path, source)
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(source or path, f"cannot decode audio: the file states a sample rate of "
                                         f"{info.samplerate} Hz, outside {MIN_SAMPLE_RATE}-"
                                         f"{MAX_SAMPLE_RATE} Hz")
    return info


def convert_to_ogg(path, target, *, info: AudioInfo | None = None, source=None) -> Path:
    """Write *path* as an Ogg Vorbis file *target* (which libsndfile decodes in-process).

    An Ogg Vorbis file is copied as is; anything else is re-encoded by the shipped ffmpeg under
    the decoders' rules: that one file, a demuxer of :data:`FFMPEG_INPUT_FORMATS`, error output
    drained, and :func:`decode_deadline` of its stated length, past which ffmpeg is killed.

    Parameters
    ----------
    path : path-like
        The audio file.
    target : path-like
        The Ogg file to write (replaced if it exists).
    info : AudioInfo, optional
        The file's :func:`probe_audio` result, when the caller has it.
    source : str, optional
        What errors name; default *path*.

    Raises
    ------
    AudioError
        Not audio, damaged, or the conversion passed its deadline (*target* is then removed).
    """
    import shutil

    import soundfile as sf

    path, target = Path(path), Path(target)
    source = path if source is None else source
    if info is None:
        info = probe_audio(path, source)
    if info.decoder == "soundfile":
        with decoder_stderr_captured():
            known = sf.info(str(path))
        if (known.format, known.subtype) == ("OGG", "VORBIS"):
            shutil.copyfile(path, target)
            return target
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error", "-y",
               *ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
               "-acodec", "libvorbis", "-f", "ogg", "file:" + os.fspath(target.absolute())]
    converter = DecoderProcess(command, decode_deadline(info.duration), source, output=False)
    try:
        status = converter.wait()
    except AudioError:
        target.unlink(missing_ok=True)
        raise
    finally:
        converter.kill()
    if status != 0 or not target.is_file() or target.stat().st_size == 0:
        _log.info("ffmpeg could not convert %s (exit status %s): %s", loggable(source), status,
                  loggable(_last_lines(converter.errors())))
        target.unlink(missing_ok=True)
        raise AudioError(source, DAMAGED_REASON)
    return target


def mix_to_mono(block: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` float32 block into a new 1-D array.

    Adds the channel columns in order, then divides: the same float32 result as
    ``block.mean(axis=1)`` (and so as ``librosa.to_mono``) at a tenth of its cost, since numpy's
    reduction over a 2-wide axis is slow.
    """
    mono = block[:, 0].astype(np.float32, copy=True)
    for channel in range(1, block.shape[1]):
        mono += block[:, channel]
    if block.shape[1] > 1:
        mono /= np.float32(block.shape[1])
    return mono


def _seconds_asked(info: AudioInfo, offset: float, frames: int | None) -> float | None:
    """Seconds of audio a decode is asked for (what its deadline follows)."""
    if frames is not None:
        return frames / info.samplerate
    return None if info.duration is None else max(0.0, info.duration - offset)


def _soundfile_blocks(path: Path, info: AudioInfo, offset: float,
                      frames: int | None) -> Iterator[np.ndarray]:
    import soundfile as sf

    # libsndfile runs in this process and cannot be killed; its time is still bounded between
    # blocks, so a decoder crawling through a hostile file is stopped all the same
    deadline = decode_deadline(_seconds_asked(info, offset, frames))
    spent = 0.0
    with decoder_stderr_captured():
        handle = sf.SoundFile(str(path))
    with handle:
        if offset:
            # librosa.load seeks to int(offset * sr): same first sample.
            with decoder_stderr_captured():
                handle.seek(int(offset * info.samplerate))
        remaining = -1 if frames is None else frames
        while remaining != 0:
            want = _BLOCK_FRAMES if remaining < 0 else min(_BLOCK_FRAMES, remaining)
            started = time.monotonic()
            with decoder_stderr_captured():
                block = handle.read(frames=want, dtype="float32", always_2d=True)
            spent += time.monotonic() - started
            if spent > deadline:
                _log.info("libsndfile stopped at its %g-s deadline on %s", deadline,
                          loggable(path))
                raise AudioError(path, deadline_reason(deadline))
            if len(block) == 0:
                return
            if remaining > 0:
                remaining -= len(block)
            yield mix_to_mono(block)


def _ffmpeg_blocks(path: Path, info: AudioInfo, offset: float,
                   frames: int | None) -> Iterator[np.ndarray]:
    channels = info.channels or 1
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error"]
    if offset:
        command += ["-ss", f"{offset:.6f}"]
    command += [*ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if frames is not None:
        # A little more than needed; the exact length is enforced below, in samples.
        command += ["-t", f"{frames / info.samplerate + 1.0:.6f}"]
    if info.channels == 0:
        command += ["-ac", "1"]  # unusual layouts: let ffmpeg apply its weighted downmix
    command += ["-ar", str(info.samplerate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    decoder = DecoderProcess(command, decode_deadline(_seconds_asked(info, offset, frames)), path)
    bytes_per_frame = 4 * channels
    remaining = -1 if frames is None else frames
    leftover = b""
    status = None
    try:
        while remaining != 0:
            want = _BLOCK_FRAMES if remaining < 0 else min(_BLOCK_FRAMES, remaining)
            chunk = leftover + decoder.read(want * bytes_per_frame - len(leftover))
            usable = len(chunk) - len(chunk) % bytes_per_frame
            leftover = chunk[usable:]
            if usable == 0:
                status = decoder.wait()  # the output ended: so should the process
                break
            block = np.frombuffer(chunk[:usable], dtype=np.float32).reshape(-1, channels)
            if remaining > 0:
                remaining -= len(block)
            yield mix_to_mono(block)
    finally:
        decoder.kill()  # enough samples, the consumer stopped early, or the deadline passed
    if status:
        _log.info("ffmpeg failed on %s (exit status %s): %s", loggable(path), status,
                  loggable(_last_lines(decoder.errors())))
        raise AudioError(path, DAMAGED_REASON)


def _blocks_with_fallback(path: Path, info: AudioInfo, offset: float,
                          frames: int | None) -> Iterator[np.ndarray]:
    """Blocks from the probed decoder; if libsndfile opens a file but fails on its first block
    (some mp3 variants), ffmpeg gets a try before the file is called undecodable."""
    if info.decoder == "ffmpeg":
        yield from _ffmpeg_blocks(path, info, offset, frames)
        return
    blocks = _soundfile_blocks(path, info, offset, frames)
    try:
        first = next(blocks, None)
    except AudioError:
        raise
    except Exception as exc:
        _log.info("libsndfile failed on the first block of %s (%s); trying ffmpeg",
                  loggable(path), loggable(exc))
        # keep the rate the caller resamples from; ffmpeg converts to it if needed
        fallback = AudioInfo(info.samplerate, _ffmpeg_info(path).channels, info.duration, "ffmpeg")
        yield from _ffmpeg_blocks(path, fallback, offset, frames)
        return
    if first is not None:
        yield first
        yield from blocks


def iter_decoded_blocks(path, offset: float = 0.0, duration: float | None = None,
                        sr: int = SAMPLE_RATE, *,
                        info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the mono signal at *sr* block by block (memory bounded by one block).

    Parameters
    ----------
    path : path-like
        Audio file.
    offset, duration : float
        Seconds to skip, and seconds to read (``None``: to the end).
    sr : int
        Output rate.
    info : AudioInfo, optional
        The file's :func:`probe_audio` (or :func:`check_audio_info`) result, when the caller
        has it; default: probe the file here.

    Yields
    ------
    np.ndarray
        Consecutive float32 blocks whose concatenation equals ``librosa.load(path, sr=sr,
        offset=offset, duration=duration)[0]``.

    Raises
    ------
    AudioError
        The file cannot be decoded: one of the module's sentences (:data:`DAMAGED_REASON`,
        :func:`deadline_reason`, ...), never the decoder's own words.
    """
    import soxr

    path = Path(path)
    if info is None:
        info = probe_audio(path)
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, f"invalid window: offset {offset} s, duration {duration} s")
    frames = None if duration is None else int(duration * info.samplerate)
    blocks = _blocks_with_fallback(path, info, offset, frames)
    n_in = 0
    n_out = 0
    try:
        if info.samplerate == sr:
            for block in blocks:
                n_in += len(block)
                yield block
            return
        stream = soxr.ResampleStream(info.samplerate, sr, 1, dtype="float32", quality="HQ")
        for block in blocks:
            n_in += len(block)
            out = stream.resample_chunk(np.ascontiguousarray(block), last=False)
            n_out += len(out)
            if len(out):
                yield out
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # librosa.resample fixes the length to ceil(n * ratio); do the same.
        expected = int(np.ceil(n_in * sr / info.samplerate))
        tail = tail[: max(0, expected - n_out)]
        if expected > n_out + len(tail):
            tail = np.concatenate([tail, np.zeros(expected - n_out - len(tail), np.float32)])
        if len(tail):
            yield tail
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises on a file that breaks off mid-stream
        _log.info("decoding %s failed: %s: %s", loggable(path), type(exc).__name__, loggable(exc))
        raise AudioError(path, DAMAGED_REASON) from exc
    finally:
        blocks.close()  # a consumer that stops early stops the decoder process now, not at GC


def load_audio(path, offset: float = 0.0, duration: float | None = None,
               sr: int = SAMPLE_RATE, *, info: AudioInfo | None = None) -> np.ndarray:
    """Decode one window of an audio file to mono float32 at *sr*.

    Parameters
    ----------
    path : path-like
        wav, flac, ogg, mp3, m4a/aac or anything else ffmpeg reads.
    offset : float
        Start in seconds.
    duration : float, optional
        Seconds to read; ``None`` reads to the end (at most :data:`MAX_LOAD_SECONDS`).
    sr : int
        Output sample rate.
    info : AudioInfo, optional
        The file's :func:`probe_audio` (or :func:`check_audio_info`) result, when the caller
        has it; default: probe the file here (once, for the length check and the decoder).

    Returns
    -------
    np.ndarray
        The same samples as ``librosa.load(path, sr=sr, mono=True, offset=offset,
        duration=duration)[0]``.

    Raises
    ------
    AudioError
        The file is missing, empty, not audio, corrupt, longer than :data:`MAX_LOAD_SECONDS`
        for one array, or holds no samples in the requested window.
    """
    path = Path(path)
    if info is None:
        info = probe_audio(path)
    wanted = duration
    if wanted is None and info.duration is not None:
        wanted = max(0.0, info.duration - offset)
    if wanted is not None and wanted > MAX_LOAD_SECONDS:
        raise AudioError(
            path, f"{wanted / 60:.0f} minutes is too long to decode at once (limit "
                  f"{MAX_LOAD_SECONDS / 60:.0f}); read it window by window (iter_file_windows)")
    blocks = []
    total = 0
    limit = int(MAX_LOAD_SECONDS * sr) + sr
    for block in iter_decoded_blocks(path, offset=offset, duration=duration, sr=sr, info=info):
        blocks.append(block)
        total += len(block)
        if total > limit:  # the container did not state its length
            raise AudioError(path, f"longer than {MAX_LOAD_SECONDS / 60:.0f} minutes; read it "
                                   "window by window (iter_file_windows)")
    if total == 0:
        where = f" after {offset} s" if offset else ""
        raise AudioError(path, f"no audio samples{where}")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def iter_file_windows(path, window_seconds: float = 30.0, hop_seconds: float | None = None,
                      sr: int = SAMPLE_RATE, offset: float = 0.0,
                      duration: float | None = None, *,
                      info: AudioInfo | None = None) -> Iterator[Window]:
    """Decode a file window by window, holding one window in memory at a time.

    Same windows as ``iter_windows(load_audio(path, offset, duration, sr), sr, window_seconds,
    hop_seconds)`` (times are relative to *offset*), for files of any length. *info*: see
    :func:`iter_decoded_blocks`.

    Raises
    ------
    AudioError
        The file cannot be decoded or holds no samples.
    """
    window, hop = _window_lengths(sr, window_seconds, hop_seconds)
    blocks = iter_decoded_blocks(path, offset=offset, duration=duration, sr=sr, info=info)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0] in the decoded signal
    start = 0  # sample index where the next window starts
    previous_end = None
    finished = False
    while True:
        # Decode until the buffer covers the whole next window (or the signal ends).
        while not finished and buffer_start + len(buffer) < start + window:
            block = next(blocks, None)
            if block is None:
                finished = True
            else:
                buffer = np.concatenate([buffer, block])
            if start > buffer_start:  # a hop longer than the window skips samples
                drop = min(start - buffer_start, len(buffer))
                buffer, buffer_start = buffer[drop:], buffer_start + drop
        available = buffer_start + len(buffer)
        if previous_end is not None and previous_end >= available:
            return  # the previous window reached the end of the signal
        if start >= available:
            if previous_end is None:
                raise AudioError(Path(path), "no audio samples")
            return
        end = min(start + window, available)
        yield Window(start / sr, end / sr, buffer[start - buffer_start:end - buffer_start].copy())
        previous_end = end
        start += hop
        drop = min(max(0, start - buffer_start), len(buffer))
        buffer, buffer_start = buffer[drop:], buffer_start + drop

"""Cut a signal or a file into windows, and the one rule for which windows are used.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.audio import decode
from helpers.audio.checks import (
    SILENCE_THRESHOLD_DB,
    check_audio_info,
    check_decoded_length,
    no_usable_window_reason,
    signal_note,
)
from helpers.audio.decode import AudioInfo
from helpers.constants import MIN_FEATURE_SECONDS, SAMPLE_RATE
from helpers.errors import AudioError, InputError


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
    # via the module: one name to replace for whoever must stop or count decoding
    blocks = decode.iter_decoded_blocks(path, offset=offset, duration=duration, sr=sr, info=info)
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

"""The rule set every audio entry point applies: one verdict and one reason per file.

Header checks before decoding (:func:`check_audio_info`: not audio, cut off, too short), the
decoded length after it (:func:`check_decoded_length`), and the signal itself
(:func:`signal_note`: NaN or infinite samples, too short, silence), each with its one sentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.audio import decode
from helpers.audio.decode import AudioInfo
from helpers.constants import MIN_FEATURE_SECONDS, SAMPLE_RATE
from helpers.errors import AudioError

#: Default level below which :func:`is_silent` calls a window silent (RMS, dB re full scale).
SILENCE_THRESHOLD_DB = -60.0


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
    info = decode.probe_audio(path, source=source)  # via the module: one place to count probes
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

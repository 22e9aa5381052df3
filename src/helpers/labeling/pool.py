"""The labeler's pool: which files, their per-window features (kept in the label store), and a
window's audio to play.

:func:`prepare_song` is what a worker process does for one file: check it, read what the store
already holds, extract the missing windows (:func:`helpers.features.window_features`).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from threadpoolctl import threadpool_limits

from helpers.audio import decode
from helpers.audio.files import AUDIO_SUFFIXES, names_a_file
from helpers.audio.windows import min_window_seconds
from helpers.constants import SAMPLE_RATE
from helpers.errors import InputError
from helpers.features.sets import feature_set as feature_set_spec
from helpers.features.windows import window_features
from helpers.paths import file_sha256

log = logging.getLogger(__name__)


def pool_files(pool) -> list[Path]:
    """Return the audio files of a pool: a folder (searched recursively), a file or a list.

    Raises
    ------
    InputError
        A path that does not exist, or a folder without audio files.
    """
    items = [pool] if isinstance(pool, str | os.PathLike) else list(pool)
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                           and p.is_file())
            if not found:
                raise InputError(path, f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            files.extend(found)
        elif names_a_file(path):  # a file, or something the audio checks name (FIFO, loop)
            files.append(path)
        else:
            raise InputError(path, "file not found (no such file or folder)")
    return list(dict.fromkeys(_absolute(p) for p in files))


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the audio checks report it
        return path.absolute()


def _on_grid(windows: pd.DataFrame, window_seconds: float) -> pd.DataFrame:
    """Stored windows that belong to the grid of *window_seconds* under the windowing policy.

    Full windows on the grid, and a last one at least :func:`helpers.audio.min_window_seconds`
    long (a store written under an older rule may hold a shorter tail: it is not used).
    """
    if windows.empty:
        return windows
    steps = windows["start"] / window_seconds
    aligned = np.isclose(steps, np.round(steps), atol=1e-6)
    lengths = windows["end"] - windows["start"]
    fits = lengths <= window_seconds + 1e-6
    full = np.isclose(lengths, window_seconds, atol=1e-3)
    last = windows["end"] >= windows["end"].max() - 1e-6
    long_enough = lengths >= min_window_seconds(window_seconds) - 1e-3
    return windows[aligned & fits & (full | (last & long_enough))]


def _complete(stored: pd.DataFrame, duration, window_seconds: float,
              max_windows: int | None) -> bool:
    """Whether the stored windows already cover the song (so nothing is to be extracted)."""
    if max_windows is not None and len(stored) >= max_windows:
        return True
    if duration is None or pd.isna(duration):
        return False
    expected = int(duration // window_seconds) + (duration % window_seconds
                                                  >= min_window_seconds(window_seconds))
    return len(stored) >= expected


def extract_windows(path, *, window_seconds: float = 30.0, max_windows: int | None = None,
                    have: Iterable[float] = (), feature_set: str = "gtzan"
                    ) -> list[tuple[float, float, dict]]:
    """Extract the features of a file's windows that are not in *have* (a pure function).

    The used windows of :func:`helpers.features.window_features` (the one windowing policy: a
    last window shorter than ``min(10 s, window_seconds)``, silent windows and windows with
    non-finite samples or features are left out). Runs in a worker process as well as in the
    caller's.

    Parameters
    ----------
    path : path-like
        The audio file.
    window_seconds : float
        Window length in seconds.
    max_windows : int, optional
        Use only the first usable windows.
    have : iterable of float
        Start times (s) of windows already stored: counted, not extracted again.
    feature_set : str
        The features of each window (:func:`helpers.features.feature_set`).

    Returns
    -------
    list of (start, end, features)
    """

    # the validation every audio entry point shares: a truncated, non-audio or unusable file
    # is refused with its reason
    # DC removed as in whole-song prediction, so a window is labelled as it is predicted
    spec = feature_set_spec(feature_set)
    table = window_features(path, window_seconds, feature_set=spec, max_windows=max_windows,
                            skip_starts=have, needs="labelled windows", remove_dc=True)
    used = table[table["used"]]
    return [(float(row["start"]), float(row["end"]), {c: float(row[c]) for c in spec.columns})
            for row in used.to_dict("records")]


@dataclass
class PreparedSong:
    """What a worker found out about one file: metadata and the features of new windows."""

    path: Path
    duration: float | None = None
    content_hash: str | None = None
    windows: list = field(default_factory=list)
    error: str | None = None
    tags: dict = field(default_factory=dict)  # title, artist, album, genre from the file


def prepare_song(path, window_seconds: float = 30.0, max_windows: int | None = None,
                 have: Iterable[float] = (), known: PreparedSong | None = None, *,
                 feature_set: str = "gtzan") -> PreparedSong:
    """Probe, hash and extract one file without touching the store (for worker processes).

    Never raises for a bad file: the reason is in :attr:`PreparedSong.error`.

    Parameters
    ----------
    path : path-like
        The audio file.
    window_seconds, max_windows, have, feature_set
        As for :func:`extract_windows`.
    known : PreparedSong, optional
        An earlier pass over the same file (the first song's one-window preview): its content
        hash, and its duration when it found one, are used instead of reading the file again.
    """


    path = Path(path)
    try:
        with threadpool_limits(1):  # one song per worker: BLAS threads would only compete
            windows = extract_windows(path, window_seconds=window_seconds,
                                      max_windows=max_windows, have=have,
                                      feature_set=feature_set)
        # a preview read the whole file for its hash and probed its header moments ago
        duration = (known.duration if known is not None and known.duration is not None
                    else _song_duration(path))
        content_hash = (known.content_hash if known is not None and known.content_hash
                        else file_sha256(path))
        tags = known.tags if known is not None and known.tags else _song_tags(path)
        return PreparedSong(path, duration, content_hash, windows, tags=tags)
    except InputError as exc:
        return PreparedSong(path, error=str(exc))
    except OSError as exc:
        return PreparedSong(path, error=f"{path}: cannot read the file ({exc.strerror or exc})")


def _song_duration(path: Path) -> float | None:
    try:
        return decode.probe_audio(path).duration
    except InputError:
        return None


def _song_tags(path: Path) -> dict:
    try:
        return decode.probe_tags(path)
    except InputError as exc:  # the audio is usable without its tags
        log.info("no tags read from %s: %s", path, exc)
        return {}


#: Sample rate of the song overview's decode: plenty for a min/max envelope, cheap to decode.
ENVELOPE_RATE = 2000

#: Columns of the song overview's envelope.
ENVELOPE_POINTS = 300


def song_envelope(path, points: int = ENVELOPE_POINTS, sr: int = ENVELOPE_RATE
                  ) -> tuple[np.ndarray, float]:
    """The min/max envelope of a whole song, for a small waveform overview.

    Parameters
    ----------
    path : path-like
        The song (decoded through :func:`helpers.audio.decode.load_audio`, with its deadline).
    points : int
        Columns of the envelope (fewer for a song of fewer samples).
    sr : int
        Decode rate; low, since only the envelope is kept.

    Returns
    -------
    envelope : np.ndarray
        ``(columns, 2)``: each column's minimum and maximum sample.
    duration : float
        The song's length in seconds.
    """
    samples = decode.load_audio(path, sr=sr)
    columns = max(1, min(points, len(samples)))
    starts = np.linspace(0, len(samples), columns + 1).astype(int)[:-1]
    envelope = np.column_stack([np.minimum.reduceat(samples, starts),
                                np.maximum.reduceat(samples, starts)])
    return envelope.astype(np.float32), len(samples) / sr


def window_audio_wav(path, start: float, end: float) -> bytes:
    """Return one window of a file as 16-bit mono WAV bytes (for an audio player)."""


    samples = decode.load_audio(path, offset=start, duration=max(end - start, 0.1))
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()

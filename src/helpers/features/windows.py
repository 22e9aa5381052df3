"""From a file to feature rows: one window or the whole file, under the one windowing policy.

:func:`window_features` is the one "file -> per-window feature rows" function: it cuts a file
under the windowing policy of :mod:`helpers.audio` and describes each used window with a feature
set. Whole-song prediction, the labeler, liked audio in recommendations and batch segments read
their windows there.

:func:`extract_file` describes one window of one file (``duration=None``: to its end).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from helpers import audio
from helpers.audio import decode  # via the module: tests patch where every decoding goes
from helpers.audio.checks import check_audio_info, check_decoded_length, signal_problem
from helpers.errors import AudioError, InputError
from helpers.features.columns import FEATURE_COLUMNS
from helpers.features.sets import FeatureSet, _feature_set


def extract_file(path, offset: float = 0.0, duration: float | None = None,
                 feature_set: str = "gtzan", *, allow_truncated: bool = False) -> dict[str, float]:
    """Compute a feature set for one window of one audio file.

    Parameters
    ----------
    path : path-like
        Any audio file :func:`helpers.audio.load_audio` decodes.
    offset : float
        Start of the window in seconds.
    duration : float or None
        Length of the window in seconds; ``None`` reads to the end of the file (GTZAN's 30-s
        clips are described whole, which is why the table's ``length`` is 661 794, not 661 500).
    feature_set : str
        Which columns to compute: a registered feature set (``"gtzan"``, ``"extended"``,
        ``"musicnn"``, ``"gtzan+musicnn"``); the window is decoded at its rate.
    allow_truncated : bool
        Describe what a cut-off file holds instead of refusing it.

    Returns
    -------
    dict
        Every name in ``feature_columns(feature_set)`` mapped to a float.

    Raises
    ------
    AudioError
        Any reason of the validation rule set of :mod:`helpers.audio`: not a readable file, not
        audio, truncated, NaN or infinite samples, shorter than :data:`MIN_SECONDS`, or silent
        (RMS below -60 dBFS: silence carries no genre, so no row is made for it).
    """

    spec = _feature_set(feature_set)  # an unknown name is refused before the file is read
    sr = spec.sample_rate
    info = check_audio_info(path, allow_truncated=allow_truncated, needs="features")
    y = decode.load_audio(path, offset=offset, duration=duration, sr=sr, info=info)  # no second probe
    if not allow_truncated:
        check_decoded_length(path, info.duration, len(y) / sr, offset, duration)
    problem = signal_problem(y, sr, spec.min_seconds)
    if problem:
        raise AudioError(path, problem)
    try:
        return spec.describe(y, sr)
    except AudioError as exc:
        raise AudioError(path, exc.reason) from None


#: Notes of windows that :func:`window_features` can describe on request (``describe_notes``);
#: a window with non-finite samples has no features.
DESCRIBABLE_NOTES = ("short", "silent")


#: The columns :func:`window_features` puts before the feature set's.
WINDOW_COLUMNS = ("start", "end", "note", "used")


def window_features(path, window_seconds: float = 30.0, *, feature_set: str | FeatureSet = "gtzan",
                    max_windows: int | None = None, offset: float = 0.0,
                    duration: float | None = None, info=None, progress=None,
                    describe_notes=(), skip_starts=(), min_window_seconds: float | None = None,
                    short_file: bool = False, source=None, allow_truncated: bool = False,
                    needs: str = "predictions", remove_dc: bool = False):
    """Cut a file into windows under the one windowing policy and describe each used window.

    The file goes through :func:`helpers.audio.iter_checked_windows` (validated and probed
    once, decoded window by window): windows of *window_seconds*, one after the other; a window
    is *used* when it lasts at least :func:`helpers.audio.min_window_seconds` (``min(10 s,
    window_seconds)``), is neither silent nor non-finite, and its features are finite. Every
    consumer of per-window features (whole-song prediction, the labeler, liked audio in
    recommendations, batch segments) reads its windows here.

    Parameters
    ----------
    path : path-like
        The audio file.
    window_seconds : float
        Window length, checked by :func:`helpers.audio.check_window_seconds` (3-600 s).
    feature_set : str or FeatureSet
        Which features describe a window (:func:`feature_set`); the audio is decoded at its
        sample rate.
    max_windows : int, optional
        Stop after this many windows without a note (the first usable windows; quick runs).
    offset, duration : float
        Part of the file to read, in seconds (``duration=None``: to the end).
    info : helpers.audio.AudioInfo, optional
        What :func:`helpers.audio.check_audio_info` returned for *path*, when the caller checked
        it (the file is then not probed again); default: checked here. Either way a stated
        length below the policy's minimum is refused before anything is decoded.
    progress : callable, optional
        Called as ``progress(k, n)`` before window k (1-based) of about n is described.
    describe_notes : iterable of str
        Also describe windows with these notes (:data:`DESCRIBABLE_NOTES`), when long enough for
        the feature set; they stay ``used=False``. Whole-song prediction shows short and silent
        windows in its timeline (and its original ``"mean"`` rule counts them); batch segments
        keep silent ones, flagged.
    skip_starts : iterable of float
        Start times (s) of windows the caller already holds (the labeler's store): counted
        towards *max_windows* when usable, neither described nor returned.
    min_window_seconds : float, optional
        Replace the policy's minimum (see :func:`helpers.audio.min_window_seconds`).
    short_file : bool
        Describe a file shorter than the policy's minimum whole, as one used window, instead of
        refusing it (the policy's ``file_seconds`` clause: liked audio in recommendations);
        needs the length the header states.
    source : str, optional
        What errors name; default *path*.
    allow_truncated : bool
        Describe what a cut-off file holds instead of refusing it.
    needs : str
        Who needs the minimum length, for a "too short" reason ("predictions", "segments", ...).
    remove_dc : bool
        Subtract each window's mean from its samples before describing it. A DC offset is no
        part of the music, yet it moves the zero-crossing rate, RMS and the means of the
        harmonic and percussive waveforms; whole-song prediction and the labeler remove it.
        Off by default: the GTZAN table's own clips keep their (small) offsets, and feature
        tables reproduce the table.

    Returns
    -------
    pandas.DataFrame
        One row per window in order: ``start``, ``end`` (seconds in the file, *offset*
        included), ``note`` (``""``, ``"short"``, ``"silent"`` or ``"non-finite"``), ``used``,
        then the feature set's columns (NaN for windows not described).

    Raises
    ------
    InputError
        Bad window length or feature set name; the file is unfit (any reason of the rule set of
        :mod:`helpers.audio`, such as no usable window).

    Examples
    --------
    >>> table = window_features("data/music/wesnoth_heroes_rite.ogg")  # doctest: +SKIP
    >>> table[["start", "end", "note", "used"]].tail(2)  # doctest: +SKIP
       start         end   note   used
    6  180.0  210.000000          True
    7  210.0  219.115102  short  False
    """


    source = path if source is None else source
    window_seconds = audio.check_window_seconds(source, window_seconds)
    spec = _feature_set(feature_set)
    describe_notes = set(describe_notes)
    if not describe_notes <= set(DESCRIBABLE_NOTES):
        raise ValueError(f"describe_notes takes {', '.join(DESCRIBABLE_NOTES)}, got "
                         f"{sorted(describe_notes)}")
    if max_windows is not None and max_windows < 1:
        raise InputError("max_windows", f"{max_windows!r} is not a positive number of windows")
    if info is None:
        info = audio.check_audio_info(path, source=source, allow_truncated=allow_truncated)
    seconds = _seconds_read(info.duration, offset, duration)
    minimum = audio.min_window_seconds(window_seconds, min_window_seconds,
                                       file_seconds=seconds if short_file else None,
                                       shortest=spec.min_seconds)
    if seconds is not None and seconds < minimum:  # from the header, before decoding
        raise AudioError(source, audio.too_short_reason(seconds, minimum, needs))
    expected = int(np.ceil(seconds / window_seconds)) if seconds else 0
    skip = {round(float(start), 3) for start in skip_starts}
    shortest = spec.min_seconds * spec.sample_rate
    rows, seen, usable = [], 0, 0
    windows = audio.iter_checked_windows(
        path, window_seconds=window_seconds, min_window_seconds=minimum, sr=spec.sample_rate,
        offset=offset, duration=duration, source=source, allow_truncated=allow_truncated,
        needs=needs, info=info)
    try:
        for window in windows:
            seen += 1
            start, end = window.start + offset, window.end + offset
            usable += window.note == ""
            if not (window.note == "" and round(start, 3) in skip):
                if progress is not None:
                    progress(seen, max(expected, seen))
                values = None
                if ((window.note == "" or window.note in describe_notes)
                        and len(window.samples) >= shortest):
                    samples = window.samples
                    if remove_dc:
                        samples = samples - samples.mean(dtype=np.float64).astype(samples.dtype)
                    values = _describe_window(spec, samples)
                rows.append({"start": start, "end": end, "note": window.note,
                             "used": window.note == "" and values is not None, **(values or {})})
            if max_windows is not None and usable >= max_windows:
                break  # the rest of the file is not decoded
    finally:
        windows.close()
    table = pd.DataFrame(rows, columns=[*WINDOW_COLUMNS, *spec.columns])
    table["used"] = table["used"].astype(bool)
    return table


def _describe_window(spec: FeatureSet, samples: np.ndarray) -> dict[str, float] | None:
    """The window's features, or None where the set cannot describe it (too few frames, or a
    result that is not finite: such a window is not used)."""
    try:
        with np.errstate(all="ignore"):  # quiet passages divide by tiny numbers
            values = spec.describe(samples, spec.sample_rate)
    except AudioError:
        return None
    return values if np.all(np.isfinite(list(values.values()))) else None


def _seconds_read(stated: float | None, offset: float, duration: float | None) -> float | None:
    """Seconds of audio a read of *offset*, *duration* gets from a file of *stated* seconds."""
    if stated is None:
        return None
    seconds = max(0.0, stated - offset)
    return seconds if duration is None else min(seconds, duration)


def as_row(features: Mapping[str, float], columns=FEATURE_COLUMNS) -> np.ndarray:
    """Return *features* as a 1-D array in *columns* order (default :data:`FEATURE_COLUMNS`)."""
    return np.array([features[name] for name in columns], dtype=float)


def parity_table(rows, reference, columns=FEATURE_COLUMNS, key: str = "filename"):
    """Compare extracted rows with reference rows (e.g. the GTZAN table) clip by clip.

    Parameters
    ----------
    rows, reference : pandas.DataFrame
        Both with a *key* column and the feature *columns*; *reference* also sets the scale:
        each difference is divided by that column's standard deviation over all reference rows.
    columns : sequence of str
        Columns to compare (``tempo`` is reported in BPM instead, ``length`` in samples).

    Returns
    -------
    deviations : pandas.DataFrame
        Per matched clip, each column's absolute difference in reference standard deviations.
    summary : pandas.DataFrame
        Per clip: the worst column and its deviation, the tempo and length differences, and
        ``ok`` (worst <= 0.05 std and tempo within 1 BPM, the project's parity criterion).
    """

    scale = reference[list(columns)].std()
    merged = rows.merge(reference, on=key, suffixes=("", "_table"))
    compared = [c for c in columns if c not in ("tempo", "length")]
    deviations = pd.DataFrame(
        {c: (merged[c] - merged[f"{c}_table"]).abs() / scale[c] for c in compared}
    )
    deviations.index = merged[key]
    summary = pd.DataFrame({
        "worst_column": deviations.idxmax(axis=1),
        "worst_std": deviations.max(axis=1),
        "tempo_diff_bpm": (merged["tempo"] - merged["tempo_table"]).abs().to_numpy(),
        "length_diff_samples": (merged["length"] - merged["length_table"]).to_numpy(),
    }, index=deviations.index)
    summary["ok"] = (summary["worst_std"] <= 0.05) & (summary["tempo_diff_bpm"] <= 1.0)
    return deviations, summary

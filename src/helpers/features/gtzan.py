"""The features of the GTZAN table, computed the way the table computed them, fast.

Semantics are librosa's defaults, as in the table: 22 050 Hz mono, ``n_fft=2048``,
``hop_length=512``, 20 MFCCs; every frame-wise feature is summarised by its mean and variance over
frames; ``harmony``/``perceptr`` are the harmonic and percussive waveforms of
``librosa.effects.hpss``; ``tempo`` comes from ``librosa.beat.beat_track``; ``length`` is the number
of samples (not seconds), as the table stores it.

Speed comes from doing each piece of work once, not from changing the definitions:

* the librosa functions of the table's columns are reproduced to the last bit on numpy and
  :mod:`scipy.fft` by :mod:`helpers.features.spectral`, so computing them imports neither librosa nor
  :mod:`scipy.signal`/:mod:`scipy.stats` (about 1.5 s of a fresh process's start-up);
* one complex STFT feeds chroma, centroid, bandwidth, roll-off, the mel spectrogram (hence the
  MFCCs and the onset envelope the beat tracker uses) and the harmonic/percussive separation;
* the two 31-point median filters of HPSS (about 85% of the per-call time, through
  :func:`scipy.ndimage.median_filter`) run as a sorted sliding window compiled with numba; a median
  is an exact order statistic, so the result is identical, only about 20x cheaper.

:func:`extract_signal_librosa` keeps the original study's way (one librosa call per feature on the
waveform) as the reference that the parity test and ``benchmarks/bench_features.py`` compare with.
The ``"extended"`` set's extra columns still come from librosa, imported only for that set.

Examples
--------
>>> import numpy as np
>>> from helpers.features import extract_signal, FEATURE_COLUMNS
>>> y = np.sin(2 * np.pi * 440 * np.arange(22050 * 3) / 22050).astype(np.float32)
>>> row = extract_signal(y)
>>> list(row) == list(FEATURE_COLUMNS), row["length"]
(True, 66150.0)
"""

from __future__ import annotations

import numpy as np

from helpers.audio.checks import signal_note, signal_reason
from helpers.constants import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE
from helpers.constants import MIN_FEATURE_SECONDS as MIN_SECONDS
from helpers.errors import AudioError, InputError
from helpers.features.columns import EXTENDED_COLUMNS, FEATURE_COLUMNS, PITCH_CLASSES

#: Kernel size of ``librosa.decompose.hpss`` (its default).
HPSS_KERNEL = 31

#: The sets :func:`extract_signal` computes (one STFT; ``extended`` adds librosa's extras).
TABLE_COLUMNS = {"gtzan": FEATURE_COLUMNS, "extended": EXTENDED_COLUMNS}


def _kernels():
    # imported on first use (or by import_libraries): the registry of feature sets, which reads
    # this module, is consulted without computing anything (an unknown --feature-set name)
    import helpers.features.kernels as kernels

    return kernels.median_rows, kernels.harmonic_stft, kernels.spectral_shape


def _spectral():
    # imported on first use, like the kernels (scipy.fft: a tenth of a second of start-up)
    import helpers.features.spectral as spectral

    return spectral


def median_filter_1d(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Median filter of odd *size* along one *axis* of a 2-D array, ``mode="reflect"``.

    Gives exactly ``scipy.ndimage.median_filter(x, size=shape, mode="reflect")`` where *shape*
    is *size* on *axis* and 1 elsewhere (the filter ``librosa.decompose.hpss`` applies), for
    lines of at least 3 samples.
    """
    if size % 2 != 1:
        raise ValueError(f"median filter size must be odd, got {size}")
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    median_rows = _kernels()[0]
    lines = np.ascontiguousarray(x if axis in (-1, 1) else x.T)
    out = np.empty_like(lines)
    median_rows(lines, size, out)
    return out if axis in (-1, 1) else out.T  # a view: callers that care about layout copy


def spectral_shape(magnitude: np.ndarray, sr: int = SAMPLE_RATE,
                   roll_percent: float = 0.85) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid, bandwidth and 85% roll-off per frame, in one pass over *magnitude*.

    Same definitions as ``librosa.feature.spectral_centroid``, ``spectral_bandwidth`` and
    ``spectral_rolloff`` on ``S=magnitude`` (they agree to float rounding).
    """
    freqs = _spectral().fft_frequencies(sr=sr, n_fft=2 * (magnitude.shape[0] - 1))
    tiny = float(np.finfo(magnitude.dtype).tiny)
    return _kernels()[2](np.ascontiguousarray(magnitude), freqs, roll_percent, tiny)


def hpss_from_stft(stft: np.ndarray, length: int, y: np.ndarray | None = None,
                   magnitude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive waveforms from a complex STFT, as ``librosa.effects.hpss``.

    Parameters
    ----------
    stft : np.ndarray
        ``helpers.features.spectral.stft(y)`` or ``librosa.stft(y)`` (the same: complex,
        ``n_fft=2048``, ``hop_length=512``).
    length : int
        ``len(y)``: the inverse STFT is cut to it, as librosa does.
    y : np.ndarray, optional
        The signal itself. The two soft masks sum to one and the inverse STFT is linear, so the
        percussive part is then ``y - harmonic`` and one inverse STFT is saved.
    magnitude : np.ndarray, optional
        ``np.abs(stft)`` if already computed.
    """
    magnitude = np.abs(stft) if magnitude is None else magnitude
    harmonic = median_filter_1d(magnitude, HPSS_KERNEL, axis=-1)
    percussive = median_filter_1d(magnitude, HPSS_KERNEL, axis=-2)
    tiny = float(np.finfo(magnitude.dtype).tiny)
    harmonic_stft = _kernels()[1]
    dtype = np.float32 if stft.dtype == np.complex64 else np.float64

    def invert(spectrum):
        return _spectral().istft(spectrum, length, hop_length=HOP_LENGTH, n_fft=N_FFT,
                                 dtype=dtype)

    def masked(first, second):
        # The kernel walks its arrays row by row; the STFT is Fortran-ordered, so hand it
        # the transposed views (contiguous rows) — an element-wise mask commutes with .T.
        if stft.flags.f_contiguous and not stft.flags.c_contiguous:
            return harmonic_stft(stft.T, first.T, second.T, tiny).T
        return harmonic_stft(stft, first, second, tiny)

    y_harmonic = invert(masked(harmonic, percussive))
    if y is not None:
        return y_harmonic, (np.asarray(y, dtype=dtype) - y_harmonic)
    return y_harmonic, invert(masked(percussive, harmonic))


def estimate_tuning(power: np.ndarray, sr: int = SAMPLE_RATE, n_fft: int = N_FFT,
                    fmin: float = 150.0, fmax: float = 4000.0, threshold: float = 0.1) -> float:
    """Tuning deviation in fractions of a chroma bin, as ``chroma_stft`` estimates it.

    The same computation as ``librosa.estimate_tuning(S=power, sr=sr, bins_per_octave=12)``
    (``librosa.piptrack``: parabolic interpolation of spectral peaks above a tenth of each frame's
    maximum, between 150 and 4000 Hz), but only on the bins in that range plus one neighbour on
    each side, which are all the peak picking and the interpolation ever look at. A window
    without peaks (near silence) has tuning 0.0, as librosa returns, without its warning.
    """
    spectral = _spectral()
    freqs = spectral.fft_frequencies(sr=sr, n_fft=n_fft)
    inside = np.flatnonzero((max(fmin, 0.0) <= freqs) & (freqs < min(fmax, sr / 2)))
    lo, hi = max(inside[0] - 1, 0), min(inside[-1] + 2, len(freqs))
    band = power[lo:hi]
    shift = spectral.parabolic_interpolation(band)
    skew = 0.5 * np.gradient(band, axis=-2) * shift
    reference = threshold * np.max(power, axis=-2, keepdims=True)
    peaks = spectral.localmax(band * (band > reference))
    in_range = np.zeros(len(band), dtype=bool)
    in_range[inside - lo] = True
    rows, cols = np.nonzero(in_range[:, None] & peaks)
    pitches = ((rows + lo) + shift[rows, cols]) * float(sr) / n_fft
    magnitudes = band[rows, cols] + skew[rows, cols]
    positive = pitches > 0
    cut = np.median(magnitudes[positive]) if positive.any() else 0.0
    return spectral.pitch_tuning(pitches[(magnitudes >= cut) & positive], bins_per_octave=12)


def zero_crossing_rate(y: np.ndarray, frame_length: int = N_FFT,
                       hop_length: int = HOP_LENGTH) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y)`` from one pass over the signal.

    Sign changes (samples within 1e-10 of zero count as positive) are marked once, then summed per
    centred frame with a cumulative sum instead of framing the signal.
    """
    padded = np.pad(np.asarray(y), frame_length // 2, mode="edge")
    padded = np.where(np.abs(padded) <= 1e-10, 0, padded)
    changes = np.signbit(padded[1:]) != np.signbit(padded[:-1])
    running = np.concatenate([[0], np.cumsum(changes, dtype=np.int64)])
    starts = np.arange(1 + (len(padded) - frame_length) // hop_length) * hop_length
    # crossings between sample k-1 and k, for k in start+1 .. start+frame_length-1
    counts = running[starts + frame_length - 1] - running[starts]
    return (counts / frame_length)[np.newaxis, :]


def tempo(onset_envelope: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """The tempo ``librosa.beat.beat_track`` returns, without tracking the beats themselves.

    ``beat_track`` reports ``librosa.feature.tempo`` of the onset envelope (0 when the envelope
    is all zeros); the dynamic-programming beat tracker it then runs does not change that number,
    and skipping it also skips its numba compilation on every fresh start.
    """
    if not onset_envelope.any():
        return 0.0
    return _spectral().tempo(onset_envelope, sr=sr, hop_length=HOP_LENGTH)


def _check_signal(y: np.ndarray, sr: int) -> np.ndarray:
    if sr != SAMPLE_RATE:
        raise ValueError(f"sample rate {sr} Hz: features are defined at {SAMPLE_RATE} Hz")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal (1-D), got shape {y.shape}")
    # silence is left to extract_file: a silent signal still has features
    note = signal_note(y, len(y), MIN_SECONDS * sr, silence=False)
    if note:
        raise AudioError("signal", signal_reason(note, len(y) / sr, MIN_SECONDS))
    return y


def _summarise(stats: dict[str, float], name: str, values: np.ndarray) -> None:
    stats[f"{name}_mean"] = float(np.mean(values))
    stats[f"{name}_var"] = float(np.var(values))


def extract_signal(y: np.ndarray, sr: int = SAMPLE_RATE,
                   feature_set: str = "gtzan") -> dict[str, float]:
    """Compute a feature set for one mono signal, from one shared STFT.

    Parameters
    ----------
    y : np.ndarray
        Mono float signal at *sr*, at least :data:`MIN_SECONDS` long.
    sr : int
        Sample rate; must be 22 050 Hz, the table's rate.
    feature_set : {"gtzan", "extended"}
        Which columns to compute (see :func:`feature_columns`).

    Returns
    -------
    dict
        Feature name to float, in :func:`feature_columns` order.

    Raises
    ------
    AudioError
        The signal is shorter than :data:`MIN_SECONDS` or holds non-finite samples.
    """
    spectral = _spectral()
    columns = TABLE_COLUMNS.get(feature_set)
    if columns is None:
        raise InputError(feature_set, "not one of the GTZAN table's sets that extract_signal "
                                      "computes; use feature_set(name).describe(y, sr)")
    y = _check_signal(y, sr)
    stats: dict[str, float] = {"length": float(len(y))}

    stft = spectral.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    magnitude = np.abs(stft)
    power = magnitude**2

    chroma = spectral.chroma_stft(power, sr=sr, tuning=estimate_tuning(power, sr))
    _summarise(stats, "chroma_stft", chroma)
    # rms and zero crossings are defined on the (unwindowed) framed waveform, not the STFT.
    _summarise(stats, "rms", spectral.rms(y, frame_length=N_FFT, hop_length=HOP_LENGTH))
    centroid, bandwidth, rolloff = spectral_shape(magnitude, sr)
    _summarise(stats, "spectral_centroid", centroid)
    _summarise(stats, "spectral_bandwidth", bandwidth)
    _summarise(stats, "rolloff", rolloff)
    _summarise(stats, "zero_crossing_rate", zero_crossing_rate(y))

    harmonic, percussive = hpss_from_stft(stft, len(y), y=y, magnitude=magnitude)
    _summarise(stats, "harmony", harmonic)
    _summarise(stats, "perceptr", percussive)

    mel_db = spectral.power_to_db(spectral.melspectrogram(power, sr=sr))
    onset_envelope = spectral.onset_strength(mel_db, n_fft=N_FFT, hop_length=HOP_LENGTH)
    stats["tempo"] = tempo(onset_envelope, sr)

    mfcc = spectral.mfcc(mel_db, n_mfcc=N_MFCC)
    for i, row in enumerate(mfcc, start=1):
        _summarise(stats, f"mfcc{i}", row)

    if feature_set == "extended":
        import librosa  # only these extra columns need it (and its start-up time)

        contrast = librosa.feature.spectral_contrast(S=magnitude, sr=sr)
        for i, row in enumerate(contrast, start=1):
            _summarise(stats, f"spectral_contrast{i}", row)
        for i, row in enumerate(librosa.feature.tonnetz(y=y, sr=sr), start=1):
            _summarise(stats, f"tonnetz{i}", row)
        for pitch_class, row in zip(PITCH_CLASSES, chroma, strict=True):
            _summarise(stats, f"chroma_{pitch_class}", row)
        for i, row in enumerate(librosa.feature.delta(mfcc), start=1):
            _summarise(stats, f"mfcc{i}_delta", row)
    return {name: stats[name] for name in columns}


def extract_signal_librosa(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """The original study's way: each librosa feature function called on the waveform.

    Slow (one STFT per feature, ``scipy.ndimage`` median filters in ``effects.hpss``) and kept
    only as the reference for the parity test and the benchmark. Same output as
    ``extract_signal(y, sr)``.
    """
    import librosa

    y = _check_signal(y, sr)
    stats: dict[str, float] = {"length": float(len(y))}
    _summarise(stats, "chroma_stft", librosa.feature.chroma_stft(y=y, sr=sr))
    _summarise(stats, "rms", librosa.feature.rms(y=y))
    _summarise(stats, "spectral_centroid", librosa.feature.spectral_centroid(y=y, sr=sr))
    _summarise(stats, "spectral_bandwidth", librosa.feature.spectral_bandwidth(y=y, sr=sr))
    _summarise(stats, "rolloff", librosa.feature.spectral_rolloff(y=y, sr=sr))
    _summarise(stats, "zero_crossing_rate", librosa.feature.zero_crossing_rate(y))
    harmonic, percussive = librosa.effects.hpss(y)
    _summarise(stats, "harmony", harmonic)
    _summarise(stats, "perceptr", percussive)
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    stats["tempo"] = float(np.atleast_1d(tempo)[0])
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    for i, row in enumerate(mfcc, start=1):
        _summarise(stats, f"mfcc{i}", row)
    return {name: stats[name] for name in FEATURE_COLUMNS}


def import_libraries() -> None:
    """Import what :func:`extract_signal` uses for the GTZAN columns, now rather than on first use.

    That is numba (through :mod:`helpers.features.kernels`, the largest part) and :mod:`scipy.fft`
    (through :mod:`helpers.features.spectral`); not librosa, which only the ``"extended"`` set needs.
    A caller that loads something else in a thread (the ``predict`` command loads the model
    file) imports these first, so the thread runs while the features are computed (mostly
    outside the GIL) instead of competing with this import (which holds it).
    """
    _spectral()
    _kernels()


def warm_cache(feature_sets=("gtzan", "extended")) -> list[str]:
    """Compile and cache the numba kernels the features use, once, at install time.

    Runs every feature set on a few seconds of a synthetic signal, so :mod:`helpers.features.kernels`
    and librosa's own cached kernels (those the ``"extended"`` set calls) are compiled and
    written to numba's on-disk cache (next to the modules, or under ``$NUMBA_CACHE_DIR`` when
    that is set; numba falls back to a per-user folder when the package folder is read-only).
    Later processes load them instead of compiling: the first prediction in a fresh process
    costs no compilation.

    Returns
    -------
    list of str
        The feature sets run.
    """
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    y = (0.3 * np.sin(2 * np.pi * 440.0 * t)
         + 0.01 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    for feature_set in feature_sets:
        extract_signal(y, SAMPLE_RATE, feature_set=feature_set)
    return list(feature_sets)

"""The features of the GTZAN table, computed the way the table computed them, fast.

Semantics are librosa's defaults, as in the table: 22 050 Hz mono, ``n_fft=2048``,
``hop_length=512``, 20 MFCCs; every frame-wise feature is summarised by its mean and variance over
frames; ``harmony``/``perceptr`` are the harmonic and percussive waveforms of
``librosa.effects.hpss``; ``tempo`` comes from ``librosa.beat.beat_track``; ``length`` is the number
of samples (not seconds), as the table stores it.

Speed comes from doing each piece of work once, not from changing the definitions:

* the librosa functions of the table's columns are reproduced to the last bit on numpy and
  :mod:`scipy.fft` by :mod:`helpers.spectral`, so computing them imports neither librosa nor
  :mod:`scipy.signal`/:mod:`scipy.stats` (about 1.5 s of a fresh process's start-up);
* one complex STFT feeds chroma, centroid, bandwidth, roll-off, the mel spectrogram (hence the
  MFCCs and the onset envelope the beat tracker uses) and the harmonic/percussive separation;
* the two 31-point median filters of HPSS (about 85% of the per-call time, through
  :func:`scipy.ndimage.median_filter`) run as a sorted sliding window compiled with numba; a median
  is an exact order statistic, so the result is identical, only about 20x cheaper.

:func:`extract_signal_librosa` keeps the original study's way (one librosa call per feature on the
waveform) as the reference that the parity test and ``benchmarks/bench_features.py`` compare with.
The ``"extended"`` set's extra columns still come from librosa, imported only for that set.

Feature sets
------------
``"gtzan"`` (default)
    :data:`FEATURE_COLUMNS`, the 58 columns of the GTZAN table.
``"extended"``
    Those 58, then ``spectral_contrast{1..7}_{mean,var}`` (six octave bands and the residual, from
    :func:`librosa.feature.spectral_contrast`), ``tonnetz{1..6}_{mean,var}`` (fifths x/y, minor
    thirds x/y, major thirds x/y, from :func:`librosa.feature.tonnetz` on the waveform),
    ``chroma_{C,Cs,D,Ds,E,F,Fs,G,Gs,A,As,B}_{mean,var}`` (each pitch class of ``chroma_stft``) and
    ``mfcc{1..20}_delta_{mean,var}`` (first-order MFCC deltas, :func:`librosa.feature.delta`):
    148 columns in all. :func:`feature_columns` lists them.

Each set is a :class:`FeatureSet` (name, columns, ``extract(signal, sr)``, sample rate, shortest
signal) in a registry: :func:`feature_set` returns one by name (an unknown name is refused with
the choices), and :func:`register_feature_set` adds one, which every consumer then offers (a
learned set decoded at 16 kHz needs nothing else).

Windows
-------
:func:`window_features` is the one "file -> per-window feature rows" function: it cuts a file
under the windowing policy of :mod:`helpers.audio` and describes each used window with a feature
set. Whole-song prediction, the labeler, liked audio in recommendations and batch segments read
their windows there.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from helpers.audio import signal_note, signal_reason
from helpers.constants import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE
from helpers.constants import MIN_FEATURE_SECONDS as MIN_SECONDS
from helpers.errors import AudioError, InputError

#: Kernel size of ``librosa.decompose.hpss`` (its default).
HPSS_KERNEL = 31

_SUMMARISED = (
    "chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
    "zero_crossing_rate", "harmony", "perceptr",
)
_STATS = ("mean", "var")

#: The 58 feature names of the GTZAN table, in its column order.
FEATURE_COLUMNS: tuple[str, ...] = (
    ("length",)
    + tuple(f"{name}_{stat}" for name in _SUMMARISED for stat in _STATS)
    + ("tempo",)
    + tuple(f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in _STATS)
)

#: Columns a model sees by default. ``length`` is left out: it measures the clip, not the music
#: (GTZAN clips are all ~30 s; the original study's added rows stored seconds instead of samples).
MODEL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c != "length")

#: Pitch classes in chroma row order; ``s`` stands for sharp.
PITCH_CLASSES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")

EXTENDED_COLUMNS: tuple[str, ...] = (
    FEATURE_COLUMNS
    + tuple(f"spectral_contrast{i}_{s}" for i in range(1, 8) for s in _STATS)
    + tuple(f"tonnetz{i}_{s}" for i in range(1, 7) for s in _STATS)
    + tuple(f"chroma_{pc}_{s}" for pc in PITCH_CLASSES for s in _STATS)
    + tuple(f"mfcc{i}_delta_{s}" for i in range(1, N_MFCC + 1) for s in _STATS)
)



# --------------------------------------------------------------------------- feature sets


@dataclass(frozen=True)
class FeatureSet:
    """A named way to describe one window of audio by a fixed list of numbers.

    Attributes
    ----------
    name : str
        What ``--feature-set`` / ``feature_set=`` call it.
    columns : tuple of str
        The names of the numbers, in order.
    extract : callable
        ``extract(signal, sr)`` -> a mapping from every name in *columns* to a float, or an
        array of ``len(columns)`` floats in *columns* order; *signal* is mono float32 at
        *sample_rate* and at least *min_seconds* long.
    sample_rate : int
        The rate the signal is decoded at for this set.
    min_seconds : float
        The shortest signal *extract* describes.

    Examples
    --------
    A learned set joins by registration (numbers made up here):

    >>> import numpy as np
    >>> loudness = FeatureSet("loudness", ("peak", "mean_square"),
    ...                       lambda y, sr: np.array([np.abs(y).max(), np.mean(y * y)]))
    >>> loudness.describe(np.full(22050, 0.5, dtype=np.float32), 22050)
    {'peak': 0.5, 'mean_square': 0.25}
    """

    name: str
    columns: tuple[str, ...]
    extract: Callable[[np.ndarray, int], Mapping[str, float] | np.ndarray]
    sample_rate: int = SAMPLE_RATE
    min_seconds: float = MIN_SECONDS

    def describe(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """Run :attr:`extract` on *y* and return ``{column: float}`` in :attr:`columns` order.

        Raises
        ------
        ValueError
            *sr* is not :attr:`sample_rate`, or the extractor returned other columns.
        """
        if sr != self.sample_rate:
            raise ValueError(f"feature set {self.name!r} is defined at {self.sample_rate} Hz, "
                             f"got {sr} Hz")
        values = self.extract(y, sr)
        if isinstance(values, Mapping):
            missing = [c for c in self.columns if c not in values]
            if missing:
                raise ValueError(f"feature set {self.name!r} gave no {', '.join(missing[:3])}")
            return {c: float(values[c]) for c in self.columns}
        values = np.asarray(values, dtype=float).ravel()
        if len(values) != len(self.columns):
            raise ValueError(f"feature set {self.name!r} gave {len(values)} values for "
                             f"{len(self.columns)} columns")
        return dict(zip(self.columns, values.tolist(), strict=True))


_REGISTRY: dict[str, FeatureSet] = {}


def register_feature_set(spec: FeatureSet, *, replace: bool = False) -> FeatureSet:
    """Make *spec* available by its name to :func:`feature_set` (and so to every consumer).

    Parameters
    ----------
    spec : FeatureSet
        The set.
    replace : bool
        Allow replacing a set registered under the same name (a second registration of a name
        is otherwise a mistake: two sets would answer to it).

    Returns
    -------
    FeatureSet
        *spec*.
    """
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"a feature set named {spec.name!r} is already registered")
    if len(set(spec.columns)) != len(spec.columns):
        raise ValueError(f"feature set {spec.name!r} names a column twice")
    _REGISTRY[spec.name] = spec
    return spec


def feature_set_names() -> tuple[str, ...]:
    """The registered feature sets' names, sorted.

    Examples
    --------
    >>> feature_set_names()
    ('extended', 'gtzan')
    """
    return tuple(sorted(_REGISTRY))


def feature_set(name: str | FeatureSet) -> FeatureSet:
    """Return the registered feature set called *name* (a :class:`FeatureSet` is returned as is).

    Raises
    ------
    InputError
        No set has that name; the one-line message lists the choices.

    Examples
    --------
    >>> feature_set("gtzan").sample_rate, len(feature_set("gtzan").columns)
    (22050, 58)
    >>> feature_set("fancy")
    Traceback (most recent call last):
    ...
    helpers.errors.InputError: fancy: unknown feature set; choose one of extended, gtzan
    """
    if isinstance(name, FeatureSet):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        # InputError is a ValueError: the command line reports it as bad input (exit status 2).
        raise InputError(name, "unknown feature set; choose one of "
                               + ", ".join(feature_set_names())) from None


_feature_set = feature_set  # window_features' argument of the same name hides the function


def feature_columns(feature_set: str = "gtzan") -> tuple[str, ...]:
    """Return the column names a feature set produces, in order (:attr:`FeatureSet.columns`).

    Examples
    --------
    >>> len(feature_columns("gtzan")), len(feature_columns("extended"))
    (58, 148)
    """
    return _feature_set(feature_set).columns


# --------------------------------------------------------------------------- median filter


def _kernels():
    from helpers import _kernels as kernels

    return kernels.median_rows, kernels.harmonic_stft, kernels.spectral_shape


def _spectral():
    # Imported on first use, like the kernels: modules that import this one for its column
    # names (models, store, evaluation) do not pay for scipy.fft.
    from helpers import spectral

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
        ``helpers.spectral.stft(y)`` or ``librosa.stft(y)`` (the same: complex,
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


# --------------------------------------------------------------------------- extraction


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
    columns = feature_columns(feature_set)
    if feature_set not in _TABLE_SETS:
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


#: The sets :func:`extract_signal` computes (one STFT; ``extended`` adds librosa's extras).
_TABLE_SETS = ("gtzan", "extended")


def _table_extractor(name: str):
    def extract(y: np.ndarray, sr: int) -> dict[str, float]:
        # extract_signal is looked up at call time, so a wrapper put on the module's function
        # (a test counting extractions) sees every window of every consumer
        return extract_signal(y, sr, feature_set=name)

    return extract


register_feature_set(FeatureSet("gtzan", FEATURE_COLUMNS, _table_extractor("gtzan")))
register_feature_set(FeatureSet("extended", EXTENDED_COLUMNS, _table_extractor("extended")))


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
    feature_set : {"gtzan", "extended"}
        Which columns to compute.
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
    from helpers.audio import check_audio_info, check_decoded_length, load_audio, signal_problem

    spec = _feature_set(feature_set)  # an unknown name is refused before the file is read
    sr = spec.sample_rate
    info = check_audio_info(path, allow_truncated=allow_truncated, needs="features")
    y = load_audio(path, offset=offset, duration=duration, sr=sr, info=info)  # no second probe
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
                    needs: str = "predictions"):
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
    import pandas as pd

    from helpers import audio

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
                    values = _describe_window(spec, window.samples)
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
    import pandas as pd

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


# --------------------------------------------------------------------------- start-up


def import_libraries() -> None:
    """Import what :func:`extract_signal` uses for the GTZAN columns, now rather than on first use.

    That is numba (through :mod:`helpers._kernels`, the largest part) and :mod:`scipy.fft`
    (through :mod:`helpers.spectral`); not librosa, which only the ``"extended"`` set needs.
    A caller that loads something else in a thread (the ``predict`` command loads the model
    file) imports these first, so the thread runs while the features are computed (mostly
    outside the GIL) instead of competing with this import (which holds it).
    """
    _spectral()
    _kernels()


# --------------------------------------------------------------------------- install-time warm-up


def warm_cache(feature_sets=("gtzan", "extended")) -> list[str]:
    """Compile and cache the numba kernels the features use, once, at install time.

    Runs every feature set on a few seconds of a synthetic signal, so :mod:`helpers._kernels`
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


def _main(argv=None) -> int:
    import argparse
    import os
    import time

    parser = argparse.ArgumentParser(prog="python -m helpers.features",
                                     description="Feature extraction utilities.")
    parser.add_argument("--warm-cache", action="store_true",
                        help="compile and cache the numba kernels (run once after installing)")
    args = parser.parse_args(argv)
    if not args.warm_cache:
        parser.print_help()
        return 0
    start = time.perf_counter()
    warm_cache()
    where = os.environ.get("NUMBA_CACHE_DIR") or "numba's cache next to the modules"
    print(f"numba kernels compiled and cached in {time.perf_counter() - start:.1f} s ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

"""librosa 0.11's spectral building blocks of the GTZAN features, on numpy and scipy.fft.

Each function reproduces one librosa function with the defaults the GTZAN table was computed
with, operation for operation (same float32/float64 promotions, same FFT library, same array
layouts, same order of accumulation), so its output is the same to the last bit. Importing
librosa costs a fresh process about 1.5 s (its core pulls :mod:`scipy.signal`,
:mod:`scipy.stats` and dozens of numba kernels); this module needs only numpy and
:mod:`scipy.fft` (about 0.15 s), which is what lets ``music-study predict`` start fast. One
loop that numpy would run slowly (the parabolic interpolation of spectral peaks) is a numba
kernel of :mod:`helpers.features.kernels`, the project's compiled and disk-cached kernels.

Filters that depend only on the sample rate, the FFT size and the tuning are cached in-process
and returned read-only.

Examples
--------
>>> import numpy as np
>>> from helpers.features import spectral
>>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
>>> D = spectral.stft(y)
>>> D.shape, D.dtype
((1025, 44), dtype('complex64'))
>>> mel_db = spectral.power_to_db(spectral.melspectrogram(np.abs(D) ** 2))
>>> spectral.mfcc(mel_db).shape
(20, 44)
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from helpers.constants import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE

# --------------------------------------------------------------------------- frames and windows


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window of *n* samples: ``scipy.signal.get_window("hann", n, fftbins=True)``.

    The window ``librosa.filters.get_window("hann", n)`` hands every STFT and the tempogram,
    computed the way scipy computes it (a symmetric window of ``n + 1`` points, last one dropped),
    so it is equal to the last bit. Read-only, cached.
    """
    return _hann_window(int(n))


@functools.lru_cache(maxsize=8)
def _hann_window(n: int) -> np.ndarray:
    if n <= 1:
        window = np.ones(n, dtype=np.float64)
    else:
        # scipy's general_cosine(n + 1, [0.5, 0.5]) without its last point
        fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
        window = np.zeros(n + 1, dtype=np.float64)
        for k, a in enumerate(np.asarray([0.5, 0.5], dtype=np.float64)):
            window += a * np.cos(k * fac)
        window = window[:-1]
    window.flags.writeable = False
    return window


def frame(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Frames of a 1-D signal as a strided view, ``librosa.util.frame(x, ...)`` along axis -1.

    Returns shape ``(frame_length, n_frames)`` with frames in columns, with librosa's strides,
    so reductions over it run in the same order as librosa's.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    if x.shape[0] < frame_length:
        raise ValueError(f"input is too short (n={x.shape[0]}) for frame_length={frame_length}")
    windows = np.lib.stride_tricks.as_strided(
        x, shape=(x.shape[0] - frame_length + 1, frame_length),
        strides=(x.strides[0], x.strides[0]), writeable=False)
    return np.moveaxis(windows, -1, 0)[:, ::hop_length]


def fft_frequencies(sr: float = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Centre frequency of each STFT bin, ``librosa.fft_frequencies(sr=sr, n_fft=n_fft)``."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _max_columns(rows: int, itemsize: int) -> int:
    # librosa.util.MAX_MEM_BLOCK: librosa windows and transforms 256 KiB of frames at a time;
    # so do we, which keeps each block in cache.
    return max(int(2**8 * 2**10 // (rows * itemsize)), 1)


# --------------------------------------------------------------------------- STFT and inverse


def stft(y: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Complex short-time Fourier transform, ``librosa.stft(y, n_fft=n_fft, hop_length=...)``.

    librosa 0.11's defaults: periodic Hann window of ``n_fft`` samples, ``center=True`` with
    ``pad_mode="constant"`` (``n_fft // 2`` zeros on each side). librosa frames the head and the
    tail of a centred signal separately to avoid copying it whole; with zero padding and
    ``hop_length`` dividing ``n_fft // 2`` those frames equal the frames of the zero-padded
    signal, which is what is transformed here. Windowed frames are float64 (the window is) and
    go through :func:`scipy.fft.rfft` (librosa's FFT library), then are stored as complex64.

    Parameters
    ----------
    y : np.ndarray
        Mono float32 signal, at least ``n_fft // 2`` samples.
    n_fft, hop_length : int
        Frame length and hop in samples; ``hop_length`` must divide ``n_fft // 2``.

    Returns
    -------
    np.ndarray
        Shape ``(1 + n_fft // 2, 1 + len(y) // hop_length)``, complex64, Fortran-ordered like
        librosa's.
    """
    y = np.asarray(y)
    if y.dtype != np.float32 or y.ndim != 1:
        raise ValueError(f"expected a 1-D float32 signal, got {y.dtype} of shape {y.shape}")
    if (n_fft // 2) % hop_length:
        raise ValueError(f"hop_length={hop_length} must divide n_fft // 2 = {n_fft // 2}")
    if len(y) + n_fft // 2 < n_fft:
        raise ValueError(f"signal of {len(y)} samples is too short for n_fft={n_fft}")
    frames = frame(np.pad(y, n_fft // 2, mode="constant"), n_fft, hop_length)
    window = hann_window(n_fft)[:, np.newaxis]
    out = np.zeros((1 + n_fft // 2, frames.shape[1]), dtype=np.complex64, order="F")
    step = _max_columns(n_fft, frames.itemsize)
    for start in range(0, frames.shape[1], step):
        stop = min(start + step, frames.shape[1])
        out[:, start:stop] = scipy.fft.rfft(window * frames[:, start:stop], axis=-2)
    return out


def _overlap_add(frames: np.ndarray, hop_length: int, dtype) -> np.ndarray:
    """Overlap-add rows of *frames* (``(n_frames, n_fft)``) at *hop_length*, into *dtype*.

    Each output sample receives its frames in increasing frame order, rounded to *dtype* after
    every addition, exactly as librosa's numba loops (``__overlap_add``, ``__window_ss_fill``)
    accumulate; the frames are cut into ``n_fft // hop_length`` blocks so that each pass adds one
    block of every frame at once.
    """
    n_frames, n_fft = frames.shape
    ratio = n_fft // hop_length
    blocks = frames.reshape(n_frames, ratio, hop_length)
    out = np.zeros((n_frames + ratio - 1, hop_length), dtype=dtype)
    for j in range(ratio - 1, -1, -1):  # later blocks belong to earlier frames
        out[j:j + n_frames] += blocks[:, j, :]
    return out.reshape(-1)


@functools.lru_cache(maxsize=8)
def _window_sumsquare(n_frames: int, n_fft: int, hop_length: int, dtype: str) -> np.ndarray:
    # librosa.filters.window_sumsquare(window="hann", ...): the squared window overlap-added.
    # Cached because every full window of a song has the same number of frames.
    squares = np.broadcast_to(hann_window(n_fft) ** 2, (n_frames, n_fft))
    envelope = _overlap_add(squares, hop_length, np.dtype(dtype))
    envelope.flags.writeable = False
    return envelope


def istft(stft_matrix: np.ndarray, length: int, hop_length: int = HOP_LENGTH,
          n_fft: int = N_FFT, dtype=np.float32) -> np.ndarray:
    """Inverse STFT, ``librosa.istft(stft_matrix, hop_length=..., n_fft=..., length=length,
    dtype=dtype)``.

    Periodic Hann window, ``center=True``: frames from :func:`scipy.fft.irfft`, windowed,
    overlap-added in frame order into *dtype*, divided by the window's sum-square envelope
    where that exceeds the smallest normal number of *dtype*, and cut to *length* samples.

    Parameters
    ----------
    stft_matrix : np.ndarray
        Complex STFT, shape ``(1 + n_fft // 2, n_frames)``.
    length : int
        Number of samples of the output (librosa zero-pads or trims to it).
    hop_length, n_fft : int
        As the forward transform; ``hop_length`` must divide ``n_fft // 2``.
    dtype : numpy dtype
        Output type (float32 for a complex64 STFT).

    Returns
    -------
    np.ndarray
        The signal, ``length`` samples of *dtype*.
    """
    if (n_fft // 2) % hop_length:
        raise ValueError(f"hop_length={hop_length} must divide n_fft // 2 = {n_fft // 2}")
    n_frames = min(stft_matrix.shape[-1], int(np.ceil((length + 2 * (n_fft // 2)) / hop_length)))
    window = hann_window(n_fft)
    # irfft of the frames as rows (each frame's bins are contiguous in a Fortran-ordered STFT)
    frames = window * scipy.fft.irfft(stft_matrix[:, :n_frames].T, n=n_fft, axis=-1)
    signal = _overlap_add(frames, hop_length, dtype)
    envelope = _window_sumsquare(n_frames, n_fft, hop_length, np.dtype(dtype).str)
    y = np.zeros(length, dtype=dtype)
    available = min(length, len(signal) - n_fft // 2)
    y[:available] = signal[n_fft // 2:n_fft // 2 + available]
    norm = np.zeros(length, dtype=dtype)
    norm[:available] = envelope[n_fft // 2:n_fft // 2 + available]
    nonzero = norm > np.finfo(norm.dtype).tiny
    y[nonzero] /= norm[nonzero]
    return y


# --------------------------------------------------------------------------- normalisation


def normalize(S: np.ndarray, norm: float = np.inf, axis: int = 0) -> np.ndarray:
    """``librosa.util.normalize(S, norm=norm, axis=axis)`` with its default threshold and fill.

    Slices whose norm is below the smallest normal number of ``S``'s type are left as they are
    (divided by 1). Only ``norm=np.inf`` and positive finite norms are supported.
    """
    threshold = np.finfo(S.dtype).tiny
    magnitude = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(magnitude, axis=axis, keepdims=True)
    elif norm > 0 and np.isfinite(norm):
        length = np.sum(magnitude**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    else:
        raise ValueError(f"unsupported norm {norm!r}")
    length[length < threshold] = 1.0
    normalized = np.empty_like(S)  # same layout as S, as librosa (reductions over it follow it)
    normalized[:] = S / length
    return normalized


# --------------------------------------------------------------------------- chroma


def hz_to_octs(frequencies: np.ndarray, tuning: float = 0.0,
               bins_per_octave: int = 12) -> np.ndarray:
    """Octave numbers of *frequencies* (A440 is 4.75 octaves above C0),
    ``librosa.hz_to_octs``."""
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asanyarray(frequencies) / (float(a440) / 16))


def chroma_filters(sr: float = SAMPLE_RATE, n_fft: int = N_FFT, tuning: float = 0.0,
                   n_chroma: int = 12) -> np.ndarray:
    """Chroma filter bank, ``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning)``.

    librosa's defaults: ``n_chroma=12``, Gaussian bumps normalised to unit L2 norm per FFT bin
    (``norm=2``), weighted by a Gaussian over octaves centred at ``ctroct=5.0`` with
    ``octwidth=2``, rows starting at C (``base_c=True``), float32. Read-only, cached.

    Returns
    -------
    np.ndarray
        Shape ``(n_chroma, 1 + n_fft // 2)``.
    """
    return _chroma_filters(float(sr), int(n_fft), float(tuning), int(n_chroma))


@functools.lru_cache(maxsize=64)
def _chroma_filters(sr: float, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    ctroct, octwidth = 5.0, 2
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    # DC gets a bin 1.5 octaves below bin 1
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    weights = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    weights = normalize(weights, norm=2, axis=0)
    weights *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - ctroct) / octwidth) ** 2)),
                       (n_chroma, 1))
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)  # start at C, not A
    weights = np.ascontiguousarray(weights[:, : int(1 + n_fft / 2)], dtype=np.float32)
    weights.flags.writeable = False
    return weights


def chroma_stft(power: np.ndarray, sr: float = SAMPLE_RATE, tuning: float = 0.0) -> np.ndarray:
    """Chromagram of a power spectrogram,
    ``librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning)``.

    The :func:`chroma_filters` bank applied to *power*, then each frame scaled to a maximum of
    1 (``norm=np.inf``; frames without energy stay zero).
    """
    filters = chroma_filters(sr=sr, n_fft=2 * (power.shape[-2] - 1), tuning=tuning)
    raw = np.einsum("cf,...ft->...ct", filters, power, optimize=True)
    return normalize(raw, norm=np.inf, axis=-2)


# --------------------------------------------------------------------------- tuning


def parabolic_interpolation(x: np.ndarray) -> np.ndarray:
    """Offset of the vertex of the parabola through each point and its neighbours along axis 0,
    ``librosa.core.pitch._parabolic_interpolation(x, axis=-2)`` for a 2-D *x*.

    The offset is 0 where it would exceed one bin and on the first and last rows. Computed by a
    numba kernel (:func:`helpers.features.kernels.parabolic_shifts`) written as librosa's numba stencil,
    so with its promotions: neighbour sum and difference in *x*'s type, the vertex in float64,
    stored in *x*'s type.
    """

    x = np.asarray(x)
    shifts = np.zeros_like(x)
    if x.shape[0] >= 3:
        # numba loads here, not at import: the mel filters serve musicnn's quick start too
        from helpers.features.kernels import parabolic_shifts

        parabolic_shifts(x, shifts)
    return shifts


def localmax(x: np.ndarray) -> np.ndarray:
    """Local maxima along axis 0, ``librosa.util.localmax(x, axis=-2)`` for a 2-D *x*.

    ``x[i]`` is a peak when it is above ``x[i - 1]`` and not below ``x[i + 1]``; the first row
    never is, the last row is when it is above the row before it.
    """
    x = np.asarray(x)
    peaks = np.zeros(x.shape, dtype=bool)
    if x.shape[0] >= 3:
        peaks[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    if x.shape[0] >= 2:
        peaks[-1] = x[-1] > x[-2]
    return peaks


def pitch_tuning(frequencies: np.ndarray, resolution: float = 0.01,
                 bins_per_octave: int = 12) -> float:
    """Tuning offset of a set of pitches in fractions of a bin,
    ``librosa.pitch_tuning(frequencies, resolution=0.01, bins_per_octave=12)``.

    Each pitch's distance to its nearest equal-tempered bin goes into a histogram of bins
    *resolution* wide over [-0.5, 0.5]; the left edge of the fullest bin is the tuning. With no
    positive frequency the tuning is 0.0 (librosa also warns; nothing here does).
    """
    frequencies = np.atleast_1d(frequencies)
    frequencies = frequencies[frequencies > 0]
    if not np.any(frequencies):
        return 0.0
    residual = np.mod(bins_per_octave * hz_to_octs(frequencies), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, bins)
    return float(edges[np.argmax(counts)])


# --------------------------------------------------------------------------- loudness


def rms(y: np.ndarray, frame_length: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Root-mean-square of each centred frame of the waveform,
    ``librosa.feature.rms(y=y, frame_length=..., hop_length=...)``.

    librosa 0.11's defaults: frames centred by ``frame_length // 2`` zeros on each side
    (``pad_mode="constant"``), no window. Returns shape ``(1, n_frames)``.
    """
    padded = np.pad(np.asarray(y), int(frame_length // 2), mode="constant")
    frames = frame(padded, frame_length, hop_length)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=-2, keepdims=True))


# --------------------------------------------------------------------------- mel and MFCC


# The Slaney mel scale: linear (66.7 Hz per mel) up to 1 kHz, logarithmic above.
_MEL_F_SP = 200.0 / 3
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies):
    """Slaney mel scale (linear below 1 kHz, logarithmic above), ``librosa.hz_to_mel``."""
    frequencies = np.asanyarray(frequencies)
    mels = frequencies / _MEL_F_SP
    if frequencies.ndim:
        log_t = frequencies >= _MEL_MIN_LOG_HZ
        mels[log_t] = _MEL_MIN_LOG_MEL + np.log(frequencies[log_t] / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    elif frequencies >= _MEL_MIN_LOG_HZ:
        mels = _MEL_MIN_LOG_MEL + np.log(frequencies / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return mels


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`, ``librosa.mel_to_hz`` (Slaney scale)."""
    mels = np.asanyarray(mels)
    freqs = _MEL_F_SP * mels
    if mels.ndim:
        log_t = mels >= _MEL_MIN_LOG_MEL
        freqs[log_t] = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels[log_t] - _MEL_MIN_LOG_MEL))
    elif mels >= _MEL_MIN_LOG_MEL:
        freqs = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels - _MEL_MIN_LOG_MEL))
    return freqs


def mel_filters(sr: float = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = 128) -> np.ndarray:
    """Mel filter bank, ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)``.

    librosa's defaults: Slaney mel scale from 0 Hz to ``sr / 2``, triangular filters scaled to
    equal area (``norm="slaney"``), float32. Read-only, cached.

    Returns
    -------
    np.ndarray
        Shape ``(n_mels, 1 + n_fft // 2)``.
    """
    return _mel_filters(float(sr), int(n_fft), int(n_mels))


@functools.lru_cache(maxsize=8)
def _mel_filters(sr: float, n_fft: int, n_mels: int) -> np.ndarray:
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = fft_frequencies(sr=sr, n_fft=n_fft)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(float(sr) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    weights.flags.writeable = False
    return weights


def melspectrogram(power: np.ndarray, sr: float = SAMPLE_RATE, n_mels: int = 128) -> np.ndarray:
    """Mel power spectrogram, ``librosa.feature.melspectrogram(S=power, sr=sr)``."""
    filters = mel_filters(sr=sr, n_fft=2 * (power.shape[-2] - 1), n_mels=n_mels)
    return np.einsum("...ft,mf->...mt", power, filters, optimize=True)


def power_to_db(S: np.ndarray, ref: float = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> np.ndarray:
    """Decibels of a power spectrogram, ``librosa.power_to_db(S)`` (``ref=1.0``, ``amin=1e-10``,
    floored ``top_db=80`` below the maximum)."""
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, np.abs(ref)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def mfcc(mel_db: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """Mel-frequency cepstral coefficients, ``librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc)``:
    the orthonormal type-II DCT (:func:`scipy.fft.dct`) of each frame, first *n_mfcc* rows."""
    return scipy.fft.dct(mel_db, axis=-2, type=2, norm="ortho")[..., :n_mfcc, :]


# --------------------------------------------------------------------------- rhythm


def onset_strength(mel_db: np.ndarray, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Onset strength envelope,
    ``librosa.onset.onset_strength(S=mel_db, aggregate=np.median)``.

    Spectral flux with ``lag=1`` and no maximum filter (``max_size=1``): the positive part of
    each band's frame-to-frame increase, median over bands, delayed by ``1 + n_fft // (2 *
    hop_length)`` frames (``center=True``) so that it lines up with the STFT frames.
    """
    S = np.atleast_2d(mel_db)
    lag = 1
    onset_env = np.maximum(0.0, S[..., lag:] - S[..., :-lag])
    median = np.median(onset_env, axis=-2)
    pad_width = lag + n_fft // (2 * hop_length)
    return np.pad(median, (int(pad_width), 0), mode="constant")[: S.shape[-1]]


def tempo_frequencies(n_bins: int, sr: float = SAMPLE_RATE,
                      hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Tempo in BPM of each autocorrelation lag, ``librosa.tempo_frequencies`` (lag 0: inf)."""
    bin_frequencies = np.zeros(int(n_bins), dtype=np.float64)
    bin_frequencies[0] = np.inf
    bin_frequencies[1:] = 60.0 * sr / (hop_length * np.arange(1.0, n_bins))
    return bin_frequencies


def tempogram(onset_envelope: np.ndarray, win_length: int) -> np.ndarray:
    """Autocorrelation tempogram,
    ``librosa.feature.tempogram(onset_envelope=..., win_length=win_length)``.

    Windows of *win_length* frames centred on each frame (the envelope padded by a linear ramp
    to zero), Hann-weighted, autocorrelated through :func:`scipy.fft.rfft`, each column scaled
    to a maximum of 1. Returns shape ``(win_length, n_frames)``.
    """
    n = onset_envelope.shape[-1]
    padded = np.pad(onset_envelope, (int(win_length // 2),) * 2, mode="linear_ramp",
                    end_values=[0, 0])
    odf_frame = frame(padded, win_length, 1)[:, :n]
    windowed = odf_frame * hann_window(win_length)[:, np.newaxis]
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)
    spectrum = scipy.fft.rfft(windowed, n=n_pad, axis=-2)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    autocorr = scipy.fft.irfft(power, n=n_pad, axis=-2)[:win_length]
    return normalize(autocorr, norm=np.inf, axis=-2)


def tempo(onset_envelope: np.ndarray, sr: float = SAMPLE_RATE,
          hop_length: int = HOP_LENGTH) -> float:
    """Global tempo estimate in BPM,
    ``librosa.feature.tempo(onset_envelope=onset_envelope, sr=sr, hop_length=hop_length)[0]``.

    librosa's defaults: the :func:`tempogram` over ``ac_size=8`` seconds of lags, averaged over
    frames, weighted by a log-normal prior around ``start_bpm=120`` (``std_bpm=1`` octave),
    lags faster than ``max_tempo=320`` BPM excluded; the best lag's tempo.
    """
    win_length = int(int(8.0 * sr) // hop_length)  # librosa.time_to_frames(ac_size)
    tg = np.mean(tempogram(onset_envelope, win_length), axis=-1, keepdims=True)
    bpms = tempo_frequencies(win_length, sr=sr, hop_length=hop_length)
    logprior = -0.5 * ((np.log2(bpms) - np.log2(120.0)) / 1.0) ** 2
    logprior[: int(np.argmax(bpms < 320.0))] = -np.inf
    best_period = np.argmax(np.log1p(1e6 * tg) + logprior[:, np.newaxis], axis=-2)
    return float(bpms[best_period[0]])

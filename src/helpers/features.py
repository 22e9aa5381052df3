"""The 58 features of the GTZAN table, computed the way the table computed them.

librosa defaults throughout: 22 050 Hz mono, ``n_fft=2048``, ``hop_length=512``, 20 MFCCs;
each feature is summarised by its mean and variance over frames; ``harmony``/``perceptr`` are
the harmonic and percussive waveforms of ``librosa.effects.hpss``; ``tempo`` comes from
``librosa.beat.beat_track``; ``length`` is the number of samples, as the table stores it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MFCC = 20

_SUMMARISED = (
    "chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
    "zero_crossing_rate", "harmony", "perceptr",
)

#: The 58 feature names of the GTZAN table, in its column order.
FEATURE_COLUMNS: tuple[str, ...] = (
    ("length",)
    + tuple(f"{name}_{stat}" for name in _SUMMARISED for stat in ("mean", "var"))
    + ("tempo",)
    + tuple(f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var"))
)


def extract_signal(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Compute every feature in :data:`FEATURE_COLUMNS` for one mono signal.

    Parameters
    ----------
    y : np.ndarray
        Mono float signal at *sr*.
    sr : int
        Sample rate; must be 22 050 Hz, the table's rate.

    Returns
    -------
    dict
        Feature name to float, in :data:`FEATURE_COLUMNS` order.
    """
    import librosa

    if sr != SAMPLE_RATE:
        raise ValueError(f"sample rate {sr} Hz: features are defined at {SAMPLE_RATE} Hz")
    y = np.asarray(y, dtype=np.float32)
    stats: dict[str, float] = {"length": float(len(y))}

    def summarise(name: str, values: np.ndarray) -> None:
        stats[f"{name}_mean"] = float(np.mean(values))
        stats[f"{name}_var"] = float(np.var(values))

    summarise("chroma_stft", librosa.feature.chroma_stft(y=y, sr=sr))
    summarise("rms", librosa.feature.rms(y=y))
    summarise("spectral_centroid", librosa.feature.spectral_centroid(y=y, sr=sr))
    summarise("spectral_bandwidth", librosa.feature.spectral_bandwidth(y=y, sr=sr))
    summarise("rolloff", librosa.feature.spectral_rolloff(y=y, sr=sr))
    summarise("zero_crossing_rate", librosa.feature.zero_crossing_rate(y))
    harmonic, percussive = librosa.effects.hpss(y)
    summarise("harmony", harmonic)
    summarise("perceptr", percussive)
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    stats["tempo"] = float(np.atleast_1d(tempo)[0])
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    for i, row in enumerate(mfcc, start=1):
        summarise(f"mfcc{i}", row)
    return {name: stats[name] for name in FEATURE_COLUMNS}


def extract_file(path, offset: float = 0.0, duration: float | None = None) -> dict[str, float]:
    """Compute the table's features for one window of one audio file.

    Parameters
    ----------
    path : path-like
        Any audio file librosa can decode.
    offset : float
        Start of the window in seconds.
    duration : float or None
        Length of the window in seconds; ``None`` reads to the end of the file.

    Returns
    -------
    dict
        Every name in :data:`FEATURE_COLUMNS` mapped to a float.
    """
    from helpers.audio import load_audio

    y = load_audio(path, offset=offset, duration=duration)
    return extract_signal(y, SAMPLE_RATE)


def as_row(features: Mapping[str, float]) -> np.ndarray:
    """Return *features* as a 1-D array in :data:`FEATURE_COLUMNS` order."""
    return np.array([features[name] for name in FEATURE_COLUMNS], dtype=float)

"""Decode audio files into the mono 22 050 Hz signal the features are defined on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.errors import AudioError
from helpers.features import SAMPLE_RATE


def load_audio(path, offset: float = 0.0, duration: float | None = None,
               sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode one window of an audio file to mono float32 at *sr*.

    Raises
    ------
    AudioError
        The file is missing, empty or cannot be decoded.
    """
    import librosa

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty")
    try:
        y, _ = librosa.load(path, sr=sr, mono=True, offset=offset, duration=duration)
    except Exception as exc:  # decoders raise many types; the user needs one
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from exc
    if y.size == 0:
        raise AudioError(path, "no audio samples in the requested window")
    return y.astype(np.float32, copy=False)

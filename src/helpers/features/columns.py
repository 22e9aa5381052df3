"""The names of the feature columns, in the GTZAN table's order (no computation here).

:data:`FEATURE_COLUMNS` are the table's 58 columns (``length``, ``chroma_stft_mean``, ...
``tempo``, ``mfcc1_mean``, ... ``mfcc20_var``); :data:`MODEL_FEATURES` the 57 a genre model
uses (all but ``length``); :data:`EXTENDED_COLUMNS` the 148 of the ``extended`` set. Modules that
need only the names import this one, which loads nothing but the standard library.
"""

from __future__ import annotations

from helpers.constants import N_MFCC

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

"""Features: numbers that describe a window of audio, and extracting them from many files.

Lower first: ``columns`` (the GTZAN table's column names), ``kernels`` and ``spectral`` (numba
and numpy building blocks of librosa's functions), ``gtzan`` (the 58 columns of one signal),
``musicnn`` (the pretrained tag networks and their embedding), ``sets`` (the feature-set
registry: ``gtzan``, ``extended``, ``musicnn``, ``gtzan+musicnn``), ``windows`` (file -> feature rows, one windowing policy),
``batch`` (folders, in parallel, cached), ``plots`` and ``exploration``. Names are handed on
lazily: importing this package loads none of them.
"""

import lazy_loader as lazy

from helpers.constants import SAMPLE_RATE  # noqa: F401 (the rate every consumer asks about)

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "batch", "columns", "exploration", "gtzan", "kernels", "plots", "sets", "spectral",
    "windows",
], submod_attrs={
    "columns": ["EXTENDED_COLUMNS", "FEATURE_COLUMNS", "MODEL_FEATURES", "PITCH_CLASSES"],
    "gtzan": ["HPSS_KERNEL", "estimate_tuning", "extract_signal", "extract_signal_librosa",
              "hpss_from_stft", "import_libraries", "spectral_shape", "tempo", "warm_cache",
              "zero_crossing_rate"],
    "sets": ["FeatureSet", "combine_feature_sets", "feature_columns", "feature_set",
             "feature_set_names", "feature_set_rate", "register_feature_set"],
    "windows": ["as_row", "extract_file", "parity_table", "window_features"],
})

"""musicnn (Pons & Serra 2019) without TensorFlow: music tags and embeddings on numpy.

A port of the pretrained ``MTT_musicnn`` and ``MSD_musicnn`` networks of the musicnn 0.1.0
package: same front end (16 kHz, 96-band log-mel, 3-s patches), same architecture, same
weights (converted once from the wheel's TF1 checkpoints and shipped in ``weights/``, ISC
licence). On the original's own log-mel input it reproduces its taggram to about 1e-6 and its
penultimate layer to about 1e-5 (``tests/test_musicnn.py``).

Public API
----------
load_model(name)            the network with its weights, cached per process
logmel_patches(signal)      16 kHz mono signal -> ``(n, 187, 96)`` network input
MusicnnNetwork.forward      patches -> taggram, penultimate and the extractor's other features
song_tags(path)             a whole file -> :class:`SongTags` (taggram, embeddings, times)
signal_embedding(signal)    the ``musicnn`` feature set: mean MSD_musicnn penultimate of a window
MODELS                      ``("MTT_musicnn", "MSD_musicnn")``

Modules: :mod:`~helpers.features.musicnn.checkpoint` (TF1 checkpoint reader),
:mod:`~helpers.features.musicnn.convert` (the one-off converter), :mod:`~helpers.features.musicnn.frontend`,
:mod:`~helpers.features.musicnn.network`, :mod:`~helpers.features.musicnn.weights`, :mod:`~helpers.features.musicnn.song`.
Importing this package is cheap: the submodules load on first use. The subpackage imports
only numpy, scipy, soxr, soundfile, threadpoolctl, :mod:`helpers.audio`, ``errors``,
``constants``, ``paths`` and the mel filter bank of :mod:`helpers.features.spectral` (no numba),
and refers to its own modules relatively; its weights ship as the ``package-data`` entry
``features/musicnn/weights/*`` of ``pyproject.toml``.

Examples
--------
>>> from helpers.features import musicnn
>>> result = musicnn.song_tags("song.ogg")  # doctest: +SKIP
>>> result.top_tags("MSD_musicnn", 3)  # doctest: +SKIP
[('electronic', 0.41), ('ambient', 0.33), ('chillout', 0.28)]
"""

from __future__ import annotations

import importlib

MODELS = ("MTT_musicnn", "MSD_musicnn")
#: Sample rate of the networks' input.
SAMPLE_RATE = 16000
#: The network whose penultimate layer is the ``musicnn`` feature set (see ``embedding``).
EMBEDDING_MODEL = "MSD_musicnn"
#: Length of the penultimate layer.
EMBEDDING_SIZE = 200
#: The ``musicnn`` feature set's columns: ``musicnn_msd_0`` ... ``musicnn_msd_199``.
EMBEDDING_COLUMNS = tuple(f"musicnn_msd_{i}" for i in range(EMBEDDING_SIZE))
#: The modules that compute tags and embeddings from decoded audio (cache keys hold their source,
#: :func:`helpers.cache.code_fingerprint`).
PORT_MODULES = tuple(f"{__name__}.{name}" for name in ("frontend", "network", "resampler", "song",
                                                        "weights", "embedding"))
#: Command-line vocabulary names -> the networks whose tags they are.
VOCABULARIES = {"mtt": ("MTT_musicnn",), "msd": ("MSD_musicnn",), "both": MODELS}

_LAZY = {
    "load_model": "song", "song_tags": "song", "SongTags": "song",
    "logmel_patches": "frontend", "logmel": "frontend", "patch_hop": "frontend",
    "MusicnnNetwork": "network", "OUTPUTS": "network", "release_scratch": "network",
    "CheckpointReader": "checkpoint",
    "signal_embedding": "embedding", "extract_embedding": "embedding",
    "MIN_TAG_SECONDS": "song",
}

__all__ = ["EMBEDDING_COLUMNS", "EMBEDDING_MODEL", "EMBEDDING_SIZE", "MODELS", "PORT_MODULES",
           "SAMPLE_RATE", "VOCABULARIES", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

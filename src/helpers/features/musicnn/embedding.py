"""The musicnn embedding of one window of audio: the feature set ``musicnn``.

A window (a 16 kHz mono signal, as :func:`helpers.features.window_features` decodes it for a
set whose rate is 16 kHz) is cut into musicnn's 3-s patches (187 frames, no overlap, the
trailing partial patch dropped), ``MSD_musicnn`` runs on them, and the window's embedding is the
mean of the patches' ``penultimate`` vectors (200 numbers; the batch-normalised dense layer
before the tag outputs). A 30-s window holds ten patches; a window shorter than one patch
(2.976 s, stated as 3 s) has no embedding and gets the "too short" reason.

Why MSD_musicnn's layer: its 50 last.fm tags name genres (rock, pop, jazz, blues, Hip-Hop,
electronic, country, metal, ...), so its last hidden layer is shaped to tell genres apart; on
GTZAN clips its song-mean penultimate vector agrees with the genre of its nearest neighbour
0.81 of the time against 0.70 for the 58 table features. One network (not both) keeps the
cost of a window at half that of the tags.

The window is not equalised the way :func:`helpers.features.musicnn.song_tags` equalises a
whole file to match the original's resampler (the window only knows its 16 kHz samples), so a
window's embedding differs slightly from the song-level one; every row of the set is made the
same way, which is what a model trained on the set needs.

Examples
--------
>>> import numpy as np
>>> from helpers.features.musicnn.embedding import signal_embedding
>>> signal_embedding(np.zeros(16000 * 6, np.float32)).shape  # doctest: +SKIP
(200,)
"""

from __future__ import annotations

import numpy as np

from helpers.audio.checks import too_short_reason
from helpers.errors import AudioError

from . import EMBEDDING_COLUMNS, EMBEDDING_MODEL, EMBEDDING_SIZE
from .frontend import MIN_SAMPLES, SR, logmel_patches
from .song import MIN_TAG_SECONDS, load_model


def signal_embedding(y: np.ndarray, sr: int = SR, model: str = EMBEDDING_MODEL) -> np.ndarray:
    """Return the mean ``penultimate`` vector of *model* over the 3-s patches of *y*.

    Parameters
    ----------
    y : np.ndarray
        Mono signal at 16 kHz.
    sr : int
        Its rate; must be 16 000.
    model : str
        ``"MSD_musicnn"`` (the set's) or ``"MTT_musicnn"``.

    Returns
    -------
    np.ndarray
        ``(200,)`` float64.

    Raises
    ------
    helpers.errors.AudioError
        *y* is shorter than one patch (``"too short: ... tags need at least 3 s"``; the
        caller names the file).
    ValueError
        *sr* is not 16 000.
    """
    if sr != SR:
        raise ValueError(f"musicnn embeddings are defined at {SR} Hz, got {sr} Hz")
    y = np.asarray(y, dtype=np.float32)
    if len(y) < MIN_SAMPLES:
        raise AudioError("window", too_short_reason(len(y) / SR, MIN_TAG_SECONDS, "tags"))
    patches = logmel_patches(y)
    penultimate = load_model(model).forward(patches, ("penultimate",))["penultimate"]
    return penultimate.mean(axis=0, dtype=np.float64)


def extract_embedding(y: np.ndarray, sr: int) -> np.ndarray:
    """The ``musicnn`` feature set's extractor (:class:`helpers.features.sets.FeatureSet`)."""
    return signal_embedding(y, sr)


__all__ = ["EMBEDDING_COLUMNS", "EMBEDDING_MODEL", "EMBEDDING_SIZE", "extract_embedding",
           "signal_embedding"]

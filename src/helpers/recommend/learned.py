"""Recommendations that hear music: libraries in musicnn's tag or embedding space.

:func:`learned_library` builds a :class:`~helpers.recommend.recommender.Library` over audio files
in one of three spaces, so the same recommender, exclusions and evaluation serve all of them:

``"features"``
    the 58 GTZAN-table features (the rows of the embedded table, for GTZAN clips);
``"tags"``
    musicnn's song-mean tags, MTT's 50 then MSD's 50 (:func:`helpers.features.learned.song_vectors`);
``"embedding"``
    musicnn's song-mean penultimate layers (200 + 200).

Every library carries the songs' tags, so every reason names the tags the recommended song shares
with the liked one ("both: electronic, techno, synth"), whichever space chose it. The default space
is ``"embedding"``: on the 96 GTZAN clips with audio (notebook 07) a clip's nearest clip by another
artist shares its genre 0.767 of the time there, against 0.583 with the 58 features (paired
difference +0.183, 95% interval [+0.067, +0.300]) and 0.683 with the tags; on simulated users it
keeps more of the list in the users' genres by new artists (+0.021 [+0.009, +0.032]), while
precision@10 does not separate (+0.005 [-0.000, +0.011]).
:func:`audio_seeds` turns liked audio files into the external rows
:meth:`~helpers.recommend.recommender.Recommender.recommend` takes.

Examples
--------
>>> from helpers.features.learned import gtzan_clips_with_audio
>>> from helpers.recommend.learned import learned_library, audio_seeds
>>> clips = gtzan_clips_with_audio("../shared/data")  # doctest: +SKIP
>>> library = learned_library(clips, "tags")  # doctest: +SKIP
>>> seeds = audio_seeds(["data/music/singularity_coherence.ogg"], library)  # doctest: +SKIP
>>> Recommender(library).recommend([], external=seeds, k=3)[0].reason  # doctest: +SKIP
"near 'singularity_coherence' (...) in the musicnn tag space — shares both: techno, electronic, synth"
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.data import load_gtzan_table
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.features.learned import song_vectors
from helpers.recommend.recommender import Library

#: The spaces :func:`learned_library` builds, in the order reports compare them.
LIBRARY_SPACES = ("features", "tags", "embedding")


def learned_library(clips: pd.DataFrame, space: str = "embedding", tags: pd.DataFrame | None = None) -> Library:
    """A library of audio clips in *space* (:data:`LIBRARY_SPACES`), with their tags for reasons.

    Parameters
    ----------
    clips : pandas.DataFrame
        ``id``, ``path``, ``genre``, ``artist``, ``title`` per song (e.g.
        :func:`helpers.features.learned.gtzan_clips_with_audio`). The ``"features"`` space reads
        the 58 features of each id from the embedded GTZAN table, so it needs GTZAN ids.
    space : str
        Default ``"embedding"`` (the space measured best, see above).
    tags : pandas.DataFrame, optional
        The clips' song-level tags (:func:`~helpers.features.learned.song_vectors` ``"tags"``,
        indexed by id), when already at hand; default: computed (cached) from ``path``.

    Raises
    ------
    InputError
        An unknown space, or a ``"features"`` library of songs the GTZAN table lacks.
    """
    if space not in LIBRARY_SPACES:
        raise InputError(space, f"unknown library space; choose {', '.join(LIBRARY_SPACES)}")
    ids = clips["id"].astype(str).tolist()
    tags = song_vectors(clips["path"], "tags", ids=ids) if tags is None else tags.loc[ids]
    meta = clips[["id", "artist", "title", "genre"]].astype(str).reset_index(drop=True)
    if space == "features":
        table = load_gtzan_table().set_index("filename")
        missing = [i for i in ids if i not in table.index]
        if missing:
            raise InputError(missing[0], "not a clip of the GTZAN table: the 58-feature library needs table rows")
        features = table.loc[ids, list(MODEL_FEATURES)].reset_index(drop=True)
        return Library(pd.concat([meta, features], axis=1), feature_columns=list(MODEL_FEATURES),
                       space="features", tags=tags)
    vectors = tags if space == "tags" else song_vectors(clips["path"], space, ids=ids)
    table = pd.concat([meta, vectors.reset_index(drop=True)], axis=1)
    return Library(table, feature_columns=list(vectors.columns), space=space, tags=tags)


def audio_seeds(paths, library: Library) -> pd.DataFrame:
    """Liked audio files as external rows for *library*: its feature columns plus the tags.

    Only learned libraries (``"tags"``, ``"embedding"``) take audio this way; a ``"features"``
    library's rows come from :func:`helpers.recommend.recommender.song_features`.
    """
    if library.space not in ("tags", "embedding"):
        raise InputError(library.space, "audio seeds need a library in the tag or embedding space")
    paths = [Path(p) for p in paths]
    ids = [p.name for p in paths]
    tags = song_vectors(paths, "tags", ids=ids)
    vectors = tags if library.space == "tags" else song_vectors(paths, library.space, ids=ids)
    rows = vectors if library.space == "tags" else pd.concat([vectors, tags], axis=1)
    meta = pd.DataFrame({"id": ids, "artist": "", "title": [p.stem for p in paths], "genre": ""}, index=ids)
    return pd.concat([meta, rows], axis=1).reset_index(drop=True)

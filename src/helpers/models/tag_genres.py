"""Genres from musicnn tags, with no training: a documented mapping from tags to genres.

musicnn's two taggers name genres directly (MSD: ``rock``, ``jazz``, ``Hip-Hop``, ``House`` ...;
MTT: ``classical``, ``techno``, ``metal`` ...). :data:`TAG_GENRES` maps each genre to the tags
that name it, for GTZAN's ten genres and for genres GTZAN lacks (:data:`EXTRA_GENRES`). A song's
score for a genre is the mean, over that genre's tags, of the song-level tag probability (the
taggram's mean over 3-s patches); the genre is the one with the highest score. Nothing is fitted
on GTZAN or any other labelled audio, so a measured accuracy of this mapping on GTZAN clips is out
of sample by construction. ``docs/learned-genres.md`` gives the mapping as a table with the
reasons for each choice.

Two genres are special:

* ``reggae`` has **no tag** in either vocabulary; it scores 0 and is never chosen.
* a tag may name more than one genre (MSD ``dance`` names ``dance`` and ``disco``); the mean
  keeps the genres apart: a song is ``disco`` when its ``70s`` and ``funk`` tags are high *as
  well as* ``dance``.

Examples
--------
>>> import numpy as np
>>> from helpers.models.tag_genres import genre_scores, GENRES
>>> tags = {"MSD_musicnn": {"jazz": 0.6}, "MTT_musicnn": {"piano": 0.4}}
>>> scores = genre_scores(tags)
>>> max(scores, key=scores.get)
'jazz'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from helpers.errors import InputError

MTT, MSD = "MTT_musicnn", "MSD_musicnn"

#: The ten GTZAN genres.
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                "reggae", "rock")

#: Genres GTZAN lacks that the tag vocabularies name.
EXTRA_GENRES = ("electronic", "house", "alternative", "dance", "ambient", "punk", "folk",
                "soul/rnb", "funk")

#: Every genre the mapping can answer, GTZAN's first.
GENRES = GTZAN_GENRES + EXTRA_GENRES

#: Genre -> the (model, tag) pairs that name it. Tags are spelled as the models spell them.
TAG_GENRES: dict[str, tuple[tuple[str, str], ...]] = {
    "blues": ((MSD, "blues"),),
    "classical": ((MTT, "classical"), (MTT, "classic")),
    "country": ((MSD, "country"), (MTT, "country")),
    "disco": ((MSD, "70s"), (MSD, "dance"), (MSD, "funk")),
    "hiphop": ((MSD, "Hip-Hop"),),
    "jazz": ((MSD, "jazz"),),
    "metal": ((MSD, "metal"), (MSD, "heavy metal"), (MTT, "metal")),
    "pop": ((MSD, "pop"), (MTT, "pop")),
    "reggae": (),
    "rock": ((MSD, "rock"), (MSD, "classic rock"), (MSD, "hard rock"), (MTT, "rock")),
    "electronic": ((MSD, "electronic"), (MSD, "electronica"), (MTT, "electronic"), (MTT, "techno")),
    "house": ((MSD, "House"),),
    "alternative": ((MSD, "alternative"), (MSD, "alternative rock")),
    "dance": ((MSD, "dance"), (MTT, "dance"), (MSD, "party")),
    "ambient": ((MSD, "ambient"), (MTT, "ambient"), (MSD, "chillout")),
    "punk": ((MSD, "punk"),),
    "folk": ((MSD, "folk"),),
    "soul/rnb": ((MSD, "soul"), (MSD, "rnb")),
    "funk": ((MSD, "funk"),),
}


def mapping_table() -> pd.DataFrame:
    """The mapping as a table: one row per (genre, model, tag); a genre without tags has one
    row with an empty tag."""
    rows = []
    for genre in GENRES:
        pairs = TAG_GENRES[genre] or ((None, None),)
        rows += [{"genre": genre, "model": model or "", "tag": tag or ""} for model, tag in pairs]
    return pd.DataFrame(rows, columns=["genre", "model", "tag"])


def _tag_lookup(song_tags) -> Mapping[str, Mapping[str, float]]:
    """Per model, tag -> song-level probability, from a SongTags or a nested mapping."""
    if hasattr(song_tags, "mean_tags"):
        return {m: dict(zip(song_tags.tags[m], song_tags.mean_tags(m).tolist(), strict=True))
                for m in song_tags.models}
    return song_tags


def genre_scores(song_tags, genres=GENRES) -> dict[str, float]:
    """Score every genre of *genres* for one song: the mean probability of the genre's tags.

    Parameters
    ----------
    song_tags : SongTags or mapping
        :class:`helpers.features.musicnn.SongTags`, or ``{model: {tag: probability}}`` with the
        song-level probabilities (missing tags count as 0).
    genres : sequence of str
        Genres to score (default :data:`GENRES`; :data:`GTZAN_GENRES` for a closed-set answer).

    Returns
    -------
    dict
        Genre -> score in [0, 1]; 0 for a genre without tags.

    Raises
    ------
    InputError
        A genre the mapping does not know.
    """
    lookup = _tag_lookup(song_tags)
    scores = {}
    for genre in genres:
        if genre not in TAG_GENRES:
            raise InputError(genre, f"no tag mapping for this genre; choose from {', '.join(GENRES)}")
        pairs = TAG_GENRES[genre]
        values = [float(lookup.get(model, {}).get(tag, 0.0)) for model, tag in pairs]
        scores[genre] = float(np.mean(values)) if values else 0.0
    return scores


def predict_genre(song_tags, genres=GENRES) -> tuple[str, float]:
    """The best-scoring genre of one song and its score (ties: the earlier genre of *genres*)."""
    scores = genre_scores(song_tags, genres)
    best = max(genres, key=lambda g: (scores[g], -list(genres).index(g)))
    return best, scores[best]


def score_matrix(tag_table: pd.DataFrame, genres=GENRES) -> pd.DataFrame:
    """Genre scores of many songs at once.

    Parameters
    ----------
    tag_table : pandas.DataFrame
        One row per song with ``mtt:<tag>`` / ``msd:<tag>`` columns
        (:func:`helpers.features.learned.song_vectors` in the ``"tags"`` space).
    genres : sequence of str

    Returns
    -------
    pandas.DataFrame
        Same index, one column per genre.
    """
    prefix = {MTT: "mtt", MSD: "msd"}
    out = {}
    for genre in genres:
        if genre not in TAG_GENRES:
            raise InputError(genre, f"no tag mapping for this genre; choose from {', '.join(GENRES)}")
        columns = [f"{prefix[m]}:{t}" for m, t in TAG_GENRES[genre]]
        missing = [c for c in columns if c not in tag_table.columns]
        if missing:
            raise InputError(missing[0], "tag table lacks a tag the genre mapping uses")
        out[genre] = tag_table[columns].mean(axis=1) if columns else pd.Series(0.0, index=tag_table.index)
    return pd.DataFrame(out, index=tag_table.index)


def predict_table(tag_table: pd.DataFrame, genres=GENRES) -> pd.Series:
    """The best-scoring genre of every song of *tag_table* (ties: the earlier genre)."""
    scores = score_matrix(tag_table, genres)
    return pd.Series(np.asarray(genres, dtype=object)[scores.to_numpy().argmax(axis=1)],
                     index=tag_table.index, name="genre")

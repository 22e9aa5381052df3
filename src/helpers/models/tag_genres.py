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


#: "None of the known genres" from the tags, for songs analysed from audio
#: (:func:`open_set_decision`): a song whose best tag-genre score among the genres the model knows
#: is below this threshold is flagged. It is the 10th percentile of that score over the 86 GTZAN
#: clips with audio whose genre has tags, all ten genres known (:func:`open_set_threshold`;
#: ``tests/test_learned_open_set.py`` recomputes it from the clips).
OPEN_SET_THRESHOLD = 0.1506
#: The verdict's rates out of sample: leave one genre out on the 96 GTZAN clips with audio, each
#: threshold fitted on clips of other genres and other artists, songs the 58-feature model puts
#: in a genre without tags decided by the 58 features
#: (:func:`helpers.evaluation.learned.with_tag_verdict`; docs/open-set.md has the intervals).
OPEN_SET_FALSE_FLAG_RATE = 0.126
OPEN_SET_DETECTION_RATE = 0.365


def has_tags(genre: str) -> bool:
    """Whether the mapping has tags for *genre* (so a song's tags can vouch for it)."""
    return bool(TAG_GENRES.get(genre))


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


def open_set_threshold(tag_table: pd.DataFrame, genres, rate: float = 0.10,
                       known=GTZAN_GENRES) -> float:
    """The *rate* quantile of the best tag-genre score among *known* genres, over the songs of
    *tag_table* whose genre (*genres*, one per row) has tags: :data:`OPEN_SET_THRESHOLD` for
    GTZAN clips."""
    vouched = np.array([has_tags(g) for g in genres])
    if not vouched.any():
        raise InputError("genres", "no song of a genre with tags to fit a threshold on")
    best = score_matrix(tag_table, [g for g in known if has_tags(g)]).max(axis=1).to_numpy()
    return float(np.quantile(best[vouched], rate))


def open_set_decision(scores: Mapping[str, float], known_genres, predicted: str,
                      threshold: float = OPEN_SET_THRESHOLD) -> dict | None:
    """Whether a song is none of the *known_genres*, from its tag-genre *scores*.

    Parameters
    ----------
    scores : mapping
        Genre -> the song's tag-genre score (:func:`genre_scores`); genres missing count as 0.
    known_genres : sequence of str
        The genres the model knows; those without tags are left out of the best score.
    predicted : str
        The genre the model gives the song. When it has no tags (reggae, a genre the mapping
        does not name), the tags cannot vouch for it and no decision is made.
    threshold : float
        Flag when the best score is below it.

    Returns
    -------
    dict or None
        ``genre`` (the best-scoring known genre), ``score``, ``threshold``, ``flagged``,
        ``false_flag_rate``, ``detection_rate``; None when the tags cannot decide.
    """
    vouched = [g for g in known_genres if has_tags(g)]
    if not has_tags(predicted) or not vouched:
        return None
    best = max(vouched, key=lambda g: (scores.get(g, 0.0), -vouched.index(g)))
    score = float(scores.get(best, 0.0))
    return {"genre": best, "score": round(score, 4), "threshold": threshold,
            "flagged": score < threshold, "false_flag_rate": OPEN_SET_FALSE_FLAG_RATE,
            "detection_rate": OPEN_SET_DETECTION_RATE}


def predict_table(tag_table: pd.DataFrame, genres=GENRES) -> pd.Series:
    """The best-scoring genre of every song of *tag_table* (ties: the earlier genre)."""
    scores = score_matrix(tag_table, genres)
    return pd.Series(np.asarray(genres, dtype=object)[scores.to_numpy().argmax(axis=1)],
                     index=tag_table.index, name="genre")

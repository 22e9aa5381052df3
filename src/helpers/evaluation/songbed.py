"""Your songs as a test bed: whole-song accuracy of a genre model on songs you labelled.

The original study set out to check its model on real songs beyond GTZAN. A *test bed* is a
list of songs with a genre each, from a label store (its currently labelled songs whose audio
file is readable) or from a CSV with columns ``path,genre`` (relative paths are read from the
CSV's folder). Every song is predicted whole (:func:`helpers.predict.predict_song`); then

* songs of a genre the model knows give the accuracy, per genre and overall, with exact (Clopper-Pearson) 95%
  intervals (none below five songs: too few to say), and the confusion table;
* songs of a genre the model does not know cannot be right or wrong: they count toward the
  **flagged rate**, the share the model reported as "none of the known genres"
  (:meth:`helpers.predict.SongPrediction.is_uncertain`); the same share among known-genre songs
  is the rate of wrong flags.

Examples
--------
>>> from helpers.evaluation.songbed import evaluate_songs
>>> bed = evaluate_songs("my_songs.csv")            # doctest: +SKIP
>>> bed.overall["accuracy"], bed.unknown["flagged_rate"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data import read_user_csv
from helpers.errors import InputError
from helpers.models.card import model_summary
from helpers.models.default import default_model
from helpers.predict import predict_song
from helpers.stats import MIN_N, binomial_interval
from helpers.store import LabelStore, normalise_genre

_SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_store(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == _SQLITE_MAGIC


def load_test_bed(source) -> tuple[pd.DataFrame, list[str]]:
    """Read a test bed: a label store file or a ``path,genre`` CSV.

    Returns
    -------
    (songs, skipped) : a frame with ``path`` and ``genre`` (normalised, lower-case), and one
    line per store song left out (no readable local audio file)

    Raises
    ------
    InputError
        *source* does not exist, is not a readable CSV or store, lacks the ``path`` / ``genre``
        columns, names an audio file that does not exist, or holds no song.
    """

    skipped: list[str] = []
    if isinstance(source, pd.DataFrame):  # an in-memory test bed (notebooks)
        name = "test bed"
        songs = _check_csv_rows(source, name, Path.cwd())
    else:
        name = path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(path, "test bed does not exist (give a label store or a path,genre CSV)")
        if _is_store(path):
            with LabelStore(path) as store:
                labels = store.current_labels()
            rows = []
            for row in labels.itertuples():
                audio = Path(str(row.location))
                if audio.is_file():
                    rows.append({"path": str(audio), "genre": row.genre})
                else:
                    skipped.append(f"{row.filename}: no readable local audio file ({row.location})")
            songs = pd.DataFrame(rows, columns=["path", "genre"])
        else:
            songs = _check_csv_rows(read_user_csv(path, "test-bed CSV"), path, path.parent)
    if songs.empty:
        raise InputError(name, "test bed holds no labelled song with a readable audio file")
    return songs.reset_index(drop=True), skipped


def _check_csv_rows(frame: pd.DataFrame, name, folder: Path) -> pd.DataFrame:
    """Validate ``path,genre`` rows: columns present, files exist (relative to *folder*)."""

    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in ("path", "genre") if c not in frame.columns]
    if missing:
        raise InputError(name, f"test-bed CSV lacks the column(s) {', '.join(missing)} "
                               "(expected path,genre)")
    songs = frame[["path", "genre"]].dropna().copy()
    resolved = []
    for value in songs["path"].astype(str):
        audio = Path(value.strip()).expanduser()
        audio = audio if audio.is_absolute() else folder / audio
        if not audio.is_file():
            raise InputError(audio, f"audio file listed in {Path(str(name)).name} does not exist")
        resolved.append(str(audio))
    songs["path"] = resolved
    songs["genre"] = [normalise_genre(str(g)) for g in songs["genre"]]
    return songs.reset_index(drop=True)


#: Fewest songs a share is given an interval for; below it, "too few to say".
MIN_SONGS = MIN_N


def _rate(values, seed=None) -> dict:
    """Share of True in *values* with its exact 95% interval (None below :data:`MIN_SONGS`)."""
    values = np.asarray(values, dtype=bool)
    if not values.size:
        return {"rate": None, "ci95": None, "n": 0}
    interval = binomial_interval(int(values.sum()), values.size) if values.size >= MIN_SONGS else None
    return {"rate": round(float(values.mean()), 4),
            "ci95": None if interval is None else [round(v, 4) for v in interval],
            "n": int(values.size)}


@dataclass
class TestBedResult:
    """Whole-song results on a test bed (see :func:`evaluate_songs`)."""

    __test__ = False  # not a pytest test class

    songs: pd.DataFrame  # path, genre, predicted, confidence, uncertain, known, correct
    overall: dict  # accuracy on known-genre songs (+ ci95, n), wrong-flag rate
    per_genre: pd.DataFrame  # genre, known, n, accuracy, ci95, flagged_rate
    unknown: dict  # flagged rate of songs of genres the model does not know (+ ci95, n)
    confusion: pd.DataFrame  # true genre x predicted genre (counts)
    model: dict
    skipped: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the JSON-ready document printed by ``music-study evaluate --songs --json``."""
        return {"model": self.model, "overall": self.overall, "unknown_genres": self.unknown,
                "per_genre": json.loads(self.per_genre.to_json(orient="records")),
                "confusion": {str(k): {str(p): int(n) for p, n in v.items()}
                              for k, v in self.confusion.to_dict(orient="index").items()},
                "songs": json.loads(self.songs.to_json(orient="records")),
                "skipped": self.skipped}


def evaluate_songs(source, model=None, window_seconds: float = 30.0, seed: int = 0) -> TestBedResult:
    """Predict every song of a test bed and score the model on it.

    Parameters
    ----------
    source : path-like or pandas.DataFrame
        A label store (SQLite), a CSV with columns ``path,genre``, or such a frame.
    model : fitted classifier, optional
        Default :func:`helpers.models.default_model`.
    window_seconds : float
        Window length of the whole-song prediction.
    seed : int
        Seed of the bootstrap intervals.

    Returns
    -------
    TestBedResult

    Raises
    ------
    InputError
        A bad test bed (see :func:`load_test_bed`) or a song that cannot be predicted.
    """

    songs, skipped = load_test_bed(source)
    model = default_model() if model is None else model
    return score_test_bed(songs, model, skipped, window_seconds=window_seconds, seed=seed)


def score_test_bed(songs: pd.DataFrame, model, skipped=(), window_seconds: float = 30.0,
                   seed: int = 0) -> TestBedResult:
    """Predict every song of a test bed already read by :func:`load_test_bed` and score *model*.

    Parameters
    ----------
    songs : pandas.DataFrame
        ``path`` and ``genre`` per song (the first result of :func:`load_test_bed`).
    model : fitted classifier
    skipped : sequence of str
        Songs left out of the test bed (its second result), reported as they are.
    window_seconds, seed
        As in :func:`evaluate_songs`.

    Returns
    -------
    TestBedResult

    Raises
    ------
    InputError
        A song that cannot be predicted.
    """

    known_genres = set(map(str, model.classes_))
    rows = []
    for song in songs.itertuples():
        prediction = predict_song(song.path, model=model, window_seconds=window_seconds)
        rows.append({"path": song.path, "genre": song.genre, "predicted": prediction.genre,
                     "confidence": round(prediction.confidence, 4),
                     "uncertain": prediction.is_uncertain(), "known": song.genre in known_genres})
    table = pd.DataFrame(rows)
    table["correct"] = table["known"] & (table["genre"] == table["predicted"])
    known = table[table["known"]]
    accuracy = _rate(known["correct"], seed)
    wrong_flags = _rate(known["uncertain"], seed)
    overall = {"accuracy": accuracy["rate"], "ci95": accuracy["ci95"], "n": accuracy["n"],
               "wrong_flag_rate": wrong_flags["rate"], "wrong_flag_ci95": wrong_flags["ci95"]}
    flagged = _rate(table.loc[~table["known"], "uncertain"], seed)
    unknown = {"flagged_rate": flagged["rate"], "ci95": flagged["ci95"], "n": flagged["n"],
               "genres": sorted(set(table.loc[~table["known"], "genre"]))}
    per_genre = []
    for genre, part in table.groupby("genre", sort=True):
        is_known = bool(part["known"].iloc[0])
        score = _rate(part["correct"], seed) if is_known else {"rate": None, "ci95": None}
        per_genre.append({"genre": genre, "known": is_known, "n": len(part),
                          "accuracy": score["rate"], "ci95": score["ci95"],
                          "flagged_rate": round(float(part["uncertain"].mean()), 4)})
    confusion = pd.crosstab(table["genre"], table["predicted"]).rename_axis(
        index="true genre", columns="predicted")
    return TestBedResult(songs=table, overall=overall, per_genre=pd.DataFrame(per_genre),
                         unknown=unknown, confusion=confusion, model=model_summary(model),
                         skipped=list(skipped))

"""Genre models on any feature set, trained on the GTZAN audio at hand.

The default model reads the 58 columns of the embedded GTZAN table, which needs no audio. A
model on another feature set (``musicnn``, ``gtzan+musicnn``) must be trained on audio:
:func:`feature_set_model` returns the one cached for the set (``data/models/<set>-logreg.skops``)
or trains it from the GTZAN clips with audio it finds (:func:`training_folders`: the folder
``$MUSIC_STUDY_GTZAN_AUDIO`` points at, else the clips of ``../shared/data/gtzan``), and refuses
with one line naming the remedy when there are none.

The recipe is multinomial logistic regression after standardisation, the ``*_var`` columns of
a combined set's GTZAN part logged first (:func:`helpers.models.pipelines.make_logreg` with
``"log-variance"``: the ``logreg`` candidate's Yeo-Johnson step costs about 1.5 s per fit on
200 columns and the embedding is batch-normalised already), on one row per clip (each clip described whole, as the table
describes its clips). Its honest figure is artist-grouped cross-validation over the training
clips (no artist in two folds; GTZAN repeats artists), with a bootstrap 95% interval, on the
model card as ``test_accuracy`` / ``test_ci95`` / ``test_split``. The clips of
``../shared/data/gtzan`` are few and many of their genres are one artist (blues: John Lee
Hooker, reggae: Bob Marley), so with artists kept apart such a genre is never seen in training
when it is tested: that figure is low by construction and says how far the model carries to
new artists, not how good the set is.

Examples
--------
>>> from helpers.models.learned import feature_set_model
>>> model = feature_set_model("musicnn")  # doctest: +SKIP
>>> model.model_card_["feature_set"], model.model_card_["test_split"]  # doctest: +SKIP
('musicnn', 'artist-grouped 5-fold CV')
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, cross_val_predict

from helpers import data, stats
from helpers.errors import InputError
from helpers.features.batch import extract_table
from helpers.features.sets import feature_set
from helpers.models.card import library_versions
from helpers.models.files import load_model, model_metadata, save_model
from helpers.models.pipelines import make_logreg
from helpers.models.training import table_fingerprint
from helpers.paths import data_dir, gtzan_audio_dir, shared_data_dir

#: The name of the recipe every feature-set model is fitted with (:func:`recipe`).
RECIPE = "logreg"
#: Bumped when the recipe or the card changes, so cached files are rebuilt.
LEARNED_CARD_VERSION = 2
#: Folds of the artist-grouped cross-validation (fewer when there are fewer artists).
N_SPLITS = 5


def recipe():
    """A fresh, unfitted pipeline of the recipe."""
    return make_logreg("log-variance")


def feature_set_model_path(name: str) -> Path:
    """Where the model of feature set *name* is cached: ``data/models/<name>-logreg.skops``."""
    return data_dir() / "models" / f"{feature_set(name).name}-{RECIPE}.skops"


def training_folders() -> list[Path]:
    """The GTZAN audio a feature-set model is trained on: ``$MUSIC_STUDY_GTZAN_AUDIO`` (a
    ``<genre>/<genre>.NNNNN.wav`` folder), else ``../shared/data/gtzan/{audio,more_audio}``;
    empty when neither is there."""
    explicit = gtzan_audio_dir()
    if explicit is not None:
        return [explicit]
    shared = shared_data_dir()
    if shared is None:
        return []
    return [folder for folder in (shared / "gtzan" / "audio", shared / "gtzan" / "more_audio")
            if folder.is_dir()]


def gtzan_example_clips(genres=("classical", "disco", "hiphop", "metal"),
                        per_genre: int = 1) -> list[Path]:
    """The first *per_genre* clips of each of *genres* in :func:`training_folders` (sorted by
    name; empty when no GTZAN audio is at hand)."""
    clips = []
    for genre in genres:
        found = sorted(path for folder in training_folders()
                       for path in (folder / genre).glob(f"{genre}.*") if path.is_file())
        clips += found[:per_genre]
    return clips


def no_training_audio_reason(name: str) -> str:
    """The one line of a feature set without a model and without audio to train one."""
    return (f"no genre model for the {name} feature set, and no GTZAN audio to train one: set "
            "MUSIC_STUDY_GTZAN_AUDIO to a GTZAN genres_original folder (<genre>/<genre>.NNNNN.wav), "
            "or pass --model FILE trained on that feature set")


def clip_artists(filenames: pd.Series) -> pd.Series:
    """Artist groups of GTZAN clips whatever their extension (the index names ``.wav`` files)."""
    stems = filenames.map(lambda name: f"{Path(str(name)).stem}.wav")
    return data.artist_groups(stems).set_axis(filenames.index)


def training_table(name: str, folders=None, jobs: int = 1) -> pd.DataFrame:
    """One row per GTZAN clip with audio: ``filename``, the set's columns, ``label``.

    Features come from :func:`helpers.features.batch.extract_table` (cached by content and
    parameters, so a second training reads them back); clips that fail are left out.

    Raises
    ------
    InputError
        No folder, or fewer than two genres among the clips.
    """
    folders = training_folders() if folders is None else list(folders)
    if not folders:
        raise InputError(name, no_training_audio_reason(name))
    result = extract_table(folders, feature_set=name, jobs=jobs, progress=True)
    table = result.table
    if "label" not in table or table["label"].nunique() < 2:
        raise InputError(", ".join(map(str, folders)),
                         "needs <genre>/<file> clips of two or more genres to train a model")
    return table.dropna(subset=["label"]).reset_index(drop=True)


def fit_feature_set_model(table: pd.DataFrame, name: str, seed: int = 0):
    """Fit the recipe on *table* and attach its model card (``model.model_card_``).

    The card's honest figure is artist-grouped cross-validation over *table*'s clips.
    """
    spec = feature_set(name)
    columns = list(spec.columns)
    X, y = table[columns], table["label"].astype(str)
    groups = clip_artists(table["filename"])
    n_splits = min(N_SPLITS, groups.nunique())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fold may miss a genre: that is the honest case
        predicted = cross_val_predict(recipe(), X, y, groups=groups,
                                      cv=GroupKFold(n_splits=n_splits))
        model = recipe().fit(X, y)
    accuracy = float(np.mean(predicted == y.to_numpy()))
    split = f"artist-grouped {n_splits}-fold CV"
    card = {
        "name": f"{RECIPE} on {spec.name}", "feature_set": spec.name,
        "description": f"multinomial logistic regression (standardised, variances logged) on "
                       f"the {spec.name} feature set "
                       f"({len(columns)} columns), trained on {len(table)} GTZAN clips",
        "test_accuracy": round(accuracy, 4),
        "test_ci95": list(stats.accuracy_interval(y.to_numpy(), predicted, seed=seed)),
        "test_split": split, "n_test": len(table), "n_artists": int(groups.nunique()),
        "test_protocol": f"{split} over {len(table)} GTZAN clips with audio, "
                         f"{groups.nunique()} artists, none in two folds; bootstrap 95% "
                         "interval over clips",
        "genres": sorted(y.unique()), "training_fingerprint": table_fingerprint(table, columns),
        "n_training_rows": len(table), "seed": seed, "card_version": LEARNED_CARD_VERSION,
        "open_set": None,
    }
    model.model_card_ = card
    return model


def feature_set_model(name: str, *, retrain: bool = False, folders=None, jobs: int = 1,
                      on_train=None):
    """Return the genre model of feature set *name*: the cached one, or one trained now.

    Parameters
    ----------
    name : str
        A registered feature set (not ``"gtzan"``, whose model is
        :func:`helpers.models.default.default_model`).
    retrain : bool
        Train again even when a model file is cached.
    folders : list of path-like, optional
        Training audio (default :func:`training_folders`).
    jobs : int
        Processes for the feature extraction.
    on_train : callable, optional
        Called with no argument just before a model is trained (a command says so).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted, with ``model_card_`` (its ``feature_set`` names *name*).

    Raises
    ------
    InputError
        Unknown set; no cached model and no GTZAN audio (:func:`no_training_audio_reason`).
    """
    spec = feature_set(name)
    path = feature_set_model_path(spec.name)
    folders = training_folders() if folders is None else [Path(f) for f in folders]
    if path.is_file() and not retrain:
        try:
            model, metadata = load_model(path, expected_columns=spec.columns,
                                         return_metadata=True)
            card = metadata.get("card") or {}
            if (card.get("card_version") == LEARNED_CARD_VERSION
                    and card.get("training_folders") == [str(f) for f in folders]
                    and metadata.get("library_versions") == library_versions()):
                return model
        except InputError as exc:
            warnings.warn(f"retraining the {spec.name} model: {exc}", stacklevel=2)
    if not folders:
        raise InputError(spec.name, no_training_audio_reason(spec.name))
    if on_train is not None:
        on_train()
    table = training_table(spec.name, folders, jobs=jobs)
    model = fit_feature_set_model(table, spec.name)
    model.model_card_["training_folders"] = [str(f) for f in folders]
    try:
        save_model(model, path, model_metadata(model, table, columns=spec.columns,
                                               name=model.model_card_["name"],
                                               card=model.model_card_))
    except OSError as exc:  # a read-only data folder still gets a working model
        warnings.warn(f"could not cache the model at {path}: {exc}", stacklevel=2)
    return model


__all__ = ["RECIPE", "clip_artists", "feature_set_model", "gtzan_example_clips", "feature_set_model_path", "fit_feature_set_model",
           "no_training_audio_reason", "training_folders", "training_table"]

"""Retraining on a person's answers, scored honestly on artists it never saw.

:func:`retrain` fits a model on the GTZAN table plus the label store's current labels and
reports accuracy before and after on a fixed, artist-conscious held-out set. Every such fit goes
through :func:`fit_rows`: by default the recipe of the default genre model (the candidate the
shipped selection chose, :func:`default_recipe`), with its calibration over grouped folds (GTZAN
clips grouped by artist, each labelled song by its artist when the store knows it, else on its
own; adapted when a genre has too few groups: :func:`calibration_folds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from helpers.constants import DEFAULT_GRID, DEFAULT_SEED
from helpers.data import artist_groups, held_out_split, load_gtzan_table
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.features.sets import feature_set as feature_set_spec
from helpers.models import learned
from helpers.models.candidates import get_candidate
from helpers.models.default import selection_result
from helpers.models.files import save_model
from helpers.models.pipelines import build_model
from helpers.models.selection import fit_candidate
from helpers.models.training import table_fingerprint
from helpers.models.tuning import grouped_folds  # imports nothing that imports this module
from helpers.paths import data_dir
from helpers.stats import binomial_interval, mean_interval

#: Fixed held-out set used to compare models before and after retraining.
HELD_OUT_SPLIT = "fault-filtered"

#: The feature set of the embedded GTZAN table (the one a retrain needs no audio for).
TABLE_FEATURE_SET = "gtzan"

#: The recipe of a fit on another feature set's columns: the feature-set models' recipe
#: (:func:`helpers.models.learned.recipe`), since the candidate recipes read the table's 58 columns.
FEATURE_SET_RECIPE = "feature-set logreg"

#: GTZAN clips with audio described by a feature set, by set and training folders (extracted once).
_AUDIO_TABLES: dict[tuple, pd.DataFrame] = {}


#: Calibration folds a calibrated recipe asks for (as :func:`helpers.models.selection.fit_candidate`).
CALIBRATION_FOLDS = 5


def model_fingerprint(model) -> str:
    """Return a short stable hash of a fitted model (recorded with each stored prediction)."""

    return joblib.hash(model)[:16]


def make_estimator(name: str = "knn"):
    """Return an unfitted genre model with ``predict_proba`` (which every strategy needs).

    Parameters
    ----------
    name : str
        ``'logistic'``: standardised logistic regression on the raw features — graded
        probabilities at a fraction of a second per fit, for simulations with hundreds of
        fits. Any other name goes to :func:`helpers.models.pipelines.build_model` (``MODEL_NAMES``).

    Raises
    ------
    InputError
        Unknown name, or a model that cannot give probabilities.
    """

    if name == "logistic":
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000))])
    estimator = build_model(name)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(estimator, "predict_proba") and "probability" in final.get_params():
        final.set_params(probability=True)  # SVC: Platt-scaled probabilities
    if not hasattr(estimator, "predict_proba"):
        raise InputError(name, "model gives no class probabilities; query strategies need them")
    return estimator


#: Held-out sets smaller than this get an exact interval (:func:`bootstrap_accuracy`).
EXACT_BELOW = 30


def bootstrap_accuracy(y_true, y_pred, n_boot: int = 1000, random_state=0) -> dict:
    """Return accuracy, macro F1 and a 95% interval of the accuracy.

    The interval is a bootstrap one; below :data:`EXACT_BELOW` clips it is the exact
    Clopper–Pearson interval instead (a bootstrap of a handful of clips is degenerate: 2 of 2
    right would read [1, 1]), and ``method`` says which.

    Returns
    -------
    dict
        ``accuracy, ci_low, ci_high, macro_f1, n, method``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise InputError("held-out set", "is empty")
    correct = y_true == y_pred
    if len(correct) < EXACT_BELOW:
        accuracy, method = float(correct.mean()), "exact"
        low, high = binomial_interval(int(correct.sum()), len(correct))
    else:
        accuracy, low, high = mean_interval(correct, n_boot, rng=random_state)
        method = "bootstrap"
    return {"accuracy": accuracy, "ci_low": low, "ci_high": high, "method": method,
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "n": int(len(y_true))}


def held_out_score(model, split: str = HELD_OUT_SPLIT, n_boot: int = 1000, random_state=0,
                   held_out: pd.DataFrame | None = None) -> dict:
    """Score a fitted model on the test part of *split* (:func:`bootstrap_accuracy`).

    Honest only for a model that never saw those clips nor their artists: pass the *held_out*
    rows :func:`training_rows` returned with the model's training rows (the fits of
    :func:`fit_rows` on them never do); default the whole test part.
    """
    if held_out is None:
        _, held_out = held_out_split(split=split)
    columns = list(getattr(model, "feature_names_in_", MODEL_FEATURES))
    return bootstrap_accuracy(held_out["label"], model.predict(held_out[columns]), n_boot,
                              random_state)


def default_recipe() -> str:
    """Return the name of the default model's recipe: the candidate the shipped selection chose.

    Read from the default-model selection (:func:`helpers.models.selection_result`, shipped in
    ``data/model_selection.json``), never hard-coded.
    """

    return selection_result()[0].chosen


def training_groups(base: pd.DataFrame, extra: pd.DataFrame) -> np.ndarray:
    """Return the group of every training row (*base* rows first, then *extra* rows).

    Grouped folds never put one group on both sides. Base (GTZAN-table) rows are grouped by
    artist (:func:`helpers.data.artist_groups`; a clip of unknown artist is its own group).
    Store rows (with ``song_id`` and ``artist``, :func:`training_rows`) are grouped by the
    song's artist when the store knows it — lower-cased, so a labelled song joins the table
    clips of the same artist — else by the song, so its windows stay together.
    """

    base_groups = artist_groups(base["filename"]).to_numpy(dtype=object)
    if extra.empty:
        return base_groups
    return np.concatenate([base_groups, _store_groups(extra)])


def _store_groups(extra: pd.DataFrame) -> np.ndarray:
    """Group of each store row: its song's artist, lower-cased, when known, else the song."""
    artist = extra["artist"] if "artist" in extra.columns else pd.Series(None, index=extra.index)
    artist = artist.fillna("").astype(str).str.strip().str.lower()
    song = "store song " + extra["song_id"].astype(str)
    return np.where(artist != "", artist, song).astype(object)


def calibration_folds(labels, groups, wanted: int = CALIBRATION_FOLDS, seed: int = DEFAULT_SEED,
                      method: str = "temperature") -> tuple[int | list, str]:
    """Return the calibration folds the rows allow, and a note when they differ from the recipe's.

    Calibration refits the classifier on all folds but one and calibrates it on the one left
    out, so every genre must be in the training part of every fold. The recipe's folds are
    *wanted* artist-grouped folds (:func:`helpers.models.tuning.grouped_folds`:
    ``StratifiedGroupKFold`` shuffled with *seed*, as :func:`helpers.models.candidates.calibrate` builds
    them). When a genre has fewer groups than that (a new genre with a few labelled songs):

    * ``temperature`` (one temperature shared by all genres): the same folds are built over
      the other genres' rows, and the thin genres' rows join every fold's training part — the
      temperature is fitted on the other genres' held-out folds.
    * ``sigmoid`` (one curve per genre, which needs the genre in the calibration part): fewer
      folds, down to two; ``0`` when not even two work (a genre with one artist or song):
      the recipe is then fitted without calibration.

    Returns
    -------
    (int or list, str)
        The number of grouped folds (0: none), or a list of ``(train, test)`` row-index pairs;
        and the note for people ("" when the recipe's folds work).
    """

    labels, groups = np.asarray(labels).astype(str), np.asarray(groups)
    per_genre = pd.Series(groups).groupby(labels).nunique().sort_values()
    thin_genres = per_genre[per_genre < wanted]
    thin = ", ".join(f"{genre} ({n})" for genre, n in thin_genres.items())
    why = f"too few independent groups (artists, or songs of unknown artist) in {thin}"

    def workable(folds, rows):
        splitter = grouped_folds(folds, seed)
        genres = set(labels[rows])
        splits = list(splitter.split(rows, labels[rows], groups[rows]))
        return splits if all(set(labels[rows[train]]) == genres for train, _ in splits) else None

    everything = np.arange(len(labels))
    if thin_genres.empty and workable(wanted, everything) is not None:
        return int(wanted), ""
    if method == "temperature":
        # whole groups stay together: an artist with a song in a thin genre is always trained on
        always_mask = np.isin(groups, groups[np.isin(labels, thin_genres.index)])
        core, always = everything[~always_mask], everything[always_mask]
        if len(set(labels[core])) >= 2 and (splits := workable(wanted, core)) is not None:
            folds = [(np.sort(np.concatenate([core[train], always])), core[test])
                     for train, test in splits]
            return folds, (f"Temperature fitted over {wanted} artist-grouped folds of the other "
                           f"genres: {why}, so their rows are in every fold's training part.")
    folds = min(int(wanted), int(per_genre.iloc[0]))
    while folds >= 2 and workable(folds, everything) is None:
        folds -= 1
    if not thin:
        why = "the grouped folds cannot give every genre a training part in each fold"
    if folds < 2:
        return 0, (f"Not calibrated (the classifier's own probabilities): {why}; calibration "
                   "needs every genre in at least two artist-grouped folds.")
    return folds, f"Calibrated over {folds} artist-grouped folds instead of {wanted}: {why}."


@dataclass
class Fit:
    """A genre model fitted by :func:`fit_rows`, and what a person should know about it.

    Attributes
    ----------
    model : estimator
        Fitted, with ``predict_proba``.
    name : str
        The recipe (candidate of :data:`helpers.models.candidates.CANDIDATES`), or the class of a custom
        estimator.
    description : str
        One line on what the model is (as fitted: it says when calibration was skipped).
    n_base, n_store : int
        Training rows from the table and from the store (windows).
    calibration_folds : int, list or None
        Grouped folds the calibration used (:func:`calibration_folds`: a number, 0 when
        skipped, or the ``(train, test)`` pairs built with thin genres always in training);
        None: the recipe does not calibrate, or a custom estimator.
    note : str
        Why the fit differs from its recipe ("" when it does not).
    """

    model: object
    name: str
    description: str
    n_base: int
    n_store: int
    calibration_folds: int | list | None = None
    note: str = ""

    def describe(self) -> str:
        """One line: the model's name and recipe, and the rows it was fitted on."""
        return (f"{self.name} ({self.description}), fitted on {self.n_base} table clips + "
                f"{self.n_store} labelled windows")


def _estimator_name(estimator) -> str:
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    return type(final).__name__


#: Fits of a recipe on base rows alone, by recipe, seed and rows (the same at every retrain).
_BASE_FITS: dict[tuple, Fit] = {}


def fit_rows(base: pd.DataFrame, extra: pd.DataFrame | None = None, *, estimator=None,
             recipe: str | None = None, columns=MODEL_FEATURES, seed: int = DEFAULT_SEED) -> Fit:
    """Fit a genre model on base table rows plus labelled store rows: the one place that does.

    The labeler (at start, after an undo, on Retrain), :func:`retrain`, its learning curve and
    :func:`held_out_song_predictions` all fit through here.

    Parameters
    ----------
    base : DataFrame
        ``filename``, *columns*, ``label`` (GTZAN layout; grouped by artist).
    extra : DataFrame, optional
        Store rows as :func:`training_rows` returns them (``song_id``, ``artist``).
    estimator : estimator, optional
        A custom unfitted model: cloned and fitted on the rows as they are (no groups).
    recipe : str, optional
        Candidate name (:data:`helpers.models.candidates.CANDIDATES`) when no *estimator* is given;
        default :func:`default_recipe` on the table's columns, :data:`FEATURE_SET_RECIPE` on
        another set's. Fitted by :func:`helpers.models.selection.fit_candidate`
        with the groups of :func:`training_groups` and the folds of :func:`calibration_folds`.
    seed : int
        Seed of the calibration folds (the selection's, so that on the base rows alone the fit
        is the model whose test accuracy the model card reports).

    Returns
    -------
    Fit
        A recipe's fit on the base rows alone is kept for the session (every retrain's "before"
        and learning-curve start needs it); treat the model as read-only.
    """

    extra = base.head(0) if extra is None else extra
    if estimator is None and recipe is None:
        recipe = default_recipe() if tuple(columns) == MODEL_FEATURES else FEATURE_SET_RECIPE
    if estimator is not None or len(extra):
        return _fit_rows(base, extra, estimator, recipe, columns, seed)
    key = (recipe, seed, tuple(columns), table_fingerprint(base, columns),
           tuple(base["filename"]))
    if key not in _BASE_FITS:
        _BASE_FITS.clear()  # one base at a time: a model is a few hundred kB
        _BASE_FITS[key] = _fit_rows(base, extra, None, key[0], columns, seed)
    return _BASE_FITS[key]


def _fit_rows(base, extra, estimator, recipe, columns, seed) -> Fit:
    rows = pd.concat([base, extra[base.columns]], ignore_index=True)
    groups = training_groups(base, extra)
    X, y = rows[list(columns)], rows["label"]
    sizes = {"n_base": len(base), "n_store": len(extra)}
    if estimator is not None:
        return Fit(clone(estimator).fit(X, y), _estimator_name(estimator),
                   "a custom estimator, fitted without groups", **sizes)
    if recipe == FEATURE_SET_RECIPE:
        return Fit(learned.recipe().fit(X, y), recipe,
                   f"multinomial logistic regression, standardised, on {len(columns)} columns; "
                   "fitted without groups", **sizes)
    name = recipe or default_recipe()
    candidate = get_candidate(name)
    if tuple(columns) != MODEL_FEATURES:
        raise InputError("columns", "a candidate recipe uses helpers.features.MODEL_FEATURES; "
                                    "pass estimator= to train on other columns")
    if candidate.calibration is None:
        model, _ = fit_candidate(name, rows, seed=seed, grid=DEFAULT_GRID, groups=groups)
        return Fit(model, name, candidate.description, **sizes)
    folds, note = calibration_folds(y, groups, CALIBRATION_FOLDS, seed, candidate.calibration)
    if isinstance(folds, list) or folds:
        model, _ = fit_candidate(name, rows, seed=seed, grid=DEFAULT_GRID, groups=groups,
                                 calibration_splits=folds)
        return Fit(model, name, candidate.description, calibration_folds=folds, note=note, **sizes)
    uncalibrated = candidate.description.rsplit("; ", 1)[0] + "; not calibrated"
    if hasattr(build_model(candidate.base), "predict_proba"):
        model, _ = fit_candidate(name, rows, seed=seed, grid=DEFAULT_GRID, groups=groups,
                                 calibration=None)
    else:  # e.g. an SVM: its own (ungrouped) Platt scaling gives the probabilities
        with threadpool_limits(1):
            model = make_estimator(candidate.base).fit(X, y)
        uncalibrated += " (Platt-scaled by its own ungrouped CV)"
    return Fit(model, name, uncalibrated, calibration_folds=0, note=note, **sizes)


@dataclass
class RetrainResult:
    """What :func:`retrain` did: the new model and held-out metrics before and after.

    Attributes
    ----------
    model : estimator
        The model fitted on the base training rows plus the store's rows.
    before, after : dict
        :func:`bootstrap_accuracy` of the previous and the new model on the held-out set.
    split : str
        Name of the held-out set.
    n_base, n_store : int
        Training rows from the table and from the store (windows).
    store_genres : dict
        Store rows per genre used for training.
    new_genres : list of str
        Genres the new model knows that the previous one did not.
    curve : pandas.DataFrame
        Learning curve: held-out accuracy (with interval) against the number of store songs
        added, in the order they were labelled.
    excluded : int
        Store rows left out because their file is in the held-out set (no leakage).
    store_songs : dict
        Store songs per genre used for training (``store_genres`` counts windows).
    excluded_songs : pandas.DataFrame
        The labelled songs left out, with why (:func:`excluded_labels`).
    fit : Fit, optional
        How the new model was fitted (:func:`fit_rows`): its name, description and any note
        (e.g. calibration over fewer folds).
    """

    model: object
    before: dict
    after: dict
    split: str
    n_base: int
    n_store: int
    store_genres: dict = field(default_factory=dict)
    new_genres: list = field(default_factory=list)
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: int = 0
    fit: Fit | None = None
    store_songs: dict = field(default_factory=dict)
    excluded_songs: pd.DataFrame = field(default_factory=lambda: excluded_labels(None))

    def summary(self) -> str:
        """One line: model, accuracy before and after with intervals, named split, rows used."""
        def fmt(m):
            return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"

        model = f"{self.fit.name} ({self.fit.description}) " if self.fit is not None else ""
        line = (f"{model}held-out accuracy ({self.split} test, n={self.after['n']}, "
                f"{self.after.get('method', 'bootstrap')} 95% CI): before {fmt(self.before)} -> after {fmt(self.after)}; trained on "
                f"{self.n_base} table rows + {self.n_store} labelled windows")
        if self.new_genres:
            line += f"; new genres: {', '.join(self.new_genres)}"
        if self.fit is not None and self.fit.note:
            line += f" ({self.fit.note.rstrip('.')})"
        return line

    def save(self, path=None):
        """Save the retrained model as a model file (skops, with its held-out metrics).

        Parameters
        ----------
        path : path-like, optional
            Default ``data/models/retrained.skops`` (git-ignored); ``music-study predict
            --model PATH`` and :func:`helpers.models.files.load_model` read it.

        Returns
        -------
        pathlib.Path
        """


        path = Path(path) if path is not None else data_dir() / "models" / "retrained.skops"
        metrics = {"held_out_split": f"{self.split} test", "before": self.before, "after": self.after}
        metadata = {"metrics": metrics, "trained_by": "helpers.labeling.retrain.retrain",
                    "n_table_rows": self.n_base, "n_store_rows": self.n_store,
                    "store_genres": self.store_genres}
        if self.fit is not None:
            # a model card, so that describe_model / predict name it with its honest figure
            metadata["card"] = {
                "name": f"{self.fit.name} + labels", "description": self.fit.describe(),
                "note": self.fit.note, "test_accuracy": self.after["accuracy"],
                "test_ci95": [self.after["ci_low"], self.after["ci_high"]],
                "test_split": self.split, "n_test": self.after["n"],
                "test_protocol": f"trained on {self.split} train+valid plus the store's labels "
                                 "(held-out clips left out), scored on its test clips of "
                                 "artists it did not see; "
                                 f"{self.after.get('method', 'bootstrap')} 95% interval"}
        return save_model(self.model, path, metadata)


def feature_set_table(name: str) -> pd.DataFrame:
    """GTZAN clips with audio described by feature set *name*, one row per clip.

    The clips :func:`helpers.models.learned.training_table` finds (``$MUSIC_STUDY_GTZAN_AUDIO``,
    else ``../shared/data/gtzan``); extracted once per session (and cached by content on disk).

    Raises
    ------
    InputError
        No GTZAN audio at hand (:func:`helpers.models.learned.no_training_audio_reason`).
    """
    folders = learned.training_folders()
    key = (feature_set_spec(name).name, tuple(map(str, folders)))
    if key not in _AUDIO_TABLES:
        _AUDIO_TABLES[key] = learned.training_table(key[0], folders)
    return _AUDIO_TABLES[key]


def set_columns(feature_set: str = TABLE_FEATURE_SET) -> tuple[str, ...]:
    """The model columns of *feature_set*: the 58 of the table, or the set's own columns."""
    spec = feature_set_spec(feature_set)
    return MODEL_FEATURES if spec.name == TABLE_FEATURE_SET else tuple(spec.columns)


def training_rows(store=None, *, base_table=None, split: str = HELD_OUT_SPLIT,
                  columns=None, feature_set: str = TABLE_FEATURE_SET):
    """Return the rows a retrain uses, and the fixed held-out rows.

    For the ``gtzan`` feature set the rows come from the embedded table. For another set
    (``musicnn``, ``gtzan+musicnn``) they are the GTZAN clips with audio
    (:func:`feature_set_table`): the held-out rows are those of them in the test part of
    *split*, and the base rows all others whose artist is not among the held-out clips'
    (clips outside the split included: the audio at hand is often a small sample).

    Returns
    -------
    base : DataFrame
        ``filename``, *columns*, ``label`` of the base table (default: the training part of
        *split*).
    extra : DataFrame
        The store's current labels as window rows (with ``song_id`` and ``artist``), minus
        any whose file is in the held-out set.
    held_out : DataFrame
        The test part of *split* in the GTZAN table, minus the clips of any artist a labelled
        store song names (the store song is trained on, so that artist is no longer unseen).
    excluded : int
        Store rows left out because they are held-out clips.
    """

    name = feature_set_spec(feature_set).name
    columns = set_columns(name) if columns is None else columns
    if name == TABLE_FEATURE_SET:
        train_rows, held_out = held_out_split(load_gtzan_table(), split)
    else:
        clips = feature_set_table(name)
        _, held_out = held_out_split(clips, split)
        rest = clips.drop(index=held_out.index)
        held_artists = set(learned.clip_artists(held_out["filename"]))
        train_rows = rest[~learned.clip_artists(rest["filename"]).isin(held_artists).to_numpy()]
    base = (train_rows if base_table is None else base_table)[["filename", *columns, "label"]]
    if store is not None:
        extra = store.export_training_rows(provenance=True, feature_set=name)
    else:
        extra = pd.DataFrame(columns=["filename", *columns, "label", "song_id", "artist"])
    leaking = extra["filename"].isin(set(held_out["filename"]))
    extra = extra[~leaking]
    seen = artist_groups(held_out["filename"]).isin(set(_store_groups(extra))).to_numpy()
    return base, extra, held_out[~seen], int(leaking.sum())


#: Why a held-out clip's label is not trained on, as the labeler says it.
HELD_OUT_REASON = "held-out test clip; keeps the score honest"


def excluded_labels(store, split: str = HELD_OUT_SPLIT,
                    feature_set: str = TABLE_FEATURE_SET) -> pd.DataFrame:
    """The store's current labels a retrain leaves out, each with its reason.

    Returns
    -------
    pandas.DataFrame
        ``song_id, title, genre, reason``: songs whose file is a clip of the *split*'s test
        part (:data:`HELD_OUT_REASON`), and labelled songs without stored features ("no
        features stored").
    """
    columns = ["song_id", "title", "genre", "reason"]
    if store is None:
        return pd.DataFrame(columns=columns)
    labels = store.current_labels()
    if labels.empty:
        return pd.DataFrame(columns=columns)
    _, held_out = held_out_split(load_gtzan_table(), split)
    with_windows = set(store.windows(feature_set=feature_set)["song_id"])
    reasons = np.where(labels["filename"].isin(set(held_out["filename"])), HELD_OUT_REASON,
                       np.where(labels["song_id"].isin(with_windows), "", "no features stored"))
    out = labels.assign(title=labels["title"].fillna(labels["filename"]), reason=reasons)
    return out[out["reason"] != ""][columns].reset_index(drop=True)


def retrain(store=None, *, estimator=None, recipe: str | None = None, previous_model=None,
            base_table=None, split: str = HELD_OUT_SPLIT, columns=None,
            feature_set: str = TABLE_FEATURE_SET, curve_points: int = 5, n_boot: int = 1000,
            random_state=0) -> RetrainResult:
    """Fit a genre model on the table plus the store's labels; compare before/after held out.

    Parameters
    ----------
    store : LabelStore, optional
        Source of extra labelled windows (:meth:`LabelStore.export_training_rows`).
    estimator : estimator, optional
        A custom unfitted model to clone (fitted without groups); default the *recipe*.
    recipe : str, optional
        Candidate recipe when no *estimator* is given; default the default model's
        (:func:`default_recipe`). Every fit goes through :func:`fit_rows`.
    previous_model : fitted estimator, optional
        The model in use before; default: the same recipe fitted on the base rows alone.
    base_table : DataFrame, optional
        Base training rows in the GTZAN layout; default the training part (train + valid) of
        the GTZAN table under *split*.
    split : str
        Published split whose test part is the fixed held-out set (default fault-filtered,
        artist-conscious).
    feature_set : str
        The features fitted on (:func:`helpers.features.feature_set`): ``gtzan`` (the table's
        58 columns, default) or another set, whose base and held-out rows are the GTZAN clips
        with audio (:func:`training_rows`) and whose default model is
        :data:`FEATURE_SET_RECIPE`.
    curve_points : int
        Points on the learning curve (store songs added in labelling order); 0 skips it.

    Returns
    -------
    RetrainResult
    """
    name = feature_set_spec(feature_set).name
    columns = set_columns(name) if columns is None else columns
    base, extra, test_rows, excluded = training_rows(store, base_table=base_table, split=split,
                                                     columns=columns, feature_set=name)
    X_test, y_test = test_rows[list(columns)], test_rows["label"]
    if estimator is None:  # once, not again in each fit of the curve
        recipe = recipe or (default_recipe() if name == TABLE_FEATURE_SET else FEATURE_SET_RECIPE)

    def fit(rows):
        return fit_rows(base, rows, estimator=estimator, recipe=recipe, columns=columns)

    before_model = previous_model if previous_model is not None else fit(extra.head(0)).model
    before = bootstrap_accuracy(y_test, before_model.predict(X_test), n_boot, random_state)
    fitted = fit(extra)
    after = bootstrap_accuracy(y_test, fitted.model.predict(X_test), n_boot, random_state)

    curve = _learning_curve(store, extra, fit, X_test, y_test, after, curve_points, n_boot,
                            random_state) if curve_points and len(extra) else []
    known_before = set(map(str, getattr(before_model, "classes_", [])))
    return RetrainResult(
        model=fitted.model, before=before, after=after, split=split, n_base=len(base),
        n_store=len(extra), store_genres=extra["label"].value_counts().sort_index().to_dict(),
        new_genres=sorted(set(map(str, fitted.model.classes_)) - known_before),
        curve=pd.DataFrame(curve), excluded=excluded, fit=fitted,
        store_songs=(extra.groupby("label")["song_id"].nunique().sort_index().to_dict()
                     if len(extra) else {}),
        excluded_songs=excluded_labels(store, split, name))


def _learning_curve(store, extra, fit, X_test, y_test, final, points, n_boot,
                    random_state) -> list[dict]:
    """Held-out accuracy after adding the first k store songs (labelling order), k on a grid."""
    labelled = store.current_labels().sort_values("event_id")["song_id"]
    songs = [s for s in labelled if s in set(extra["song_id"])]
    rows = []
    with threadpool_limits(1):  # small fits: threads only add overhead
        for k in sorted({int(round(x)) for x in np.linspace(0, len(songs), points + 1)}):
            chosen = extra[extra["song_id"].isin(songs[:k])]
            if k == len(songs):
                metrics = final
            else:
                model = fit(chosen).model
                metrics = bootstrap_accuracy(y_test, model.predict(X_test), n_boot, random_state)
            rows.append({"store_songs": k, "store_windows": len(chosen), **metrics})
    return rows


def _test_size(split: str = HELD_OUT_SPLIT) -> int:
    return len(held_out_split(split=split)[1])


def held_out_song_predictions(store, *, estimator=None, recipe: str | None = None,
                              base_table=None, columns=MODEL_FEATURES) -> pd.DataFrame:
    """Predict each labelled song's windows with a model that never saw that song.

    Leave one song out: for every song with a current label, fit the model (:func:`fit_rows`:
    a custom *estimator*, else *recipe*, default the default model's) on the base rows plus
    the other songs' labelled windows, then predict this song's windows. Predicting the
    windows a model was just trained on would only show that it remembers them.

    Returns
    -------
    pandas.DataFrame
        ``song_id, filename, window_start, window_end, label, predicted``.
    """
    base, extra, _, _ = training_rows(store, base_table=base_table, columns=columns)
    if estimator is None and not extra.empty:
        recipe = recipe or default_recipe()  # once, not again in each song's fit
    rows = []
    with threadpool_limits(1):
        for song_id, song_rows in extra.groupby("song_id"):
            others = extra[extra["song_id"] != song_id]
            model = fit_rows(base, others, estimator=estimator, recipe=recipe, columns=columns).model
            predicted = model.predict(song_rows[list(columns)])
            rows.append(song_rows[["song_id", "filename", "window_start", "window_end", "label"]]
                        .assign(predicted=predicted))
    if not rows:
        return pd.DataFrame(columns=["song_id", "filename", "window_start", "window_end", "label",
                                     "predicted"])
    return pd.concat(rows, ignore_index=True)


def with_and_without(store, result: RetrainResult, held_out: pd.DataFrame, estimator=None) -> dict:
    """The held-out predictions of a retrained model and of the same recipe fitted without the
    store's labels, for a paired comparison on the same clips (e.g. McNemar).

    Parameters
    ----------
    store : LabelStore
        The store *result* was retrained on.
    result : RetrainResult
    held_out : DataFrame
        The held-out rows (GTZAN layout, ``label``).
    estimator : estimator, optional
        The custom model *result* was retrained with (default: the default recipe).

    Returns
    -------
    dict
        ``truth``, ``with_labels`` and ``without_labels`` (arrays over *held_out*) and
        ``new_genres`` (the genres only the store's labels bring).
    """
    base, _, _, _ = training_rows(store)
    without = fit_rows(base, None, estimator=estimator).model
    columns = list(getattr(result.model, "feature_names_in_", MODEL_FEATURES))
    return {"truth": held_out["label"].to_numpy(),
            "with_labels": result.model.predict(held_out[columns]),
            "without_labels": without.predict(held_out[columns]),
            "new_genres": sorted(result.new_genres)}

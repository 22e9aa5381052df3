"""Choosing the default genre model: candidate recipes scored by artist-grouped CV, never by test.

A candidate (:data:`helpers.models.CANDIDATES`) is a recipe: a registry model, tuned or not
(:func:`helpers.models.tuning.tune_model`), calibrated or not (:func:`helpers.models.calibrate`).
:func:`fit_candidate` fits a recipe on training rows; :func:`candidate_cv` scores it by
artist-grouped CV over all clips (every outer fold refits the whole recipe);
:func:`select_model` picks the candidate with the best mean fold accuracy, and separately
scores each on a published split's test clips (:func:`candidate_test_score`): the honest
figure a model card reports. Results are cached (:mod:`helpers.cache`).

Examples
--------
>>> from helpers.models import selection
>>> chosen = selection.select_model(grid="small")  # doctest: +SKIP
>>> chosen.chosen, chosen.row()["test_accuracy"]  # doctest: +SKIP
('logreg', 0.59)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.constants import SELECTION_VERSION
from helpers.features.columns import MODEL_FEATURES
from helpers.models.candidates import CANDIDATE_NAMES, calibrate, fit_grouped, get_candidate
from helpers.models.pipelines import build_model
from helpers.models.training import table_fingerprint
from helpers.models.tuning import cache_entry, files_digest, grouped_folds, tune_model
from helpers.stats import score_predictions

_RECIPE = object()  # "the candidate's own calibration"


def recipe_key(name: str, seed: int) -> str:
    """Return the text that identifies candidate *name*'s recipe in a cache key.

    The candidate and its unfitted base pipeline, so a changed recipe misses the cache.
    """
    candidate = get_candidate(name)
    return repr(candidate) + repr(build_model(candidate.base, seed))


def fit_candidate(name: str, train: pd.DataFrame, seed: int = 0, grid: str = "small",
                  n_splits: int = 5, cache: bool = True, calibration=_RECIPE, groups=None,
                  calibration_splits: int | None = None):
    """Fit candidate *name* (:data:`helpers.models.CANDIDATES`) on *train* by its recipe.

    A tuned candidate first chooses its settings by artist-grouped CV on *train* only
    (:func:`helpers.models.tuning.tune_model`); a calibrated one calibrates over artist-grouped folds
    of *train*.

    Parameters
    ----------
    name : str
        Candidate name.
    train : pandas.DataFrame
        Rows with ``filename`` (artist groups), the model features and ``label``.
    calibration : {None, 'sigmoid', 'temperature'}, optional
        Override the candidate's calibration (to compare methods).
    groups : array-like, optional
        Group of each row of *train* for the calibration folds (no group in two folds);
        default the artist groups of ``train["filename"]`` (:func:`helpers.data.artist_groups`).
    calibration_splits : int or list of (train, test) index pairs, optional
        Calibration folds; default *n_splits* grouped folds. Fewer, or folds built beforehand,
        when a genre has too few groups (:func:`helpers.labeling.retrain.calibration_folds`).

    Returns
    -------
    (pipeline, params) : fitted Pipeline and the tuned settings (empty when not tuned)
    """
    candidate = get_candidate(name)
    pipeline = build_model(candidate.base, random_state=seed)  # "knn": the study's make_knn()
    params = {}
    if candidate.tuned:
        params = tune_model(candidate.base, train, seed=seed, grid=grid, n_splits=n_splits,
                            cache=cache).params
        pipeline.set_params(**params)
    method = candidate.calibration if calibration is _RECIPE else calibration
    if method is not None:
        built = calibration_splits if isinstance(calibration_splits, list) else None
        count = calibration_splits if isinstance(calibration_splits, int) else n_splits
        pipeline = calibrate(pipeline, method, n_splits=count, seed=seed, folds=built)
    if groups is None:
        groups = data.artist_groups(train["filename"]).to_numpy()
    with threadpool_limits(1):
        fit_grouped(pipeline, train[list(MODEL_FEATURES)], train["label"], groups)
    return pipeline, params


def candidate_cv(name: str, table: pd.DataFrame, seed: int = 0, grid: str = "small",
                 n_splits: int = 5, cache: bool = True, calibration=_RECIPE) -> dict:
    """Score candidate *name* by artist-grouped *n_splits*-fold CV over all rows of *table*.

    Every outer fold refits the whole recipe (tuning and calibration included) on the other
    folds, so nothing of the scored artists is seen.

    Returns
    -------
    dict
        ``fold_accuracies`` (list), ``cv_accuracy`` / ``cv_std`` (mean and std over folds),
        ``cv_log_loss`` (of the out-of-fold probabilities) and ``oof_proba`` (array, rows of
        *table*, columns sorted genres).
    """
    table = table.reset_index(drop=True)
    genres = sorted(table["label"].unique())
    groups = data.artist_groups(table["filename"]).to_numpy()
    oof = np.zeros((len(table), len(genres)))
    accuracies = []
    for fit_idx, score_idx in grouped_folds(n_splits, seed).split(table, table["label"], groups):
        model, _ = fit_candidate(name, table.iloc[fit_idx], seed=seed, grid=grid,
                                 n_splits=n_splits, cache=cache, calibration=calibration)
        proba = model.predict_proba(table.iloc[score_idx][list(MODEL_FEATURES)])
        columns = [genres.index(g) for g in model.classes_]
        oof[np.ix_(score_idx, columns)] = proba
        predicted = np.asarray(model.classes_)[proba.argmax(axis=1)]
        accuracies.append(float(np.mean(predicted == table["label"].to_numpy()[score_idx])))
    return {"fold_accuracies": [round(a, 4) for a in accuracies],
            "cv_accuracy": round(float(np.mean(accuracies)), 4),
            "cv_std": round(float(np.std(accuracies)), 4),
            "cv_log_loss": round(float(log_loss(table["label"], _clip_rows(oof), labels=genres)), 4),
            "oof_proba": oof}


def _clip_rows(proba, floor: float = 1e-6) -> np.ndarray:
    """Probabilities floored at *floor* and renormalised (a log loss of a 0 is infinite)."""
    clipped = np.clip(proba, floor, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def candidate_test_predictions(name: str, table: pd.DataFrame, split: str = "fault-filtered",
                               seed: int = 0, grid: str = "small", n_splits: int = 5,
                               cache: bool = True) -> dict:
    """Train candidate *name* by its recipe on a split's train+valid rows; predict its test rows.

    Returns
    -------
    dict
        ``y_true``, ``y_pred`` (arrays over the test rows), ``proba`` (test rows x ``classes``),
        ``classes``, ``filenames``, ``n_train``.
    """
    train, test = data.held_out_split(table, split)
    model, _ = fit_candidate(name, train, seed=seed, grid=grid, n_splits=n_splits, cache=cache)
    proba = model.predict_proba(test[list(MODEL_FEATURES)])
    classes = np.asarray(model.classes_)
    return {"y_true": test["label"].to_numpy(), "y_pred": classes[proba.argmax(axis=1)],
            "proba": proba, "classes": classes, "filenames": test["filename"].to_numpy(),
            "n_train": len(train)}


def candidate_test_score(name: str, table: pd.DataFrame, split: str = "fault-filtered",
                         seed: int = 0, grid: str = "small", n_splits: int = 5,
                         cache: bool = True) -> dict:
    """Train candidate *name* by its recipe on a split's train+valid rows; score on its test.

    Returns
    -------
    dict
        ``test_accuracy``, ``test_ci95`` (bootstrap 95%), ``test_split``, ``n_test``,
        ``n_train``, ``test_macro_f1``.
    """
    train, test = data.held_out_split(table, split)
    model, _ = fit_candidate(name, train, seed=seed, grid=grid, n_splits=n_splits, cache=cache)
    scores = score_predictions(test["label"], model.predict(test[list(MODEL_FEATURES)]), seed=seed)
    return {"test_accuracy": scores["accuracy"], "test_ci95": scores["ci95"],
            "test_macro_f1": scores["macro_f1"], "test_split": split, "n_test": len(test),
            "n_train": len(train)}


def calibration_comparison(names, table: pd.DataFrame | None = None,
                           methods=(None, "sigmoid", "temperature"), seed: int = 0,
                           grid: str = "small", n_splits: int = 5) -> pd.DataFrame:
    """Compare calibration methods per candidate by artist-grouped CV over all rows.

    Returns
    -------
    pandas.DataFrame
        ``name``, ``calibration`` ("none" for the model's own probabilities; NaN scores when it
        has none), ``cv_accuracy``, ``cv_std`` and ``cv_log_loss`` (lower is better
        calibrated), ``recipe`` (True for the method the candidate uses).
    """
    table = data.load_gtzan_table() if table is None else table
    rows = []
    for name in names:
        for method in methods:
            if method is None and not hasattr(build_model(get_candidate(name).base), "predict_proba"):
                rows.append({"name": name, "calibration": "none", "cv_accuracy": np.nan,
                             "cv_std": np.nan, "cv_log_loss": np.nan, "recipe": False})
                continue  # e.g. an SVM gives no probabilities of its own
            scores = candidate_cv(name, table, seed=seed, grid=grid, n_splits=n_splits,
                                  calibration=method)
            rows.append({"name": name, "calibration": method or "none",
                         "cv_accuracy": scores["cv_accuracy"], "cv_std": scores["cv_std"],
                         "cv_log_loss": scores["cv_log_loss"],
                         "recipe": method == get_candidate(name).calibration})
    return pd.DataFrame(rows)


@dataclass
class Selection:
    """The outcome of :func:`select_model`: every candidate's scores and the chosen one."""

    chosen: str
    candidates: list  # one dict per candidate (see select_model)
    seed: int
    grid: str
    n_splits: int
    training_fingerprint: str
    cached: bool = False

    def frame(self) -> pd.DataFrame:
        """One row per candidate, best selection score first."""
        frame = pd.DataFrame(self.candidates)
        frame["test_ci95"] = frame["test_ci95"].map(lambda ci: f"[{ci[0]:.3f}, {ci[1]:.3f}]")
        columns = ["name", "cv_accuracy", "cv_std", "cv_log_loss", "test_accuracy", "test_ci95",
                   "test_split", "params"]
        return frame[columns].sort_values("cv_accuracy", ascending=False).reset_index(drop=True)

    def row(self, name: str | None = None) -> dict:
        """The scores of candidate *name* (default the chosen one)."""
        name = name or self.chosen
        return next(r for r in self.candidates if r["name"] == name)

    @staticmethod
    def rank_key(row: dict) -> tuple:
        """Ranking key of a candidate row: higher mean fold accuracy first; equal means go to
        the smaller spread over folds."""
        return (-row["cv_accuracy"], row["cv_std"])

    def ranked(self) -> list[dict]:
        """The candidate rows, best first by :meth:`rank_key` (full ties keep the list order)."""
        return sorted(self.candidates, key=self.rank_key)

    def to_document(self) -> dict:
        """Return the fields as stored in a cache or shipped file (without ``cached``)."""
        document = asdict(self)
        document.pop("cached")
        return document

    @classmethod
    def from_document(cls, document: dict) -> Selection:
        """Return the selection stored by :meth:`to_document`, marked ``cached``."""
        return cls(**document, cached=True)


def select_model(table: pd.DataFrame | None = None, candidates=None, seed: int = 0,
                 grid: str = "small", n_splits: int = 5, test_split: str = "fault-filtered",
                 cache: bool = True) -> Selection:
    """Choose the default genre model by artist-grouped CV over every clip; never by a test split.

    Each candidate recipe (:data:`helpers.models.CANDIDATES`) is scored by :func:`candidate_cv`
    on all rows of *table*; the one with the highest mean fold accuracy is chosen. Separately,
    each candidate is trained the same way on *test_split*'s train+valid rows and scored on its
    test rows (:func:`candidate_test_score`): that is the honest figure a model card reports.
    The result is cached in ``data/cache/selection/`` (keyed by the rows, candidates, seed,
    grid, folds and scikit-learn version), so a second call is instant.

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Training rows (``filename``, features, ``label``); default the embedded GTZAN table.
    candidates : sequence of str, optional
        Candidate names; default all of :data:`helpers.models.CANDIDATE_NAMES`.
    seed : int
        Seed of the folds, models and bootstrap; a fixed seed gives the same choice.
    grid : {'small', 'full'}
        Tuning grid of the tuned candidates.

    Returns
    -------
    Selection
        ``chosen`` and per candidate: ``name``, ``description``, ``fold_accuracies``,
        ``cv_accuracy``, ``cv_std``, ``cv_log_loss``, ``test_accuracy``, ``test_ci95``,
        ``test_split``, ``n_test``, ``n_train``, ``test_macro_f1``, ``params`` (settings a
        tuned candidate picks on all rows).
    """
    table = data.load_gtzan_table() if table is None else table
    names = list(candidates or CANDIDATE_NAMES)
    for name in names:
        get_candidate(name)
    fingerprint = table_fingerprint(table)
    entry = cache_entry("selection", {
        "version": SELECTION_VERSION, "names": names, "seed": seed, "grid": grid,
        "recipes": [recipe_key(n, seed) for n in names],
        "n_splits": n_splits, "test_split": test_split, "rows": fingerprint,
        "files": files_digest(table)})
    stored = entry.read() if cache else None
    if stored is not None and isinstance(stored.get("selection"), dict):
        return Selection.from_document(stored["selection"])
    rows = []
    for name in names:
        scores = candidate_cv(name, table, seed=seed, grid=grid, n_splits=n_splits, cache=cache)
        scores.pop("oof_proba")
        params = {}
        if get_candidate(name).tuned:
            params = tune_model(get_candidate(name).base, table, seed=seed, grid=grid,
                                n_splits=n_splits, cache=cache).params
        rows.append({"name": name, "description": get_candidate(name).description, **scores,
                     **candidate_test_score(name, table, test_split, seed=seed, grid=grid,
                                            n_splits=n_splits, cache=cache),
                     "params": params})
    # ties (equal mean accuracy) go to the smaller spread over folds, then to the list order
    # (min keeps the first of equal keys, as the stable sort of Selection.ranked does)
    chosen = min(rows, key=Selection.rank_key)["name"]
    selection = Selection(chosen=chosen, candidates=rows, seed=seed, grid=grid, n_splits=n_splits,
                          training_fingerprint=fingerprint)
    if cache:
        entry.write({"selection": selection.to_document()})
    return selection

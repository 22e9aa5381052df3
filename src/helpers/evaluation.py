"""Honest evaluation of genre models: tuned by grouped inner CV, scored with uncertainty.

The protocol of :func:`evaluate_model`: take a published split, train on its train+valid
clips, choose every setting (feature conditioning and hyper-parameters, :func:`helpers.models.param_grid`)
by grid search with an artist-grouped inner cross-validation on those clips only, refit, then
score once on the test clips with a bootstrap 95% interval. Also here: repeated stratified
k-fold, artist-grouped CV over all clips, the original study's procedure (to reproduce its
numbers), the recording-source confound of extra rows, and the ``music-study evaluate`` command.

Examples
--------
>>> from helpers import evaluation
>>> result = evaluation.evaluate_model("knn", split="fault-filtered", grid="small")
>>> round(result.accuracy, 2), result.split, result.n_test
(0.44, 'fault-filtered', 290)
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.constants import SELECTION_VERSION
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS
from helpers.models import MODEL_FEATURES, MODEL_NAMES, build_model, param_grid, table_fingerprint
from helpers.stats import bootstrap_mean_interval

#: Splits accepted by :func:`evaluate_model` (the published ones, see :func:`helpers.data.load_split`).
SPLITS = tuple(data.SPLITS)


# --------------------------------------------------------------------------- uncertainty

def bootstrap_ci(y_true, y_pred, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Return a percentile bootstrap interval for accuracy on one test set.

    Test clips are resampled with replacement *n_boot* times.

    Examples
    --------
    >>> bootstrap_ci(["a"] * 50 + ["b"] * 50, ["a"] * 100)
    (0.4, 0.6)
    """
    correct = np.asarray(y_true) == np.asarray(y_pred)
    if correct.size == 0:
        raise InputError("predictions", "cannot bootstrap an empty test set")
    lo, hi = bootstrap_mean_interval(correct, n_boot, level, rng=seed)
    return round(lo, 4), round(hi, 4)


def score_predictions(y_true, y_pred, seed: int = 0) -> dict:
    """Return accuracy (with bootstrap 95% interval) and macro precision, recall and F1."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0)
    return {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "ci95": list(bootstrap_ci(y_true, y_pred, seed=seed)),
            "macro_precision": round(float(precision), 4),
            "macro_recall": round(float(recall), 4),
            "macro_f1": round(float(f1), 4)}


def per_genre_report(y_true, y_pred) -> pd.DataFrame:
    """Return precision, recall, F1 and support per genre (plus macro and weighted averages)."""
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    report.pop("accuracy", None)
    return pd.DataFrame(report).T.round(3)


def plot_confusion(y_true, y_pred, title: str, ax=None, normalize: bool = True):
    """Draw a confusion-matrix heatmap (rows: true genre; normalised per row by default)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = sorted(set(np.asarray(y_true)) | set(np.asarray(y_pred)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true" if normalize else None)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(pd.DataFrame(matrix, index=labels, columns=labels), annot=True,
                fmt=".2f" if normalize else "d", cmap="Blues", cbar=True, ax=ax,
                cbar_kws={"label": "share of the true genre's clips" if normalize else "clips"})
    ax.set(xlabel="predicted genre", ylabel="true genre", title=title)
    return ax


def plot_test_accuracies(results, reference: dict | None = None, ax=None):
    """Horizontal bars of test accuracy with bootstrap 95% intervals, one per evaluation.

    Parameters
    ----------
    results : list of Evaluation
        Same split (its name and size go into the title).
    reference : dict, optional
        A computed reference line: ``label``, ``accuracy`` and ``ci95`` (drawn as a band).
    """
    import matplotlib.pyplot as plt

    frame = pd.DataFrame([r.as_dict() for r in results]).sort_values("accuracy")
    errors = np.array([frame["accuracy"] - frame["ci95"].str[0], frame["ci95"].str[1] - frame["accuracy"]])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    ax.barh(frame["model"] + " (tuned)", frame["accuracy"], xerr=errors, color="steelblue",
            capsize=4, label="tuned by grouped inner CV; bar: bootstrap 95% CI")
    if reference is not None:
        ax.axvline(reference["accuracy"], color="0.3", ls="--", label=reference["label"])
        ax.axvspan(*reference["ci95"], color="0.5", alpha=0.15, label="its bootstrap 95% CI")
    first = results[0]
    ax.set_xlabel(f"accuracy on {first.split} test clips (share correct)")
    ax.set_title(f"{first.split} split: trained on train+valid (n={first.n_train}), "
                 f"tested once (n={first.n_test})", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


def plot_grid_gap(gap: pd.DataFrame, highlight: dict | None = None, ax=None, split_name="fault-filtered",
                  n_test: int | None = None):
    """Scatter every grid setting: inner-CV accuracy against test accuracy (:func:`grid_test_scores`).

    The setting tuning picks (inner rank 1) is marked, and *highlight* (a parameter mapping, e.g.
    the study's fixed setting) too.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(gap["inner_cv_mean"], gap["test_accuracy"], s=14, color="0.6", label="grid setting")
    chosen = gap[gap["inner_rank"] == 1].iloc[:1]
    ax.scatter(chosen["inner_cv_mean"], chosen["test_accuracy"], s=70, color="C3", marker="D",
               label="picked by inner CV")
    if highlight:
        mask = np.logical_and.reduce([gap[k] == v for k, v in highlight.items()])
        ax.scatter(gap.loc[mask, "inner_cv_mean"], gap.loc[mask, "test_accuracy"], s=90,
                   color="C0", marker="*", label="study setting")
    ax.set_xlabel("inner artist-grouped CV accuracy on train+valid (mean over 5 folds)")
    ax.set_ylabel(f"accuracy on {split_name} test (share correct)")
    tested = f" (test n={n_test})" if n_test else ""
    ax.set_title(f"{len(gap)} KNN settings: does the inner-CV ranking predict test accuracy?{tested}",
                 fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


def plot_selection(selection, n_clips: int | None = None, ax=None):
    """Bars per candidate: selection score (grouped CV, ± std) beside the test accuracy (95% CI).

    *n_clips* (the rows the selection ran on) goes into the blue bars' legend.
    """
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(selection.candidates).sort_values("cv_accuracy")
    y = np.arange(len(frame))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.8))
    ax.barh(y + 0.2, frame["cv_accuracy"], height=0.4, xerr=frame["cv_std"], capsize=3,
            color="C0", label=f"selection: artist-grouped {selection.n_splits}-fold CV, all "
                              f"{n_clips or ''} clips (± std over folds)".replace("  ", " "))
    test_err = np.array([frame["test_accuracy"] - frame["test_ci95"].str[0],
                         frame["test_ci95"].str[1] - frame["test_accuracy"]])
    ax.barh(y - 0.2, frame["test_accuracy"], height=0.4, xerr=test_err, capsize=3, color="C1",
            label=f"{frame['test_split'].iloc[0]} test (n={frame['n_test'].iloc[0]}, bootstrap 95% CI)")
    ax.set_yticks(y, [f"{n} (default)" if n == selection.chosen else n for n in frame["name"]])
    ax.set_xlabel("accuracy (share of clips correct)")
    ax.set_title("Default-model candidates: chosen by the blue bars only", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


# --------------------------------------------------------------------------- splits and CV

def split_frames(table: pd.DataFrame, split: str = "fault-filtered") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train+valid rows, test rows) of a published split as table slices."""
    masks = data.split_masks(table, split)
    train = table[masks["train"] | masks["valid"]].reset_index(drop=True)
    test = table[masks["test"]].reset_index(drop=True)
    return train, test


def grouped_folds(n_splits: int = 5, seed: int = 0) -> StratifiedGroupKFold:
    """Return artist-grouped, genre-stratified folds (no artist in two folds)."""
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


@dataclass
class Tuning:
    """The settings chosen by grouped inner cross-validation."""

    params: dict
    cv_mean: float
    cv_std: float
    cached: bool = False


def tune_model(name: str, train: pd.DataFrame, seed: int = 0, grid: str = "full",
               n_splits: int = 5, n_jobs: int = 1, cache: bool = True) -> Tuning:
    """Choose conditioning and hyper-parameters of *name* by artist-grouped CV on *train*.

    Parameters
    ----------
    name : str
        A model of :data:`helpers.models.MODEL_NAMES`.
    train : pandas.DataFrame
        Training rows with ``filename`` (for the artist groups), features and ``label``.
    grid : {'full', 'small'}
        Grid size (:func:`helpers.models.param_grid`).
    cache : bool
        Reuse (and store) the result in ``data/cache/tuning/``, keyed by the model, grid,
        seed, folds, library version and the fingerprint of *train*.
    """
    grid_values = param_grid(name, grid)
    key_source, path = _cache_key("tuning", {
        "name": name, "estimator": repr(build_model(name, random_state=seed)), "grid": grid_values,
        "seed": seed, "n_splits": n_splits, "rows": table_fingerprint(train),
        "files": _files_digest(train)}, prefix=f"{name}-")
    stored = _read_cache(path) if cache else None
    if stored is not None:
        try:
            return Tuning(stored["params"], stored["cv_mean"], stored["cv_std"], cached=True)
        except KeyError:
            pass  # incomplete cache entry: tune again and overwrite it
    search = _grid_search(name, train, grid_values, seed=seed, n_splits=n_splits, n_jobs=n_jobs,
                          error_score="raise", scratch_prefix="music-study-tuning-")
    best = search.best_index_
    result = Tuning({k: _plain(v) for k, v in search.best_params_.items()},
                    round(float(search.cv_results_["mean_test_score"][best]), 4),
                    round(float(search.cv_results_["std_test_score"][best]), 4))
    if cache:
        _write_cache(path, asdict(result) | {"cached": False, "key": key_source})
    return result


def _grid_search(name: str, train: pd.DataFrame, grid_values: dict, seed: int, n_splits: int,
                 n_jobs: int, error_score, scratch_prefix: str) -> GridSearchCV:
    """Return *name*'s grid search over *grid_values*, fitted by artist-grouped CV on *train*.

    Parameters
    ----------
    error_score : 'raise' or float
        What a failing fit scores (GridSearchCV's ``error_score``).
    scratch_prefix : str
        Name prefix of the temporary folder that caches the fitted transforms.
    """
    with tempfile.TemporaryDirectory(prefix=scratch_prefix) as scratch:
        # cache each fold's fitted conditioning + scaler, shared by all model settings
        estimator = build_model(name, random_state=seed).set_params(
            memory=joblib.Memory(scratch, verbose=0))
        search = GridSearchCV(estimator, grid_values, cv=grouped_folds(n_splits, seed),
                              n_jobs=n_jobs, error_score=error_score)
        # plain arrays and integer labels keep the cache keys cheap to hash; one BLAS/OpenMP
        # thread per process avoids oversubscribing a busy machine on many tiny fits
        codes, _ = pd.factorize(train["label"])
        with threadpool_limits(1):
            search.fit(train[list(MODEL_FEATURES)].to_numpy(dtype=float), codes,
                       groups=data.artist_groups(train["filename"]).to_numpy())
    return search


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class Evaluation:
    """One model scored on one split's test clips (see :func:`evaluate_model`)."""

    model: str
    split: str
    accuracy: float
    ci95: list
    macro_precision: float
    macro_recall: float
    macro_f1: float
    n_train: int
    n_test: int
    params: dict
    inner_cv_accuracy: float
    inner_cv_std: float
    seed: int
    grid: str
    y_true: np.ndarray = field(repr=False, default=None)
    y_pred: np.ndarray = field(repr=False, default=None)
    estimator: object = field(repr=False, default=None)

    def as_dict(self) -> dict:
        """Return the JSON-ready fields (no arrays, no estimator)."""
        skip = {"y_true", "y_pred", "estimator"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def evaluate_model(name: str = "knn", split: str = "fault-filtered", seed: int = 0,
                   grid: str = "full", n_jobs: int = 1, table: pd.DataFrame | None = None,
                   cache: bool = True) -> Evaluation:
    """Tune *name* on a split's train+valid clips by grouped inner CV, then score it on test.

    Parameters
    ----------
    name : str
        A model of :data:`helpers.models.MODEL_NAMES`.
    split : {'fault-filtered', 'stratified'}
        The published split (:func:`helpers.data.load_split`).
    seed : int
        Seed of the inner folds, the models and the bootstrap.
    grid : {'full', 'small'}
        Tuning grid size.
    table : pandas.DataFrame, optional
        Feature table (default: the embedded GTZAN table).

    Returns
    -------
    Evaluation
        Test accuracy with bootstrap 95% interval, macro precision/recall/F1, the chosen
        parameters and their inner-CV accuracy, the fitted estimator and test predictions.
    """
    if split not in SPLITS:
        raise InputError(split, f"unknown split; choose one of {', '.join(SPLITS)}")
    table = data.load_gtzan_table() if table is None else table
    train, test = split_frames(table, split)
    tuning = tune_model(name, train, seed=seed, grid=grid, n_jobs=n_jobs, cache=cache)
    estimator = build_model(name, random_state=seed).set_params(**tuning.params)
    estimator.fit(train[list(MODEL_FEATURES)], train["label"])
    y_pred = estimator.predict(test[list(MODEL_FEATURES)])
    scores = score_predictions(test["label"], y_pred, seed=seed)
    return Evaluation(model=name, split=split, n_train=len(train), n_test=len(test),
                      params=tuning.params, inner_cv_accuracy=tuning.cv_mean,
                      inner_cv_std=tuning.cv_std, seed=seed, grid=grid,
                      y_true=test["label"].to_numpy(), y_pred=y_pred, estimator=estimator,
                      **scores)


def grid_test_scores(name: str = "knn", split: str = "fault-filtered", seed: int = 0,
                     grid: str = "full", n_splits: int = 5, table: pd.DataFrame | None = None,
                     n_jobs: int = 1) -> pd.DataFrame:
    """Score every setting of *name*'s grid by grouped inner CV on train+valid *and* on test.

    A diagnostic, not a way to choose: it shows how well the inner-CV ranking of settings
    predicts their test accuracy (when many settings sit within the inner CV's noise, the
    chosen one can land below a fixed, untuned setting on test).

    Returns
    -------
    pandas.DataFrame
        One row per setting: the parameters, ``inner_cv_mean``, ``inner_cv_std``,
        ``inner_rank`` (1 = what tuning picks) and ``test_accuracy``; best inner CV first.
    """
    table = data.load_gtzan_table() if table is None else table
    train, test = split_frames(table, split)
    # every setting is scored, so a failing one scores NaN (GridSearchCV's default) not raises
    search = _grid_search(name, train, param_grid(name, grid), seed=seed, n_splits=n_splits,
                          n_jobs=n_jobs, error_score=np.nan, scratch_prefix="music-study-grid-")
    rows = []
    for i, params in enumerate(search.cv_results_["params"]):
        model = build_model(name, random_state=seed).set_params(**params)
        model.fit(train[list(MODEL_FEATURES)], train["label"])
        rows.append({**{k.split("__", 1)[1]: _plain(v) for k, v in params.items()},
                     "inner_cv_mean": float(search.cv_results_["mean_test_score"][i]),
                     "inner_cv_std": float(search.cv_results_["std_test_score"][i]),
                     "inner_rank": int(search.cv_results_["rank_test_score"][i]),
                     "test_accuracy": float(model.score(test[list(MODEL_FEATURES)], test["label"]))})
    return pd.DataFrame(rows).sort_values(["inner_rank", "test_accuracy"]).reset_index(drop=True)


def evaluate_models(names=MODEL_NAMES, **kwargs) -> list[Evaluation]:
    """Run :func:`evaluate_model` for each name (same split, seed and grid)."""
    return [evaluate_model(name, **kwargs) for name in names]


def results_frame(results) -> pd.DataFrame:
    """Return evaluations as a table, one row per model, best test accuracy first."""
    rows = [r.as_dict() for r in results]
    frame = pd.DataFrame(rows)
    frame["ci95"] = frame["ci95"].map(lambda ci: f"[{ci[0]:.3f}, {ci[1]:.3f}]")
    frame["inner_cv"] = [f"{r.inner_cv_accuracy:.3f} ± {r.inner_cv_std:.3f}" for r in results]
    columns = ["model", "split", "accuracy", "ci95", "macro_f1", "inner_cv", "n_train", "n_test", "params"]
    return frame[columns].sort_values("accuracy", ascending=False).reset_index(drop=True)


def repeated_cv(estimator, X, y, n_splits: int = 5, n_repeats: int = 10, seed: int = 0) -> np.ndarray:
    """Return accuracies of repeated stratified k-fold CV (the pipeline refits per fold)."""
    folds = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    return cross_val_score(estimator, X, y, cv=folds)


def grouped_cv(name: str, table: pd.DataFrame | None = None, n_splits: int = 5, seed: int = 0,
               grid: str | None = "small", n_jobs: int = 1) -> np.ndarray:
    """Return accuracies of artist-grouped CV over all clips of *table*.

    With *grid*, each outer training part tunes the model by its own grouped inner CV
    (nested CV); with ``grid=None`` the registry's default settings are used.
    """
    table = data.load_gtzan_table() if table is None else table
    groups = data.artist_groups(table["filename"]).to_numpy()
    estimator = build_model(name, random_state=seed)
    fit_params = {}
    if grid is not None:
        estimator = GridSearchCV(estimator, param_grid(name, grid), cv=grouped_folds(n_splits, seed),
                                 n_jobs=n_jobs)
        fit_params = {"groups": groups}
    scores = cross_validate(estimator, table[list(MODEL_FEATURES)], table["label"], groups=groups,
                            cv=grouped_folds(n_splits, seed), params=fit_params)
    return scores["test_score"]


# --------------------------------------------------------------------------- default-model selection

# SELECTION_VERSION (bumped when the selection protocol changes) lives in helpers.constants.


def _cache_key(kind: str, payload: dict, prefix: str = "") -> tuple[str, Path]:
    """Return the key text of a cached result and its file, ``data/cache/KIND/PREFIXmd5.json``.

    The key is *payload* plus the scikit-learn version, as sorted JSON; the file name holds
    the first 16 hex digits of its md5.
    """
    import sklearn

    from helpers.paths import data_dir

    source = json.dumps(payload | {"sklearn": sklearn.__version__}, sort_keys=True, default=str)
    key = hashlib.md5(source.encode()).hexdigest()[:16]
    return source, data_dir() / "cache" / kind / f"{prefix}{key}.json"


def _files_digest(table: pd.DataFrame) -> str:
    """Return the md5 of *table*'s file names in row order (part of the cache keys over rows)."""
    return hashlib.md5("\n".join(table["filename"]).encode()).hexdigest()


def _recipe_key(name: str, seed: int) -> str:
    """Return the text that identifies candidate *name*'s recipe in a cache key.

    The candidate and its unfitted base pipeline, so a changed recipe misses the cache.
    """
    from helpers.models import get_candidate

    candidate = get_candidate(name)
    return repr(candidate) + repr(build_model(candidate.base, seed))


def _read_cache(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None  # unreadable entry: compute again and overwrite it


def _write_cache(path: Path, document: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".part")
        temp.write_text(json.dumps(document, default=_plain))
        temp.replace(path)
    except OSError:
        pass  # caching is an optimisation only


_RECIPE = object()  # "the candidate's own calibration"


def fit_candidate(name: str, train: pd.DataFrame, seed: int = 0, grid: str = "small",
                  n_splits: int = 5, cache: bool = True, calibration=_RECIPE, groups=None,
                  calibration_splits: int | None = None):
    """Fit candidate *name* (:data:`helpers.models.CANDIDATES`) on *train* by its recipe.

    A tuned candidate first chooses its settings by artist-grouped CV on *train* only
    (:func:`tune_model`); a calibrated one calibrates over artist-grouped folds of *train*.

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
        when a genre has too few groups (:func:`helpers.active.calibration_folds`).

    Returns
    -------
    (pipeline, params) : fitted Pipeline and the tuned settings (empty when not tuned)
    """
    from helpers.models import calibrate, fit_grouped, get_candidate

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
    from sklearn.metrics import log_loss

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
    train, test = split_frames(table, split)
    model, _ = fit_candidate(name, train, seed=seed, grid=grid, n_splits=n_splits, cache=cache)
    scores = score_predictions(test["label"], model.predict(test[list(MODEL_FEATURES)]), seed=seed)
    return {"test_accuracy": scores["accuracy"], "test_ci95": scores["ci95"],
            "test_macro_f1": scores["macro_f1"], "test_split": split, "n_test": len(test),
            "n_train": len(train)}


def calibration_comparison(names, table: pd.DataFrame | None = None, methods=(None, "sigmoid", "temperature"),
                           seed: int = 0, grid: str = "small", n_splits: int = 5) -> pd.DataFrame:
    """Compare calibration methods per candidate by artist-grouped CV over all rows.

    Returns
    -------
    pandas.DataFrame
        ``name``, ``calibration`` ("none" for the model's own probabilities; NaN scores when it
        has none), ``cv_accuracy``,
        ``cv_std`` and ``cv_log_loss`` (lower is better calibrated), ``recipe`` (True for the
        method the candidate uses).
    """
    from helpers.models import get_candidate

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
    from helpers.models import CANDIDATE_NAMES, get_candidate

    table = data.load_gtzan_table() if table is None else table
    names = list(candidates or CANDIDATE_NAMES)
    for name in names:
        get_candidate(name)
    fingerprint = table_fingerprint(table)
    source, path = _cache_key("selection", {
        "version": SELECTION_VERSION, "names": names, "seed": seed, "grid": grid,
        "recipes": [_recipe_key(n, seed) for n in names],
        "n_splits": n_splits, "test_split": test_split, "rows": fingerprint,
        "files": _files_digest(table)})
    stored = _read_cache(path) if cache else None
    if stored is not None:
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
        _write_cache(path, {"selection": selection.to_document(), "key": source})
    return selection


# --------------------------------------------------------------------------- the original study

def reproduce_study(table: pd.DataFrame | None = None, random_state: int = 42) -> pd.DataFrame:
    """Re-run the original study's procedure and return its three accuracies.

    The study standardised all 58 columns (``length`` included) on all 1000 rows *before*
    splitting, held out 20% once (``random_state=42``), and scored a default KNN (k=5) on a
    random and a stratified split, then its tuned KNN (k=4, distance, p=1) on the stratified one.
    The scaler seeing the test rows is a (mild) leak; the single 200-clip test set is the
    bigger problem: each number carries a bootstrap 95% interval.
    """
    table = data.load_gtzan_table() if table is None else table
    X = StandardScaler().fit_transform(table[list(FEATURE_COLUMNS)])  # the study's leak, on purpose
    y = table["label"].to_numpy()
    rows = []
    for step, stratify, knn in [
        ("random split, default KNN (k=5)", None, KNeighborsClassifier()),
        ("stratified split, default KNN (k=5)", y, KNeighborsClassifier()),
        ("stratified split, tuned KNN (k=4, distance, p=1)", y,
         KNeighborsClassifier(n_neighbors=4, weights="distance", p=1)),
    ]:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=random_state,
                                                  stratify=stratify)
        y_pred = knn.fit(X_tr, y_tr).predict(X_te)
        lo, hi = bootstrap_ci(y_te, y_pred, seed=random_state)
        rows.append({"procedure": step, "split": f"80/20 random_state={random_state} (test n={len(y_te)})",
                     "accuracy": accuracy_score(y_te, y_pred), "ci95_lo": lo, "ci95_hi": hi})
    return pd.DataFrame(rows)


def study_split_spread(table: pd.DataFrame | None = None, n_seeds: int = 100) -> pd.DataFrame:
    """Return the study's KNN (k=5) accuracy on one 80/20 split for many ``random_state`` values.

    Shows how much a single 200-clip test split moves with the seed alone, for the random and
    the stratified split (the study compared one seed of each).
    """
    table = data.load_gtzan_table() if table is None else table
    X = StandardScaler().fit_transform(table[list(FEATURE_COLUMNS)])
    y = table["label"].to_numpy()
    rows = []
    for seed in range(n_seeds):
        for kind, stratify in (("random", None), ("stratified", y)):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed,
                                                      stratify=stratify)
            accuracy = KNeighborsClassifier().fit(X_tr, y_tr).score(X_te, y_te)
            rows.append({"random_state": seed, "split": kind, "accuracy": accuracy})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- recording source

def source_confounding(merged: pd.DataFrame, seed: int = 0, n_splits: int = 5) -> dict:
    """Measure how strongly recording source is confounded with genre in a merged table.

    Parameters
    ----------
    merged : pandas.DataFrame
        Output of :func:`helpers.models.merge_extra_rows` (has a ``source`` column).

    Returns
    -------
    dict
        ``source_share``: per-genre share of rows from each source (DataFrame);
        ``source_accuracy`` / ``source_balanced_accuracy`` / ``source_ci95``: how well a
        cross-validated logistic regression tells the source from the features alone
        (chance for balanced accuracy is 0.5); ``old_genre_rows`` and ``old_genres_called_new``:
        how many added rows carry a GTZAN genre, and the share of them that a cross-validated
        genre model calls one of the new genres (source leaking into genre).
    """
    from sklearn.metrics import balanced_accuracy_score

    if "source" not in merged.columns:
        raise InputError("table", "no 'source' column; build it with merge_extra_rows")
    X = merged[list(MODEL_FEATURES)]
    source = merged["source"].to_numpy()
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    detector = build_model("logreg").set_params(condition__method="log-variance", model__C=0.3)
    predicted_source = cross_val_predict(detector, X, source, cv=folds)
    genre_pred = cross_val_predict(build_model("logreg").set_params(condition__method="log-variance"),
                                   X, merged["label"], cv=StratifiedKFold(n_splits, shuffle=True,
                                                                          random_state=seed))
    gtzan_genres = set(merged.loc[merged["source"] == "gtzan", "label"])
    new_genres = set(merged["label"]) - gtzan_genres
    added = (merged["source"] != "gtzan").to_numpy()
    old = added & merged["label"].isin(gtzan_genres).to_numpy()
    return {
        "source_share": pd.crosstab(merged["label"], merged["source"], normalize="index").round(3),
        "source_accuracy": round(float(accuracy_score(source, predicted_source)), 4),
        "source_balanced_accuracy": round(float(balanced_accuracy_score(source, predicted_source)), 4),
        "source_ci95": list(bootstrap_ci(source, predicted_source, seed=seed)),
        "new_genres": sorted(new_genres),
        "old_genre_rows": int(old.sum()),
        "old_genres_called_new": round(float(np.isin(genre_pred[old], list(new_genres)).mean()), 4)
        if old.any() else float("nan"),
    }


# --------------------------------------------------------------------------- command line

def format_results(results) -> str:
    """Return a readable table; every accuracy names its split and carries its 95% interval."""
    lines = []
    for r in results:
        lines.append(
            f"{r.model:8s} accuracy on {r.split} test (n={r.n_test}) = {r.accuracy:.3f} "
            f"[95% CI {r.ci95[0]:.3f}-{r.ci95[1]:.3f}]  macro-F1 {r.macro_f1:.3f}  "
            f"inner grouped CV on train+valid (n={r.n_train}) {r.inner_cv_accuracy:.3f} "
            f"± {r.inner_cv_std:.3f}")
        lines.append(f"{'':8s} params: {json.dumps(r.params, sort_keys=True)}")
    return "\n".join(lines)


def run_evaluate_command(args) -> int:
    """``music-study evaluate``: tune by grouped inner CV, score on a published split's test.

    With ``--songs SOURCE`` it scores whole songs of a test bed instead
    (:func:`helpers.songbed.run_songs_command`).
    """
    if getattr(args, "songs", None):
        from helpers.songbed import run_songs_command

        return run_songs_command(args)
    name = getattr(args, "model", "knn") or "knn"
    names = list(MODEL_NAMES) if name == "all" else [name]
    for candidate in names:
        if candidate not in MODEL_NAMES:
            raise InputError(candidate, f"unknown model; choose one of {', '.join(MODEL_NAMES)}, all")
    results = []
    for candidate in names:
        print(f"tuning {candidate} on {args.split} train+valid ...", file=sys.stderr, flush=True)
        results.append(evaluate_model(candidate, split=args.split, seed=args.seed,
                                      grid=getattr(args, "grid", "full"),
                                      n_jobs=getattr(args, "jobs", 1),
                                      cache=not getattr(args, "retune", False)))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_results(results))
    return 0

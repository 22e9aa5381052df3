"""Honest evaluation of genre models: tuned by grouped inner CV, scored with uncertainty.

The protocol of :func:`evaluate_model`: take a published split, train on its train+valid
clips, choose every setting (feature conditioning and hyper-parameters,
:func:`helpers.models.pipelines.param_grid`) by grid search with an artist-grouped inner
cross-validation on those clips only, refit, then score once on the test clips with a
bootstrap 95% interval. Also here: repeated stratified k-fold, artist-grouped CV over all clips,
and the figures of these results.

Examples
--------
>>> from helpers.evaluation import heldout
>>> result = heldout.evaluate_model("knn", split="fault-filtered", grid="small")
>>> round(result.accuracy, 2), result.split, result.n_test
(0.44, 'fault-filtered', 290)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    cross_val_score,
    cross_validate,
)

from helpers import data
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.models.pipelines import MODEL_NAMES, build_model, param_grid
from helpers.models.tuning import grid_search, grouped_folds, plain, tune_model
from helpers.stats import mcnemar, reliability_table, score_predictions

#: Splits accepted by :func:`evaluate_model` (the published ones, see :func:`helpers.data.load_split`).
SPLITS = tuple(data.SPLITS)


def per_genre_report(y_true, y_pred) -> pd.DataFrame:
    """Return precision, recall, F1 and support per genre (plus macro and weighted averages)."""
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    report.pop("accuracy", None)
    return pd.DataFrame(report).T.round(3)


def plot_confusion(y_true, y_pred, title: str, ax=None, normalize: bool = True):
    """Draw a confusion-matrix heatmap (rows: true genre; normalised per row by default)."""

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

    frame = pd.DataFrame([r.as_dict() for r in results]).sort_values("accuracy")
    errors = np.array([frame["accuracy"] - frame["ci95"].str[0], frame["ci95"].str[1] - frame["accuracy"]])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    ax.barh(frame["model"] + " (tuned)", frame["accuracy"], xerr=errors, color="steelblue",
            capsize=4, label="tuned by grouped inner CV; bar: bootstrap 95% CI")
    if reference is not None:
        ax.axvline(reference["accuracy"], color="0.3", ls="--", label=reference["label"], zorder=4)
        # in front of the bars, hatched, so the band stays visible where it crosses them
        ax.axvspan(*reference["ci95"], facecolor="none", edgecolor="0.35", hatch="//", lw=0,
                   zorder=3, label="its bootstrap 95% CI")
    chance = 1 / len(set(results[0].y_true)) if results[0].y_true is not None and len(results[0].y_true) else None
    if chance:
        ax.axvline(chance, color="C3", ls=":", lw=1.5, label=f"chance ({chance:.2f}: one genre of {round(1 / chance)})")
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

    frame = pd.DataFrame(selection.candidates).sort_values("cv_accuracy")
    y = np.arange(len(frame))
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 3.8))
    ax.barh(y + 0.2, frame["cv_accuracy"], height=0.4, xerr=frame["cv_std"], capsize=3,
            color="C0", label=f"selection: artist-grouped {selection.n_splits}-fold CV, all "
                              f"{n_clips or ''} clips (± std over folds)".replace("  ", " "))
    test_err = np.array([frame["test_accuracy"] - frame["test_ci95"].str[0],
                         frame["test_ci95"].str[1] - frame["test_accuracy"]])
    ax.barh(y - 0.2, frame["test_accuracy"], height=0.4, xerr=test_err, capsize=3, color="C1",
            label=f"{frame['test_split'].iloc[0]} test (n={frame['n_test'].iloc[0]}, bootstrap 95% CI)")
    ax.axvline(0.1, color="C3", ls=":", lw=1.5, label="chance (0.10: one genre of 10)")
    ax.set_yticks(y, [f"{n} (default)" if n == selection.chosen else n for n in frame["name"]])
    ax.set_xlabel("accuracy (share of clips correct)")
    ax.set_title("Default-model candidates: chosen by the blue bars only", fontsize=10)
    # below the axes: beside them the figure would be wider than the report page
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=9, frameon=False, ncol=1)
    return ax


def plot_reliability(confidence, correct, title: str, n_bins: int = 10, ax=None):
    """Reliability diagram: accuracy per confidence bin (Clopper–Pearson 95% bars) against the
    diagonal of perfect calibration; the bins' counts as bars below. Returns ``(ax, ece)``."""

    bins, ece = reliability_table(confidence, correct, n_bins)
    frame = pd.DataFrame(bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfect calibration")
    errors = np.array([frame["accuracy"] - frame["ci95"].str[0], frame["ci95"].str[1] - frame["accuracy"]])
    ax.errorbar(frame["confidence"], frame["accuracy"], yerr=errors, fmt="o-", color="C0", capsize=3,
                label="accuracy per bin (exact 95% CI)")
    counts = ax.twinx()
    counts.bar((frame["low"] + frame["high"]) / 2, frame["n"], width=0.9 / n_bins, color="0.8",
               zorder=0, label="clips per bin")
    counts.set_ylabel("clips per bin (grey bars)")
    counts.grid(False)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="top predicted probability (confidence)",
           ylabel="share correct", title=f"{title}\nECE {ece:.3f} (n={len(np.asarray(correct))})")
    ax.legend(loc="upper left", frameon=False)
    return ax, ece


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
        A model of :data:`helpers.models.pipelines.MODEL_NAMES`.
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
    train, test = data.held_out_split(table, split)
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


def reconcile_models(results, selection, default_prediction: dict) -> pd.DataFrame:
    """One table of every model a report calls "best", each under the protocol that produced it.

    Parameters
    ----------
    results : list of Evaluation
        Registry models tuned on a split's train+valid by grouped inner CV (:func:`evaluate_models`).
    selection : helpers.models.selection.Selection
        The default-model selection: candidate recipes scored by artist-grouped CV over all clips.
    default_prediction : dict
        :func:`helpers.models.selection.candidate_test_predictions` of the chosen candidate on
        the same split (``y_true``, ``y_pred``): each tuned model is compared with it on the
        same test clips by McNemar's test.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``protocol``, ``chosen by`` (the score each protocol ranks by, on
        training data only), ``test accuracy``, ``test 95% CI``, ``McNemar p vs default``
        (the tuned models; NaN where no test predictions are kept), ``role``.
    """
    y_true = np.asarray(default_prediction["y_true"])
    default_correct = np.asarray(default_prediction["y_pred"]) == y_true
    rows = []
    for row in selection.ranked():
        rows.append({"model": row["name"], "protocol": "recipe chosen by artist-grouped CV over all clips",
                     "chosen by": f"{row['cv_accuracy']:.3f} ± {row['cv_std']:.3f} (grouped CV)",
                     "test accuracy": row["test_accuracy"],
                     "test 95% CI": f"[{row['test_ci95'][0]:.3f}, {row['test_ci95'][1]:.3f}]",
                     "McNemar p vs default": np.nan,
                     "role": "default" if row["name"] == selection.chosen else ""})
    for result in sorted(results, key=lambda r: -r.inner_cv_accuracy):
        if not np.array_equal(np.asarray(result.y_true), y_true):
            raise InputError("results", "tuned models and the default were not scored on the same test clips")
        test = mcnemar(np.asarray(result.y_pred) == y_true, default_correct)
        rows.append({"model": result.model,
                     "protocol": f"tuned ({result.grid} grid) by grouped inner CV on {result.split} train+valid",
                     "chosen by": f"{result.inner_cv_accuracy:.3f} ± {result.inner_cv_std:.3f} (inner CV)",
                     "test accuracy": result.accuracy,
                     "test 95% CI": f"[{result.ci95[0]:.3f}, {result.ci95[1]:.3f}]",
                     "McNemar p vs default": round(test.p_value, 3), "role": ""})
    return pd.DataFrame(rows)


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
    train, test = data.held_out_split(table, split)
    # every setting is scored, so a failing one scores NaN (GridSearchCV's default) not raises
    search = grid_search(name, train, param_grid(name, grid), seed=seed, n_splits=n_splits,
                         n_jobs=n_jobs, error_score=np.nan, scratch_prefix="music-study-grid-")
    rows = []
    for i, params in enumerate(search.cv_results_["params"]):
        model = build_model(name, random_state=seed).set_params(**params)
        model.fit(train[list(MODEL_FEATURES)], train["label"])
        rows.append({**{k.split("__", 1)[1]: plain(v) for k, v in params.items()},
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

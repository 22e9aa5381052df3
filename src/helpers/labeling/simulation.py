"""Active learning simulated: the whole loop replayed with the true labels as the oracle.

:func:`simulate` compares query strategies against random sampling on the GTZAN table, scored
on the artist-conscious held-out split; :func:`compare_to_random` gives the paired gains with
intervals, and the figures read them. :func:`simulate_settings` replays the labeler itself: its
own model (the default recipe, fitted as the labeler fits it, :func:`labeler_fit`) under several
(strategy, epsilon) settings, cached; :func:`rarest_genre_counts` says whether a setting starves
the rarest genre, and :func:`choose_setting` reads the query default off both.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from helpers.cache import CacheEntry, code_fingerprint
from helpers.constants import PAGE_WIDTH_INCHES
from helpers.data import held_out_split, load_gtzan_table
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.labeling.queries import STRATEGIES, query, uncertainty
from helpers.labeling.retrain import HELD_OUT_SPLIT, _test_size, default_recipe, fit_rows
from helpers.models.pipelines import make_knn
from helpers.models.selection import recipe_key
from helpers.models.training import table_fingerprint
from helpers.reports.narrate import gain_verdict
from helpers.stats import bootstrap_mean_interval


def _seed_indices(labels: np.ndarray, per_class: int, rng) -> np.ndarray:
    chosen = []
    for genre in np.unique(labels):
        members = np.flatnonzero(labels == genre)
        chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.asarray(sorted(chosen), dtype=int)


def labeler_fit(rows: pd.DataFrame):
    """Fit the labeler's own model on labelled *rows*: the default recipe, as the labeler fits it.

    :func:`helpers.labeling.retrain.fit_rows` (artist groups, calibration folds adapted to
    few artists) with the recipe of :func:`helpers.labeling.retrain.default_recipe`.
    """
    return fit_rows(rows, recipe=default_recipe()).model


def simulate(table: pd.DataFrame | None = None, *, strategies=STRATEGIES, seeds=range(5),
             per_class: int = 2, batch_size: int = 10, n_rounds: int = 20, epsilon: float = 0.0,
             estimator=None, split: str = HELD_OUT_SPLIT, columns=MODEL_FEATURES,
             fit=None) -> pd.DataFrame:
    """Replay pool-based active learning on the GTZAN table with the true labels as the oracle.

    The pool is the training part of *split*, the evaluation set its test part (artist-conscious
    for ``'fault-filtered'``). For each seed, every strategy starts from the same labelled seed
    set (*per_class* clips per genre), then queries *batch_size* clips per round.

    *fit*, when given, replaces ``clone(estimator).fit``: called with the labelled pool rows
    (``filename``, features, ``label``), it returns a fitted model (:func:`labeler_fit`: the
    labeler's own).

    Returns
    -------
    pandas.DataFrame
        One row per (strategy, seed, round): ``strategy, seed, round, n_labelled, accuracy,
        macro_f1, genres_seen, fewest_per_genre`` (clips of the rarest genre in the labelled set).
    """

    for strategy in strategies:
        uncertainty(np.ones((1, 1)), strategy)  # validates the name
    estimator = make_knn() if estimator is None else estimator
    pool_rows, test_rows = held_out_split(load_gtzan_table() if table is None else table, split)
    pool_rows = pool_rows.reset_index(drop=True)
    X_pool = pool_rows[list(columns)]
    y_pool = pool_rows["label"].to_numpy()
    X_test, y_test = test_rows[list(columns)], test_rows["label"].to_numpy()
    if fit is None:
        def fit(rows):
            return clone(estimator).fit(rows[list(columns)], rows["label"].to_numpy())
    records = []
    # Hundreds of tiny fits: thread start-up in BLAS/OpenMP costs more than it saves.
    with threadpool_limits(1):
        _simulate_runs(records, seeds, strategies, fit, pool_rows, X_pool, y_pool, X_test, y_test,
                       per_class, batch_size, n_rounds, epsilon)
    return pd.DataFrame(records)


def _simulate_runs(records, seeds, strategies, fit, pool_rows, X_pool, y_pool, X_test, y_test,
                   per_class, batch_size, n_rounds, epsilon) -> None:
    genres = np.unique(y_pool)
    for seed in seeds:
        initial = _seed_indices(y_pool, per_class, np.random.default_rng(seed))
        for strategy in strategies:
            rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
            labelled = np.zeros(len(y_pool), dtype=bool)
            labelled[initial] = True
            for round_ in range(n_rounds + 1):
                model = fit(pool_rows[labelled])
                predicted = model.predict(X_test)
                records.append({
                    "strategy": strategy, "seed": int(seed), "round": round_,
                    "n_labelled": int(labelled.sum()),
                    "accuracy": float(accuracy_score(y_test, predicted)),
                    "macro_f1": float(f1_score(y_test, predicted, average="macro", zero_division=0)),
                    "genres_seen": len(set(y_pool[labelled])),
                    "fewest_per_genre": int(min((y_pool[labelled] == g).sum() for g in genres)),
                })
                unlabelled = np.flatnonzero(~labelled)
                if round_ == n_rounds or not len(unlabelled):
                    break
                proba = _proba_over_all_genres(model, X_pool.iloc[unlabelled], np.unique(y_pool))
                picks = query(proba, batch_size, strategy, epsilon=epsilon, random_state=rng)
                labelled[unlabelled[picks]] = True


def setting_name(strategy: str, epsilon: float) -> str:
    """How a (strategy, epsilon) setting is named in tables: ``margin, ε=0.1`` (random: ``random``)."""
    return "random" if strategy == "random" else f"{strategy}, ε={float(epsilon):g}"


def simulate_settings(settings, *, seeds=range(5), per_class: int = 2, batch_size: int = 10,
                      n_rounds: int = 20, table: pd.DataFrame | None = None,
                      cache: bool = True) -> pd.DataFrame:
    """Replay the labeler itself: its own model (:func:`labeler_fit`) under each query setting.

    Every setting runs on the same seeds and seed sets (paired); ``random`` is always included.
    Hundreds of calibrated fits take minutes, so the result is cached (``data/cache/simulation``,
    keyed by the settings, sizes, the recipe and the table).

    Parameters
    ----------
    settings : iterable of (str, float)
        (strategy, epsilon) pairs, e.g. ``[("margin", 0.1), ("entropy", 0.0)]``.

    Returns
    -------
    pandas.DataFrame
        :func:`simulate` rows with ``strategy`` set to :func:`setting_name` and an ``epsilon`` column.
    """
    settings = [("random", 0.0)] + [(s, float(e)) for s, e in settings if s != "random"]
    table = load_gtzan_table() if table is None else table
    recipe = default_recipe()
    entry = CacheEntry.for_payload("simulation", {
        "code": code_fingerprint("helpers.labeling.simulation", "helpers.models.pipelines"),
        "settings": settings, "seeds": list(seeds), "per_class": per_class,
        "batch_size": batch_size, "n_rounds": n_rounds, "recipe": recipe_key(recipe, 0),
        "rows": table_fingerprint(table)})
    stored = entry.read() if cache else None
    if stored is not None and isinstance(stored.get("rows"), list):
        return pd.DataFrame(stored["rows"])
    frames = []
    for strategy, epsilon in settings:
        runs = simulate(table, strategies=(strategy,), seeds=seeds, per_class=per_class,
                        batch_size=batch_size, n_rounds=n_rounds, epsilon=epsilon, fit=labeler_fit)
        frames.append(runs.assign(strategy=setting_name(strategy, epsilon), epsilon=epsilon))
    results = pd.concat(frames, ignore_index=True)
    if cache:
        entry.write({"rows": results.to_dict("records")})
    return results


def _proba_over_all_genres(model, X, genres) -> np.ndarray:
    """``predict_proba`` with a column for every genre (unseen genres get 0)."""
    proba = model.predict_proba(X)
    full = np.zeros((len(X), len(genres)))
    index = {g: i for i, g in enumerate(genres)}
    for j, genre in enumerate(model.classes_):
        full[:, index[genre]] = proba[:, j]
    return full


def learning_curves(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Summarise :func:`simulate` output per strategy and labelled-set size.

    Returns
    -------
    pandas.DataFrame
        ``strategy, n_labelled, mean, std, low, high, n_seeds`` (low/high: mean -/+ 1.96
        standard errors over seeds).
    """
    grouped = results.groupby(["strategy", "n_labelled"])[metric]
    curves = grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()
    half = 1.96 * curves["std"].fillna(0.0) / np.sqrt(curves["n_seeds"])
    curves["low"], curves["high"] = curves["mean"] - half, curves["mean"] + half
    return curves


def compare_to_random(results: pd.DataFrame, metric: str = "accuracy", n_boot: int = 2000,
                      random_state=0) -> pd.DataFrame:
    """Paired comparison of each strategy with random sampling over the same seeds.

    For every seed the area under the learning curve (mean *metric* over rounds after the
    seed set) of a strategy minus that of random sampling; also the difference at the final
    round. Intervals are bootstrap 95% over seeds.

    Returns
    -------
    pandas.DataFrame
        Per strategy: ``mean_gain_auc, ci_low_auc, ci_high_auc, mean_gain_final,
        ci_low_final, ci_high_final, wins`` (seeds where the area beats random), ``n_seeds``.
    """
    if "random" not in set(results["strategy"]):
        raise InputError("results", "need a 'random' strategy run to compare against")
    later = results[results["round"] > 0]
    auc = later.groupby(["strategy", "seed"])[metric].mean().unstack("strategy")
    last = results[results["round"] == results["round"].max()]
    final = last.groupby(["seed", "strategy"])[metric].mean().unstack("strategy")
    rng = np.random.default_rng(random_state)
    rows = []
    for strategy in auc.columns.drop("random"):
        row = {"strategy": strategy}
        for name, frame in (("auc", auc), ("final", final)):
            gain = (frame[strategy] - frame["random"]).dropna().to_numpy()
            row[f"mean_gain_{name}"] = float(gain.mean())
            row[f"ci_low_{name}"], row[f"ci_high_{name}"] = bootstrap_mean_interval(gain, n_boot, rng=rng)
        row["wins"] = int(((auc[strategy] - auc["random"]) > 0).sum())
        row["n_seeds"] = int(auc[strategy].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def describe_gain(row, level: str = "95%") -> str:
    """Say what a :func:`compare_to_random` row shows, from both the area and the final gain.

    A strategy "beats random" only when both intervals lie above 0 and "is worse" only when
    both lie below; when both include 0 there is "no clear difference"; otherwise the two
    intervals disagree and both are stated.
    """

    area = (row["ci_low_auc"], row["ci_high_auc"])
    final = (row["ci_low_final"], row["ci_high_final"])
    above = [low > 0 for low, _ in (area, final)]
    below = [high < 0 for _, high in (area, final)]
    numbers = (f"area gain {row['mean_gain_auc']:+.3f} [{area[0]:+.3f}, {area[1]:+.3f}], final gain "
               f"{row['mean_gain_final']:+.3f} [{final[0]:+.3f}, {final[1]:+.3f}]")
    if all(above):
        verdict = "beats random"
    elif all(below):
        verdict = "is worse than random"
    elif not any(above) and not any(below):
        verdict = "shows no clear difference from random"
    else:
        return (f"{row['strategy']}: mixed — {gain_verdict('area', area, level, 'gain')}; "
                f"{gain_verdict('final round', final, level, 'gain')}")
    return f"{row['strategy']} {verdict} ({numbers}; {level} bootstrap intervals over seeds)"


def rarest_genre_counts(results: pd.DataFrame, n_labelled: int | None = None) -> pd.DataFrame:
    """Clips of the rarest genre in the labelled set per strategy, at *n_labelled* (default last).

    Returns
    -------
    pandas.DataFrame
        Per strategy: ``mean, std, n_seeds`` (over seeds), ``vs_random`` (mean paired
        difference to random on the same seeds) with ``vs_random_low`` / ``vs_random_high``
        (bootstrap 95% over seeds).
    """
    n_labelled = int(results["n_labelled"].max()) if n_labelled is None else int(n_labelled)
    at = results[results["n_labelled"] == n_labelled]
    table = at.groupby("strategy")["fewest_per_genre"].agg(mean="mean", std="std", n_seeds="count")
    if "random" in table.index:
        per_seed = at.groupby(["seed", "strategy"])["fewest_per_genre"].mean().unstack("strategy")
        rng = np.random.default_rng(0)
        gaps = {s: (per_seed[s] - per_seed["random"]).dropna().to_numpy() for s in table.index}
        table["vs_random"] = [float(gaps[s].mean()) for s in table.index]
        bounds = [bootstrap_mean_interval(gaps[s], rng=rng) for s in table.index]
        table["vs_random_low"] = [b[0] for b in bounds]
        table["vs_random_high"] = [b[1] for b in bounds]
    return table


def choose_setting(comparison: pd.DataFrame, counts: pd.DataFrame) -> dict:
    """The query setting the simulation supports, and why.

    A setting is supported over random only when it beats random (area and final-round gain
    intervals both above 0, :func:`compare_to_random`) and does not starve the rarest genre
    (its paired difference in rarest-genre clips is not below 0 with its interval,
    :func:`rarest_genre_counts`); among such settings the largest mean area gain wins. When
    none qualifies the simulation supports nothing better than random picking, and ``random``
    is returned.

    Returns
    -------
    dict
        ``setting`` (a :func:`setting_name`), ``reason`` (one sentence).
    """
    supported = []
    for row in comparison.itertuples():
        beats = row.ci_low_auc > 0 and row.ci_low_final > 0
        starves = counts.loc[row.strategy, "vs_random_high"] < 0
        if beats and not starves:
            supported.append((row.mean_gain_auc, row.strategy))
    if supported:
        gain, best = max(supported)
        return {"setting": best, "reason": f"{best} beats random on area and final accuracy "
                f"(mean area gain {gain:+.3f}) without starving the rarest genre"}
    return {"setting": "random", "reason": "no setting beats random on both area and final "
            "accuracy without starving the rarest genre"}


def plot_simulation(results: pd.DataFrame, models, seeds: int):
    """Learning curves (left, one y scale for every model) and rarest-genre counts (right).

    Parameters
    ----------
    results : DataFrame
        :func:`simulate` output with a ``model`` column.
    models : list of str
        Models to draw, one row each.
    seeds : int
        Number of seeds (for the titles).

    Returns
    -------
    matplotlib.figure.Figure
    """

    figure, axes = plt.subplots(len(models), 2, figsize=(PAGE_WIDTH_INCHES, 4.0 * len(models) + 0.6),
                                squeeze=False,
                                sharey="col", layout="constrained")
    strategies = sorted(results["strategy"].unique(), key=lambda s: (s != "random", s))
    colours = dict(zip(strategies, plt.cm.tab10.colors, strict=False))
    for (left, right), name in zip(axes, models, strict=True):
        subset = results[results["model"] == name]
        for strategy, curve in learning_curves(subset).groupby("strategy"):
            dashed = "--" if strategy == "random" else "-"
            left.plot(curve["n_labelled"], curve["mean"], label=strategy, linestyle=dashed,
                      color=colours[strategy])
            left.fill_between(curve["n_labelled"], curve["low"], curve["high"], alpha=0.08,
                              color=colours[strategy])
        left.set(xlabel="labelled clips (fault-filtered train+valid pool)",
                 ylabel=f"accuracy, test n={_test_size()}", title=f"{name}: learning curves")
        rarest = subset.groupby(["strategy", "n_labelled"])["fewest_per_genre"].mean().unstack("strategy")
        for strategy in rarest.columns:
            right.plot(rarest.index, rarest[strategy], label=strategy, color=colours[strategy],
                       linestyle="--" if strategy == "random" else "-")
        right.set(xlabel="labelled clips", ylabel="clips of the rarest genre",
                  title=f"{name}: the rarest genre in the labelled set")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, title="strategy", loc="outside lower center",
                  ncol=min(len(labels), 6))
    figure.suptitle(f"Simulated labelling, mean over {seeds} seeds (left: band = 95% CI; "
                    "fault-filtered split)", fontsize=11)
    return figure


def describe_settings(comparison: pd.DataFrame, counts: pd.DataFrame) -> str:
    """Every simulated setting's paired gains over random picking, as one clause each: area and
    final accuracy with their intervals, and the rarest genre's clips (:func:`compare_to_random`,
    :func:`rarest_genre_counts`)."""
    rows = comparison.set_index("strategy")
    return "; ".join(
        f"{s}: area {rows.loc[s, 'mean_gain_auc']:+.3f} [{rows.loc[s, 'ci_low_auc']:+.3f}, "
        f"{rows.loc[s, 'ci_high_auc']:+.3f}], final {rows.loc[s, 'mean_gain_final']:+.3f} "
        f"[{rows.loc[s, 'ci_low_final']:+.3f}, {rows.loc[s, 'ci_high_final']:+.3f}], rarest genre "
        f"{counts.loc[s, 'vs_random']:+.1f} [{counts.loc[s, 'vs_random_low']:+.1f}, "
        f"{counts.loc[s, 'vs_random_high']:+.1f}] clips" for s in rows.index)

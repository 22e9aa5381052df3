"""Active learning: which songs to ask a person about next, and retraining on their answers.

Query strategies score the whole unlabelled pool at once from the model's class probabilities
(one matrix, no loop over songs) and pick the most uncertain items; a share ``epsilon`` of the
picks is drawn at random instead, so that genres the model is wrongly sure about (often the
minority ones) are still seen. :func:`retrain` fits a model on the GTZAN table plus the label
store's current labels and reports accuracy before and after on a fixed, artist-conscious
held-out set. :func:`simulate` replays the whole loop with the true labels as the oracle, to
compare strategies against random sampling.

Examples
--------
>>> import numpy as np
>>> from helpers.active import uncertainty, query
>>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
>>> uncertainty(proba, "margin").round(2).tolist()
[0.2, 1.0, 0.8]
>>> query(proba, 1, "least_confidence", epsilon=0.0, random_state=0).tolist()
[1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from helpers.errors import InputError
from helpers.models import MODEL_FEATURES, make_knn
from helpers.stats import bootstrap_mean_interval

#: Query strategies accepted by :func:`uncertainty` and :func:`query`.
STRATEGIES = ("least_confidence", "margin", "entropy", "random")

#: Fixed held-out set used to compare models before and after retraining.
HELD_OUT_SPLIT = "fault-filtered"


def _proba(probabilities) -> np.ndarray:
    proba = np.asarray(probabilities, dtype=float)
    if proba.ndim != 2 or proba.shape[1] == 0:
        raise InputError("probabilities", f"need a 2-D (items x classes) array, got shape {proba.shape}")
    if not np.all(np.isfinite(proba)):
        raise InputError("probabilities", "hold NaN or infinite values")
    return proba


def uncertainty(probabilities, strategy: str = "least_confidence") -> np.ndarray:
    """Score each row of a probability matrix: higher means the model is less sure.

    Parameters
    ----------
    probabilities : array-like, shape (n_items, n_classes)
        ``predict_proba`` output over the pool.
    strategy : {'least_confidence', 'margin', 'entropy', 'random'}
        ``least_confidence``: 1 - top probability. ``margin``: 1 - (top - second).
        ``entropy``: Shannon entropy in bits. ``random``: all zeros (every item equal).

    Returns
    -------
    np.ndarray, shape (n_items,)
    """
    proba = _proba(probabilities)
    if strategy == "least_confidence":
        return 1.0 - proba.max(axis=1)
    if strategy == "margin":
        if proba.shape[1] == 1:
            return np.zeros(len(proba))
        top_two = -np.partition(-proba, 1, axis=1)[:, :2]
        return 1.0 - (top_two[:, 0] - top_two[:, 1])
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(proba > 0, proba * np.log2(proba), 0.0)
        return -terms.sum(axis=1)
    if strategy == "random":
        return np.zeros(len(proba))
    raise InputError(repr(strategy), f"unknown query strategy; choose one of {', '.join(STRATEGIES)}")


def query(probabilities, n: int = 1, strategy: str = "least_confidence", epsilon: float = 0.1,
          random_state=None) -> np.ndarray:
    """Pick *n* items of the pool to label next.

    Each pick is, with probability *epsilon*, drawn uniformly from the pool; the others are the
    most uncertain items under *strategy* (ties broken at random).

    Parameters
    ----------
    probabilities : array-like, shape (n_items, n_classes)
        Model probabilities over the whole unlabelled pool.
    n : int
        How many items to pick (fewer if the pool is smaller).
    strategy : str
        One of :data:`STRATEGIES`; ``'random'`` ignores the probabilities.
    epsilon : float in [0, 1]
        Share of random picks.
    random_state : int, numpy Generator or None

    Returns
    -------
    np.ndarray of int
        Row indices into *probabilities*, most uncertain first, random picks after them.
    """
    scores = uncertainty(probabilities, strategy)
    if not 0.0 <= float(epsilon) <= 1.0:
        raise InputError(repr(epsilon), "epsilon must be between 0 and 1")
    if int(n) < 0:
        raise InputError(repr(n), "number of picks must be >= 0")
    rng = np.random.default_rng(random_state)
    n = min(int(n), len(scores))
    n_random = n if strategy == "random" else int(rng.binomial(n, float(epsilon)))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -scores))  # by score descending, ties at random
    chosen = order[: n - n_random]
    rest = np.setdiff1d(np.arange(len(scores)), chosen)
    random_picks = rng.choice(rest, size=n_random, replace=False) if n_random else []
    return np.concatenate([chosen, np.asarray(random_picks, dtype=int)]).astype(int)


def model_fingerprint(model) -> str:
    """Return a short stable hash of a fitted model (recorded with each stored prediction)."""
    import joblib

    return joblib.hash(model)[:16]


def make_estimator(name: str = "knn"):
    """Return an unfitted genre model with ``predict_proba`` (which every strategy needs).

    Parameters
    ----------
    name : str
        ``'logistic'``: standardised logistic regression on the raw features — graded
        probabilities at a fraction of a second per fit, for simulations with hundreds of
        fits. Any other name goes to :func:`helpers.models.build_model` (``MODEL_NAMES``).

    Raises
    ------
    InputError
        Unknown name, or a model that cannot give probabilities.
    """
    from helpers.models import build_model

    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000))])
    estimator = build_model(name)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(estimator, "predict_proba") and "probability" in final.get_params():
        final.set_params(probability=True)  # SVC: Platt-scaled probabilities
    if not hasattr(estimator, "predict_proba"):
        raise InputError(name, "model gives no class probabilities; query strategies need them")
    return estimator


def bootstrap_accuracy(y_true, y_pred, n_boot: int = 1000, random_state=0) -> dict:
    """Return accuracy, macro F1 and a bootstrap 95% interval of the accuracy.

    Returns
    -------
    dict
        ``accuracy, ci_low, ci_high, macro_f1, n``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise InputError("held-out set", "is empty")
    correct = (y_true == y_pred).astype(float)
    low, high = bootstrap_mean_interval(correct, n_boot, rng=random_state)
    return {"accuracy": float(correct.mean()), "ci_low": float(low), "ci_high": float(high),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "n": int(len(y_true))}


def held_out_split(table: pd.DataFrame | None = None, split: str = HELD_OUT_SPLIT):
    """Return ``(train_rows, test_rows)`` of the GTZAN table under a published split.

    With ``'fault-filtered'`` the test part shares no artist with the training part (train and
    valid together form the training part); clips the split leaves out are in neither.
    """
    from helpers.data import load_gtzan_table, split_masks

    table = load_gtzan_table() if table is None else table
    masks = split_masks(table, split)
    return table[masks["train"] | masks["valid"]], table[masks["test"]]


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

    def summary(self) -> str:
        """One line: accuracy before and after with intervals, named split, rows used."""
        def fmt(m):
            return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"

        line = (f"held-out accuracy ({self.split} test, n={self.after['n']}, bootstrap 95% CI): "
                f"before {fmt(self.before)} -> after {fmt(self.after)}; trained on "
                f"{self.n_base} table rows + {self.n_store} labelled windows")
        if self.new_genres:
            line += f"; new genres: {', '.join(self.new_genres)}"
        return line

    def save(self, path=None):
        """Save the retrained model as a model file (skops, with its held-out metrics).

        Parameters
        ----------
        path : path-like, optional
            Default ``data/models/retrained.skops`` (git-ignored); ``music-study predict
            --model PATH`` and :func:`helpers.models.load_model` read it.

        Returns
        -------
        pathlib.Path
        """
        from pathlib import Path

        from helpers.models import save_model
        from helpers.paths import data_dir

        path = Path(path) if path is not None else data_dir() / "models" / "retrained.skops"
        metrics = {"held_out_split": f"{self.split} test", "before": self.before, "after": self.after}
        return save_model(self.model, path, {
            "metrics": metrics, "trained_by": "helpers.active.retrain",
            "n_table_rows": self.n_base, "n_store_rows": self.n_store,
            "store_genres": self.store_genres})


def training_rows(store=None, *, base_table=None, split: str = HELD_OUT_SPLIT,
                  columns=MODEL_FEATURES):
    """Return the rows a retrain uses, and the fixed held-out rows.

    Returns
    -------
    base : DataFrame
        ``filename``, *columns*, ``label`` of the base table (default: the training part of
        *split*).
    extra : DataFrame
        The store's current labels as window rows (with ``song_id``), minus any whose file
        is in the held-out set.
    held_out : DataFrame
        The test part of *split* in the GTZAN table.
    excluded : int
        Store rows left out because they are held-out clips.
    """
    from helpers.data import load_gtzan_table

    train_rows, held_out = held_out_split(load_gtzan_table(), split)
    base = (train_rows if base_table is None else base_table)[["filename", *columns, "label"]]
    if store is not None:
        extra = store.export_training_rows(provenance=True)
    else:
        extra = pd.DataFrame(columns=["filename", *columns, "label", "song_id"])
    leaking = extra["filename"].isin(set(held_out["filename"]))
    return base, extra[~leaking], held_out, int(leaking.sum())


def _fit(estimator, rows: pd.DataFrame, columns):
    return clone(estimator).fit(rows[list(columns)], rows["label"])


def retrain(store=None, *, estimator=None, previous_model=None, base_table=None,
            split: str = HELD_OUT_SPLIT, columns=MODEL_FEATURES, curve_points: int = 5,
            n_boot: int = 1000, random_state=0) -> RetrainResult:
    """Fit a genre model on the table plus the store's labels; compare before/after held out.

    Parameters
    ----------
    store : LabelStore, optional
        Source of extra labelled windows (:meth:`LabelStore.export_training_rows`).
    estimator : estimator, optional
        Unfitted model to clone (default :func:`helpers.models.make_knn`).
    previous_model : fitted estimator, optional
        The model in use before; default: *estimator* fitted on the base rows alone.
    base_table : DataFrame, optional
        Base training rows in the GTZAN layout; default the training part (train + valid) of
        the GTZAN table under *split*.
    split : str
        Published split whose test part is the fixed held-out set (default fault-filtered,
        artist-conscious).
    curve_points : int
        Points on the learning curve (store songs added in labelling order); 0 skips it.

    Returns
    -------
    RetrainResult
    """
    estimator = make_knn() if estimator is None else estimator
    base, extra, test_rows, excluded = training_rows(store, base_table=base_table, split=split,
                                                     columns=columns)
    X_test, y_test = test_rows[list(columns)], test_rows["label"]

    before_model = previous_model if previous_model is not None else _fit(estimator, base, columns)
    before = bootstrap_accuracy(y_test, before_model.predict(X_test), n_boot, random_state)
    model = _fit(estimator, pd.concat([base, extra[base.columns]], ignore_index=True), columns)
    after = bootstrap_accuracy(y_test, model.predict(X_test), n_boot, random_state)

    curve = _learning_curve(store, extra, base, estimator, columns, X_test, y_test, model, after,
                            curve_points, n_boot, random_state) if curve_points and len(extra) else []
    known_before = set(map(str, getattr(before_model, "classes_", [])))
    return RetrainResult(
        model=model, before=before, after=after, split=split, n_base=len(base), n_store=len(extra),
        store_genres=extra["label"].value_counts().sort_index().to_dict(),
        new_genres=sorted(set(map(str, model.classes_)) - known_before),
        curve=pd.DataFrame(curve), excluded=excluded)


def _learning_curve(store, extra, base, estimator, columns, X_test, y_test, final_model, final,
                    points, n_boot, random_state) -> list[dict]:
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
                fitted = _fit(estimator, pd.concat([base, chosen[base.columns]], ignore_index=True),
                              columns)
                metrics = bootstrap_accuracy(y_test, fitted.predict(X_test), n_boot, random_state)
            rows.append({"store_songs": k, "store_windows": len(chosen), **metrics})
    return rows


# --------------------------------------------------------------------------- simulation
def _seed_indices(labels: np.ndarray, per_class: int, rng) -> np.ndarray:
    chosen = []
    for genre in np.unique(labels):
        members = np.flatnonzero(labels == genre)
        chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.asarray(sorted(chosen), dtype=int)


def simulate(table: pd.DataFrame | None = None, *, strategies=STRATEGIES, seeds=range(5),
             per_class: int = 2, batch_size: int = 10, n_rounds: int = 20, epsilon: float = 0.0,
             estimator=None, split: str = HELD_OUT_SPLIT, columns=MODEL_FEATURES) -> pd.DataFrame:
    """Replay pool-based active learning on the GTZAN table with the true labels as the oracle.

    The pool is the training part of *split*, the evaluation set its test part (artist-conscious
    for ``'fault-filtered'``). For each seed, every strategy starts from the same labelled seed
    set (*per_class* clips per genre), then queries *batch_size* clips per round.

    Returns
    -------
    pandas.DataFrame
        One row per (strategy, seed, round): ``strategy, seed, round, n_labelled, accuracy,
        macro_f1, genres_seen, fewest_per_genre`` (clips of the rarest genre in the labelled set).
    """
    from helpers.data import load_gtzan_table

    for strategy in strategies:
        uncertainty(np.ones((1, 1)), strategy)  # validates the name
    estimator = make_knn() if estimator is None else estimator
    pool_rows, test_rows = held_out_split(load_gtzan_table() if table is None else table, split)
    X_pool = pool_rows[list(columns)].reset_index(drop=True)
    y_pool = pool_rows["label"].to_numpy()
    X_test, y_test = test_rows[list(columns)], test_rows["label"].to_numpy()
    records = []
    # Hundreds of tiny fits: thread start-up in BLAS/OpenMP costs more than it saves.
    with threadpool_limits(1):
        _simulate_runs(records, seeds, strategies, estimator, X_pool, y_pool, X_test, y_test,
                       per_class, batch_size, n_rounds, epsilon)
    return pd.DataFrame(records)


def _simulate_runs(records, seeds, strategies, estimator, X_pool, y_pool, X_test, y_test,
                   per_class, batch_size, n_rounds, epsilon) -> None:
    genres = np.unique(y_pool)
    for seed in seeds:
        initial = _seed_indices(y_pool, per_class, np.random.default_rng(seed))
        for strategy in strategies:
            rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
            labelled = np.zeros(len(y_pool), dtype=bool)
            labelled[initial] = True
            for round_ in range(n_rounds + 1):
                model = clone(estimator).fit(X_pool[labelled], y_pool[labelled])
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


# --------------------------------------------------------------------------- reading a simulation
def describe_gain(row, level: str = "95%") -> str:
    """Say what a :func:`compare_to_random` row shows, from both the area and the final gain.

    A strategy "beats random" only when both intervals lie above 0 and "is worse" only when
    both lie below; when both include 0 there is "no clear difference"; otherwise the two
    intervals disagree and both are stated.
    """
    from helpers.narrate import gain_verdict

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
        Per strategy: ``mean, std, n_seeds`` (over seeds) and ``vs_random`` (mean difference).
    """
    n_labelled = int(results["n_labelled"].max()) if n_labelled is None else int(n_labelled)
    at = results[results["n_labelled"] == n_labelled]
    table = at.groupby("strategy")["fewest_per_genre"].agg(mean="mean", std="std", n_seeds="count")
    if "random" in table.index:
        table["vs_random"] = table["mean"] - table.loc["random", "mean"]
    return table


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
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(models), 2, figsize=(13, 4.2 * len(models)), squeeze=False,
                                sharey="col", layout="constrained")
    for (left, right), name in zip(axes, models, strict=True):
        subset = results[results["model"] == name]
        for strategy, curve in learning_curves(subset).groupby("strategy"):
            left.plot(curve["n_labelled"], curve["mean"], label=strategy,
                      linestyle="--" if strategy == "random" else "-")
            left.fill_between(curve["n_labelled"], curve["low"], curve["high"], alpha=0.15)
        left.set(xlabel="labelled clips (pool: fault-filtered train+valid)",
                 ylabel="accuracy (fault-filtered test)",
                 title=f"{name}: learning curves, mean ± 95% CI over {seeds} seeds "
                       f"(test n={_test_size()})")
        rarest = subset.groupby(["strategy", "n_labelled"])["fewest_per_genre"].mean().unstack("strategy")
        for strategy in rarest.columns:
            right.plot(rarest.index, rarest[strategy], label=strategy,
                       linestyle="--" if strategy == "random" else "-")
        right.set(xlabel="labelled clips", ylabel="clips of the rarest genre (mean over seeds)",
                  title=f"{name}: how balanced the labelled set is")
    axes[0, 1].legend(title="strategy", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _test_size(split: str = HELD_OUT_SPLIT) -> int:
    return len(held_out_split(split=split)[1])


def held_out_song_predictions(store, *, estimator=None, base_table=None,
                              columns=MODEL_FEATURES) -> pd.DataFrame:
    """Predict each labelled song's windows with a model that never saw that song.

    Leave one song out: for every song with a current label, fit *estimator* on the base rows
    plus the other songs' labelled windows, then predict this song's windows. Predicting the
    windows a model was just trained on would only show that it remembers them.

    Returns
    -------
    pandas.DataFrame
        ``song_id, filename, window_start, window_end, label, predicted``.
    """
    estimator = make_knn() if estimator is None else estimator
    base, extra, _, _ = training_rows(store, base_table=base_table, columns=columns)
    rows = []
    with threadpool_limits(1):
        for song_id, song_rows in extra.groupby("song_id"):
            others = extra[extra["song_id"] != song_id]
            model = _fit(estimator, pd.concat([base, others[base.columns]], ignore_index=True), columns)
            predicted = model.predict(song_rows[list(columns)])
            rows.append(song_rows[["song_id", "filename", "window_start", "window_end", "label"]]
                        .assign(predicted=predicted))
    if not rows:
        return pd.DataFrame(columns=["song_id", "filename", "window_start", "window_end", "label",
                                     "predicted"])
    return pd.concat(rows, ignore_index=True)

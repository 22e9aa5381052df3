""""None of the genres the model knows": validating the rule on simulated unknown genres.

A genre model trained on the ten GTZAN genres answers with one of them for any song. Whether a
song belongs to none of them cannot be tested directly on GTZAN, so it is simulated: leave one
genre out of training, and ask how well a *signal* (:mod:`helpers.models.novelty`) separates that
genre's clips (truly unknown to the model) from held-out clips of the nine known genres
(:func:`leave_one_genre_out`). The known-genre clips are held out by artist-grouped folds, so
neither side is a clip, or an artist, the model was fitted on. Each signal is scored by AUROC
with a bootstrap interval per left-out genre (:func:`auroc_table`); :func:`choose_rule` picks
the signal and a threshold that flags a stated share of known-genre clips, and
:func:`helpers.models.novelty.song_flag` applies that rule to a whole song.

A rule may also pair one probability signal with one neighbour signal (flag when either is
above its threshold, :func:`helpers.models.novelty.flags`): they fail on different genres, so
together they may catch more.

The rates :func:`choose_rule` measures on the scores it fitted the thresholds to are in-sample
(the false-flag rate holds by construction, the detection rate is the best of the candidates).
:func:`out_of_sample` is the honest figure: thresholds and the choice of rule are fitted without
the genre that plays "unknown" and without the artists being scored, then applied to them; each
clip counts once.

Examples
--------
>>> from helpers.models import openset
>>> rule = openset.cached_rule("logreg")  # doctest: +SKIP
>>> rule["signal"], rule["false_flag_rate"]  # doctest: +SKIP
('neighbour_distance', 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from helpers import data
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.models.novelty import (  # noqa: F401 (NeighbourScorer: old model files name it here)
    NEIGHBOUR_SIGNALS,
    PROBABILITY_SIGNALS,
    SIGNALS,
    NeighbourScorer,
    describe_condition,
    flags,
    probability_signals,
)
from helpers.models.selection import fit_candidate, recipe_key
from helpers.models.training import table_fingerprint
from helpers.models.tuning import cache_entry, grouped_folds
from helpers.stats import binomial_interval, mean_interval

#: Share of known-genre clips the default rule may wrongly flag.
DEFAULT_FALSE_FLAG_RATE = 0.10


def leave_one_genre_out(table: pd.DataFrame | None = None, candidate: str = "logreg",
                        seed: int = 0, n_splits: int = 5, grid: str = "small", k: int = 10,
                        genres=None) -> pd.DataFrame:
    """Score every signal on simulated unknown genres.

    For each genre *g*: the clips of the other genres are split into artist-grouped folds; the
    candidate recipe (:func:`helpers.models.selection.fit_candidate`) and a
    :class:`~helpers.models.novelty.NeighbourScorer`
    are fitted on all folds but one, and score the held-out fold (known genres) and a share of
    *g*'s clips (each clip of *g* is scored once, by the fold models in turn; *g* is never
    trained on).

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Rows with ``filename``, model features and ``label``; default the embedded table.
    candidate : str
        Model recipe (:data:`helpers.models.CANDIDATES`).
    genres : sequence of str, optional
        Genres to leave out in turn; default every genre of *table*.

    Returns
    -------
    pandas.DataFrame
        One row per scored clip and left-out genre: ``left_out``, ``filename``, ``label``,
        ``unknown`` (True for the left-out genre's clips) and one column per signal.
    """
    table = (data.load_gtzan_table() if table is None else table).reset_index(drop=True)
    columns = list(MODEL_FEATURES)
    frames = []
    for genre in (genres or sorted(table["label"].unique())):
        known = table[table["label"] != genre].reset_index(drop=True)
        unknown = table[table["label"] == genre].reset_index(drop=True)
        groups = data.artist_groups(known["filename"]).to_numpy()
        folds = list(grouped_folds(n_splits, seed).split(known, known["label"], groups))
        for fold, (fit_idx, score_idx) in enumerate(folds):
            train = known.iloc[fit_idx]
            model, _ = fit_candidate(candidate, train, seed=seed, grid=grid, n_splits=n_splits)
            scorer = NeighbourScorer(k).fit(train[columns])
            for rows, is_unknown in ((known.iloc[score_idx], False),
                                     (unknown.iloc[fold::len(folds)], True)):
                signals = probability_signals(model.predict_proba(rows[columns]))
                signals.update(scorer.score(rows[columns]))
                frames.append(pd.DataFrame({"left_out": genre, "filename": rows["filename"].to_numpy(),
                                            "label": rows["label"].to_numpy(), "unknown": is_unknown,
                                            **signals}))
    return pd.concat(frames, ignore_index=True)


def auroc(scores, unknown) -> float:
    """Area under the ROC curve of *scores* for telling *unknown* (True) from known clips.

    0.5 is chance, 1 a perfect separation (ties count half).
    """
    scores, unknown = np.asarray(scores, dtype=float), np.asarray(unknown, dtype=bool)
    n_pos, n_neg = unknown.sum(), (~unknown).sum()
    if n_pos == 0 or n_neg == 0:
        raise InputError("signal scores", "AUROC needs both unknown and known clips")
    ranks = rankdata(scores)
    return float((ranks[unknown].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc_interval(scores, unknown, n_boot: int = 500, level: float = 0.95,
                   seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of :func:`auroc`, resampling unknown and known clips separately."""
    rng = np.random.default_rng(seed)
    scores, unknown = np.asarray(scores, dtype=float), np.asarray(unknown, dtype=bool)
    pos, neg = scores[unknown], scores[~unknown]
    values = []
    for _ in range(n_boot):
        a = pos[rng.integers(0, pos.size, pos.size)]
        b = neg[rng.integers(0, neg.size, neg.size)]
        values.append(auroc(np.concatenate([a, b]), np.r_[np.ones(a.size, bool), np.zeros(b.size, bool)]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def auroc_table(scores: pd.DataFrame, signals=SIGNALS, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Return AUROC with a bootstrap 95% interval per left-out genre and signal.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`leave_one_genre_out`.

    Returns
    -------
    pandas.DataFrame
        ``left_out``, ``signal``, ``auroc``, ``ci_low``, ``ci_high``, ``n_unknown``, ``n_known``.
    """
    rows = []
    for genre, part in scores.groupby("left_out", sort=True):
        for signal in signals:
            low, high = auroc_interval(part[signal], part["unknown"], n_boot=n_boot, seed=seed)
            rows.append({"left_out": genre, "signal": signal,
                         "auroc": round(auroc(part[signal], part["unknown"]), 4),
                         "ci_low": round(low, 4), "ci_high": round(high, 4),
                         "n_unknown": int(part["unknown"].sum()), "n_known": int((~part["unknown"]).sum())})
    return pd.DataFrame(rows)


def signal_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per signal: mean AUROC over left-out genres, its std, and the worst genre's AUROC."""
    grouped = table.groupby("signal")["auroc"]
    summary = pd.DataFrame({"mean_auroc": grouped.mean(), "std_auroc": grouped.std(ddof=0),
                            "worst_auroc": grouped.min(),
                            "worst_genre": table.loc[grouped.idxmin(), "left_out"].to_numpy()})
    return summary.sort_values("mean_auroc", ascending=False).round(4)


def _rates(scores: pd.DataFrame, thresholds: dict) -> tuple[np.ndarray, np.ndarray]:
    """Flags of every scored clip under *thresholds* (:func:`helpers.models.novelty.flags`)."""
    flagged = flags({s: scores[s].to_numpy() for s in thresholds}, thresholds)
    if np.ndim(flagged) == 0:  # no thresholds: nothing is flagged
        flagged = np.zeros(len(scores), dtype=bool)
    return flagged, scores["unknown"].to_numpy()


def candidate_rules(scores: pd.DataFrame, signals=SIGNALS,
                    false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE) -> list[dict]:
    """Every rule :func:`choose_rule` considers, each with thresholds for *false_flag_rate*.

    A single signal gets the ``1 - false_flag_rate`` quantile of its known-clip scores. A pair
    (one probability signal, one neighbour signal; a clip is flagged when either is above its
    threshold) gets per-signal quantiles chosen so that the pair together flags at most
    *false_flag_rate* of known clips.

    Returns
    -------
    list of dict
        ``thresholds`` (signal -> threshold), ``false_flag_rate``, ``detection_rate``.
    """
    known = scores[~scores["unknown"]]
    rules = [{s: float(np.quantile(known[s], 1 - false_flag_rate))} for s in signals]
    for first in (s for s in signals if s in PROBABILITY_SIGNALS):
        for second in (s for s in signals if s in NEIGHBOUR_SIGNALS):
            best = None
            for share in np.linspace(false_flag_rate / 2, false_flag_rate, 21):
                pair = {name: float(np.quantile(known[name], 1 - share)) for name in (first, second)}
                flagged, unknown = _rates(scores, pair)
                if flagged[~unknown].mean() <= false_flag_rate + 1e-9:
                    best = pair
            if best is not None:
                rules.append(best)
    out = []
    for thresholds in rules:
        flagged, unknown = _rates(scores, thresholds)
        out.append({"thresholds": thresholds, "false_flag_rate": float(flagged[~unknown].mean()),
                    "detection_rate": float(flagged[unknown].mean())})
    return out


def _best_rule(scores: pd.DataFrame, signals, false_flag_rate: float) -> dict:
    """The candidate rule with the highest detection rate on *scores* (ties: fewer signals)."""
    rules = candidate_rules(scores, signals, false_flag_rate)
    return max(rules, key=lambda r: (round(r["detection_rate"], 6), -len(r["thresholds"])))


def _per_clip(frame: pd.DataFrame, flagged) -> pd.Series:
    """Each clip's share of flagged rows (a known clip is scored once per other left-out genre)."""
    return pd.Series(np.asarray(flagged, dtype=float), index=frame.index).groupby(
        frame["filename"].to_numpy()).mean()


def out_of_sample(scores: pd.DataFrame, signals=SIGNALS,
                  false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE, n_splits: int = 5,
                  seed: int = 0) -> dict:
    """False-flag and detection rates of the rule-choosing procedure, measured out of sample.

    The clips are split into *n_splits* artist-grouped folds. For every left-out genre *g* and
    fold *f*, the thresholds and the choice among the candidate rules (:func:`candidate_rules`)
    are fitted on the scores of the other genres' runs, without *g*'s clips and without fold
    *f*'s clips; the fitted rule then flags, in *g*'s run, *g*'s clips of fold *f* (detection)
    and the other genres' clips of fold *f* (false flags). So no scored clip, artist or unknown
    genre took part in fitting the rule that judges it.

    Each clip counts once: a clip of genre *g* is detected or not once (in *g*'s run); as a
    known clip it is judged in the nine runs where its genre is known, and its false-flag share
    is the mean of those nine verdicts. Rates are means over clips, with bootstrap intervals
    over clips (:func:`helpers.stats.mean_interval`); per genre, exact intervals.

    Returns
    -------
    dict
        ``false_flag_rate`` / ``false_flag_ci95`` (over ``n_known_clips``),
        ``detection_rate`` / ``detection_ci95`` (over ``n_unknown_clips``),
        ``detection_by_genre`` (genre -> rate, ci95, n), ``rules_chosen`` (rule -> how many of
        the genre x fold fits chose it), ``protocol`` (one line).
    """
    signals = [s for s in signals if s in scores.columns]
    clips = scores.drop_duplicates("filename")[["filename", "label"]].reset_index(drop=True)
    groups = data.artist_groups(clips["filename"]).to_numpy()
    fold_of = np.empty(len(clips), dtype=int)
    for fold, (_, held) in enumerate(grouped_folds(n_splits, seed).split(clips, clips["label"], groups)):
        fold_of[held] = fold
    fold = scores["filename"].map(dict(zip(clips["filename"], fold_of, strict=True))).to_numpy()
    detected, false_flags, chosen = [], [], {}
    for genre in sorted(scores["left_out"].unique()):
        for f in range(n_splits):
            fit = scores[(scores["left_out"] != genre) & (scores["label"] != genre) & (fold != f)]
            rule = _best_rule(fit, signals, false_flag_rate)
            name = "+".join(rule["thresholds"])
            chosen[name] = chosen.get(name, 0) + 1
            judged = scores[(scores["left_out"] == genre) & (fold == f)]
            flagged, unknown = _rates(judged, rule["thresholds"])
            detected.append(pd.Series(flagged[unknown], index=judged["filename"].to_numpy()[unknown]))
            false_flags.append(judged[~unknown].assign(flagged=flagged[~unknown]))
    detected = pd.concat(detected)
    known = pd.concat(false_flags)
    shares = known.groupby("filename")["flagged"].mean()
    rng = np.random.default_rng(seed)
    ff, ff_low, ff_high = mean_interval(shares.to_numpy(), rng=rng)
    dr, dr_low, dr_high = mean_interval(detected.to_numpy(dtype=float), rng=rng)
    labels = clips.set_index("filename")["label"]
    by_genre = {}
    for genre, part in detected.groupby(labels.reindex(detected.index).to_numpy()):
        interval = binomial_interval(int(part.sum()), part.size)
        by_genre[str(genre)] = {"rate": round(float(part.mean()), 4), "n": int(part.size),
                                "ci95": [round(v, 4) for v in interval]}
    return {
        "false_flag_rate": round(ff, 4), "false_flag_ci95": [round(ff_low, 4), round(ff_high, 4)],
        "detection_rate": round(dr, 4), "detection_ci95": [round(dr_low, 4), round(dr_high, 4)],
        "n_known_clips": int(shares.size), "n_unknown_clips": int(detected.size),
        "detection_by_genre": by_genre,
        "rules_chosen": dict(sorted(chosen.items(), key=lambda kv: -kv[1])),
        "target_false_flag_rate": false_flag_rate,
        "protocol": (f"rule and thresholds fitted without the unknown genre and without the scored "
                     f"artists ({len(by_genre)} genres x {n_splits} artist-grouped folds); each clip "
                     "counted once; bootstrap 95% intervals over clips"),
    }


def choose_rule(scores: pd.DataFrame, table: pd.DataFrame | None = None, signals=SIGNALS,
                false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE, seed: int = 0) -> dict:
    """Choose the rule that catches most clips of left-out genres at a fixed false-flag rate.

    The candidates (:func:`candidate_rules`) are each signal alone and each pair of a
    probability signal with a neighbour signal, all with thresholds that flag
    *false_flag_rate* of the held-out known-genre clips; the one with the highest detection
    rate on the left-out genres' clips wins (ties: fewer signals).

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`leave_one_genre_out`.
    table : pandas.DataFrame, optional
        Output of :func:`auroc_table` (computed when omitted), for the AUROC summary.
    signals : sequence of str
        Signals a rule may use (the neighbour signals need a model carrying a
        :class:`NeighbourScorer`, as every model file :mod:`helpers.models` writes does).
    false_flag_rate : float
        Share of held-out known-genre clips a rule may flag.

    Returns
    -------
    dict
        The rule: ``thresholds`` (signal -> threshold; a song is flagged when the mean of any
        of these signals over its voting windows exceeds its threshold), ``signal`` (their names
        joined by ``+``), ``target_false_flag_rate``, ``false_flag_rate`` and ``detection_rate``
        (measured on known / left-out clips, each with ``*_ci95``), ``detection_by_genre``,
        ``alternatives`` (detection rate of every candidate rule), ``mean_auroc`` (per signal).
    """
    if not 0 < false_flag_rate < 1:
        raise InputError(str(false_flag_rate), "false-flag rate must be between 0 and 1")
    signals = [s for s in signals if s in scores.columns]
    table = auroc_table(scores, signals, seed=seed) if table is None else table
    summary = signal_summary(table[table["signal"].isin(signals)])
    rules = candidate_rules(scores, signals, false_flag_rate)
    best = _best_rule(scores, signals, false_flag_rate)
    flagged, unknown = _rates(scores, best["thresholds"])
    rng = np.random.default_rng(seed)
    # each clip once: a known clip's verdicts over the runs that score it are averaged
    known_shares = _per_clip(scores[~unknown], flagged[~unknown])
    detections = flagged[unknown].astype(float)
    ff, ff_low, ff_high = mean_interval(known_shares.to_numpy(), rng=rng)
    dr, dr_low, dr_high = mean_interval(detections, rng=rng)
    by_genre = scores.assign(flagged=flagged)[unknown].groupby("left_out")["flagged"].mean()
    return {
        "signal": "+".join(best["thresholds"]),
        "thresholds": {k: round(v, 6) for k, v in best["thresholds"].items()},
        "target_false_flag_rate": false_flag_rate,
        "in_sample": ("thresholds and rule fitted on these same scores: the false-flag rate holds "
                      "by construction and the detection rate is the best of the candidates"),
        "false_flag_rate": round(ff, 4), "false_flag_ci95": [round(ff_low, 4), round(ff_high, 4)],
        "detection_rate": round(dr, 4), "detection_ci95": [round(dr_low, 4), round(dr_high, 4)],
        "detection_by_genre": {str(g): round(float(v), 4) for g, v in by_genre.items()},
        "alternatives": {"+".join(r["thresholds"]): round(r["detection_rate"], 4) for r in rules},
        "mean_auroc": {str(s): float(v) for s, v in summary["mean_auroc"].items()},
        "n_known": int(known_shares.size), "n_unknown": int(unknown.sum()),
        "out_of_sample": out_of_sample(scores, signals, false_flag_rate, seed=seed),
        "level": "30-s clip (leave-one-genre-out, artist-grouped folds)",
        "song_score": "mean of each signal over the song's voting windows",
    }


@dataclass
class OpenSetValidation:
    """Everything :func:`validate` measured: clip scores, AUROC table and the chosen rule."""

    scores: pd.DataFrame
    aurocs: pd.DataFrame
    summary: pd.DataFrame
    rule: dict


def validate(table: pd.DataFrame | None = None, candidate: str = "logreg", seed: int = 0,
             n_splits: int = 5, grid: str = "small", false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE,
             n_boot: int = 500, genres=None) -> OpenSetValidation:
    """Run :func:`leave_one_genre_out`, :func:`auroc_table` and :func:`choose_rule` in one go."""
    scores = leave_one_genre_out(table, candidate, seed=seed, n_splits=n_splits, grid=grid,
                                 genres=genres)
    aurocs = auroc_table(scores, n_boot=n_boot, seed=seed)
    rule = choose_rule(scores, aurocs, false_flag_rate=false_flag_rate, seed=seed)
    rule["candidate"] = candidate
    return OpenSetValidation(scores, aurocs, signal_summary(aurocs), rule)


def cached_rule(candidate: str, table: pd.DataFrame | None = None, seed: int = 0,
                grid: str = "small", n_splits: int = 5,
                false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE, cache: bool = True) -> dict:
    """Return the validated rule of *candidate*, computed once and cached in ``data/cache/openset``."""
    table = data.load_gtzan_table() if table is None else table
    entry = cache_entry("openset", {
        "version": 3, "candidate": candidate, "seed": seed, "grid": grid, "n_splits": n_splits,
        "recipe": recipe_key(candidate, seed),
        "rate": false_flag_rate, "rows": table_fingerprint(table)})
    stored = entry.read() if cache else None
    if stored is not None and isinstance(stored.get("rule"), dict):
        return stored["rule"]
    rule = validate(table, candidate, seed=seed, n_splits=n_splits, grid=grid,
                    false_flag_rate=false_flag_rate).rule
    if cache:
        entry.write({"rule": rule})
    return rule


def describe_out_of_sample(rule: dict) -> dict:
    """The numbers a sentence about a model card's open-set rule quotes, out of sample and in
    sample: ``conditions`` (the rule in words), ``protocol``, the rates with their intervals
    and n, and the genres detected least and most (``worst``, ``best``: "genre 12%")."""
    oos = rule["out_of_sample"]
    by_genre = sorted(((g, v["rate"]) for g, v in oos["detection_by_genre"].items()),
                      key=lambda kv: kv[1])
    return {"conditions": " or when ".join(describe_condition(s, t)
                                           for s, t in rule["thresholds"].items()),
            "protocol": oos["protocol"], "ff": oos["false_flag_rate"],
            "fflo": oos["false_flag_ci95"][0], "ffhi": oos["false_flag_ci95"][1],
            "nk": oos["n_known_clips"], "det": oos["detection_rate"],
            "dlo": oos["detection_ci95"][0], "dhi": oos["detection_ci95"][1],
            "nu": oos["n_unknown_clips"], "worst": "{} {:.0%}".format(*by_genre[0]),
            "best": "{} {:.0%}".format(*by_genre[-1]), "iff": rule["false_flag_rate"],
            "idet": rule["detection_rate"]}

"""Genres and "none of the known genres" from learned features, measured against the 58 features.

The reference folder holds audio for 96 GTZAN clips (ids 00000-00009 of each genre). Many genres
there are one artist (blues: John Lee Hooker; classical: J. S. Bach; reggae: Bob Marley; rock:
Morphine), so the grouping these clips allow is stated with every number:

* **leave one artist out** (:func:`leave_one_artist_out`): each artist's clips (an unknown artist:
  the clip alone) are predicted by a model fitted on the other clips. A model fitted on these
  clips alone can only be right on a genre that has a *second* artist, so its accuracy is scored
  on the clips of genres with at least two artists (:func:`multi_artist_genres`).
* models that are not fitted on these clips (the musicnn tag mapping; the 58-feature default
  recipe fitted on the GTZAN *table* without the held-out artist's rows) are scored on all 96.

:func:`compare_predictions` turns per-clip predictions into the comparison table: accuracy with
its exact (Clopper-Pearson) interval, and against a reference method the paired difference with
a paired-bootstrap interval and the exact McNemar test. :func:`gtzan_predictions` computes the
per-clip predictions of every method; :func:`shipped_song_predictions` those of whole songs.

:func:`open_set_scores` simulates unknown genres in both spaces (leave one genre out), and
:func:`open_set_summary` reports AUROC per signal with paired intervals against a reference
signal, plus the false-flag and detection rates at a threshold fitted on other artists and other
genres than the clip it decides (:func:`out_of_sample_rates`).

Examples
--------
>>> from helpers.evaluation.learned import compare_predictions
>>> table = compare_predictions(["a", "b", "a", "b"], {"x": ["a", "b", "a", "a"], "y": ["a", "a", "a", "a"]},
...                             reference="y")
>>> table.loc["x", "correct"], table.loc["x", "mcnemar_p"]
(3, 1.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helpers import data
from helpers.cache import CacheEntry, code_fingerprint
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.features.learned import gtzan_clips_with_audio, song_vectors
from helpers.features.musicnn import PORT_MODULES
from helpers.features.sets import feature_set_names
from helpers.models import tag_genres
from helpers.models.default import default_model, selection_result
from helpers.models.novelty import NeighbourScorer, probability_signals
from helpers.models.openset import auroc
from helpers.models.pipelines import build_model
from helpers.models.selection import fit_candidate
from helpers.predict import predict_song
from helpers.stats import binomial_interval, bootstrap_mean_interval, mcnemar

#: Regularisation of the embedding classifier, fixed beforehand (400 inputs, ~90 clips: strong).
EMBEDDING_C = 0.1

#: The 58-feature recipe fitted on these clips alone (the default's family: logistic regression
#: on power-transformed features; uncalibrated, as calibration folds need more artists).
SAME_CLIPS_RECIPE = "logreg"


def _code() -> str:
    """Fingerprint of the code behind this module's cached tables (see :mod:`helpers.cache`)."""
    return code_fingerprint("helpers.evaluation.learned", "helpers.models.pipelines",
                            "helpers.models.novelty", "helpers.models.tag_genres", *PORT_MODULES)


def embedding_classifier(C: float = EMBEDDING_C) -> Pipeline:
    """The genre classifier on musicnn embeddings: standardise, then L2 logistic regression.

    Examples
    --------
    >>> embedding_classifier().named_steps["model"].C
    0.1
    """
    return Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(C=C, max_iter=5000))])


def multi_artist_genres(clips: pd.DataFrame) -> list[str]:
    """Genres of *clips* with at least two artist groups (``genre``, ``artist_group`` columns)."""
    counts = clips.groupby("genre")["artist_group"].nunique()
    return sorted(counts[counts >= 2].index)


def leave_one_artist_out(make_model, X: pd.DataFrame, y, groups) -> np.ndarray:
    """Predict each artist group's rows with a model fitted on all other rows.

    Parameters
    ----------
    make_model : callable
        Returns a fresh unfitted classifier.
    X : pandas.DataFrame
    y, groups : array-like
        Labels and artist groups, one per row.

    Returns
    -------
    numpy.ndarray
        The predicted label of every row.
    """
    y, groups = np.asarray(y, dtype=object), np.asarray(groups, dtype=object)
    predicted = np.empty(len(y), dtype=object)
    for group in pd.unique(groups):
        held = groups == group
        model = make_model().fit(X[~held], y[~held])
        predicted[held] = model.predict(X[held])
    return predicted


def compare_predictions(truth, predictions: dict, reference: str, rows=None, n_boot: int = 2000,
                        level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Accuracy per method with its exact interval, and its paired difference to *reference*.

    Parameters
    ----------
    truth : array-like
        The true genre of each item.
    predictions : dict
        Method name -> predicted genre of each item (same order as *truth*).
    reference : str
        The method every other one is compared with (a key of *predictions*).
    rows : array-like of bool, optional
        Score only these items (all methods on the same items).
    n_boot, level, seed :
        Paired bootstrap of the accuracy difference (items resampled, both methods together).

    Returns
    -------
    pandas.DataFrame
        Indexed by method: ``n``, ``correct``, ``accuracy``, ``ci_low``, ``ci_high`` (exact),
        ``diff`` (accuracy minus the reference's), ``diff_low``, ``diff_high`` (paired bootstrap),
        ``a_only`` / ``b_only`` (items only this method / only the reference got right) and
        ``mcnemar_p``; the reference's own comparison columns are empty.
    """
    truth = np.asarray(truth, dtype=object)
    keep = np.ones(len(truth), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if reference not in predictions:
        raise InputError(reference, "reference method is not among the predictions")
    correct = {}
    for name, predicted in predictions.items():
        predicted = np.asarray(predicted, dtype=object)
        if predicted.shape != truth.shape:
            raise InputError(name, f"{predicted.size} predictions for {truth.size} items")
        correct[name] = (predicted == truth)[keep]
    n = int(keep.sum())
    if n == 0:
        raise InputError("items", "no item to score")
    table = []
    for name, hits in correct.items():
        low, high = binomial_interval(int(hits.sum()), n, level)
        row = {"method": name, "n": n, "correct": int(hits.sum()), "accuracy": float(hits.mean()),
               "ci_low": low, "ci_high": high}
        if name != reference:
            test = mcnemar(hits, correct[reference], exact=True)
            counts = dict(test.detail)
            d_low, d_high = bootstrap_mean_interval(hits.astype(float) - correct[reference], n_boot, level, rng=seed)
            row.update(diff=test.estimate, diff_low=d_low, diff_high=d_high,
                       a_only=counts["only_a_right"], b_only=counts["only_b_right"],
                       mcnemar_p=test.p_value)
        table.append(row)
    return pd.DataFrame(table).set_index("method")


def _default_recipe_predictions(clips: pd.DataFrame, candidate: str, seed: int) -> np.ndarray:
    """The default recipe fitted on the GTZAN table without each held-out artist's rows."""
    table = data.load_gtzan_table()
    table_groups = data.artist_groups(table["filename"]).to_numpy()
    features = table.set_index("filename").loc[clips["id"], list(MODEL_FEATURES)]
    predicted = np.empty(len(clips), dtype=object)
    for group in pd.unique(clips["artist_group"]):
        held = clips["artist_group"].to_numpy() == group
        train = table[(table_groups != group) & ~table["filename"].isin(clips.loc[held, "id"])]
        model, _ = fit_candidate(candidate, train, seed=seed)
        predicted[held] = model.predict(features[held])
    return predicted


def gtzan_predictions(clips: pd.DataFrame, candidate: str | None = None, seed: int = 0,
                      cache: bool = True) -> pd.DataFrame:
    """Per-clip genre predictions of every method on GTZAN clips with audio.

    Methods (columns):

    * ``default recipe, 58 features``: the default model's recipe (*candidate*, default the
      selected one) fitted on the embedded GTZAN table without the clip's artist;
    * ``tag genre (no training)``: :func:`helpers.models.tag_genres.predict_table` among GTZAN's ten;
    * ``embedding classifier``: :func:`embedding_classifier` on the musicnn embeddings, leave one
      artist out on these clips;
    * ``58 features, same clips``: the 58 table features of these clips, leave one artist out.

    Parameters
    ----------
    clips : pandas.DataFrame
        :func:`helpers.features.learned.gtzan_clips_with_audio`.
    candidate : str, optional
        Default: the candidate the shipped selection chose.
    cache : bool
        Keep the predictions in ``data/cache/learned-genres`` (keyed by the clips and recipe).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``genre``, ``artist_group``, ``multi_artist`` (the clip's genre has two or more
        artists here) and one column per method.
    """
    if candidate is None:
        candidate = selection_result()[0].chosen
    payload = {"clips": clips["id"].tolist(), "groups": clips["artist_group"].tolist(),
               "candidate": candidate, "seed": seed, "C": EMBEDDING_C, "code": _code(),
               "mapping": {g: list(map(list, t)) for g, t in tag_genres.TAG_GENRES.items()}}
    entry = CacheEntry.for_payload("learned-genres", payload)
    stored = entry.read() if cache else None
    if stored is not None:
        return pd.DataFrame(stored["table"])
    y, groups = clips["genre"].to_numpy(), clips["artist_group"].to_numpy()
    tags = song_vectors(clips["path"], "tags", ids=clips["id"])
    embedding = song_vectors(clips["path"], "embedding", ids=clips["id"])
    features = data.load_gtzan_table().set_index("filename").loc[clips["id"], list(MODEL_FEATURES)]
    out = clips[["id", "genre", "artist_group"]].copy()
    out["multi_artist"] = clips["genre"].isin(multi_artist_genres(clips)).to_numpy()
    out["default recipe, 58 features"] = _default_recipe_predictions(clips, candidate, seed)
    out["tag genre (no training)"] = tag_genres.predict_table(tags, tag_genres.GTZAN_GENRES).to_numpy()
    out["embedding classifier"] = leave_one_artist_out(embedding_classifier, embedding, y, groups)
    out["58 features, same clips"] = leave_one_artist_out(
        lambda: build_model(SAME_CLIPS_RECIPE, seed), features, y, groups)
    if cache:
        entry.write({"table": out.to_dict(orient="list")})
    return out


#: Method columns of :func:`gtzan_predictions`, the reference first.
METHODS = ("default recipe, 58 features", "tag genre (no training)", "embedding classifier",
           "58 features, same clips")


def genre_comparison(predictions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The comparison table of :func:`gtzan_predictions`: both scopes, paired with the default.

    Scope ``all clips`` holds the methods not fitted on these clips (default recipe, tag genre);
    scope ``genres with two or more artists`` holds every method, on the clips where a model
    fitted on the other artists of these clips can be right.
    """
    truth = predictions["genre"].to_numpy()
    frames = []
    scopes = ((f"all {len(predictions)} clips", None, METHODS[:2]),
              ("genres with two or more artists", predictions["multi_artist"].to_numpy(), METHODS))
    for scope, rows, methods in scopes:
        table = compare_predictions(truth, {m: predictions[m] for m in methods}, METHODS[0], rows=rows, seed=seed)
        frames.append(table.assign(scope=scope).reset_index())
    columns = ["scope", "method", "n", "correct", "accuracy", "ci_low", "ci_high", "diff", "diff_low",
               "diff_high", "a_only", "b_only", "mcnemar_p"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def shipped_song_predictions(songs: dict, clips: pd.DataFrame, model=None) -> pd.DataFrame:
    """Whole-song predictions of the 58-feature default, the tag genre and the embedding classifier.

    Parameters
    ----------
    songs : dict
        Path -> the song's genre as its credits give it (may be a genre GTZAN lacks).
    clips : pandas.DataFrame
        GTZAN clips with audio: the embedding classifier's training songs.
    model : fitted classifier, optional
        The 58-feature model (default :func:`helpers.models.default.default_model`).

    Returns
    -------
    pandas.DataFrame
        ``song``, ``genre`` and one column per method (the tag genre over all of
        :data:`helpers.models.tag_genres.GENRES`, the two GTZAN-trained models among GTZAN's ten).
    """
    model = default_model() if model is None else model
    paths = list(songs)
    classifier = embedding_classifier().fit(song_vectors(clips["path"], "embedding", ids=clips["id"]),
                                            clips["genre"])
    tags = song_vectors(paths, "tags")
    return pd.DataFrame({
        "song": [str(p) for p in paths], "genre": list(songs.values()),
        "default recipe, 58 features": [predict_song(p, model=model, tags=False).genre for p in paths],
        "tag genre (no training)": tag_genres.predict_table(tags).to_numpy(),
        "embedding classifier": classifier.predict(song_vectors(paths, "embedding")),
    })


# --------------------------------------------------------------------------- open set


def _space_table(clips: pd.DataFrame, space: str) -> pd.DataFrame:
    if space == "58 features":
        return data.load_gtzan_table().set_index("filename").loc[clips["id"], list(MODEL_FEATURES)]
    return song_vectors(clips["path"], space, ids=clips["id"])


#: Spaces of the open-set comparison and the classifier each one is given.
OPEN_SET_SPACES = ("58 features", "tags", "embedding")


def _classifier(space: str, seed: int):
    return build_model(SAME_CLIPS_RECIPE, seed) if space == "58 features" else embedding_classifier()


def open_set_scores(clips: pd.DataFrame, k: int = 5, n_splits: int = 5, seed: int = 0,
                    cache: bool = True, spaces=OPEN_SET_SPACES) -> pd.DataFrame:
    """Scores of every open-set signal in each space, one genre left out at a time.

    For each genre *g*: *g*'s clips are the unknown ones, scored by models fitted on every other
    genre's clips (never on *g*). Known clips are those of genres with two or more artists
    (other than *g*), scored in *n_splits* artist-grouped folds by models fitted without the
    fold's artists, so their genre is still known to the models. Signals per space (:data:`OPEN_SET_SPACES`): ``top_probability`` (1 - the top
    probability of the space's classifier) and ``neighbour_distance`` (mean distance to the *k*
    nearest training clips, :class:`helpers.models.novelty.NeighbourScorer`); plus
    ``tag genre`` (1 - the best tag-genre score among the known genres; nothing fitted).
    *spaces* may leave out ``"tags"`` or ``"embedding"`` (``"58 features"`` is always scored:
    it gives the ``predicted`` genre).

    Returns
    -------
    pandas.DataFrame
        ``left_out``, ``id``, ``genre``, ``artist_group``, ``unknown``, ``predicted`` (the genre
        the 58-feature classifier gives the clip) and one column per signal, named
        ``"<space>: <signal>"``.
    """
    unknown_spaces = sorted(set(spaces) - set(OPEN_SET_SPACES))
    if unknown_spaces:
        raise InputError(unknown_spaces[0], f"unknown space; choose from {', '.join(OPEN_SET_SPACES)}")
    payload = {"clips": clips["id"].tolist(), "groups": clips["artist_group"].tolist(), "k": k,
               "n_splits": n_splits, "seed": seed, "C": EMBEDDING_C, "code": _code(),
               "spaces": sorted(spaces)}
    entry = CacheEntry.for_payload("learned-open-set", payload)
    stored = entry.read() if cache else None
    if stored is not None:
        return pd.DataFrame(stored["table"])
    tag_table = _space_table(clips, "tags")
    tag_scores = tag_genres.score_matrix(tag_table, tag_genres.GTZAN_GENRES)
    spaces = {space: tag_table if space == "tags" else _space_table(clips, space)
              for space in OPEN_SET_SPACES if space in set(spaces) | {"58 features"}}
    genre = clips["genre"].to_numpy()
    groups = clips["artist_group"].to_numpy()
    multi = np.isin(genre, multi_artist_genres(clips))
    rows = []
    for left_out in sorted(set(genre)):
        known_pool = genre != left_out
        batches = [(genre == left_out, known_pool, True)]
        scored_known = np.flatnonzero(known_pool & multi)
        folds = GroupKFold(n_splits=min(n_splits, len(set(groups[scored_known]))))
        for _, held_index in folds.split(scored_known, groups=groups[scored_known]):
            held = np.isin(groups, groups[scored_known[held_index]])
            batches.append((held & known_pool, known_pool & ~held, False))
        known_genres = [g for g in tag_genres.GTZAN_GENRES if g != left_out]
        for scored, fit_rows, unknown in batches:
            signals = {"tag genre": 1.0 - tag_scores.loc[clips["id"][scored], known_genres].max(axis=1).to_numpy()}
            for space, X in spaces.items():
                model = _classifier(space, seed).fit(X[fit_rows], genre[fit_rows])
                proba = model.predict_proba(X[scored])
                if space == "58 features":  # the genre a song analysed from audio is given
                    predicted = model.classes_[np.argmax(proba, axis=1)]
                signals[f"{space}: top_probability"] = probability_signals(proba)["top_probability"]
                scorer = NeighbourScorer(k).fit(X[fit_rows])
                signals[f"{space}: neighbour_distance"] = scorer.score(X[scored])["neighbour_distance"]
            rows.append(pd.DataFrame({"left_out": left_out, "id": clips["id"].to_numpy()[scored],
                                      "genre": genre[scored], "artist_group": groups[scored],
                                      "unknown": unknown, "predicted": predicted, **signals}))
    out = pd.concat(rows, ignore_index=True)
    if cache:
        entry.write({"table": out.to_dict(orient="list")})
    return out


_SCORE_COLUMNS = ("left_out", "id", "genre", "artist_group", "unknown", "predicted")


def signal_columns(scores: pd.DataFrame) -> list[str]:
    """The signal columns of an :func:`open_set_scores` table."""
    return [c for c in scores.columns if c not in _SCORE_COLUMNS]


#: The verdict for songs analysed from audio (:func:`helpers.models.tag_genres.open_set_decision`):
#: the tag-genre signal, except for a song the 58-feature model puts in a genre the tags cannot
#: name (reggae), which the 58-feature signal decides.
TAG_VERDICT = "tags, else 58 features"
#: The 58-feature signal that stands in for the model card's rule in the simulation.
FEATURE_SIGNAL = "58 features: neighbour_distance"


def _other_clip_pools(scores: pd.DataFrame) -> tuple[list, dict]:
    """The rows that may fit a threshold for each row: the known rows of another genre and
    another artist. Returns each row's ``(genre, artist)`` key and, per key, that boolean mask."""
    known = ~scores["unknown"].to_numpy(dtype=bool)
    genre, artist = scores["genre"].to_numpy(), scores["artist_group"].to_numpy()
    keys = list(zip(genre, artist, strict=True))
    pools = {key: known & (genre != key[0]) & (artist != key[1]) for key in set(keys)}
    return keys, pools


def with_tag_verdict(scores: pd.DataFrame, features_signal: str = FEATURE_SIGNAL) -> pd.DataFrame:
    """*scores* with a :data:`TAG_VERDICT` column: the verdict songs analysed from audio get.

    Each row's value is the share of the known rows of **another genre and another artist**
    whose deciding signal is below the row's (the deciding signal is ``tag genre``, or
    *features_signal* for a row whose ``predicted`` genre has no tags), so the two signals are
    on one scale and no clip, artist or genre calibrates its own value. :func:`out_of_sample_rates`
    and :func:`open_set_summary` then treat it as any other signal.
    """
    by_features = ~np.array([tag_genres.has_tags(g) for g in scores["predicted"]])
    tag_values = scores["tag genre"].to_numpy(dtype=float)
    feature_values = scores[features_signal].to_numpy(dtype=float)
    keys, pools = _other_clip_pools(scores)
    share = np.empty(len(scores))
    for i, key in enumerate(keys):
        deciding = feature_values if by_features[i] else tag_values
        share[i] = np.mean(deciding[pools[key]] < deciding[i])
    return scores.assign(**{TAG_VERDICT: share})


def _mean_auroc(scores: pd.DataFrame, signals, index_sets=None) -> np.ndarray:
    """Mean over left-out genres of each signal's AUROC (rows resampled by *index_sets*)."""
    values = []
    for genre, part in scores.groupby("left_out", sort=True):
        rows = part if index_sets is None else part.iloc[index_sets[genre]]
        unknown = rows["unknown"].to_numpy(dtype=bool)
        values.append([auroc(rows[s].to_numpy(), unknown) for s in signals])
    return np.asarray(values).mean(axis=0)


def open_set_summary(scores: pd.DataFrame, reference: str, n_boot: int = 300, level: float = 0.95,
                     seed: int = 0) -> pd.DataFrame:
    """Mean AUROC over left-out genres per signal, with intervals and paired differences.

    The bootstrap resamples, within each left-out genre, its unknown and its known clips
    separately, the same draw for every signal (so differences are paired).

    Returns
    -------
    pandas.DataFrame
        Indexed by signal: ``auroc`` (mean over genres), ``std_over_genres``, ``ci_low``,
        ``ci_high``, ``diff`` (minus *reference*'s), ``diff_low``, ``diff_high``, ``genres``.
    """
    signals = signal_columns(scores)
    if reference not in signals:
        raise InputError(reference, "reference signal is not in the scores")
    rng = np.random.default_rng(seed)
    point = _mean_auroc(scores, signals)
    per_genre = pd.DataFrame([[auroc(p[s], p["unknown"].to_numpy(dtype=bool)) for s in signals]
                              for _, p in scores.groupby("left_out", sort=True)], columns=signals)
    parts = {g: p["unknown"].to_numpy(dtype=bool) for g, p in scores.groupby("left_out", sort=True)}
    draws = []
    for _ in range(n_boot):
        index_sets = {}
        for genre, unknown in parts.items():
            pos, neg = np.flatnonzero(unknown), np.flatnonzero(~unknown)
            index_sets[genre] = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        draws.append(_mean_auroc(scores, signals, index_sets))
    draws = np.asarray(draws)
    ref = signals.index(reference)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    d_low, d_high = np.percentile(draws - draws[:, [ref]], [tail, 100 - tail], axis=0)
    return pd.DataFrame({"auroc": point, "std_over_genres": per_genre.std(ddof=0).to_numpy(),
                         "ci_low": low, "ci_high": high, "diff": point - point[ref],
                         "diff_low": d_low, "diff_high": d_high, "genres": len(parts)},
                        index=pd.Index(signals, name="signal"))


def out_of_sample_rates(scores: pd.DataFrame, signal: str, false_flag_rate: float = 0.10,
                        n_boot: int = 2000, seed: int = 0) -> dict:
    """False-flag and detection rates of a threshold fitted on other artists and other genres.

    The threshold that decides a clip is the ``1 - false_flag_rate`` quantile of *signal* over
    the known-clip scores of every clip of **another genre and another artist**, so neither the
    clip, its artist nor its genre chose it. A known clip's flag is averaged over the left-out
    genres it was scored under, so each clip counts once; each unknown clip is scored once.

    Returns
    -------
    dict
        ``false_flag_rate`` (over known clips, bootstrap interval ``false_flag_ci``),
        ``detection_rate`` (over unknown clips, exact interval ``detection_ci``), ``n_known``,
        ``n_unknown``, ``target``, ``signal``, and ``detected`` (per unknown clip id, whether it
        was flagged: two signals' detections are compared pairwise with
        :func:`helpers.stats.mcnemar`).
    """
    values = scores[signal].to_numpy(dtype=float)
    keys, pools = _other_clip_pools(scores)
    thresholds = {key: np.quantile(values[pool], 1 - false_flag_rate) for key, pool in pools.items()}
    flagged = values > np.array([thresholds[key] for key in keys])
    frame = scores.assign(flagged=flagged)
    per_known = frame[~frame["unknown"].astype(bool)].groupby("id")["flagged"].mean()
    unknown = frame[frame["unknown"].astype(bool)]
    false_ci = bootstrap_mean_interval(per_known.to_numpy(), n_boot, rng=seed)
    detected = int(unknown["flagged"].sum())
    return {"signal": signal, "target": false_flag_rate,
            "false_flag_rate": float(per_known.mean()), "false_flag_ci": false_ci, "n_known": int(per_known.size),
            "detection_rate": detected / len(unknown), "detection_ci": binomial_interval(detected, len(unknown)),
            "n_unknown": int(len(unknown)), "detected": unknown.set_index("id")["flagged"].sort_index()}


def open_set_rates_table(scores: pd.DataFrame, signals, reference: str = FEATURE_SIGNAL,
                         false_flag_rate: float = 0.10) -> pd.DataFrame:
    """:func:`out_of_sample_rates` of several *signals*, and each one's detections against the
    *reference* signal's on the same unknown clips (exact McNemar test).

    Returns
    -------
    pandas.DataFrame
        Indexed by signal: ``false_flag_rate`` with ``false_flag_low``/``_high`` and
        ``n_known``; ``detection_rate`` with ``detection_low``/``_high`` and ``n_unknown``;
        ``only_this_detects``, ``only_reference_detects`` and ``mcnemar_p`` (NaN for the
        reference itself).
    """
    base = out_of_sample_rates(scores, reference, false_flag_rate)
    rows = {}
    for signal in signals:
        rates = base if signal == reference else out_of_sample_rates(scores, signal, false_flag_rate)
        row = {"false_flag_rate": rates["false_flag_rate"], "false_flag_low": rates["false_flag_ci"][0],
               "false_flag_high": rates["false_flag_ci"][1], "n_known": rates["n_known"],
               "detection_rate": rates["detection_rate"], "detection_low": rates["detection_ci"][0],
               "detection_high": rates["detection_ci"][1], "n_unknown": rates["n_unknown"],
               "only_this_detects": np.nan, "only_reference_detects": np.nan, "mcnemar_p": np.nan}
        if signal != reference:
            test = mcnemar(rates["detected"].to_numpy(), base["detected"].to_numpy(), exact=True)
            detail = dict(test.detail)
            row.update(only_this_detects=detail["only_a_right"], only_reference_detects=detail["only_b_right"],
                       mcnemar_p=test.p_value)
        rows[signal] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("signal")


def tag_verdict_figures(clips: pd.DataFrame, summary: pd.DataFrame, rates: pd.DataFrame) -> dict:
    """The figures notebook 06 states about the verdict for songs analysed from audio.

    Parameters
    ----------
    clips : pandas.DataFrame
        The clips measured (:func:`helpers.features.learned.gtzan_clips_with_audio`).
    summary, rates : pandas.DataFrame
        :func:`open_set_summary` and :func:`open_set_rates_table` of their scores, with the
        :data:`TAG_VERDICT`, ``tag genre`` and :data:`FEATURE_SIGNAL` rows.

    Returns
    -------
    dict
        ``verdict`` and ``features``: the two signals' summary and rates rows as dicts (AUROC,
        interval, paired difference; false flags, detection, McNemar); ``tag_auroc``;
        ``threshold`` re-fitted on the clips (:func:`helpers.models.tag_genres.open_set_threshold`)
        and ``n_vouched``, the clips it is fitted on; ``reggae_flagged`` of ``n_reggae``, the
        reggae clips whose best known-genre tag score is below it; ``shipped`` and ``measured``
        (threshold, false-flag rate, detection) and ``same``, whether they agree as rounded.
    """
    tag_table = song_vectors(clips["path"], "tags", ids=clips["id"])
    threshold = tag_genres.open_set_threshold(tag_table, clips["genre"])
    reggae = (clips["genre"] == "reggae").to_numpy()
    best_known = tag_genres.score_matrix(tag_table, tag_genres.GTZAN_GENRES).max(axis=1).to_numpy()
    verdict = {**summary.loc[TAG_VERDICT].to_dict(), **rates.loc[TAG_VERDICT].to_dict()}
    features = {**summary.loc[FEATURE_SIGNAL].to_dict(), **rates.loc[FEATURE_SIGNAL].to_dict()}
    shipped = (tag_genres.OPEN_SET_THRESHOLD, tag_genres.OPEN_SET_FALSE_FLAG_RATE,
               tag_genres.OPEN_SET_DETECTION_RATE)
    measured = (round(threshold, 4), round(verdict["false_flag_rate"], 3), round(verdict["detection_rate"], 3))
    return {"verdict": verdict, "features": features, "tag_auroc": float(summary.at["tag genre", "auroc"]),
            "threshold": threshold, "n_vouched": int((~reggae).sum()),
            "reggae_flagged": int((best_known[reggae] < threshold).sum()), "n_reggae": int(reggae.sum()),
            "shipped": shipped, "measured": measured, "same": shipped == measured}


def _with_interval(value, low, high, percent: bool = False, signed: bool = False) -> str:
    if percent:
        return f"{value:.1%} [{low:.1%}, {high:.1%}]"
    sign = "+" if signed else ""
    return f"{value:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`open_set_summary` as a page-width table: each figure with its interval in one cell."""
    return pd.DataFrame({
        "AUROC [95% CI]": [_with_interval(r.auroc, r.ci_low, r.ci_high) for r in summary.itertuples()],
        "std over genres": summary["std_over_genres"].round(3).to_numpy(),
        "minus 58-feature neighbour distance [95% CI]": [
            "— (the reference)" if r.diff == r.diff_low == r.diff_high == 0
            else _with_interval(r.diff, r.diff_low, r.diff_high, signed=True) for r in summary.itertuples()],
    }, index=summary.index)


def readable_rates(rates: pd.DataFrame) -> pd.DataFrame:
    """:func:`open_set_rates_table` as a page-width table."""
    return pd.DataFrame({
        "false flags [95% CI]": [_with_interval(r.false_flag_rate, r.false_flag_low, r.false_flag_high, percent=True)
                                 for r in rates.itertuples()],
        "known clips": rates["n_known"].to_numpy(),
        "detection [exact 95% CI]": [_with_interval(r.detection_rate, r.detection_low, r.detection_high, percent=True)
                                     for r in rates.itertuples()],
        "unknown clips": rates["n_unknown"].to_numpy(),
        "detected by it only / by the 58 features only": [
            "—" if np.isnan(r.mcnemar_p) else f"{int(r.only_this_detects)} / {int(r.only_reference_detects)}"
            for r in rates.itertuples()],
        "McNemar p (exact)": ["—" if np.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"
                              for p in rates["mcnemar_p"]],
    }, index=rates.index)


# --------------------------------------------------------------------------- a user's songs, a full GTZAN folder

#: Feature-set names the learned evaluations accept (``gtzan``: the 58 features as before).
LEARNED_FEATURES = "musicnn"


def check_features_name(name: str | None) -> str:
    """Resolve an evaluation's ``--features`` name: ``gtzan`` (default) or ``musicnn``.

    Raises
    ------
    InputError
        An unknown name, or a registered feature set the evaluations do not score yet; the
        message lists the choices.
    """
    name = name or "gtzan"
    choices = ("gtzan", LEARNED_FEATURES)
    if name not in choices:
        known = name in feature_set_names()
        raise InputError(name, ("a feature set the evaluations do not score yet" if known else
                                "unknown feature set") + f"; choose one of {', '.join(choices)}")
    return name


def score_songs_learned(songs: pd.DataFrame, training_clips: pd.DataFrame | None = None,
                        model=None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Whole-song genres of a test bed by the 58-feature default and the learned paths, paired.

    Parameters
    ----------
    songs : pandas.DataFrame
        ``path`` and ``genre`` per song (:func:`helpers.evaluation.songbed.load_test_bed`).
    training_clips : pandas.DataFrame, optional
        Labelled audio for the embedding classifier (``path``, ``genre``, e.g.
        :func:`helpers.features.learned.gtzan_clips_with_audio`); without it only the tag genre
        (no training) is compared with the default.
    model : fitted classifier, optional
        The 58-feature model (default :func:`helpers.models.default.default_model`).

    Returns
    -------
    (per_song, comparison)
        One row per song with each method's genre; :func:`compare_predictions` over the songs,
        the default as reference (a method is right only on a genre it can answer).
    """
    model = default_model() if model is None else model
    paths = songs["path"].tolist()
    tags = song_vectors(paths, "tags")
    per_song = pd.DataFrame({"path": paths, "genre": songs["genre"].tolist()})
    per_song["default recipe, 58 features"] = [predict_song(p, model=model, tags=False).genre for p in paths]
    per_song["tag genre (no training)"] = tag_genres.predict_table(tags).to_numpy()
    if training_clips is not None and len(training_clips):
        classifier = embedding_classifier().fit(
            song_vectors(training_clips["path"], "embedding"), training_clips["genre"])
        per_song["embedding classifier"] = classifier.predict(song_vectors(paths, "embedding"))
    methods = [c for c in per_song.columns if c not in ("path", "genre")]
    comparison = compare_predictions(per_song["genre"], {m: per_song[m] for m in methods},
                                     "default recipe, 58 features", seed=seed)
    return per_song, comparison


def fault_filtered_learned(audio_dir, seed: int = 0) -> dict:
    """The embedding classifier on the fault-filtered split, from a full GTZAN audio folder.

    Trained on the split's train + valid clips whose audio the folder holds, tested on its test
    clips (no artist in two parts); clips missing from the folder are counted, not guessed.

    Parameters
    ----------
    audio_dir : path-like
        A folder of ``<genre>/<genre>.NNNNN.<ext>`` files (``MUSIC_STUDY_GTZAN_AUDIO``).

    Returns
    -------
    dict
        ``split``, ``n_train``, ``n_test``, ``missing`` (split clips without audio),
        ``accuracy`` and ``ci95`` (exact), ``features``.

    Raises
    ------
    InputError
        The folder holds no clip of the split's train or test part.
    """
    clips = gtzan_clips_with_audio(audio_dir).set_index("id")
    parts = data.load_split("fault-filtered")
    train_ids = [c for c in parts["train"] + parts["valid"] if c in clips.index]
    test_ids = [c for c in parts["test"] if c in clips.index]
    missing = sum(len(v) for v in parts.values()) - len(train_ids) - len(test_ids)
    if not train_ids or not test_ids:
        raise InputError(audio_dir, "holds no audio of the fault-filtered split's train or test clips")
    train, test = clips.loc[train_ids], clips.loc[test_ids]
    classifier = embedding_classifier().fit(song_vectors(train["path"], "embedding"), train["genre"])
    predicted = classifier.predict(song_vectors(test["path"], "embedding"))
    correct = int((predicted == test["genre"].to_numpy()).sum())
    return {"split": "fault-filtered", "features": LEARNED_FEATURES, "model": "embedding classifier",
            "n_train": len(train), "n_test": len(test), "missing": int(missing),
            "accuracy": round(correct / len(test), 4),
            "ci95": [round(v, 4) for v in binomial_interval(correct, len(test))]}

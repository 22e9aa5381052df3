"""Whole-song genre prediction: cut a song into windows, predict each, vote.

The original study cut a song into 30-second snippets, predicted each and took the genre with
the highest average probability. Its weak points were that the last snippet (sometimes only a
few seconds long) counted as much as a full one, and that silence counted. Here:

* every window is predicted and reported in a per-window table (the timeline);
* the windows and which of them vote follow the one windowing policy of :mod:`helpers.audio`
  (through :func:`helpers.features.window_features`): windows shorter than
  :func:`helpers.audio.min_window_seconds` (``min(10 s, window length)``) and near-silent
  windows (RMS below :data:`helpers.audio.SILENCE_THRESHOLD_DB`) are left out of the vote;
* the vote is a *rule* (see :data:`RULES`): ``"weighted"`` (default) averages the used windows'
  probabilities weighted by their duration; ``"mean"`` is the original plain mean over every
  window; ``"majority"`` counts each used window's top genre, weighted by duration.

The confidence of the song is the winning genre's share of the vote. Whether the song probably
belongs to no genre the model knows (an electronic track has no GTZAN genre: a case for the
labeler) is decided from the song's musicnn tags when they can vouch for the genre the model
gives it (:func:`helpers.models.tag_genres.open_set_decision`), else by the validated rule on
the model's card (:mod:`helpers.models.openset`); see :attr:`SongPrediction.open_set` and
:meth:`SongPrediction.is_uncertain`. The prediction also names its model (``model``).
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import audio
from helpers.audio.ingest import fetch_audio
from helpers.audio.windows import MIN_WINDOW_SECONDS
from helpers.errors import AudioError, InputError
from helpers.features import musicnn
from helpers.features.columns import MODEL_FEATURES
from helpers.features.sets import feature_set as _feature_set
from helpers.features.sets import feature_set_names
from helpers.features.windows import window_features
from helpers.models import tag_genres
from helpers.models.card import model_summary
from helpers.models.novelty import song_flag

#: Voting rules: duration-weighted mean of the used windows, the original plain mean of every
#: window, and a duration-weighted majority of the windows' top genres.
RULES = ("weighted", "mean", "majority")
#: Tags per vocabulary in :attr:`SongPrediction.tags`.
TAGS_TOP = 10
#: Below this confidence the song is reported as "probably none of the known genres".
UNCERTAIN_CONFIDENCE = 0.5


@dataclass
class SongPrediction:
    """The genre of a whole song and the per-window evidence for it.

    Attributes
    ----------
    source : str
        The file (or URL) predicted.
    genre : str
        The winning genre.
    confidence : float
        The winning genre's share of the vote, in [0, 1].
    probabilities : dict
        Every genre the model knows -> its share of the vote (sums to 1), highest first.
    windows : pandas.DataFrame
        One row per window: ``start``, ``end`` (seconds), one column per genre (the window's
        probabilities), ``genre`` (its top genre), ``used`` (whether it took part in the vote)
        and ``note`` (why it was left out: ``"short"``, ``"silent"`` or ``"non-finite"`` (NaN or
        infinite samples), else empty; see :data:`helpers.audio.WINDOW_NOTES`).
    rule : str
        The voting rule used (one of :data:`RULES`).
    window_seconds : float
        The window length.
    min_window_seconds : float
        Shorter windows were left out.
    duration : float
        Length of the song in seconds.
    model : dict or None
        The model that predicted: :func:`helpers.models.card.model_summary` (name, honest accuracy).
    open_set : dict or None
        Whether the song is probably none of the genres the model knows: ``flagged``,
        ``decided_by`` (``"music tags"`` or ``"58 features"``) and that rule's
        ``false_flag_rate`` and ``detection_rate``; ``tags``, the tag rule's decision
        (:func:`helpers.models.tag_genres.open_set_decision`: ``genre``, ``score``,
        ``threshold``, ``flagged``), None when the song has no tags or the model's genre for
        it has none (reggae); ``features``, the model card's validated rule applied to the
        song (:func:`helpers.models.novelty.song_flag`: ``signal``, ``scores``,
        ``thresholds``, ``flagged``, rates), None when the card has no rule. The tag rule
        decides when it can. None when neither can.
    tags : dict or None
        The song's music tags (``predict_song(..., tags=True)``): per vocabulary (``mtt``,
        ``msd``) the top tags of the pretrained musicnn networks with their scores, the mean
        over the song's 3-s patches (:meth:`helpers.features.musicnn.SongTags.tag_document`);
        None when they were not asked for or the file gives none (``tags_note`` then says why:
        a file with NaN samples still votes with its other windows, but has no tags).
    feature_set : str
        The feature set the model reads (``"gtzan"``, ``"musicnn"``, ...).
    """

    source: str
    genre: str
    confidence: float
    probabilities: dict[str, float]
    windows: pd.DataFrame = field(repr=False)
    rule: str = "weighted"
    window_seconds: float = 30.0
    min_window_seconds: float = MIN_WINDOW_SECONDS
    duration: float = 0.0
    model: dict | None = None
    open_set: dict | None = None
    tags: dict | None = None
    feature_set: str = "gtzan"
    #: Why the song has no tags although they were asked for (the file's reason), else None.
    tags_note: str | None = None
    #: The song's whole tag result (:class:`helpers.features.musicnn.SongTags`: every tag of
    #: every patch), behind :attr:`tags` and the tag rule of :attr:`open_set`.
    song_tags: musicnn.SongTags | None = field(default=None, repr=False)
    #: The model card's open-set rule (re-applied by :func:`revote`).
    open_set_rule: dict | None = field(default=None, repr=False)

    @property
    def genres(self) -> list[str]:
        """The genres the model knows, in the model's order."""
        return [c for c in self.windows.columns if c not in _TABLE_COLUMNS]

    @property
    def agreement(self) -> float:
        """Share of the used windows' duration whose top genre is the song's genre."""
        used = self.windows[self.windows["used"]]
        weights = used["end"] - used["start"]
        return float(weights[used["genre"] == self.genre].sum() / weights.sum())

    @property
    def runner_up(self) -> tuple[str, float]:
        """The second genre and its share of the vote."""
        second = list(self.probabilities.items())[1] if len(self.probabilities) > 1 else ("", 0.0)
        return second[0], float(second[1])

    def is_uncertain(self, threshold: float | None = None) -> bool:
        """True when the song is probably none of the genres the model knows.

        By default this follows the model card's validated rule (:attr:`open_set`); a model
        without one falls back to confidence below :data:`UNCERTAIN_CONFIDENCE`. An explicit
        *threshold* asks the plain question "is the confidence below it?".
        """
        if threshold is not None:
            return self.confidence < threshold
        if self.open_set is not None:
            return bool(self.open_set["flagged"])
        return self.confidence < UNCERTAIN_CONFIDENCE

    def first_window(self) -> tuple[str, float]:
        """The answer of the first window alone (the original first-30-seconds prediction)."""
        first = self.windows.iloc[0]
        return str(first["genre"]), float(first[first["genre"]])

    def to_dict(self) -> dict:
        """Return the prediction as JSON-ready values (the ``--json`` document)."""
        genres = self.genres
        snippets = [{
            "start": round(float(row["start"]), 3), "end": round(float(row["end"]), 3),
            "genre": row["genre"] or None,
            "probabilities": {g: _clean_float(row[g]) for g in genres},
            "used": bool(row["used"]), "note": row["note"] or None,
        } for row in self.windows.to_dict("records")]
        return {
            "source": self.source, "genre": self.genre, "confidence": round(self.confidence, 4),
            "probabilities": {g: round(p, 4) for g, p in self.probabilities.items()},
            "rule": self.rule, "window_seconds": self.window_seconds,
            "min_window_seconds": self.min_window_seconds, "duration": round(self.duration, 3),
            "agreement": round(self.agreement, 4), "uncertain": self.is_uncertain(),
            "open_set": self.open_set, "model": self.model,
            "snippets": snippets, "tags": self.tags, "tags_note": self.tags_note,
            "feature_set": self.feature_set,
        }

    def to_json(self, **kwargs) -> str:
        """Return :meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)


#: Window-table columns from a model's novelty scorer (:class:`helpers.models.novelty.NeighbourScorer`).
_NOVELTY_COLUMNS = ("neighbour_distance", "local_density")
_TABLE_COLUMNS = ("start", "end", "genre", "used", "note", *_NOVELTY_COLUMNS)


def _clean_float(value) -> float | None:
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def _model_columns(model) -> list[str]:
    return list(getattr(model, "feature_names_in_", MODEL_FEATURES))


def model_feature_set(model, default: str = "gtzan") -> str:
    """The feature set *model* was trained on: its model card's ``feature_set``; for a model
    without one (a retrained labeler model), the smallest registered set holding every column
    it was fitted on; else *default*."""
    card = getattr(model, "model_card_", None) or {}
    if card.get("feature_set"):
        return str(card["feature_set"])
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        needed = {str(n) for n in names}
        holding = [spec for spec in map(_feature_set, feature_set_names())
                   if needed <= set(spec.columns)]
        if holding:
            return min(holding, key=lambda spec: len(spec.columns)).name
    return default


def check_model_columns(model, source="model", feature_set: str = "gtzan") -> None:
    """Raise :class:`InputError` if *model* needs a column the feature set does not compute."""
    columns = set(_feature_set(feature_set).columns)
    unknown = [c for c in _model_columns(model) if c not in columns]
    if unknown:
        trained_on = model_feature_set(model, default="")
        hint = (f" (it was trained on the {trained_on} feature set: --features {trained_on})"
                if trained_on and trained_on != feature_set else "")
        raise InputError(source, f"model needs features the {feature_set} feature set does not "
                                 f"compute: {', '.join(unknown[:4])}{hint}")


def window_table(source, model, window_seconds: float = 30.0,
                 min_window_seconds: float | None = None, progress=None, *,
                 info: audio.AudioInfo | None = None, feature_set: str = "gtzan") -> pd.DataFrame:
    """Predict every window of a song; return the timeline table of :class:`SongPrediction`.

    The windows and their features come from :func:`helpers.features.window_features` (the one
    windowing policy, on the validation every entry point shares), which notes each window that
    cannot vote. Short and silent windows are predicted too, for the timeline and the original
    ``"mean"`` rule; ``used`` is filled for the default ``"weighted"`` rule and :func:`vote`
    recomputes it per rule.

    *model* may also be a :class:`concurrent.futures.Future` of one (the command line loads the
    model file while the audio is decoded): it is waited for only once the features are ready.
    *progress*, when given, is called as ``progress(k, n)`` before window k (1-based) of about
    n is analysed (the web page's job stage). *info* is what
    :func:`helpers.audio.check_audio_info` returned for *source*, when the caller already
    checked it; otherwise the check runs here. *feature_set* names the features the model
    reads (:func:`helpers.features.feature_set`), computed on the same windows whatever the set.

    Raises
    ------
    InputError
        Bad window length, or the audio is unfit (see :mod:`helpers.audio`).
    """
    spec = _feature_set(feature_set)
    if not isinstance(model, Future):
        check_model_columns(model, feature_set=spec.name)  # before decoding anything

    def step(k, n):
        if isinstance(model, Future) and model.done() and model.exception() is not None:
            raise model.exception()  # a bad model argument: no need to finish the song first
        if progress is not None:
            progress(k, n)

    windows = window_features(source, window_seconds, min_window_seconds=min_window_seconds,
                              describe_notes=("short", "silent"), info=info, progress=step,
                              feature_set=spec, remove_dc=True)
    if isinstance(model, Future):
        model = model.result()
        check_model_columns(model, feature_set=spec.name)
    columns = _model_columns(model)
    genres = [str(g) for g in model.classes_]
    described = windows[list(spec.columns)].notna().all(axis=1).to_numpy()
    probabilities = np.full((len(windows), len(genres)), np.nan)
    novelty = getattr(model, "novelty_", None)  # distance to the training clips (open-set rule)
    distances = {name: np.full(len(windows), np.nan)
                 for name in (_NOVELTY_COLUMNS if novelty else ())}
    if described.any():
        frame = windows.loc[described, columns].reset_index(drop=True)
        probabilities[described] = model.predict_proba(frame)
        scored = novelty.score(frame) if novelty is not None else {}
        for name in distances:
            distances[name][described] = scored[name]
    table = pd.concat([windows[["start", "end"]], pd.DataFrame(probabilities, columns=genres),
                       windows[["note"]]], axis=1)
    table.insert(2 + len(genres), "genre", [
        genres[int(np.argmax(p))] if np.all(np.isfinite(p)) else "" for p in probabilities])
    table["used"] = _used(table, "weighted")
    for name, values in distances.items():
        table[name] = values
    return table[["start", "end", *genres, "genre", "used", "note", *distances]]


def _used(table: pd.DataFrame, rule: str) -> pd.Series:
    predicted = table["genre"] != ""
    if rule == "mean":  # the original: every window counts, short or silent
        return predicted
    return predicted & (table["note"] == "")


def vote(table: pd.DataFrame, rule: str = "weighted") -> tuple[dict[str, float], pd.Series]:
    """Combine the windows of :func:`window_table` into song-level genre shares.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-window table.
    rule : {"weighted", "mean", "majority"}
        ``"weighted"``: mean of the used windows' probabilities weighted by duration;
        ``"mean"``: the original plain mean over every predicted window (short and silent ones
        included); ``"majority"``: each used window gives its duration to its top genre.

    Returns
    -------
    probabilities : dict
        Genre -> share of the vote (sums to 1), highest first.
    used : pandas.Series of bool
        Which windows took part.
    """
    if rule not in RULES:
        raise InputError(rule, f"unknown voting rule (choose from {', '.join(RULES)})")
    genres = [c for c in table.columns if c not in _TABLE_COLUMNS]
    used = _used(table, rule)
    chosen = table[used]
    if chosen.empty:
        return {}, used
    weights = (chosen["end"] - chosen["start"]).to_numpy()
    if rule == "mean":
        shares = chosen[genres].to_numpy().mean(axis=0)
    elif rule == "weighted":
        shares = np.average(chosen[genres].to_numpy(), axis=0, weights=weights)
    else:
        shares = np.array([weights[(chosen["genre"] == g).to_numpy()].sum() for g in genres])
    shares = shares / shares.sum()
    order = np.argsort(-shares, kind="stable")
    return {genres[i]: float(shares[i]) for i in order}, used


def revote(prediction: SongPrediction, rule: str) -> SongPrediction:
    """Return *prediction* re-decided by another voting *rule* (no audio is re-read)."""
    other = _decide(prediction.source, prediction.windows.copy(), rule,
                    prediction.window_seconds, prediction.min_window_seconds)
    other.model = prediction.model
    other.tags, other.feature_set = prediction.tags, prediction.feature_set
    other.song_tags, other.tags_note = prediction.song_tags, prediction.tags_note
    return _with_open_set(other, prediction.open_set_rule)


def _with_open_set(prediction: SongPrediction, rule: dict | None) -> SongPrediction:
    """Decide whether the song is none of the known genres: the tag rule where the song's tags
    can vouch for its genre, else the validated *rule* of the model card applied to the windows
    that voted (see :attr:`SongPrediction.open_set`)."""
    prediction.open_set_rule = rule if rule and "thresholds" in rule else None
    features = None
    if prediction.open_set_rule is not None:
        used = prediction.windows[prediction.windows["used"]]
        neighbours = {c: used[c].to_numpy() for c in _NOVELTY_COLUMNS if c in used.columns}
        scores, flagged = song_flag(used[prediction.genres].to_numpy(), rule, neighbours)
        features = {"signal": rule["signal"], "scores": {k: round(v, 4) for k, v in scores.items()},
                    "thresholds": rule["thresholds"], "flagged": flagged,
                    "false_flag_rate": rule.get("false_flag_rate"),
                    "detection_rate": rule.get("detection_rate")}
    tags = None
    if prediction.song_tags is not None:
        scores = tag_genres.genre_scores(prediction.song_tags,
                                         [g for g in prediction.genres if tag_genres.has_tags(g)])
        tags = tag_genres.open_set_decision(scores, prediction.genres, prediction.genre)
    deciding = tags or features
    prediction.open_set = None if deciding is None else {
        "flagged": deciding["flagged"], "decided_by": "music tags" if tags else "58 features",
        "false_flag_rate": deciding["false_flag_rate"], "detection_rate": deciding["detection_rate"],
        "tags": tags, "features": features}
    return prediction


def _decide(source, table, rule, window_seconds, minimum) -> SongPrediction:
    probabilities, used = vote(table, rule)
    table["used"] = used
    duration = float(table["end"].max()) if len(table) else 0.0
    if not probabilities:
        raise InputError(source, audio.no_usable_window_reason(table["note"], duration, minimum))
    genre = next(iter(probabilities))
    return SongPrediction(
        source=str(source), genre=genre, confidence=probabilities[genre],
        probabilities=probabilities, windows=table, rule=rule, window_seconds=window_seconds,
        min_window_seconds=minimum, duration=duration,
    )


def predict_song(source, model=None, window_seconds: float = 30.0, rule: str = "weighted",
                 min_window_seconds: float | None = None, progress=None, *,
                 info: audio.AudioInfo | None = None, tags: bool = True,
                 feature_set: str | None = None) -> SongPrediction:
    """Predict the genre of a whole song from its windows.

    Parameters
    ----------
    source : path-like or str
        An audio file, or a URL (downloaded with :func:`helpers.audio.ingest.fetch_audio`).
    model : fitted classifier, optional
        Anything with ``predict_proba``, ``classes_`` and (ideally) ``feature_names_in_``;
        default :func:`helpers.models.default_model`. A :class:`concurrent.futures.Future` of
        one is waited for once the features are computed (see :func:`window_table`).
    window_seconds : float
        Window length (30 s: the GTZAN clip length the model was trained on).
    rule : {"weighted", "mean", "majority"}
        Voting rule, see :func:`vote`; ``"mean"`` is the original study's.
    min_window_seconds : float, optional
        Shorter windows do not vote; default the windowing policy's ``min(10 s,
        window_seconds)`` (:func:`helpers.audio.min_window_seconds`).
    progress : callable, optional
        Called as ``progress(k, n)`` before window k of about n is analysed.
    info : helpers.audio.AudioInfo, optional
        What :func:`helpers.audio.check_audio_info` returned for this file with the vote's
        minimum (the command line checks it first, naming the argument the user typed): the
        check is not repeated and the file not probed again.
    tags : bool
        Tag the song with the pretrained musicnn networks (default; :attr:`SongPrediction.tags`:
        the top 10 tags of each vocabulary, mean over the song's 3-s patches). The tags also
        decide whether the song is none of the known genres (:attr:`SongPrediction.open_set`);
        ``False`` saves their time (about 1 s per minute of audio) when only the genre is
        wanted, and leaves that verdict to the model card's rule.
    feature_set : str, optional
        The features the model reads; default the model card's ``feature_set`` (``"gtzan"``
        for a model without one, or while a model is still loading).

    Returns
    -------
    SongPrediction

    Raises
    ------
    InputError
        Missing, undecodable, silent or too short audio; a bad URL; an unknown rule.

    Examples
    --------
    >>> result = predict_song("data/music/openmsx_be_sharp_render.ogg")  # doctest: +SKIP
    >>> result.genre, round(result.confidence, 2)  # doctest: +SKIP
    >>> result.windows[["start", "end", "genre", "used"]]  # doctest: +SKIP
    """
    if rule not in RULES:
        raise InputError(rule, f"unknown voting rule (choose from {', '.join(RULES)})")

    path = fetch_audio(source).path
    window_seconds = audio.check_window_seconds(source, window_seconds)
    minimum = audio.min_window_seconds(window_seconds, min_window_seconds)
    if info is None:
        info = audio.check_audio_info(path, minimum, source=source)  # before loading a model
    if model is None:
        # imported here: `music-study predict` passes the default model's compact copy and
        # starts without scikit-learn, which fitting or loading the pipeline needs
        from helpers.models.default import default_model

        model = default_model()
    if feature_set is None:
        feature_set = "gtzan" if isinstance(model, Future) else model_feature_set(model)
    table = window_table(path, model, window_seconds, minimum, progress=progress, info=info,
                         feature_set=feature_set)
    if isinstance(model, Future):  # loaded in a thread while the audio was decoded
        model = model.result()

    prediction = _decide(source, table, rule, window_seconds, minimum)
    prediction.model = model_summary(model)
    prediction.feature_set = _feature_set(feature_set).name
    if tags:
        try:
            song = musicnn.song_tags(path, source=source, info=info)
        except AudioError as exc:  # e.g. NaN samples: the windows around them still voted
            prediction.tags_note = exc.reason
        else:
            prediction.song_tags, prediction.tags = song, song.tag_document(TAGS_TOP)
    return _with_open_set(prediction, (getattr(model, "model_card_", None) or {}).get("open_set"))


def verdict(prediction: SongPrediction, threshold: float | None = None) -> str:
    """Return one plain sentence on what the prediction means for a person."""
    name = Path(str(prediction.source)).name
    second, share = prediction.runner_up
    if prediction.is_uncertain(threshold):
        top = ", ".join(f"{g} {p:.0%}" for g, p in list(prediction.probabilities.items())[:3])
        why = (f"confidence below {threshold:g}" if threshold is not None
               else uncertain_reason(prediction))
        return (f"{name}: probably none of the genres the model knows - {why} ({top}); "
                "label it with the labeler (notebook 05) or the web page.")
    return (f"{name}: {prediction.genre} ({prediction.confidence:.0%} of the vote, runner-up "
            f"{second} {share:.0%}; {prediction.agreement:.0%} of the windows agree).")


def compare_rules(prediction: SongPrediction, rules=RULES) -> pd.DataFrame:
    """Return one row per voting rule: ``rule, genre, confidence, windows_used``."""
    rows = []
    for rule in rules:
        other = revote(prediction, rule)
        rows.append({"rule": rule, "genre": other.genre, "confidence": other.confidence,
                     "windows_used": int(other.windows["used"].sum())})
    return pd.DataFrame(rows)


def summarise(predictions) -> pd.DataFrame:
    """Return one row per song: whole-song answer next to the first-window answer.

    Parameters
    ----------
    predictions : iterable of SongPrediction
    """
    rows = []
    for p in predictions:
        first_genre, first_confidence = p.first_window()
        second, share = p.runner_up
        rows.append({
            "song": Path(str(p.source)).name, "minutes": round(p.duration / 60, 2),
            "windows": len(p.windows), "used": int(p.windows["used"].sum()),
            "genre": p.genre, "confidence": round(p.confidence, 3), "runner_up": second,
            "runner_up_share": round(share, 3), "agreement": round(p.agreement, 3),
            "first_30s_genre": first_genre, "first_30s_confidence": round(first_confidence, 3),
            "uncertain": p.is_uncertain(),
        })
    return pd.DataFrame(rows)


def open_set_table(predictions) -> pd.DataFrame:
    """One row per song: how its "none of the known genres" verdict was reached.

    Columns: ``song``, ``genre``, ``decided_by``, the tag rule's ``best_tag_genre``,
    ``tag_score`` and ``tag_threshold`` (empty when the tags cannot vouch), whether the card's
    58-feature rule flags it (``features_flag``, empty without a rule) and the verdict
    (``flagged``).
    """
    rows = []
    for p in predictions:
        verdict = p.open_set or {}
        tags, features = verdict.get("tags") or {}, verdict.get("features") or {}
        rows.append({"song": Path(str(p.source)).name, "genre": p.genre,
                     "decided_by": verdict.get("decided_by", "confidence"),
                     "best_tag_genre": tags.get("genre", ""), "tag_score": tags.get("score"),
                     "tag_threshold": tags.get("threshold"), "features_flag": features.get("flagged"),
                     "flagged": p.is_uncertain()})
    return pd.DataFrame(rows)


def plot_timeline(prediction: SongPrediction, ax=None, colours=None, legend: bool = True):
    """Plot the genre probabilities of every window along the song as stacked bars.

    Windows left out of the vote are hatched; the song's genre and confidence form the title.
    *legend* False leaves the genre legend out (several songs stacked share one). Returns the
    matplotlib Axes.
    """
    # imported here: `music-study predict` starts without matplotlib (only notebooks plot)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.8))
    genres = prediction.genres
    colours = colours or dict(zip(genres, plt.cm.tab10.colors, strict=False))
    table = prediction.windows
    widths = (table["end"] - table["start"]).to_numpy()
    bottom = np.zeros(len(table))
    for genre in genres:
        values = table[genre].fillna(0).to_numpy()
        ax.bar(table["start"], values, width=widths, bottom=bottom, align="edge",
               color=colours[genre], edgecolor="white", linewidth=0.5, label=genre)
        bottom += values
    for row in table[~table["used"]].itertuples():
        ax.bar(row.start, 1.0, width=row.end - row.start, align="edge", fill=False,
               hatch="//", edgecolor="0.3", linewidth=0)
        ax.text((row.start + row.end) / 2, 1.02, row.note or "left out", ha="center",
                va="bottom", fontsize=8, color="0.3")
    ax.set_xlim(0, max(prediction.duration, 1.0))
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("time in the song (s)")
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(str(prediction.source)).name}: {prediction.genre} "
                 f"({prediction.confidence:.0%}, rule {prediction.rule})", fontsize=10)
    if legend:
        ax.legend(ncol=1, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax


def uncertain_reason(prediction: SongPrediction) -> str:
    """Why *prediction* is uncertain: the validated rule's signals above their thresholds, or the
    confidence below :data:`UNCERTAIN_CONFIDENCE` when the model carries no rule."""
    verdict = prediction.open_set
    if not verdict:
        return f"confidence below {UNCERTAIN_CONFIDENCE:g}"
    rate = verdict.get("false_flag_rate")
    if verdict["decided_by"] == "music tags":
        tags = verdict["tags"]
        why = (f"music tags: best known-genre tag score {tags['score']:.3f} ({tags['genre']}) "
               f"< {tags['threshold']:.3f}")
    else:
        rule = verdict["features"]
        above = [f"{name} {score:.3f} > {rule['thresholds'][name]:.3f}"
                 for name, score in rule["scores"].items() if score > rule["thresholds"][name]]
        why = f"validated rule on the 58 features: {', '.join(above)}"
    return why + (f"; it flags {rate:.0%} of known-genre clips" if rate is not None else "")

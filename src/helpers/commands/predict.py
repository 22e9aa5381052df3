"""``music-study predict FILE_OR_URL``: the genre of a whole song, as text or one JSON document.

Start-up time matters here (a fresh process per song): this module imports no machine-learning
library until a model that needs one is asked for.

Examples
--------
>>> from helpers.cli import main
>>> main(["predict", "data/music/wesnoth_heroes_rite.ogg", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

from helpers import audio
from helpers.audio.checks import WINDOW_NOTES
from helpers.audio.ingest import fetch_audio, is_url
from helpers.errors import InputError
from helpers.features.sets import feature_set
from helpers.models import compact
from helpers.predict import SongPrediction, check_model_columns, predict_song, uncertain_reason


def format_timeline(prediction: SongPrediction, bar_width: int = 20) -> str:
    """Return a small text timeline: one line per window with its top genre and a bar."""
    lines = []
    for row in prediction.windows.to_dict("records"):
        span = f"{_clock(row['start'])}-{_clock(row['end'])}"
        if not row["genre"]:
            why = WINDOW_NOTES.get(row["note"], row["note"]) or "too short to predict"
            lines.append(f"  {span}  {'-':<10} (left out: {why})")
            continue
        share = float(row[row["genre"]])
        bar = "#" * max(1, int(round(share * bar_width)))
        left_out = ("" if row["used"]
                    else f"  (left out: {WINDOW_NOTES.get(row['note'], row['note'])})")
        lines.append(f"  {span}  {row['genre']:<10} {share:4.2f} {bar:<{bar_width}}{left_out}".rstrip())
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def format_prediction(prediction: SongPrediction, title: str | None = None) -> str:
    """Return the human-readable report printed by ``music-study predict``."""
    used = prediction.windows["used"]
    top = ", ".join(f"{g} {p:.2f}" for g, p in list(prediction.probabilities.items())[:3])
    lines = [
        f"{title or prediction.source}: {_clock(prediction.duration)} min, "
        f"{len(used)} windows of {prediction.window_seconds:g} s ({int(used.sum())} used, "
        f"rule {prediction.rule})",
        f"genre: {prediction.genre}  (confidence {prediction.confidence:.2f}, "
        f"windows agreeing {prediction.agreement:.0%})",
        f"top genres: {top}",
    ]
    if prediction.model and prediction.model.get("line"):
        lines.append(f"model: {prediction.model['line']}")
    for vocabulary, tags in (prediction.tags or {}).items():
        shown = ", ".join(f"{t['tag']} {t['score']:.2f}" for t in tags[:5])
        lines.append(f"tags ({vocabulary}): {shown}")
    if prediction.is_uncertain():
        lines.append(f"note: {uncertain_reason(prediction)} - probably none of the genres the "
                     "model knows; label it with the labeler or the web page")
    lines += ["timeline:", format_timeline(prediction)]
    return "\n".join(lines)


def run(args) -> int:
    """``music-study predict FILE_OR_URL [--model PATH] [--features NAME] [--window-seconds S]
    [--json]``; the JSON document also holds the song's musicnn ``tags``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numerical warnings on quiet passages
        if is_url(args.source) and sys.stderr.isatty():  # scripts get exactly one line
            print(f"fetching {args.source} ...", file=sys.stderr)
        ingested = fetch_audio(args.source)
        window_seconds = audio.check_window_seconds(args.source, args.window_seconds)
        # the one check of this file, naming the argument; predict_song reuses its result
        info = audio.check_audio_info(ingested.path, audio.min_window_seconds(window_seconds),
                                      source=args.source)
        # Start-up time: the model loads in a thread while this one decodes the audio and
        # computes its features (its compact copy takes milliseconds; the first run fits the
        # scikit-learn pipeline and writes that copy). The feature code is imported first, as
        # imports hold the GIL and only the feature work leaves room for the thread.
        from helpers.features.gtzan import import_libraries

        import_libraries()
        features = feature_set(args.features).name  # an unknown name lists the choices
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-model") as loader:
            model = loader.submit(_load_model_argument, args.model, features)
            try:
                prediction = predict_song(ingested.path, model=model,
                                          window_seconds=args.window_seconds, info=info,
                                          feature_set=features)
            finally:
                model.cancel()
    prediction.source = str(args.source)
    if args.json:
        document = prediction.to_dict()
        document.update(title=ingested.title, artist=ingested.artist,
                        source_url=ingested.source_url, path=str(ingested.path))
        print(json.dumps(document))
    else:
        print(format_prediction(prediction, title=ingested.title))
    return 0


def _load_model_argument(choice, features: str = "gtzan"):
    """``--model``: None (the default model of *features*), a candidate name, or a model file."""
    if choice is None and features != "gtzan":
        # imported here: only a learned feature set's model needs it (scikit-learn)
        from helpers.models.learned import feature_set_model

        def announce():
            print(f"training a genre model on the {features} feature set from the GTZAN audio "
                  "at hand (once; it is then cached) ...", file=sys.stderr)

        return feature_set_model(features, on_train=announce)
    # the default's compact copy needs numpy only; the first run (or a stale copy) loads the
    # pipeline (scikit-learn), which writes the copy for next time
    model = compact.load_default() if choice is None else None
    if model is None:
        # imported here: the default model's compact copy needs numpy only; resolving a
        # model otherwise loads scikit-learn (start-up time of a fresh `music-study predict`)
        from helpers.models.default import resolve_model

        model = resolve_model(choice)
    if not hasattr(model, "predict_proba"):
        raise InputError(choice, "the model gives no probabilities (no predict_proba)")
    if choice is not None:
        check_model_columns(model, source=choice, feature_set=features)
    return model

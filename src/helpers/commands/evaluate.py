"""``music-study evaluate``: genre models on a published split, or whole songs of a test bed.

Examples
--------
>>> from helpers.cli import main
>>> main(["evaluate", "--model", "knn", "--grid", "small"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys
import warnings

from helpers.errors import InputError
from helpers.evaluation import learned
from helpers.evaluation.heldout import evaluate_model
from helpers.evaluation.songbed import load_test_bed, score_test_bed
from helpers.models.default import resolve_model
from helpers.models.pipelines import MODEL_NAMES
from helpers.paths import gtzan_audio_dir, shared_data_dir


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


def run(args) -> int:
    """``music-study evaluate``: tune by grouped inner CV, score on a published split's test.

    With ``--songs SOURCE`` it scores whole songs of a test bed instead (:func:`run_songs`).
    """
    features = learned.check_features_name(getattr(args, "features", None))
    if features == learned.LEARNED_FEATURES:
        return run_songs_learned(args) if getattr(args, "songs", None) else run_fault_filtered_learned(args)
    if getattr(args, "songs", None):
        return run_songs(args)
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


def format_test_bed(result) -> str:
    """Return the human-readable report of ``music-study evaluate --songs``."""
    def interval(ci):
        return f"[exact 95% CI {ci[0]:.2f}-{ci[1]:.2f}]" if ci else "(too few songs to say)"

    o, u = result.overall, result.unknown
    lines = [f"model: {result.model.get('line') or result.model.get('name')}"]
    if o["n"]:
        lines.append(f"whole-song accuracy on {o['n']} songs of known genres: {o['accuracy']:.2f} "
                     f"{interval(o['ci95'])}; wrongly flagged 'none of the known genres': "
                     f"{o['wrong_flag_rate']:.2f} {interval(o['wrong_flag_ci95'])}")
    else:
        lines.append("no song of a genre the model knows: no accuracy to report")
    if u["n"]:
        lines.append(f"songs of genres the model does not know ({', '.join(u['genres'])}; n={u['n']}): "
                     f"flagged {u['flagged_rate']:.2f} {interval(u['ci95'])}")
    lines.append("per genre:")
    for row in result.per_genre.itertuples():
        score = (f"accuracy {row.accuracy:.2f} {interval(row.ci95)}" if row.known
                 else "unknown to the model")
        lines.append(f"  {row.genre:<12} n={row.n:<3} {score}  flagged {row.flagged_rate:.2f}")
    lines.append("confusion (rows: true genre, columns: predicted):")
    lines += ["  " + line for line in result.confusion.to_string().splitlines()]
    if 0 < o["n"] < 20:
        lines.append(f"note: only {o['n']} songs of known genres - the exact intervals are wide "
                     "(none below 5 songs); read the accuracy as an example, not an estimate")
    if result.skipped:
        lines.append(f"left out ({len(result.skipped)}): " + "; ".join(result.skipped[:5]))
    return "\n".join(lines)


def run_songs(args) -> int:
    """``music-study evaluate --songs SOURCE [--model NAME_OR_PATH] [--json]``."""
    songs, skipped = load_test_bed(args.songs)  # refuse a bad test bed before loading a model
    model = resolve_model(getattr(args, "model", None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's tuning warnings on quiet passages
        result = score_test_bed(songs, model, skipped, seed=getattr(args, "seed", 0))
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(format_test_bed(result))
    return 0


def format_comparison(comparison) -> str:
    """Lines of a learned comparison: accuracy with its exact interval, paired with the default."""
    lines = []
    for name, row in comparison.iterrows():
        line = (f"  {name:<30} {row['correct']:>3}/{row['n']:<3} = {row['accuracy']:.2f} "
                f"[exact 95% CI {row['ci_low']:.2f}-{row['ci_high']:.2f}]")
        if "mcnemar_p" in row and row.notna().get("mcnemar_p", False):
            line += (f"  vs default {row['diff']:+.2f} [paired 95% CI {row['diff_low']:+.2f}, "
                     f"{row['diff_high']:+.2f}], McNemar p = {row['mcnemar_p']:.2f}")
        lines.append(line)
    if comparison["n"].iloc[0] < 5:
        lines.append(f"note: {comparison['n'].iloc[0]} songs are too few to say which method is better")
    return "\n".join(lines)


def _training_clips():
    """Labelled GTZAN audio for the embedding classifier: MUSIC_STUDY_GTZAN_AUDIO, else ../shared."""
    folder = gtzan_audio_dir() or shared_data_dir()
    return learned.gtzan_clips_with_audio(folder) if folder is not None else None


def run_songs_learned(args) -> int:
    """``music-study evaluate --songs SOURCE --features musicnn``: the learned paths on a test bed."""
    songs, skipped = load_test_bed(args.songs)
    model = resolve_model(getattr(args, "model", None))
    clips = _training_clips()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's tuning warnings on quiet passages
        per_song, comparison = learned.score_songs_learned(songs, clips, model=model,
                                                           seed=getattr(args, "seed", 0))
    if args.json:
        print(json.dumps({"features": learned.LEARNED_FEATURES, "songs": per_song.to_dict(orient="records"),
                          "comparison": json.loads(comparison.reset_index().to_json(orient="records")),
                          "embedding_training_clips": 0 if clips is None else len(clips),
                          "skipped": skipped}))
        return 0
    print(f"whole songs of {args.songs} (n={len(per_song)}), the 58-feature default against the learned paths:")
    print(format_comparison(comparison))
    if clips is None:
        print("embedding classifier not run: needs labelled GTZAN audio (MUSIC_STUDY_GTZAN_AUDIO)")
    if skipped:
        print(f"left out ({len(skipped)}): " + "; ".join(skipped[:5]))
    return 0


def run_fault_filtered_learned(args) -> int:
    """``music-study evaluate --features musicnn``: the fault-filtered split from GTZAN audio."""
    folder = gtzan_audio_dir()
    if folder is None:
        raise InputError("--features musicnn", "the fault-filtered evaluation needs the GTZAN audio: "
                                               "set MUSIC_STUDY_GTZAN_AUDIO to a genres_original folder")
    result = learned.fault_filtered_learned(folder, seed=getattr(args, "seed", 0))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']} on musicnn embeddings: accuracy on fault-filtered test (n={result['n_test']}) "
              f"= {result['accuracy']:.3f} [exact 95% CI {result['ci95'][0]:.3f}-{result['ci95'][1]:.3f}]; "
              f"trained on {result['n_train']} train+valid clips; {result['missing']} split clips have no audio "
              "in the folder")
    return 0

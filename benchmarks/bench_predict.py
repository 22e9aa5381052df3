"""Whole-song prediction of a ~4-minute song: this workspace versus the original way.

Original way (the study's): for each 30-s window, ``librosa.load(path, offset, duration)``
decodes the file again, then each librosa feature function is called on the waveform (one STFT
per feature, ``librosa.effects.hpss``), one ``predict_proba`` call per window, plain mean.

This workspace: :func:`helpers.predict.predict_song` decodes the song once (streamed window by
window), computes each window's features from one shared STFT, predicts all windows in one call
and votes by duration.

Both run in this process, on one core (thread pools pinned to 1 before numpy loads), after one
warm-up call each (imports, numba compilation). Prints both times and the ratio.

Usage::

    PYTHONPATH=src python benchmarks/bench_predict.py [SONG] [--repeats N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from helpers.paths import shipped_music_dir  # noqa: E402

DEFAULT_SONG = shipped_music_dir() / "singularity_coherence.ogg"


def original_way(path: Path, model, window_seconds: float = 30.0) -> tuple[str, dict]:
    """The study's loop: re-decode each window with librosa, per-call features, plain mean."""
    import librosa

    from helpers.features import SAMPLE_RATE, extract_signal_librosa

    columns = list(model.feature_names_in_)
    duration = librosa.get_duration(path=str(path))
    rows = []
    offset = 0.0
    while offset < duration:
        y, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True, offset=offset,
                            duration=window_seconds)
        if len(y) >= SAMPLE_RATE:  # the study skipped nothing; below 1 s features break
            features = extract_signal_librosa(y, SAMPLE_RATE)
            rows.append(model.predict_proba(pd.DataFrame([features])[columns])[0])
        offset += window_seconds
    mean = np.mean(rows, axis=0)
    genres = [str(g) for g in model.classes_]
    return genres[int(np.argmax(mean))], dict(zip(genres, mean, strict=True))


def _best_of(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song", nargs="?", default=str(DEFAULT_SONG))
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the fast path")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    from helpers.audio import probe_audio
    from helpers.models import default_model
    from helpers.predict import predict_song

    song = Path(args.song)
    model = default_model()
    seconds = probe_audio(song).duration
    print(f"song: {song.name}, {seconds:.1f} s ({seconds / 60:.1f} min); model: "
          f"{type(model[-1]).__name__}; threads pinned to 1")

    # Warm-up: imports, numba compilation, decoder start-up (not counted for either side).
    from helpers.features import SAMPLE_RATE, extract_signal_librosa

    predict_song(song, model=model)
    noise = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE).astype(np.float32) * 0.1
    extract_signal_librosa(noise, SAMPLE_RATE)

    fast_time, fast = _best_of(lambda: predict_song(song, model=model), args.repeats)
    slow_time, (slow_genre, slow_probabilities) = _best_of(lambda: original_way(song, model), 1)

    print(f"original way (per-window librosa.load + per-call librosa features): {slow_time:7.2f} s"
          f"  -> {slow_genre} ({slow_probabilities[slow_genre]:.2f}, plain mean)")
    print(f"predict_song (one decode, shared STFT, batch predict, weighted vote): {fast_time:7.2f} s"
          f"  -> {fast.genre} ({fast.confidence:.2f}, {fast.rule}); best of {args.repeats}")
    print(f"ratio: {slow_time / fast_time:.1f}x faster; "
          f"{fast_time / (seconds / 60):.2f} s per minute of audio; "
          f"target < 2 s for a 4-minute song: {'met' if fast_time * 240 / seconds < 2 else 'NOT met'}"
          f" ({fast_time * 240 / seconds:.2f} s scaled to 4:00)")
    plain = fast.windows[[str(g) for g in model.classes_]].mean().to_numpy()
    agree = np.allclose(plain, [slow_probabilities[str(g)] for g in model.classes_], atol=0.02)
    print(f"same per-window probabilities as the original way (plain mean within 0.02): {agree}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

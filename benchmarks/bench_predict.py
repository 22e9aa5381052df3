"""Whole-song prediction of a ~4-minute song: this workspace versus the original way.

Original way (the study's): for each 30-s window, ``librosa.load(path, offset, duration)``
decodes the file again, then each librosa feature function is called on the waveform (one STFT
per feature, ``librosa.effects.hpss``), one ``predict_proba`` call per window, plain mean.

This workspace: :func:`helpers.predict.predict_song` decodes the song once (streamed window by
window), computes each window's features from one shared STFT, predicts all windows in one call
and votes by duration. It runs with ``tags=False``: the genre path the original had (the musicnn
tags that ``predict`` adds are timed by ``bench_musicnn.py``).

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
            # each window's mean is subtracted, as predict_song does (the study did not; the
            # default song carries a DC offset, which would otherwise move the features)
            features = extract_signal_librosa(y - y.mean(), SAMPLE_RATE)
            rows.append(model.predict_proba(pd.DataFrame([features])[columns])[0])
        offset += window_seconds
    mean = np.mean(rows, axis=0)
    genres = [str(g) for g in model.classes_]
    return genres[int(np.argmax(mean))], dict(zip(genres, mean, strict=True))


def _best_of(function, repeats: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU time (this process) over *repeats* runs, and the result.

    On a shared machine wall time includes waiting for a core; with every thread pool pinned
    to one thread, CPU time is the one-core cost.
    """
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


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

    predict_song(song, model=model, tags=False)
    noise = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE).astype(np.float32) * 0.1
    extract_signal_librosa(noise, SAMPLE_RATE)

    fast_wall, fast_cpu, fast = _best_of(lambda: predict_song(song, model=model, tags=False), args.repeats)
    slow_wall, slow_cpu, (slow_genre, slow_probabilities) = _best_of(
        lambda: original_way(song, model), 1)

    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"original way (per-window librosa.load + per-call librosa features): wall {slow_wall:6.2f} s,"
          f" CPU {slow_cpu:6.2f} s -> {slow_genre} ({slow_probabilities[slow_genre]:.2f}, plain mean)")
    print(f"predict_song (one decode, shared STFT, batch predict, weighted vote): wall {fast_wall:6.2f} s,"
          f" CPU {fast_cpu:6.2f} s -> {fast.genre} ({fast.confidence:.2f}, {fast.rule}); "
          f"best of {args.repeats}")
    scaled = fast_cpu * 240 / seconds
    print(f"ratio (original / predict_song): wall {slow_wall / fast_wall:.1f}x, CPU "
          f"{slow_cpu / fast_cpu:.1f}x; one-core CPU scaled to a 4:00 song: {scaled:.2f} s "
          f"(target < 2 s: {'met' if scaled < 2 else 'NOT met'})")
    plain = fast.windows[[str(g) for g in model.classes_]].mean().to_numpy()
    agree = np.allclose(plain, [slow_probabilities[str(g)] for g in model.classes_], atol=0.02)
    print(f"same per-window probabilities as the original way (plain mean within 0.02): {agree}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

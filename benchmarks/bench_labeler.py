"""Labeler start-up on a folder of many short songs: ready in seconds versus the current way.

Builds a folder of generated songs (default 200 songs of 12 s: tones, chords, noise and
clicks at different levels), then builds a :class:`helpers.labeling.widget.Labeler` on it with a fresh
label store twice, in this process:

* **current way** (the labeler as it was first written): every song is hashed, probed and extracted,
  one after the other, before the widget shows anything (``background=False, workers=1``);
  the first song is labelable only when all are done.
* **background** (now): the constructor returns at once; the first song is extracted in a
  thread while the others go to worker processes (``workers`` = cores); songs join the queue
  as they are ready.

Prints, for each, the time to the first labelable song and the total time until every song is
in the queue, and the ratios. A warm-up extraction runs first (imports, numba compilation).

Usage::

    PYTHONPATH=src python benchmarks/bench_labeler.py [--songs 200] [--seconds 12] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def make_songs(folder: Path, n: int, seconds: float, seed: int = 0) -> list[Path]:
    """Write *n* different short songs (mono 22 050 Hz WAV) into *folder*."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    paths = []
    for i in range(n):
        kind = i % 4
        base = rng.uniform(80, 800)
        if kind == 0:
            signal = np.sin(2 * np.pi * base * t)
        elif kind == 1:
            signal = sum(np.sin(2 * np.pi * base * r * t) for r in (1, 1.25, 1.5))
        elif kind == 2:
            signal = rng.standard_normal(t.size) * np.abs(np.sin(2 * np.pi * rng.uniform(0.5, 4) * t))
        else:
            signal = np.zeros(t.size)
            signal[:: int(SR * 60 / rng.uniform(60, 180))] = 1.0
            signal += 0.05 * rng.standard_normal(t.size)
        signal = 0.3 * rng.uniform(0.3, 1.0) * signal / (np.abs(signal).max() + 1e-9)
        path = folder / f"song_{i:04d}.wav"
        sf.write(path, signal.astype(np.float32), SR)
        paths.append(path)
    return paths


def time_labeler(folder: Path, store_path: Path, *, background: bool, workers: int) -> dict:
    """Seconds to the first labelable song and until every song is in the queue."""
    from helpers.labeling.widget import Labeler

    start = time.perf_counter()
    labeler = Labeler(folder, store=store_path, window_seconds=30.0, audio=False,
                      background=background, workers=workers)
    while labeler.current is None and (labeler.extracting or not labeler.songs):
        time.sleep(0.01)
    first = time.perf_counter() - start
    labeler.wait()
    total = time.perf_counter() - start
    songs, problems = len(labeler.songs), len(labeler.problems)
    labeler.store.close()
    return {"first": first, "total": total, "songs": songs, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from helpers.labeling.widget import prepare_song

    with tempfile.TemporaryDirectory(prefix="bench-labeler-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "songs"
        folder.mkdir()
        paths = make_songs(folder, args.songs, args.seconds)
        prepare_song(paths[0], 30.0)  # warm-up: imports, numba compilation
        print(f"{args.songs} generated songs of {args.seconds:g} s; {os.cpu_count()} cores; "
              f"background workers: {args.workers}")
        current = time_labeler(folder, tmp / "current.sqlite", background=False, workers=1)
        print(f"current way (all songs first, one at a time): first labelable song "
              f"{current['first']:.1f} s, all {current['songs']} songs {current['total']:.1f} s")
        new = time_labeler(folder, tmp / "background.sqlite", background=True, workers=args.workers)
        print(f"background ({args.workers} workers): first labelable song {new['first']:.2f} s, "
              f"all {new['songs']} songs {new['total']:.1f} s")
        print(f"ratio (current / background): first song x{current['first'] / new['first']:.0f}, "
              f"total x{current['total'] / new['total']:.2f}")
        if current["problems"] or new["problems"]:
            print(f"problems: current {current['problems']}, background {new['problems']}")


if __name__ == "__main__":
    main()

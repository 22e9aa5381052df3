"""Start-up cost of ``music-study predict``: a fresh process against a warm ``predict_song``.

A ~4-minute song (a shipped song looped to :data:`SONG_SECONDS`, written to a temporary Ogg
file) is predicted

* by the command, ``python -m helpers predict SONG --json``, in a fresh process each time (what a
  person waits for: interpreter start, imports, model file, decoding, features, vote), and
* by :func:`helpers.predict.predict_song` in this process, after one warm-up call (imports done,
  model loaded, numba kernels compiled), with ``tags=True``: the command's JSON holds the
  song's musicnn tags, so the warm call computes them too.

Both use the default model, which must exist before timing: it is built first if missing, and
that first-run cost is printed too. Prints the median of each and the ratio; the goal is a
ratio of at most 2.

Usage::

    PYTHONPATH=src python benchmarks/bench_cli_start.py [--song PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SONG_SECONDS = 240.0


def make_song(source: Path, folder: Path, seconds: float = SONG_SECONDS) -> Path:
    """Loop *source* to *seconds* and write it as Ogg/Vorbis in *folder*."""
    import numpy as np
    import soundfile as sf

    from helpers.audio import load_audio
    from helpers.constants import SAMPLE_RATE

    y = load_audio(source)
    repeats = int(np.ceil(seconds * SAMPLE_RATE / len(y)))
    y = np.tile(y, repeats)[: int(seconds * SAMPLE_RATE)]
    path = folder / f"{source.stem}_{int(seconds)}s.ogg"
    # in blocks: libsndfile's Vorbis encoder crashes on minutes of audio written in one call
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, format="OGG", subtype="VORBIS") as out:
        for start in range(0, len(y), SAMPLE_RATE * 10):
            out.write(y[start:start + SAMPLE_RATE * 10])
    return path


def time_cli(song: Path, repeats: int) -> tuple[list[float], list[float], str]:
    """Wall and CPU seconds of ``python -m helpers predict SONG --json`` in fresh processes."""
    import resource

    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    times, cpu, genre = [], [], ""
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "helpers", "predict", str(song), "--json"],
                             capture_output=True, text=True, env=env, timeout=600)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if run.returncode != 0:
            raise SystemExit(f"the command failed: {run.stderr.strip()}")
        import json

        genre = json.loads(run.stdout)["genre"]
    return times, cpu, genre


def time_warm(song: Path, repeats: int) -> tuple[list[float], list[float], str]:
    """Wall and CPU seconds of ``predict_song(song, model, tags=True)`` in this process, warm:
    after a warm-up call, with the default model loaded once (the fastest a prediction gets)."""
    from helpers.models import default_model
    from helpers.predict import predict_song

    model = default_model()
    predict_song(song, model=model, tags=True)  # warm-up: imports, numba kernels, weights
    times, cpu, genre = [], [], ""
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        genre = predict_song(song, model=model, tags=True).genre
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times, cpu, genre


def main(argv=None) -> int:
    from helpers.paths import shipped_music_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--song", type=Path, default=shipped_music_dir() / "wesnoth_heroes_rite.ogg",
                        help="song to loop to ~4 minutes (default a shipped song)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from helpers.models import default_model
    from helpers.paths import default_model_path

    model_path = default_model_path()
    if not model_path.is_file():
        start = time.perf_counter()
        default_model()
        print(f"default model built first (first run only): {time.perf_counter() - start:.2f} s "
              f"-> {model_path}")
    else:
        print(f"default model present: {model_path}")

    with tempfile.TemporaryDirectory() as folder:
        song = make_song(args.song, Path(folder))
        cli, cli_cpu, cli_genre = time_cli(song, args.repeats)
        warm, warm_cpu, warm_genre = time_warm(song, args.repeats)
    assert cli_genre == warm_genre, (cli_genre, warm_genre)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"song: {args.song.name} looped to {SONG_SECONDS / 60:.0f} min; {args.repeats} runs "
          f"each; {os.cpu_count()} cores, load average {load:.1f}")
    for label, wall, cpu in (("fresh-process `music-study predict`", cli, cli_cpu),
                             ("warm in-process predict_song       ", warm, warm_cpu)):
        print(f"{label}: wall median {statistics.median(wall):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in wall)}), "
              f"CPU median {statistics.median(cpu):.2f} s")
    print(f"ratio fresh / warm: wall {statistics.median(cli) / statistics.median(warm):.2f}, "
          f"CPU {statistics.median(cli_cpu) / statistics.median(warm_cpu):.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

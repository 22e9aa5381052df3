"""Start-up cost of ``music-study tags``: a fresh process against a warm call, on a shipped song.

The song (default ``data/music/wesnoth_heroes_rite.ogg``, 3:39, 44.1 kHz stereo) is tagged

* by the command, ``python -m helpers tags SONG --json``, in a fresh process each time (what a
  person waits for: interpreter start, imports, weights, the resampler-match design read from
  its cache, decoding, both networks, the JSON), and
* by the same command's ``run`` in this process after one warm-up call (imports done, weights
  loaded, the design in memory, the networks' scratch allocated).

The very first fresh run of a source sample rate also designs the resampler match (about half
a second, then kept in ``data/cache/musicnn``); it is timed and printed apart. Prints the
medians, the ratio (goal: at most 1.5) and the thread count, in one run.

Usage::

    PYTHONPATH=src python benchmarks/bench_tags_start.py [--song PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_fresh(song: Path, repeats: int, env: dict) -> list[float]:
    """Wall seconds of ``python -m helpers tags SONG --json`` in fresh processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "helpers", "tags", str(song), "--json"],
                             capture_output=True, text=True, env=env, timeout=600)
        times.append(time.perf_counter() - start)
        if run.returncode != 0:
            raise SystemExit(run.stderr)
    return times


def time_warm(song: Path, repeats: int) -> list[float]:
    """Wall seconds of the command's ``run`` in this process, after one warm-up call."""
    from helpers.cli import build_parser
    from helpers.commands import tags

    args = build_parser().parse_args(["tags", str(song), "--json"])
    times = []
    for index in range(repeats + 1):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            tags.run(args)
        if index:  # the first call is the warm-up
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--song", type=Path, default=ROOT / "data" / "music" /
                        "wesnoth_heroes_rite.ogg")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()

    from helpers.features.musicnn.network import default_threads

    with tempfile.TemporaryDirectory() as folder:
        # a fresh data folder: the first run designs the resampler match and keeps it there
        env = dict(os.environ, MUSIC_STUDY_DATA_DIR=folder,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                            os.environ.get("PYTHONPATH")])))
        first = time_fresh(options.song, 1, env)[0]
        fresh = time_fresh(options.song, options.repeats, env)
        os.environ["MUSIC_STUDY_DATA_DIR"] = folder
        warm = time_warm(options.song, options.repeats)
    fresh_median, warm_median = statistics.median(fresh), statistics.median(warm)
    print(f"song: {options.song.name}; threads: {default_threads()}; repeats: {options.repeats}")
    print(f"fresh process, first run (designs the resampler match): {first:.2f} s")
    print(f"fresh process `tags --json`: median {fresh_median:.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in fresh)})")
    print(f"warm call in one process:    median {warm_median:.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in warm)})")
    print(f"ratio fresh / warm: {fresh_median / warm_median:.2f}  (goal <= 1.5)")


if __name__ == "__main__":
    main()

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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_fresh(song: Path, repeats: int, env: dict) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads) of ``python -m helpers tags SONG --json`` in fresh
    processes."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), _children_cpu()
        run = subprocess.run([sys.executable, "-m", "helpers", "tags", str(song), "--json"],
                             capture_output=True, text=True, env=env, timeout=600)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
        if run.returncode != 0:
            raise SystemExit(run.stderr)
    return times, cpu


def time_warm(song: Path, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the command's ``run`` in this process, after one warm-up call."""
    from helpers.cli import build_parser
    from helpers.commands import tags

    args = build_parser().parse_args(["tags", str(song), "--json"])
    times, cpu = [], []
    for index in range(repeats + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            tags.run(args)
        if index:  # the first call is the warm-up
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return times, cpu


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
        first = time_fresh(options.song, 1, env)[0][0]
        fresh, fresh_cpu = time_fresh(options.song, options.repeats, env)
        os.environ["MUSIC_STUDY_DATA_DIR"] = folder
        warm, warm_cpu = time_warm(options.song, options.repeats)
    print(f"song: {options.song.name}; threads: {default_threads()}; repeats: {options.repeats}; "
          f"load average (1 min, at the end): {os.getloadavg()[0]:.1f}")
    print(f"fresh process, first run (designs the resampler match): wall {first:.2f} s")
    for label, wall, cpu in (("fresh process `tags --json`", fresh, fresh_cpu),
                             ("warm call in one process   ", warm, warm_cpu)):
        print(f"{label}: wall median {statistics.median(wall):.2f} s, CPU median "
              f"{statistics.median(cpu):.2f} s  (wall runs: {', '.join(f'{t:.2f}' for t in wall)})")
    print(f"ratio fresh / warm: wall {statistics.median(fresh) / statistics.median(warm):.2f}, "
          f"CPU {statistics.median(fresh_cpu) / statistics.median(warm_cpu):.2f}  (goal <= 1.5)")


if __name__ == "__main__":
    main()

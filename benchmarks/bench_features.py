"""Feature extraction speed: the original study's per-call librosa way against helpers.features.

Both run in this process, on one thread, on the same real clips (the GTZAN clips in
``../shared/data/gtzan/audio`` or ``--audio-dir``; else 30-s windows of the shipped songs), each
including its decoding (``librosa.load`` for the baseline, :func:`helpers.features.extract_file`).
Clips alternate between the two so load on a shared machine hits both alike; times are reported as
wall clock and as CPU time of this process (steadier when other jobs share the cores), and the
speed-up is their ratio. Parity is checked on the same rows: largest difference in units of each
column's standard deviation over the 1000 GTZAN table rows, and largest tempo difference.

Then: the first clip in a fresh Python process (imports + first extraction) with numba's on-disk
cache warm and with an empty cache (what the persistent cache saves), and batch throughput of
:func:`helpers.features.batch.extract_table` with 1 and 2 worker processes (no feature cache).

Usage: ``python benchmarks/bench_features.py [--audio-dir DIR] [--repeats N]``
"""

from __future__ import annotations

import os

# One thread everywhere, before numpy/scipy/numba start their pools.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from helpers import features  # noqa: E402
from helpers.data import load_gtzan_table  # noqa: E402
from helpers.paths import project_root, shared_data_dir  # noqa: E402

COLD_START = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
if sys.argv[2] == "baseline":
    import librosa
    from helpers.features import extract_signal_librosa
    extract_signal_librosa(librosa.load(sys.argv[1], sr=22050)[0])
else:
    from helpers.features import extract_file
    extract_file(sys.argv[1])
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def find_clips(audio_dir: str | None) -> list[tuple[Path, float | None]]:
    """Return (file, duration) pairs: GTZAN clips whole, or 30-s windows of the shipped songs."""
    if audio_dir is None and shared_data_dir() is not None:
        candidate = shared_data_dir() / "gtzan" / "audio"
        audio_dir = str(candidate) if candidate.is_dir() else None
    if audio_dir is not None:
        return [(p, None) for p in sorted(Path(audio_dir).rglob("*.wav"))]
    return [(p, 30.0) for p in sorted((project_root() / "data" / "music").glob("*.ogg"))]


def baseline_file(path: Path, duration: float | None) -> dict[str, float]:
    """The original study: librosa.load, then one librosa call per feature."""
    import librosa

    y, sr = librosa.load(path, sr=features.SAMPLE_RATE, duration=duration)
    return features.extract_signal_librosa(y, sr)


def timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def parity(rows: dict[str, dict], reference: dict[str, dict]) -> tuple[float, str, float]:
    """Largest deviation in table-std units (column) and largest tempo difference."""
    spread = load_gtzan_table()[list(features.FEATURE_COLUMNS)].std()
    worst, worst_column, tempo = 0.0, "", 0.0
    for name, row in rows.items():
        for column in features.FEATURE_COLUMNS:
            if column == "tempo":
                tempo = max(tempo, abs(row[column] - reference[name][column]))
                continue
            deviation = abs(row[column] - reference[name][column]) / spread[column]
            if deviation > worst:
                worst, worst_column = deviation, column
    return worst, worst_column, tempo


def cold_start(clip: Path, numba_cache: str | None, way: str = "fast") -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    out = subprocess.run([sys.executable, "-c", COLD_START, str(clip), way], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def batch_throughput(paths: list[Path], jobs: int, duration: float | None) -> float:
    from helpers.features.batch import extract_table

    start = time.perf_counter()
    result = extract_table([str(p) for p in paths], jobs=jobs, cache=False, progress=False,
                           duration=duration)
    elapsed = time.perf_counter() - start
    if result.failures:
        raise RuntimeError(f"batch failures: {result.failures}")
    return elapsed / len(paths)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", default=None, help="folder of clips (default: GTZAN clips)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the clips")
    args = parser.parse_args(argv)

    clips = find_clips(args.audio_dir)
    if not clips:
        print("no clips found", file=sys.stderr)
        return 2
    table = load_gtzan_table().set_index("filename")
    print(f"clips: {len(clips)} from {clips[0][0].parent.parent}; repeats: {args.repeats}; "
          f"one thread; numpy {np.__version__}")

    with threadpool_limits(limits=1):
        # Warm up both paths (imports, numba, FFT plans) outside the timed loop.
        baseline_file(*clips[0])
        features.extract_file(clips[0][0], duration=clips[0][1])
        times = {"baseline": [0.0, 0.0], "fast": [0.0, 0.0]}
        fast_rows, base_rows = {}, {}
        for _ in range(args.repeats):
            for path, duration in clips:
                row, wall, cpu = timed(baseline_file, path, duration)
                base_rows[path.name] = row
                times["baseline"][0] += wall
                times["baseline"][1] += cpu
                row, wall, cpu = timed(features.extract_file, path, 0.0, duration)
                fast_rows[path.name] = row
                times["fast"][0] += wall
                times["fast"][1] += cpu

    n = len(clips) * args.repeats
    print("\nsteady state, seconds per clip (decode + 58 features):")
    print(f"{'':28s}{'wall':>8s}{'cpu':>8s}")
    for name, label in (("baseline", "per-call librosa (study)"),
                        ("fast", "helpers.features")):
        print(f"  {label:26s}{times[name][0] / n:8.3f}{times[name][1] / n:8.3f}")
    print(f"  speed-up (baseline / fast): wall {times['baseline'][0] / times['fast'][0]:.2f}x, "
          f"cpu {times['baseline'][1] / times['fast'][1]:.2f}x")

    worst, column, tempo = parity(fast_rows, base_rows)
    print(f"\nparity, fast vs per-call librosa: max {worst:.2e} table-std ({column}), "
          f"max tempo difference {tempo:.3f} BPM")
    in_table = {k: table.loc[k] for k in fast_rows if k in table.index}
    if in_table:
        worst, column, tempo = parity({k: fast_rows[k] for k in in_table}, in_table)
        print(f"parity, fast vs GTZAN table ({len(in_table)} clips): max {worst:.4f} table-std "
              f"({column}), max tempo difference {tempo:.3f} BPM (limits 0.05, 1)")

    clip = clips[0][0]
    print(f"\nfirst clip in a fresh process ({clip.name}; imports + decode + features):")
    warm = cold_start(clip, None)
    baseline = cold_start(clip, None, "baseline")
    with tempfile.TemporaryDirectory() as empty:
        cold = cold_start(clip, empty)
    print(f"  per-call librosa : wall {baseline['wall']:.2f} s, cpu {baseline['cpu']:.2f} s "
          "(numba cache warm; compiles its beat tracker every time)")
    print(f"  numba cache warm : wall {warm['wall']:.2f} s, cpu {warm['cpu']:.2f} s")
    print(f"  numba cache empty: wall {cold['wall']:.2f} s, cpu {cold['cpu']:.2f} s "
          "(what the on-disk cache saves on every later start)")

    paths = [p for p, _ in clips]
    duration = clips[0][1]
    one = batch_throughput(paths, 1, duration)
    first = batch_throughput(paths, 2, duration)  # starts the worker processes
    two = batch_throughput(paths, 2, duration)  # joblib reuses them
    print(f"\nbatch (helpers.features.batch.extract_table, {len(paths)} files, no cache), wall s/clip:")
    print(f"  1 process  (in this process): {one:.3f} s/clip ({60 / one:.0f} clips/min)")
    print(f"  2 processes, first batch    : {first:.3f} s/clip (includes starting the workers: "
          f"{(first - two) * len(paths):.1f} s of imports)")
    print(f"  2 processes, warm workers   : {two:.3f} s/clip ({60 / two:.0f} clips/min), "
          f"{one / two:.2f}x the single process, on {os.cpu_count()} cores shared with others "
          f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The long run of the damaged-audio corpus and of the decoder fuzzing (the suite runs a sample).

Every damaged variant of every container (``tests/damaged_audio.py``) goes through each entry
point as a user meets it:

* ``predict`` and ``extract``: a fresh ``python -m helpers`` process per file, as typed;
* ``decode`` (:func:`helpers.audio.iter_checked_windows`), ``labeler`` (a ``Labeler`` on the
  file) and ``web`` (an upload through the JSON API, waiting for its job): in a worker process
  that the runner kills and restarts if a file does not end in time.

Then a hypothesis run mutates intact files of every container (overwrites, truncations) and
feeds them to the decode entry point for ``--fuzz-minutes`` (or ``--fuzz-examples``).

Each run must end within the decode deadline (plus start-up), with a result or one line holding
one of the known sentences; a file that references another file must be refused as not audio;
no decoder process may outlive its run. The report counts hangs, tracebacks, unknown sentences,
decoded references and left-over processes (all must be 0), the files per container and the
longest time any file took to be refused.

Usage::

    python tools/decode_fuzz.py                       # everything, about 30 min on 2 cores
    python tools/decode_fuzz.py --entry-points decode web --fuzz-minutes 3 --json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from damaged_audio import (  # noqa: E402
    CONTAINERS,
    NOT_AUDIO,
    encode_song,
    known_reason,
    make_damaged_corpus,
    reason_for,
)

ENTRY_POINTS = ("decode", "predict", "extract", "labeler", "web")
#: Seconds a fresh process may take to start and load the model, on top of the decode deadline.
STARTUP_MARGIN = 90.0


# --------------------------------------------------------------------------- worker side

def _worker_main() -> None:
    """Answer one JSON request per stdin line: {"entry", "path"} -> {"outcome", "error"}."""
    from helpers.errors import InputError

    state: dict = {}

    def model():
        if "model" not in state:
            from helpers.models import default_model

            state["model"] = default_model()
        return state["model"]

    def web():
        if "web" not in state:
            from helpers.web.app import create_app

            folder = Path(tempfile.mkdtemp(prefix="fuzz-web-"))
            app = create_app(store_path=folder / "labels.sqlite", model=model(),
                             upload_dir=folder / "uploads", window_seconds=6.0,
                             access_key="fuzz-key-0123456789",
                             fetch_options={"download_dir": folder / "downloads"})
            app.config["TESTING"] = True
            state["web"] = app.test_client()
        return state["web"]

    def run(entry: str, path: Path) -> str | None:
        if entry == "decode":
            from helpers.audio import iter_checked_windows

            for _ in iter_checked_windows(path, window_seconds=30.0, min_window_seconds=10.0):
                pass
            return None
        if entry == "labeler":
            from helpers.labeling.widget import Labeler

            folder = Path(tempfile.mkdtemp(prefix="fuzz-labeler-"))
            try:
                Labeler([path], folder / "labels.sqlite", model=model(), audio=False,
                        background=False)
            except InputError as exc:  # "pool: no usable song in the pool: <file>: <reason>"
                raise InputError(path, reason_for(str(exc), path.name) or str(exc)) from None
            return None
        if entry == "web":
            client = web()
            bearer = {"Authorization": "Bearer fuzz-key-0123456789"}
            with open(path, "rb") as handle:
                response = client.post("/api/predict", headers=bearer,
                                       data={"file": (handle, path.name)},
                                       content_type="multipart/form-data")
            if response.status_code == 400:
                raise InputError("page", response.get_json()["error"].split(": ", 1)[-1])
            status_url = response.get_json()["status_url"]
            while True:
                job = client.get(status_url, headers=bearer).get_json()
                if job["status"] == "done":
                    return None
                if job["status"] == "failed":
                    raise InputError("page", job["error"].split(": ", 1)[-1])
                time.sleep(0.05)
        raise ValueError(f"unknown entry point {entry}")

    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        answer = {"outcome": None, "error": None}
        try:
            if request["entry"] == "fuzz":
                answer.update(_fuzz(request))
            else:
                run(request["entry"], Path(request["path"]))
        except InputError as exc:
            answer["outcome"] = exc.reason
        except Exception:  # noqa: BLE001 - a traceback is what the runner counts
            answer["error"] = traceback.format_exc()
        answer["seconds"] = time.monotonic() - started
        print(json.dumps(answer), flush=True)


def _fuzz(request: dict) -> dict:
    """Hypothesis over the decode entry point; a watchdog ends the worker on a hang."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from helpers.audio import DECODE_DEADLINE_CAP, iter_checked_windows
    from helpers.errors import InputError

    folder = Path(request["workdir"])
    seeds = {name: path.read_bytes() for name, path in encode_song(folder / "seeds").items()}
    counts = collections.Counter()
    unknown, current = [], {"path": None, "since": None}

    def watchdog():
        while True:
            time.sleep(1.0)
            since = current["since"]
            if since is not None and time.monotonic() - since > DECODE_DEADLINE_CAP + 30:
                print(json.dumps({"hang": str(current["path"])}), flush=True)
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    @st.composite
    def mutated(draw):
        container = draw(st.sampled_from(sorted(seeds)))
        data = bytearray(seeds[container])
        for _ in range(draw(st.integers(0, 16))):
            at = draw(st.integers(0, len(data) - 1))
            data[at:at + 8] = draw(st.binary(min_size=1, max_size=8))
        if draw(st.booleans()):
            data = data[: draw(st.integers(1, len(data)))]
        return container, bytes(data)

    deadline = time.monotonic() + 60.0 * request.get("minutes", 0.0)
    examples = request.get("examples")

    @settings(max_examples=examples or 200, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated())
    def one(case):
        container, data = case
        if examples is None and time.monotonic() > deadline:
            return
        path = folder / f"fuzz.{CONTAINERS[container][0]}"
        path.write_bytes(data)
        current.update(path=path, since=time.monotonic())
        try:
            for _ in iter_checked_windows(path, window_seconds=3.0, min_window_seconds=1.0):
                pass
            counts["accepted"] += 1
        except InputError as exc:
            counts["refused"] += 1
            if not known_reason(exc.reason):
                unknown.append(exc.reason)
        finally:
            current.update(path=None, since=None)

    rounds = 0
    while True:
        one()
        rounds += 1
        if examples is not None or time.monotonic() > deadline:
            break
    return {"fuzz": {"accepted": counts["accepted"], "refused": counts["refused"],
                     "unknown": unknown[:20], "n_unknown": len(unknown), "rounds": rounds}}


# --------------------------------------------------------------------------- runner side

class Worker:
    """A worker process answering requests, restarted after a hang."""

    def __init__(self):
        self.process = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env,
                                        start_new_session=True)

    def ask(self, request: dict, timeout: float) -> dict | None:
        """The answer, or None when the worker did not answer in time (it is then killed)."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer: list = []
        reader = threading.Thread(target=lambda: answer.append(self.process.stdout.readline()))
        reader.start()
        reader.join(timeout)
        if not answer or not answer[0]:
            self.stop()
            return None
        return json.loads(answer[0])

    def stop(self):
        if self.process is not None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None


def _leftovers(marker: str) -> list[int]:
    """Processes (not this one) whose command line names a file of the corpus."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except (psutil.Error, TypeError):
            continue
        if marker in cmdline and process.pid != os.getpid() and "--worker" not in cmdline \
                and "decode_fuzz.py" not in cmdline:
            found.append(process.pid)
    return found


def _fresh_run(entry: str, path: Path, workdir: Path, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"),
               MUSIC_STUDY_DATA_DIR=str(workdir / "data"))
    args = [sys.executable, "-m", "helpers", entry, str(path)]
    args += ["--json"] if entry == "predict" else ["-o", str(workdir / f"{path.name}.csv"),
                                                   "--no-cache"]
    started = time.monotonic()
    try:
        run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"hang": True, "seconds": timeout}
    seconds = time.monotonic() - started
    lines = run.stderr.strip().splitlines()
    if run.returncode == 0:
        if entry == "predict":
            json.loads(run.stdout)
        return {"outcome": None, "error": None, "seconds": seconds}
    prefix = f"music-study {entry}: error: {path}: "
    if run.returncode == 2 and len(lines) == 1 and lines[0].startswith(prefix):
        return {"outcome": lines[0][len(prefix):], "error": None, "seconds": seconds}
    return {"outcome": None, "error": run.stderr[-2000:] or f"exit {run.returncode}",
            "seconds": seconds}


def run_corpus(corpus, entry_points, workdir: Path, jobs: int) -> dict:
    from helpers.audio import DECODE_DEADLINE_CAP

    timeout = DECODE_DEADLINE_CAP + STARTUP_MARGIN
    report = {"runs": 0, "hangs": 0, "tracebacks": 0, "unknown": 0, "references_decoded": 0,
              "leftover_processes": 0, "accepted": 0, "refused": 0, "problems": [],
              "longest_refusal": {"seconds": 0.0}, "per_entry_point": {}}
    lock = threading.Lock()
    workers: dict[int, Worker] = {}

    def one(variant, entry):
        if entry in ("predict", "extract"):
            answer = _fresh_run(entry, variant.path, workdir, timeout)
        else:
            worker = workers.setdefault(threading.get_ident(), Worker())
            answer = worker.ask({"entry": entry, "path": str(variant.path)}, timeout) \
                or {"hang": True, "seconds": timeout}
        leftovers = _leftovers(str(variant.path)) if entry in ("predict", "extract") else []
        with lock:
            report["runs"] += 1
            counts = report["per_entry_point"].setdefault(entry, collections.Counter())
            counts["runs"] += 1
            name = f"{entry} {variant.path.name}"
            if answer.get("hang"):
                report["hangs"] += 1
                report["problems"].append(f"hang: {name}")
                return
            if answer.get("error"):
                report["tracebacks"] += 1
                report["problems"].append(f"traceback: {name}: {answer['error'][-300:]}")
                return
            if leftovers:
                report["leftover_processes"] += len(leftovers)
                report["problems"].append(f"left behind: {name}: {leftovers}")
            reason = answer.get("outcome")
            if reason is None:
                report["accepted"] += 1
                counts["accepted"] += 1
                if variant.reference:
                    report["references_decoded"] += 1
                    report["problems"].append(f"reference decoded: {name}")
                return
            report["refused"] += 1
            counts["refused"] += 1
            if not known_reason(reason):
                report["unknown"] += 1
                report["problems"].append(f"unknown sentence: {name}: {reason}")
            elif variant.reference and reason != NOT_AUDIO:
                report["references_decoded"] += 1
                report["problems"].append(f"reference not refused as not audio: {name}: {reason}")
            if answer["seconds"] > report["longest_refusal"]["seconds"]:
                report["longest_refusal"] = {"seconds": round(answer["seconds"], 2),
                                             "file": variant.path.name, "entry_point": entry,
                                             "reason": reason}

    tasks = [(v, e) for e in entry_points for v in corpus]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda task: one(*task), tasks))
    for worker in workers.values():
        worker.stop()
    report["per_entry_point"] = {k: dict(v) for k, v in report["per_entry_point"].items()}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help="where the corpus is written")
    parser.add_argument("--containers", nargs="*", default=None, choices=sorted(CONTAINERS))
    parser.add_argument("--entry-points", nargs="*", default=list(ENTRY_POINTS),
                        choices=ENTRY_POINTS)
    parser.add_argument("--jobs", type=int, default=2, help="files run at once (default 2)")
    parser.add_argument("--fuzz-minutes", type=float, default=3.0)
    parser.add_argument("--fuzz-examples", type=int, default=None,
                        help="a fixed number of fuzzing examples instead of --fuzz-minutes")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main()
        return 0
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="decode-fuzz-"))
    started = time.monotonic()
    corpus = make_damaged_corpus(workdir / "corpus", containers=args.containers)
    report = run_corpus(corpus, args.entry_points, workdir, args.jobs)
    report["files_per_container"] = dict(collections.Counter(v.container for v in corpus))
    report["files"] = len(corpus)
    worker = Worker()
    budget = 60.0 * args.fuzz_minutes + 120 if args.fuzz_examples is None else 3600.0
    fuzz = worker.ask({"entry": "fuzz", "workdir": str(workdir / "fuzz"),
                       "minutes": args.fuzz_minutes, "examples": args.fuzz_examples}, budget)
    worker.stop()
    if fuzz is None or fuzz.get("error") or "fuzz" not in fuzz:
        report["hangs" if fuzz is None else "tracebacks"] += 1
        report["problems"].append(f"fuzzing: {fuzz}")
        report["fuzz"] = None
    else:
        report["fuzz"] = fuzz["fuzz"]
        report["unknown"] += fuzz["fuzz"]["n_unknown"]
    report["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"{report['files']} damaged files ({report['files_per_container']}), "
              f"{report['runs']} runs over {', '.join(args.entry_points)} in {report['seconds']} s")
        for key in ("accepted", "refused", "hangs", "tracebacks", "unknown",
                    "references_decoded", "leftover_processes"):
            print(f"  {key}: {report[key]}")
        print(f"  longest refusal: {report['longest_refusal']}")
        print(f"  per entry point: {report['per_entry_point']}")
        print(f"  fuzzing: {report['fuzz']}")
        for problem in report["problems"][:50]:
            print("  PROBLEM", problem)
    bad = sum(report[k] for k in ("hangs", "tracebacks", "unknown", "references_decoded",
                                  "leftover_processes"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Background jobs for the web page: rows in the label store's SQLite file, a small worker pool.

A request that needs seconds of work (download, whole-song analysis) only records a job and
returns; a worker thread runs it and writes its stage (``queued``, ``downloading``,
``analysing window k of n``) and then its result or error into the job's row. The rows live in
their own table (``web_jobs``) of the label store's file, through their own connection, so a
restarted server still shows finished results; a job that was queued or running when the
server stopped is marked failed on the next start (its work is gone with the process).

Examples
--------
>>> def work(payload, report):            # doctest: +SKIP
...     report("analysing window 1 of 1")
...     return {"answer": 42}
>>> board = JobBoard("data/labels.sqlite", work, workers=2)   # doctest: +SKIP
>>> job_id = board.submit("predict", {"url": "https://..."})  # doctest: +SKIP
>>> board.get(job_id)["status"]                                # doctest: +SKIP
'queued'
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from helpers.errors import InputError
from helpers.store import BUSY_TIMEOUT_SECONDS, store_error
from helpers.text import clean_text, safe_logger

#: What a job can be doing.
STATUSES = ("queued", "running", "done", "failed")
#: Default number of worker threads.
DEFAULT_WORKERS = 2
#: Error recorded for jobs a server restart interrupted.
INTERRUPTED = "the server restarted before this job finished; please submit the song again"
#: Error recorded when a job failed for a reason that is not the user's input.
UNEXPECTED = "something went wrong on our side while working on this song; nothing was stored"

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    stage TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_utc TEXT NOT NULL,
    updated_utc TEXT NOT NULL
)
"""
_log = safe_logger(__name__)  # job payloads hold visitors' URLs and names: logged escaped


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def is_job_id(text) -> bool:
    """Return True when *text* has the shape of a job id (random, URL-safe)."""
    return isinstance(text, str) and _JOB_ID.match(text) is not None


def _lower_this_threads_priority(niceness: int = 10) -> None:
    """Let the threads answering requests go first: on Linux a thread has its own nice value
    (``setpriority`` with the thread's id); elsewhere this does nothing."""
    if sys.platform.startswith("linux") and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:
            pass


class JobBoard:
    """Persisted background jobs run by a pool of worker threads.

    Parameters
    ----------
    path : path-like
        The SQLite file (the label store's; open the :class:`~helpers.store.LabelStore` first,
        so the store's own tables exist before this one is added).
    work : callable
        ``work(payload, report) -> dict``: does the job; ``report(stage)`` records progress
        text; the returned dict (JSON-ready) is the result. An
        :class:`~helpers.errors.InputError` fails the job with its message (which the caller
        made fit to show); any other exception fails it with :data:`UNEXPECTED` and is logged.
    workers : int
        Number of worker threads (default 2).
    describe : callable, optional
        ``describe(input_error) -> str``: the text recorded for a failed job, which visitors
        read (default: the error's one-line message without control characters, at most 300
        characters).
    """

    def __init__(self, path, work: Callable[[dict, Callable[[str], None]], dict],
                 workers: int = DEFAULT_WORKERS,
                 describe: Callable[[InputError], str] | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(repr(workers), "the number of workers must be a whole number >= 1")
        self.path = Path(path)
        self._work = work
        self._describe = describe or (lambda exc: clean_text(str(exc), 300))
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            self._db.execute(_SCHEMA)
            interrupted = self._db.execute(
                "UPDATE web_jobs SET status = 'failed', stage = 'failed', error = ?, updated_utc = ?"
                " WHERE status IN ('queued', 'running')", (INTERRUPTED, _now())).rowcount
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "the job was not saved") from exc
        if interrupted:
            _log.info("%d unfinished job(s) from before the restart marked failed", interrupted)
        self._threads = [threading.Thread(target=self._worker, name=f"music-study-job-{i + 1}",
                                          daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @contextmanager
    def _connection(self):
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise store_error(exc, self.path, "the job was not saved") from exc

    def submit(self, kind: str, payload: dict) -> str:
        """Record a new job and queue it; return its id (random, unguessable)."""
        job_id = secrets.token_urlsafe(18)
        now = _now()
        with self._connection() as db:
            db.execute("INSERT INTO web_jobs (id, kind, payload, status, stage, created_utc,"
                       " updated_utc) VALUES (?, ?, ?, 'queued', 'queued', ?, ?)",
                       (job_id, kind, json.dumps(payload, ensure_ascii=False), now, now))
        self._queue.put(job_id)
        return job_id

    def get(self, job_id) -> dict | None:
        """Return a job as a dict (``id, kind, payload, status, stage, result, error,
        created_utc, updated_utc``; payload and result decoded), or ``None`` if unknown."""
        if not is_job_id(job_id):
            return None
        with self._connection() as db:
            cursor = db.execute("SELECT * FROM web_jobs WHERE id = ?", (job_id,))
            row = cursor.fetchone()
            columns = [d[0] for d in cursor.description]
        if row is None:
            return None
        job = dict(zip(columns, row, strict=True))
        job["payload"] = json.loads(job["payload"])
        job["result"] = json.loads(job["result"]) if job["result"] else None
        return job

    def active_payloads(self) -> list[dict]:
        """Return the payloads of queued and running jobs (their files must stay on disk)."""
        with self._connection() as db:
            rows = db.execute("SELECT payload FROM web_jobs WHERE status IN ('queued', 'running')")
            return [json.loads(r[0]) for r in rows.fetchall()]

    def _update(self, job_id: str, **fields) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._connection() as db:
            db.execute(f"UPDATE web_jobs SET {names}, updated_utc = ? WHERE id = ?",
                       (*fields.values(), _now(), job_id))

    def _worker(self) -> None:
        _lower_this_threads_priority()
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - a worker must survive anything to serve the next job
                _log.exception("job %s: could not record its outcome", job_id)

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None or job["status"] != "queued":
            return
        self._update(job_id, status="running", stage="starting")

        def report(stage: str) -> None:
            self._update(job_id, stage=clean_text(stage, 200))

        try:
            result = self._work(job["payload"], report)
        except InputError as exc:
            _log.info("job %s failed: %s", job_id, exc)
            try:
                shown = str(self._describe(exc))
            except Exception:  # noqa: BLE001 - a failing description must not hide the failure
                _log.exception("job %s: could not describe its failure", job_id)
                shown = UNEXPECTED
            self._update(job_id, status="failed", stage="failed", error=shown)
            return
        except Exception:  # noqa: BLE001 - shown as one plain sentence, logged in full
            _log.exception("job %s failed unexpectedly", job_id)
            self._update(job_id, status="failed", stage="failed", error=UNEXPECTED)
            return
        self._update(job_id, status="done", stage="done",
                     result=json.dumps(result, ensure_ascii=False))

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers after the jobs they are running (queued jobs stay queued)."""
        while True:  # drop what has not started: it is marked failed on the next start
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(timeout=60)
        with self._lock:
            self._db.close()

    def wait(self, job_id: str, timeout: float = 120.0, poll: float = 0.05) -> dict:
        """Return the job once it is done or failed (for tests and scripts).

        Raises
        ------
        TimeoutError
            Still queued or running after *timeout* seconds.
        """

        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise InputError(job_id, "no such job")
            if job["status"] in ("done", "failed"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g} s")
            time.sleep(poll)


__all__ = ["DEFAULT_WORKERS", "INTERRUPTED", "STATUSES", "UNEXPECTED", "JobBoard", "is_job_id",
           "store_error"]

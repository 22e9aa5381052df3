"""Background jobs for the web page: rows in the label store's SQLite file, a small worker pool,
and the job that predicts a submitted song (:func:`run_predict_job`, a plain function).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from helpers.audio.decode import probe_tags
from helpers.audio.ingest import (
    MAX_FILESIZE_BYTES,
    cached_download,
    enforce_disk_quota,
    fetch_audio,
    is_url,
)
from helpers.errors import (
    InputError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from helpers.labeling.retrain import model_fingerprint
from helpers.predict import predict_song
from helpers.store import BUSY_TIMEOUT_SECONDS, LabelStore, file_sha256, store_error
from helpers.text import clean_text, safe_logger
from helpers.web.uploads import (
    DISK_QUOTA_BYTES,
    MAX_DURATION_SECONDS,
    NO_ROOM,
    DiskRoom,
    without_paths,
)

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


# ---------------------------------------------------------------------- the predict job
#: The one sentence shown for every failed fetch (the reason goes to the server log only).
FETCH_FAILED = "could not fetch a song from that URL"
#: What the page says when the label store cannot take an answer.
STORE_MESSAGES = {
    StoreReadOnlyError: "This page cannot save answers right now.",
    StoreLockedError: "The answers store is busy right now; please try again in a minute.",
    StoreFullError: "The server has no room to save answers right now; please tell the person "
                    "running this page.",
    StoreError: "This page cannot save answers right now.",
}


def store_message(exc: StoreError) -> str:
    """The plain sentence a visitor reads when the label store refused (:data:`STORE_MESSAGES`)."""
    for kind in type(exc).__mro__:
        if kind in STORE_MESSAGES:
            return STORE_MESSAGES[kind]
    return STORE_MESSAGES[StoreError]


@dataclass
class PredictContext:
    """What the predict job needs from the server: the store, the model, folders and limits.

    Attributes
    ----------
    store : LabelStore
    model : fitted classifier
    upload_dir, download_dir : Path
        Where uploads were saved and where URLs are downloaded to (the quota covers both).
    window_seconds : float
        Window length for whole-song prediction.
    max_duration : float
        Longest song accepted, in seconds.
    disk_quota_bytes : int
        Size limit of the two folders together.
    fetch_options : dict
        Keyword arguments for :func:`helpers.audio.ingest.fetch_audio`.
    tags : bool
        Also tag each song with the pretrained musicnn networks (the result page shows them).
    active_payloads : callable
        ``active_payloads() -> list of dict``: the payloads of jobs queued or running (their
        files must stay); the :class:`JobBoard`'s method once there is one.
    """

    store: LabelStore
    model: object
    upload_dir: Path
    download_dir: Path
    window_seconds: float = 30.0
    max_duration: float = MAX_DURATION_SECONDS
    disk_quota_bytes: int = DISK_QUOTA_BYTES
    fetch_options: dict = field(default_factory=dict)
    tags: bool = True
    active_payloads: Callable[[], list] = list
    fingerprint: str = field(init=False)

    def __post_init__(self):
        self.fingerprint = model_fingerprint(self.model)
        self.room = DiskRoom([self.upload_dir, self.download_dir], self.disk_quota_bytes,
                             self.protected_files)

    def protected_files(self, extra=()) -> list:
        """Files the quota must keep: what labels point to, and what jobs are working on."""

        keep = list(extra)
        for location in self.store.current_labels()["location"]:
            keep.append(cached_download(location, self.download_dir) if is_url(location)
                        else Path(location))
        for payload in self.active_payloads():
            if payload.get("upload"):
                keep.append(Path(payload["upload"]))
            elif payload.get("url"):
                keep.append(cached_download(payload["url"], self.download_dir))
        return keep


def _fetch_for_job(url: str, context: PredictContext):
    """Download *url* within what the quota leaves (cached downloads cost nothing)."""

    cached = cached_download(url, context.download_dir)
    budget = context.room.free() if cached is None else None
    if budget == 0:
        _log.warning("download of %s refused: disk quota of %d bytes reached", url,
                     context.disk_quota_bytes)
        raise InputError("URL", NO_ROOM)
    limits = {"download_dir": context.download_dir, **context.fetch_options}
    if budget is not None:  # what is left under the quota caps the download
        limits["max_filesize"] = min(limits.get("max_filesize", MAX_FILESIZE_BYTES), budget)
    try:
        return fetch_audio(url, allow_local=False, max_duration=context.max_duration, **limits)
    except InputError as exc:
        _log.info("fetch refused or failed: %s", exc)
        raise InputError("URL", FETCH_FAILED) from exc


def run_predict_job(payload: dict, report: Callable[[str], None],
                    context: PredictContext) -> dict:
    """Analyse one submitted song: fetch or take the upload, predict it, record the prediction.

    Parameters
    ----------
    payload : dict
        ``{"url": ...}`` or ``{"upload": path, "name": shown name}`` (what the page queued).
    report : callable
        ``report(stage)``: the job's stage for the page (``downloading``, ``analysing window
        k of n``, ``saving``).
    context : PredictContext

    Returns
    -------
    dict
        ``{"prediction": document, "song_id": int or None, "prediction_id": int or None}``;
        the ids are None when the store is read-only (the genre is shown, answers cannot be
        saved).

    Raises
    ------
    InputError
        Named as the visitor knows the song (its URL or upload name), never by a server path.
    """

    store = context.store
    if payload.get("url"):
        url = payload["url"]
        report("downloading")
        ingested = _fetch_for_job(url, context)
        # a site's title can hold anything: stored and shown like every other name
        path, title, artist, location, source = (
            ingested.path, clean_text(ingested.title or "", 200) or None,
            clean_text(ingested.artist or "", 200) or None, url, "web url")
        shown, source_url = url, url
    else:
        path, shown = Path(payload["upload"]), payload["name"]
        title, artist, location, source, source_url = (Path(shown).stem, None, path,
                                                       "web upload", None)
    try:
        within = enforce_disk_quota([context.upload_dir, context.download_dir],
                                    context.disk_quota_bytes,
                                    keep=context.protected_files([path]))
    except StoreError as exc:
        _log.warning("label store: %s", exc)
        raise InputError("label store", store_message(exc)) from exc
    if not within:
        _log.warning("disk quota of %d bytes reached by kept files", context.disk_quota_bytes)
        raise InputError(shown, NO_ROOM)
    report("analysing")

    def progress(k: int, n: int) -> None:
        if (k - 1) * context.window_seconds >= context.max_duration:  # a header told no length
            raise InputError(shown, f"song is longer than the "
                                    f"{context.max_duration / 60:.1f} min limit")
        report(f"analysing window {k} of {n}")

    tags = _file_tags(path)  # a file's own title and artist beat its name
    title = clean_text(tags.get("title", ""), 200) or title
    artist = artist or clean_text(tags.get("artist", ""), 200) or None
    try:
        prediction = predict_song(path, model=context.model,
                                  window_seconds=context.window_seconds, progress=progress,
                                  tags=context.tags)
    except InputError as exc:  # name the song as the visitor knows it, not the server path
        raise InputError(shown, without_paths(exc.reason, path, shown)) from exc
    report("saving")
    song_id = prediction_id = None
    try:
        song_id = store.add_song(location, title=title, artist=artist,
                                 duration=prediction.duration, source=source,
                                 content_hash=file_sha256(path), album=tags.get("album"),
                                 genre_tag=tags.get("genre"))
        prediction_id = store.record_prediction(song_id, prediction.probabilities,
                                                context.fingerprint, where="web")
    except StoreReadOnlyError as exc:  # show the genre anyway; answers cannot be saved
        _log.warning("store is read-only: %s", exc)
    except StoreError as exc:
        _log.warning("store refused a prediction: %s", exc)
        raise InputError("label store", store_message(exc)) from exc
    prediction.source = shown
    document = prediction.to_dict()
    document.update(title=title, artist=artist, source_url=source_url)
    return {"prediction": document, "song_id": song_id, "prediction_id": prediction_id}


def _file_tags(path) -> dict:
    """The song file's tags (:func:`helpers.audio.decode.probe_tags`); none when unreadable."""
    try:
        return probe_tags(path)
    except InputError:  # the prediction names what is wrong with the file
        return {}

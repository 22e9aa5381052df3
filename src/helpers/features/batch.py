"""Batch feature extraction: many files (or 3-s segments) into one table, in parallel, cached.

:func:`extract_table` turns files and folders into a DataFrame with one row per file (or per
segment), ``filename`` first and ``label`` last when the folder layout is ``<genre>/<file>`` (as in
GTZAN's ``genres_original``). Work is spread over processes with joblib (``jobs``), or over a Dask
cluster through joblib's dask backend (``scheduler``). Every finished file is cached under
``data/cache/features`` keyed by the file's content and the extraction parameters, so a re-run skips
it. A file that cannot be used does not stop the batch: it is listed, with the reason, in
:attr:`ExtractionResult.failures`. Files are checked by the rule set of :mod:`helpers.audio`, the
same as every other entry point: a truncated file (a WAV whose header promises more than it holds,
an Ogg stream without its end, an mp3 or m4a that decodes shorter than its header says) is a
failure, unless ``allow_truncated=True`` (``--allow-truncated``), which keeps what the file holds
and marks its rows in a ``truncated`` column.

Segment mode (``segment_seconds=3``) cuts each file into windows under the one windowing policy
(:func:`helpers.features.window_features`): a trailing partial segment is kept only when it lasts
at least ``min(10 s, segment_seconds)``, so 3-s segments keep full segments only (the GTZAN 3-s
table has ten per 30-s clip) while 30-s segments keep a last part of 10 s or more. Silent segments
are kept but flagged in the ``silent`` column, so the table stays aligned with the clip; a segment
with NaN or infinite samples fails the file, as in whole-file mode. ``clip`` and ``segment`` let a
split keep a clip's segments together.

Examples
--------
>>> from helpers.features.batch import extract_table
>>> result = extract_table(["genres_original/"], jobs=2)          # doctest: +SKIP
>>> result.table.groupby("label").size()                           # doctest: +SKIP
>>> [(f.path, f.reason) for f in result.failures]                  # doctest: +SKIP
[('genres_original/jazz/jazz.00054.wav', 'cannot decode audio: ...')]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import pandas as pd
from distributed import Client
from tqdm.std import tqdm

from helpers.audio.checks import NON_FINITE_REASON
from helpers.audio.files import AUDIO_SUFFIXES, check_audio_path, names_a_file
from helpers.audio.windows import check_window_seconds, min_window_seconds
from helpers.cache import code_fingerprint, read_json, write_json
from helpers.errors import AudioError, InputError
from helpers.features.musicnn import PORT_MODULES
from helpers.features.sets import feature_columns, feature_set_rate
from helpers.features.windows import WINDOW_COLUMNS, extract_file, window_features
from helpers.paths import data_dir

log = logging.getLogger(__name__)

#: What a failure that is not the file's fault says (the traceback goes to the log).
UNEXPECTED_FAILURE = "could not extract features: an unexpected error (details in the log)"

#: Bump when the extraction changes so older cache entries are not reused (2: truncated files
#: are refused, so rows cached from them before must not come back; 3: segments follow the one
#: windowing policy, so segments longer than 10 s keep a last part of 10 s or more).
CACHE_VERSION = 3

#: Column that marks rows of truncated files kept with ``allow_truncated=True``.
TRUNCATED_COLUMN = "truncated"

SEGMENT_COLUMNS = ("clip", "segment", "start", "end", "silent")


@dataclass(frozen=True)
class Failure:
    """A file the batch could not use, and why."""

    path: str
    reason: str


@dataclass
class ExtractionResult:
    """What :func:`extract_table` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per file (or segment): ``filename``, segment columns in segment mode, the feature
        columns, and ``label`` when known.
    failures : list of Failure
        Files that produced no row, with the reason.
    files : int
        Number of files attempted.
    cached : int
        Files served from the cache.
    """

    table: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    files: int = 0
    cached: int = 0


def default_cache_dir() -> Path:
    """Return the feature cache folder (``$MUSIC_STUDY_FEATURE_CACHE`` or data/cache/features)."""
    env = os.environ.get("MUSIC_STUDY_FEATURE_CACHE")
    return Path(env).expanduser() if env else data_dir() / "cache" / "features"


def find_audio_files(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, str | None]]:
    """Expand files and folders into ``(file, label)`` pairs, in a stable order.

    Folders are searched recursively for :data:`helpers.audio.AUDIO_SUFFIXES`; a file in a sub-folder of a
    given folder gets that sub-folder's name as its label (``<genre>/<file>``). A file named
    directly gets a label only when its name starts with its folder's name (GTZAN's
    ``blues/blues.00000.wav``). Files named directly are kept whatever their extension or kind
    (a FIFO, a device, a symlink loop), so a mistake is reported with its reason rather than
    skipped.

    Raises
    ------
    InputError
        A path does not exist, or nothing playable was found.
    """
    found: list[tuple[Path, str | None]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            for file in files:
                relative = file.relative_to(path)
                found.append((file, relative.parts[0] if len(relative.parts) == 2 else None))
        elif names_a_file(path):  # a file, or something the audio checks name
            parent = path.parent.name
            label = parent if parent and path.name.startswith(parent + ".") else None
            found.append((path, label))
        else:
            raise InputError(path, "file not found (no such file or folder)")
    if not found:
        raise InputError(", ".join(map(str, paths)) or "(no paths)", "no audio files found")
    return found


#: The modules that compute a feature row (their source is part of every cached row's key).
FEATURE_MODULES = ("helpers.features.gtzan", "helpers.features.spectral", "helpers.features.kernels",
                   "helpers.features.windows", "helpers.features.sets", *PORT_MODULES)


def _content_key(path: Path, params: dict) -> str:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()


def _segment_rows(path: Path, segment_seconds: float, feature_set: str, offset: float,
                  duration: float | None, allow_truncated: bool = False) -> list[dict]:
    try:
        table = window_features(path, segment_seconds, feature_set=feature_set, offset=offset,
                                duration=duration, describe_notes=("silent",),
                                allow_truncated=allow_truncated, needs="segments")
    except AudioError as exc:
        if exc.reason.startswith("too short"):
            held = exc.reason.split(": ", 1)[1].split(";")[0]
            raise AudioError(path, f"shorter than one {min_window_seconds(segment_seconds):g}-s "
                                   f"segment: too short ({held})") from None
        raise
    if (table["note"] == "non-finite").any():  # a row of NaN features would poison the table
        raise AudioError(path, NON_FINITE_REASON)
    columns = [c for c in table.columns if c not in WINDOW_COLUMNS]
    rows = []
    for index, window in enumerate(table.to_dict("records")):
        if window["note"] == "short":
            continue  # the policy: a partial segment shorter than the minimum is not used
        rows.append({"filename": f"{path.stem}.{index}{path.suffix}", "clip": path.name,
                     "segment": index, "start": window["start"], "end": window["end"],
                     "silent": window["note"] == "silent",
                     **{c: window[c] for c in columns}})
    return rows


def _extract_rows(path: Path, segment_seconds, feature_set, offset, duration,
                  allow_truncated: bool) -> list[dict]:
    if segment_seconds:
        return _segment_rows(path, segment_seconds, feature_set, offset, duration,
                             allow_truncated)
    return [{"filename": path.name,
             **extract_file(path, offset=offset, duration=duration, feature_set=feature_set,
                            allow_truncated=allow_truncated)}]


def extract_one(path, segment_seconds: float | None = None, feature_set: str = "gtzan",
                offset: float = 0.0, duration: float | None = None,
                cache_dir: str | os.PathLike | None = None,
                allow_truncated: bool = False) -> tuple[list[dict], str | None, bool]:
    """Extract one file's rows; never raises for a bad file.

    Parameters
    ----------
    allow_truncated : bool
        Keep what a truncated file holds (its rows get ``truncated=True``) instead of failing it.

    Returns
    -------
    rows : list of dict
        One row (whole file) or one per full segment.
    error : str or None
        The reason the file produced nothing.
    from_cache : bool
        Whether the rows came from the cache.
    """
    path = Path(path)
    params = {"version": CACHE_VERSION, "code": code_fingerprint(*FEATURE_MODULES),
              "feature_set": feature_set,
              "sr": feature_set_rate(feature_set),
              "segment_seconds": segment_seconds, "offset": offset, "duration": duration}
    if allow_truncated:
        params["allow_truncated"] = True
    cache_file = None
    try:
        if cache_dir is not None:
            check_audio_path(path)  # never hash a FIFO (it would block) or a device
            key = _content_key(path, params)
            cache_file = Path(cache_dir) / key[:2] / f"{key}.json"
            cached = read_json(cache_file)
            if isinstance(cached, dict) and isinstance(cached.get("rows"), list):
                return cached["rows"], None, True
        try:
            rows = _extract_rows(path, segment_seconds, feature_set, offset, duration, False)
            marker = False
        except AudioError as exc:
            if not (allow_truncated and exc.reason.startswith("truncated")):
                raise
            rows = _extract_rows(path, segment_seconds, feature_set, offset, duration, True)
            marker = True
        if allow_truncated:
            rows = [{**row, TRUNCATED_COLUMN: marker} for row in rows]
    except InputError as exc:
        return [], exc.reason, False
    except OSError as exc:
        return [], f"cannot read the file ({exc.strerror or exc})", False
    except Exception:  # a batch must survive any one file; the user reads a sentence, not a class
        log.exception("extracting %s failed unexpectedly", path)
        return [], UNEXPECTED_FAILURE, False
    if cache_file is not None:
        write_json(cache_file, {"rows": rows})  # a read-only cache only costs time
    return rows, None, False


def _progress(total: int, progress: bool | str, desc: str):
    """A tqdm bar on stderr, drawn only when someone watches a terminal.

    In a notebook kernel, under papermill or with stderr redirected to a file, a bar would only
    leave carriage-return debris in the saved output, so it is disabled there.
    """

    show = bool(progress) and sys.stderr.isatty()
    return tqdm(total=total, disable=not show, desc=desc, unit="file", file=sys.stderr)


def extract_table(paths, *, segment_seconds: float | None = None, feature_set: str = "gtzan",
                  jobs: int = 1, cache: bool = True, cache_dir=None, scheduler=None,
                  offset: float = 0.0, duration: float | None = None,
                  progress: bool | str = True, allow_truncated: bool = False) -> ExtractionResult:
    """Extract features for files and folders into one table.

    Parameters
    ----------
    paths : path-like or list of path-like
        Audio files and folders (searched recursively).
    segment_seconds : float, optional
        Cut each file into segments of this length (e.g. 3 for the GTZAN 3-s table); default one
        row per file, described whole (the GTZAN 30-s table's way).
    feature_set : str
        A registered feature set (:func:`helpers.features.feature_set`: ``"gtzan"``,
        ``"extended"``, ``"musicnn"``, ``"gtzan+musicnn"``, ...): the columns to compute, on
        the same windows whatever the set.
    jobs : int
        Worker processes (joblib); ``-1`` uses every core.
    cache : bool
        Reuse and store results in *cache_dir* (default :func:`default_cache_dir`).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``tcp://host:8786``) or client: run on that cluster through
        joblib's dask backend instead of local processes.
    offset, duration : float
        Part of each file to read, in seconds (``duration=None``: to the end).
    progress : bool or "text"
        Show a progress bar on stderr when stderr is a terminal (never in a notebook or a
        report, where it would only leave debris; ``"text"`` is accepted as True).
    allow_truncated : bool
        Keep what truncated files hold instead of listing them as failures; the table then has
        a ``truncated`` column (True for those files' rows).

    Returns
    -------
    ExtractionResult
        The table, the failures with their reasons, and counts.

    Raises
    ------
    InputError
        A path does not exist or no audio file was found.
    """

    columns = feature_columns(feature_set)  # the registry: an unknown name lists the choices
    if segment_seconds is not None:  # the one window-length check of every entry point
        segment_seconds = check_window_seconds("segment_seconds", segment_seconds)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files = find_audio_files(paths)
    if jobs == 0 or jobs < -1:
        raise InputError(f"--jobs {jobs}", "use a positive number of processes, or -1 for all")
    cache_path = str(Path(cache_dir) if cache_dir else default_cache_dir()) if cache else None
    tasks = [joblib.delayed(extract_one)(str(path), segment_seconds, feature_set, offset,
                                         duration, cache_path, allow_truncated)
             for path, _ in files]
    bar = _progress(len(tasks), progress, "extracting")
    outcomes = []
    try:
        if scheduler is not None:
            outcomes = _run_on_dask(tasks, scheduler, bar)
        elif jobs == 1:
            for task in tasks:
                function, args, kwargs = task
                outcomes.append(function(*args, **kwargs))
                bar.update()
        else:
            runner = joblib.Parallel(n_jobs=jobs, backend="loky", return_as="generator")
            for outcome in runner(tasks):
                outcomes.append(outcome)
                bar.update()
    finally:
        bar.close()

    rows, failures, cached = [], [], 0
    for (path, label), (file_rows, error, from_cache) in zip(files, outcomes, strict=True):
        if error is not None:
            failures.append(Failure(str(path), error))
            continue
        cached += bool(from_cache)
        for row in file_rows:
            rows.append({**row, "label": label})
    leading = ["filename"] + (list(SEGMENT_COLUMNS) if segment_seconds else [])
    marker = [TRUNCATED_COLUMN] if allow_truncated else []
    table = pd.DataFrame(rows, columns=leading + list(columns) + marker + ["label"])
    if table["label"].isna().all():
        table = table.drop(columns="label")
    return ExtractionResult(table=table, failures=failures, files=len(files), cached=cached)


def _run_on_dask(tasks, scheduler, bar) -> list:
    if isinstance(scheduler, Client):
        client = scheduler
    else:
        try:
            client = Client(scheduler, timeout=15)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(scheduler, f"cannot reach the Dask scheduler ({exc})") from exc
    try:
        with joblib.parallel_config(backend="dask"):
            outcomes = []
            for outcome in joblib.Parallel(return_as="generator")(tasks):
                outcomes.append(outcome)
                bar.update()
            return outcomes
    finally:
        if client is not scheduler:
            client.close()


def write_table(table: pd.DataFrame, output) -> Path:
    """Write *table* as CSV atomically (an existing file is replaced only when complete)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=output.parent, prefix=output.name, suffix=".tmp")
    os.close(handle)
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output



def summarise_failures(failures: list[Failure]) -> pd.DataFrame:
    """Return failures as a two-column table (``path``, ``reason``) for display."""
    return pd.DataFrame([(f.path, f.reason) for f in failures], columns=["path", "reason"])


def throughput(seconds: float, files: int) -> dict[str, float]:
    """Seconds per file and files per minute of a timed batch."""
    per_file = seconds / files if files else float("nan")
    return {"files": files, "seconds": seconds, "seconds_per_file": per_file,
            "files_per_minute": 60.0 / per_file if files else float("nan")}


__all__ = [
    "TRUNCATED_COLUMN", "ExtractionResult", "Failure", "default_cache_dir", "extract_one",
    "extract_table", "find_audio_files", "summarise_failures",
    "throughput", "write_table",
]

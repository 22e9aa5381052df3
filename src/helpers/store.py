"""The label store: songs, their features, predictions, label decisions and likes, in SQLite.

Made for several writers at once (notebook widgets, the web page, imports): the database runs in
WAL mode with a busy timeout, and every public method that writes is one transaction, so a
process killed in the middle of an action loses that action only and never corrupts the file.
Nothing is ever deleted: a correction is a new label event, and an undo is an event that points
at the event it cancels.

Failures a person can act on raise their own one-line errors, naming the file and what to do:
:class:`~helpers.errors.StoreReadOnlyError` (the file or its folder is not writable, or the store
was opened with ``read_only=True``), :class:`~helpers.errors.StoreFullError` (the disk or the
store's size limit is full) and :class:`~helpers.errors.StoreLockedError` (another program held
the write lock for longer than the busy timeout). Nothing is written in part: the action's
transaction is rolled back. A store whose file cannot be written opens for reading
(:attr:`LabelStore.read_only`); it then leaves no ``-wal``/``-shm`` files behind.

Tables
------
songs          one row per song: location (absolute path or URL), content hash, title, artist,
               duration, source, display filename
windows        per-window features of a song: start/end in seconds and the 58 FEATURE_COLUMNS
               (the ``gtzan`` feature set)
feature_sets   every other feature set stored (``musicnn``, ...): its name and its columns
set_windows    per-window features of a song in one of those sets: start/end and the values
               (float64, in the set's column order); a combined set (``gtzan+musicnn``) is
               stored as its parts and read back joined on the window
predictions    each prediction shown to someone: model fingerprint, probabilities (JSON), where
label_events   every decision: ``label`` (genre), ``skip`` or ``undo`` (pointing at the event it
               cancels), with who, when (UTC ISO 8601), where and what the model had said
preferences    likes and dislikes, as events (the latest one per song and person counts); a row
               may clear the choice (``cleared``) or undo an earlier row (``undoes``)
genre_keys     the order genres were first seen in, so that each keeps its key for good
schema_version the schema version the file was written with (1: the tables above up to
               ``preferences``; 2 adds ``feature_sets`` and ``set_windows``; 3 adds file tags
               (``album``, ``genre_tag``), likes that can be cleared and undone, and
               ``genre_keys``). Later versions only add tables and columns, so an older store
               migrates with its rows untouched

Examples
--------
>>> from helpers.store import LabelStore
>>> store = LabelStore(tmp_path / "labels.sqlite")          # doctest: +SKIP
>>> song = store.add_song("data/music/singularity_coherence.ogg", title="Coherence")  # doctest: +SKIP
>>> event = store.record_label(song, "electronic", model_said="disco")  # doctest: +SKIP
>>> store.current_labels()[["song_id", "genre"]]            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from helpers.audio.files import check_audio_path
from helpers.data import load_gtzan_table, read_user_csv
from helpers.errors import (
    DataIntegrityError,
    InputError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from helpers.features import SAMPLE_RATE
from helpers.features.columns import FEATURE_COLUMNS
from helpers.features.sets import FeatureSet
from helpers.features.sets import feature_set as feature_set_spec
from helpers.paths import data_dir, file_sha256, shared_data_dir  # file_sha256: public here too
from helpers.text import clean_text

#: Version of the schema this module writes; older files are migrated on open.
SCHEMA_VERSION = 3

#: Environment variable that moves the default store.
STORE_ENV = "MUSIC_STUDY_LABEL_STORE"

#: Where a decision or prediction was made.
WHERE_VALUES = ("widget", "web", "import", "notebook", "cli")

#: Source recorded for the rows imported from the original study's CSV.
ORIGINAL_STUDY_SOURCE = "original study"

#: Seconds a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+:")  # 2+ letters: "C:" is a Windows drive
_MAX_GENRE_LENGTH = 64


def _writable(path: Path) -> bool:
    """Whether a store at *path* can be written: the file (if it exists) and its folder (for
    the WAL files), or the nearest existing folder when it is still to be made."""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def default_store_path() -> Path:
    """Return the default store file: ``$MUSIC_STUDY_LABEL_STORE`` or ``data_dir()/labels.sqlite``."""
    env = os.environ.get(STORE_ENV)
    return Path(env).expanduser().resolve() if env else data_dir() / "labels.sqlite"


def utc_now() -> str:
    """Return the current UTC time in ISO 8601 with microseconds (``...+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def normalise_genre(genre) -> str:
    """Return *genre* cleaned (:func:`helpers.text.clean_text`: no control characters, no
    right-to-left overrides or other bidi formatting, single spaces), trimmed and lower-cased.

    Every writer of genres goes through here (the label store, the notebook labeler, the web
    page), so a name shows the same, and reads left to right, wherever it is listed.

    Raises
    ------
    InputError
        Not a string, empty once cleaned, or longer than 64 characters.
    """
    if not isinstance(genre, str):
        raise InputError(repr(genre)[:40], "genre must be a text")
    cleaned = clean_text(genre).lower()
    if not cleaned:
        raise InputError("genre", "genre is empty")
    if len(cleaned) > _MAX_GENRE_LENGTH:
        raise InputError(cleaned[:20] + "...", f"genre is longer than {_MAX_GENRE_LENGTH} characters")
    return cleaned


# file_sha256, the content hash of a song file, lives in helpers.paths (imported above)


def _location(path_or_url) -> tuple[str, Path | None]:
    """Return the stored location of a song and, for local files, its resolved path."""
    text = os.fspath(path_or_url) if isinstance(path_or_url, os.PathLike) else path_or_url
    if not isinstance(text, str) or not text.strip():
        raise InputError(repr(path_or_url), "song location must be a non-empty path or URL")
    text = text.strip()
    if _SCHEME.match(text) and not text.lower().startswith("file:"):
        return text, None
    if text.lower().startswith("file:"):
        text = unquote(urlparse(text).path)

    path = Path(text).expanduser()
    # the real reason: missing (named absolute, as the store keeps it), a folder, a FIFO, ...
    check_audio_path(path, not_found=InputError(path.absolute(), "song file not found"))
    path = path.resolve()
    return str(path), path


def _display_filename(location: str) -> str:
    name = Path(unquote(urlparse(location).path) if _SCHEME.match(location) else location).name
    return name or location


def _check_features(features: Mapping, source: str, columns=FEATURE_COLUMNS) -> list[float]:
    missing = [c for c in columns if c not in features]
    if missing:
        raise InputError(source, f"features lack {len(missing)} columns, e.g. {missing[0]}")
    values = []
    for name in columns:
        try:
            value = float(features[name])
        except (TypeError, ValueError):
            raise InputError(source, f"feature {name} is not a number: {features[name]!r}") from None
        if not math.isfinite(value):
            raise InputError(source, f"feature {name} is not finite ({value})")
        values.append(value)
    return values


_FEATURE_SQL = ", ".join(f'"{c}" REAL NOT NULL' for c in FEATURE_COLUMNS)
_FEATURE_NAMES_SQL = ", ".join(f'"{c}"' for c in FEATURE_COLUMNS)

_SCHEMA_V1 = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL, applied_utc TEXT NOT NULL);
CREATE TABLE songs (
    id INTEGER PRIMARY KEY,
    location TEXT NOT NULL UNIQUE,
    filename TEXT NOT NULL,
    content_hash TEXT,
    title TEXT, artist TEXT, duration REAL, source TEXT,
    added_utc TEXT NOT NULL
);
CREATE INDEX songs_by_hash ON songs(content_hash);
CREATE TABLE windows (
    id INTEGER PRIMARY KEY,
    song_id INTEGER NOT NULL REFERENCES songs(id),
    start REAL NOT NULL, "end" REAL NOT NULL,
    {_FEATURE_SQL},
    added_utc TEXT NOT NULL,
    UNIQUE (song_id, start, "end")
);
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY,
    song_id INTEGER NOT NULL REFERENCES songs(id),
    model_fingerprint TEXT NOT NULL,
    genre TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    "where" TEXT NOT NULL,
    window_start REAL, window_end REAL,
    created_utc TEXT NOT NULL
);
CREATE TABLE label_events (
    id INTEGER PRIMARY KEY,
    song_id INTEGER NOT NULL REFERENCES songs(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'undo')),
    genre TEXT,
    undoes INTEGER REFERENCES label_events(id),
    who TEXT NOT NULL,
    "where" TEXT NOT NULL,
    model_said TEXT,
    prediction_id INTEGER REFERENCES predictions(id),
    created_utc TEXT NOT NULL
);
CREATE INDEX events_by_song ON label_events(song_id);
CREATE TABLE preferences (
    id INTEGER PRIMARY KEY,
    song_id INTEGER NOT NULL REFERENCES songs(id),
    liked INTEGER NOT NULL CHECK (liked IN (0, 1)),
    who TEXT NOT NULL,
    "where" TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
"""

_SCHEMA_V2 = """
CREATE TABLE feature_sets (
    name TEXT PRIMARY KEY,
    columns TEXT NOT NULL,
    added_utc TEXT NOT NULL
);
CREATE TABLE set_windows (
    id INTEGER PRIMARY KEY,
    song_id INTEGER NOT NULL REFERENCES songs(id),
    feature_set TEXT NOT NULL REFERENCES feature_sets(name),
    start REAL NOT NULL, "end" REAL NOT NULL,
    "values" BLOB NOT NULL,
    added_utc TEXT NOT NULL,
    UNIQUE (song_id, feature_set, start, "end")
);
"""

# Version 3: file tags (album, genre tag) on songs, likes that can be cleared and undone, and
# the genre order that fixes each genre's key. Columns are added, never changed: an older
# file opens and keeps every row.
_SCHEMA_V3 = """
ALTER TABLE songs ADD COLUMN album TEXT;
ALTER TABLE songs ADD COLUMN genre_tag TEXT;
ALTER TABLE preferences ADD COLUMN cleared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE preferences ADD COLUMN undoes INTEGER REFERENCES preferences(id);
CREATE TABLE genre_keys (
    genre TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    added_utc TEXT NOT NULL
);
"""

#: version -> SQL that upgrades a file from version-1 to version (the first creates everything;
#: later ones only add, so nothing stored is rewritten).
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}

#: The set stored in the ``windows`` table's own columns.
_TABLE_SET = "gtzan"


def _stored_parts(name: str | FeatureSet) -> tuple[FeatureSet, ...]:
    """The sets a feature set is stored as: a combined set's parts, else itself."""
    spec = feature_set_spec(name)
    return spec.parts or (spec,)


def store_error(exc: sqlite3.Error, path, doing: str = "nothing was saved",
                busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> StoreError:
    """Translate an SQLite failure on the store file *path* into the error a user can act on.

    Read-only, full and locked stores get their own types and a remedy; anything else is a
    plain :class:`StoreError`. Shared by :class:`LabelStore` and the web page's job table.
    """
    path = Path(path)
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(exc).lower()
    if code == sqlite3.SQLITE_READONLY or "readonly" in text or "read-only" in text:
        return StoreReadOnlyError(
            path, f"the label store is read-only (the file or its folder is not "
                  f"writable): {doing}; ask for write access, or copy the file to a "
                  f"writable folder and point MUSIC_STUDY_LABEL_STORE at it")
    if code == sqlite3.SQLITE_FULL or "full" in text:
        return StoreFullError(
            path, f"the disk (or the store's size limit) is full: {doing}; free some "
                  f"space on {path.parent} and try again")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text or "busy" in text:
        return StoreLockedError(
            path, f"another program held the store's write lock for more than "
                  f"{busy_timeout:g} s: {doing}; close the other notebook, labeler "
                  f"or web page writing to it, or try again in a moment")
    return StoreError(path, f"the label store failed ({exc}): {doing}")


class LabelStore:
    """A durable, append-only store of songs, features, predictions, labels and likes.

    Parameters
    ----------
    path : path-like, optional
        The SQLite file; default :func:`default_store_path` (``$MUSIC_STUDY_LABEL_STORE`` or
        ``data/labels.sqlite``). Created with its folder when missing.
    who : str
        Default person recorded with each decision.

    Raises
    ------
    DataIntegrityError
        The file is not an SQLite database, or was written by a newer schema version.

    Notes
    -----
    One instance may be shared between threads (a lock serialises its use); each process opens
    its own instance. Open a store after forking, not before.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, who: str = "user",
                 read_only: bool | None = None, busy_timeout: float = BUSY_TIMEOUT_SECONDS):
        self.path = Path(path).expanduser().resolve() if path is not None else default_store_path()
        self.who = self._check_who(who)
        if self.path.is_dir():
            raise InputError(self.path, "label store path is a folder, not a file")
        self._lock = threading.RLock()
        self.busy_timeout = float(busy_timeout)
        if read_only is None:  # a store nobody may write is still there to look at
            read_only = not _writable(self.path)
        #: True when the store was opened for reading only: every write method raises
        #: :class:`~helpers.errors.StoreReadOnlyError`.
        self.read_only = bool(read_only)
        if self.read_only:
            self._open_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise self._store_error(exc, "cannot open the label store") from None
        except OSError as exc:
            raise InputError(self.path, f"cannot open the label store ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise DataIntegrityError(self.path, f"not a label store ({exc})") from exc
        if str(mode).lower() != "wal":
            raise DataIntegrityError(self.path, f"cannot switch to WAL mode (journal mode {mode})")
        self._db.execute("PRAGMA synchronous = FULL")  # a label is a person's work: keep it
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _open_read_only(self) -> None:
        """Open for reading without creating anything: ``immutable`` when no writer left a WAL
        file (so SQLite makes no ``-wal``/``-shm``), else ``mode=ro`` to see the WAL's rows."""
        if not self.path.is_file():
            raise StoreReadOnlyError(self.path, "no label store here and the folder is not "
                                                "writable, so none can be made; choose a "
                                                "writable place (MUSIC_STUDY_LABEL_STORE)")
        wal = self.path.with_name(self.path.name + "-wal")
        pending = wal.exists() and wal.stat().st_size > 0
        uri = f"{self.path.as_uri()}?mode=ro" + ("" if pending else "&immutable=1")
        try:
            self._db = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout,
                                       isolation_level=None, check_same_thread=False)
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.OperationalError as exc:
            raise InputError(self.path, f"cannot open the label store for reading ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise DataIntegrityError(self.path, f"not a label store ({exc})") from exc
        if "schema_version" not in tables:
            raise DataIntegrityError(self.path, "SQLite file is not a label store (no "
                                                "schema_version table)")
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise DataIntegrityError(
                self.path, f"written with schema {version}, this code reads {SCHEMA_VERSION}; "
                           "update the workspace")
        if version < SCHEMA_VERSION:  # read an older file through a migrated copy in memory,
            self._read_migrated_copy(version)  # so the file itself stays untouched

    def _read_migrated_copy(self, version: int) -> None:
        """Swap the read-only connection for an in-memory copy migrated from *version* to
        :data:`SCHEMA_VERSION` (later versions only add, so every row reads as before); the
        copy keeps the file's ``schema_version`` rows, so :attr:`schema_version` still tells
        the file's own version."""
        copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            self._db.backup(copy)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        copy.execute(statement)
        except sqlite3.DatabaseError as exc:
            copy.close()
            raise DataIntegrityError(self.path, f"not a readable label store ({exc})") from exc
        self._db.close()
        self._db = copy

    def _store_error(self, exc: sqlite3.Error, doing: str = "nothing was saved"):
        """Translate SQLite's write failures into the store's own one-line errors."""
        return store_error(exc, self.path, doing, self.busy_timeout)

    # ------------------------------------------------------------------ plumbing
    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the file stays consistent whether or not this is called)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self):
        """One action = one ``BEGIN IMMEDIATE ... COMMIT``; any error rolls it back whole.

        Raises
        ------
        StoreReadOnlyError, StoreFullError, StoreLockedError
            The store cannot be written; nothing of the action was saved.
        """
        if self.read_only:
            raise StoreReadOnlyError(
                self.path, "the label store is open for reading only: nothing was saved; "
                           "ask for write access to the file and its folder, or copy it to a "
                           "writable folder and point MUSIC_STUDY_LABEL_STORE at it")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._store_error(exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite already rolled back (e.g. after SQLITE_FULL)
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._store_error(exc) from None
                raise

    def _read(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            columns = [d[0] for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)

    def _migrate(self) -> None:
        try:
            with self._transaction() as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                version = 0
                if "schema_version" in tables:
                    version = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
                elif tables:
                    raise DataIntegrityError(self.path, "SQLite file is not a label store (no schema_version table)")
                if version > SCHEMA_VERSION:
                    raise DataIntegrityError(
                        self.path, f"written by a newer version (schema {version}, this code knows "
                                   f"{SCHEMA_VERSION}); update the workspace")
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version VALUES (?, ?)", (target, utc_now()))
        except sqlite3.DatabaseError as exc:
            raise DataIntegrityError(self.path, f"not a readable label store ({exc})") from exc

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._lock:
            return int(self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def integrity_check(self) -> str:
        """Return SQLite's ``PRAGMA integrity_check`` verdict (``'ok'`` when sound)."""
        with self._lock:
            return "; ".join(r[0] for r in self._db.execute("PRAGMA integrity_check"))

    @staticmethod
    def _check_who(who) -> str:
        # the same cleaning as genres: a name with a right-to-left override would show reversed
        cleaned = clean_text(who) if isinstance(who, str) else ""
        if not cleaned:
            raise InputError(repr(who)[:40], "who must be a non-empty name")
        return cleaned

    @staticmethod
    def _check_where(where) -> str:
        if where not in WHERE_VALUES:
            raise InputError(repr(where), f"where must be one of {', '.join(WHERE_VALUES)}")
        return where

    def _check_song(self, db, song_id) -> int:
        if isinstance(song_id, bool) or not isinstance(song_id, int | np.integer):
            raise InputError(repr(song_id), "song id must be an integer")
        if db.execute("SELECT 1 FROM songs WHERE id = ?", (int(song_id),)).fetchone() is None:
            raise InputError(f"song {song_id}", f"no such song in {self.path.name}")
        return int(song_id)

    # ------------------------------------------------------------------ songs and features
    def add_song(self, path_or_url, *, title: str | None = None, artist: str | None = None,
                 duration: float | None = None, source: str | None = None,
                 content_hash: str | None = None, album: str | None = None,
                 genre_tag: str | None = None) -> int:
        """Register a song (a local file or a URL) and return its id.

        A song already stored under the same location, or (for local files) with the same
        content hash, keeps its id; metadata it lacked is filled in.

        Parameters
        ----------
        path_or_url : path-like or str
            A local audio file (must exist; stored as an absolute path) or a URL.
        title, artist : str, optional
            Display metadata.
        duration : float, optional
            Length in seconds.
        source : str, optional
            Where the song came from (``"folder"``, ``"youtube"``, ``"original study"``, ...).
        content_hash : str, optional
            Hash of the audio bytes; computed (sha256) for local files when omitted.
        album, genre_tag : str, optional
            The file's album and genre tags (the genre tag is what the file says, not a label).
        """
        location, path = _location(path_or_url)
        if duration is not None:
            try:
                duration = float(duration)
            except (TypeError, ValueError):
                raise InputError(location, f"duration is not a number: {duration!r}") from None
            if not math.isfinite(duration) or duration < 0:
                raise InputError(location, f"duration must be a non-negative number, got {duration}")
        if content_hash is None and path is not None:
            content_hash = file_sha256(path)
        fields = {"title": title, "artist": artist, "duration": duration, "source": source,
                  "content_hash": content_hash, "album": album, "genre_tag": genre_tag}
        with self._transaction() as db:
            row = db.execute("SELECT id FROM songs WHERE location = ?", (location,)).fetchone()
            if row is None and content_hash is not None:
                row = db.execute("SELECT id FROM songs WHERE content_hash = ? ORDER BY id LIMIT 1",
                                 (content_hash,)).fetchone()
            if row is None:
                cursor = db.execute(
                    "INSERT INTO songs (location, filename, content_hash, title, artist, duration,"
                    " source, album, genre_tag, added_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (location, _display_filename(location), content_hash, title, artist, duration,
                     source, album, genre_tag, utc_now()))
                return int(cursor.lastrowid)
            song_id = int(row[0])
            for name, value in fields.items():
                if value is not None:
                    db.execute(f"UPDATE songs SET {name} = ? WHERE id = ? AND {name} IS NULL",
                               (value, song_id))
            return song_id

    def song_id(self, path_or_url) -> int | None:
        """Return the id of a stored song by location (or content hash of a local file), else None."""
        location, path = _location(path_or_url)
        with self._lock:
            row = self._db.execute("SELECT id FROM songs WHERE location = ?", (location,)).fetchone()
            if row is None and path is not None:
                row = self._db.execute("SELECT id FROM songs WHERE content_hash = ? ORDER BY id LIMIT 1",
                                       (file_sha256(path),)).fetchone()
        return None if row is None else int(row[0])

    def songs(self) -> pd.DataFrame:
        """Return every song: ``song_id, location, filename, content_hash, title, artist,
        duration, source, added_utc, album, genre_tag``."""
        return self._read(
            "SELECT id AS song_id, location, filename, content_hash, title, artist, duration,"
            " source, added_utc, album, genre_tag FROM songs ORDER BY id")

    def song_by_hash(self, content_hash: str) -> int | None:
        """Return the id of the first stored song with this content hash, else None."""
        with self._lock:
            row = self._db.execute("SELECT id FROM songs WHERE content_hash = ? ORDER BY id LIMIT 1",
                                   (content_hash,)).fetchone()
        return None if row is None else int(row[0])

    def set_tags(self, song_id: int, tags: Mapping[str, str]) -> None:
        """Fill a song's title, artist, album and genre tag from its file's tags.

        A tag replaces a title that is only the file's name; other fields are filled only
        where empty, so nothing a person or an import wrote is overwritten.
        """
        fields = {k: clean_text(v) for k, v in tags.items()
                  if k in ("title", "artist", "album") and isinstance(v, str) and clean_text(v)}
        if isinstance(tags.get("genre"), str) and clean_text(tags["genre"]):
            fields["genre_tag"] = clean_text(tags["genre"])
        if not fields:
            return
        with self._transaction() as db:
            song_id = self._check_song(db, song_id)
            for name, value in fields.items():
                db.execute(f"UPDATE songs SET {name} = ? WHERE id = ? AND ({name} IS NULL OR {name} = ''"
                           + (" OR source = 'folder')" if name == "title" else ")"),
                           (value, song_id))

    def add_windows(self, song_id: int, windows: Iterable[tuple[float, float, Mapping]],
                    feature_set: str = "gtzan") -> list[int]:
        """Store the features of several windows of a song in one transaction.

        Parameters
        ----------
        song_id : int
        windows : iterable of (start, end, features)
            Window bounds in seconds and a mapping with every column of *feature_set*.
            A window already stored (same start and end, same set) keeps its first features.
        feature_set : str
            The registered feature set the features belong to (``"gtzan"``: the 58
            ``FEATURE_COLUMNS``; ``"musicnn"``; ``"gtzan+musicnn"``, stored as its two parts).

        Returns
        -------
        list of int
            The window ids (of the set's first part), in the order given.
        """
        parts = _stored_parts(feature_set)
        prepared = []
        for start, end, features in windows:
            start, end = float(start), float(end)
            where = f"song {song_id} window {start}-{end}"
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
                raise InputError(where, "window must have 0 <= start < end")
            prepared.append((start, end, [_check_features(features, where, part.columns)
                                          for part in parts]))
        ids = []
        with self._transaction() as db:
            song_id = self._check_song(db, song_id)
            now = utc_now()
            for index, part in enumerate(parts):
                if part.name != _TABLE_SET:
                    self._register_set(db, part, now)
                for start, end, values in prepared:
                    window_id = self._insert_window(db, song_id, part, start, end,
                                                    values[index], now)
                    if index == 0:
                        ids.append(window_id)
        return ids

    @staticmethod
    def _insert_window(db, song_id, part: FeatureSet, start, end, values, now) -> int:
        if part.name == _TABLE_SET:
            placeholders = ", ".join("?" * len(FEATURE_COLUMNS))
            db.execute(
                f'INSERT OR IGNORE INTO windows (song_id, start, "end", {_FEATURE_NAMES_SQL},'
                f" added_utc) VALUES (?, ?, ?, {placeholders}, ?)",
                (song_id, start, end, *values, now))
            return int(db.execute(
                'SELECT id FROM windows WHERE song_id = ? AND start = ? AND "end" = ?',
                (song_id, start, end)).fetchone()[0])
        db.execute(
            'INSERT OR IGNORE INTO set_windows (song_id, feature_set, start, "end", "values",'
            " added_utc) VALUES (?, ?, ?, ?, ?, ?)",
            (song_id, part.name, start, end, np.asarray(values, dtype="<f8").tobytes(), now))
        return int(db.execute(
            'SELECT id FROM set_windows WHERE song_id = ? AND feature_set = ? AND start = ?'
            ' AND "end" = ?', (song_id, part.name, start, end)).fetchone()[0])

    def _register_set(self, db, part: FeatureSet, now: str) -> None:
        """Record *part*'s columns the first time it is stored; refuse a set whose columns
        have changed since (its stored rows would be misread)."""
        row = db.execute("SELECT columns FROM feature_sets WHERE name = ?", (part.name,)).fetchone()
        if row is None:
            db.execute("INSERT INTO feature_sets (name, columns, added_utc) VALUES (?, ?, ?)",
                       (part.name, json.dumps(list(part.columns)), now))
        elif json.loads(row[0]) != list(part.columns):
            raise DataIntegrityError(self.path, f"stores the {part.name} feature set with other "
                                                "columns than this workspace computes")

    def add_window(self, song_id: int, start: float, end: float, features: Mapping,
                   feature_set: str = "gtzan") -> int:
        """Store one window's features; see :meth:`add_windows`."""
        return self.add_windows(song_id, [(start, end, features)], feature_set)[0]

    def _has_table(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                    (name,)).fetchone() is not None

    def _part_windows(self, part: FeatureSet, song_id: int | None) -> pd.DataFrame:
        where, params = ("WHERE song_id = ?", (int(song_id),)) if song_id is not None else ("", ())
        if part.name == _TABLE_SET:
            return self._read(
                f'SELECT id AS window_id, song_id, start, "end", {_FEATURE_NAMES_SQL} FROM windows'
                f" {where} ORDER BY song_id, start", params)
        columns = ["window_id", "song_id", "start", "end", *part.columns]
        if not self._has_table("set_windows"):  # an older store opened read-only
            return pd.DataFrame(columns=columns)
        where = "WHERE feature_set = ?" + (" AND song_id = ?" if song_id is not None else "")
        with self._lock:
            rows = self._db.execute(
                f'SELECT id, song_id, start, "end", "values" FROM set_windows {where}'
                " ORDER BY song_id, start", (part.name, *params)).fetchall()
        values = (np.stack([np.frombuffer(r[4], dtype="<f8") for r in rows]) if rows
                  else np.zeros((0, len(part.columns))))
        if values.shape[1] != len(part.columns):
            raise DataIntegrityError(self.path, f"stores {values.shape[1]} values per "
                                                f"{part.name} window, not {len(part.columns)}")
        frame = pd.DataFrame(values, columns=list(part.columns))
        keys = pd.DataFrame([r[:4] for r in rows], columns=columns[:4])
        return pd.concat([keys, frame], axis=1)

    def windows(self, song_id: int | None = None, feature_set: str = "gtzan") -> pd.DataFrame:
        """Return stored window features: ``window_id, song_id, start, end`` + the set's columns.

        A combined set gives the windows stored in every one of its parts (``window_id`` of
        the first part).
        """
        parts = _stored_parts(feature_set)
        table = self._part_windows(parts[0], song_id)  # in song, start order
        for part in parts[1:]:
            other = self._part_windows(part, song_id).drop(columns="window_id")
            table = table.merge(other, on=["song_id", "start", "end"], how="inner")
        return table.reset_index(drop=True)

    # ------------------------------------------------------------------ predictions
    def record_prediction(self, song_id: int, probabilities: Mapping[str, float],
                          model_fingerprint: str, where: str = "widget", *,
                          window_start: float | None = None,
                          window_end: float | None = None) -> int:
        """Record a prediction shown to someone and return its id (one row per song and model).

        A second call for the same song, model fingerprint and window returns the first row's
        id and writes nothing.

        Parameters
        ----------
        song_id : int
        probabilities : mapping genre -> probability
            Finite values in [0, 1] summing to 1 (within 1e-3).
        model_fingerprint : str
            Identifies the model that predicted (see :func:`helpers.labeling.retrain.model_fingerprint`).
        where : {'widget', 'web', 'import', 'notebook', 'cli'}
        window_start, window_end : float, optional
            The window the prediction is about (``None``: the whole song).
        """
        where = self._check_where(where)
        if not isinstance(model_fingerprint, str) or not model_fingerprint.strip():
            raise InputError(repr(model_fingerprint), "model fingerprint must be a non-empty text")
        if not isinstance(probabilities, Mapping) or not probabilities:
            raise InputError(f"song {song_id}", "probabilities must be a non-empty genre -> value mapping")
        clean = {}
        for genre, value in probabilities.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InputError(f"song {song_id}", f"probability of {genre!r} is not a number") from None
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InputError(f"song {song_id}", f"probability of {genre!r} is {value}, not in [0, 1]")
            clean[normalise_genre(genre)] = value
        total = sum(clean.values())
        if abs(total - 1.0) > 1e-3:
            raise InputError(f"song {song_id}", f"probabilities sum to {total:.4f}, not 1")
        top = max(clean, key=clean.get)
        with self._transaction() as db:
            song_id = self._check_song(db, song_id)
            # One row per song, model and window: showing the same prediction again (a new
            # labeler, a page reload) links to the row already there.
            same = db.execute(
                "SELECT id FROM predictions WHERE song_id = ? AND model_fingerprint = ?"
                " AND window_start IS ? AND window_end IS ? ORDER BY id LIMIT 1",
                (song_id, model_fingerprint.strip(), window_start, window_end)).fetchone()
            if same is not None:
                return int(same[0])
            cursor = db.execute(
                'INSERT INTO predictions (song_id, model_fingerprint, genre, probabilities, "where",'
                " window_start, window_end, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (song_id, model_fingerprint.strip(), top, json.dumps(clean, sort_keys=True), where,
                 window_start, window_end, utc_now()))
            return int(cursor.lastrowid)

    def predictions(self, song_id: int | None = None) -> pd.DataFrame:
        """Return recorded predictions (``probabilities`` decoded to dicts)."""
        where, params = ("WHERE song_id = ?", (int(song_id),)) if song_id is not None else ("", ())
        frame = self._read(
            'SELECT id AS prediction_id, song_id, model_fingerprint, genre, probabilities, "where",'
            f" window_start, window_end, created_utc FROM predictions {where} ORDER BY id", params)
        frame["probabilities"] = frame["probabilities"].map(json.loads)
        return frame

    # ------------------------------------------------------------------ label events
    def _append_event(self, song_id, kind, *, genre=None, undoes=None, who=None, where="widget",
                      model_said=None, prediction_id=None) -> int:
        who = self._check_who(who if who is not None else self.who)
        where = self._check_where(where)
        if model_said is not None:
            model_said = normalise_genre(model_said)
        with self._transaction() as db:
            song_id = self._check_song(db, song_id)
            if prediction_id is not None and db.execute(
                    "SELECT 1 FROM predictions WHERE id = ? AND song_id = ?",
                    (int(prediction_id), song_id)).fetchone() is None:
                raise InputError(f"prediction {prediction_id}", f"no such prediction for song {song_id}")
            cursor = db.execute(
                'INSERT INTO label_events (song_id, kind, genre, undoes, who, "where", model_said,'
                " prediction_id, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (song_id, kind, genre, undoes, who, where, model_said, prediction_id, utc_now()))
            return int(cursor.lastrowid)

    def record_label(self, song_id: int, genre: str, *, who: str | None = None,
                     where: str = "widget", model_said: str | None = None,
                     prediction_id: int | None = None) -> int:
        """Record that *who* says song *song_id* is *genre*; return the event id.

        The genre is normalised (trimmed, lower case); a genre the model does not know yet is
        welcome — that is how new genres enter the data. *model_said* is the genre the model
        had predicted (``None`` when none was shown); *prediction_id* links the prediction row.
        """
        return self._append_event(song_id, "label", genre=normalise_genre(genre), who=who,
                                  where=where, model_said=model_said, prediction_id=prediction_id)

    def record_skip(self, song_id: int, *, who: str | None = None, where: str = "widget",
                    model_said: str | None = None) -> int:
        """Record that *who* skipped a song (it leaves the queue until revisited); return the id."""
        return self._append_event(song_id, "skip", who=who, where=where, model_said=model_said)

    def undo(self, event_id: int | None = None, *, song_id: int | None = None,
             who: str | None = None, where: str = "widget") -> int | None:
        """Cancel a label or skip event by appending an ``undo`` event; return the undo's id.

        Parameters
        ----------
        event_id : int, optional
            The event to cancel. Default: the latest still-active label or skip event by *who*
            (the store's default person), restricted to *song_id* when given.
        song_id : int, optional
            Restrict the default choice to this song.

        Returns
        -------
        int or None
            The new undo event's id; ``None`` when there was nothing left to undo.

        Raises
        ------
        InputError
            *event_id* does not exist, is itself an undo, or was already undone.
        """
        who = self._check_who(who if who is not None else self.who)
        where = self._check_where(where)
        with self._transaction() as db:
            if event_id is None:
                sql = ("SELECT e.id, e.song_id FROM label_events e WHERE e.kind != 'undo' AND e.who = ?"
                       " AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.id)")
                params: tuple = (who,)
                if song_id is not None:
                    sql += " AND e.song_id = ?"
                    params += (int(song_id),)
                row = db.execute(sql + " ORDER BY e.id DESC LIMIT 1", params).fetchone()
                if row is None:
                    return None
            else:
                row = db.execute("SELECT id, song_id, kind FROM label_events WHERE id = ?",
                                 (int(event_id),)).fetchone()
                if row is None:
                    raise InputError(f"event {event_id}", "no such label event")
                if row[2] == "undo":
                    raise InputError(f"event {event_id}", "is an undo; record the label again instead")
                if db.execute("SELECT 1 FROM label_events WHERE undoes = ?", (row[0],)).fetchone():
                    raise InputError(f"event {event_id}", "was already undone")
            cursor = db.execute(
                'INSERT INTO label_events (song_id, kind, undoes, who, "where", created_utc)'
                " VALUES (?, 'undo', ?, ?, ?, ?)", (row[1], row[0], who, where, utc_now()))
            return int(cursor.lastrowid)

    def events(self, song_id: int | None = None) -> pd.DataFrame:
        """Return every label event (label, skip, undo) in the order they happened."""
        where, params = ("WHERE song_id = ?", (int(song_id),)) if song_id is not None else ("", ())
        frame = self._read(
            'SELECT id AS event_id, song_id, kind, genre, undoes, who, "where", model_said,'
            f" prediction_id, created_utc FROM label_events {where} ORDER BY id", params)
        frame["undone"] = frame["event_id"].isin(set(frame["undoes"].dropna().astype(int)))
        return frame

    _ACTIVE = ("SELECT e.* FROM label_events e WHERE e.kind != 'undo' AND NOT EXISTS"
               " (SELECT 1 FROM label_events u WHERE u.undoes = e.id)")

    def current_labels(self) -> pd.DataFrame:
        """Return each labelled song's current genre: its latest label event not undone.

        Returns
        -------
        pandas.DataFrame
            ``song_id, genre, event_id, who, where, model_said, labelled_utc, location,
            filename, title, artist, source``; one row per song, ordered by song id.
        """
        return self._read(
            f"WITH active AS ({self._ACTIVE} AND e.kind = 'label'),"
            " latest AS (SELECT song_id, MAX(id) AS id FROM active GROUP BY song_id)"
            ' SELECT a.song_id, a.genre, a.id AS event_id, a.who, a."where", a.model_said,'
            " a.created_utc AS labelled_utc, s.location, s.filename, s.title, s.artist, s.source"
            " FROM latest l JOIN active a ON a.id = l.id JOIN songs s ON s.id = a.song_id"
            " ORDER BY a.song_id")

    def song_states(self) -> pd.DataFrame:
        """Return every song's queue state from its latest active event.

        Returns
        -------
        pandas.DataFrame
            ``song_id, state, genre, last_event_id`` where state is ``'labelled'``,
            ``'skipped'`` or ``'unlabelled'`` (no active event).
        """
        frame = self._read(
            f"WITH active AS ({self._ACTIVE}),"
            " latest AS (SELECT song_id, MAX(id) AS id FROM active GROUP BY song_id)"
            " SELECT s.id AS song_id, a.kind, a.genre, a.id AS last_event_id FROM songs s"
            " LEFT JOIN latest l ON l.song_id = s.id LEFT JOIN active a ON a.id = l.id ORDER BY s.id")
        frame["state"] = frame["kind"].map({"label": "labelled", "skip": "skipped"}).fillna("unlabelled")
        return frame[["song_id", "state", "genre", "last_event_id"]]

    # ------------------------------------------------------------------ genre keys
    def genre_keys(self) -> list[str]:
        """Genres in the order they were first given a key (:meth:`add_genre_keys`)."""
        return self._read("SELECT genre FROM genre_keys ORDER BY position")["genre"].tolist()

    def add_genre_keys(self, genres: Iterable[str]) -> list[str]:
        """Append the genres not yet in :meth:`genre_keys` (in the given order); return all.

        Nothing is ever re-sorted or removed, so a genre's position (its key) is fixed for the
        life of the store.
        """
        wanted = list(dict.fromkeys(normalise_genre(g) for g in genres))
        if not wanted:
            return self.genre_keys()
        with self._transaction() as db:
            known = {r[0] for r in db.execute("SELECT genre FROM genre_keys")}
            position = db.execute("SELECT COALESCE(MAX(position), -1) FROM genre_keys").fetchone()[0]
            for genre in wanted:
                if genre not in known:
                    position += 1
                    db.execute("INSERT INTO genre_keys VALUES (?, ?, ?)", (genre, position, utc_now()))
        return self.genre_keys()

    # ------------------------------------------------------------------ preferences
    def record_preference(self, song_id: int, liked: bool | None, *, who: str | None = None,
                          where: str = "widget") -> int:
        """Record that *who* likes (``liked=True``), dislikes (``False``) or no longer has a
        view on (``None``: cleared) a song; return the event id."""
        if liked is not None and not isinstance(liked, bool):
            raise InputError(repr(liked), "liked must be True or False (or None: cleared)")
        return self._append_preference(song_id, liked, who=who, where=where)

    def _append_preference(self, song_id, liked, *, who=None, where="widget", undoes=None) -> int:
        who = self._check_who(who if who is not None else self.who)
        where = self._check_where(where)
        with self._transaction() as db:
            song_id = self._check_song(db, song_id)
            cursor = db.execute(
                'INSERT INTO preferences (song_id, liked, cleared, undoes, who, "where",'
                " created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (song_id, int(bool(liked)), int(liked is None), undoes, who, where, utc_now()))
            return int(cursor.lastrowid)

    def undo_preference(self, preference_id: int, *, who: str | None = None,
                        where: str = "widget") -> int:
        """Cancel a like, dislike or clear: append a row restoring the state before it.

        Raises
        ------
        InputError
            No such preference event, or it is an undo, or it was already undone.
        """
        with self._lock:
            row = self._db.execute("SELECT song_id, who, undoes FROM preferences WHERE id = ?",
                                   (int(preference_id),)).fetchone()
            if row is None:
                raise InputError(f"preference {preference_id}", "no such like or dislike")
            if row[2] is not None:
                raise InputError(f"preference {preference_id}", "is an undo; like or dislike again instead")
            if self._db.execute("SELECT 1 FROM preferences WHERE undoes = ?",
                                (int(preference_id),)).fetchone():
                raise InputError(f"preference {preference_id}", "was already undone")
            before = self._db.execute(
                "SELECT liked, cleared FROM preferences WHERE song_id = ? AND who = ? AND id < ?"
                " ORDER BY id DESC LIMIT 1", (row[0], row[1], int(preference_id))).fetchone()
        liked = None if before is None or before[1] else bool(before[0])
        return self._append_preference(row[0], liked, who=who if who is not None else row[1],
                                       where=where, undoes=int(preference_id))

    def preference_events(self, song_id: int | None = None) -> pd.DataFrame:
        """Every like, dislike, clear and undo in order: ``preference_id, song_id, liked
        (True/False/None when cleared), undoes, undone, who, where, created_utc``."""
        where, params = ("WHERE song_id = ?", (int(song_id),)) if song_id is not None else ("", ())
        frame = self._read(
            'SELECT id AS preference_id, song_id, liked, cleared, undoes, who, "where",'
            f" created_utc FROM preferences {where} ORDER BY id", params)
        frame["liked"] = [None if c else bool(v) for v, c in zip(frame["liked"], frame["cleared"],
                                                                 strict=True)]
        frame["undone"] = frame["preference_id"].isin(set(frame["undoes"].dropna().astype(int)))
        return frame.drop(columns="cleared")

    def preferences(self, latest_only: bool = True) -> pd.DataFrame:
        """Return likes/dislikes: per song and person the latest (default; a cleared choice is
        left out), or every event (``cleared`` says which rows clear)."""
        sql = ('SELECT p.id AS preference_id, p.song_id, p.liked, p.who, p."where", p.created_utc,'
               " s.location, s.title, s.artist, p.cleared FROM preferences p"
               " JOIN songs s ON s.id = p.song_id")
        if latest_only:
            sql += (" WHERE p.id = (SELECT MAX(q.id) FROM preferences q"
                    " WHERE q.song_id = p.song_id AND q.who = p.who) AND p.cleared = 0")
        frame = self._read(sql + " ORDER BY p.id")
        frame["liked"] = frame["liked"].astype(bool)
        frame["cleared"] = frame["cleared"].astype(bool)
        return frame if not latest_only else frame.drop(columns="cleared")

    # ------------------------------------------------------------------ training rows
    def export_training_rows(self, provenance: bool = False,
                             feature_set: str = "gtzan") -> pd.DataFrame:
        """Return the currently labelled songs' windows as rows in the GTZAN-table layout.

        Parameters
        ----------
        provenance : bool
            Also return ``song_id``, ``artist`` (None when unknown), ``window_start`` and
            ``window_end`` columns.
        feature_set : str
            Whose stored windows to export (default the 58 ``gtzan`` columns).

        Returns
        -------
        pandas.DataFrame
            ``filename``, the set's columns, ``label`` and ``source``: one row per stored
            window of every song whose current label is set (songs labelled without features
            of that set yield no rows).
        """
        labels = self.current_labels()[["song_id", "genre", "filename", "source", "artist"]]
        feature_set_columns = list(feature_set_spec(feature_set).columns)
        windows = self.windows(feature_set=feature_set)
        rows = windows.merge(labels, on="song_id", how="inner").sort_values(["song_id", "start"])
        rows = rows.rename(columns={"genre": "label", "start": "window_start", "end": "window_end"})
        rows["source"] = rows["source"].fillna("label store")
        columns = ["filename", *feature_set_columns, "label", "source"]
        if provenance:
            columns += ["song_id", "artist", "window_start", "window_end"]
        return rows[columns].reset_index(drop=True)

    def import_original_study(self, csv_path: str | os.PathLike | None = None, *,
                              who: str = "original study author") -> int:
        """Import the original study's added rows as songs, windows and labels (idempotent).

        The rows of ``features_30_secActive.csv`` whose ``filename`` is not in the GTZAN table
        (196 in the published file: 103 alternative, 58 house, ...) become one song each, with
        source ``"original study"``, one 0-30 s window and one label event (``where='import'``).
        Their ``length`` stored 30.0 seconds where the table stores samples; it is fixed to
        ``30 * 22050``. Importing again adds nothing. Everything is one transaction.

        Parameters
        ----------
        csv_path : path-like, optional
            Default ``../shared/data/seed/features_30_secActive.csv``.
        who : str
            Recorded as the labeller.

        Returns
        -------
        int
            Number of rows newly imported (0 on a re-import).
        """

        if csv_path is None:
            shared = shared_data_dir()
            if shared is None:
                raise InputError("../shared/data/seed/features_30_secActive.csv",
                                 "reference data folder not found; pass csv_path")
            csv_path = shared / "seed" / "features_30_secActive.csv"
        csv_path = Path(csv_path)
        table = read_user_csv(csv_path, "original study's table")
        expected = ["filename", *FEATURE_COLUMNS, "label"]
        if list(table.columns) != expected:
            missing = [c for c in expected if c not in table.columns]
            raise DataIntegrityError(
                csv_path, "columns are not the GTZAN-table layout"
                + (f" (missing {missing[0]})" if missing else " (order differs)"))
        gtzan = set(load_gtzan_table()["filename"])
        extra = table[~table["filename"].isin(gtzan)]
        length_seconds = extra["length"] < 1000  # seconds were stored where samples belong
        extra = extra.assign(length=extra["length"].where(~length_seconds,
                                                          extra["length"] * SAMPLE_RATE))
        who = self._check_who(who)
        prepared = []
        for index, row in extra.iterrows():
            values = _check_features(row, f"{csv_path.name} row {index + 2}")
            prepared.append((f"original-study:{csv_path.name}#row{index + 2}", str(row["filename"]),
                             normalise_genre(row["label"]), values))
        placeholders = ", ".join("?" * len(FEATURE_COLUMNS))
        added = 0
        with self._transaction() as db:
            now = utc_now()
            for location, filename, genre, values in prepared:
                if db.execute("SELECT 1 FROM songs WHERE location = ?", (location,)).fetchone():
                    continue
                song_id = db.execute(
                    "INSERT INTO songs (location, filename, title, duration, source, added_utc)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (location, filename, Path(filename).stem.replace("_", " "), 30.0,
                     ORIGINAL_STUDY_SOURCE, now)).lastrowid
                db.execute(
                    f'INSERT INTO windows (song_id, start, "end", {_FEATURE_NAMES_SQL}, added_utc)'
                    f" VALUES (?, 0.0, 30.0, {placeholders}, ?)", (song_id, *values, now))
                db.execute(
                    'INSERT INTO label_events (song_id, kind, genre, who, "where", created_utc)'
                    " VALUES (?, 'label', ?, ?, 'import', ?)", (song_id, genre, who, now))
                added += 1
        return added

    def summary(self) -> dict:
        """Return counts: songs, windows, labelled, skipped, unlabelled, events, genres."""
        states = self.song_states()["state"].value_counts()
        labels = self.current_labels()
        with self._lock:
            windows = self._db.execute("SELECT COUNT(*) FROM windows").fetchone()[0]
            events = self._db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0]
        return {
            "songs": int(states.sum()), "windows": int(windows), "events": int(events),
            "labelled": int(states.get("labelled", 0)), "skipped": int(states.get("skipped", 0)),
            "unlabelled": int(states.get("unlabelled", 0)),
            "genres": labels["genre"].value_counts().sort_index().to_dict(),
        }


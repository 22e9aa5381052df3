"""The label store: durability under concurrent and killed writers, undo, export and import."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared

from helpers.data import load_gtzan_table
from helpers.errors import (
    DataIntegrityError,
    InputError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from helpers.features import FEATURE_COLUMNS
from helpers.store import SCHEMA_VERSION, LabelStore, default_store_path

WINDOWS_PER_SONG = 12


def _features(seed: float) -> dict[str, float]:
    return {name: float(seed + i) for i, name in enumerate(FEATURE_COLUMNS)}


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as opened:
        yield opened


@pytest.fixture
def song(store, shipped_songs):
    return store.add_song(shipped_songs[0], title="A song", artist="Someone", duration=12.5,
                          source="folder")


# ---------------------------------------------------------------- child processes
def _concurrent_writer(path, name, barrier, n_events):
    store = LabelStore(path, who=name)
    song_id = store.add_song(f"https://example.org/{name}", title=name)
    barrier.wait()
    for i in range(n_events):
        # a new model each time: the store keeps one prediction row per song and model
        prediction = store.record_prediction(song_id, {"rock": 0.5, "pop": 0.5}, f"fp-{i}", "web")
        store.record_label(song_id, ("rock", "pop")[i % 2], where="web", model_said="rock",
                           prediction_id=prediction)
    store.close()


def _killable_writer(path, progress_path, first):
    store = LabelStore(path, who="writer")
    with open(progress_path, "a") as progress:
        for i in range(first, first + 100_000):
            song_id = store.add_song(f"https://example.org/killed/{i}", title=f"song {i}")
            progress.write(f"song {i}\n")
            progress.flush()
            store.add_windows(song_id, [(3.0 * k, 3.0 * k + 3.0, _features(i + k))
                                        for k in range(WINDOWS_PER_SONG)])
            progress.write(f"windows {i}\n")
            progress.flush()
            store.record_label(song_id, "rock")
            progress.write(f"label {i}\n")
            progress.flush()


# ---------------------------------------------------------------- durability
def test_store_is_wal_with_schema_version(store):
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert store.schema_version == SCHEMA_VERSION
    assert store.integrity_check() == "ok"


def test_two_processes_write_at_once_and_nothing_is_lost(tmp_path):
    path = tmp_path / "labels.sqlite"
    LabelStore(path).close()
    ctx = _context()
    barrier = ctx.Barrier(2)
    n_events = 120
    workers = [ctx.Process(target=_concurrent_writer, args=(str(path), name, barrier, n_events))
               for name in ("alice", "bob")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    with LabelStore(path) as store:
        events = store.events()
        assert store.integrity_check() == "ok"
        assert events.groupby("who").size().to_dict() == {"alice": n_events, "bob": n_events}
        assert events["event_id"].is_unique
        assert len(store.predictions()) == 2 * n_events
        # each person's events arrive in their own order, interleaved with the other's
        for _, mine in events.groupby("who"):
            assert list(mine["genre"]) == [("rock", "pop")[i % 2] for i in range(n_events)]
        assert set(store.current_labels()["genre"]) == {"pop"}


def test_a_writer_killed_mid_action_loses_at_most_that_action(tmp_path):
    path = tmp_path / "labels.sqlite"
    progress = tmp_path / "progress.txt"
    progress.touch()
    ctx = _context()
    rng = np.random.default_rng(0)
    first = 0
    for round_ in range(3):
        writer = ctx.Process(target=_killable_writer, args=(str(path), str(progress), first))
        writer.start()
        target_lines = len(progress.read_text().splitlines()) + 6 + int(rng.integers(0, 9))
        deadline = time.monotonic() + 120
        while len(progress.read_text().splitlines()) < target_lines and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0, 0.02)))  # land anywhere inside the next action
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        assert writer.exitcode == -signal.SIGKILL, f"round {round_}: writer ended on its own"
        first += 100_000

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with LabelStore(path) as store:
        logged = progress.read_text().splitlines()
        songs = store.songs()
        windows = store.windows().groupby("song_id").size()
        labelled = set(store.current_labels()["song_id"])
        titles = dict(zip(songs["song_id"], songs["title"], strict=True))
        stored = {f"song {t.split()[1]}" for t in titles.values()}
        stored |= {f"windows {titles[s].split()[1]}" for s, n in windows.items()}
        stored |= {f"label {titles[s].split()[1]}" for s in labelled}
        # every action the writer saw committed is there ...
        assert set(logged) <= stored
        # ... a killed writer may have committed one more action before it could log it ...
        assert len(stored - set(logged)) <= 3
        # ... and a multi-row action is never half done
        assert set(windows.unique()) <= {WINDOWS_PER_SONG}
        assert store.integrity_check() == "ok"
        store.record_label(int(songs["song_id"].iloc[0]), "metal")  # still writable


# ---------------------------------------------------------------- songs, events, undo
def test_songs_are_identified_by_location_and_content(store, shipped_songs, tmp_path):
    first = store.add_song(shipped_songs[0])
    assert store.add_song(shipped_songs[0], artist="Filled later") == first
    copy = tmp_path / "copy.ogg"
    copy.write_bytes(shipped_songs[0].read_bytes())
    assert store.add_song(copy) == first  # same bytes, same song
    assert store.song_id(copy) == first
    url = store.add_song("https://example.org/watch?v=abc", title="Web song", source="youtube")
    assert url != first
    songs = store.songs().set_index("song_id")
    assert songs.loc[first, "artist"] == "Filled later"
    assert songs.loc[first, "filename"] == shipped_songs[0].name
    assert len(songs.loc[first, "content_hash"]) == 64
    assert songs.loc[url, "location"] == "https://example.org/watch?v=abc"


def test_labels_skips_and_undo_are_events_nothing_is_deleted(store, song):
    prediction = store.record_prediction(song, {"Jazz": 0.7, "blues": 0.3}, "model-1", "widget")
    first = store.record_label(song, "  Jazz ", model_said="jazz", prediction_id=prediction)
    second = store.record_label(song, "Electronic", model_said="jazz")
    labels = store.current_labels()
    assert labels[["song_id", "genre", "event_id"]].values.tolist() == [[song, "electronic", second]]
    assert labels.loc[0, "model_said"] == "jazz" and labels.loc[0, "where"] == "widget"
    assert labels.loc[0, "labelled_utc"].endswith("+00:00")

    undo = store.undo()
    assert store.current_labels()["genre"].tolist() == ["jazz"]
    store.undo()
    assert store.current_labels().empty
    assert store.undo() is None  # nothing left
    events = store.events()
    assert events["kind"].tolist() == ["label", "label", "undo", "undo"]
    assert events.loc[events["event_id"] == undo, "undoes"].item() == second
    assert events.loc[events["event_id"] == first, "prediction_id"].item() == prediction
    assert events["undone"].tolist() == [True, True, False, False]

    skip = store.record_skip(song)
    assert store.song_states().set_index("song_id").loc[song, "state"] == "skipped"
    store.undo(skip)
    assert store.song_states().set_index("song_id").loc[song, "state"] == "unlabelled"
    with pytest.raises(InputError, match="already undone"):
        store.undo(skip)
    with pytest.raises(InputError, match="is an undo"):
        store.undo(undo)
    assert store.predictions()["probabilities"].tolist() == [{"jazz": 0.7, "blues": 0.3}]


def test_undo_only_touches_the_persons_own_latest_event(store, song):
    mine = store.record_label(song, "rock", who="ann")
    store.record_label(song, "pop", who="ben")
    store.undo(who="ann")
    events = store.events().set_index("event_id")
    assert bool(events.loc[mine, "undone"])
    assert store.current_labels()["genre"].tolist() == ["pop"]


def test_preferences_keep_the_latest_per_person(store, song):
    store.record_preference(song, True, who="ann")
    store.record_preference(song, False, who="ann")
    store.record_preference(song, True, who="ben", where="web")
    latest = store.preferences().set_index("who")["liked"].to_dict()
    assert latest == {"ann": False, "ben": True}
    assert len(store.preferences(latest_only=False)) == 3


def test_windows_and_export_in_gtzan_layout(store, song):
    store.add_windows(song, [(0.0, 30.0, _features(1)), (30.0, 60.0, _features(2))])
    store.add_window(song, 0.0, 30.0, _features(99))  # already there: first features kept
    assert store.windows(song)["chroma_stft_mean"].tolist() == [2.0, 3.0]
    assert store.export_training_rows().empty  # not labelled yet
    store.record_label(song, "electronic")
    rows = store.export_training_rows()
    assert list(rows.columns) == ["filename", *FEATURE_COLUMNS, "label", "source"]
    assert rows["label"].tolist() == ["electronic", "electronic"]
    assert rows["source"].tolist() == ["folder", "folder"]
    assert rows[list(FEATURE_COLUMNS)].to_numpy().tolist() == [
        list(_features(1).values()), list(_features(2).values())]
    assert {"song_id", "window_start", "window_end"} <= set(store.export_training_rows(True).columns)


@pytest.mark.shared_data
def test_import_original_study_is_idempotent_and_fixes_length(store):
    csv_path = require_shared("seed", "features_30_secActive.csv")
    assert store.import_original_study(csv_path) == 196
    assert store.import_original_study(csv_path) == 0
    rows = store.export_training_rows()
    assert len(rows) == 196 and set(rows["source"]) == {"original study"}
    counts = rows["label"].value_counts()
    assert counts["alternative"] == 103 and counts["house"] == 58
    assert set(rows["length"]) == {30.0 * 22050}
    seed = pd.read_csv(csv_path)
    original = seed[~seed["filename"].isin(load_gtzan_table()["filename"])].reset_index(drop=True)
    columns = [c for c in FEATURE_COLUMNS if c != "length"]
    np.testing.assert_array_equal(rows[columns].to_numpy(), original[columns].to_numpy())
    assert rows["filename"].tolist() == original["filename"].tolist()
    assert set(store.current_labels()["where"]) == {"import"}


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_one_line_errors_and_stores_nothing(store, song, tmp_path):
    before = (len(store.events()), len(store.windows()), len(store.predictions()))
    cases = [
        (lambda: store.add_song(tmp_path / "missing.ogg"), "song file not found"),
        (lambda: store.add_song(""), "non-empty path or URL"),
        (lambda: store.add_song("https://example.org/x", duration=-3), "non-negative"),
        (lambda: store.record_label(9999, "rock"), "no such song"),
        (lambda: store.record_label(song, "   "), "genre is empty"),
        (lambda: store.record_label(song, 7), "genre must be a text"),
        (lambda: store.record_label(song, "rock", where="phone"), "where must be one of"),
        (lambda: store.record_label(song, "rock", who=""), "who must be"),
        (lambda: store.record_label(song, "rock", prediction_id=12345), "no such prediction"),
        (lambda: store.record_prediction(song, {"rock": 0.4}, "fp"), "sum to 0.4000"),
        (lambda: store.record_prediction(song, {"rock": float("nan")}, "fp"), "not in \\[0, 1\\]"),
        (lambda: store.record_prediction(song, {"rock": 1.0}, ""), "fingerprint"),
        (lambda: store.record_preference(song, "yes"), "True or False"),
        (lambda: store.undo(424242), "no such label event"),
        (lambda: store.add_windows(song, [(0, 3, _features(0)), (3, 6, {"length": 1.0})]),
         "features lack 57 columns"),
        (lambda: store.add_windows(song, [(5, 5, _features(0))]), "0 <= start < end"),
        (lambda: store.add_window(song, 0, 3, {**_features(0), "tempo": "fast"}), "tempo is not a number"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    assert (len(store.events()), len(store.windows()), len(store.predictions())) == before


def test_files_that_are_not_label_stores_are_refused(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataIntegrityError, match="junk.sqlite"):
        LabelStore(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE t (x)")
    with pytest.raises(DataIntegrityError, match="not a label store"):
        LabelStore(other)
    newer = tmp_path / "newer.sqlite"
    LabelStore(newer).close()
    with sqlite3.connect(newer) as raw:
        raw.execute("INSERT INTO schema_version VALUES (?, 'future')", (SCHEMA_VERSION + 1,))
    with pytest.raises(DataIntegrityError, match="newer version"):
        LabelStore(newer)
    with pytest.raises(InputError, match="is a folder"):
        LabelStore(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot open the label store"):
        LabelStore(blocker / "labels.sqlite")


def test_import_refuses_a_csv_in_another_layout(store, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"filename": ["a.wav"], "label": ["rock"]}).to_csv(bad, index=False)
    with pytest.raises(DataIntegrityError, match="GTZAN-table layout"):
        store.import_original_study(bad)
    with pytest.raises(InputError, match="does not exist"):
        store.import_original_study(tmp_path / "nope.csv")
    assert store.songs().empty


def test_default_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIC_STUDY_LABEL_STORE", str(tmp_path / "elsewhere.sqlite"))
    assert default_store_path() == tmp_path / "elsewhere.sqlite"
    with LabelStore() as store:
        assert store.path == tmp_path / "elsewhere.sqlite"
    monkeypatch.delenv("MUSIC_STUDY_LABEL_STORE")
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "labels.sqlite"


# ---------------------------------------------------------------- store failures a person can act on


def _one_line(exc_info, path, *words):
    message = str(exc_info.value)
    assert "\n" not in message and str(path) in message, message
    for word in words:
        assert word in message, message


def _writes(store, song_id):
    """Every write method, as zero-argument calls."""
    return {
        "add_song": lambda: store.add_song("https://example.org/another"),
        "add_windows": lambda: store.add_windows(song_id, [(0.0, 3.0, _features(1))]),
        "record_prediction": lambda: store.record_prediction(song_id, {"rock": 1.0}, "fp"),
        "record_label": lambda: store.record_label(song_id, "rock"),
        "record_skip": lambda: store.record_skip(song_id),
        "undo": lambda: store.undo(song_id=song_id),
        "record_preference": lambda: store.record_preference(song_id, True),
    }


def test_read_only_store_opens_for_reading_refuses_every_write_and_leaves_no_files(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as writer:
        song_id = writer.add_song("https://example.org/song", title="Song")
        writer.record_label(song_id, "jazz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.sqlite"]
    with LabelStore(path, read_only=True) as reader:
        assert reader.read_only
        assert reader.songs()["title"].tolist() == ["Song"]
        assert reader.current_labels()["genre"].tolist() == ["jazz"]
        for write in _writes(reader, song_id).values():
            with pytest.raises(StoreReadOnlyError) as exc_info:
                write()
            _one_line(exc_info, path, "reading only", "nothing was saved")
        assert len(reader.events()) == 1, "a refused write stored nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.sqlite"]  # no -wal / -shm


def test_a_store_nobody_may_write_opens_read_only(tmp_path, monkeypatch):
    from helpers import store as store_module

    path = tmp_path / "labels.sqlite"
    LabelStore(path).close()
    monkeypatch.setattr(store_module, "_writable", lambda _path: False)
    with LabelStore(path) as reader:
        assert reader.read_only and reader.songs().empty
    with pytest.raises(StoreReadOnlyError) as exc_info:
        LabelStore(tmp_path / "nowhere" / "labels.sqlite")
    _one_line(exc_info, tmp_path / "nowhere" / "labels.sqlite", "not writable")


def test_write_refused_by_sqlite_as_read_only_raises_store_read_only_error(tmp_path):
    # The file became read-only after the store was opened: simulate with a read-only connection.
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        song_id = store.add_song("https://example.org/song")
        store._db.close()
        store._db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                                    check_same_thread=False)
        with pytest.raises(StoreReadOnlyError) as exc_info:
            store.record_label(song_id, "rock")
        _one_line(exc_info, path, "read-only", "nothing was saved", "MUSIC_STUDY_LABEL_STORE")
    with LabelStore(path) as store:
        assert store.events().empty and store.integrity_check() == "ok"


def test_full_disk_raises_store_full_error_and_keeps_the_store_whole(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        song_id = store.add_song("https://example.org/song")
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        many = [(3.0 * k, 3.0 * k + 3.0, _features(k)) for k in range(400)]
        with pytest.raises(StoreFullError) as exc_info:
            store.add_windows(song_id, many)
        _one_line(exc_info, path, "full", "nothing was saved", "free some space")
        assert store.windows().empty  # the transaction was rolled back whole
        assert store.integrity_check() == "ok"


def test_held_lock_raises_store_locked_error_after_the_timeout(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelStore(path, busy_timeout=0.2) as store:
        song_id = store.add_song("https://example.org/song")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with pytest.raises(StoreLockedError) as exc_info:
                store.record_label(song_id, "rock")
            _one_line(exc_info, path, "write lock", "0.2 s", "try again")
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.record_label(song_id, "rock")  # the lock is free again: the store works
        assert store.current_labels()["genre"].tolist() == ["rock"]


def test_one_prediction_row_per_song_model_and_window(store, song):
    first = store.record_prediction(song, {"rock": 0.6, "pop": 0.4}, "model-1", "widget")
    assert store.record_prediction(song, {"rock": 0.6, "pop": 0.4}, "model-1", "web") == first
    other_window = store.record_prediction(song, {"rock": 1.0}, "model-1", window_start=0.0,
                                           window_end=30.0)
    other_model = store.record_prediction(song, {"rock": 0.6, "pop": 0.4}, "model-2")
    assert len({first, other_window, other_model}) == 3
    assert len(store.predictions()) == 3


def test_a_version_1_store_opens_and_keeps_every_row(tmp_path, shipped_songs):
    from helpers import store as store_module

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as raw:  # a store as version 1 wrote it
        raw.executescript(store_module._SCHEMA_V1)
        raw.execute("INSERT INTO schema_version VALUES (1, 'then')")
        raw.execute("INSERT INTO songs (location, filename, title, added_utc) VALUES (?, 'a.ogg', 'A', 'then')",
                    (str(shipped_songs[0]),))
        raw.execute("INSERT INTO label_events (song_id, kind, genre, who, \"where\", created_utc)"
                    " VALUES (1, 'label', 'jazz', 'ann', 'widget', 'then')")
        raw.execute("INSERT INTO preferences (song_id, liked, who, \"where\", created_utc)"
                    " VALUES (1, 1, 'ann', 'widget', 'then')")
    with LabelStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.current_labels()["genre"].tolist() == ["jazz"]
        assert store.preferences()["liked"].tolist() == [True]
        assert store.songs()[["title", "album", "genre_tag"]].values.tolist() == [["A", None, None]]
        assert store.genre_keys() == []


def test_likes_toggle_off_and_undo_restores_the_choice_before(store, song):
    first = store.record_preference(song, True, who="ann")
    cleared = store.record_preference(song, None, who="ann")
    assert store.preferences().empty  # a cleared choice is neither liked nor disliked
    store.undo_preference(cleared, who="ann")
    assert store.preferences()["liked"].tolist() == [True]
    store.undo_preference(first, who="ann")
    events = store.preference_events()
    assert events["liked"].tolist() == [True, None, True, None] and store.preferences().empty
    with pytest.raises(InputError, match="already undone"):
        store.undo_preference(first)
    assert len(store.preferences(latest_only=False)) == 4  # nothing deleted


def test_genre_keys_only_grow_in_the_order_given(store):
    assert store.add_genre_keys(["rock", "blues"]) == ["rock", "blues"]
    assert store.add_genre_keys(["Electronic", "blues", "jazz"]) == ["rock", "blues", "electronic", "jazz"]


def test_an_older_store_nobody_may_write_reads_whole(tmp_path):
    """A read-only store of an older schema is read through a migrated copy: every reader
    works, and the file is left as it was."""
    import hashlib
    import sqlite3

    from helpers import store as store_module

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as raw:  # a version-1 store, as an older workspace wrote it
        raw.executescript(store_module._MIGRATIONS[1])
        raw.execute("INSERT INTO schema_version VALUES (1, 'then')")
        raw.execute("INSERT INTO songs (location, filename, title, source, added_utc)"
                    " VALUES ('/m/a.ogg', 'a.ogg', 'A', 'folder', 'then')")
        raw.execute("INSERT INTO preferences (song_id, liked, who, \"where\", created_utc)"
                    " VALUES (1, 1, 'me', 'widget', 'then')")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    path.chmod(0o444)
    try:
        with LabelStore(path, read_only=True) as old:
            assert old.schema_version == 1
            assert old.songs()["title"].tolist() == ["A"] and old.songs()["album"].isna().all()
            assert old.preferences()["liked"].tolist() == [True]
            assert old.integrity_check() == "ok"
    finally:
        path.chmod(0o644)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before

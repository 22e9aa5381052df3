"""A labelling session without widgets: the pool, its model, the queue and every decision stored.

:class:`LabelingSession` holds what a labeller needs (songs with their window features,
extracted in the background; the model fitted on the base table plus the store's labels; the
queue, most uncertain first; label, accept, skip, undo, like, retrain), and tells a view what
to draw through its ``_on_*`` hooks. :func:`record_answer` is the one way a decision is
recorded, by the notebook labeler and the web page alike.

Examples
--------
>>> from helpers.labeling.session import LabelingSession
>>> session = LabelingSession("data/music", store="labels.sqlite", background=False)  # doctest: +SKIP
>>> session.label("classical")  # the current song  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.audio.windows import check_window_seconds
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.labeling import queries
from helpers.labeling import retrain as retraining
from helpers.labeling.pool import PreparedSong, _complete, _on_grid, pool_files, prepare_song
from helpers.models import card as model_card
from helpers.store import LabelStore, normalise_genre

log = logging.getLogger(__name__)

#: Genres shown as probability bars.
TOP_GENRES = 5


@dataclass
class PoolSong:
    """A song of the labeler's pool with its window predictions."""

    song_id: int
    path: Path | None
    title: str
    artist: str
    windows: pd.DataFrame
    window_proba: np.ndarray | None = None  # windows x genres
    proba: np.ndarray | None = None  # genres (mean over windows)


class LabelingSession:
    """A labelling session over a pool of songs, most uncertain first, with every decision stored.

    Songs whose features are in the store are ready at once; the others are extracted in the
    background (the first in a thread, the rest in worker processes when ``workers > 1``) and
    join the queue as they are ready. No widget here: a view (the notebook labeler,
    :class:`helpers.labeling.widget.Labeler`) subclasses this and draws in the ``_on_*`` hooks, which the session calls when something
    it shows has changed.

    Parameters
    ----------
    pool : path-like, list of path-like, or LabelStore
        A folder of audio files, a list of files, or a store (all its songs that have windows).
    store : LabelStore or path-like, optional
        Where every decision goes; default the store of *pool* when it is one, else
        :class:`LabelStore` at its default path. A store whose ``read_only`` is true opens the
        labeler for looking only.
    model : fitted estimator, optional
        The genre model; default the recipe (or *estimator*) fitted on the base table plus the
        store's labels. A model with a model card (e.g. :func:`helpers.models.default_model`,
        trained on every clip) shows its card's held-out figure instead of being scored on
        clips it saw.
    estimator : estimator, optional
        A custom unfitted model used for (re)training, fitted without groups; default the
        default model's recipe (:func:`helpers.retraining.default_recipe`, the candidate the
        shipped selection chose) with its grouped calibration (:func:`helpers.retraining.fit_rows`).
    base_table : DataFrame, optional
        Base training rows (GTZAN layout); default the training part of the fault-filtered
        split, so that its artist-conscious test part stays a fair held-out set.

    Notes
    -----
    The model that makes the suggestions is also the one whose held-out accuracy is shown: it
    is fitted on the base rows plus the store's labels (never the held-out clips), once at
    start and again only after Retrain or an undo of a label it learnt — never per click.
    With no labels yet it is the model behind the default model card's test figure; the
    default model itself (:func:`helpers.models.default_model`) is trained on every clip,
    test clips included, so it is not used here.
    strategy : str
        Query strategy of :mod:`helpers.labeling` (default
        :data:`helpers.labeling.queries.DEFAULT_STRATEGY`, random picking: what the simulation
        with the labeler's own model supports, notebook 05).
    epsilon : float
        Share of random picks in the queue of an uncertainty strategy (default
        :data:`helpers.labeling.queries.DEFAULT_EPSILON`).
    window_seconds : float
        Window length for features and the audio player.
    max_windows : int, optional
        Use only the first windows of each song (quick runs).
    who : str
        The person labelling (recorded with each event).
    seed : int
        Seed of the random picks.
    background : bool
        Extract missing features in the background and return at once (default); ``False``
        extracts everything before returning.
    workers : int, optional
        Parallel extractions (default: the number of cores); 1 uses a single thread.
    """

    #: What the store records as the place of each decision.
    where = "widget"

    def __init__(self, pool, store: LabelStore | str | os.PathLike | None = None, *,
                 model=None, estimator=None, base_table: pd.DataFrame | None = None,
                 strategy: str = queries.DEFAULT_STRATEGY, epsilon: float = queries.DEFAULT_EPSILON,
                 window_seconds: float = 30.0,
                 max_windows: int | None = None, who: str = "user", seed: int = 0,
                 background: bool = True, workers: int | None = None):
        # before the store is opened: a bad length leaves no new store file behind
        window_seconds = check_window_seconds("window_seconds", window_seconds)
        if isinstance(pool, LabelStore):
            store = pool if store is None else store
        self.store = store if isinstance(store, LabelStore) else LabelStore(store, who=who)
        self.read_only = bool(getattr(self.store, "read_only", False))
        self.who = who
        queries.uncertainty(np.ones((1, 1)), strategy)  # validates the strategy name
        self.strategy, self.epsilon = strategy, float(epsilon)
        self.window_seconds = window_seconds
        self.max_windows = max_windows
        self.workers = max(1, int(workers if workers is not None else (os.cpu_count() or 1)))
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.estimator = estimator
        #: candidate recipe of the default fits (None: the custom *estimator* is used)
        self.recipe = retraining.default_recipe() if estimator is None else None
        self.fit_info: retraining.Fit | None = None
        self._held_out_rows = None  # the test clips honest for the current fit (training_rows)
        if base_table is None:
            base_table, _ = data.held_out_split()
        self.base_table = base_table
        self.problems: list[str] = []
        self.songs: dict[int, PoolSong] = {}
        self.retrain_history: list[retraining.RetrainResult] = []
        self.current: int | None = None
        self._prediction_ids: dict[tuple[int, str], int] = {}
        self._held_out: dict[str, dict] = {}
        self.model = None
        self._trained_on: set[int] = set()
        self.last_message = ""
        self._prepare_view()
        if model is not None:
            self._set_model(model, trained_on=set())
        else:
            trained_on = self._active_label_ids()
            self._set_fit(self._fit_current(), trained_on)
        pending = self._load_pool(pool)
        self.pending_total, self.prepared = len(pending), 0
        if pending and not background:
            self._extract(pending)
        if not self.songs and not (pending and background):
            raise InputError(pool if isinstance(pool, str | os.PathLike) else "pool",
                             "no usable song in the pool" + (f": {self.problems[0]}" if self.problems else ""))
        self._on_progress()
        self.next_song("Ready." if self.songs else "Extracting the first song ...")
        if pending and background:
            self._thread = threading.Thread(target=self._extract, args=(pending,),
                                            name="labeler-extraction", daemon=True)
            self._thread.start()

    def _load_pool(self, pool) -> list[tuple[Path, list[float]]]:
        """Add the songs whose features are stored; return ``(file, stored starts)`` to extract."""
        if isinstance(pool, LabelStore):
            songs = pool.songs()
            with_windows = set(pool.windows()["song_id"])
            for row in songs[songs["song_id"].isin(with_windows)].itertuples():
                path = Path(row.location) if Path(row.location).is_file() else None
                self._add(int(row.song_id), path, row.title, row.artist,
                          pool.windows(int(row.song_id)))
            if not self.songs:
                raise InputError(pool.path, "the store holds no song with features to label")
            self._predict_pool()
            return []
        files = pool_files(pool)
        songs = self.store.songs().set_index("location")
        all_windows = self.store.windows()
        stored_windows = dict(iter(all_windows.groupby("song_id")))
        no_windows = all_windows.head(0)  # songs without windows: built once, not per song
        pending = []
        for path in files:
            if str(path) not in songs.index:
                pending.append((path, []))
                continue
            row = songs.loc[str(path)]
            song_id = int(row["song_id"])
            stored = _on_grid(stored_windows.get(song_id, no_windows), self.window_seconds)
            if _complete(stored, row["duration"], self.window_seconds, self.max_windows):
                if self.max_windows:
                    stored = stored.head(self.max_windows)
                if not stored.empty:
                    self._add(song_id, path, row["title"], row["artist"], stored)
            else:
                pending.append((path, stored["start"].tolist()))
        if self.songs:
            self._predict_pool()
        if pending and self.read_only:
            self.problems.extend(f"{path}: not in the read-only store, so its features cannot be "
                                 "saved; open a writable store to add it" for path, _ in pending)
            return []
        return pending

    def _extract(self, pending: list[tuple[Path, list[float]]]) -> None:
        """Extract the pending songs: the first in this thread, the rest in parallel.

        The first song is labelable after its first window (a preview); the worker processes
        start after that, so they do not compete with it; its other windows follow.
        """
        settings = (self.window_seconds, self.max_windows)
        (first, first_have), rest = pending[0], pending[1:]
        preview = None
        if self._thread is not None and (self.max_windows is None or self.max_windows > 1):
            preview = prepare_song(first, self.window_seconds, 1, first_have)
            if preview.error is None and preview.windows:
                self._join(preview, final=False)
                first_have = [*first_have, *(w[0] for w in preview.windows)]
            else:
                preview = None  # nothing to reuse: the second pass probes and hashes itself
        futures, executor = [], None
        if rest and self.workers > 1:
            # A private pool: joblib's shared reusable executor would be taken over by later
            # joblib.Parallel calls (batch extraction) and break them.
            from joblib.externals.loky import ProcessPoolExecutor

            executor = ProcessPoolExecutor(max_workers=self.workers)
            futures = [executor.submit(prepare_song, path, *settings, have) for path, have in rest]
        self._join(prepare_song(first, *settings, first_have, preview))
        if futures:
            for future in as_completed(futures):
                if self._stop.is_set():
                    break
                try:
                    self._join(future.result())
                except Exception:  # a dead worker must not end the session
                    log.exception("a labeler worker process failed")
                    self._problem("a worker process failed; its song is left out (details in "
                                  "the log)")
            for future in futures:
                future.cancel()
            executor.shutdown(wait=False)
        else:
            for path, have in rest:
                if self._stop.is_set():
                    break
                self._join(prepare_song(path, *settings, have))
        self._finished()

    def _finished(self) -> None:
        """After the last song: offer a skipped song if the queue ran dry meanwhile."""
        with self._lock:
            self._thread_done = True  # this thread ends now: skipped songs may come back
            self._on_progress()
            if self.current is None:
                self.next_song("Every new song is extracted." if self.songs else None)

    def _join(self, prepared: PreparedSong, final: bool = True) -> None:
        """Store a prepared song's metadata and features; add it to the queue (or update it).

        *final* is False for a preview of a song's first window: the song is labelable at once
        and its other windows replace the preview later.
        """
        path = prepared.path
        try:
            if prepared.error:
                raise InputError(path, prepared.error.removeprefix(f"{path}: "))
            song_id = self.store.add_song(path, title=path.stem.replace("_", " "),
                                          duration=prepared.duration, source="folder",
                                          content_hash=prepared.content_hash)
            if prepared.windows:
                self.store.add_windows(song_id, prepared.windows)
            windows = _on_grid(self.store.windows(song_id), self.window_seconds)
            if self.max_windows:
                windows = windows.head(self.max_windows)
            if windows.empty:
                raise InputError(path, "no usable window (silent or too short)")
            row = self.store.songs().set_index("song_id").loc[song_id]
        except InputError as exc:  # one bad file must not stop the session
            self._problem(str(exc))
            return
        with self._lock:
            known = song_id in self.songs
            self._add(song_id, path, row["title"], row["artist"], windows)
            self._predict_songs([song_id])
            if final:
                self.prepared += 1
                self._on_progress()
            if self.current is None:
                # keep the confirmation of the last action in view; add what just arrived
                title = self.songs[song_id].title
                last = self.last_message
                self.next_song(f"{last} — {title} is ready."
                               if last.startswith(("Recorded", "Undone", "Skipped"))
                               else f"Ready: {title}.")
            elif known and self.current == song_id:  # more windows: new bars, same player
                self._on_windows(song_id)
            else:
                self._on_queue()

    def _problem(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self.problems.append(message)
            self.prepared += 1
            self._on_progress()

    def wait(self, timeout: float | None = None) -> LabelingSession:
        """Wait until the background extraction has finished (or *timeout* seconds passed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    @property
    def extracting(self) -> bool:
        """Whether songs are still being extracted in the background."""
        return (self._thread is not None and self._thread.is_alive()
                and not getattr(self, "_thread_done", False))

    def stop(self) -> None:
        """Stop the background extraction after the songs in progress (they are kept)."""
        self._stop.set()

    def _add(self, song_id, path, title, artist, windows) -> None:
        self.songs[song_id] = PoolSong(
            song_id=song_id, path=path,
            title=title if isinstance(title, str) and title else (path.stem if path else f"song {song_id}"),
            artist=artist if isinstance(artist, str) else "", windows=windows.reset_index(drop=True))

    def _fit_current(self) -> retraining.Fit:
        """Fit the labeler's model on the base table plus the store's current labels.

        The recipe (or custom estimator) goes through :func:`helpers.retraining.fit_rows`, the
        same fit :func:`helpers.retraining.retrain` makes; held-out clips are never among the rows.
        """
        base, extra, self._held_out_rows, _ = retraining.training_rows(self.store,
                                                                   base_table=self.base_table)
        return retraining.fit_rows(base, extra, estimator=self.estimator, recipe=self.recipe)

    def _active_label_ids(self) -> set[int]:
        return set(self.store.current_labels()["event_id"].astype(int))

    def _set_fit(self, fit: retraining.Fit, trained_on: set[int], note: str = "") -> None:
        """Use a :func:`helpers.retraining.fit_rows` result: its model, name and note."""
        self.fit_info = fit
        self._set_model(fit.model, trained_on, " ".join(filter(None, [note, fit.note])))

    def _set_model(self, model, trained_on: set[int], note: str = "") -> None:
        """Use *model* from now on: predict the pool again and say which model it is."""
        with self._lock:
            if self.fit_info is not None and self.fit_info.model is not model:
                self.fit_info = None  # a model from elsewhere: named by its model card
            self.model, self._trained_on = model, set(trained_on)
            if self.songs:
                self._predict_pool()
            self._on_model(note)

    def held_out_accuracy(self) -> dict:
        """Accuracy of the current model on the fault-filtered test split (bootstrap 95% CI).

        The labeler's own fits never see a held-out clip, so the model is scored on them. A
        model passed in with a model card (trained on every clip) is not: its card's figure
        (same recipe trained without the test clips) is returned, with ``source='model card'``.
        """
        key = self.fingerprint
        if key not in self._held_out:
            card = getattr(self.model, "model_card_", None) if self.fit_info is None else None
            if self.retrain_history and self.retrain_history[-1].model is self.model:
                self._held_out[key] = self.retrain_history[-1].after
            elif card and card.get("test_accuracy") is not None:
                low, high = card["test_ci95"]
                self._held_out[key] = {"accuracy": card["test_accuracy"], "ci_low": low,
                                       "ci_high": high, "n": card["n_test"],
                                       "source": "model card"}
            else:
                self._held_out[key] = retraining.held_out_score(
                    self.model, held_out=self._held_out_rows if self.fit_info is not None else None)
        return self._held_out[key]

    def model_name(self) -> str:
        """The current model in one line: recipe, description and training rows."""
        if self.fit_info is not None and self.fit_info.model is self.model:
            return self.fit_info.describe()
        return model_card.describe_model(self.model)  # says when a model has no card

    @property
    def genres(self) -> list[str]:
        """Genres a button is shown for: the model's classes and every genre in the store."""
        known = set(map(str, self.model.classes_)) | set(self.store.current_labels()["genre"])
        return sorted(known)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the current model."""
        if getattr(self, "_fingerprint_of", None) is not self.model:
            self._fingerprint, self._fingerprint_of = retraining.model_fingerprint(self.model), self.model
        return self._fingerprint

    def _predict_songs(self, song_ids) -> None:
        """Predict every window of the given pool songs in one call."""
        chosen = [self.songs[s] for s in song_ids]
        if not chosen:
            return

        columns = list(getattr(self.model, "feature_names_in_", MODEL_FEATURES))
        with threadpool_limits(1):  # a few rows: starting a thread pool costs more than it saves
            proba = self.model.predict_proba(
                pd.concat([s.windows for s in chosen], ignore_index=True)[columns])
        offset = 0
        for song in chosen:
            n = len(song.windows)
            song.window_proba = proba[offset:offset + n]
            song.proba = song.window_proba.mean(axis=0)
            offset += n

    def _predict_pool(self) -> None:
        """Predict every window of every pool song in one call (the whole pool at once)."""
        self._predict_songs(list(self.songs))

    def states(self) -> pd.DataFrame:
        """Queue state of each pool song: ``song_id, state, genre, last_event_id``."""
        states = self.store.song_states()
        return states[states["song_id"].isin(list(self.songs))].reset_index(drop=True)

    def progress(self, states: pd.DataFrame | None = None) -> dict:
        """Counts over the pool: ``labelled``, ``skipped``, ``left``, ``total`` (ready songs)."""
        counts = (self.states() if states is None else states)["state"].value_counts()
        return {"labelled": int(counts.get("labelled", 0)), "skipped": int(counts.get("skipped", 0)),
                "left": int(counts.get("unlabelled", 0)), "total": len(self.songs)}

    def queue(self) -> list[int]:
        """Unlabelled, unskipped pool songs, most uncertain first (no random picks)."""
        states = self.states()
        waiting = states.loc[states["state"] == "unlabelled", "song_id"].tolist()
        if not waiting:
            return []
        strategy = "least_confidence" if self.strategy == "random" else self.strategy
        order = queries.query(np.vstack([self.songs[s].proba for s in waiting]), len(waiting),
                             strategy, epsilon=0.0, random_state=self._rng)
        return [waiting[i] for i in order]

    def skipped(self, states: pd.DataFrame | None = None) -> list[int]:
        """Pool songs whose latest decision is a skip, the one skipped longest ago first."""
        states = self.states() if states is None else states
        skipped = states[states["state"] == "skipped"].sort_values("last_event_id")
        return skipped["song_id"].astype(int).tolist()

    def next_song(self, message: str | None = None) -> int | None:
        """Move to the next song the strategy picks; when none is left, the oldest skipped one.

        Returns ``None`` when every ready song is labelled.
        """
        with self._lock:
            states = self.states()
            waiting = states.loc[states["state"] == "unlabelled", "song_id"].tolist()
            if waiting:
                proba = np.vstack([self.songs[s].proba for s in waiting])
                pick = queries.query(proba, 1, self.strategy, epsilon=self.epsilon,
                                    random_state=self._rng)[0]
                self.current = int(waiting[int(pick)])
            else:  # skipped songs come back once no new song can join the queue
                skipped = [] if self.extracting else self.skipped(states)
                self.current = skipped[0] if skipped else None
            self._on_song(message, states)  # nothing was written since: no second read
            return self.current

    def show_song(self, song_id: int, message: str | None = None) -> None:
        """Make *song_id* (a pool song, e.g. a skipped one) the current song."""
        if song_id not in self.songs:
            raise InputError(f"song {song_id}", "is not in this labeler's pool")
        with self._lock:
            self.current = int(song_id)
            self._on_song(message)

    def top_genres(self, song_id: int | None = None, k: int = TOP_GENRES) -> list[tuple[str, float]]:
        """The model's *k* most probable genres for a song (mean over its windows)."""
        song = self.songs[self.current if song_id is None else song_id]
        order = np.argsort(-song.proba)[:k]
        return [(str(self.model.classes_[i]), float(song.proba[i])) for i in order]

    def uncertain_window(self, song_id: int | None = None) -> tuple[float, float]:
        """Start and end (s) of the window the model is least sure about."""
        song = self.songs[self.current if song_id is None else song_id]
        strategy = "least_confidence" if self.strategy == "random" else self.strategy
        i = int(np.argmax(queries.uncertainty(song.window_proba, strategy)))
        return float(song.windows.loc[i, "start"]), float(song.windows.loc[i, "end"])

    def _prediction_id(self, song_id: int) -> int | None:
        """The stored prediction shown for a song (one row per song and model)."""
        if self.read_only:
            return None
        key = (song_id, self.fingerprint)
        if key not in self._prediction_ids:
            proba = dict(zip(map(str, self.model.classes_), self.songs[song_id].proba, strict=True))
            total = sum(proba.values())
            proba = {g: p / total for g, p in proba.items()}
            self._prediction_ids[key] = self.store.record_prediction(
                song_id, proba, self.fingerprint, self.where)
        return self._prediction_ids[key]

    def _require_current(self) -> int:
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        return self.current

    def label(self, genre: str) -> int:
        """Record *genre* for the current song, then move on; return the event id."""
        with self._lock:
            song_id = self._require_current()
            event = record_answer(self.store, song_id, genre, who=self.who, where=self.where,
                                  prediction_id=self._prediction_id(song_id))
            genre = normalise_genre(genre)  # as record_label stored it, without reading it back
            self._on_genres()
            self.next_song(f"Recorded: {genre} for {self.songs[song_id].title} — "
                           "Undo takes it back")
            return event

    def accept(self) -> int:
        """Record the model's top genre as right for the current song."""
        with self._lock:
            self._require_current()
            return self.label(self.top_genres(k=1)[0][0])

    def skip(self) -> int:
        """Skip the current song (it can be revisited); return the event id."""
        with self._lock:
            song_id = self._require_current()
            said = model_said(self.store, song_id, self._prediction_id(song_id))
            event = self.store.record_skip(song_id, who=self.who, where=self.where,
                                           model_said=said)
            self.next_song(f"Skipped: {self.songs[song_id].title} — it waits in the Skipped list")
            return event

    def undo(self) -> int | None:
        """Undo this person's latest label or skip in the pool and show that song again.

        The song returns to its exact previous state (a song skipped before it was labelled is
        skipped again). When the current model had learnt the undone label, it is refitted
        without it, so the song is never shown with a model that learnt the undone answer.
        """
        with self._lock:
            events = self.store.events()
            mine = events[(events["who"] == self.who) & (events["kind"] != "undo") & ~events["undone"]
                          & events["song_id"].isin(list(self.songs))]
            if mine.empty:
                self._on_song("Nothing to undo.")
                return None
            last = mine.iloc[-1]
            event_id, song_id = int(last["event_id"]), int(last["song_id"])
            undo = self.store.undo(event_id, who=self.who, where=self.where)
            note = ""
            if last["kind"] == "label" and event_id in self._trained_on:
                self._set_fit(self._fit_current(), self._active_label_ids(),
                              note="Refitted without the undone label (press Retrain for a "
                                   "before/after comparison).")
                note = " The model had learnt that label, so it was refitted without it."
            states = self.states()
            state = states.set_index("song_id").loc[song_id]
            now = {"unlabelled": "back in the queue", "skipped": "skipped again",
                   "labelled": f"labelled {state['genre']} again"}[state["state"]]
            what = f"label {last['genre']}" if last["kind"] == "label" else "skip"
            # show_song's work (song_id is a pool song, the lock is held), reusing the states
            self.current = song_id
            self._on_song(f"Undone: {what} for {self.songs[song_id].title} — {now}.{note}", states)
            return undo

    def like(self, liked: bool = True) -> int:
        """Record that the person likes (or dislikes) the current song."""
        with self._lock:
            song_id = self._require_current()
            event = self.store.record_preference(song_id, liked, who=self.who, where=self.where)
            self._on_song(f"{'Liked' if liked else 'Disliked'}: {self.songs[song_id].title}")
            return event

    def retrain(self) -> retraining.RetrainResult:
        """Retrain on the table plus the store's labels; show before/after and a learning curve."""
        self._on_status("Retraining ...")
        trained_on = self._active_label_ids()
        result = retraining.retrain(self.store, estimator=self.estimator, recipe=self.recipe,
                                previous_model=self.model, base_table=self.base_table)
        with self._lock:
            self.retrain_history.append(result)
            self._set_fit(result.fit, trained_on)
            self._on_retrained(result)
            self._on_song(f"Retrained: held-out accuracy {result.before['accuracy']:.3f} → "
                         f"{result.after['accuracy']:.3f} ({result.split} test split)")
        return result

    def save_model(self, path=None):
        """Save the last retrained model (see :meth:`helpers.retraining.RetrainResult.save`)."""
        if not self.retrain_history:
            raise InputError("save model", "retrain first: there is no retrained model yet")
        if self.retrain_history[-1].model is not self.model:
            raise InputError("save model", "the model changed after the last retrain (an undone "
                                           "label); retrain first")
        saved = self.retrain_history[-1].save(path)
        self._on_song(f"Model saved to {saved}")
        return saved

    # ------------------------------------------------------------------ what a view draws
    def _prepare_view(self) -> None:
        """Build the view, once the settings are known and before any song is shown."""

    def _on_progress(self) -> None:
        """The background extraction moved on (:attr:`prepared` of :attr:`pending_total`)."""

    def _on_song(self, message: str | None = None, states: pd.DataFrame | None = None) -> None:
        """The current song or its state changed; *message* says what just happened.

        *states* is :meth:`states` when the caller has just read it (one store read per change).
        """
        if message is not None:
            self.last_message = message

    def _on_windows(self, song_id: int) -> None:
        """More windows of the current song arrived (new probabilities, same song)."""

    def _on_queue(self) -> None:
        """A song joined the queue."""

    def _on_genres(self) -> None:
        """The genres a person can choose from may have changed (a new one was typed)."""

    def _on_model(self, note: str = "") -> None:
        """The model changed (refit, retrain, a model passed in); *note* says why, if anything."""

    def _on_status(self, text: str) -> None:
        """Work has started that takes a moment (*text* says which)."""

    def _on_retrained(self, result: retraining.RetrainResult) -> None:
        """A retrain finished: *result* holds before/after and the learning curve."""



def model_said(store: LabelStore, song_id: int, prediction_id: int) -> str:
    """The genre the stored prediction *prediction_id* of song *song_id* gave (its top genre).

    Raises
    ------
    InputError
        No such prediction for that song.
    """
    predictions = store.predictions(song_id)
    row = predictions[predictions["prediction_id"] == prediction_id]
    if row.empty:
        raise InputError("prediction_id", "no such prediction for this song")
    return str(row["genre"].iloc[0])


def record_answer(store: LabelStore, song_id: int, genre: str, *, prediction_id: int,
                  who: str, where: str) -> int:
    """Record that *who* says song *song_id* is *genre*, after seeing prediction *prediction_id*.

    The one way every front end records a decision: what the model said is read from the
    stored prediction the person saw (never from memory or from a form), so the label event
    always names the prediction it answers. Returns the event id.
    """
    said = model_said(store, song_id, prediction_id)
    return store.record_label(song_id, genre, who=who, where=where, model_said=said,
                              prediction_id=prediction_id)


def session_log(store: LabelStore, song_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Return the label events of a store joined with song titles, in order (for display)."""
    events = store.events()
    if song_ids is not None:
        events = events[events["song_id"].isin(list(song_ids))]
    titles = store.songs().set_index("song_id")["title"]
    events = events.assign(title=events["song_id"].map(titles))
    return events[["event_id", "created_utc", "title", "kind", "genre", "model_said", "undoes",
                   "who", "where"]].reset_index(drop=True)

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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.audio.windows import check_window_seconds
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.features.sets import feature_set as feature_set_spec
from helpers.labeling import queries
from helpers.labeling import retrain as retraining
from helpers.labeling.pool import PreparedSong, _complete, _on_grid, pool_files, prepare_song
from helpers.models import card as model_card
from helpers.paths import data_dir, file_sha256
from helpers.store import LabelStore, normalise_genre

log = logging.getLogger(__name__)

#: Genres shown as probability bars.
TOP_GENRES = 5

#: Keys of the genres in key-map order: the first ten take these.
GENRE_KEYS = "1234567890"

#: Prefix of the next rows of genre keys: genres 11-20 are ``g1`` ... ``g0``, 21-30 ``gg1`` ...
GENRE_PREFIX_KEY = "g"

#: Seconds after an answer within which the same key again is taken as a repeat and ignored.
DEBOUNCE_SECONDS = 0.25

#: Seconds after an answer within which any other answer is ignored: quicker than anyone can
#: see the next song (what keeps a key from landing on a song never shown).
MIN_ANSWER_GAP_SECONDS = 0.1


def genre_key(position: int) -> str:
    """The key (sequence) of the genre at *position* (0-based) of the key map."""
    return GENRE_PREFIX_KEY * (position // len(GENRE_KEYS)) + GENRE_KEYS[position % len(GENRE_KEYS)]


class StaleAnswerError(InputError):
    """An answer pressed for a song that is no longer the current one (nothing is stored)."""


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
    album: str = ""
    #: (min/max envelope, length in seconds) of the whole song, once it has been shown
    overview: tuple[np.ndarray, float] | None = None


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
    features : str
        The feature set the windows are described by, stored, predicted and retrained on
        (:func:`helpers.features.feature_set`): ``"gtzan"`` (default; base rows from the
        embedded table), ``"musicnn"`` or ``"gtzan+musicnn"`` (base and held-out rows are the
        GTZAN clips with audio, :func:`helpers.labeling.retrain.training_rows`; the model is
        :data:`helpers.labeling.retrain.FEATURE_SET_RECIPE` unless *estimator*).
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
    refit_every : int, optional
        Refit the model on the table plus the labels after every *refit_every* new labels, so
        "most uncertain first" follows what was just learnt. Off by default: each refit costs
        one fit of the recipe (about a second on these machines), paid by the click that
        triggers it.

    Notes
    -----
    The model that makes the suggestions is also the one whose held-out accuracy is shown: it
    is fitted on the base rows plus the store's labels (never the held-out clips), once at
    start and again only after Retrain or an undo of a label it learnt — never per click.
    With no labels yet it is the model behind the default model card's test figure; the
    default model itself (:func:`helpers.models.default_model`) is trained on every clip,
    test clips included, so it is not used here.
    """

    #: What the store records as the place of each decision.
    where = "widget"

    def __init__(self, pool, store: LabelStore | str | os.PathLike | None = None, *,
                 model=None, estimator=None, base_table: pd.DataFrame | None = None,
                 features: str = retraining.TABLE_FEATURE_SET,
                 strategy: str = queries.DEFAULT_STRATEGY, epsilon: float = queries.DEFAULT_EPSILON,
                 window_seconds: float = 30.0,
                 max_windows: int | None = None, who: str = "user", seed: int = 0,
                 background: bool = True, workers: int | None = None,
                 refit_every: int | None = None):
        # before the store is opened: a bad length leaves no new store file behind
        window_seconds = check_window_seconds("window_seconds", window_seconds)
        self.feature_set = feature_set_spec(features).name  # an unknown name lists the choices
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
        #: recipe of the default fits (None: the custom *estimator* is used)
        self.recipe = None
        if estimator is None:
            self.recipe = (retraining.default_recipe()
                           if self.feature_set == retraining.TABLE_FEATURE_SET
                           else retraining.FEATURE_SET_RECIPE)
        self.fit_info: retraining.Fit | None = None
        self._held_out_rows = None  # the test clips honest for the current fit (training_rows)
        if base_table is None and self.feature_set == retraining.TABLE_FEATURE_SET:
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
        if refit_every is not None and (not isinstance(refit_every, int) or refit_every < 1):
            raise InputError(f"refit_every={refit_every!r}", "must be a whole number of labels, 1 or more")
        self.refit_every = refit_every
        self._labels_since_fit = 0
        self._retraining = False
        self._last_answer_at: tuple[float, str | None] | None = None
        self._genre_order: list[str] = []
        # events before this one were made before this session (the review list tells them apart)
        events = self.store.events()
        self._first_event_id = int(events["event_id"].max()) + 1 if not events.empty else 1
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
            with_windows = set(pool.windows(feature_set=self.feature_set)["song_id"])
            for row in songs[songs["song_id"].isin(with_windows)].itertuples():
                path = Path(row.location) if Path(row.location).is_file() else None
                self._add(int(row.song_id), path, row.title, row.artist,
                          pool.windows(int(row.song_id), feature_set=self.feature_set), row.album)
            if not self.songs:
                raise InputError(pool.path, "the store holds no song with features to label")
            self._predict_pool()
            return []
        files = pool_files(pool)
        songs = self.store.songs().set_index("location")
        all_windows = self.store.windows(feature_set=self.feature_set)
        stored_windows = dict(iter(all_windows.groupby("song_id")))
        no_windows = all_windows.head(0)  # songs without windows: built once, not per song
        pending = []
        by_id = songs.reset_index().set_index("song_id")
        for path in files:
            if str(path) in songs.index:
                row = songs.loc[str(path)]
            else:
                # the same audio elsewhere (a copy, a moved folder) is known by its content
                # before anything is extracted again
                known = None  # not a regular file (a FIFO would block the read): the
                if path.is_file():  # extraction names the reason
                    try:
                        known = self.store.song_by_hash(file_sha256(path))
                    except OSError:
                        known = None  # unreadable: the extraction names the reason
                if known is None:
                    pending.append((path, []))
                    continue
                row = by_id.loc[known].copy()
                row["song_id"] = known
            song_id = int(row["song_id"])
            stored = _on_grid(stored_windows.get(song_id, no_windows), self.window_seconds)
            if _complete(stored, row["duration"], self.window_seconds, self.max_windows):
                if self.max_windows:
                    stored = stored.head(self.max_windows)
                if not stored.empty:
                    self._add(song_id, path, row["title"], row["artist"], stored, row["album"])
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
            preview = prepare_song(first, self.window_seconds, 1, first_have,
                                   feature_set=self.feature_set)
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
            futures = [executor.submit(prepare_song, path, *settings, have,
                                       feature_set=self.feature_set) for path, have in rest]
        self._join(prepare_song(first, *settings, first_have, preview,
                                feature_set=self.feature_set))
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
                self._join(prepare_song(path, *settings, have, feature_set=self.feature_set))
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
            tags = prepared.tags
            song_id = self.store.add_song(path, title=tags.get("title") or path.stem.replace("_", " "),
                                          artist=tags.get("artist"), album=tags.get("album"),
                                          genre_tag=tags.get("genre"), duration=prepared.duration,
                                          source="folder", content_hash=prepared.content_hash)
            if tags:  # a song stored before its tags were read gets them now
                self.store.set_tags(song_id, tags)
            if prepared.windows:
                self.store.add_windows(song_id, prepared.windows, feature_set=self.feature_set)
            windows = _on_grid(self.store.windows(song_id, feature_set=self.feature_set),
                               self.window_seconds)
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
            self._add(song_id, path, row["title"], row["artist"], windows, row["album"])
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

    def _add(self, song_id, path, title, artist, windows, album=None) -> None:
        self.songs[song_id] = PoolSong(
            song_id=song_id, path=path,
            title=title if isinstance(title, str) and title else (path.stem if path else f"song {song_id}"),
            artist=artist if isinstance(artist, str) else "", windows=windows.reset_index(drop=True),
            album=album if isinstance(album, str) else "")

    def _fit_current(self) -> retraining.Fit:
        """Fit the labeler's model on the base table plus the store's current labels.

        The recipe (or custom estimator) goes through :func:`helpers.retraining.fit_rows`, the
        same fit :func:`helpers.retraining.retrain` makes; held-out clips are never among the rows.
        """
        base, extra, self._held_out_rows, _ = retraining.training_rows(
            self.store, base_table=self.base_table, feature_set=self.feature_set)
        return retraining.fit_rows(base, extra, estimator=self.estimator, recipe=self.recipe,
                                   columns=retraining.set_columns(self.feature_set))

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
            self._labels_since_fit = 0
            self._sync_genres()
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
        """Genres a button is shown for, in key order: the store's key map (:meth:`key_map`)."""
        if not self._genre_order:
            self._sync_genres()
        return list(self._genre_order)

    def _sync_genres(self) -> None:
        """Append genres the model or the store's labels know and the key map lacks.

        The first time (an empty map) the model's genres come in alphabetical order; every
        later genre is appended, so no genre ever changes its key.
        """
        labelled = self.store.current_labels().sort_values("event_id")["genre"].tolist()
        wanted = [*sorted(map(str, self.model.classes_)), *labelled]
        if not self._genre_order:
            self._genre_order = self.store.genre_keys()
        missing = [g for g in dict.fromkeys(wanted) if g not in set(self._genre_order)]
        if not missing:
            return
        if self.read_only:  # nothing can be kept: the map holds for this session only
            self._genre_order = [*self._genre_order, *missing]
        else:
            self._genre_order = self.store.add_genre_keys([*self._genre_order, *missing])

    def key_map(self) -> dict[str, str]:
        """Genre -> its key (``'1'`` ... ``'0'``, then ``'g1'`` ... with the prefix key)."""
        return {genre: genre_key(i) for i, genre in enumerate(self.genres)}

    def genre_for_key(self, keys: str) -> str | None:
        """The genre bound to a key sequence (see :meth:`key_map`), or ``None``."""
        return {k: g for g, k in self.key_map().items()}.get(str(keys).lower())

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

    def listen_window(self, song_id: int | None = None) -> tuple[int, float, float]:
        """The window to listen to: ``(index, start, end)`` in song time (s).

        The most uncertain window (:meth:`uncertain_window`) until :meth:`step_window` moves.
        """
        song_id = self.current if song_id is None else song_id
        song = self.songs[song_id]
        choice = getattr(self, "_listen", {}).get(song_id)
        if choice is None or choice >= len(song.windows):
            strategy = "least_confidence" if self.strategy == "random" else self.strategy
            choice = int(np.argmax(queries.uncertainty(song.window_proba, strategy)))
        return choice, float(song.windows.loc[choice, "start"]), float(song.windows.loc[choice, "end"])

    def step_window(self, step: int) -> tuple[int, float, float]:
        """Move the window to listen to by *step* windows (kept within the song)."""
        song_id = self._require_current()
        index, _, _ = self.listen_window(song_id)
        index = int(np.clip(index + step, 0, len(self.songs[song_id].windows) - 1))
        self._listen = {**getattr(self, "_listen", {}), song_id: index}
        self._on_listen()
        return self.listen_window(song_id)

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

    def _require_current(self, song_id: int | None = None) -> int:
        """The current song; *song_id* (the song an answer was given for) must be it."""
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        if song_id is not None and int(song_id) != self.current:
            given = self.songs[int(song_id)].title if int(song_id) in self.songs else f"song {song_id}"
            raise StaleAnswerError(
                f"answer for {given!r}", f"refused: the song on screen is now "
                f"{self.songs[self.current].title!r}; nothing was stored")
        return self.current

    def debounced(self, at: float | None, key: str | None = None) -> bool:
        """Whether an answer pressed at *at* (seconds, the front end's clock) is a repeat.

        Ignored: the same *key* within :data:`DEBOUNCE_SECONDS` of the previous answer (a
        double tap, a bouncing key), or any answer within :data:`MIN_ANSWER_GAP_SECONDS`.
        Otherwise *at* becomes the previous answer's time. ``None``: never a repeat.
        """
        if at is None:
            return False
        with self._lock:
            last_at, last_key = self._last_answer_at or (None, None)
            if last_at is not None and 0 <= at - last_at:
                gap = at - last_at
                if gap < MIN_ANSWER_GAP_SECONDS or (key == last_key and gap < DEBOUNCE_SECONDS):
                    return True
            self._last_answer_at = (float(at), key)
            return False

    def label(self, genre: str, song_id: int | None = None) -> int:
        """Record *genre* for the current song, then move on; return the event id.

        *song_id* is the song the answer was given for: when it is no longer the current
        song the answer is refused (:class:`StaleAnswerError`) and nothing is stored.
        """
        with self._lock:
            song_id = self._require_current(song_id)
            history = self.store.events(song_id)
            earlier = history[(history["kind"] == "label") & ~history["undone"]]["genre"].tolist()
            event = record_answer(self.store, song_id, genre, who=self.who, where=self.where,
                                  prediction_id=self._prediction_id(song_id))
            genre = normalise_genre(genre)  # as record_label stored it, without reading it back
            self._sync_genres()
            self._on_genres()
            again = (f" (was {earlier[-1]}; the earlier label is kept in the history)"
                     if earlier else "")
            self._labels_since_fit += 1
            note = ""
            if self.refit_every and self._labels_since_fit >= self.refit_every:
                self._set_fit(self._fit_current(), self._active_label_ids(),
                              note=f"Refitted after {self._labels_since_fit} new labels.")
                note = " The model was refitted with it."
            self.next_song(f"Recorded: {genre} for {self.songs[song_id].title}{again} — "
                           f"Undo takes it back.{note}")
            return event

    def accept(self, song_id: int | None = None) -> int:
        """Record the model's top genre as right for the current song."""
        with self._lock:
            song_id = self._require_current(song_id)
            return self.label(self.top_genres(k=1)[0][0], song_id)

    def skip(self, song_id: int | None = None) -> int:
        """Skip the current song (it can be revisited); return the event id."""
        with self._lock:
            song_id = self._require_current(song_id)
            said = model_said(self.store, song_id, self._prediction_id(song_id))
            event = self.store.record_skip(song_id, who=self.who, where=self.where,
                                           model_said=said)
            self.next_song(f"Skipped: {self.songs[song_id].title} — it waits in the Skipped list")
            return event

    def _last_decisions(self) -> tuple[pd.Series | None, pd.Series | None]:
        """This person's latest active label/skip and latest active like/dislike in the pool."""
        events = self.store.events()
        mine = events[(events["who"] == self.who) & (events["kind"] != "undo") & ~events["undone"]
                      & events["song_id"].isin(list(self.songs))]
        prefs = self.store.preference_events()
        prefs = prefs[(prefs["who"] == self.who) & prefs["undoes"].isna() & ~prefs["undone"]
                      & prefs["song_id"].isin(list(self.songs))]
        return (None if mine.empty else mine.iloc[-1]), (None if prefs.empty else prefs.iloc[-1])

    def undo(self) -> int | None:
        """Undo this person's latest decision in the pool (label, skip, like or dislike) and
        show that song again.

        The song returns to its exact previous state (a song skipped before it was labelled is
        skipped again; a like undone restores the choice before it). When the current model
        had learnt the undone label, it is refitted without it, so the song is never shown
        with a model that learnt the undone answer.
        """
        with self._lock:
            last, pref = self._last_decisions()
            if last is None and pref is None:
                self._on_song("Nothing to undo.")
                return None
            if pref is not None and (last is None or pref["created_utc"] > last["created_utc"]):
                song_id = int(pref["song_id"])
                undo = self.store.undo_preference(int(pref["preference_id"]), who=self.who,
                                                  where=self.where)
                liked = None if pref["liked"] is None or pd.isna(pref["liked"]) else bool(pref["liked"])
                what = {True: "like", False: "dislike", None: "clearing the like"}[liked]
                now = {True: "liked", False: "disliked", None: "neither liked nor disliked"}[
                    self.liked_state(song_id)]
                self.current = song_id
                self._on_song(f"Undone: {what} for {self.songs[song_id].title} — now {now}.")
                return undo
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

    def liked_state(self, song_id: int | None = None) -> bool | None:
        """This person's view of a song: ``True`` liked, ``False`` disliked, ``None`` neither."""
        song_id = self.current if song_id is None else song_id
        prefs = self.store.preference_events(song_id)
        prefs = prefs[prefs["who"] == self.who]
        value = None if prefs.empty else prefs["liked"].iloc[-1]
        return None if value is None or pd.isna(value) else bool(value)

    def like(self, liked: bool = True, song_id: int | None = None) -> int:
        """Like (or dislike) the current song; pressing the same again clears it (a toggle).

        Like every decision it can be undone; the song stays on screen.
        """
        with self._lock:
            song_id = self._require_current(song_id)
            state = None if self.liked_state(song_id) is liked else liked
            event = self.store.record_preference(song_id, state, who=self.who, where=self.where)
            title = self.songs[song_id].title
            self._on_song({True: f"Liked: {title} (press again to clear)",
                           False: f"Disliked: {title} (press again to clear)",
                           None: f"Cleared: {title} is neither liked nor disliked"}[state])
            return event

    # ------------------------------------------------------------------ review
    def review(self, genre: str | None = None) -> pd.DataFrame:
        """Every song's current label in the store, newest first (the review list).

        Returns
        -------
        pandas.DataFrame
            ``song_id, title, artist, genre, labelled_utc, model_said, event_id, who,
            this_session, in_pool``; only *genre* when given. A pool song can be reopened
            (:meth:`reopen`) and labelled again.
        """
        labels = self.store.current_labels().sort_values("event_id", ascending=False)
        if genre:
            labels = labels[labels["genre"] == normalise_genre(genre)]
        titles = labels["song_id"].map(lambda s: self.songs[s].title if s in self.songs else None)
        return labels.assign(
            title=titles.fillna(labels["title"]).fillna(labels["filename"]),
            this_session=labels["event_id"] >= self._first_event_id,
            in_pool=labels["song_id"].isin(list(self.songs)),
        )[["song_id", "title", "artist", "genre", "labelled_utc", "model_said", "event_id", "who",
           "this_session", "in_pool"]].reset_index(drop=True)

    def reopen(self, song_id: int) -> None:
        """Show a labelled song again to relabel it: the new label is a new event, the old
        one stays in the history."""
        song_id = int(song_id)
        if song_id not in self.songs:
            raise InputError(f"song {song_id}", "is not in this labeler's pool (no features here "
                                                "to show it with); label it where it was labelled")
        state = self.states().set_index("song_id").loc[song_id]
        now = f"labelled {state['genre']}" if state["state"] == "labelled" else state["state"]
        self.show_song(song_id, f"Reopened: {self.songs[song_id].title} ({now}) — a new answer "
                                "is added, the earlier one kept")

    def previous_song(self) -> int | None:
        """Show the song of this person's latest decision before the current song."""
        with self._lock:
            events = self.store.events()
            mine = events[(events["who"] == self.who) & (events["kind"] != "undo")
                          & events["song_id"].isin(list(self.songs))
                          & (events["song_id"] != (self.current if self.current is not None else -1))]
            if mine.empty:
                self._on_song("No previous song.")
                return None
            song_id = int(mine["song_id"].iloc[-1])
            self.show_song(song_id, f"Previous song: {self.songs[song_id].title}")
            return song_id

    # ------------------------------------------------------------------ the model
    @property
    def retraining(self) -> bool:
        """Whether a retrain is running (a second one is refused meanwhile)."""
        return self._retraining

    @property
    def retrain_stale(self) -> bool:
        """Whether the model changed (an undo's refit, a refit every N labels) after the last
        retrain, so its before/after no longer describes the model in use."""
        return bool(self.retrain_history) and self.retrain_history[-1].model is not self.model

    def retrain(self) -> retraining.RetrainResult:
        """Retrain on the table plus the store's labels; show before/after and a learning curve."""
        with self._lock:
            if self._retraining:
                raise InputError("retrain", "already running; its result appears when it is done")
            self._retraining = True
        try:
            self._on_status("Retraining ...")
            trained_on = self._active_label_ids()
            result = retraining.retrain(self.store, estimator=self.estimator, recipe=self.recipe,
                                        previous_model=self.model, base_table=self.base_table,
                                        feature_set=self.feature_set)
            with self._lock:
                self.retrain_history.append(result)
                self._labels_since_fit = 0
                self._set_fit(result.fit, trained_on)
                self._on_retrained(result)
                left_out = (f"; {len(result.excluded_songs)} label(s) left out, listed below"
                            if len(result.excluded_songs) else "")
                self._on_song(f"Retrained: held-out accuracy {result.before['accuracy']:.3f} → "
                              f"{result.after['accuracy']:.3f} ({result.split} test split){left_out}")
        finally:
            self._retraining = False
        return result

    def model_path(self, name: str | None = None) -> Path:
        """Where :meth:`save_model` writes: ``data/models/<store>-<name or UTC time>.skops``."""
        stamp = name or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return data_dir() / "models" / f"{self.store.path.stem}-{stamp}.skops"

    def saved_models(self) -> list[Path]:
        """Models saved from this store (:meth:`save_model`), oldest first."""
        return sorted((data_dir() / "models").glob(f"{self.store.path.stem}-*.skops"))

    def save_model(self, path=None, *, replace: bool = False):
        """Save the last retrained model as a named, dated file of this store.

        Parameters
        ----------
        path : path-like, optional
            Default :meth:`model_path` (the store's name and the time, so sessions on
            different stores or at different times never replace each other's model).
        replace : bool
            Replace an existing file; without it, an existing file is refused (ask first).
        """
        if not self.retrain_history:
            raise InputError("save model", "retrain first: there is no retrained model yet")
        if self.retrain_stale:
            raise InputError("save model", "the model changed after the last retrain (an undone "
                                           "label or a refit); retrain first")
        path = Path(path) if path is not None else self.model_path()
        if path.exists() and not replace:
            raise InputError(path, "exists already; save again to replace it")
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

    def _on_listen(self) -> None:
        """Another window of the current song was chosen to listen to."""

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

"""An ipywidgets labeler: ask a person about the songs the model is least sure of.

For a pool of songs (a folder, a list of files, or the songs already in a label store) the
labeler extracts per-window features once (they are kept in the store), predicts every window,
and queues the unlabelled songs by a query strategy of :mod:`helpers.labeling.queries`. For the current
song it shows title / artist / file, an audio player on the most uncertain window, the model's
top genres as bars, one button per known genre, a text box for a new genre, accept, skip, undo,
back to a skipped song, like / dislike, a progress line and a retrain button that shows held-out
accuracy before and after with a learning curve.

Every click is one transaction in the :class:`~helpers.store.LabelStore`; a new labeler on the
same store (after a kernel restart, say) resumes where the last one stopped. The buttons are
ordinary ``ipywidgets.Button`` objects, so code and tests can press them with ``.click()``.

Examples
--------
>>> from helpers.labeling import Labeler
>>> labeler = Labeler("data/music", store="reports/labels.sqlite")   # doctest: +SKIP
>>> labeler.show()                                                   # doctest: +SKIP
>>> labeler.new_genre.value = "electronic"; labeler.add_genre_button.click()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.audio.windows import check_window_seconds
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.labeling import queries
from helpers.labeling import retrain as retraining
from helpers.labeling.pool import (
    PreparedSong,
    _complete,
    _on_grid,
    pool_files,
    prepare_song,
    window_audio_wav,
)
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


#: Keys of the action buttons (genre buttons take 1-9 and 0, in button order).
ACTION_KEYS = {"accept": "a", "skip": "s", "undo": "u", "like": "l", "dislike": "d",
               "revisit": "b"}


GENRE_KEYS = "1234567890"


#: Seconds Enter in the new-genre box waits for the box's last characters to reach the kernel.
ENTER_DELAY_SECONDS = 0.3


#: Size (CSS pixels) of the learning curve; the PNG is drawn at twice this for sharp screens.
CURVE_SIZE = (450, 252)


class Labeler:
    """Label a pool of songs in a notebook, most uncertain first, with every click stored.

    Songs whose features are in the store are ready at once; the others are extracted in the
    background (the first in a thread, the rest in worker processes when ``workers > 1``) and
    join the queue as they are ready, with a progress bar in the widget.

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
        Query strategy of :mod:`helpers.labeling` (default ``'margin'``).
    epsilon : float
        Share of random picks in the queue.
    window_seconds : float
        Window length for features and the audio player.
    max_windows : int, optional
        Use only the first windows of each song (quick runs).
    who : str
        The person labelling (recorded with each event).
    seed : int
        Seed of the random picks.
    audio : bool
        Fill the audio player (off in tests).
    background : bool
        Extract missing features in the background and return at once (default); ``False``
        extracts everything before returning.
    workers : int, optional
        Parallel extractions (default: the number of cores); 1 uses a single thread.
    """

    def __init__(self, pool, store: LabelStore | str | os.PathLike | None = None, *,
                 model=None, estimator=None, base_table: pd.DataFrame | None = None,
                 strategy: str = queries.DEFAULT_STRATEGY, epsilon: float = queries.DEFAULT_EPSILON, window_seconds: float = 30.0,
                 max_windows: int | None = None, who: str = "user", seed: int = 0,
                 audio: bool = True, background: bool = True, workers: int | None = None):
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
        self.audio_enabled = audio
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
        self._build_widgets()
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
        self._render_progress()
        self.next_song("Ready." if self.songs else "Extracting the first song ...")
        if pending and background:
            self._thread = threading.Thread(target=self._extract, args=(pending,),
                                            name="labeler-extraction", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ setup
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
            self._render_progress()
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
                self._render_progress()
            if self.current is None:
                # keep the confirmation of the last action in view; add what just arrived
                title = self.songs[song_id].title
                last = getattr(self, "_last_message", "")
                self.next_song(f"{last} — {title} is ready."
                               if last.startswith(("Recorded", "Undone", "Skipped"))
                               else f"Ready: {title}.")
            elif known and self.current == song_id:  # more windows: new bars, same player
                self.bars.value = self._bars_html()
                self.accept_button.description = (
                    f"Accept {self.top_genres(k=1)[0][0]} [{ACTION_KEYS['accept']}]")
            else:
                self._render_queue_counts()

    def _problem(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self.problems.append(message)
            self.prepared += 1
            self._render_progress()

    def wait(self, timeout: float | None = None) -> Labeler:
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
            if hasattr(self, "buttons"):
                self._rebuild_genre_buttons()
            self.model_line.value = self._model_html(note)

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

    def _model_html(self, note: str = "") -> str:
        m = self.held_out_accuracy()
        source = " (from its model card)" if m.get("source") == "model card" else ""
        text = (f"<b>Model</b>: {html.escape(self.model_name())} · held-out accuracy{source} "
                f"{m['accuracy']:.3f} (95% CI {m['ci_low']:.3f}–{m['ci_high']:.3f}, "
                f"{retraining.HELD_OUT_SPLIT} test split, n={m['n']}, bootstrap)")
        return text + (f"<br><i>{html.escape(note)}</i>" if note else "")

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

    # ------------------------------------------------------------------ queue
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
            self._render(message, states)  # nothing was written since: no second read
            return self.current

    def show_song(self, song_id: int, message: str | None = None) -> None:
        """Make *song_id* (a pool song, e.g. a skipped one) the current song."""
        if song_id not in self.songs:
            raise InputError(f"song {song_id}", "is not in this labeler's pool")
        with self._lock:
            self.current = int(song_id)
            self._render(message)

    # ------------------------------------------------------------------ what the model says
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
                song_id, proba, self.fingerprint, "widget")
        return self._prediction_ids[key]

    # ------------------------------------------------------------------ actions
    def _require_current(self) -> int:
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        return self.current

    def label(self, genre: str) -> int:
        """Record *genre* for the current song, then move on; return the event id."""
        with self._lock:
            song_id = self._require_current()
            said = self.top_genres(k=1)[0][0]
            event = self.store.record_label(song_id, genre, who=self.who, where="widget",
                                            model_said=said,
                                            prediction_id=self._prediction_id(song_id))
            genre = normalise_genre(genre)  # as record_label stored it, without reading it back
            self._rebuild_genre_buttons()
            self.next_song(f"Recorded: {genre} for {self.songs[song_id].title} — "
                           f"undo with Undo [{ACTION_KEYS['undo']}]")
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
            said = self.top_genres(k=1)[0][0]
            event = self.store.record_skip(song_id, who=self.who, where="widget", model_said=said)
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
                self._render("Nothing to undo.")
                return None
            last = mine.iloc[-1]
            event_id, song_id = int(last["event_id"]), int(last["song_id"])
            undo = self.store.undo(event_id, who=self.who, where="widget")
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
            self._render(f"Undone: {what} for {self.songs[song_id].title} — {now}.{note}", states)
            return undo

    def like(self, liked: bool = True) -> int:
        """Record that the person likes (or dislikes) the current song."""
        with self._lock:
            song_id = self._require_current()
            event = self.store.record_preference(song_id, liked, who=self.who, where="widget")
            self._render(f"{'Liked' if liked else 'Disliked'}: {self.songs[song_id].title}")
            return event

    def retrain(self) -> retraining.RetrainResult:
        """Retrain on the table plus the store's labels; show before/after and a learning curve."""
        self.status.value = "Retraining ..."
        trained_on = self._active_label_ids()
        result = retraining.retrain(self.store, estimator=self.estimator, recipe=self.recipe,
                                previous_model=self.model, base_table=self.base_table)
        with self._lock:
            self.retrain_history.append(result)
            self._set_fit(result.fit, trained_on)
            self.retrain_output.value = self._retrain_html(result)
            self.curve_image.value = self._curve_png(result)
            self.curve_image.layout.display = None
            self._render(f"Retrained: held-out accuracy {result.before['accuracy']:.3f} → "
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
        self._render(f"Model saved to {saved}")
        return saved

    # ------------------------------------------------------------------ keyboard
    def press(self, key: str) -> str | None:
        """Do what pressing *key* over the widget does: click the button bound to it.

        Returns the pressed button's description, or ``None`` when the key is bound to
        nothing (or its button is disabled).
        """
        button = self.shortcuts.get(str(key).lower())
        if button is None or button.disabled:
            return None
        button.click()
        return button.description

    def _on_key(self, event: dict) -> None:
        """ipyevents handler: plain key presses only (no Ctrl/Alt/Meta combinations)."""
        if event.get("type") != "keydown" or event.get("repeat"):
            return
        if event.get("ctrlKey") or event.get("altKey") or event.get("metaKey"):
            return
        self.press(event.get("key", ""))

    def _submit_new_genre(self, _text=None) -> None:
        """The new-genre box's submit (Enter): label with the typed genre.

        The browser may send Enter before the box's last characters (a widget's state updates
        wait for the kernel's reply to the previous one), so in a running kernel the label is
        recorded a moment later, after those updates.
        """
        try:
            asyncio.get_running_loop().call_later(ENTER_DELAY_SECONDS, self._safely,
                                                  self._label_new_genre)
        except RuntimeError:  # no event loop (driven from Python): the value is current
            self._safely(self._label_new_genre)

    # ------------------------------------------------------------------ widgets
    def _button(self, description, handler, style="", tooltip=""):
        button = widgets.Button(description=description, button_style=style, tooltip=tooltip,
                                layout=widgets.Layout(width="auto"))
        button.on_click(lambda _button: self._safely(handler))
        return button

    def _safely(self, handler) -> None:
        """Run a click handler; show any error in the status line instead of losing it."""
        try:
            handler()
        except InputError as exc:  # includes the StoreError family
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
        except Exception:  # noqa: BLE001 - a click must never fail silently
            log.exception("labeler action failed")
            self.status.value = ("<span style='color:#b00'>Something went wrong; nothing was "
                                 "stored for this click (details in the log).</span>")

    def _build_widgets(self) -> None:
        keys = ACTION_KEYS
        self.header = widgets.HTML()
        self.model_line = widgets.HTML()
        self.player = widgets.Audio(format="wav", autoplay=False, controls=True)
        self.player_note = widgets.HTML()
        self.bars = widgets.HTML()
        self.genre_buttons = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.new_genre = widgets.Text(placeholder="new genre, e.g. electronic — Enter labels",
                                      description="New:")
        with warnings.catch_warnings():
            # ipywidgets 8 deprecates on_submit, but its replacement (continuous_update=False)
            # also fires when the box loses focus, which would label by accident
            warnings.simplefilter("ignore", DeprecationWarning)
            self.new_genre.on_submit(self._submit_new_genre)
        self.add_genre_button = self._button("Label as new genre", self._label_new_genre, "info")
        self.accept_button = self._button(f"Accept [{keys['accept']}]", self.accept, "success",
                                          "The model's top genre is right")
        self.skip_button = self._button(f"Skip [{keys['skip']}]", self.skip, "", "Decide later")
        self.undo_button = self._button(f"Undo [{keys['undo']}]", self.undo, "warning",
                                        "Undo your last decision")
        self.skipped_choice = widgets.Dropdown(description="Skipped:", options=[])
        self.revisit_button = self._button(f"Back to skipped [{keys['revisit']}]", self._revisit, "")
        self.like_button = self._button(f"Like [{keys['like']}]", lambda: self.like(True), "",
                                        "Add to liked songs")
        self.dislike_button = self._button(f"Dislike [{keys['dislike']}]", lambda: self.like(False), "")
        self.retrain_button = self._button("Retrain", self.retrain, "primary",
                                           "Fit on the table plus your labels; compare held out")
        self.save_button = self._button("Save model", self.save_model, "",
                                        "Write the retrained model to data/models/retrained.skops")
        self.extraction_bar = widgets.IntProgress(min=0, max=1, value=0, description="Features:",
                                                  layout=widgets.Layout(display="none"))
        self.extraction_note = widgets.HTML()
        self.progress_line = widgets.HTML()
        self.status = widgets.HTML()
        self.read_only_note = widgets.HTML(
            "<b style='color:#b00'>Read-only label store: you can look, but nothing you do "
            "can be saved.</b>" if self.read_only else "")
        self.retrain_output = widgets.HTML()
        width, height = CURVE_SIZE
        self.curve_image = widgets.Image(format="png", layout=widgets.Layout(
            width=f"{width}px", height=f"{height}px", display="none"))
        self.keys_note = widgets.HTML(
            "<small>Keys (mouse over the labeler): genre numbers, a accept, s skip, u undo, "
            "l like, d dislike, b back to skipped.</small>")
        self.buttons: dict[str, object] = {}
        for widget, name in ((self.status, "status"), (self.header, "header"),
                             (self.new_genre, "new-genre"), (self.curve_image, "curve")):
            widget.add_class(f"labeler-{name}")  # stable hooks for browser checks
        self.keyboard_area = widgets.VBox([
            self.read_only_note, self.header, self.model_line, self.player, self.player_note,
            self.bars, self.genre_buttons,
            widgets.HBox([self.accept_button, self.skip_button, self.undo_button,
                          self.like_button, self.dislike_button]),
            widgets.HBox([self.skipped_choice, self.revisit_button]),
            widgets.HBox([self.extraction_bar, self.extraction_note]),
            self.progress_line, self.status, self.keys_note,
        ])
        self.widget = widgets.VBox([
            self.keyboard_area,
            widgets.HBox([self.new_genre, self.add_genre_button]),
            widgets.HBox([self.retrain_button, self.save_button]), self.retrain_output,
            self.curve_image,
        ])
        self._keyboard = None
        try:  # keys are caught only over the area without the text box, so typing stays typing
            from ipyevents import Event

            self._keyboard = Event(source=self.keyboard_area, watched_events=["keydown"])
            self._keyboard.on_dom_event(self._on_key)
        except ImportError:  # pragma: no cover - ipyevents is a dependency
            self.keys_note.value = "<small>Install ipyevents for keyboard shortcuts.</small>"

    def _rebuild_genre_buttons(self) -> None:
        genres = self.genres
        if list(self.buttons) == genres:
            return
        self.buttons = {}
        for i, genre in enumerate(genres):
            key = GENRE_KEYS[i] if i < len(GENRE_KEYS) else None
            label = f"{genre} [{key}]" if key else genre
            self.buttons[genre] = self._button(label, lambda g=genre: self.label(g))
        self.genre_buttons.children = tuple(self.buttons.values())
        self.shortcuts = {GENRE_KEYS[i]: b for i, b in enumerate(list(self.buttons.values())[:10])}
        self.shortcuts.update({
            ACTION_KEYS["accept"]: self.accept_button, ACTION_KEYS["skip"]: self.skip_button,
            ACTION_KEYS["undo"]: self.undo_button, ACTION_KEYS["like"]: self.like_button,
            ACTION_KEYS["dislike"]: self.dislike_button, ACTION_KEYS["revisit"]: self.revisit_button})

    def _label_new_genre(self) -> None:
        self.label(self.new_genre.value)
        self.new_genre.value = ""

    def _revisit(self) -> None:
        if self.skipped_choice.value is None:
            raise InputError("back to skipped", "no skipped song to go back to")
        song_id = int(self.skipped_choice.value)
        self.show_song(song_id, f"Back to skipped: {self.songs[song_id].title}")

    def _render_progress(self) -> None:
        """The background extraction's progress bar and note."""
        total = self.pending_total if hasattr(self, "pending_total") else 0
        if not total:
            self.extraction_bar.layout.display = "none"
            self.extraction_note.value = ""
            return
        done = self.prepared
        self.extraction_bar.max, self.extraction_bar.value = total, done
        problems = (f" · {len(self.problems)} could not be used (latest: "
                    f"{html.escape(self.problems[-1])})" if self.problems else "")
        if done < total:
            self.extraction_bar.layout.display = None
            workers = f"{self.workers} workers" if self.workers > 1 else "1 thread"
            self.extraction_note.value = (f"{done} of {total} new songs extracted ({workers}); "
                                          f"songs join the queue as they are ready{problems}")
        else:
            self.extraction_bar.layout.display = "none"
            self.extraction_note.value = f"All {total} new songs extracted{problems}."

    def _render_queue_counts(self, states: pd.DataFrame | None = None) -> None:
        """The progress line and the Skipped list, from *states* (default: :meth:`states`)."""
        states = self.states() if states is None else states
        progress = self.progress(states)
        self.progress_line.value = (
            f"<b>Progress</b>: {progress['labelled']} labelled · {progress['skipped']} skipped · "
            f"{progress['left']} left (of {progress['total']} ready)")
        skipped = self.skipped(states)
        options = [(self._name(s), s) for s in skipped]
        if list(self.skipped_choice.options) != options:
            keep = self.skipped_choice.value
            self.skipped_choice.options = options
            self.skipped_choice.value = keep if keep in skipped else (skipped[0] if skipped else None)
        self.revisit_button.disabled = not skipped

    def _render(self, message: str | None = None, states: pd.DataFrame | None = None) -> None:
        """Show the current song; *message* (if given) goes to the status line.

        *states* is :meth:`states` when the caller has just read it (one store read per render).
        """
        states = self.states() if states is None else states
        self._render_queue_counts(states)
        if message is not None:
            self._last_message = message
            self.status.value = html.escape(message)
        writable = self.current is not None and not self.read_only
        for button in (self.accept_button, self.skip_button, self.add_genre_button,
                       *self.buttons.values(), self.like_button, self.dislike_button):
            button.disabled = not writable
        self.undo_button.disabled = self.retrain_button.disabled = self.read_only
        if self.current is None:
            if self.extracting or (not self.songs and self.pending_total):
                self.header.value = "<h3>Preparing songs ...</h3>The first song appears here when it is ready."
            else:
                self.header.value = "<h3>Nothing left to label.</h3>"
            self.bars.value = self.player_note.value = ""
            self.accept_button.description = f"Accept [{ACTION_KEYS['accept']}]"
            self.player.value = b""
            return
        song = self.songs[self.current]
        state = states.set_index("song_id").loc[self.current]
        known = {"labelled": f" — currently labelled <b>{html.escape(str(state['genre']))}</b>",
                 "skipped": " — <b>skipped</b> earlier: decide now, or skip again"}.get(state["state"], "")
        self.header.value = (
            f"<h3>{html.escape(song.title)}</h3><div>{html.escape(song.artist or 'unknown artist')}"
            f" · <code>{html.escape(song.path.name if song.path else 'no audio file')}</code>{known}</div>")
        top = self.top_genres(k=1)[0][0]
        self.accept_button.description = f"Accept {top} [{ACTION_KEYS['accept']}]"
        start, end = self.uncertain_window()
        self.player_note.value = f"Playing the most uncertain window: {start:.0f}–{end:.0f} s"
        if self.audio_enabled and song.path is not None:
            try:
                self.player.value = window_audio_wav(song.path, start, end)
            except InputError as exc:
                self.player.value = b""
                self.player_note.value = html.escape(str(exc))
        self.bars.value = self._bars_html()
        try:
            self._prediction_id(self.current)
        except InputError as exc:  # e.g. the store became read-only or full meanwhile
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"

    def _name(self, song_id: int) -> str:
        song = self.songs[song_id]
        return f"{song.title} ({song.path.name})" if song.path else song.title

    def _bars_html(self) -> str:
        rows = []
        for genre, p in self.top_genres():
            rows.append(
                f"<div style='display:flex;align-items:center;gap:6px'>"
                f"<span style='width:110px'>{html.escape(genre)}</span>"
                f"<span style='background:#4c78a8;height:12px;width:{p * 240:.0f}px'></span>"
                f"<span>{p:.2f}</span></div>")
        return "<div><b>Model says</b> (mean over windows)</div>" + "".join(rows)

    @staticmethod
    def _retrain_html(result: retraining.RetrainResult) -> str:
        def fmt(m):
            return f"{m['accuracy']:.3f} (95% CI {m['ci_low']:.3f}–{m['ci_high']:.3f})"

        genres = ", ".join(f"{g}: {n}" for g, n in result.store_genres.items()) or "none"
        new = f"<br>New genres: <b>{html.escape(', '.join(result.new_genres))}</b>" if result.new_genres else ""
        model = f" <b>{html.escape(result.fit.name)}</b>" if result.fit is not None else ""
        note = (f"<br><i>{html.escape(result.fit.note)}</i>"
                if result.fit is not None and result.fit.note else "")
        return (f"<b>Retrained</b>{model} on {result.n_base} table rows + {result.n_store} labelled "
                f"windows ({html.escape(genres)}).<br>Held-out accuracy, {result.split} test split "
                f"(n={result.after['n']}, artist-conscious, bootstrap 95% CI): before "
                f"{fmt(result.before)} → after {fmt(result.after)}{new}{note}")

    @staticmethod
    def _curve_png(result: retraining.RetrainResult, scale: int = 2) -> bytes:
        """The learning curve as PNG, *scale* times its CSS size (:data:`CURVE_SIZE`) for sharpness."""

        dpi = 90
        width, height = CURVE_SIZE
        figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi * scale)
        axes = figure.subplots()
        curve = result.curve
        if not curve.empty:
            axes.plot(curve["store_songs"], curve["accuracy"], marker="o")
            axes.fill_between(curve["store_songs"], curve["ci_low"], curve["ci_high"], alpha=0.25)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("labelled songs from the store (in labelling order)", fontsize=8)
        axes.set_ylabel(f"accuracy ({result.split} test)", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.set_title(f"Learning curve, n={result.after['n']} held out (band: bootstrap 95% CI)",
                       fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi * scale)
        return buffer.getvalue()

    def show(self) -> None:
        """Display the widget (in a notebook)."""

        display(self.widget)

    def _ipython_display_(self):
        self.show()

    def snapshot_html(self) -> str:
        """A static HTML picture of the labeler's state (for reports, where widgets do not render)."""
        parts = [self.header.value, self.model_line.value, self.player_note.value, self.bars.value,
                 self.progress_line.value]
        if self.status.value:
            parts.append(f"<div>{self.status.value}</div>")
        if self.retrain_history:
            parts.append(self.retrain_output.value)
            png = base64.b64encode(self.curve_image.value).decode()
            width, height = CURVE_SIZE
            parts.append(f"<img width='{width}' height='{height}' src='data:image/png;base64,{png}'/>")
        return "<div style='border:1px solid #ccc;padding:8px'>" + "".join(parts) + "</div>"


def session_log(store: LabelStore, song_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Return the label events of a store joined with song titles, in order (for display)."""
    events = store.events()
    if song_ids is not None:
        events = events[events["song_id"].isin(list(song_ids))]
    titles = store.songs().set_index("song_id")["title"]
    events = events.assign(title=events["song_id"].map(titles))
    return events[["event_id", "created_utc", "title", "kind", "genre", "model_said", "undoes",
                   "who", "where"]].reset_index(drop=True)


def scripted_session(labeler: Labeler, genres_by_name: dict[str, str]) -> pd.DataFrame:
    """Label a pool by pressing the widget's own buttons, as a person would (for reports).

    Songs are answered from *genres_by_name* (file-name prefix -> genre): accept when the
    model's top genre is right, else press the genre's button. The session skips one song and
    comes back to it through the Skipped list; a song whose genre the model does not know is
    typed into the new-genre box (Enter), liked, undone and labelled again with the new
    genre's own button; then the model is retrained.

    Returns
    -------
    pandas.DataFrame
        :func:`session_log` of the pool's songs.
    """
    def truth(song_id):
        song = labeler.songs[song_id]
        name = song.path.name if song.path else song.title
        return next((g for key, g in genres_by_name.items() if name.startswith(key)), None)

    def answer(song_id):
        labeler.show_song(song_id)
        genre = truth(song_id)
        if genre is None or labeler.top_genres(k=1)[0][0] == genre:
            labeler.accept_button.click()
        else:
            labeler.buttons[genre].click()

    known = set(map(str, labeler.model.classes_))
    new = [s for s in labeler.songs if truth(s) is not None and truth(s) not in known]
    others = [s for s in labeler.queue() if s not in new]  # most uncertain first
    if others:
        answer(others[0])
    if len(others) > 1:
        labeler.show_song(others[1])
        labeler.skip_button.click()
    for song_id in new:
        labeler.show_song(song_id)
        labeler.new_genre.value = truth(song_id)
        labeler._safely(labeler._label_new_genre)  # what Enter in the box does
        labeler.show_song(song_id)
        labeler.like_button.click()
        labeler.undo_button.click()  # takes the label back and shows the song again ...
        labeler.buttons[truth(song_id)].click()  # ... and it is made again with its own button
    for _skipped in labeler.skipped():  # back to the skipped songs: the first is selected
        labeler.revisit_button.click()
        answer(labeler.current)
    for song_id in labeler.queue():
        answer(song_id)
    labeler.retrain_button.click()
    return session_log(labeler.store, labeler.songs)

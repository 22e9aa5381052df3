"""An ipywidgets labeler: ask a person about the songs the model is least sure of.

For a pool of songs (a folder, a list of files, or the songs already in a label store) the
labeler extracts per-window features once (they are kept in the store), predicts every window,
and queues the unlabelled songs by a query strategy of :mod:`helpers.active`. For the current
song it shows title / artist / file, an audio player on the most uncertain window, the model's
top genres as bars, one button per known genre, a text box for a new genre, accept, skip, undo,
back to a skipped song, like / dislike, a progress line and a retrain button that shows held-out
accuracy before and after with a learning curve.

Every click is one transaction in the :class:`~helpers.store.LabelStore`; a new labeler on the
same store (after a kernel restart, say) resumes where the last one stopped. The buttons are
ordinary ``ipywidgets.Button`` objects, so code and tests can press them with ``.click()``.

Examples
--------
>>> from helpers.labeler import Labeler
>>> labeler = Labeler("data/music", store="reports/labels.sqlite")   # doctest: +SKIP
>>> labeler.show()                                                   # doctest: +SKIP
>>> labeler.new_genre.value = "electronic"; labeler.add_genre_button.click()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import active
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS, SAMPLE_RATE
from helpers.models import MODEL_FEATURES
from helpers.store import LabelStore

log = logging.getLogger(__name__)

#: File suffixes a folder pool picks up.
AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".mp3", ".flac", ".m4a", ".opus", ".aif", ".aiff", ".webm")

#: Windows shorter than this share of the window length are not used (too few frames).
MIN_WINDOW_SHARE = 1 / 3

#: Genres shown as probability bars.
TOP_GENRES = 5


# --------------------------------------------------------------------------- pool and features
def pool_files(pool) -> list[Path]:
    """Return the audio files of a pool: a folder (searched recursively), a file or a list.

    Raises
    ------
    InputError
        A path that does not exist, or a folder without audio files.
    """
    items = [pool] if isinstance(pool, str | os.PathLike) else list(pool)
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                           and p.is_file())
            if not found:
                raise InputError(path, f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            files.extend(found)
        elif os.path.lexists(path):  # a file, or something the audio checks name (FIFO, loop)
            files.append(path)
        else:
            raise InputError(path, "file not found (no such file or folder)")
    return list(dict.fromkeys(_absolute(p) for p in files))


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the audio checks report it
        return path.absolute()


def _on_grid(windows: pd.DataFrame, window_seconds: float) -> pd.DataFrame:
    """Stored windows that belong to the grid of *window_seconds* (same policy as extraction)."""
    if windows.empty:
        return windows
    steps = windows["start"] / window_seconds
    aligned = np.isclose(steps, np.round(steps), atol=1e-6)
    fits = (windows["end"] - windows["start"]) <= window_seconds + 1e-6
    full = np.isclose(windows["end"] - windows["start"], window_seconds, atol=1e-3)
    last = windows["end"] >= windows["end"].max() - 1e-6
    return windows[aligned & fits & (full | last)]


def song_window_features(store: LabelStore, song_id: int, path, *, window_seconds: float = 30.0,
                         max_windows: int | None = None) -> pd.DataFrame:
    """Return a song's window features, extracting (and storing) only what the store lacks.

    Windows follow :func:`helpers.audio.iter_file_windows` (no overlap); a last window shorter
    than a third of *window_seconds* and silent windows are left out. Features of new windows
    are stored in one transaction, so nothing is ever extracted twice.

    Parameters
    ----------
    store : LabelStore
    song_id : int
    path : path-like
        The song's audio file.
    window_seconds : float
        Window length in seconds (30 s: the GTZAN clip length).
    max_windows : int, optional
        Use only the first windows (quick runs).

    Returns
    -------
    pandas.DataFrame
        ``window_id, song_id, start, end`` and the 58 feature columns, by start time.
    """
    from helpers.audio import iter_checked_windows
    from helpers.features import extract_signal

    window_seconds = float(window_seconds)
    if not math.isfinite(window_seconds) or window_seconds <= 0:
        raise InputError(repr(window_seconds), "window length must be a positive number of seconds")
    stored = _on_grid(store.windows(song_id), window_seconds)
    if max_windows is not None and len(stored) >= max_windows:
        return stored.head(max_windows).reset_index(drop=True)
    have = {round(float(s), 3) for s in stored["start"]}
    duration = store.songs().set_index("song_id").loc[song_id, "duration"]
    if duration is not None and not pd.isna(duration):
        expected = int(duration // window_seconds) + (duration % window_seconds
                                                      >= window_seconds * MIN_WINDOW_SHARE)
        if len(stored) >= expected:
            return stored.reset_index(drop=True)
    new, used = [], 0
    # the audio checks every entry point shares; unfit windows carry a note
    for window in iter_checked_windows(path, window_seconds=window_seconds,
                                       min_window_seconds=window_seconds * MIN_WINDOW_SHARE,
                                       needs="labelled windows"):
        if max_windows is not None and used >= max_windows:
            break
        if window.note:
            continue
        used += 1
        if round(window.start, 3) in have:
            continue
        with np.errstate(all="ignore"):
            features = extract_signal(window.samples, SAMPLE_RATE)
        if all(math.isfinite(features[c]) for c in FEATURE_COLUMNS):
            new.append((window.start, window.end, features))
    if new:
        store.add_windows(song_id, new)
    stored = _on_grid(store.windows(song_id), window_seconds)
    return (stored.head(max_windows) if max_windows else stored).reset_index(drop=True)


def _song_duration(path: Path) -> float | None:
    from helpers.audio import probe_audio

    try:
        return probe_audio(path).duration
    except InputError:
        return None


def window_audio_wav(path, start: float, end: float) -> bytes:
    """Return one window of a file as 16-bit mono WAV bytes (for an audio player)."""
    import soundfile as sf

    from helpers.audio import load_audio

    samples = load_audio(path, offset=start, duration=max(end - start, 0.1))
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the labeler
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


class Labeler:
    """Label a pool of songs in a notebook, most uncertain first, with every click stored.

    Parameters
    ----------
    pool : path-like, list of path-like, or LabelStore
        A folder of audio files, a list of files, or a store (all its songs that have windows).
    store : LabelStore or path-like, optional
        Where every decision goes; default the store of *pool* when it is one, else
        :class:`LabelStore` at its default path.
    model : fitted estimator, optional
        The genre model; default *estimator* fitted on the base table plus the store's labels.
    estimator : estimator, optional
        Unfitted model used for (re)training; default :func:`helpers.models.make_knn`.
    base_table : DataFrame, optional
        Base training rows (GTZAN layout); default the training part of the fault-filtered
        split, so that its artist-conscious test part stays a fair held-out set.
    strategy : str
        Query strategy of :mod:`helpers.active` (default ``'margin'``).
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
    """

    def __init__(self, pool, store: LabelStore | str | os.PathLike | None = None, *,
                 model=None, estimator=None, base_table: pd.DataFrame | None = None,
                 strategy: str = "margin", epsilon: float = 0.1, window_seconds: float = 30.0,
                 max_windows: int | None = None, who: str = "user", seed: int = 0,
                 audio: bool = True):
        if isinstance(pool, LabelStore):
            store = pool if store is None else store
        self.store = store if isinstance(store, LabelStore) else LabelStore(store, who=who)
        self.who = who
        active.uncertainty(np.ones((1, 1)), strategy)  # validates the strategy name
        self.strategy, self.epsilon = strategy, float(epsilon)
        self.window_seconds, self.max_windows = float(window_seconds), max_windows
        self.audio_enabled = audio
        self._rng = np.random.default_rng(seed)
        self.estimator = estimator if estimator is not None else active.make_estimator("knn")
        if base_table is None:
            base_table, _ = active.held_out_split()
        self.base_table = base_table
        self.problems: list[str] = []
        self.songs: dict[int, PoolSong] = {}
        self._load_pool(pool)
        self.model = model if model is not None else self._fit_current()
        self.retrain_history: list[active.RetrainResult] = []
        self.current: int | None = None
        self._prediction_ids: dict[tuple[int, str], int] = {}
        self._build_widgets()
        self._predict_pool()
        self.next_song()

    # ------------------------------------------------------------------ setup
    def _load_pool(self, pool) -> None:
        if isinstance(pool, LabelStore):
            songs = pool.songs()
            with_windows = set(pool.windows()["song_id"])
            for row in songs[songs["song_id"].isin(with_windows)].itertuples():
                path = Path(row.location) if Path(row.location).is_file() else None
                self._add(int(row.song_id), path, row.title, row.artist,
                          pool.windows(int(row.song_id)))
            if not self.songs:
                raise InputError(pool.path, "the store holds no song with features to label")
            return
        from helpers.audio import check_audio

        for path in pool_files(pool):
            try:
                check_audio(path, needs="labelled windows")  # before hashing it into the store
                song_id = self.store.add_song(path, title=path.stem.replace("_", " "),
                                              duration=_song_duration(path), source="folder")
                windows = song_window_features(self.store, song_id, path,
                                               window_seconds=self.window_seconds,
                                               max_windows=self.max_windows)
            except InputError as exc:  # one bad file must not stop the session
                self.problems.append(str(exc))
                log.warning("%s", exc)
                continue
            if windows.empty:
                self.problems.append(f"{path}: no usable window (silent or too short)")
                continue
            row = self.store.songs().set_index("song_id").loc[song_id]
            self._add(song_id, path, row["title"], row["artist"], windows)
        if not self.songs:
            raise InputError(pool if isinstance(pool, str | os.PathLike) else "pool",
                             "no usable song in the pool" + (f": {self.problems[0]}" if self.problems else ""))

    def _add(self, song_id, path, title, artist, windows) -> None:
        self.songs[song_id] = PoolSong(
            song_id=song_id, path=path, title=title or (path.stem if path else f"song {song_id}"),
            artist=artist or "", windows=windows.reset_index(drop=True))

    def _fit_current(self):
        """Fit the estimator on the base table plus the store's current labels."""
        from sklearn.base import clone

        base, extra, _, _ = active.training_rows(self.store, base_table=self.base_table)
        rows = pd.concat([base, extra[base.columns]], ignore_index=True)
        return clone(self.estimator).fit(rows[list(MODEL_FEATURES)], rows["label"])

    @property
    def genres(self) -> list[str]:
        """Genres a button is shown for: the model's classes and every genre in the store."""
        known = set(map(str, self.model.classes_)) | set(self.store.current_labels()["genre"])
        return sorted(known)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the current model."""
        if getattr(self, "_fingerprint_of", None) is not self.model:
            self._fingerprint, self._fingerprint_of = active.model_fingerprint(self.model), self.model
        return self._fingerprint

    def _predict_pool(self) -> None:
        """Predict every window of every pool song in one call (the whole pool at once)."""
        columns = list(getattr(self.model, "feature_names_in_", MODEL_FEATURES))
        frames = [song.windows for song in self.songs.values()]
        proba = self.model.predict_proba(pd.concat(frames, ignore_index=True)[columns])
        offset = 0
        for song in self.songs.values():
            n = len(song.windows)
            song.window_proba = proba[offset:offset + n]
            song.proba = song.window_proba.mean(axis=0)
            offset += n

    # ------------------------------------------------------------------ queue
    def states(self) -> pd.DataFrame:
        """Queue state of each pool song: ``song_id, state, genre`` (from the store)."""
        states = self.store.song_states()
        return states[states["song_id"].isin(list(self.songs))].reset_index(drop=True)

    def progress(self) -> dict:
        """Counts over the pool: ``labelled``, ``skipped``, ``left``, ``total``."""
        counts = self.states()["state"].value_counts()
        return {"labelled": int(counts.get("labelled", 0)), "skipped": int(counts.get("skipped", 0)),
                "left": int(counts.get("unlabelled", 0)), "total": len(self.songs)}

    def queue(self) -> list[int]:
        """Unlabelled, unskipped pool songs, most uncertain first (no random picks)."""
        states = self.states()
        waiting = states.loc[states["state"] == "unlabelled", "song_id"].tolist()
        if not waiting:
            return []
        strategy = "least_confidence" if self.strategy == "random" else self.strategy
        order = active.query(np.vstack([self.songs[s].proba for s in waiting]), len(waiting),
                             strategy, epsilon=0.0, random_state=self._rng)
        return [waiting[i] for i in order]

    def skipped(self) -> list[int]:
        """Pool songs whose latest decision is a skip."""
        states = self.states()
        return states.loc[states["state"] == "skipped", "song_id"].tolist()

    def next_song(self) -> int | None:
        """Move to the next song the strategy picks (``None`` when the queue is empty)."""
        states = self.states()
        waiting = states.loc[states["state"] == "unlabelled", "song_id"].tolist()
        if waiting:
            proba = np.vstack([self.songs[s].proba for s in waiting])
            pick = active.query(proba, 1, self.strategy, epsilon=self.epsilon,
                                random_state=self._rng)[0]
            self.current = waiting[int(pick)]
        else:
            self.current = None
        self._render()
        return self.current

    def show_song(self, song_id: int) -> None:
        """Make *song_id* (a pool song, e.g. a skipped one) the current song."""
        if song_id not in self.songs:
            raise InputError(f"song {song_id}", "is not in this labeler's pool")
        self.current = int(song_id)
        self._render()

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
        i = int(np.argmax(active.uncertainty(song.window_proba, strategy)))
        return float(song.windows.loc[i, "start"]), float(song.windows.loc[i, "end"])

    def _prediction_id(self, song_id: int) -> int:
        key = (song_id, self.fingerprint)
        if key not in self._prediction_ids:
            proba = dict(zip(map(str, self.model.classes_), self.songs[song_id].proba, strict=True))
            total = sum(proba.values())
            proba = {g: p / total for g, p in proba.items()}
            self._prediction_ids[key] = self.store.record_prediction(
                song_id, proba, self.fingerprint, "widget")
        return self._prediction_ids[key]

    # ------------------------------------------------------------------ actions
    def label(self, genre: str) -> int:
        """Record *genre* for the current song, then move on; return the event id."""
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        said = self.top_genres(k=1)[0][0]
        event = self.store.record_label(self.current, genre, who=self.who, where="widget",
                                        model_said=said, prediction_id=self._prediction_id(self.current))
        self.next_song()
        return event

    def accept(self) -> int:
        """Record the model's top genre as right for the current song."""
        return self.label(self.top_genres(k=1)[0][0])

    def skip(self) -> int:
        """Skip the current song (it can be revisited); return the event id."""
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        said = self.top_genres(k=1)[0][0]
        event = self.store.record_skip(self.current, who=self.who, where="widget", model_said=said)
        self.next_song()
        return event

    def undo(self) -> int | None:
        """Undo this person's latest label or skip in the pool and show that song again."""
        events = self.store.events()
        mine = events[(events["who"] == self.who) & (events["kind"] != "undo") & ~events["undone"]
                      & events["song_id"].isin(list(self.songs))]
        if mine.empty:
            self._render("Nothing to undo.")
            return None
        last = mine.iloc[-1]
        undo = self.store.undo(int(last["event_id"]), who=self.who, where="widget")
        self.show_song(int(last["song_id"]))
        return undo

    def like(self, liked: bool = True) -> int:
        """Record that the person likes (or dislikes) the current song."""
        if self.current is None:
            raise InputError("labeler", "no current song (the queue is empty)")
        event = self.store.record_preference(self.current, liked, who=self.who, where="widget")
        self._render("Liked." if liked else "Disliked.")
        return event

    def retrain(self) -> active.RetrainResult:
        """Retrain on the table plus the store's labels; show before/after and a learning curve."""
        result = active.retrain(self.store, estimator=self.estimator, previous_model=self.model,
                                base_table=self.base_table)
        self.model = result.model
        self.retrain_history.append(result)
        self._predict_pool()
        self._rebuild_genre_buttons()
        self.retrain_output.value = self._retrain_html(result)
        self.curve_image.value = self._curve_png(result)
        self._render()
        return result

    def save_model(self, path=None):
        """Save the last retrained model (see :meth:`helpers.active.RetrainResult.save`)."""
        if not self.retrain_history:
            raise InputError("save model", "retrain first: there is no retrained model yet")
        saved = self.retrain_history[-1].save(path)
        self._render(f"Model saved to {saved}")
        return saved

    # ------------------------------------------------------------------ widgets
    def _button(self, description, handler, style="", tooltip=""):
        import ipywidgets as widgets

        button = widgets.Button(description=description, button_style=style, tooltip=tooltip,
                                layout=widgets.Layout(width="auto"))
        button.on_click(lambda _button: self._safely(handler))
        return button

    def _safely(self, handler) -> None:
        """Run a click handler; show bad input as a message instead of losing it in the log."""
        try:
            handler()
        except InputError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"

    def _build_widgets(self) -> None:
        import ipywidgets as widgets

        self.header = widgets.HTML()
        self.player = widgets.Audio(format="wav", autoplay=False, controls=True)
        self.player_note = widgets.HTML()
        self.bars = widgets.HTML()
        self.genre_buttons = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.new_genre = widgets.Text(placeholder="new genre, e.g. electronic", description="New:")
        self.add_genre_button = self._button("Label as new genre", self._label_new_genre, "info")
        self.accept_button = self._button("Accept", self.accept, "success",
                                          "The model's top genre is right")
        self.skip_button = self._button("Skip", self.skip, "", "Decide later")
        self.undo_button = self._button("Undo", self.undo, "warning", "Undo your last decision")
        self.skipped_choice = widgets.Dropdown(description="Skipped:", options=[])
        self.revisit_button = self._button("Back to skipped", self._revisit, "")
        self.like_button = self._button("Like", lambda: self.like(True), "", "Add to liked songs")
        self.dislike_button = self._button("Dislike", lambda: self.like(False), "")
        self.retrain_button = self._button("Retrain", self.retrain, "primary",
                                           "Fit on the table plus your labels; compare held out")
        self.save_button = self._button("Save model", self.save_model, "",
                                        "Write the retrained model to data/models/retrained.skops")
        self.progress_line = widgets.HTML()
        self.status = widgets.HTML()
        self.retrain_output = widgets.HTML()
        self.curve_image = widgets.Image(format="png")
        self._rebuild_genre_buttons()
        self.widget = widgets.VBox([
            self.header, self.player, self.player_note, self.bars, self.genre_buttons,
            widgets.HBox([self.new_genre, self.add_genre_button]),
            widgets.HBox([self.accept_button, self.skip_button, self.undo_button,
                          self.like_button, self.dislike_button]),
            widgets.HBox([self.skipped_choice, self.revisit_button]),
            self.progress_line, self.status,
            widgets.HBox([self.retrain_button, self.save_button]), self.retrain_output,
            self.curve_image,
        ])

    def _rebuild_genre_buttons(self) -> None:
        self.buttons = {g: self._button(g, lambda g=g: self.label(g)) for g in self.genres}
        self.genre_buttons.children = tuple(self.buttons.values())

    def _label_new_genre(self) -> None:
        self.label(self.new_genre.value)
        self.new_genre.value = ""
        self._rebuild_genre_buttons()

    def _revisit(self) -> None:
        if self.skipped_choice.value is None:
            raise InputError("back to skipped", "no skipped song to go back to")
        self.show_song(int(self.skipped_choice.value))

    def _render(self, message: str = "") -> None:
        progress = self.progress()
        self.progress_line.value = (
            f"<b>Progress</b>: {progress['labelled']} labelled · {progress['skipped']} skipped · "
            f"{progress['left']} left (of {progress['total']})")
        self.skipped_choice.options = [(self._name(s), s) for s in self.skipped()]
        self.status.value = html.escape(message)
        for button in (self.accept_button, self.skip_button, self.like_button,
                       self.dislike_button, self.add_genre_button, *self.buttons.values()):
            button.disabled = self.current is None
        if self.current is None:
            more = " Go back to a skipped song below." if progress["skipped"] else ""
            self.header.value = f"<h3>Nothing left to label.</h3>{more}"
            self.bars.value = self.player_note.value = ""
            self.player.value = b""
            return
        song = self.songs[self.current]
        state = self.states().set_index("song_id").loc[self.current]
        known = f" — currently labelled <b>{html.escape(state['genre'])}</b>" if state["state"] == "labelled" else ""
        self.header.value = (
            f"<h3>{html.escape(song.title)}</h3><div>{html.escape(song.artist or 'unknown artist')}"
            f" · <code>{html.escape(song.path.name if song.path else 'no audio file')}</code>{known}</div>")
        start, end = self.uncertain_window()
        self.player_note.value = f"Playing the most uncertain window: {start:.0f}–{end:.0f} s"
        if self.audio_enabled and song.path is not None:
            try:
                self.player.value = window_audio_wav(song.path, start, end)
            except InputError as exc:
                self.player.value = b""
                self.player_note.value = html.escape(str(exc))
        self.bars.value = self._bars_html()
        self._prediction_id(self.current)

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
    def _retrain_html(result: active.RetrainResult) -> str:
        def fmt(m):
            return f"{m['accuracy']:.3f} (95% CI {m['ci_low']:.3f}–{m['ci_high']:.3f})"

        genres = ", ".join(f"{g}: {n}" for g, n in result.store_genres.items()) or "none"
        new = f"<br>New genres: <b>{html.escape(', '.join(result.new_genres))}</b>" if result.new_genres else ""
        return (f"<b>Retrained</b> on {result.n_base} table rows + {result.n_store} labelled "
                f"windows ({html.escape(genres)}).<br>Held-out accuracy, {result.split} test split "
                f"(n={result.after['n']}, artist-conscious, bootstrap 95% CI): before "
                f"{fmt(result.before)} → after {fmt(result.after)}{new}")

    @staticmethod
    def _curve_png(result: active.RetrainResult) -> bytes:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(5, 2.8), dpi=90)
        axes = figure.subplots()
        curve = result.curve
        if not curve.empty:
            axes.plot(curve["store_songs"], curve["accuracy"], marker="o")
            axes.fill_between(curve["store_songs"], curve["ci_low"], curve["ci_high"], alpha=0.25)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("labelled songs from the store (in labelling order)")
        axes.set_ylabel(f"accuracy ({result.split} test)")
        axes.set_title("Learning curve (band: bootstrap 95% CI)", fontsize=9)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def show(self) -> None:
        """Display the widget (in a notebook)."""
        from IPython.display import display

        display(self.widget)

    def _ipython_display_(self):
        self.show()

    def snapshot_html(self) -> str:
        """A static HTML picture of the labeler's state (for reports, where widgets do not render)."""
        parts = [self.header.value, self.player_note.value, self.bars.value, self.progress_line.value]
        if self.status.value:
            parts.append(f"<div>{self.status.value}</div>")
        if self.retrain_history:
            parts.append(self.retrain_output.value)
            png = base64.b64encode(self.curve_image.value).decode()
            parts.append(f"<img src='data:image/png;base64,{png}'/>")
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

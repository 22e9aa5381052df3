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
import re
import time
import warnings

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import Javascript, display
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from helpers.errors import InputError
from helpers.labeling import retrain as retraining
from helpers.labeling.pool import song_envelope, window_audio_wav
from helpers.labeling.session import (
    GENRE_PREFIX_KEY,
    LabelingSession,
    StaleAnswerError,
    session_log,
)

log = logging.getLogger(__name__)


#: Genres shown as probability bars.
TOP_GENRES = 5


#: Keys of the action buttons (genres take 1-9 and 0, then g1 ... g0 and so on: the session's
#: key map, fixed per store).
ACTION_KEYS = {"accept": "a", "skip": "s", "undo": "u", "like": "l", "dislike": "d",
               "revisit": "b", "open": "o", "previous": "p", "play": "k",
               "window_back": ",", "window_on": "."}

#: Actions that answer for the song on screen: bound to that song and debounced.
ANSWER_ACTIONS = ("accept", "skip", "like", "dislike")

_SONG_CLASS = re.compile(r"labeler-song-(\d+)")


#: Seconds Enter in the new-genre box waits for the box's last characters to reach the kernel.
ENTER_DELAY_SECONDS = 0.3


#: Seconds after an answer click from the page within which another answer click is ignored
#: (a double click would otherwise answer for the next song before anyone saw it).
CLICK_DEBOUNCE_SECONDS = 0.4


class _PageButton(widgets.Button):
    """A button that knows whether a click came from the page or from ``click()`` in code."""

    from_page = False

    def _handle_button_msg(self, _, content, buffers):
        self.from_page = content.get("event", "") == "click"
        try:
            super()._handle_button_msg(_, content, buffers)
        finally:
            self.from_page = False


#: JupyterLab runs this in the output of the labeler's cell: scroll that cell into view a few
#: times while Run All moves on to the cells below (each of them scrolls the notebook away).
SCROLL_INTO_VIEW = """
const cell = element.closest ? (element.closest('.jp-Cell') || element) : element;
[300, 1500, 4000, 8000].forEach(t => setTimeout(() => cell.scrollIntoView({block: 'start'}), t));
"""


#: The page's side of listening, run once per page where the labeler is shown. The play key
#: (and the play button) pause and resume the loaded window in the browser instead of asking
#: the kernel to reload it; the play-state line follows the ``<audio>`` element's own
#: ``play`` / ``pause`` / ``ended`` events (so the player's controls and the window's end count
#: too) and gives its clock in song time. Stepping to another window while one plays plays on.
#: With no window loaded (no audio) the key goes on to the kernel as before.
LISTEN_SCRIPT = """
if (!window.__labelerListen) {
  window.__labelerListen = true;
  const clock = s => { s = Math.round(s); return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0'); };
  const parts = el => {
    const area = el && el.closest ? el.closest('.labeler-keys') : null;
    const audio = area && area.querySelector('audio');
    return {area, audio, loaded: !!(audio && audio.currentSrc)};
  };
  const show = (area, audio) => {
    const line = area.querySelector('.labeler-play-state');
    const at = area.querySelector('[data-window-start]');
    if (!line) return;
    const now = clock((at ? parseFloat(at.dataset.windowStart) : 0) + audio.currentTime);
    line.dataset.state = audio.ended ? 'ended' : (audio.paused ? 'paused' : 'playing');
    line.textContent = audio.ended ? 'Window played to its end' :
      (audio.paused ? (audio.currentTime > 0 ? 'Paused at ' + now + ' of the song' : '') :
       'Playing — ' + now + ' of the song');
  };
  const toggle = (event, audio) => {
    event.stopImmediatePropagation();
    event.preventDefault();
    if (audio.paused) { audio.play(); } else { audio.pause(); }
  };
  document.addEventListener('keydown', event => {
    if (event.repeat || event.ctrlKey || event.altKey || event.metaKey) return;
    const {area, audio, loaded} = parts(event.target);
    if (!loaded) return;
    if (event.key === 'k') toggle(event, audio);
    else if (event.key === ',' || event.key === '.') area.dataset.resume = audio.paused ? '' : '1';
  }, true);
  document.addEventListener('click', event => {
    const button = event.target.closest && event.target.closest('.labeler-play');
    const {audio, loaded} = parts(button);
    if (button && loaded) toggle(event, audio);
  }, true);
  ['play', 'pause', 'ended', 'timeupdate', 'emptied'].forEach(name => document.addEventListener(name, event => {
    const {area, audio} = parts(event.target);
    if (area && audio === event.target) show(area, audio);
  }, true));
  document.addEventListener('canplay', event => {
    const {area, audio} = parts(event.target);
    if (area && audio === event.target && area.dataset.resume === '1') { area.dataset.resume = ''; audio.play(); }
  }, true);
}
"""


#: Size (CSS pixels) of the learning curve; the PNG is drawn at twice this for sharp screens.
CURVE_SIZE = (450, 252)


class Labeler(LabelingSession):
    """Label a pool of songs in a notebook, with every click stored.

    The widget over a :class:`~helpers.labeling.session.LabelingSession`: songs whose features
    are in the store are ready at once; the others are extracted in the background and join
    the queue as they are ready, with a progress bar. Keys, buttons, the list of labelled
    songs and the player draw what the session holds; every decision goes through it.

    Parameters
    ----------
    pool, store
        As for :class:`~helpers.labeling.session.LabelingSession`: a folder, a list of files
        or a store; where every decision goes.
    audio : bool
        Fill the audio player (off in tests).
    **options
        Every other parameter of :class:`~helpers.labeling.session.LabelingSession` (model,
        estimator, base table, feature set, query strategy, window length, who is labelling,
        background extraction, workers, ...).
    """

    def __init__(self, pool, store=None, *, audio: bool = True, **options):
        self.audio_enabled = audio  # read by the first render, inside the session's start
        super().__init__(pool, store, **options)

    # ------------------------------------------------------------------ the session's hooks
    def _prepare_view(self) -> None:
        self._build_widgets()

    def _on_progress(self) -> None:
        self._render_progress()

    def _on_song(self, message: str | None = None, states: pd.DataFrame | None = None) -> None:
        super()._on_song(message, states)
        self._render(message, states)

    def _on_windows(self, song_id: int) -> None:  # more windows: new bars, same player
        self.bars.value = self._bars_html()
        self.accept_button.description = (
            f"Accept {self.top_genres(k=1)[0][0]} [{ACTION_KEYS['accept']}]")

    def _on_queue(self) -> None:
        self._render_queue_counts()

    def _on_genres(self) -> None:
        self._rebuild_genre_buttons()

    def _on_model(self, note: str = "") -> None:
        if hasattr(self, "buttons"):
            self._rebuild_genre_buttons()
        self.model_line.value = self._model_html(note)
        if self.retrain_stale and self.retrain_output.value and "labeler-stale" not in self.retrain_output.value:
            self.retrain_output.value = (
                "<div class='labeler-stale' style='color:#b00'><b>Stale</b>: the model changed "
                "after this retrain (an undone label or a refit); press Retrain for current "
                "figures.</div><div style='opacity:0.5'>" + self.retrain_output.value + "</div>")
            self.save_button.disabled = True

    def _on_status(self, text: str) -> None:
        self.status.value = html.escape(text)

    def _on_retrained(self, result: retraining.RetrainResult) -> None:
        self.retrain_output.value = self._retrain_html(result)
        self.curve_image.value = self._curve_png(result)
        self.curve_image.layout.display = None
        self.save_button.disabled = self.read_only

    def retrain(self):
        """Retrain (see :meth:`LabelingSession.retrain`); its button is disabled meanwhile."""
        self.retrain_button.disabled = True
        try:
            return super().retrain()
        finally:
            self.retrain_button.disabled = self.read_only

    def _model_html(self, note: str = "") -> str:
        m = self.held_out_accuracy()
        source = " (from its model card)" if m.get("source") == "model card" else ""
        text = (f"<b>Model</b>: {html.escape(self.model_name())} · held-out accuracy{source} "
                f"{m['accuracy']:.3f} (95% CI {m['ci_low']:.3f}–{m['ci_high']:.3f}, "
                f"{self._held_out_split_text()}, n={m['n']}, {m.get('method', 'bootstrap')})")
        return text + (f"<br><i>{html.escape(note)}</i>" if note else "")


    def _held_out_split_text(self) -> str:
        """Which clips the shown accuracy is measured on."""
        if self.feature_set == retraining.TABLE_FEATURE_SET:
            return f"{retraining.HELD_OUT_SPLIT} test split"
        return (f"{retraining.HELD_OUT_SPLIT} test clips of the GTZAN audio at hand, "
                f"{self.feature_set} features")

    def press(self, key: str, song_id: int | None = None, at: float | None = None) -> str | None:
        """Do what pressing *key* over the widget does: the action of the button bound to it.

        *song_id* is the song on screen when the key was pressed: an answer for a song that is
        no longer current is refused. *at* is when it was pressed (seconds, the browser's
        clock): an answer within the debounce of the previous one is ignored. A genre past
        the tenth takes the prefix key first (``g`` then ``1`` is the eleventh).

        Returns the pressed button's description, or ``None`` when the key is bound to
        nothing (or its button is disabled, or the press was ignored).
        """
        key = str(key).lower()
        sequence = self._prefix + key
        if key == GENRE_PREFIX_KEY and any(k.startswith(sequence) and k != sequence
                                           for k in self.shortcuts):
            self._prefix = sequence
            self.status.value = html.escape(f"{sequence}: now the number key of the genre")
            return None
        self._prefix = ""
        button = self.shortcuts.get(sequence)
        if button is None or button.disabled:
            return None
        action, answer = self._actions[sequence]
        if answer and self.debounced(at, sequence):
            return None  # a repeat: the first press already answered
        self._safely(lambda: action(song_id) if answer else action())
        return button.description


    def _on_key(self, event: dict) -> None:
        """ipyevents handler: plain key presses only (no Ctrl/Alt/Meta combinations).

        The labeler's element carries the id of the song it shows (a CSS class, changed
        after the song is drawn), so a key names the song that was on screen when pressed.
        """
        if event.get("type") != "keydown" or event.get("repeat"):
            return
        if event.get("ctrlKey") or event.get("altKey") or event.get("metaKey"):
            return
        shown = _SONG_CLASS.search(str((event.get("target") or {}).get("className", "")))
        stamp = event.get("timeStamp")
        self.press(event.get("key", ""), int(shown.group(1)) if shown else None,
                   stamp / 1000 if isinstance(stamp, int | float) else None)


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


    def _button(self, description, handler, style="", tooltip="", answer=False):
        """A button running *handler*; an *answer* button ignores a repeated click from the page."""
        button = _PageButton(description=description, button_style=style, tooltip=tooltip,
                             layout=widgets.Layout(width="auto", flex="0 0 auto"))

        def clicked(_button):
            if answer and button.from_page and self._click_repeated():
                return  # a double click: the first one answered for the song it was meant for
            self._safely(handler)

        button.on_click(clicked)
        return button

    def _click_repeated(self) -> bool:
        """Whether a click from the page comes within :data:`CLICK_DEBOUNCE_SECONDS` of the
        previous answer click (the kernel's clock: a click carries no time of its own)."""
        now = time.monotonic()
        last = getattr(self, "_last_click_at", None)
        if last is not None and now - last < CLICK_DEBOUNCE_SECONDS:
            return True
        self._last_click_at = now
        return False


    def _safely(self, handler) -> None:
        """Run a click handler; show any error in the status line instead of losing it."""
        try:
            handler()
        except StaleAnswerError as exc:
            self.status.value = f"<span style='color:#b60'>{html.escape(str(exc))}</span>"
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
        # written only by the page (LISTEN_SCRIPT): what the <audio> element is doing now
        self.play_state = widgets.HTML()
        self.timeline = widgets.HTML()
        self.autoplay = widgets.Checkbox(value=False, description="Autoplay each song",
                                         indent=False, layout=widgets.Layout(width="auto"))
        self.play_button = self._button(f"Play/pause [{keys['play']}]", self.toggle_play, "",
                                        "Play the window, pause it, resume where it paused")
        self.window_back_button = self._button(f"◀ window [{keys['window_back']}]",
                                               lambda: self.step_window(-1), "")
        self.window_on_button = self._button(f"window ▶ [{keys['window_on']}]",
                                             lambda: self.step_window(1), "")
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
                                          "The model's top genre is right", answer=True)
        self.skip_button = self._button(f"Skip [{keys['skip']}]", self.skip, "", "Decide later",
                                        answer=True)
        self.undo_button = self._button(f"Undo [{keys['undo']}]", self.undo, "warning",
                                        "Undo your last decision (a label, skip, like or dislike)")
        self.skipped_choice = widgets.Dropdown(description="Skipped:", options=[])
        self.revisit_button = self._button(f"Back to skipped [{keys['revisit']}]", self._revisit, "")
        self.like_button = self._button(f"Like [{keys['like']}]", lambda: self.like(True), "",
                                        "Add to liked songs", answer=True)
        self.dislike_button = self._button(f"Dislike [{keys['dislike']}]", lambda: self.like(False),
                                           "", answer=True)
        self.retrain_button = self._button("Retrain", self.retrain, "primary",
                                           "Fit on the table plus your labels; compare held out")
        self.save_button = self._button("Save model", self._save, "",
                                        "Write the retrained model to data/models/<store>-<time>.skops")
        self.save_button.disabled = True
        self.saved_note = widgets.HTML()
        self.review_genre = widgets.Dropdown(description="Genre:", options=[("all", "")], value="")
        self.review_genre.observe(lambda _change: self._render_review(), names="value")
        self.review_choice = widgets.Dropdown(description="Labelled:", options=[],
                                              layout=widgets.Layout(width="520px"))
        self.open_button = self._button(f"Open to relabel [{keys['open']}]", self._open_review, "",
                                        "Show this song again; a new label keeps the old one")
        self.previous_button = self._button(f"Previous song [{keys['previous']}]", self.previous_song,
                                            "", "Back to the song of your previous decision")
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
            "<small>Keys (mouse over the labeler): the number on a genre's button (past ten "
            "genres: g, then the number), a accept, s skip, u undo, l like, d dislike "
            "(again: clear), b back to skipped, o open the chosen labelled song, p previous "
            "song, k play/pause, , and . the previous and next window.</small>")
        self.buttons: dict[str, object] = {}
        self._prefix = ""
        for widget, name in ((self.status, "status"), (self.header, "header"),
                             (self.new_genre, "new-genre"), (self.curve_image, "curve"),
                             (self.review_choice, "review"), (self.review_genre, "review-genre"),
                             (self.retrain_output, "retrain"), (self.like_button, "like"),
                             (self.progress_line, "progress"), (self.play_button, "play"),
                             (self.play_state, "play-state")):
            widget.add_class(f"labeler-{name}")  # stable hooks for browser checks
        self.keyboard_area = widgets.VBox([
            self.read_only_note, self.header, self.model_line,
            widgets.HBox([self.player, self.play_button, self.window_back_button,
                          self.window_on_button, self.autoplay], layout=_wrap()),
            self.timeline, self.player_note, self.play_state, self.bars, self.genre_buttons,
            widgets.HBox([self.accept_button, self.skip_button, self.undo_button,
                          self.like_button, self.dislike_button]),
            widgets.HBox([self.skipped_choice, self.revisit_button]),
            widgets.HBox([self.review_genre, self.review_choice, self.open_button,
                          self.previous_button], layout=_wrap()),
            widgets.HBox([self.extraction_bar, self.extraction_note]),
            self.progress_line, self.status, self.keys_note,
        ])
        self.widget = widgets.VBox([
            self.keyboard_area,
            widgets.HBox([self.new_genre, self.add_genre_button]),
            widgets.HBox([self.retrain_button, self.save_button]), self.saved_note,
            self.retrain_output, self.curve_image,
        ])
        self.keyboard_area.add_class("labeler-keys")
        self._keyboard = None
        try:  # keys are caught only over the area without the text box, so typing stays typing
            from ipyevents import Event

            self._keyboard = Event(source=self.keyboard_area, watched_events=["keydown"])
            self._keyboard.on_dom_event(self._on_key)
        except ImportError:  # pragma: no cover - ipyevents is a dependency
            self.keys_note.value = "<small>Install ipyevents for keyboard shortcuts.</small>"


    def _rebuild_genre_buttons(self) -> None:
        keys = self.key_map()
        if list(self.buttons) == list(keys):
            return
        for genre, key in keys.items():  # the map only grows: existing buttons are kept
            if genre not in self.buttons:
                self.buttons[genre] = self._button(f"{genre} [{key}]", lambda g=genre: self.label(g),
                                                   answer=True)
        self.genre_buttons.children = tuple(self.buttons[g] for g in keys)
        self.buttons = {g: self.buttons[g] for g in keys}
        # key -> (action taking the song the answer is for, or nothing; whether it answers)
        self._actions = {key: (lambda song_id, g=genre: self.label(g, song_id), True)
                         for genre, key in keys.items()}
        self.shortcuts = {key: self.buttons[genre] for genre, key in keys.items()}
        a = ACTION_KEYS
        for name, button, action in (
                ("accept", self.accept_button, self.accept), ("skip", self.skip_button, self.skip),
                ("like", self.like_button, lambda song_id: self.like(True, song_id)),
                ("dislike", self.dislike_button, lambda song_id: self.like(False, song_id)),
                ("undo", self.undo_button, self.undo), ("revisit", self.revisit_button, self._revisit),
                ("open", self.open_button, self._open_review),
                ("play", self.play_button, self.toggle_play),
                ("window_back", self.window_back_button, lambda: self.step_window(-1)),
                ("window_on", self.window_on_button, lambda: self.step_window(1)),
                ("previous", self.previous_button, self.previous_song)):
            self.shortcuts[a[name]] = button
            self._actions[a[name]] = (action, name in ANSWER_ACTIONS)


    def _open_review(self) -> None:
        if self.review_choice.value is None:
            raise InputError("open", "choose a labelled song in the list first")
        self.reopen(int(self.review_choice.value))


    def _save(self) -> None:
        """Save model: a new named, dated file; an existing one only after a second press."""
        path = self.model_path()
        confirmed = getattr(self, "_confirm_replace", None) == path
        if path.exists() and not confirmed:
            self._confirm_replace = path
            raise InputError(path, "exists already; press Save model again to replace it")
        self._confirm_replace = None
        self.save_model(path, replace=confirmed)
        saved = self.saved_models()
        self.saved_note.value = ("<small>Saved models of this store: "
                                 + ", ".join(html.escape(p.name) for p in saved) + "</small>")


    def _render_review(self, review: pd.DataFrame | None = None) -> None:
        """The review list (every current label, newest first) and its genre filter."""
        review = self.review() if review is None else review
        genres = sorted(set(review["genre"]))
        options = [("all", ""), *[(g, g) for g in genres]]
        if list(self.review_genre.options) != options:
            keep = self.review_genre.value
            self.review_genre.options = options
            self.review_genre.value = keep if keep in dict(options).values() else ""
        chosen = review[review["genre"] == self.review_genre.value] if self.review_genre.value else review
        chosen = chosen[chosen["in_pool"]]
        entries = [(f"{r.title} — {r.genre} ({r.labelled_utc[:16].replace('T', ' ')} UTC; model said "
                    f"{r.model_said or '—'}){'' if r.this_session else ' · earlier session'}",
                    int(r.song_id)) for r in chosen.itertuples()]
        if list(self.review_choice.options) != entries:
            keep = self.review_choice.value
            self.review_choice.options = entries
            ids = [e[1] for e in entries]
            self.review_choice.value = keep if keep in ids else (ids[0] if ids else None)
        self.open_button.disabled = not entries


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
            f"<b>Progress</b> (songs): {progress['labelled']} labelled · {progress['skipped']} "
            f"skipped · {progress['left']} left (of {progress['total']} ready)")
        self._render_review()
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
        writable = self.current is not None and not self.read_only
        for button in (self.accept_button, self.skip_button, self.add_genre_button,
                       *self.buttons.values(), self.like_button, self.dislike_button):
            button.disabled = not writable
        for button in (self.play_button, self.window_back_button, self.window_on_button):
            button.disabled = self.current is None
        self.undo_button.disabled = self.previous_button.disabled = self.read_only
        self.retrain_button.disabled = self.read_only or self.retraining
        if self.current is None:
            self.keyboard_area.remove_class(f"labeler-song-{getattr(self, '_shown', None)}")
            self._shown = None
            # before the extraction thread starts too: songs are still to come
            if self.extracting or (self.prepared < self.pending_total
                                   and not getattr(self, "_thread_done", False)):
                self.header.value = "<h3>Preparing songs ...</h3>The first song appears here when it is ready."
            else:
                self.header.value = "<h3>Nothing left to label.</h3>"
            self.bars.value = self.player_note.value = self.timeline.value = ""
            self._loaded = None
            self.accept_button.description = f"Accept [{ACTION_KEYS['accept']}]"
            self.player.value = b""
            if message is not None:
                self.status.value = html.escape(message)
            return
        song = self.songs[self.current]
        state = states.set_index("song_id").loc[self.current]
        known = {"labelled": f" — currently labelled <b>{html.escape(str(state['genre']))}</b>",
                 "skipped": " — <b>skipped</b> earlier: decide now, or skip again"}.get(state["state"], "")
        liked = self.liked_state()
        mark = {True: " · <b class='labeler-liked'>♥ liked</b>",
                False: " · <b class='labeler-disliked'>disliked</b>"}.get(liked, "")
        self.like_button.description = f"{'Liked ✓' if liked is True else 'Like'} [{ACTION_KEYS['like']}]"
        self.dislike_button.description = (f"{'Disliked ✓' if liked is False else 'Dislike'} "
                                           f"[{ACTION_KEYS['dislike']}]")
        album = f" · <i>{html.escape(song.album)}</i>" if song.album else ""
        self.header.value = (
            f"<h3>{html.escape(song.title)}</h3><div>{html.escape(song.artist or 'unknown artist')}"
            f"{album} · <code>{html.escape(song.path.name if song.path else 'no audio file')}</code>"
            f"{known}{mark}</div>")
        if getattr(self, "_shown", None) != self.current:
            # right after the header (messages arrive in order): a key names this song from now
            self.keyboard_area.remove_class(f"labeler-song-{getattr(self, '_shown', None)}")
            self.keyboard_area.add_class(f"labeler-song-{self.current}")
            self._shown = self.current
        top = self.top_genres(k=1)[0][0]
        self.accept_button.description = f"Accept {top} [{ACTION_KEYS['accept']}]"
        if getattr(self, "_loaded", None) != (self.current, self.listen_window()[0]):
            # a new song (or window): the same one keeps playing through a like or a relabel
            self._load_player(self.autoplay.value)
        self.bars.value = self._bars_html()
        if message is not None:  # last: when it shows, the song it speaks of is drawn
            self.status.value = html.escape(message)
        try:
            self._prediction_id(self.current)
        except InputError as exc:  # e.g. the store became read-only or full meanwhile
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"


    def _on_listen(self) -> None:
        self._load_player(self.player.autoplay)

    def toggle_play(self) -> None:
        """Load the chosen window playing, or stopped (the play key from code).

        On the page the play key and button pause and resume in the browser instead
        (:data:`LISTEN_SCRIPT`); this is their fallback when no window is loaded there.
        """
        self._require_current()
        self._load_player(not self.player.autoplay)

    def _load_player(self, play: bool) -> None:
        """Put the chosen window in the player (playing when *play*) and say what it holds.

        The player's own clock starts at 0 for the window, so the note and the timeline give
        song time; the play-state line below (drawn by the page) says whether it plays.
        """
        song = self.songs[self.current]
        index, start, end = self.listen_window()
        self._loaded = (self.current, index)
        self.timeline.value = self._overview_html(start, end) + self._timeline_html(index)
        where = f"{_clock(start)}–{_clock(end)} of {_clock(float(song.windows['end'].max()))}"
        uncertain = " (the most uncertain window)" if index == self._uncertain_index() else ""
        if not self.audio_enabled or song.path is None:
            self.player_note.value = f"Window {where}{uncertain}; no audio here"
            return
        try:
            wav = window_audio_wav(song.path, start, end)
        except InputError as exc:
            self.player.value = b""
            self.player_note.value = html.escape(str(exc))
            return
        with self.player.hold_sync():  # one message: the new window and whether it plays
            self.player.autoplay = bool(play)
            self.player.value = wav
        # whether it plays is the page's to say (the audio element's own events), not a guess here
        action = "loaded to play" if play else f"press {ACTION_KEYS['play']} to play or pause"
        self.player_note.value = (
            f"<span data-window-start='{start:.3f}'>Window {where}{uncertain} — {action} "
            f"(the player's 0:00 is {_clock(start)} of the song)</span>")

    def _overview_html(self, start: float, end: float) -> str:
        """The song's waveform with the loaded window marked; decoded once per song, when shown."""
        song = self.songs[self.current]
        if not self.audio_enabled or song.path is None:
            return ""
        if song.overview is None:
            try:
                song.overview = song_envelope(song.path)
            except InputError as exc:  # the loudness strip below still shows the windows
                log.warning("no waveform for %s: %s", song.path, exc)
                return ""
        envelope, duration = song.overview
        return waveform_svg(envelope, duration, start, end)

    def _uncertain_index(self) -> int:
        start, _ = self.uncertain_window()
        return int((self.songs[self.current].windows["start"] == start).to_numpy().argmax())

    def _timeline_html(self, index: int) -> str:
        """A strip of the song's windows, bar height the window's loudness (RMS), chosen marked."""
        windows = self.songs[self.current].windows
        spans = windows[["start", "end"]].to_numpy()
        rms = windows["rms_mean"].to_numpy() if "rms_mean" in windows else np.ones(len(windows))
        top = float(rms.max()) if rms.max() > 0 else 1.0
        bars = []
        for i, (start, end) in enumerate(spans):
            height = 4 + 20 * float(rms[i]) / top
            colour = "#e45756" if i == index else "#9ecae9"
            bars.append(f"<span title='{_clock(start)}–{_clock(end)}' style='display:inline-block;"
                        f"width:10px;height:{height:.0f}px;margin-right:1px;background:{colour}'></span>")
        return ("<div class='labeler-timeline' style='display:flex;align-items:flex-end;height:26px'>"
                + "".join(bars) + f"<small style='margin-left:6px'>window {index + 1} of "
                f"{len(windows)} (loudness per window; red: the one loaded)</small></div>")

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

        songs = result.store_songs or {}
        genres = ", ".join(f"{g}: {n} song{'s' * (n != 1)} ({result.store_genres.get(g, 0)} windows)"
                           for g, n in songs.items()) or "none"
        left_out = ""
        if len(result.excluded_songs):
            left_out = ("<br><b>Not trained on</b>: " + "; ".join(
                f"{html.escape(str(r.title))} ({html.escape(str(r.genre))}): {html.escape(r.reason)}"
                for r in result.excluded_songs.itertuples()))
        new = f"<br>New genres: <b>{html.escape(', '.join(result.new_genres))}</b>" if result.new_genres else ""
        model = f" <b>{html.escape(result.fit.name)}</b>" if result.fit is not None else ""
        note = (f"<br><i>{html.escape(result.fit.note)}</i>"
                if result.fit is not None and result.fit.note else "")
        return (f"<b>Retrained</b>{model} on {result.n_base} table rows + {sum(songs.values())} "
                f"labelled songs ({html.escape(genres)}).<br>Held-out accuracy, {result.split} test "
                f"split (n={result.after['n']}, artist-conscious, "
                f"{result.after.get('method', 'bootstrap')} 95% CI): before "
                f"{fmt(result.before)} → after {fmt(result.after)}{new}{left_out}{note}")


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


    def show(self, scroll: bool = False) -> None:
        """Display the widget (in a notebook).

        *scroll*: bring the labeler's cell into view once the cells after it have run (after
        Run All the notebook would otherwise sit at its last cell).
        """
        display(self.widget)
        display(Javascript(LISTEN_SCRIPT))
        if scroll:
            display(Javascript(SCROLL_INTO_VIEW))


    def _ipython_display_(self):
        self.show()


    def snapshot_html(self) -> str:
        """A static HTML picture of the labeler's state (for reports, where widgets do not render)."""
        parts = [self.header.value, self.model_line.value, self.player_note.value, self.bars.value,
                 self.progress_line.value, self.status.value]
        if self.retrain_history:
            parts.append(self.retrain_output.value)
            png = base64.b64encode(self.curve_image.value).decode()
            width, height = CURVE_SIZE
            parts.append(f"<img width='{width}' height='{height}' src='data:image/png;base64,{png}'/>")
        # each widget's text in its own block: one part's sentence never runs into the next's
        blocks = "".join(f"<div style='margin:3px 0;clear:both'>{part}</div>" for part in parts if part)
        return f"<div style='border:1px solid #ccc;padding:8px'>{blocks}</div>"


#: Size (CSS pixels) of the song's waveform, without its time axis.
WAVEFORM_SIZE = (600, 40)


def waveform_svg(envelope: np.ndarray, duration: float, start: float, end: float,
                 size: tuple[int, int] = WAVEFORM_SIZE) -> str:
    """A small SVG of a song's min/max envelope, the window *start*–*end* highlighted.

    Parameters
    ----------
    envelope : np.ndarray
        ``(columns, 2)`` minimum and maximum per column
        (:func:`helpers.labeling.pool.song_envelope`).
    duration : float
        The song's length in seconds (the envelope spans it).
    start, end : float
        The window to mark, in song seconds.
    size : (int, int)
        Width and height of the waveform in pixels; a time axis in m:ss goes below.

    Returns
    -------
    str
        ``<svg class='labeler-waveform'>`` with one ``<rect class='labeler-waveform-window'>``.
    """
    width, height = size
    duration = max(float(duration), 1e-9)
    peak = float(np.abs(envelope).max()) if envelope.size else 0.0
    scaled = envelope / peak if peak > 0 else np.zeros_like(envelope)  # silence: a flat line
    x = np.linspace(0, width, len(envelope)) if len(envelope) > 1 else np.array([0.0])
    middle = height / 2
    top = [f"{a:.1f},{middle - b * (middle - 1):.1f}" for a, b in zip(x, scaled[:, 1], strict=True)]
    bottom = [f"{a:.1f},{middle - b * (middle - 1):.1f}" for a, b in zip(x[::-1], scaled[::-1, 0], strict=True)]
    left = width * min(max(start, 0.0), duration) / duration
    right = width * min(max(end, start), duration) / duration
    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
                if duration / s <= 8)
    ticks = np.arange(0, duration + 1e-9, step) if np.isfinite(step) else np.array([0.0])
    labels = "".join(
        f"<text x='{width * t / duration:.1f}' y='{height + 11}' font-size='9' fill='#555' "
        f"text-anchor='{'start' if t == 0 else 'middle'}'>{_clock(t)}</text>" for t in ticks)
    return (f"<svg class='labeler-waveform' width='{width}' height='{height + 13}' "
            f"viewBox='0 0 {width} {height + 13}' xmlns='http://www.w3.org/2000/svg'>"
            f"<rect class='labeler-waveform-window' x='{left:.1f}' y='0' "
            f"width='{max(right - left, 1.0):.1f}' height='{height}' fill='#fdd0a2'>"
            f"<title>{_clock(start)}–{_clock(end)}</title></rect>"
            f"<polygon points='{' '.join(top + bottom)}' fill='#4c78a8' stroke='#4c78a8' "
            f"stroke-width='0.5'/>{labels}</svg>")


def _wrap() -> widgets.Layout:
    """A row that wraps rather than squeezing its buttons."""
    return widgets.Layout(flex_flow="row wrap", align_items="center")


def _clock(seconds: float) -> str:
    """Song time as m:ss."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def scripted_session(labeler: Labeler, genres_by_name: dict[str, str]) -> pd.DataFrame:
    """Label a pool by pressing the widget's own buttons, as a person would (for reports).

    Songs are answered from *genres_by_name* (file-name prefix -> genre): accept when the
    model's top genre is right, else press the genre's button. The session skips one song and
    comes back to it through the Skipped list; a song whose genre the model does not know is
    typed into the new-genre box (Enter), liked, both undone (the like, then the label) and
    labelled again with the new genre's own button; then the model is retrained.

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
        labeler.undo_button.click()  # a like is a decision: undo takes it back ...
        labeler.undo_button.click()  # ... then the label, and the song shows again ...
        labeler.buttons[truth(song_id)].click()  # ... and it is made again with its own button
    for _skipped in labeler.skipped():  # back to the skipped songs: the first is selected
        labeler.revisit_button.click()
        answer(labeler.current)
    for song_id in labeler.queue():
        answer(song_id)
    labeler.retrain_button.click()
    return session_log(labeler.store, labeler.songs)

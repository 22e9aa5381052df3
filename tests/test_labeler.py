"""The labeler widget, driven from Python: every click lands in the store; new genres round-trip."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import data
from helpers.errors import InputError
from helpers.labeling import session as session_module
from helpers.labeling import widget as labeler_module
from helpers.labeling.pool import pool_files
from helpers.labeling.session import LabelingSession
from helpers.labeling.widget import Labeler
from helpers.models import load_model, read_model_metadata
from helpers.store import LabelStore

SR = 22050
WINDOW = 3.0


def _tone(kind: str, seconds: float = 6.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(len(kind))
    if kind == "sine":
        return 0.3 * np.sin(2 * np.pi * 220 * t)
    if kind == "noise":
        return 0.1 * rng.standard_normal(t.size)
    if kind == "chirp":
        return 0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t)
    clicks = np.zeros(t.size)
    clicks[:: SR // 4] = 0.9  # 240 bpm clicks
    return clicks + 0.01 * rng.standard_normal(t.size)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    for kind in ("sine", "noise", "chirp", "clicks"):
        sf.write(folder / f"{kind}.wav", _tone(kind).astype(np.float32), SR)
    return folder


@pytest.fixture(scope="module")
def template_store(pool_dir, tmp_path_factory):
    """A store whose songs already have their window features (extracted once per module)."""
    path = tmp_path_factory.mktemp("template") / "labels.sqlite"
    lab = Labeler(pool_dir, store=path, window_seconds=WINDOW, audio=False, background=False)
    assert len(lab.songs) == 4
    lab.store.close()
    return path


@pytest.fixture
def store_path(template_store, tmp_path):
    path = tmp_path / "labels.sqlite"
    shutil.copy(template_store, path)
    return path


@pytest.fixture
def no_extraction(monkeypatch):
    """Fail if any feature is extracted (the store already holds them)."""
    def refuse(*args, **kwargs):
        raise AssertionError("features were extracted twice")

    monkeypatch.setattr("helpers.features.gtzan.extract_signal", refuse)


def test_pool_features_are_stored_once_and_reused(template_store, pool_dir, store_path, no_extraction):
    with LabelStore(store_path) as store:
        windows = store.windows()
        assert windows.groupby("song_id").size().tolist() == [2, 2, 2, 2]
        assert sorted(windows["start"].unique()) == [0.0, 3.0]
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW)
    assert lab.progress() == {"labelled": 0, "skipped": 0, "left": 4, "total": 4}


def test_every_click_is_written_to_the_store(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, who="ann", epsilon=0.0)
    store = lab.store
    # the player holds the most uncertain window as WAV
    start, end = lab.uncertain_window()
    audio, rate = sf.read(io.BytesIO(bytes(lab.player.value)))
    assert rate == SR and len(audio) == pytest.approx((end - start) * SR, abs=2)
    assert "most uncertain window" in lab.player_note.value
    top_genre, top_p = lab.top_genres()[0]
    assert top_genre in lab.bars.value and f"{top_p:.2f}" in lab.bars.value

    first = lab.current
    lab.accept_button.click()
    labels = store.current_labels()
    assert labels[["song_id", "genre", "model_said", "who", "where"]].values.tolist() == [
        [first, top_genre, top_genre, "ann", "widget"]]
    assert labels["event_id"].item() == store.events()["event_id"].max()
    assert store.events()["prediction_id"].notna().all()  # the shown prediction is linked
    assert lab.current != first

    second = lab.current
    lab.buttons["jazz"].click()
    assert store.current_labels().set_index("song_id").loc[second, "genre"] == "jazz"

    third = lab.current
    lab.skip_button.click()
    assert lab.skipped() == [third]
    assert "2 labelled · 1 skipped · 1 left" in lab.progress_line.value

    lab.like_button.click()
    liked = lab.current
    assert "Liked ✓" in lab.like_button.description and "♥ liked" in lab.header.value
    lab.dislike_button.click()
    assert store.preferences()[["song_id", "liked", "who"]].values.tolist() == [[liked, False, "ann"]]

    lab.undo_button.click()  # a dislike is a decision: undo restores the like before it
    assert lab.current == liked and lab.liked_state() is True
    lab.like_button.click()  # pressed again, a like toggles off
    assert lab.liked_state() is None and store.preferences().empty
    lab.undo_button.click()  # ... and that is undone too
    lab.undo_button.click()  # then the like itself
    assert lab.liked_state(liked) is None and "Like [l]" == lab.like_button.description

    lab.undo_button.click()  # undoes the skip: that song is current again and back in the queue
    assert lab.current == third and lab.skipped() == []
    assert lab.progress() == {"labelled": 2, "skipped": 0, "left": 2, "total": 4}
    lab.skip_button.click()

    lab.skipped_choice.value = third  # back to a skipped song
    lab.revisit_button.click()
    assert lab.current == third
    lab.new_genre.value = "  Field Recording "
    lab.add_genre_button.click()
    assert store.current_labels().set_index("song_id").loc[third, "genre"] == "field recording"
    assert "field recording" in lab.buttons  # the new genre has its own button now
    kinds = store.events()["kind"].tolist()
    assert kinds == ["label", "label", "skip", "undo", "skip", "label"]


def test_a_new_labeler_on_the_same_store_resumes_the_queue(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0)
    done = []
    for _ in range(2):
        done.append(lab.current)
        lab.accept_button.click()
    skipped = lab.current
    lab.skip_button.click()
    lab.store.close()  # the kernel restarts

    again = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0)
    assert again.progress() == {"labelled": 2, "skipped": 1, "left": 1, "total": 4}
    assert again.current not in done + [skipped]
    assert again.skipped() == [skipped]
    assert again.skipped_choice.value == skipped  # the dropdown shows its first song selected
    again.accept_button.click()
    # nothing unlabelled is left, so the skipped song is offered instead of "nothing left"
    assert again.current == skipped and "skipped</b> earlier" in again.header.value
    again.accept_button.click()
    assert again.current is None and "Nothing left to label" in again.header.value
    assert again.accept_button.disabled and again.revisit_button.disabled


def test_bad_clicks_show_a_message_and_store_nothing(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW)
    lab.new_genre.value = "   "
    lab.add_genre_button.click()
    assert "genre is empty" in lab.status.value
    lab.revisit_button.click()
    assert "no skipped song" in lab.status.value
    lab.save_button.click()
    assert "retrain first" in lab.status.value
    assert lab.store.events().empty


def test_retrain_button_shows_before_after_and_a_learning_curve(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW)
    lab.buttons["metal"].click()
    lab.buttons["metal"].click()
    lab.retrain_button.click()
    result = lab.retrain_history[-1]
    assert result.n_store == 4 and result.store_genres == {"metal": 4}
    text = lab.retrain_output.value
    assert "before" in text and "after" in text and "fault-filtered test split" in text
    assert f"{result.after['accuracy']:.3f}" in text and "95% CI" in text
    assert bytes(lab.curve_image.value)[:4] == b"\x89PNG"
    assert "<img" in lab.snapshot_html()
    # the new model's predictions are what the widget now shows and stores
    assert lab.store.predictions()["model_fingerprint"].nunique() == 2


def test_pool_problems_are_reported_not_fatal(pool_dir, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(pool_dir / "sine.wav", folder / "sine.wav")
    (folder / "broken.ogg").write_bytes(b"OggS" + b"\0" * 200)
    (folder / "notes.txt").write_text("not audio")
    assert [p.name for p in pool_files(folder)] == ["broken.ogg", "sine.wav"]
    lab = Labeler(folder, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False,
                  background=False)
    assert list(lab.songs) == [lab.store.song_id(folder / "sine.wav")]
    assert len(lab.problems) == 1 and "broken.ogg" in lab.problems[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no audio files"):
        pool_files(empty)
    with pytest.raises(InputError, match="no such file or folder"):
        pool_files(tmp_path / "absent")


def test_the_store_itself_can_be_the_pool(store_path, no_extraction):
    with LabelStore(store_path) as store:
        lab = Labeler(store, window_seconds=WINDOW, audio=False)
        assert len(lab.songs) == 4 and lab.store is store


@pytest.mark.slow
def test_new_genre_round_trip_on_the_shipped_electronic_song(root, tmp_path, monkeypatch):
    song = root / "data" / "music" / "singularity_coherence.ogg"
    calls = []
    real = session_module.prepare_song
    monkeypatch.setattr(session_module, "prepare_song",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    lab = Labeler([song], store=tmp_path / "labels.sqlite", window_seconds=30.0, max_windows=2,
                  background=False)
    assert "electronic" not in lab.model.classes_
    assert bytes(lab.player.value)[:4] == b"RIFF"
    lab.new_genre.value = "electronic"
    lab.add_genre_button.click()
    assert lab.store.current_labels()["genre"].tolist() == ["electronic"]
    lab.retrain_button.click()
    result = lab.retrain_history[-1]
    assert result.new_genres == ["electronic"]
    assert "electronic" in lab.model.classes_
    windows = lab.songs[lab.store.song_id(song)].windows
    assert len(windows) == 2
    assert set(lab.model.predict(windows[list(lab.model.feature_names_in_)])) == {"electronic"}
    assert "New genres: <b>electronic</b>" in lab.retrain_output.value
    song_row = lab.songs[lab.store.song_id(song)]  # the file's tags, not its name
    assert (song_row.title, song_row.artist) == ("Coherence", "Maxstack")
    lab.show_song(lab.store.song_id(song))
    assert "Maxstack" in lab.header.value and "Endgame" in lab.header.value
    assert lab.store.songs()["artist"].tolist() == ["Maxstack"]  # the artist retrain groups by
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path / "data"))
    named = lab.save_model()  # named after the store and dated: sessions never replace each other
    assert named.name.startswith("labels-") and lab.saved_models() == [named]
    with pytest.raises(InputError, match="exists already"):
        lab.save_model(named)
    monkeypatch.setattr(lab, "model_path", lambda name=None: named)  # a second save that second
    lab.save_button.click()
    assert "press Save model again to replace it" in lab.status.value and not lab.saved_note.value
    lab.save_button.click()
    assert "Saved models of this store" in lab.saved_note.value and named.name in lab.saved_note.value
    saved = lab.save_model(tmp_path / "retrained.skops")
    loaded = load_model(saved, expected_genres=list(lab.model.classes_))
    assert "electronic" in loaded.classes_
    assert read_model_metadata(saved)["metrics"]["held_out_split"] == "fault-filtered test"
    from helpers.models import describe_model  # predict --model names it with its held-out figure
    assert describe_model(loaded).startswith(f"{lab.fit_info.name} + labels: "
                                             f"{lab.retrain_history[-1].after['accuracy']:.3f}")
    lab.store.close()
    # after a restart the model is fitted with the stored label and knows the genre at once
    again = Labeler([song], store=tmp_path / "labels.sqlite", window_seconds=30.0, max_windows=2)
    assert "electronic" in again.model.classes_ and "electronic" in again.buttons
    assert again.top_genres(again.store.song_id(song))[0][0] == "electronic"
    assert len(calls) == 1  # the restarted labeler extracts nothing


def test_silent_and_short_windows_are_not_used(tmp_path):
    tone = _tone("sine", 3.0)
    signal = np.concatenate([tone, np.zeros(3 * SR), tone[: SR // 2]]).astype(np.float32)
    sf.write(tmp_path / "gaps.wav", signal, SR)
    with LabelStore(tmp_path / "s.sqlite") as store:
        song = store.add_song(tmp_path / "gaps.wav", duration=6.5)
        # the labeler's own path: prepare_song extracts, Labeler._join stores and reads back
        lab = Labeler([tmp_path / "gaps.wav"], store=store, window_seconds=WINDOW, audio=False,
                      background=False)
        windows = lab.songs[song].windows
        assert windows[["start", "end"]].values.tolist() == [[0.0, 3.0]]
        assert len(store.windows(song)) == 1


# --------------------------------------------------------------------------- state cases (issue 11)
def test_a_click_reads_the_queue_states_once(pool_dir, store_path, no_extraction, monkeypatch):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    reads, song_states = [], lab.store.song_states
    monkeypatch.setattr(lab.store, "song_states", lambda: reads.append(1) or song_states())
    for button in (lab.accept_button, lab.skip_button, lab.undo_button, lab.undo_button):
        reads.clear()
        button.click()
        assert len(reads) == 1, button.description  # one read shared by the whole render
    assert lab.progress() == {"labelled": 0, "skipped": 0, "left": 4, "total": 4}


def test_skip_then_undo_puts_the_song_back_in_the_queue_and_says_so(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    song = lab.current
    lab.skip_button.click()
    assert lab.skipped() == [song] and lab.skipped_choice.value == song
    lab.undo_button.click()
    assert lab.current == song and lab.skipped() == []
    assert "Undone: skip for" in lab.status.value and "back in the queue" in lab.status.value


def test_undoing_the_label_of_a_skipped_song_skips_it_again_and_a_restart_offers_it(
        pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    song = lab.current
    lab.skip_button.click()
    lab.skipped_choice.value = song
    lab.revisit_button.click()
    lab.buttons["jazz"].click()
    lab.undo_button.click()
    assert lab.current == song and lab.skipped() == [song]
    assert "skipped again" in lab.status.value
    lab.store.close()  # the kernel restarts

    again = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    assert again.skipped() == [song] and again.skipped_choice.value == song
    again.revisit_button.click()  # works without touching the dropdown
    assert again.current == song
    for _ in range(3):  # label every other song: then the skipped one is offered
        again.next_song()
        if again.current == song:
            break
        again.accept_button.click()
    assert again.current == song and "Nothing left" not in again.header.value


def test_after_retrain_and_undo_the_song_is_shown_by_a_model_that_did_not_learn_the_label(
        pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    song = lab.current
    lab.new_genre.value = "zydeco"
    lab.add_genre_button.click()
    lab.retrain_button.click()
    assert "zydeco" in lab.model.classes_
    lab.undo_button.click()
    assert lab.current == song
    assert "zydeco" not in lab.model.classes_  # refitted without the undone label
    assert "zydeco" not in dict(lab.top_genres())
    assert "refitted without it" in lab.status.value
    assert "Refitted without the undone label" in lab.model_line.value
    with pytest.raises(InputError, match="retrain first"):
        lab.save_model()


def test_one_prediction_row_per_song_and_model(pool_dir, store_path, no_extraction):
    for _ in range(2):
        lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
        for song in list(lab.songs):
            lab.show_song(song)
        lab.store.close()
    with LabelStore(store_path) as store:
        predictions = store.predictions()
    assert not predictions.duplicated(["song_id", "model_fingerprint"]).any()
    assert len(predictions) == 4


def test_shortcuts_press_the_same_buttons(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    assert lab.shortcuts["a"] is lab.accept_button and lab.shortcuts["s"] is lab.skip_button
    assert lab.shortcuts["u"] is lab.undo_button and lab.shortcuts["l"] is lab.like_button
    assert lab.shortcuts["d"] is lab.dislike_button and lab.shortcuts["b"] is lab.revisit_button
    first_genre = next(iter(lab.buttons))
    assert lab.shortcuts["1"] is lab.buttons[first_genre]
    # every shortcut is shown on its button
    assert all(f"[{key}]" in button.description for key, button in lab.shortcuts.items())
    top = lab.top_genres(k=1)[0][0]
    assert lab.accept_button.description == f"Accept {top} [a]"  # Accept names the genre

    song = lab.current
    lab._on_key({"type": "keydown", "key": "a"})
    assert lab.store.current_labels().set_index("song_id").loc[song, "genre"] == top
    assert lab.status.value.startswith(f"Recorded: {top} for ")
    lab._on_key({"type": "keydown", "key": "s", "ctrlKey": True})  # Ctrl+S is not a shortcut
    assert lab.skipped() == []
    song = lab.current
    lab._on_key({"type": "keydown", "key": "1"})
    assert lab.store.current_labels().set_index("song_id").loc[song, "genre"] == first_genre
    lab._on_key({"type": "keydown", "key": "u"})
    assert lab.current == song and "Undone: label" in lab.status.value
    lab._on_key({"type": "keydown", "key": "S"})
    assert lab.skipped() == [song]
    lab._on_key({"type": "keydown", "key": "l"})
    assert lab.store.preferences()["liked"].tolist() == [True] and "Liked" in lab.status.value
    assert lab.press("x") is None


def test_enter_in_the_new_genre_box_labels(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)
    song = lab.current
    lab.new_genre.value = "Zydeco"
    # what the browser sends when Enter is pressed in the box
    lab.new_genre._handle_string_msg(None, {"event": "submit"}, [])
    assert lab.store.current_labels().set_index("song_id").loc[song, "genre"] == "zydeco"
    assert lab.new_genre.value == "" and "zydeco" in lab.buttons
    assert "Recorded: zydeco for" in lab.status.value


def test_curve_is_hidden_before_the_first_retrain_and_drawn_at_twice_its_size(
        pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)
    assert lab.curve_image.layout.display == "none"
    lab.buttons["metal"].click()
    lab.retrain_button.click()
    assert lab.curve_image.layout.display != "none"
    png = bytes(lab.curve_image.value)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    css_width, css_height = labeler_module.CURVE_SIZE
    assert lab.curve_image.layout.width == f"{css_width}px"
    assert (width, height) == (2 * css_width, 2 * css_height)


def test_every_store_error_shows_in_the_status_line(pool_dir, store_path, no_extraction, monkeypatch):
    from helpers.errors import StoreFullError

    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)

    def full(*args, **kwargs):
        raise StoreFullError(store_path, "the disk is full; free some space")

    monkeypatch.setattr(lab.store, "record_skip", full)
    lab.skip_button.click()
    assert "the disk is full" in lab.status.value
    monkeypatch.setattr(lab.store, "record_preference", lambda *a, **k: 1 / 0)
    lab.like_button.click()
    assert "Something went wrong; nothing was stored" in lab.status.value
    assert "ZeroDivisionError" not in lab.status.value  # the class goes to the log, not the page


def test_a_read_only_store_opens_for_looking(pool_dir, store_path, no_extraction, monkeypatch):
    with LabelStore(store_path) as store:
        monkeypatch.setattr(store, "read_only", True, raising=False)
        before = len(store.predictions())
        lab = Labeler(pool_dir, store=store, window_seconds=WINDOW, audio=False)
        assert lab.read_only and "nothing you do can be saved" in lab.read_only_note.value
        assert lab.current is not None and lab.accept_button.disabled
        assert lab.undo_button.disabled and lab.retrain_button.disabled
        assert len(store.predictions()) == before  # looking writes nothing


def test_model_line_names_the_model_and_its_held_out_accuracy(pool_dir, store_path, no_extraction,
                                                             monkeypatch):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)
    accuracy = lab.held_out_accuracy()
    assert f"{accuracy['accuracy']:.3f}" in lab.model_line.value
    assert "fault-filtered test split" in lab.model_line.value and f"n={accuracy['n']}" in lab.model_line.value
    assert lab.fit_info.name in lab.model_line.value  # the recipe is named
    # a model passed in is named by helpers.models.card.describe_model (the models face hands it on)
    from helpers.models import card as model_card
    monkeypatch.setattr(model_card, "describe_model", lambda model: "KNN described")
    lab.fit_info = None  # as for a model from elsewhere (Labeler._set_model)
    assert lab.model_name() == "KNN described"


# --------------------------------------------------------------------------- default model (issue 13)
def test_the_labeler_predicts_with_the_selected_default_recipe(pool_dir, store_path, no_extraction):
    from helpers.models import get_candidate, selection_result

    selection, _ = selection_result()
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)
    assert lab.estimator is None and lab.recipe == selection.chosen == lab.fit_info.name
    assert lab.fit_info.calibration_folds == 5 and lab.fit_info.note == ""
    line = lab.model_line.value
    assert selection.chosen in line and get_candidate(selection.chosen).description in line
    # with no labels yet, it is the model behind the default model card's test figure
    accuracy = lab.held_out_accuracy()
    assert accuracy["accuracy"] == pytest.approx(selection.row()["test_accuracy"], abs=1e-4)
    assert accuracy["n"] == selection.row()["n_test"] and "n=290" in line


def test_a_new_genre_with_one_or_two_songs_is_learnt_and_the_note_says_how(pool_dir, store_path,
                                                                           no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False, epsilon=0.0)
    lab.new_genre.value = "zydeco"
    lab.add_genre_button.click()
    lab.retrain_button.click()
    assert "zydeco" in lab.model.classes_ and "Unexpected" not in lab.status.value
    # too few songs to calibrate on: the genre trains in every calibration fold, and it is said
    assert len(lab.fit_info.calibration_folds) == 5
    assert "Temperature fitted" in lab.model_line.value and "zydeco (1)" in lab.model_line.value
    assert "zydeco (1)" in lab.retrain_output.value
    lab.buttons["zydeco"].click()  # a second song of the genre
    lab.retrain_button.click()
    assert "Unexpected" not in lab.status.value and "zydeco (2)" in lab.model_line.value
    lab.store.close()
    again = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)  # restart
    assert "zydeco" in again.model.classes_ and "zydeco (2)" in again.model_line.value


def test_a_custom_estimator_still_works(pool_dir, store_path, no_extraction):
    from helpers.models import make_knn

    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False,
                  estimator=make_knn())
    assert lab.recipe is None and lab.fit_info.name == "KNeighborsClassifier"
    assert "KNeighborsClassifier" in lab.model_line.value
    lab.buttons["metal"].click()
    lab.retrain_button.click()
    result = lab.retrain_history[-1]
    assert result.fit.name == "KNeighborsClassifier" and result.fit.calibration_folds is None
    assert type(lab.model.steps[-1][1]).__name__ == "KNeighborsClassifier"


def test_held_out_accuracy_comes_from_a_model_that_never_saw_a_test_clip(
        pool_dir, store_path, no_extraction, monkeypatch):
    from helpers.data import load_gtzan_table
    from helpers.features import FEATURE_COLUMNS
    from helpers.labeling import retrain as retraining

    _, held_out = data.held_out_split()
    clip = held_out.iloc[0]
    with LabelStore(store_path) as store:  # a held-out clip the person labelled
        song = store.add_song(f"https://example.org/gtzan/{clip['filename']}", title="held out")
        store.add_window(song, 0.0, 30.0, {c: clip[c] for c in FEATURE_COLUMNS})
        store.record_label(song, clip["label"], where="notebook")
    fitted_on = []
    real = retraining.fit_rows

    def spy(base, extra=None, **kwargs):
        fitted_on.append(pd.concat([base, extra]))
        return real(base, extra, **kwargs)

    monkeypatch.setattr(retraining, "fit_rows", spy)
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False)
    lab.buttons["metal"].click()
    lab.retrain_button.click()
    lab.held_out_accuracy()
    test_files = set(held_out["filename"])
    assert fitted_on and all(not rows["filename"].isin(test_files).any() for rows in fitted_on)
    assert len(held_out) == lab.held_out_accuracy()["n"] == 290
    assert len(load_gtzan_table()) - len(held_out) > lab.fit_info.n_base  # train part only


def test_a_model_with_a_card_shows_the_card_figure_not_a_score_on_clips_it_saw(
        pool_dir, store_path, no_extraction):
    from helpers.models import make_knn

    base, _ = data.held_out_split()
    model = make_knn().fit(base[list(session_module.MODEL_FEATURES)], base["label"])
    model.model_card_ = {"name": "carded", "test_accuracy": 0.5, "test_ci95": [0.4, 0.6],
                         "test_split": "fault-filtered", "n_test": 290}
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, audio=False, model=model)
    assert lab.held_out_accuracy()["accuracy"] == 0.5
    assert "from its model card" in lab.model_line.value and "0.500" in lab.model_line.value


# --------------------------------------------------------------------------- background extraction
def _gate_extraction(monkeypatch, passes: int):
    """Let the first *passes* calls of ``prepare_song`` through; hold the rest until the gate opens.

    Returns the gate (a ``threading.Event``) and the list of file names asked for, in order.
    """
    import threading

    gate, calls = threading.Event(), []
    real = session_module.prepare_song

    def gated(path, *args, **kwargs):
        calls.append(path.name)
        if len(calls) > passes:
            gate.wait(60)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(session_module, "prepare_song", gated)
    return gate, calls


def test_first_song_is_labelable_while_the_rest_are_extracted(pool_dir, tmp_path, monkeypatch):
    import time

    # the first song's one-window preview passes, the rest wait
    gate, extracted = _gate_extraction(monkeypatch, passes=1)
    lab = Labeler(pool_dir, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False,
                  workers=1, epsilon=0.0)
    deadline = time.monotonic() + 60
    while lab.current is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lab.songs) == 1 and lab.extracting
    assert lab.extraction_bar.layout.display != "none" and lab.extraction_bar.max == 4
    assert "of 4 new songs extracted" in lab.extraction_note.value
    lab.accept_button.click()  # the only ready song is labelled: wait for the next
    assert lab.current is None and "Preparing songs" in lab.header.value
    gate.set()
    lab.wait(60)
    assert len(lab.songs) == 4 and lab.current is not None  # the others joined the queue
    assert lab.extraction_bar.value == 4 and "All 4 new songs extracted" in lab.extraction_note.value
    # each song once; the first twice: a one-window preview, then its other windows
    names = sorted(p.name for p in pool_dir.iterdir())
    assert sorted(set(extracted)) == names and len(extracted) == len(names) + 1
    assert extracted[0] == extracted[1]
    assert len(lab.songs[lab.store.song_id(pool_dir / extracted[0])].windows) == 2
    lab.store.close()
    # stored features are never extracted again
    extracted.clear()
    again = Labeler(pool_dir, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False)
    assert extracted == [] and len(again.songs) == 4 and not again.extracting


def test_the_first_song_is_hashed_and_probed_once_for_its_preview_and_its_rest(
        pool_dir, tmp_path, monkeypatch):
    from helpers.labeling import pool as pool_module  # prepare_song hashes and probes there

    hashed, probed = [], []
    real_hash, real_duration = pool_module.file_sha256, pool_module._song_duration
    monkeypatch.setattr(pool_module, "file_sha256",
                        lambda path: hashed.append(path.name) or real_hash(path))
    monkeypatch.setattr(pool_module, "_song_duration",
                        lambda path: probed.append(path.name) or real_duration(path))
    lab = Labeler(pool_dir, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False,
                  workers=1)
    lab.wait(60)
    names = sorted(p.name for p in pool_dir.iterdir())
    assert len(lab.songs) == 4 and all(len(song.windows) == 2 for song in lab.songs.values())
    assert sorted(hashed) == names and sorted(probed) == names  # the preview's are reused
    with LabelStore(tmp_path / "s.sqlite") as store:
        songs = store.songs().set_index("filename")
        for name in names:
            assert songs.loc[name, "content_hash"] == real_hash(pool_dir / name)
            assert songs.loc[name, "duration"] == pytest.approx(real_duration(pool_dir / name))


def test_worker_processes_extract_the_same_windows(pool_dir, template_store, tmp_path):
    lab = Labeler(pool_dir, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False,
                  workers=2, background=False)
    with LabelStore(template_store) as reference:
        expected = reference.windows().drop(columns=["window_id", "song_id"])
    got = lab.store.windows().drop(columns=["window_id", "song_id"])
    assert len(lab.songs) == 4 and len(got) == len(expected)
    np.testing.assert_allclose(got.sort_values(["start", "length", "tempo"]).to_numpy(),
                               expected.sort_values(["start", "length", "tempo"]).to_numpy(), rtol=1e-6)


def test_a_skipped_song_waits_while_new_songs_are_extracted(pool_dir, tmp_path, monkeypatch):
    import time

    # the first song (preview and rest) passes, the others wait
    gate, calls = _gate_extraction(monkeypatch, passes=2)
    lab = Labeler(pool_dir, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False, workers=1)
    deadline = time.monotonic() + 60
    while lab.current is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first = lab.current
    lab.skip_button.click()
    assert lab.current is None and "Preparing songs" in lab.header.value  # not offered again yet
    gate.set()
    lab.wait(60)
    assert lab.current not in (None, first)
    for _ in range(3):
        lab.accept_button.click()
    assert lab.current == first  # now that every song is in, the skipped one comes back


def test_a_song_that_fails_in_the_background_is_named_in_the_widget(pool_dir, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(pool_dir / "sine.wav", folder / "sine.wav")
    (folder / "zz_broken.ogg").write_bytes(b"OggS" + b"\0" * 200)
    lab = Labeler(folder, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False, workers=1)
    lab.wait(60)
    assert len(lab.songs) == 1 and len(lab.problems) == 1
    assert "1 could not be used" in lab.extraction_note.value and "zz_broken.ogg" in lab.extraction_note.value


def test_a_labelling_session_works_without_widgets(pool_dir, store_path, no_extraction):
    """The session the web page and the widget share: label, skip and undo with no ipywidgets."""
    import subprocess
    import sys

    from helpers.labeling.session import LabelingSession, session_log

    session = LabelingSession(pool_dir, store=store_path, window_seconds=WINDOW, background=False,
                              who="tester")
    first = session.current
    said = session.top_genres(first, k=1)[0][0]
    session.label("metal")
    assert session.current != first
    log = session_log(session.store, [first])
    assert log["genre"].tolist() == ["metal"] and log["model_said"].tolist() == [said]
    assert session.undo() is not None and session.current == first
    code = "import sys, helpers.labeling.session; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_keys_stay_put_when_a_genre_is_added_and_after_a_restart(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    before = lab.key_map()
    assert list(before) == sorted(before)[:len(before)] and before["blues"] == "1"
    lab.new_genre.value = "Electronic"
    lab.add_genre_button.click()
    song = lab.current
    after = lab.key_map()
    assert {g: after[g] for g in before} == before  # every old key labels the same genre
    assert after["electronic"] == "g1"  # the eleventh: the prefix key, then 1
    assert "[g1]" in lab.buttons["electronic"].description
    lab.press("g")
    lab.press("1")
    assert lab.store.current_labels().set_index("song_id").loc[song, "genre"] == "electronic"
    lab.undo_button.click()
    lab.undo_button.click()  # no label of the typed genre left: its key stays all the same
    assert lab.key_map() == after
    lab.store.close()
    again = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    assert again.key_map() == after  # the map is the store's
    assert [b.description.split(" [")[0] for b in again.genre_buttons.children] == list(after)


def test_an_answer_for_a_song_no_longer_on_screen_is_refused(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    first = lab.current
    lab.press("1", song_id=first, at=10.0)
    second = lab.current
    assert second != first
    # "s" 20 ms later: inside the debounce, and meant for the first song: neither applies
    assert lab.press("s", song_id=first, at=10.02) is None
    assert lab.press("1", song_id=second, at=10.2) is None  # a double-tapped number
    assert lab.press("s", song_id=first, at=11.0) is not None  # later, still for the old song
    assert "refused: the song on screen is now" in lab.status.value
    events = lab.store.events()
    assert events["kind"].tolist() == ["label"] and events["song_id"].tolist() == [first]
    assert lab.current == second
    lab._on_key({"type": "keydown", "key": "s", "timeStamp": 12500.0,
                 "target": {"className": f"widget-vbox labeler-keys labeler-song-{second}"}})
    assert lab.store.events()["kind"].tolist() == ["label", "skip"] and lab.skipped() == [second]
    assert f"labeler-song-{lab.current}" in lab.keyboard_area._dom_classes
    # a double click from the page: the second click is a repeat, not an answer for the next song
    third = lab.current
    for _ in range(2):
        lab.buttons["jazz"]._handle_button_msg(None, {"event": "click"}, [])
    labelled = lab.store.current_labels().set_index("song_id")["genre"]
    assert labelled.get(third) == "jazz" and lab.current not in labelled.index


def test_review_list_relabels_any_earlier_song_and_keeps_the_old_label(pool_dir, store_path,
                                                                       no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    order = []
    for genre in ("jazz", "rock", "jazz"):
        order.append(lab.current)
        lab.buttons[genre].click()
    review = lab.review()
    assert review["song_id"].tolist() == order[::-1] and review["this_session"].all()
    assert set(review.columns) >= {"title", "genre", "labelled_utc", "model_said"}
    assert lab.review("jazz")["song_id"].tolist() == [order[2], order[0]]
    lab.review_genre.value = "rock"
    assert [v for _, v in lab.review_choice.options] == [order[1]]
    lab.review_genre.value = ""
    lab.review_choice.value = order[0]
    lab.press("o")
    assert lab.current == order[0] and "Reopened" in lab.status.value
    lab.buttons["blues"].click()
    assert "was jazz" in lab.status.value
    history = lab.store.events(order[0])
    assert history["genre"].tolist() == ["jazz", "blues"] and not history["undone"].any()
    assert lab.store.current_labels().set_index("song_id").loc[order[0], "genre"] == "blues"
    assert lab.progress()["labelled"] == 3  # songs, not events or windows
    lab.press("p")  # previous song: the one just relabelled
    assert lab.current == order[0]


def test_excluded_labels_are_named_with_their_reason(tmp_path, shipped_songs):
    from helpers.labeling import retrain as retraining

    held_out = data.held_out_split()[1]["filename"].iloc[0]
    clip = tmp_path / held_out
    shutil.copy(shipped_songs[0], clip)
    with LabelStore(tmp_path / "labels.sqlite") as store:
        store.record_label(store.add_song(clip), "blues")
        excluded = retraining.excluded_labels(store)
    assert excluded[["genre", "reason"]].values.tolist() == [["blues", retraining.HELD_OUT_REASON]]


def test_au_files_join_the_pool_and_copies_are_known_by_content(pool_dir, store_path, tmp_path,
                                                                no_extraction):
    from helpers.audio.decode import ffmpeg_executable, probe_tags

    au = tmp_path / "au" / "tone.au"
    au.parent.mkdir()
    sf.write(au, _tone("sine").astype(np.float32), SR, format="AU")
    assert pool_files(au.parent) == [au]
    copies = tmp_path / "copies"
    shutil.copytree(pool_dir, copies)  # the same audio in another folder: nothing extracted
    lab = Labeler(copies, store=store_path, window_seconds=WINDOW, audio=False)
    assert len(lab.songs) == 4 and len(lab.store.songs()) == 4
    tagged = tmp_path / "tagged.flac"
    with sf.SoundFile(tagged, "w", SR, 1, format="FLAC") as handle:
        handle.title, handle.artist, handle.album = "A Title", "An Artist", "An Album"
        handle.write(_tone("sine").astype(np.float32))
    assert probe_tags(tagged) == {"title": "A Title", "artist": "An Artist", "album": "An Album"}
    m4a = tmp_path / "tagged.m4a"  # libsndfile cannot read it: ffmpeg's probe gives its tags
    subprocess.run([ffmpeg_executable(), "-v", "error", "-i", str(tagged), "-metadata", "title=Mp3 Title",
                    "-metadata", "artist=Mp3 Artist", "-metadata", "genre=Synthpop", str(m4a)],
                   check=True, timeout=60)
    assert probe_tags(m4a) == {"title": "Mp3 Title", "artist": "Mp3 Artist", "album": "An Album",
                               "genre": "Synthpop"}


def test_retrain_is_refused_while_running_and_a_stale_panel_says_so(pool_dir, store_path,
                                                                    no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False)
    lab.buttons["jazz"].click()
    lab._retraining = True  # as while a retrain runs in another thread
    with pytest.raises(InputError, match="already running"):
        lab.retrain()
    lab._retraining = False
    lab.retrain_button.click()
    assert not lab.retrain_button.disabled and not lab.retrain_stale
    assert "1 labelled songs (jazz: 1 song (2 windows))" in lab.retrain_output.value
    lab.undo_button.click()  # the refit without the label makes the panel stale
    assert lab.retrain_stale and "Stale" in lab.retrain_output.value and lab.save_button.disabled


def test_refit_every_n_labels_is_off_by_default(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0, audio=False,
                  refit_every=2)
    model = lab.model
    lab.buttons["jazz"].click()
    assert lab.model is model
    lab.buttons["jazz"].click()
    assert lab.model is not model and "refitted" in lab.status.value
    assert LabelingSession.__init__.__kwdefaults__["refit_every"] is None


def test_listening_keys_play_stop_and_step_through_the_windows(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0)
    index, start, _ = lab.listen_window()
    assert not lab.player.autoplay and "press k to play" in lab.player_note.value  # nothing plays yet
    assert f"the player's 0:00 is 0:0{int(start)}" in lab.player_note.value
    assert f"data-window-start='{start:.3f}'" in lab.player_note.value  # the page's song clock
    lab.press("k")
    assert lab.player.autoplay and "loaded to play" in lab.player_note.value
    assert "Playing" not in lab.player_note.value  # only the page knows whether it plays
    loaded = lab.player.value
    lab.press("l")  # a like keeps the song playing: the player is not reloaded
    assert lab.player.value is loaded and lab.player.autoplay
    other = 1 - index  # two windows per song
    lab.press("." if other > index else ",")
    assert lab.listen_window()[0] == other and lab.player.autoplay  # the next window plays on
    audio, _ = sf.read(io.BytesIO(bytes(lab.player.value)))
    assert len(audio) == pytest.approx(WINDOW * SR, abs=2)
    assert "background:#e45756" in lab.timeline.value
    lab.press("k")
    assert not lab.player.autoplay and "press k to play" in lab.player_note.value
    assert lab.play_state.value == ""  # the kernel never writes the page's play state
    lab.autoplay.value = True
    lab.press("s")
    assert lab.player.autoplay  # autoplay: the next song starts playing


def test_make_label_works_on_a_copy_so_the_tracked_notebook_never_changes(root, tmp_path,
                                                                          monkeypatch):
    import nbformat

    from helpers.labeling.launch import INTERACTIVE_ENV, interactive_requested, working_copy

    tracked = root / "notebooks" / "05_active_learning_labeler.ipynb"
    before = tracked.read_bytes()
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path / "data"))
    copy = working_copy()
    assert copy.parent == tmp_path / "data" / "user" / "notebooks" and copy.read_bytes() == before
    notebook = nbformat.read(copy, as_version=4)  # what a session and its autosave write
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="labelled\n")]
    nbformat.write(notebook, copy)
    assert working_copy() == copy and copy.read_bytes() != before  # the person's copy is kept
    assert tracked.read_bytes() == before
    # the notebook reads the launch's variable right after its parameters
    cells = nbformat.read(tracked, as_version=4).cells
    assert "interactive = interactive_requested(interactive)" in cells[2].source
    monkeypatch.delenv(INTERACTIVE_ENV, raising=False)
    assert interactive_requested(False) is False
    monkeypatch.setenv(INTERACTIVE_ENV, "1")
    assert interactive_requested(False) is True
    assert "MUSIC_STUDY_INTERACTIVE=1" in (root / "Makefile").read_text()


def test_song_envelope_spans_the_song_in_min_max_columns(tmp_path):
    from helpers.labeling.pool import ENVELOPE_RATE, song_envelope

    t = np.arange(int(4.0 * SR)) / SR
    signal = 0.5 * np.sin(2 * np.pi * 220 * t) * (t < 2.0)  # loud half, then silence
    sf.write(tmp_path / "half.wav", signal.astype(np.float32), SR)
    envelope, duration = song_envelope(tmp_path / "half.wav", points=40)
    assert envelope.shape == (40, 2) and duration == pytest.approx(4.0, abs=2 / ENVELOPE_RATE)
    assert (envelope[:, 0] <= envelope[:, 1]).all()
    assert envelope[:19, 1].min() > 0.3 and envelope[:19, 0].max() < -0.3  # the tone
    assert np.abs(envelope[21:]).max() < 0.01  # the silence after it


def test_waveform_marks_the_window_on_a_song_time_axis_and_draws_silence_flat():
    envelope = np.column_stack([-np.linspace(0, 1, 100), np.linspace(0, 1, 100)])
    svg = labeler_module.waveform_svg(envelope, 90.0, 30.0, 60.0, size=(300, 40))
    assert "class='labeler-waveform-window' x='100.0' y='0' width='100.0'" in svg
    assert ">0:00<" in svg and ">1:00<" in svg and "<title>0:30–1:00</title>" in svg
    silent = labeler_module.waveform_svg(np.zeros((50, 2)), 10.0, 0.0, 3.0, size=(300, 40))
    points = silent.split("points='")[1].split("'")[0].split()
    assert {p.split(",")[1] for p in points} == {"20.0"}  # a flat line through the middle
    assert "nan" not in silent


def test_the_waveform_is_decoded_once_per_song(pool_dir, store_path, no_extraction, monkeypatch):
    from helpers.labeling.pool import song_envelope

    calls = []

    def counted(path, *args, **kwargs):
        calls.append(path)
        return song_envelope(path, *args, **kwargs)

    monkeypatch.setattr(labeler_module, "song_envelope", counted)
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW, epsilon=0.0)
    assert "labeler-waveform-window" in lab.timeline.value and len(calls) == 1
    lab.press("." if lab.listen_window()[0] == 0 else ",")  # another window of the same song
    assert len(calls) == 1 and "labeler-waveform-window" in lab.timeline.value

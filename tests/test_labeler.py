"""The labeler widget, driven from Python: every click lands in the store; new genres round-trip."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import soundfile as sf

from helpers import labeler as labeler_module
from helpers.errors import InputError
from helpers.labeler import Labeler, pool_files
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
    lab = Labeler(pool_dir, store=path, window_seconds=WINDOW, audio=False)
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

    monkeypatch.setattr("helpers.features.extract_signal", refuse)


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
    lab.dislike_button.click()
    assert store.preferences()[["song_id", "liked", "who"]].values.tolist() == [[liked, False, "ann"]]

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
    again.accept_button.click()
    assert again.current is None and "Nothing left to label" in again.header.value
    assert again.accept_button.disabled and not again.revisit_button.disabled
    assert again.skipped_choice.options[0][1] == skipped


def test_bad_clicks_show_a_message_and_store_nothing(pool_dir, store_path, no_extraction):
    lab = Labeler(pool_dir, store=store_path, window_seconds=WINDOW)
    lab.new_genre.value = "   "
    lab.add_genre_button.click()
    assert "genre is empty" in lab.status.value
    lab.revisit_button.click()
    assert "no skipped song" in lab.status.value
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
    lab = Labeler(folder, store=tmp_path / "s.sqlite", window_seconds=WINDOW, audio=False)
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
    real = labeler_module.song_window_features
    monkeypatch.setattr(labeler_module, "song_window_features",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    lab = Labeler([song], store=tmp_path / "labels.sqlite", window_seconds=30.0, max_windows=2)
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
    lab.store.close()
    # after a restart the model is fitted with the stored label and knows the genre at once
    again = Labeler([song], store=tmp_path / "labels.sqlite", window_seconds=30.0, max_windows=2)
    assert "electronic" in again.model.classes_ and "electronic" in again.buttons
    assert again.top_genres(again.store.song_id(song))[0][0] == "electronic"
    assert len(calls) == 2

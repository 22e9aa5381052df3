"""helpers.web: the Flask page (test client) and one real browser run (Playwright + Chromium)."""

from __future__ import annotations

import io
import os
import re
import threading

import numpy as np
import pytest
import soundfile as sf
from conftest import serve_directory

from helpers.store import LabelStore
from helpers.web import create_app

SR = 22050
CHROMIUM = "/usr/bin/chromium"


def _wav_bytes(seconds=12.0, freq=330.0):
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, y.astype(np.float32), SR, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    from helpers.models import default_model

    return default_model()


@pytest.fixture()
def app(tmp_path, model):
    app = create_app(store_path=tmp_path / "labels.sqlite", model=model,
                     upload_dir=tmp_path / "uploads", max_upload_bytes=2 * 2**20,
                     window_seconds=6.0)
    app.config["TESTING"] = True
    return app


def _upload(client, data, name="my song.wav"):
    return client.post("/predict", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _hidden(page, name):
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def test_upload_predict_then_confirm_is_stored(app, tmp_path):
    client = app.test_client()
    assert "Predict the genre" in client.get("/").get_data(as_text=True)
    response = _upload(client, _wav_bytes())
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    model_said = _hidden(page, "model_said")
    assert f'id="predicted-genre">{model_said}<' in page
    assert 'id="genre-bars"' in page and page.count("<tr class=") == 2  # 12 s / 6-s windows
    saved = list((tmp_path / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.endswith("_my_song.wav")

    store = LabelStore(tmp_path / "labels.sqlite")
    predictions = store.predictions()
    assert len(predictions) == 1 and predictions["where"].iloc[0] == "web"

    response = client.post("/label", data={
        "song_id": _hidden(page, "song_id"), "prediction_id": _hidden(page, "prediction_id"),
        "model_said": model_said, "who": "Ana", "action": "confirm"}, follow_redirects=True)
    assert response.status_code == 200
    assert f"is {model_said}" in response.get_data(as_text=True)
    labels = store.current_labels()
    assert labels[["genre", "model_said", "who", "where"]].iloc[0].tolist() == [
        model_said, model_said, "Ana", "web"]
    assert "Recently labelled" in response.get_data(as_text=True)


def test_correction_with_a_new_genre_then_offered_to_the_next_visitor(app, tmp_path):
    client = app.test_client()
    page = _upload(client, _wav_bytes(freq=500.0)).get_data(as_text=True)
    response = client.post("/label", data={
        "song_id": _hidden(page, "song_id"), "prediction_id": _hidden(page, "prediction_id"),
        "model_said": _hidden(page, "model_said"), "genre": "jazz",
        "new_genre": "  Synth Wave ", "action": "correct"}, follow_redirects=True)
    assert "Corrected" in response.get_data(as_text=True)
    labels = LabelStore(tmp_path / "labels.sqlite").current_labels()
    assert labels["genre"].tolist() == ["synth wave"]
    assert labels["model_said"].tolist() == [_hidden(page, "model_said")]
    again = _upload(client, _wav_bytes(freq=510.0), name="second.wav").get_data(as_text=True)
    assert '<option value="synth wave">' in again

    picked = client.post("/label", data={
        "song_id": _hidden(again, "song_id"), "model_said": _hidden(again, "model_said"),
        "genre": "blues", "new_genre": "", "action": "correct"}, follow_redirects=True)
    assert picked.status_code == 200
    assert sorted(LabelStore(tmp_path / "labels.sqlite").current_labels()["genre"]) == [
        "blues", "synth wave"]


def test_pasted_url_is_downloaded_predicted_and_stored_by_url(tmp_path, model):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tune.wav").write_bytes(_wav_bytes(seconds=12.0))
    with serve_directory(site) as server:
        url = f"{server.base}/tune.wav"
        app = create_app(store_path=tmp_path / "labels.sqlite", model=model,
                         upload_dir=tmp_path / "uploads", window_seconds=6.0,
                         fetch_options={"download_dir": tmp_path / "downloads"})
        response = app.test_client().post("/predict", data={"url": url})
        page = response.get_data(as_text=True)
        assert response.status_code == 200, page
        assert 'id="predicted-genre"' in page
        songs = LabelStore(tmp_path / "labels.sqlite").songs()
        assert songs["location"].tolist() == [url] and songs["source"].tolist() == ["web url"]
        assert len(list((tmp_path / "downloads").glob("*.ogg"))) == 1
        missing = app.test_client().post("/predict", data={"url": url.replace("tune", "gone")})
        assert missing.status_code == 400 and "HTTP 404" in missing.get_data(as_text=True)


@pytest.mark.parametrize("name, data, status, message", [
    ("notes.txt", b"hello", 400, "not an accepted audio file type"),
    ("fake.wav", b"RIFF this is no wave file at all" * 10, 400, "cannot decode audio"),
    ("empty.wav", b"", 400, "file is empty"),
    ("huge.wav", b"\0" * (3 * 2**20), 413, "larger than the 2 MB limit"),
    ("blip.wav", _wav_bytes(seconds=2.0), 400, "too short"),
])
def test_bad_uploads_show_a_message_and_keep_nothing(app, tmp_path, name, data, status, message):
    response = _upload(app.test_client(), data, name=name)
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert 'class="error"' in page and message in page
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert LabelStore(tmp_path / "labels.sqlite").songs().empty


def test_bad_forms_are_messages_not_server_errors(app):
    client = app.test_client()
    assert "paste a song URL or choose a file" in client.post("/predict", data={}).get_data(as_text=True)
    response = client.post("/label", data={"song_id": "abc", "action": "confirm"})
    assert response.status_code == 400 and "not a number" in response.get_data(as_text=True)
    response = client.post("/label", data={"song_id": "999", "action": "confirm", "model_said": "rock"})
    assert response.status_code == 400 and "no such song" in response.get_data(as_text=True)
    response = client.post("/predict", data={"url": "ftp://127.0.0.1/x.ogg"})
    assert response.status_code == 400 and "unsupported URL scheme" in response.get_data(as_text=True)
    assert client.get("/nope").status_code == 404


class BrokenModel:
    """A model that fails on use (module level, so the fingerprint can pickle it)."""

    def __init__(self, model):
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, features):
        raise RuntimeError("the model fell over")


def test_an_unexpected_failure_is_a_page_not_a_traceback(tmp_path, model):
    app = create_app(store_path=tmp_path / "labels.sqlite", model=BrokenModel(model),
                     upload_dir=tmp_path / "uploads", window_seconds=6.0)
    response = _upload(app.test_client(), _wav_bytes(seconds=7.0))
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "something went wrong on our side (RuntimeError)" in page and "Traceback" not in page
    assert LabelStore(tmp_path / "labels.sqlite").predictions().empty


@pytest.mark.slow
def test_real_browser_upload_confirm(tmp_path, model):
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("MUSIC_STUDY_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{reason}; CI installs it")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    app = create_app(store_path=tmp_path / "labels.sqlite", model=model,
                     upload_dir=tmp_path / "uploads", window_seconds=6.0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    song = tmp_path / "browser song.wav"
    song.write_bytes(_wav_bytes(seconds=14.0))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.set_input_files("#file", str(song))
            page.click("#predict")
            page.wait_for_selector("#predicted-genre", timeout=120_000)
            genre = page.inner_text("#predicted-genre")
            assert page.locator("#timeline tr").count() == 3
            shots = os.environ.get("MUSIC_STUDY_SCREENSHOTS")
            if shots:
                page.screenshot(path=os.path.join(shots, "web_result.png"), full_page=True)
            page.fill("#who", "Browser Friend")
            page.click("#confirm")
            page.wait_for_selector(".notice", timeout=60_000)
            assert f"is {genre}" in page.inner_text(".notice")
            if shots:
                page.screenshot(path=os.path.join(shots, "web_saved.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    labels = LabelStore(tmp_path / "labels.sqlite").current_labels()
    assert labels[["genre", "model_said", "who", "where"]].iloc[0].tolist() == [
        genre, genre, "Browser Friend", "web"]

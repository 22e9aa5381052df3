"""helpers.web.app through Flask's test client: access key, CSRF, URL rules, background jobs, limits,
names, store errors, headers and error pages (the browser runs are in test_web_browser.py)."""

from __future__ import annotations

import io
import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf
from conftest import serve_directory
from web_app import make_app

from helpers.errors import StoreFullError, StoreLockedError, StoreReadOnlyError
from helpers.store import LabelStore
from helpers.web.jobs import FETCH_FAILED, INTERRUPTED, UNEXPECTED, JobBoard
from helpers.web.uploads import clean_filename

SR = 22050
KEY = "test-key-0123456789"
BEARER = {"Authorization": f"Bearer {KEY}"}


def _wav_bytes(seconds=12.0, freq=330.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, y.astype(np.float32), sr, format="WAV")
    return buffer.getvalue()


def _hour_long_wav() -> bytes:
    """A real 60-minute WAV (1 kHz, 8-bit: 3.6 MB)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(3600 * 1000, dtype=np.int16), 1000, format="WAV", subtype="PCM_U8")
    return buffer.getvalue()


def _make_app(tmp_path, model, **options):
    return make_app(tmp_path, model, KEY, **options)


@pytest.fixture()
def app(tmp_path, model):
    app = _make_app(tmp_path, model)
    yield app
    app.extensions["music_study"]["jobs"].shutdown()


def _signed_in(app):
    client = app.test_client()
    response = client.get(f"/?key={KEY}")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    return client


@pytest.fixture()
def client(app):
    return _signed_in(app)


def _token(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _upload(client, data, name="my song.wav", token=None):
    return client.post("/predict", data={"file": (io.BytesIO(data), name),
                                         "csrf_token": token or _token(client)},
                       content_type="multipart/form-data")


def _job_id(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.fullmatch(r"/jobs/([A-Za-z0-9_-]+)", response.headers["Location"]).group(1)


def _finish(app, job_id, status="done"):
    job = app.extensions["music_study"]["jobs"].wait(job_id, timeout=180)
    assert job["status"] == status, job
    return job


def _predicted(app, client, data=None, name="my song.wav"):
    """Upload, wait for the job, return (job id, result page text)."""
    job_id = _job_id(_upload(client, data or _wav_bytes(), name=name))
    _finish(app, job_id)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    return job_id, page


def _hidden(page, name):
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def _label(client, page, **fields):
    data = {"song_id": _hidden(page, "song_id"), "prediction_id": _hidden(page, "prediction_id"),
            "csrf_token": _hidden(page, "csrf_token"), **fields}
    return client.post("/label", data=data)


def _store(tmp_path):
    return LabelStore(tmp_path / "labels.sqlite")


# --------------------------------------------------------------------------- access key

def test_every_page_needs_the_key_except_healthz(app):
    anonymous = app.test_client()
    for method, path in [("get", "/"), ("post", "/predict"), ("post", "/label"),
                         ("get", "/jobs/AAAAAAAAAAAAAAAAAAAAAAAA"), ("get", "/nope"),
                         ("get", "/jobs/AAAAAAAAAAAAAAAAAAAAAAAA/status")]:
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, path
        assert "open the full link" in response.get_data(as_text=True)
    assert anonymous.get("/?key=wrong-key-000").status_code == 403
    health = anonymous.get("/healthz")
    assert health.status_code == 200 and health.get_data(as_text=True) == "ok\n"

    client = _signed_in(app)  # the key link sets a session cookie, then the key leaves the URL
    assert client.get("/").status_code == 200
    assert "music_study_session" in client.get_cookie("music_study_session").key
    cookie = client.get_cookie("music_study_session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_api_takes_the_key_only_as_a_bearer_header(app, client):
    assert client.post("/api/predict", data={"url": "https://example.org/a.ogg"}).status_code == 401
    assert client.get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 401
    wrong = app.test_client().get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA",
                                  headers={"Authorization": "Bearer nope-nope"})
    assert wrong.status_code == 403 and wrong.is_json
    query = app.test_client().get(f"/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA?key={KEY}")
    assert query.status_code == 401
    unknown = app.test_client().get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA", headers=BEARER)
    assert unknown.status_code == 404 and unknown.get_json() == {"error": "No such page."}


def test_no_key_mode_and_its_loopback_rule(tmp_path, model, capsys):
    app = _make_app(tmp_path, model, require_key=False)
    try:
        assert app.test_client().get("/").status_code == 200
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    from helpers.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--no-key"]) == 2
    assert "--no-key is allowed only with a loopback --host" in capsys.readouterr().err
    assert main(["serve", "--key", "short"]) == 2


def test_security_headers_and_no_server_version(client):
    response = client.get("/")
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Server" not in headers
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in response.get_data(as_text=True)


# --------------------------------------------------------------------------- the main flow

def test_upload_runs_as_a_job_then_confirm_is_stored_once(app, client, tmp_path):
    response = _upload(client, _wav_bytes())
    job_id = _job_id(response)
    first = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="predicted-genre"' in first or 'id="job-stage"' in first
    _finish(app, job_id)
    assert client.get(f"/jobs/{job_id}/status").get_json() == {"status": "done", "stage": "done"}
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    said = re.search(r'id="predicted-genre">([^<]+)<', page).group(1)
    assert page.count('<td class="time">') == 2  # 12 s in 6-s windows
    assert 'name="csrf_token"' in page and 'name="model_said"' not in page
    saved = list((tmp_path / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.endswith("_my_song.wav")
    store = _store(tmp_path)
    assert store.predictions()["where"].tolist() == ["web"]

    for _ in range(20):  # twenty identical clicks are one event
        response = _label(client, page, who="Ana", action="confirm")
        assert response.status_code == 303
    labels = store.current_labels()
    assert labels[["genre", "model_said", "who", "where"]].iloc[0].tolist() == [said, said, "Ana", "web"]
    assert len(store.events()) == 1
    home = client.get("/").get_data(as_text=True)
    assert f"is {said}" in home and "Recently labelled" in home


def test_model_said_comes_from_the_stored_prediction(app, client, tmp_path):
    _, page = _predicted(app, client)
    said = re.search(r'id="predicted-genre">([^<]+)<', page).group(1)
    forged = "rock" if said != "rock" else "jazz"
    _label(client, page, action="correct", genre="blues", model_said=forged)
    events = _store(tmp_path).events()
    assert events["model_said"].tolist() == [said]
    home = client.get("/").get_data(as_text=True)
    assert "nan" not in re.search(r'<table class="recent".*?</table>', home, re.S).group(0)


def test_new_genres_only_through_the_new_genre_box(app, client, tmp_path):
    _, page = _predicted(app, client)
    refused = _label(client, page, action="correct", genre="junk from another site")
    assert refused.status_code == 400 and "new-genre box" in refused.get_data(as_text=True)
    assert _store(tmp_path).events().empty
    _label(client, page, action="correct", genre="jazz", new_genre="  Synth Wave ")
    assert _store(tmp_path).current_labels()["genre"].tolist() == ["synth wave"]
    _, again = _predicted(app, client, _wav_bytes(freq=510.0), name="second.wav")
    assert '<option value="synth wave">' in again
    assert _label(client, again, action="correct", genre="synth wave").status_code == 303
    assert _label(client, again, action="maybe").status_code == 400


def test_a_missing_or_wrong_csrf_token_or_a_foreign_origin_stores_nothing(app, client, tmp_path):
    _, page = _predicted(app, client)
    base = {"song_id": _hidden(page, "song_id"), "prediction_id": _hidden(page, "prediction_id"),
            "action": "correct", "genre": "blues"}
    missing = client.post("/label", data=base)
    assert missing.status_code == 400 and "did not come from this page" in missing.get_data(as_text=True)
    assert client.post("/label", data={**base, "csrf_token": "forged"}).status_code == 400
    token = _hidden(page, "csrf_token")
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://127.0.0.1:9999/attack.html"}):
        response = client.post("/label", data={**base, "csrf_token": token}, headers=headers)
        assert response.status_code == 403, headers
    response = client.post("/predict", data={"url": "https://example.org/x.ogg", "csrf_token": token},
                           headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert _store(tmp_path).events().empty
    ok = client.post("/label", data={**base, "csrf_token": token},
                     headers={"Origin": "http://localhost"})
    assert ok.status_code == 303 and len(_store(tmp_path).events()) == 1


# --------------------------------------------------------------------------- URLs

@pytest.mark.parametrize("source", [
    "/etc/passwd", "/nonexistent", "~/.bashrc", "/proc/self/environ", "file:///etc/passwd",
    "ftp://127.0.0.1/x.ogg", "gopher://example.org/", "javascript:alert(1)", "example.org/x.ogg",
    "http://127.0.0.1:5000/", "http://localhost/x.ogg", "http://[::1]/x", "http://10.0.0.2/x.ogg",
    "http://169.254.169.254/latest/meta-data/", "http://user:pw@example.org/x.ogg",
])
def test_paths_other_schemes_and_internal_addresses_get_one_answer(app, client, tmp_path, source):
    response = client.post("/predict", data={"url": source, "csrf_token": _token(client)})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="error">([^<]*)<', page).group(1) == f"URL: {FETCH_FAILED}"
    assert app.extensions["music_study"]["jobs"].active_payloads() == []
    api = app.test_client().post("/api/predict", json={"url": source}, headers=BEARER)
    assert api.status_code == 400 and api.get_json() == {"error": f"URL: {FETCH_FAILED}"}


def _site(tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "song.wav").write_bytes(_wav_bytes(seconds=12.0, freq=220.0))
    (site / "sub" / "song.wav").write_bytes(_wav_bytes(seconds=7.0, freq=880.0))
    return site


def test_a_url_job_is_stored_by_url_and_fetch_failures_look_alike(app, client, tmp_path):
    with serve_directory(_site(tmp_path)) as server:
        url = f"{server.base}/song.wav"
        job_id = _job_id(client.post("/predict", data={"url": url, "csrf_token": _token(client)}))
        _finish(app, job_id)
        assert 'id="predicted-genre"' in client.get(f"/jobs/{job_id}").get_data(as_text=True)
        songs = _store(tmp_path).songs()
        assert songs["location"].tolist() == [url] and songs["source"].tolist() == ["web url"]
        missing = _job_id(client.post("/predict", data={"url": url.replace("song", "gone"),
                                                        "csrf_token": _token(client)}))
        assert _finish(app, missing, "failed")["error"] == f"URL: {FETCH_FAILED}"
        page = client.get(f"/jobs/{missing}").get_data(as_text=True)
        # the page names the URL, whose random port may itself hold "404"
        assert FETCH_FAILED in page and "404" not in page.replace(server.base, "")


def test_a_redirect_from_the_allowed_server_to_loopback_is_refused(app, client, tmp_path):
    import http.server

    with serve_directory(_site(tmp_path), allow=False) as hidden:
        class Redirect(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(302)
                self.send_header("Location", f"{hidden.base}/song.wav")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        redirector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=redirector.serve_forever, daemon=True).start()
        from conftest import allow_hosts

        try:
            with allow_hosts(f"127.0.0.1:{redirector.server_port}"):
                url = f"http://127.0.0.1:{redirector.server_port}/song.wav"
                job_id = _job_id(client.post("/predict", data={"url": url,
                                                               "csrf_token": _token(client)}))
                assert _finish(app, job_id, "failed")["error"] == f"URL: {FETCH_FAILED}"
        finally:
            redirector.shutdown()
            redirector.server_close()
        assert hidden.requests == [], "the loopback target was never contacted"
    assert _store(tmp_path).songs().empty


def test_two_urls_with_one_file_name_are_two_songs(app, tmp_path):
    api = app.test_client()
    with serve_directory(_site(tmp_path)) as server:
        ids = []
        for path in ("/song.wav", "/sub/song.wav"):
            response = api.post("/api/predict", data={"url": server.base + path}, headers=BEARER)
            assert response.status_code == 202
            ids.append(response.get_json()["job_id"])
        documents = [_finish(app, job_id)["result"]["prediction"] for job_id in ids]
    assert [round(d["duration"]) for d in documents] == [12, 7]
    songs = _store(tmp_path).songs()
    assert len(songs) == 2 and songs["content_hash"].nunique() == 2


def test_two_concurrent_submissions_of_one_url_share_one_download(app, tmp_path):
    with serve_directory(_site(tmp_path)) as server:
        url = server.base + "/song.wav"
        answers = []

        def submit():
            client = _signed_in(app)
            answers.append(client.post("/predict", data={"url": url, "csrf_token": _token(client)}))

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        jobs = [_finish(app, _job_id(a)) for a in answers]
        downloads = server.requests.count("/song.wav")
    assert {j["result"]["song_id"] for j in jobs} == {jobs[0]["result"]["song_id"]}
    assert len(list((tmp_path / "downloads").glob("*.ogg"))) == 1
    assert downloads <= 3, "one extraction + one download, not one per submission"


# --------------------------------------------------------------------------- uploads, limits

@pytest.mark.parametrize("name, shown", [
    ("Песня.mp3", "Песня.mp3"), ("日本.WAV", "日本.wav"), ("x" * 320 + ".flac", "x" * 100 + ".flac"),
    ("..\\..\\evil\u202egnp.wav", "evilgnp.wav"), ("  .hidden.ogg", "hidden.ogg"),
])
def test_clean_filename_keeps_any_script(name, shown):
    assert clean_filename(name) == shown


def test_unicode_and_over_long_names_are_accepted(app, client, tmp_path):
    for name in ("Песня.wav", "日本.wav", "ä" * 300 + ".wav"):
        _, page = _predicted(app, client, _wav_bytes(freq=300 + len(name)), name=name)
        assert 'id="predicted-genre"' in page
    titles = _store(tmp_path).songs()["title"].tolist()
    assert titles[:2] == ["Песня", "日本"] and titles[2] == "ä" * 75  # 150 UTF-8 bytes
    assert all(len(p.name.encode()) < 255 for p in (tmp_path / "uploads").iterdir())


def test_an_hour_long_upload_is_refused_before_decoding(app, client, tmp_path, monkeypatch):
    from helpers.audio import decode  # every decoding goes through its names

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(decode, "iter_decoded_blocks", no_decoding)
    monkeypatch.setattr(decode, "load_audio", no_decoding)
    response = _upload(client, _hour_long_wav(), name="set.wav")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "set.wav: song is 60.0 min long, over the 20.0 min limit" in page
    assert list((tmp_path / "uploads").iterdir()) == []


@pytest.mark.parametrize("name, data, status, message", [
    ("notes.txt", b"hello", 400, "not an accepted audio file type"),
    ("fake.wav", b"RIFF this is no wave file at all" * 10, 400, "fake.wav: cannot decode audio"),
    ("empty.wav", b"", 400, "file is empty"),
    ("huge.wav", b"\0" * (6 * 2**20), 413, "larger than the 5 MB limit"),
    ("blip.wav", _wav_bytes(seconds=2.0), 400, "blip.wav: too short"),
])
def test_bad_uploads_show_a_message_no_path_and_keep_nothing(app, client, tmp_path, name, data,
                                                            status, message):
    response = _upload(client, data, name=name)
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert 'class="error"' in page and message in page
    assert str(tmp_path) not in page and "/uploads" not in page
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert _store(tmp_path).songs().empty


@pytest.mark.parametrize("song_id", ["abc", "-1", "0", str(10**23), "1e3", "9223372036854775808"])
def test_out_of_range_or_odd_ids_are_a_400(client, song_id):
    response = client.post("/label", data={"song_id": song_id, "prediction_id": "1",
                                           "action": "confirm", "csrf_token": _token(client)})
    assert response.status_code == 400 and "not a valid id" in response.get_data(as_text=True)


def test_empty_form_and_unknown_song_are_messages(client):
    token = _token(client)
    response = client.post("/predict", data={"csrf_token": token})
    assert response.status_code == 400 and "paste a song URL" in response.get_data(as_text=True)
    response = client.post("/label", data={"song_id": "999", "prediction_id": "5",
                                           "action": "confirm", "csrf_token": token})
    assert response.status_code == 400 and "no such prediction" in response.get_data(as_text=True)
    assert client.get("/jobs/not-a-job").status_code == 404


def test_disk_quota_keeps_labelled_files_and_drops_the_oldest_others(tmp_path, model):
    import os

    app = _make_app(tmp_path, model, disk_quota_bytes=1_200_000)
    client = _signed_in(app)
    try:
        _, kept = _predicted(app, client, _wav_bytes(seconds=12.0, freq=200.0), name="kept.wav")
        _label(client, kept, action="confirm")
        _predicted(app, client, _wav_bytes(seconds=12.0, freq=300.0), name="old.wav")
        for path in (tmp_path / "uploads").iterdir():  # make both look old
            os.utime(path, (1_000_000, 1_000_000))
        _predicted(app, client, _wav_bytes(seconds=12.0, freq=400.0), name="new.wav")
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    names = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "uploads").iterdir())
    assert names == ["kept.wav", "new.wav"]


# --------------------------------------------------------------------------- API, jobs, errors

def test_json_api_flow(app, tmp_path):
    api = app.test_client()
    response = api.post("/api/predict", headers=BEARER, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(_wav_bytes()), "api song.wav")})
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"job_id", "status_url"}
    assert body["status_url"].endswith(f"/api/jobs/{body['job_id']}")
    _finish(app, body["job_id"])
    status = api.get(body["status_url"], headers=BEARER).get_json()
    assert status["status"] == "done" and status["error"] is None
    result = status["result"]
    assert result["genre"] in result["probabilities"] and len(result["snippets"]) == 2
    assert result["title"] == "api song" and result["source"] == "api song.wav"
    assert str(tmp_path) not in json.dumps(status)
    assert status["song_id"] == int(_store(tmp_path).songs()["song_id"].iloc[0])


def test_restart_fails_half_done_jobs_and_keeps_finished_results(tmp_path, model):
    app = _make_app(tmp_path, model)
    client = _signed_in(app)
    done_id, page = _predicted(app, client)
    app.extensions["music_study"]["jobs"].shutdown()
    board = JobBoard(tmp_path / "labels.sqlite", lambda payload, report: {}, workers=1)
    board.shutdown()  # the job below stays queued, as if the server died with it
    import sqlite3

    with sqlite3.connect(tmp_path / "labels.sqlite") as db:
        db.execute("INSERT INTO web_jobs VALUES ('halfdonehalfdonehalfdone', 'predict', '{}',"
                   " 'running', 'analysing window 2 of 9', NULL, NULL, 'x', 'x')")
    restarted = _make_app(tmp_path, model)
    try:
        client = _signed_in(restarted)
        again = client.get(f"/jobs/{done_id}").get_data(as_text=True)
        assert re.search(r'id="predicted-genre">[^<]+<', again)
        failed = client.get("/jobs/halfdonehalfdonehalfdone").get_data(as_text=True)
        assert INTERRUPTED in failed
    finally:
        restarted.extensions["music_study"]["jobs"].shutdown()


class BrokenModel:
    """A model that fails on use (module level, so the fingerprint can pickle it)."""

    def __init__(self, model):
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, features):
        raise RuntimeError("the model fell over at /srv/secret/path")


def test_an_unexpected_failure_is_one_plain_sentence(tmp_path, model):
    app = _make_app(tmp_path, BrokenModel(model))
    try:
        client = _signed_in(app)
        job_id = _job_id(_upload(client, _wav_bytes(seconds=7.0)))
        assert _finish(app, job_id, "failed")["error"] == UNEXPECTED
        page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
        for leak in ("RuntimeError", "/srv/secret", str(tmp_path), "Traceback", "pid"):
            assert leak not in page
        assert _store(tmp_path).predictions().empty
        missing = client.get("/no/such/page")
        assert missing.status_code == 404 and "No such page." in missing.get_data(as_text=True)
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


@pytest.mark.parametrize("error, status, sentence", [
    (StoreLockedError, 503, "busy right now"),
    (StoreFullError, 503, "no room to save answers"),
    (StoreReadOnlyError, 503, "This page cannot save answers right now."),
])
def test_store_errors_are_a_503_with_a_plain_sentence(app, client, tmp_path, error, status, sentence):
    _, page = _predicted(app, client)
    store = app.extensions["music_study"]["store"]

    def refuse(*args, **kwargs):
        raise error(str(tmp_path / "labels.sqlite"), "cannot write")

    store.record_label = refuse
    response = _label(client, page, action="confirm")
    text = response.get_data(as_text=True)
    assert response.status_code == status and sentence in text and str(tmp_path) not in text


def test_the_default_model_is_built_when_the_app_starts(tmp_path, model, monkeypatch, caplog):
    import logging

    from helpers.web import app as app_module  # create_app builds the model with its name

    calls = []
    monkeypatch.setattr(app_module, "default_model", lambda *a, **k: calls.append(1) or model)
    with caplog.at_level(logging.INFO, logger="helpers.web.app"):
        app = _make_app(tmp_path, None)
    try:
        assert calls == [1] and "building the default genre model" in caplog.text
        _predicted(app, _signed_in(app))
        assert calls == [1], "no model is built inside a request"
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def test_a_song_whose_header_tells_no_length_is_stopped_at_the_limit(tmp_path, model, monkeypatch):
    from helpers.web import uploads  # the upload check uses its name

    monkeypatch.setattr(uploads, "probe_duration", lambda path: None)
    app = _make_app(tmp_path, model, max_duration=10.0)
    try:
        client = _signed_in(app)
        job_id = _job_id(_upload(client, _wav_bytes(seconds=14.0), name="long.wav"))
        job = _finish(app, job_id, "failed")
        assert job["error"] == "long.wav: song is longer than the 0.2 min limit"
        assert _store(tmp_path).predictions().empty
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def test_decoder_messages_lose_server_paths():
    from pathlib import Path

    from helpers.web.uploads import without_paths

    saved = Path("/srv/data/uploads/abc_x.wav")
    reason = without_paths(f"Error opening {saved}: bad; /usr/lib/libsndfile.so.1 failed; "
                            "see http://x.org/a/b; 1/2 done", saved, "x.wav")
    assert reason == "Error opening x.wav: bad; (a file) failed; see http://x.org/a/b; 1/2 done"


def test_a_read_only_store_still_shows_the_genre_but_says_answers_cannot_be_saved(
        app, client, tmp_path):
    store = app.extensions["music_study"]["store"]

    def read_only(*args, **kwargs):
        raise StoreReadOnlyError(str(tmp_path / "labels.sqlite"), "read-only")

    store.add_song = read_only
    _, page = _predicted(app, client)
    assert 'id="predicted-genre"' in page and 'id="label-form"' not in page
    assert "This page cannot save answers right now." in page and str(tmp_path) not in page


def test_jobs_fall_back_to_memory_when_the_file_is_read_only(tmp_path):
    board = JobBoard(":memory:", lambda payload, report: {"ok": payload["n"]}, workers=1)
    try:
        assert board.wait(board.submit("predict", {"n": 3}), timeout=30)["result"] == {"ok": 3}
    finally:
        board.shutdown()


def test_the_predict_job_runs_without_flask(tmp_path, model):
    """The job that analyses a submitted song is a plain function: no app, no request."""
    import subprocess
    import sys

    from helpers.store import LabelStore
    from helpers.web.jobs import PredictContext, run_predict_job

    upload = tmp_path / "uploads" / "tone.wav"
    upload.parent.mkdir()
    upload.write_bytes(_wav_bytes(seconds=12.0))
    store = LabelStore(tmp_path / "labels.sqlite")
    context = PredictContext(store=store, model=model, upload_dir=upload.parent,
                             download_dir=tmp_path / "downloads", window_seconds=6.0)
    stages = []
    result = run_predict_job({"upload": str(upload), "name": "my tone.wav"}, stages.append, context)
    assert stages[0] == "analysing" and stages[-1] == "saving"
    assert "analysing window 2 of 2" in stages
    assert result["prediction"]["source"] == "my tone.wav"
    predictions = store.predictions(result["song_id"])
    assert predictions["prediction_id"].tolist() == [result["prediction_id"]]
    # and importing it pulls in no web framework
    code = "import sys, helpers.web.jobs; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_result_page_shows_the_song_s_music_tags(tmp_path, model, root):
    """The shipped electronic song sounds electronic to musicnn, and the page says so."""
    app = _make_app(tmp_path, model, tags=True, max_upload_bytes=20 * 2**20)
    try:
        client = _signed_in(app)
        song = root / "data" / "music" / "singularity_coherence.ogg"
        _, page = _predicted(app, client, song.read_bytes(), name="coherence.ogg")
        shown = re.search(r'<span class="tags" data-vocabulary="msd"[^>]*>(.*?)</span>;', page, re.S)
        assert shown, page
        words = re.sub(r"<[^>]+>|[\d.,]", " ", shown.group(1)).split()
        assert "electronic" in words[:5]
        assert 'data-vocabulary="mtt"' in page and "musicnn" in page
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def test_an_uploaded_file_s_tags_name_the_song(app, client, tmp_path):
    tagged = tmp_path / "tagged.flac"
    t = np.arange(int(8 * SR)) / SR
    with sf.SoundFile(tagged, "w", SR, 1, format="FLAC") as handle:
        handle.title, handle.artist, handle.album = "Tagged Title", "Tag Artist", "Tag Album"
        handle.write((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    _, page = _predicted(app, client, data=tagged.read_bytes(), name="upload.flac")
    assert "Tagged Title" in page and "Tag Artist" in page
    songs = _store(tmp_path).songs()
    assert songs[["title", "artist", "album"]].values.tolist() == [["Tagged Title", "Tag Artist", "Tag Album"]]

"""The web page attacked as a careless friend, a hostile page and a stranger on the network
would, on loopback only: each test makes one attack and checks it is refused (bounded in count
and time; timeouts only detect a hang).

Most tests serve the app with the same waitress server ``music-study serve`` builds
(:func:`helpers.web.security.build_server`) in a thread of this process; the ``cli_server``
tests run the real command in a subprocess (its log and its wrong-key limit)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
import zlib

import numpy as np
import pytest
import soundfile as sf
from web_app import make_app

from helpers.store import LabelStore, normalise_genre
from helpers.web.security import (
    CONNECTION_LIMIT,
    FREE_ATTEMPTS,
    NEEDS_KEY_API,
    NEEDS_KEY_PAGE,
    WRONG_HOST,
    AttemptLimiter,
    HostRule,
    build_server,
)
from helpers.web.uploads import NO_ROOM, clean_filename

KEY = "attack-key-0123456789"
BEARER = {"Authorization": f"Bearer {KEY}"}
SR = 22050


def _wav_bytes(seconds=12.0, freq=330.0):
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t)
    buffer = io.BytesIO()
    sf.write(buffer, y.astype(np.float32), SR, format="WAV")
    return buffer.getvalue()


def _make_app(tmp_path, model, **options):
    return make_app(tmp_path, model, KEY, **options)


@pytest.fixture()
def app(tmp_path, model):
    app = _make_app(tmp_path, model)
    yield app
    app.extensions["music_study"]["jobs"].shutdown()


def _signed_in(app, **kwargs):
    client = app.test_client(**kwargs)
    response = client.get(f"/?key={KEY}")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    return client


def _client_at(app, address: str):
    """A test client whose requests come from *address*."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _token(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# --------------------------------------------------------------------------- a real server

@contextlib.contextmanager
def _served(app, **limits):
    """Serve *app* with build_server on 127.0.0.1 in a thread; yield the port."""
    from waitress import wasyncore

    from helpers.web.uploads import FORM_ROOM_BYTES, too_large_message

    max_body = app.config["MAX_CONTENT_LENGTH"]
    server = build_server(app, "127.0.0.1", 0, gate=app.extensions["music_study"]["gate"],
                          max_body=max_body, too_large=too_large_message(max_body - FORM_ROOM_BYTES),
                          **limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        server.task_dispatcher.shutdown(timeout=5)
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=10)


def _head(method, path, headers, port) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", **headers}
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(sock, timeout=15.0):
    """Read one HTTP response: (status, headers, body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _request(port, method, path, headers=None, body=b"", timeout=15.0):
    """One request on its own connection; a Content-Length in *headers* is sent as it is
    (the body then stays unsent: the answer must come from the headers)."""
    headers = {"Content-Length": str(len(body)), **(headers or {}), "Connection": "close"}
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_head(method, path, headers, port) + body)
        return _answer(sock, timeout)


def _push(sock, nbytes: int) -> int:
    """Send up to *nbytes* of body; return how many left this side before the server closed
    the connection or stopped reading (2-s timeout)."""
    sock.settimeout(2.0)
    block, sent = b"\0" * 2**16, 0
    try:
        while sent < nbytes:
            sent += sock.send(block)
    except OSError:
        pass
    return sent


def _temp_bytes() -> int:
    """Bytes in this process' open, deleted temporary files (where waitress spools bodies)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)"):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:
            continue
    return total


# --------------------------------------------------------------------------- row 3: bodies

def test_keyless_bodies_are_refused_after_their_headers_and_cost_no_disk(app, tmp_path):
    """Keyless 300 MB bodies (API, page, a wrong key, 100-continue) get their answer from the
    headers alone: nothing of the body is read, no temporary file grows."""
    with _served(app) as port:
        big = {"Content-Length": str(300 * 2**20), "Content-Type": "application/octet-stream"}
        attacks = [("/api/predict", big), ("/predict", big),
                   ("/api/predict", {**big, "Authorization": "Bearer wrong-key-0000"}),
                   ("/predict", {**big, "Expect": "100-continue"}),
                   ("/healthz", big)]
        before = _temp_bytes()
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in attacks]
        try:
            for sock, (path, headers) in zip(sockets, attacks, strict=True):
                sock.sendall(_head("POST" if path != "/healthz" else "GET", path, headers, port))
            answers = [_answer(sock) for sock in sockets]  # not one byte of body sent yet
            assert [a[0] for a in answers] == [401, 401, 403, 401, 401]
            assert json.loads(answers[0][2]) == {"error": NEEDS_KEY_API}
            assert answers[1][2].decode().strip() == NEEDS_KEY_PAGE
            assert all(a[1].get("connection") == "close" for a in answers)
            assert b"100 Continue" not in answers[3][2]
            pushed = [_push(sock, 16 * 2**20) for sock in sockets]
            assert all(p < 16 * 2**20 for p in pushed), "the server stopped reading"
            assert _temp_bytes() - before <= 0
        finally:
            for sock in sockets:
                sock.close()
        # a friend's upload over the size limit is also refused from its headers
        status, _, body = _request(port, "POST", "/api/predict", {**big, **BEARER})
        assert status == 413 and json.loads(body) == {
            "error": "upload: file is larger than the 5 MB limit"}
        # and a friend's normal upload still works through the same server
        boundary = "attack-boundary"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"ok.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
        form += _wav_bytes() + f"\r\n--{boundary}--\r\n".encode()
        status, _, body = _request(port, "POST", "/api/predict", {
            **BEARER, "Content-Type": f"multipart/form-data; boundary={boundary}"}, form)
        assert status == 202 and set(json.loads(body)) == {"job_id", "status_url"}
    assert len(list((tmp_path / "uploads").iterdir())) == 1


def test_a_keyed_cross_site_upload_is_refused_before_its_body(app):
    """A page elsewhere on this machine (same site: the cookie goes along) posting a big
    form: refused from its Origin header, before the body."""
    client = _signed_in(app)
    cookie = client.get_cookie("music_study_session").value
    with _served(app) as port, socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_head("POST", "/predict", {
            "Cookie": f"music_study_session={cookie}", "Origin": "http://127.0.0.1:9999",
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(4 * 2**20)}, port))
        status, _, body = _answer(sock)
    assert status == 403 and b"did not come from this page" in body


# --------------------------------------------------------------------------- row 4: quota

class HeldModel:
    """A model whose predictions wait until RELEASE is set (workers stay busy)."""

    RELEASE = threading.Event()

    def __init__(self, model):
        self.model = model
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, features):
        assert HeldModel.RELEASE.wait(timeout=120), "the test never released the workers"
        return self.model.predict_proba(features)

    def __getattr__(self, name):  # everything else the pipeline offers (card, open set, ...)
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)


def _folder_bytes(folder):
    return sum(p.stat().st_size for p in folder.iterdir()) if folder.exists() else 0


def test_uploads_while_workers_are_busy_stay_within_the_disk_quota(tmp_path, model):
    one = len(_wav_bytes(freq=200.0))
    quota = int(2.5 * one)
    HeldModel.RELEASE.clear()
    app = _make_app(tmp_path, HeldModel(model), workers=1, disk_quota_bytes=quota)
    try:
        client = _signed_in(app)
        answers = []
        for k in range(4):
            response = client.post("/predict", content_type="multipart/form-data", data={
                "file": (io.BytesIO(_wav_bytes(freq=200.0 + 50 * k)), f"song {k}.wav"),
                "csrf_token": _token(client)})
            answers.append(response)
            assert _folder_bytes(tmp_path / "uploads") <= quota
        assert [a.status_code for a in answers] == [303, 303, 400, 400]
        for refused, k in ((answers[2], 2), (answers[3], 3)):
            page = refused.get_data(as_text=True)
            assert f"song {k}.wav: {NO_ROOM}" in page
        names = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "uploads").iterdir())
        assert names == ["song_0.wav", "song_1.wav"]
    finally:
        HeldModel.RELEASE.set()
        app.extensions["music_study"]["jobs"].shutdown()


def test_an_upload_larger_than_the_quota_is_refused_from_its_headers(tmp_path, model):
    """Four 38.6 MB uploads against a 10 MB quota: each answered before its body is read."""
    app = _make_app(tmp_path, model, max_upload_bytes=50 * 2**20, disk_quota_bytes=10 * 2**20)
    try:
        with _served(app) as port:
            before = _temp_bytes()
            for _ in range(4):
                with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                    sock.sendall(_head("POST", "/api/predict", {
                        **BEARER, "Content-Type": "multipart/form-data; boundary=x",
                        "Content-Length": str(int(38.6 * 2**20))}, port))
                    status, _, body = _answer(sock)
                    assert status == 413 and json.loads(body) == {"error": f"upload: {NO_ROOM}"}
                    assert _push(sock, 8 * 2**20) < 8 * 2**20
            assert _temp_bytes() - before <= 0
        assert not (tmp_path / "uploads").exists() or _folder_bytes(tmp_path / "uploads") == 0
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


# --------------------------------------------------------------------------- row 5: idle

def _still_open(sockets) -> int:
    count = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            count += sock.recv(1) != b""
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def test_two_hundred_idle_connections_leave_room_for_healthz_and_a_friend(app, capsys):
    with _served(app) as port:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(200)]
        slow = []  # and some that dribble half a header
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port), timeout=15)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        try:
            timings = {}
            for name, path, headers, expected in (
                    ("healthz", "/healthz", {}, 200),
                    ("friend (key)", "/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA", BEARER, 404)):
                started = time.monotonic()
                status, _, body = _request(port, "GET", path, headers, timeout=20)
                timings[name] = time.monotonic() - started
                assert status == expected, (name, body)
            for _ in range(40):  # closing the evicted sockets is asynchronous: let it settle
                if _still_open(idle + slow) <= CONNECTION_LIMIT:
                    break
                time.sleep(0.05)
            assert _still_open(idle + slow) <= CONNECTION_LIMIT
        finally:
            for sock in idle + slow:
                sock.close()
    with capsys.disabled():
        print("\n220 idle/slow connections: " +
              ", ".join(f"{k} answered in {v * 1000:.0f} ms" for k, v in timings.items()))


# --------------------------------------------------------------------------- rows 6-8: names

def test_a_foreign_host_name_is_refused_without_a_key(tmp_path, model):
    """DNS rebinding against --no-key: the page, its CSRF token, an upload and a label."""
    app = _make_app(tmp_path, model, require_key=False)
    try:
        client = app.test_client()
        evil = {"Host": "evil.example:5000", "Origin": "http://evil.example:5000"}
        page = client.get("/", headers={"Host": "evil.example:5000"})
        text = page.get_data(as_text=True)
        assert page.status_code == 400 and WRONG_HOST in text
        assert 'name="csrf_token"' not in text and "data-csrf" not in text
        token = _token(client)  # the real page's token, as if the attacker had it
        upload = client.post("/predict", headers=evil, content_type="multipart/form-data",
                             data={"file": (io.BytesIO(_wav_bytes()), "x.wav"),
                                   "csrf_token": token})
        label = client.post("/label", headers=evil, data={
            "song_id": "1", "prediction_id": "1", "action": "correct", "new_genre": "evil",
            "csrf_token": token})
        api = client.post("/api/predict", headers=evil, json={"url": "https://example.org/x"})
        assert [upload.status_code, label.status_code, api.status_code] == [400, 400, 400]
        assert api.get_json() == {"error": WRONG_HOST}
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
        store = LabelStore(tmp_path / "labels.sqlite")
        assert store.songs().empty and store.events().empty
        assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())
        with _served(app) as port:  # the server refuses it from the headers too
            status, _, body = _request(port, "GET", "/", {"Host": "evil.example"})
            assert status == 400 and body.decode().strip() == WRONG_HOST
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def test_a_foreign_host_name_is_refused_with_a_key_and_public_names_are_answered(tmp_path,
                                                                                 model):
    app = _make_app(tmp_path, model,
                    allowed_hosts=HostRule.for_server("0.0.0.0", ["music.example.org"]))
    try:
        for host, answered in (("music.example.org", True), ("192.168.1.23:5000", True),
                               ("localhost:5000", True), ("evil.example", False),
                               ("music.example.org.evil.example", False),
                               ("music.example.org@evil.example", False)):
            client = app.test_client()  # cookies are per host name: one browser per name
            sign_in = client.get(f"/?key={KEY}", headers={"Host": host})
            page = client.get("/", headers={"Host": host})
            if answered:
                assert (sign_in.status_code, page.status_code) == (303, 200), host
            else:
                assert (sign_in.status_code, page.status_code) == (400, 400), host
                assert WRONG_HOST in page.get_data(as_text=True)
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    from helpers.cli import main

    assert main(["serve", "--public-name", "http://x.example/"]) == 2
    assert main(["serve", "--trusted-proxy", "proxy.example"]) == 2


@pytest.mark.parametrize("query, location", [
    (f"/?key={KEY}&_method=POST", "/"),
    (f"/jobs/AAAAAAAAAAAAAAAAAAAAAAAA?key={KEY}&job_id=zzz", "/jobs/AAAAAAAAAAAAAAAAAAAAAAAA"),
    (f"/?key={KEY}&_external=1&_scheme=javascript", "/"),
    (f"/?key={KEY}&_anchor=x&endpoint=healthz", "/"),
    (f"/jobs/AAAAAAAAAAAAAAAAAAAAAAAA/status?key={KEY}&_external=1",
     "/jobs/AAAAAAAAAAAAAAAAAAAAAAAA/status"),
])
def test_the_key_redirect_is_built_from_the_path_alone(app, query, location):
    response = app.test_client().get(query)
    assert response.status_code == 303 and response.headers["Location"] == location


def test_the_key_redirect_never_names_another_host(app):
    response = app.test_client().get(f"/?key={KEY}&_external=1",
                                     headers={"Host": "evil.example"})
    assert response.status_code == 400 and "Location" not in response.headers
    assert "evil.example" not in response.get_data(as_text=True)
    with _served(app) as port:  # '//host' and '/\\host' paths stay on this site
        for path in (f"//evil.example/?key={KEY}", f"/\\evil.example/?key={KEY}",
                     f"/jobs//evil.example?key={KEY}"):
            status, headers, _ = _request(port, "GET", path)
            assert status == 303 and headers["location"].startswith("/"), path
            assert not headers["location"].startswith(("//", "/\\")), path


# --------------------------------------------------------------------------- row 9: text

BAD_NAMES = ["\u202eevil-rtl", "jazz\x85fusion", "rock\x7f", "\u2066iso\u2069late",
             "\u200fmark\u200e", "ara\u061cbic", "ctrl\x1b[31mred"]


def test_genre_file_and_who_names_lose_control_and_bidi_characters(app, tmp_path):
    assert [normalise_genre(n) for n in BAD_NAMES] == [
        "evil-rtl", "jazz fusion", "rock", "isolate", "mark", "arabic", "ctrl[31mred"]
    assert clean_filename("\u202egnp.wav\x7f") == "gnp.wav"
    client = _signed_in(app)
    response = client.post("/predict", content_type="multipart/form-data", data={
        "file": (io.BytesIO(_wav_bytes()), "\u202emy\x85song\x7f.wav"),
        "csrf_token": _token(client)})
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    assert app.extensions["music_study"]["jobs"].wait(job_id, timeout=180)["status"] == "done"
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    hidden = {n: re.search(rf'name="{n}" value="([^"]*)"', page).group(1)
              for n in ("song_id", "prediction_id", "csrf_token")}
    for name in reversed(BAD_NAMES[:3]):  # the song ends labelled "evil-rtl"
        answer = client.post("/label", data={**hidden, "action": "correct", "new_genre": name,
                                             "who": "\u202eAna\x7f\x85Lu"})
        assert answer.status_code == 303
    store = LabelStore(tmp_path / "labels.sqlite")
    assert store.songs()["title"].tolist() == ["my song"]
    assert set(store.events()["genre"]) == {"evil-rtl", "jazz fusion", "rock"}
    assert set(store.events()["who"]) == {"Ana Lu"}
    home = client.get("/").get_data(as_text=True)
    menu = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    for text in (home, menu):
        assert not re.search("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x7f\x85]", text)
    assert '<option value="evil-rtl">' in menu
    only_controls = client.post("/label", data={**hidden, "action": "correct",
                                                "new_genre": "\u202e\x7f"})
    assert only_controls.status_code == 400
    assert "new genre: genre is empty" in only_controls.get_data(as_text=True)


# --------------------------------------------------------------------------- row 11: JSON

@pytest.mark.parametrize("body, content_type", [
    (json.dumps({"url": 12345}), "application/json"),
    (json.dumps({"url": {"href": "https://example.org/a.ogg"}}), "application/json"),
    (json.dumps({"url": ["https://example.org/a.ogg"]}), "application/json"),
    (json.dumps(["https://example.org/a.ogg"]), "application/json"),
    (json.dumps("https://example.org/a.ogg"), "application/json"),
    (json.dumps({"url": None}), "application/json"),
    ("{not json", "application/json"),
    (b"\xff\xfe\x00", "application/json; charset=utf-8"),
])
def test_the_api_answers_wrong_types_with_a_sentence(app, body, content_type):
    response = app.test_client().post("/api/predict", data=body, content_type=content_type,
                                      headers=BEARER)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert re.fullmatch(r"[\w ]+: [^\n]{5,200}", error), error
    assert "Error" not in error and "Traceback" not in error


def test_visitors_never_read_an_unexpected_exception(app, monkeypatch):
    """A fault inside a check (not an input error) is a fixed sentence, never its text."""
    from helpers.web import uploads  # the upload check uses its name

    def explode(*args, **kwargs):
        raise RuntimeError("ffmpeg said: /srv/secret/decoder.so crashed\nline two")

    monkeypatch.setattr(uploads, "probe_duration", explode)
    client = _signed_in(app)
    response = client.post("/predict", content_type="multipart/form-data", data={
        "file": (io.BytesIO(_wav_bytes()), "x.wav"), "csrf_token": _token(client)})
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong on our side" in page
    assert "RuntimeError" not in page and "/srv/secret" not in page and "ffmpeg" not in page
    api = app.test_client().post("/api/predict", headers=BEARER, content_type="multipart/form-data",
                                 data={"file": (io.BytesIO(_wav_bytes()), "x.wav")})
    assert api.status_code == 500 and "ffmpeg" not in api.get_data(as_text=True)


# --------------------------------------------------------------------------- row 12: logs

FORGED = "music-study serve: default genre model ready in 0.1 s"


def test_log_lines_escape_control_characters_and_cap_each_field(app, caplog):
    client = _signed_in(app)
    with caplog.at_level(logging.INFO):
        client.post("/predict", data={"url": f"http://10.0.0.1/a\n{FORGED}\r\x1b[2J",
                                      "csrf_token": _token(client)})
        client.post("/predict", data={"url": "http://10.0.0.1/" + "a" * 300_000,
                                      "csrf_token": _token(client)})
        huge = client.post("/api/predict", headers=BEARER,
                           json={"url": "http://10.0.0.1/" + "b" * (5 * 2**20)})
        assert huge.status_code == 400
    lines = caplog.text.splitlines()
    assert not any(line.startswith(FORGED) or line.startswith("music-study serve") for line in lines)
    assert any("\\nmusic-study serve: default genre model" in r.getMessage() for r in caplog.records)
    assert all("\n" not in r.getMessage() and "\x1b" not in r.getMessage() for r in caplog.records)
    assert max(len(r.getMessage()) for r in caplog.records) < 1000
    assert len(caplog.text) < 20_000


def test_a_logged_traceback_cannot_forge_a_line():
    from helpers.text import SafeLogFilter

    record = logging.LogRecord("helpers.web.app", logging.ERROR, __file__, 1, "while serving %s",
                               ("/x\n" + FORGED,), None)
    try:
        raise ValueError("bad\n" + FORGED + "\n" + "z" * 10_000)
    except ValueError:
        record.exc_info = sys.exc_info()
    SafeLogFilter().filter(record)
    text = logging.Formatter("music-study serve: %(message)s").format(record)
    lines = text.splitlines()
    assert lines[0].startswith("music-study serve: while serving /x\\nmusic-study serve")
    assert all(line.startswith("    | ") for line in lines[1:])
    assert max(map(len, lines)) <= 600


# --------------------------------------------------------------------------- row 13: the key

def _cookie_payload(value: str) -> dict:
    """Decode a Flask session cookie's payload (signed, not encrypted)."""
    data = value.split(".")[0 if not value.startswith(".") else 1]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if value.startswith(".") else raw)


def test_the_cookie_holds_a_random_session_id_never_the_key(tmp_path, model):
    app = _make_app(tmp_path, model)
    try:
        first, second = _signed_in(app), _signed_in(app)
        cookies = [c.get_cookie("music_study_session").value for c in (first, second)]
        payloads = [_cookie_payload(c) for c in cookies]
        assert payloads[0]["sid"] != payloads[1]["sid"] and len(payloads[0]["sid"]) >= 40
        for value in (KEY, hashlib.sha256(("music-study web key:" + KEY).encode()).hexdigest(),
                      hashlib.sha256(KEY.encode()).hexdigest()):
            assert value not in json.dumps(payloads) and value not in cookies[0]
        assert app.secret_key != hashlib.sha256(b"session:" + KEY.encode()).hexdigest()
        # a cookie signed with the (stolen) secret is still worthless without a live session
        forged = app.session_interface.get_signing_serializer(app).dumps({"sid": "guess"})
        stranger = app.test_client()
        stranger.set_cookie("music_study_session", forged)
        assert stranger.get("/").status_code == 401
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    same_key = _make_app(tmp_path, model)  # a restart with the same key keeps friends in
    new_key = _make_app(tmp_path, model, access_key="another-key-987654321")
    try:
        for restarted, expected in ((same_key, 200), (new_key, 401)):
            client = restarted.test_client()
            client.set_cookie("music_study_session", cookies[0])
            assert client.get("/").status_code == expected
    finally:
        for restarted in (same_key, new_key):
            restarted.extensions["music_study"]["jobs"].shutdown()


def test_the_cookie_is_secure_behind_https_or_a_trusted_proxy(tmp_path, model):
    plain = _make_app(tmp_path, model, store_path=tmp_path / "a.sqlite")
    behind = _make_app(tmp_path, model, store_path=tmp_path / "b.sqlite", behind_https=True)
    proxied = _make_app(tmp_path, model, store_path=tmp_path / "c.sqlite",
                        trusted_proxies=["10.0.0.1"])
    try:
        assert not _signed_in(plain).get_cookie("music_study_session").secure
        assert _signed_in(behind).get_cookie("music_study_session").secure
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.168.1.50"}
        for peer, secure in (("10.0.0.1", True), ("10.0.0.2", False)):
            client = _client_at(proxied, peer)
            response = client.get(f"/?key={KEY}", headers=forwarded)
            assert response.status_code == 303
            assert client.get_cookie("music_study_session").secure is secure, peer
        api = behind.test_client().post("/api/predict", headers=BEARER,
                                        content_type="multipart/form-data",
                                        data={"file": (io.BytesIO(_wav_bytes()), "a.wav")})
        assert api.status_code == 202 and api.get_json()["status_url"].startswith("https://")
    finally:
        for app in (plain, behind, proxied):
            app.extensions["music_study"]["jobs"].shutdown()


def test_the_hash_link_key_is_sent_once_with_a_csrf_token(app):
    """What the page's script does with a #key= link: the "needs its key" page carries a CSRF
    token; the key goes in a form post to /session, never in a URL."""
    from helpers.web.security import WRONG_KEY_PAGE

    browser = app.test_client()
    page = browser.get("/")
    assert page.status_code == 401
    exchange = re.search(r'id="key-exchange" hidden data-url="([^"]+)" data-csrf="([^"]+)"',
                         page.get_data(as_text=True))
    url, token = exchange.groups()
    assert url == "/session"
    assert browser.post(url, data={"key": KEY}).status_code == 400  # no CSRF token
    assert browser.post(url, data={"key": KEY, "csrf_token": token},
                        headers={"Origin": "http://evil.example"}).status_code == 403
    wrong = browser.post(url, data={"key": "wrong-key-000000", "csrf_token": token})
    assert wrong.status_code == 403 and wrong.get_json() == {"error": WRONG_KEY_PAGE}
    right = browser.post(url, data={"key": KEY, "csrf_token": token})
    assert right.status_code == 200 and right.get_json() == {"ok": True}
    assert browser.get("/").status_code == 200
    assert browser.get("/healthz").status_code == 200


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_wrong_keys_are_slowed_per_address_without_slowing_others(tmp_path, model):
    clock = FakeClock()
    app = _make_app(tmp_path, model, limiter=AttemptLimiter(clock=clock))
    try:
        attacker = _client_at(app, "192.168.1.66")
        answers = [attacker.get(f"/?key=wrong-{i:04d}-guess") for i in range(FREE_ATTEMPTS + 3)]
        codes = [a.status_code for a in answers]
        assert codes == [403] * (FREE_ATTEMPTS + 1) + [429, 429]
        blocked = answers[-1]
        assert "Too many wrong keys" in blocked.get_data(as_text=True)
        wait = int(blocked.headers["Retry-After"])
        assert wait >= 1
        assert attacker.get(f"/?key={KEY}").status_code == 429, "no key is looked at meanwhile"
        api = attacker.get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAA", headers=BEARER)
        assert api.status_code == 429 and "Retry-After" in api.headers
        friend = _client_at(app, "192.168.1.67")
        assert friend.get(f"/?key={KEY}").status_code == 303
        assert friend.get("/").status_code == 200
        clock.now += wait + 0.1
        assert attacker.get(f"/?key={KEY}").status_code == 303, "a right key after the wait"
        # the waits double: after the right key the count starts again
        ipv6 = [_client_at(app, f"2001:db8::{i:x}") for i in range(FREE_ATTEMPTS + 2)]
        assert [c.get("/?key=wrong-000000").status_code for c in ipv6][-1] == 429, \
            "one /64 network is one client"
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def test_the_limiter_memory_is_bounded_and_waits_double():
    clock = FakeClock()
    limiter = AttemptLimiter(max_clients=100, clock=clock)
    for i in range(5000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter) == 100
    waits = [limiter.failed("192.0.2.1") for _ in range(FREE_ATTEMPTS + 4)]
    assert waits[:FREE_ATTEMPTS] == [0.0] * FREE_ATTEMPTS
    assert waits[FREE_ATTEMPTS:] == [2.0, 4.0, 8.0, 16.0]


# --------------------------------------------------------------------------- the real command

@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    """``music-study serve --port 0 --key KEY --public-name music.example.org`` in a
    subprocess; its stderr lines are collected while it runs."""
    from helpers.models import default_model
    from helpers.paths import default_model_path

    default_model()
    data = tmp_path_factory.mktemp("serve-data")
    (data / "models").mkdir()
    shutil.copy(default_model_path(), data / "models" / default_model_path().name)
    env = {**os.environ, "MUSIC_STUDY_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    env.pop("MUSIC_STUDY_LABEL_STORE", None)
    server = subprocess.Popen([sys.executable, "-m", "helpers", "serve", "--port", "0", "--key",
                               KEY, "--public-name", "music.example.org"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first, errors = [], []
    threading.Thread(target=lambda: first.append(server.stdout.readline()), daemon=True).start()
    threading.Thread(target=lambda: errors.extend(iter(server.stderr.readline, "")),
                     daemon=True).start()
    deadline = time.monotonic() + 180
    while not first and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.1)
    try:
        assert first and "key=" in first[0], f"no link printed; stderr: {errors}"
        link = first[0].strip()
        port = int(re.search(r":(\d+)/", link).group(1))
        yield types.SimpleNamespace(link=link, port=port, stderr=errors)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_printed_link_holds_the_key_after_the_hash(cli_server):
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/#key={KEY}", cli_server.link)
    status, _, _ = _request(cli_server.port, "GET", "/", {"Host": "music.example.org"})
    assert status == 401  # a --public-name is answered (and needs the key)
    status, _, body = _request(cli_server.port, "GET", "/", {"Host": "evil.example"})
    assert status == 400 and body.decode().strip() == WRONG_HOST


def test_the_server_log_cannot_be_forged_or_flooded(cli_server):
    def ready_lines():
        return [line for line in cli_server.stderr if line.startswith(FORGED.rsplit(" in ", 1)[0])]

    assert len(ready_lines()) == 1  # the real one, at start
    size_before = sum(map(len, cli_server.stderr))
    boundary = "log-boundary"

    def form(value: str) -> bytes:
        return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{value}"
                f"\r\n--{boundary}--\r\n").encode()

    multipart = {**BEARER, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    answers = [
        _request(cli_server.port, "POST", "/api/predict", multipart,
                 form(f"http://10.0.0.1/a\n{FORGED}\r\n{FORGED}")),
        _request(cli_server.port, "POST", "/api/predict", multipart,
                 form("http://10.0.0.1/" + "a" * 400_000)),
        _request(cli_server.port, "POST", "/api/predict", multipart,
                 form("http://10.0.0.1/" + "a" * (5 * 2**20))),
        _request(cli_server.port, "POST", "/api/predict", {**BEARER, "Content-Type": "application/json"},
                 json.dumps({"url": "http://10.0.0.1/" + "b" * (5 * 2**20)}).encode()),
    ]
    assert [a[0] for a in answers] == [400, 400, 413, 400]
    time.sleep(0.5)  # the subprocess' stderr is read by a thread
    assert len(ready_lines()) == 1, "no forged line"
    assert sum(map(len, cli_server.stderr)) - size_before < 4000


def test_wrong_keys_at_the_real_server_are_slowed(cli_server, capsys):
    """One keep-alive client guessing for 3 s from 127.0.0.3; a friend at 127.0.0.1 is not
    slowed meanwhile."""
    import http.client

    class FromAddress(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.create_connection((self.host, self.port), self.timeout,
                                                 source_address=("127.0.0.3", 0))

    counts: dict[int, int] = {}
    retry_after = None
    connection = FromAddress("127.0.0.1", cli_server.port, timeout=15)
    deadline = time.monotonic() + 3.0
    guess = 0
    while time.monotonic() < deadline:
        guess += 1
        connection.request("GET", f"/?key=wrong-guess-{guess:08d}")
        response = connection.getresponse()
        response.read()
        counts[response.status] = counts.get(response.status, 0) + 1
        retry_after = response.getheader("Retry-After") or retry_after
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = FromAddress("127.0.0.1", cli_server.port, timeout=15)
    connection.close()
    # compared at all: the free tries, the one that starts the 2-s wait, and at most one more
    # when that wait ends (the next wait is 4 s)
    assert FREE_ATTEMPTS + 1 <= counts.get(403, 0) <= FREE_ATTEMPTS + 2, counts
    assert counts.get(429, 0) >= 1 and retry_after is not None
    status, headers, _ = _request(cli_server.port, "GET", f"/?key={KEY}")
    assert status == 303 and headers["location"] == "/"
    with capsys.disabled():
        print(f"\nwrong keys in 3 s from one address: {counts} -> "
              f"{counts.get(403, 0) / 3:.1f} compared/s")


def test_a_url_download_cannot_grow_the_folders_past_the_quota(tmp_path, model):
    """What is left under the quota caps the download: a song bigger than that room is
    refused by its size while it downloads, and the folders stay within the quota."""
    from conftest import serve_directory

    from helpers.web.jobs import FETCH_FAILED

    site = tmp_path / "site"
    site.mkdir()
    big = _wav_bytes(seconds=60.0)  # 2.6 MB
    (site / "long song.wav").write_bytes(big)
    quota = len(big) // 2
    app = _make_app(tmp_path, model, disk_quota_bytes=quota)
    try:
        client = app.test_client()
        with serve_directory(site) as server:
            response = client.post("/api/predict", headers=BEARER,
                                   json={"url": server.base + "/long%20song.wav"})
            assert response.status_code == 202
            status_url = response.get_json()["status_url"]
            for _ in range(1200):
                job = client.get(status_url, headers=BEARER).get_json()
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.05)
        assert job["status"] == "failed" and job["error"] == f"URL: {FETCH_FAILED}", job
        downloads = tmp_path / "downloads"
        held = sum(p.stat().st_size for p in downloads.rglob("*") if p.is_file()) \
            if downloads.exists() else 0
        assert held <= quota
    finally:
        app.extensions["music_study"]["jobs"].shutdown()

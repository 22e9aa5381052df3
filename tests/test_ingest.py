"""helpers.audio.ingest: yt-dlp downloads from a local HTTP server, limits, cache, errors."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import numpy as np
import pytest
import soundfile as sf
from conftest import allow_hosts, serve_directory

from helpers.audio import ingest
from helpers.errors import InputError

SR = 22050


def _write_tone(path, seconds, freq=440.0):
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, y.astype(np.float32), SR, format="OGG", subtype="VORBIS")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local web site: a song, a page embedding it, a two-song page, a page without audio."""
    root = tmp_path_factory.mktemp("site")
    _write_tone(root / "song.ogg", 6.0)
    _write_tone(root / "other song.ogg", 4.0, freq=660.0)
    (root / "page.html").write_text(
        "<!doctype html><html><head><title>Évening Song / Live?</title></head>"
        "<body><audio controls src='song.ogg'></audio></body></html>")
    (root / "list.html").write_text(
        "<!doctype html><html><head><title>Two songs</title></head><body>"
        "<audio src='song.ogg'></audio><audio src='other%20song.ogg'></audio></body></html>")
    (root / "news.html").write_text(
        "<!doctype html><html><head><title>News</title></head><body><p>No music.</p></body></html>")
    (root / "notes.txt").write_text("just some text, not audio\n")
    with serve_directory(root) as server:
        yield {"base": server.base, "requests": server.requests}


def test_direct_audio_url_is_downloaded_with_sidecar_and_reused(site, tmp_path):
    url = site["base"] + "/song.ogg"
    first = ingest.fetch_audio(url, download_dir=tmp_path)
    assert first.path.parent == tmp_path and first.path.suffix == ".ogg"
    assert first.duration == pytest.approx(6.0, abs=0.1)
    assert first.source_url == url and first.id
    assert sf.info(str(first.path)).samplerate > 0
    sidecar = json.loads(first.path.with_suffix(".json").read_text())
    assert sidecar["source_url"] == url and sidecar["title"] == first.title
    assert sidecar["duration"] == pytest.approx(6.0, abs=0.1)

    before = list(site["requests"])
    again = ingest.fetch_audio(url, download_dir=tmp_path)
    assert again == first
    assert site["requests"] == before, "the second call must not touch the network"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".ogg"]


def test_html5_audio_page_gives_title_and_a_safe_file_name(site, tmp_path):
    got = ingest.fetch_audio(site["base"] + "/page.html", download_dir=tmp_path)
    assert "Evening Song" in got.title or "Évening Song" in got.title
    assert got.path.is_file()
    name = got.path.name
    assert all(c.isalnum() or c in "._-" for c in name), name
    assert "/" not in name and not name.startswith(".")


def test_playlist_page_lists_entries_and_fetch_refuses_it(site, tmp_path):
    entries = ingest.playlist_entries(site["base"] + "/list.html")
    assert len(entries) == 2
    assert all(isinstance(e, ingest.PlaylistEntry) and e.url for e in entries)
    # each entry points at its own song, not back at the playlist page, so it can be fetched
    assert len({e.url for e in entries}) == 2 and all(e.url != site["base"] + "/list.html" for e in entries)
    fetched = ingest.fetch_audio(entries[0].url, download_dir=tmp_path)
    assert fetched.path.is_file()
    single = ingest.playlist_entries(site["base"] + "/song.ogg")
    assert len(single) == 1
    with pytest.raises(InputError, match="playlist"):
        ingest.fetch_audio(site["base"] + "/list.html", download_dir=tmp_path)


def _one_line(exc_info, url):
    message = str(exc_info.value)
    assert "\n" not in message and message.startswith(url), message
    return message


def test_http_404_is_a_clear_error(site, tmp_path):
    url = site["base"] + "/missing.ogg"
    with pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(url, download_dir=tmp_path)
    assert "404" in _one_line(exc_info, url)


def test_closed_port_is_a_network_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/song.ogg"
    with allow_hosts(f"127.0.0.1:{port}"), pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(url, download_dir=tmp_path)
    assert "cannot reach the server" in _one_line(exc_info, url)


@pytest.mark.parametrize("page", ["/news.html", "/notes.txt"])
def test_a_page_without_audio_is_refused_and_leaves_nothing(site, tmp_path, page):
    url = site["base"] + page
    with pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(url, download_dir=tmp_path)
    assert "audio" in _one_line(exc_info, url)
    assert not [p for p in tmp_path.glob("*") if p.suffix != ".json"]


def test_over_long_and_over_large_songs_are_refused(site, tmp_path):
    url = site["base"] + "/other%20song.ogg"
    with pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(url, download_dir=tmp_path, max_duration=2.0)
    assert "over the" in _one_line(exc_info, url) and "limit" in str(exc_info.value)
    with pytest.raises(InputError, match="limit"):
        ingest.fetch_audio(url, download_dir=tmp_path, max_filesize=2_000)
    assert list(tmp_path.iterdir()) == [], "refused songs must not stay on disk"


def test_unsupported_scheme_and_local_paths(tmp_path):
    with pytest.raises(InputError, match="unsupported URL scheme"):
        ingest.fetch_audio("ftp://127.0.0.1/song.ogg", download_dir=tmp_path)
    with pytest.raises(InputError, match="not an http"):
        ingest.fetch_audio(str(tmp_path / "mine.ogg"), allow_local=False)
    with pytest.raises(InputError, match="file not found"):
        ingest.fetch_audio(tmp_path / "nope.ogg")
    song = tmp_path / "mine.ogg"
    _write_tone(song, 2.0)
    local = ingest.fetch_audio(str(song))
    assert local.path == song.resolve() and local.source_url is None
    assert local.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("parts, expected", [
    (("abc", "Hello World!"), "abc_Hello_World"),
    (("id", "../../etc/passwd"), "id_.._.._etc_passwd"),
    (("id", "Café — Ünïcode"), "id_Cafe_Unicode"),
    (("", ""), "audio"),
    (("x", "a" * 500), "x_" + "a" * 118),
])
def test_safe_filename(parts, expected):
    assert ingest.safe_filename(*parts) == expected


# --------------------------------------------------------------------------- URL rules, cache

class _Redirect(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a redirect to ``self.server.target``."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.hits += 1
        self.send_response(302)
        self.send_header("Location", self.server.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9/song.ogg", "loopback"),
    ("http://localhost:9/song.ogg", "loopback"),
    ("http://2130706433:9/song.ogg", "loopback"),          # 127.0.0.1 as one number
    ("http://[::1]:9/song.ogg", "loopback"),
    ("http://[::ffff:10.1.2.3]/song.ogg", "private"),
    ("http://192.168.1.20/song.ogg", "private"),
    ("http://10.0.0.1/song.ogg", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://224.0.0.1/x", "multicast"),
    ("http://0.0.0.0:9/x", "unspecified"),
    ("http://240.0.0.1/x", "reserved"),
    ("http://100.64.0.1/x", "not a public address"),
])
def test_non_public_addresses_are_refused_before_any_request(tmp_path, url, reason):
    with pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(url, download_dir=tmp_path)
    message = _one_line(exc_info, url)
    assert "refused" in message and reason in message
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", [
    "/etc/passwd", "~/.bashrc", "/proc/self/environ", "file:///etc/passwd", "ftp://x.org/a.ogg",
    "javascript:alert(1)", "data:audio/wav;base64,AAAA", "example.org/song.ogg", "",
])
def test_only_http_urls_when_local_paths_are_not_allowed(tmp_path, source):
    with pytest.raises(InputError) as exc_info:
        ingest.fetch_audio(source, download_dir=tmp_path, allow_local=False)
    assert "http" in str(exc_info.value)


def test_redirect_from_an_allowed_server_to_loopback_is_refused(site, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    server.target, server.hits = site["base"].replace("127.0.0.1", "localhost") + "/song.ogg", 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = len(site["requests"])
    try:
        url = f"http://127.0.0.1:{server.server_port}/song.ogg"
        with allow_hosts(f"127.0.0.1:{server.server_port}"), pytest.raises(InputError) as exc_info:
            ingest.fetch_audio(url, download_dir=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert server.hits >= 1, "the allowed server was asked"
    assert "refused" in _one_line(exc_info, url) and "loopback" in str(exc_info.value)
    assert len(site["requests"]) == before, "the redirect target was never contacted"


def test_netsafe_guard_only_acts_in_its_thread():
    from helpers.audio import netsafe

    with netsafe.guard():
        with pytest.raises(netsafe.UnsafeAddressError):
            socket.getaddrinfo("127.0.0.1", 80)
        results = []
        worker = threading.Thread(target=lambda: results.append(socket.getaddrinfo("127.0.0.1", 80)))
        worker.start()
        worker.join()
        assert results and results[0]
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_two_urls_with_one_file_name_are_two_songs(tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    _write_tone(site / "song.ogg", 3.0, freq=220.0)
    _write_tone(site / "sub" / "song.ogg", 5.0, freq=880.0)
    with serve_directory(site) as server:
        first = ingest.fetch_audio(server.base + "/song.ogg", download_dir=tmp_path / "dl")
        second = ingest.fetch_audio(server.base + "/sub/song.ogg", download_dir=tmp_path / "dl")
        again = ingest.fetch_audio(server.base + "/sub/song.ogg#t=3", download_dir=tmp_path / "dl")
    assert first.path != second.path
    assert first.duration == pytest.approx(3.0, abs=0.1)
    assert second.duration == pytest.approx(5.0, abs=0.1)
    assert again.path == second.path
    assert ingest.cached_download(server.base + "/song.ogg", tmp_path / "dl") == first.path
    assert ingest.normalise_url("HTTP://A.org:80/x?b=1#f") == "http://a.org/x?b=1"


def test_concurrent_requests_for_one_new_url_share_one_download(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _write_tone(site / "song.ogg", 4.0)
    results, errors = [], []

    def fetch():
        try:
            results.append(ingest.fetch_audio(url, download_dir=tmp_path / "dl"))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    with serve_directory(site) as server:
        url = server.base + "/song.ogg"
        threads = [threading.Thread(target=fetch) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        downloads = server.requests.count("/song.ogg")
    assert errors == [] and len(results) == 3
    assert len({r.path for r in results}) == 1 and results[0].path.is_file()
    assert [p.suffix for p in (tmp_path / "dl").iterdir()].count(".ogg") == 1
    assert not [p for p in (tmp_path / "dl").iterdir() if p.name.startswith(".")]
    single = tmp_path / "single"
    with serve_directory(site) as server:
        ingest.fetch_audio(server.base + "/song.ogg", download_dir=single)
        assert downloads == server.requests.count("/song.ogg"), "one download for three requests"


def test_an_hour_long_song_is_refused_from_its_header_before_conversion(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    # 60 minutes at 1 kHz, 8-bit: a real hour-long file of 3.6 MB
    sf.write(site / "hour.wav", np.zeros(3600 * 1000, dtype=np.int16), 1000, subtype="PCM_U8")
    with serve_directory(site) as server:
        url = server.base + "/hour.wav"
        with pytest.raises(InputError) as exc_info:
            ingest.fetch_audio(url, download_dir=tmp_path / "dl")
    assert "60.0 min long, over the 20.0 min limit" in _one_line(exc_info, url)
    assert list((tmp_path / "dl").iterdir()) == []


def test_disk_quota_removes_oldest_unkept_files_first(tmp_path):
    import os

    uploads, downloads = tmp_path / "uploads", tmp_path / "downloads"
    uploads.mkdir()
    downloads.mkdir()
    files = []
    for i, folder in enumerate([uploads, downloads, uploads, downloads]):
        path = folder / f"f{i}.ogg"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        files.append(path)
    (downloads / "abc_f1.json").write_text(json.dumps({"file": "f1.ogg"}))
    assert ingest.enforce_disk_quota([uploads, downloads], 2500, keep=[files[0]])
    assert [p.exists() for p in files] == [True, False, False, True]
    assert not (downloads / "abc_f1.json").exists()
    assert not ingest.enforce_disk_quota([uploads, downloads], 500, keep=files)
    assert all(p.exists() for p in (files[0], files[3]))


def test_announced_duration_and_size_are_refused_before_downloading(site, tmp_path, monkeypatch):
    announced = {"id": "x1", "extractor_key": "Example", "title": "Long set",
                 "url": site["base"] + "/song.ogg"}
    before = len(site["requests"])
    for extra, reason in (({"duration": 3600}, "60.0 min long"), ({"filesize": 500e6}, "500.0 MB")):
        monkeypatch.setattr(ingest, "_extract_info", lambda url, options, e=extra: {**announced, **e})
        with pytest.raises(InputError, match=reason):
            ingest.fetch_audio(site["base"] + "/announced", download_dir=tmp_path)
    assert len(site["requests"]) == before, "nothing was downloaded"
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_a_server_that_drips_bytes_is_stopped_at_the_download_deadline(tmp_path, monkeypatch):
    """Each byte arrives well within the socket timeout, so only a total deadline ends it."""
    import time

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "audio/ogg")
            self.send_header("Content-Length", str(1_000_000))
            self.end_headers()
            try:
                for _ in range(200):  # bounded: 20 s at most
                    self.wfile.write(b"\0" * 64)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(ingest, "MAX_DOWNLOAD_SECONDS", 1.0)
    url = f"http://127.0.0.1:{server.server_port}/song.ogg"
    try:
        with allow_hosts(f"127.0.0.1:{server.server_port}"), pytest.raises(InputError) as exc_info:
            ingest.fetch_audio(url, download_dir=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert "download did not finish within 1 s" in _one_line(exc_info, url)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "nothing of it is kept"

"""helpers.ingest: yt-dlp downloads from a local HTTP server, limits, cache, errors."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import soundfile as sf
from conftest import serve_directory

from helpers import ingest
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
    with pytest.raises(InputError) as exc_info:
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

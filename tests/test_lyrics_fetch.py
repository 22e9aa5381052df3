"""Lyrics fetching against local servers that answer like Genius and LRCLIB (no internet).

One threaded HTTP server on 127.0.0.1 plays both providers: routes are set per test as a list
of canned answers (status, body, headers, delay) served in turn, the last one repeating.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from helpers import cli
from helpers.errors import InputError
from helpers.lyrics.fetch import (
    USER_AGENT,
    LyricsCache,
    RetryPolicy,
    fetch_lyrics,
    load_liked_lyrics,
)

FAST = RetryPolicy(timeout=0.3, retries=2, backoff=0.01, max_backoff=0.05)

# An invented song (no one's copyright) with accents and two stanzas.
SONG_LINES = [
    "Down by the river where the willows grow",
    "I waited for the morning and the morning was slow",
    "Un café, un niño, a song I used to know",
    "",
    "Carry me home, carry me home",
    "Over the hills where the wild winds roam",
]
SONG = "\n".join(SONG_LINES)
DICKENS = ("It was the best of times, it was the worst of times, it was the age of wisdom, it "
           "was the age of foolishness, it was the epoch of belief, it was the epoch of "
           "incredulity, it was the season of Light, it was the season of Darkness, it was the "
           "spring of hope, it was the winter of despair.")


def genius_page(lines, contributors=12):
    """A song page shaped like genius.com's: header, lyrics containers, debris inside them.

    The "You might also like" block sits inside a stanza, glued to the lines around it, and
    the second container starts a new stanza, as on the real site.
    """
    verse = "<br/>".join(lines[:3])
    chorus_a, chorus_b = lines[4], "<br/>".join(lines[5:])
    return f"""<html><head><title>Lyrics</title></head><body>
<div class="LyricsHeader__Container-sc-1">{contributors} ContributorsRiver Song Lyrics</div>
<div data-lyrics-container="true" class="Lyrics__Container-sc-1ynbvzw-1">{contributors} Contributors\
River Song Lyrics[Verse 1]<br/>{verse}<br/><br/>[Chorus]<br/>{chorus_a}\
<div class="RightSidebar">You might also like</div>{chorus_b}</div>
<div data-lyrics-container="true" class="Lyrics__Container-sc-1ynbvzw-1"><br/><br/>[Outro]<br/>\
Carry me h\u200bome45Embed</div>
<div data-exclude-from-selection="true">Not lyrics</div>
</body></html>"""


def genius_hit(song_id, title, artist, path, **extra):
    result = {"id": song_id, "title": title, "full_title": f"{title} by {artist}",
              "primary_artist": {"name": artist}, "url": f"https://genius.com/{path}",
              "lyrics_state": "complete"} | extra
    return {"highlights": [], "index": "song", "type": "song", "result": result}


def genius_search(*hits):
    return {"meta": {"status": 200}, "response": {"hits": list(hits)}}


def lrclib_record(record_id, title, artist, plain=SONG, duration=215.0, **extra):
    return {"id": record_id, "trackName": title, "artistName": artist, "albumName": "Album",
            "duration": duration, "instrumental": False, "plainLyrics": plain,
            "syncedLyrics": None} | extra


NOT_FOUND = (404, {"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"})


class FakeProviders:
    """Routes: path -> list of (status, body, headers, delay); requests are recorded."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                parsed = urlparse(self.path)
                with server_self.lock:
                    server_self.requests.append({
                        "path": parsed.path, "query": parse_qs(parsed.query),
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                    answers = server_self.routes.get(parsed.path)
                    answer = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers \
                        else (404, {"error": "no route"}, {}, 0.0)
                status, body, headers, delay = (tuple(answer) + ({}, 0.0))[:4]
                if delay:
                    threading.Event().wait(delay)
                payload = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                try:
                    self.send_response(status)
                    kind = "application/json" if not isinstance(body, (str, bytes)) else "text/html"
                    self.send_header("Content-Type", f"{kind}; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, path, *answers):
        self.routes[path] = list(answers)

    def paths(self):
        return [r["path"] for r in self.requests]

    def reset(self):
        self.routes.clear()
        self.requests.clear()


@pytest.fixture(scope="module")
def fake_server():
    server = FakeProviders()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def providers(fake_server, monkeypatch, tmp_path):
    fake_server.reset()
    monkeypatch.setenv("MUSIC_STUDY_LRCLIB_URL", fake_server.url)
    monkeypatch.setenv("MUSIC_STUDY_GENIUS_API_URL", fake_server.url + "/")
    monkeypatch.setenv("MUSIC_STUDY_GENIUS_WEB_URL", fake_server.url + "/")
    monkeypatch.setenv("GENIUS_ACCESS_TOKEN", "test-token")
    monkeypatch.setenv("MUSIC_STUDY_LYRICS_CACHE", str(tmp_path / "lyrics.sqlite"))
    monkeypatch.delenv("MUSIC_STUDY_LYRICS_PROVIDERS", raising=False)
    return fake_server


def fetch(*args, **kw):
    kw.setdefault("policy", FAST)
    kw.setdefault("cache", False)
    return fetch_lyrics(*args, **kw)


# --------------------------------------------------------------------------- LRCLIB
def test_lrclib_exact_match_is_found_with_duration_and_user_agent(providers):
    providers.route("/api/get", (200, lrclib_record(7, "River Song", "The Willows")))
    result = fetch("The Willows", "River Song (Radio Edit)", duration=214.6, providers="lrclib")
    assert result.found and result.provider == "lrclib"
    assert result.lyrics == SONG and result.matched_artist == "The Willows"
    request = providers.requests[0]
    assert request["query"] == {"artist_name": ["The Willows"], "track_name": ["River Song"],
                                "duration": ["215"]}
    assert request["headers"]["user-agent"] == USER_AGENT
    assert "music-recommendation-study" in USER_AGENT


def test_lrclib_search_skips_a_wrong_artist_and_takes_the_right_hit(providers):
    providers.route("/api/get", NOT_FOUND)
    providers.route("/api/search", (200, [
        lrclib_record(1, "River Song", "Somebody Else", plain="wrong song\n" * 20),
        lrclib_record(2, "River Song (Live)", "The Willows"),
    ]))
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.found and result.lyrics == SONG and result.matched_title == "River Song (Live)"
    assert any("Somebody Else" in r for r in result.reasons)


def test_lrclib_synced_only_lyrics_lose_their_timestamps(providers):
    synced = "\n".join(f"[00:{i:02d}.00] {line}" for i, line in enumerate(SONG_LINES) if line)
    providers.route("/api/get", (200, lrclib_record(3, "River Song", "The Willows",
                                                    plain=None, syncedLyrics=synced)))
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.found and result.lyrics.splitlines() == [line for line in SONG_LINES if line]


def test_lrclib_instrumental_and_wrong_length_are_not_taken(providers):
    providers.route("/api/get", NOT_FOUND)
    providers.route("/api/search", (200, [
        lrclib_record(4, "River Song", "The Willows", plain=None, instrumental=True),
        lrclib_record(5, "River Song", "The Willows", duration=400.0),
    ]))
    result = fetch("The Willows", "River Song", duration=215, providers="lrclib")
    assert result.status == "not_found" and result.lyrics == ""
    assert any("instrumental" in r for r in result.reasons)
    assert any("lasts 400 s" in r for r in result.reasons)


# --------------------------------------------------------------------------- Genius
def test_genius_song_page_is_scraped_and_cleaned(providers):
    providers.route("/search", (200, genius_search(
        genius_hit(11, "River Song", "The Willows", "The-willows-river-song-lyrics"))))
    providers.route("/The-willows-river-song-lyrics", (200, genius_page(SONG_LINES)))
    result = fetch("The Willows feat. Someone", "River Song (feat. Someone)", providers="genius")
    assert result.found and result.provider == "genius", result.reasons
    assert result.lyrics == SONG + "\n\nCarry me home"
    for debris in ("Contributors", "You might also like", "Embed", "[Chorus]", "Not lyrics", "\u200b"):
        assert debris not in result.lyrics
    search = providers.requests[0]
    assert search["query"]["q"] == ["River Song The Willows"]
    assert search["headers"]["authorization"] == "Bearer test-token"
    assert search["headers"]["user-agent"] == USER_AGENT


def test_genius_dickens_hit_is_rejected_without_fetching_its_page(providers):
    providers.route("/search", (200, genius_search(
        genius_hit(21, "The House of the Rising Sun", "Charles Dickens", "Charles-dickens-chapter-1"),
        {"index": "article", "type": "article", "result": {"title": "House of the Rising Sun"}})))
    providers.route("/Charles-dickens-chapter-1", (200, genius_page([DICKENS] * 6)))
    result = fetch("The Animals", "House of the Rising Sun", providers="genius")
    assert result.status == "not_found" and not result.lyrics
    assert any("Charles Dickens" in r for r in result.reasons)
    assert "/Charles-dickens-chapter-1" not in providers.paths()


def test_genius_book_chapter_and_prose_pages_are_rejected(providers):
    providers.route("/search", (200, genius_search(
        genius_hit(31, "Tell Me (Chapter 3)", "Some Band", "Chapter-3"),
        genius_hit(32, "Tell Me", "Some Band", "Some-band-tell-me-annotated"),
        genius_hit(33, "Tell Me", "Some Band", "Some-band-tell-me-unreleased", lyrics_state="unreleased"))))
    providers.route("/Some-band-tell-me-annotated", (200, genius_page([DICKENS] * 6)))
    result = fetch("Some Band", "Tell Me", providers="genius")
    assert result.status == "not_found"
    reasons = " | ".join(result.reasons)
    assert "Tell Me (Chapter 3)" in reasons and "prose" in reasons and "unreleased" in reasons
    assert "/Chapter-3" not in providers.paths()


def test_genius_missing_page_is_not_found_and_next_hit_is_tried(providers):
    providers.route("/search", (200, genius_search(
        genius_hit(41, "River Song", "The Willows", "Gone-page"),
        genius_hit(42, "River Song", "The Willows", "The-willows-river-song-lyrics"))))
    providers.route("/The-willows-river-song-lyrics", (200, genius_page(SONG_LINES)))
    result = fetch("The Willows", "River Song", providers="genius")
    assert result.found and result.url.endswith("The-willows-river-song-lyrics")
    assert any("no lyrics text" in r for r in result.reasons)


# --------------------------------------------------------------------------- failures
def test_timeouts_are_retried_then_reported_as_an_error(providers):
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows"), {}, 1.0))
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.status == "error"
    assert "timed out" in result.reasons[0] and "3 attempts" in result.reasons[0]
    assert providers.paths().count("/api/get") == 3


def test_429_is_retried_and_retry_after_is_capped(providers, monkeypatch):
    pauses = []
    import helpers.lyrics.fetch as module

    real_get = module.http_get
    monkeypatch.setattr(module, "http_get",
                        lambda *a, **kw: real_get(*a, **kw, sleep=pauses.append))
    providers.route("/api/get", (429, {"message": "slow down"}, {"Retry-After": "120"}),
                    (429, {"message": "slow down"}), (200, lrclib_record(1, "River Song", "The Willows")))
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.found
    assert pauses == [FAST.max_backoff, FAST.backoff * 2]


def test_server_error_falls_back_to_the_next_provider(providers):
    providers.route("/api/get", (500, "Internal Server Error"))
    providers.route("/search", (200, genius_search(
        genius_hit(11, "River Song", "The Willows", "The-willows-river-song-lyrics"))))
    providers.route("/The-willows-river-song-lyrics", (200, genius_page(SONG_LINES)))
    result = fetch("The Willows", "River Song", providers=["lrclib", "genius"])
    assert result.found and result.provider == "genius"
    assert "lrclib: HTTP 500" in result.reasons[0]
    assert providers.paths().count("/api/get") == FAST.retries + 1


@pytest.mark.parametrize("route,body", [
    ("/api/get", "<html>not json</html>"),
    ("/api/get", {"unexpected": "shape"}),
])
def test_malformed_lrclib_answers_are_errors(providers, route, body):
    providers.route(route, (200, body))
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.status == "error" and "malformed" in result.reasons[0]


@pytest.mark.parametrize("body", ["{not json", {"meta": {"status": 200}, "response": {"songs": []}}])
def test_malformed_genius_answers_are_errors(providers, body):
    providers.route("/search", (200, body))
    result = fetch("The Willows", "River Song", providers="genius")
    assert result.status == "error" and "malformed" in result.reasons[0]


def test_genius_without_token_is_bad_input_alone_and_skipped_in_a_list(providers, monkeypatch):
    monkeypatch.delenv("GENIUS_ACCESS_TOKEN")
    with pytest.raises(InputError, match="GENIUS_ACCESS_TOKEN"):
        fetch("The Willows", "River Song", providers="genius")
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows")))
    result = fetch("The Willows", "River Song", providers="genius,lrclib")
    assert result.found and "skipped" in result.reasons[0]


def test_unknown_provider_and_empty_title_are_bad_input(providers):
    with pytest.raises(InputError, match="unknown lyrics provider"):
        fetch("A", "B", providers="musixmatch")
    with pytest.raises(InputError, match="artist and title"):
        fetch("A", "  ")


# --------------------------------------------------------------------------- cache
class Clock:
    def __init__(self):
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now


def test_found_songs_are_fetched_once_and_refresh_asks_again(providers, tmp_path):
    cache = LyricsCache(tmp_path / "c.sqlite")
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows")))
    first = fetch("The Willows", "River Song", providers="lrclib", cache=cache)
    again = fetch("the willows", "River Song (Radio Edit)", providers="lrclib", cache=cache)
    assert first.found and again.cached and again.lyrics == first.lyrics
    assert len(providers.requests) == 1
    fetch("The Willows", "River Song", providers="lrclib", cache=cache, refresh=True)
    assert len(providers.requests) == 2
    assert len(cache) == 1 and cache.found_songs()["lyrics"].tolist() == [SONG]


def test_not_found_is_cached_until_it_expires(providers, tmp_path):
    clock = Clock()
    cache = LyricsCache(tmp_path / "c.sqlite", not_found_ttl=timedelta(days=30), clock=clock)
    providers.route("/api/get", NOT_FOUND)
    providers.route("/api/search", (200, []))
    first = fetch("Nobody", "Nothing", providers="lrclib", cache=cache)
    assert first.status == "not_found" and "no hits" in first.reasons[0]
    n = len(providers.requests)
    assert fetch("Nobody", "Nothing", providers="lrclib", cache=cache).cached
    assert len(providers.requests) == n
    clock.now += timedelta(days=31)
    assert not fetch("Nobody", "Nothing", providers="lrclib", cache=cache).cached
    assert len(providers.requests) == 2 * n


def test_errors_are_not_cached_and_do_not_replace_a_stored_song(providers, tmp_path):
    cache = LyricsCache(tmp_path / "c.sqlite")
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows")))
    fetch("The Willows", "River Song", providers="lrclib", cache=cache)
    providers.route("/api/get", (503, "busy"))
    refreshed = fetch("The Willows", "River Song", providers="lrclib", cache=cache, refresh=True)
    assert refreshed.status == "error"
    kept = fetch("The Willows", "River Song", providers="lrclib", cache=cache)
    assert kept.found and kept.cached and kept.lyrics == SONG
    providers.route("/api/get", (503, "busy"))
    assert fetch("Other", "Song", providers="lrclib", cache=cache).status == "error"
    assert len(cache) == 1


def test_the_cache_table_can_share_a_database_and_a_corrupt_file_is_refused(tmp_path):
    shared = tmp_path / "labels.sqlite"
    with sqlite3.connect(shared) as conn:
        conn.execute("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO songs (title) VALUES ('kept')")
    LyricsCache(shared)
    with sqlite3.connect(shared) as conn:
        assert conn.execute("SELECT title FROM songs").fetchall() == [("kept",)]
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="broken.sqlite"):
        LyricsCache(broken)
    assert broken.read_bytes() == b"this is not a database" * 100


# --------------------------------------------------------------------------- command line
def test_cli_json_prints_one_document_with_analysis(providers, capsys):
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows")))
    status = cli.main(["lyrics", "The Willows", "River Song", "--provider", "lrclib", "--json",
                       "--timeout", "2", "--retries", "0"])
    out, err = capsys.readouterr()
    assert status == 0
    document = json.loads(out)
    assert document["status"] == "found" and document["lyrics"] == SONG
    assert document["analysis"]["n_lines"] == 5
    assert "carry" in [t["term"] for t in document["analysis"]["top_terms"]]
    assert set(document["analysis"]["sentiment"]) >= {"mean", "share_positive", "arc_change"}
    # the second run is served from the cache named by MUSIC_STUDY_LYRICS_CACHE
    assert cli.main(["lyrics", "The Willows", "River Song", "--provider", "lrclib", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True
    assert len(providers.requests) == 1


def test_cli_not_found_exits_1_and_provider_failure_exits_2(providers, capsys):
    providers.route("/api/get", NOT_FOUND)
    providers.route("/api/search", (200, [lrclib_record(9, "Other", "Somebody")]))
    assert cli.main(["lyrics", "The Willows", "River Song", "--provider", "lrclib"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "not found" in err and "Somebody" in err
    providers.route("/api/get", (200, "<html>"))
    assert cli.main(["lyrics", "X", "Y", "--provider", "lrclib", "--json", "--refresh"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "malformed" in err


# --------------------------------------------------------------------------- liked-songs lists
def test_liked_songs_use_given_and_cached_lyrics_and_fetch_only_when_asked(providers, tmp_path):
    cache = LyricsCache(tmp_path / "c.sqlite")
    providers.route("/api/get", (200, lrclib_record(1, "River Song", "The Willows")))
    fetch("The Willows", "River Song", providers="lrclib", cache=cache)
    liked = tmp_path / "liked.csv"
    liked.write_text('artist,title,lyrics\n'
                     'Anon,Given Song,"[Verse]\nUn café\npara ti"\n'
                     'The Willows,River Song (Radio Edit),\n'
                     'The Hills,Hill Song,\n', encoding="utf-8")
    providers.reset()
    offline = load_liked_lyrics(liked, cache=cache)
    assert offline["lyrics_status"].tolist() == ["given", "cached", "not_fetched"]
    assert offline["lyrics"].tolist()[:2] == ["Un café\npara ti", SONG]
    assert providers.requests == []
    providers.route("/api/get", (200, lrclib_record(2, "Hill Song", "The Hills")))
    fetched = load_liked_lyrics(liked, cache=cache, fetch_missing=True, providers="lrclib",
                                policy=FAST)
    assert fetched["lyrics_status"].tolist() == ["given", "cached", "found"]
    assert providers.paths() == ["/api/get"]


def test_liked_songs_file_without_titles_is_bad_input(tmp_path):
    bad = tmp_path / "liked.csv"
    bad.write_text("name,song\nA,B\n")
    with pytest.raises(InputError, match="title"):
        load_liked_lyrics(bad, cache=False)
    with pytest.raises(InputError, match="does not exist"):
        load_liked_lyrics(tmp_path / "missing.csv", cache=False)


def test_not_found_without_a_genius_token_is_cached_for_the_providers_that_answered(
        providers, monkeypatch, tmp_path):
    monkeypatch.delenv("GENIUS_ACCESS_TOKEN")
    cache = LyricsCache(tmp_path / "c.sqlite")
    providers.route("/api/get", NOT_FOUND)
    providers.route("/api/search", (200, []))
    first = fetch("Nobody", "Nothing", providers="lrclib,genius", cache=cache)
    assert first.status == "not_found" and any("skipped" in r for r in first.reasons)
    n = len(providers.requests)
    assert fetch("Nobody", "Nothing", providers="lrclib,genius", cache=cache).cached
    assert len(providers.requests) == n
    # once Genius can be asked, the cached "not found" no longer covers the fetch
    monkeypatch.setenv("GENIUS_ACCESS_TOKEN", "test-token")
    providers.route("/search", (200, genius_search()))
    assert not fetch("Nobody", "Nothing", providers="lrclib,genius", cache=cache).cached
    assert "/search" in providers.paths()


def test_genius_requests_share_the_retry_policy(providers):
    providers.route("/search", (429, {"meta": {"status": 429}}, {"Retry-After": "0"}),
                    (200, genius_search(genius_hit(11, "River Song", "The Willows", "Slow-page"))))
    providers.route("/Slow-page", (200, genius_page(SONG_LINES), {}, 1.0))
    result = fetch("The Willows", "River Song", providers="genius")
    assert result.status == "error" and "timed out" in result.reasons[0]
    assert providers.paths() == ["/search", "/search"] + ["/Slow-page"] * (FAST.retries + 1)


def test_a_genius_page_without_lyrics_is_not_found(providers):
    providers.route("/search", (200, genius_search(genius_hit(11, "River Song", "The Willows", "Empty"))))
    providers.route("/Empty", (200, "<html><body><p>Nothing here</p></body></html>"))
    result = fetch("The Willows", "River Song", providers="genius")
    assert result.status == "not_found" and "no lyrics text" in result.reasons[0]


def test_an_unusable_provider_url_is_an_error_not_a_traceback(providers, monkeypatch):
    monkeypatch.setenv("MUSIC_STUDY_LRCLIB_URL", "not-a-url")
    result = fetch("The Willows", "River Song", providers="lrclib")
    assert result.status == "error" and "failed" in result.reasons[0]

"""The web page as a friend and as an attacker see it: a real ``music-study serve`` subprocess
(waitress), driven by Chromium through Playwright at phone width."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import serve_directory

from helpers.store import LabelStore

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.slow


def _need_chromium():
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("MUSIC_STUDY_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{reason}; CI installs it")
        pytest.skip(reason)


@pytest.fixture()
def served(tmp_path):
    """A ``music-study serve --port 0`` subprocess on its own data folder; yields its link."""
    _need_chromium()
    from helpers.models import default_model
    from helpers.paths import default_model_path

    default_model()  # the cached model file, copied so the server starts without retraining
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    shutil.copy(default_model_path(), data / "models" / default_model_path().name)
    env = {**os.environ, "MUSIC_STUDY_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    env.pop("MUSIC_STUDY_LABEL_STORE", None)
    log = open(tmp_path / "serve.log", "w")  # a file: a full pipe nobody reads would block it
    server = subprocess.Popen([sys.executable, "-m", "helpers", "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    lines = []
    reader = threading.Thread(target=lambda: lines.append(server.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=180)
    try:
        assert lines and "key=" in lines[0], f"no link printed; stderr: {_log_tail(tmp_path)}"
        link = lines[0].strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#key=[A-Za-z0-9_-]+", link), link
        yield link, data
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _log_tail(tmp_path) -> str:
    """The end of the server's stderr (for failure messages)."""
    return (tmp_path / "serve.log").read_text(errors="replace")[-3000:]


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _shoot(page, name, tmp_path):
    folder = os.environ.get("MUSIC_STUDY_SCREENSHOTS") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, name), full_page=True)


def _unless_reloading(read):
    """``read()``, or None when the page navigated during it: the job page reloads itself into
    the result when the job ends, so any read of the job page can meet a destroyed context."""
    from playwright.sync_api import Error

    try:
        return read()
    except Error as error:
        if "Execution context was destroyed" not in str(error):
            raise
        return None


def _history_urls(profile: Path) -> list[str]:
    """Every URL in the Chromium profile's history database (written when the browser closes)."""
    import sqlite3

    with sqlite3.connect(profile / "Default" / "History") as db:
        return [row[0] for row in db.execute("SELECT url FROM urls")]


def test_a_friend_uploads_sees_progress_and_corrects_on_a_phone(served, root, tmp_path):
    from playwright.sync_api import sync_playwright

    link, data = served
    key = link.split("#key=")[1]
    song = root / "data" / "music" / "openmsx_be_sharp_render.ogg"  # 2.5 min: 5 windows
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE)
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.goto(link)  # the "needs its key" page sends the key once and loads the page again
        page.wait_for_selector("#predict", timeout=30_000)
        assert key not in page.url and "key=" not in page.url, "the key leaves the address bar"
        entries = browser.new_cdp_session(page).send("Page.getNavigationHistory")["entries"]
        assert entries and not any(key in e["url"] for e in entries), entries  # back / forward
        assert page.is_visible("#predict") and _fits_the_width(page)
        _shoot(page, "web_home_390.png", tmp_path)
        page.set_input_files("#file", str(song))
        page.click("#predict")
        try:
            page.wait_for_url(re.compile(r"/jobs/"), timeout=60_000)
        except Exception as error:  # noqa: BLE001 - re-raised with what the server said
            raise AssertionError(f"no job page ({page.url}): {page.content()[:800]}\n"
                                 f"server: {_log_tail(tmp_path)}") from error
        stages, job_page_checked = set(), False
        deadline = time.monotonic() + 300
        while not page.is_visible("#predicted-genre"):
            assert time.monotonic() < deadline, f"no result; stages seen: {stages}"
            shown = _unless_reloading(lambda: page.locator("#job-stage").all_inner_texts())
            stages.update(shown or ())
            if shown and not job_page_checked:
                fits = _unless_reloading(lambda: _fits_the_width(page))
                if fits is not None:
                    assert fits
                    _shoot(page, "web_job_390.png", tmp_path)
                    job_page_checked = True
            page.wait_for_timeout(150)
        assert job_page_checked, "the job page was seen at phone width"
        assert stages, "the job page was shown while the song was analysed"
        assert all(re.fullmatch(r"queued|starting|downloading|analysing( window \d+ of 5)?|saving", s)
                   for s in stages), stages
        said = page.inner_text("#predicted-genre")
        assert page.locator("#timeline tr").count() == 5
        assert _fits_the_width(page)
        _shoot(page, "web_result_390.png", tmp_path)
        options = page.eval_on_selector_all("#genre option", "os => os.map(o => o.value)")
        choice = next(g for g in options if g and g != said)
        page.select_option("#genre", choice)
        page.fill("#who", "Phone Friend")
        page.click("#correct")
        page.wait_for_selector(".notice", timeout=60_000)
        assert f"is {choice}" in page.inner_text(".notice")
        assert _fits_the_width(page)
        _shoot(page, "web_saved_390.png", tmp_path)
        page.goto(link)  # the link again, signed in: the page only takes the key out of the URL
        page.wait_for_selector("#predict", timeout=30_000)
        assert page.evaluate("location.hash") == "" and key not in page.url  # ran on load
        entries = browser.new_cdp_session(page).send("Page.getNavigationHistory")["entries"]
        assert len(entries) >= 4 and not any(key in e["url"] for e in entries), entries
        if os.environ.get("MUSIC_STUDY_SHOW_HISTORY"):
            print("\nsession history:", [e["url"] for e in entries])
        browser.close()
    # Chromium keeps the URL a person opens in its history database, whatever the page does
    # afterwards; every page the visit went through after that holds no key
    urls = _history_urls(profile)
    if os.environ.get("MUSIC_STUDY_SHOW_HISTORY"):
        print("history database:", urls)
    assert [u for u in urls if key in u] == [link], urls
    assert any("/jobs/" in u for u in urls), urls
    labels = LabelStore(data / "labels.sqlite").current_labels()
    assert labels[["genre", "model_said", "who", "where"]].iloc[0].tolist() == [
        choice, said, "Phone Friend", "web"]


def _api_prediction(link: str, song: Path) -> None:
    """Create song 1 / prediction 1 through the JSON API (so a forged label has a target)."""
    base, key = link.split("/#key=")
    boundary = "----music-study-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{song.name}\"\r\nContent-Type: audio/ogg\r\n\r\n").encode()
    body += song.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/api/predict", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        status_url = json.load(response)["status_url"]
    deadline = time.monotonic() + 300
    while True:
        check = urllib.request.Request(status_url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(check, timeout=60) as response:
            status = json.load(response)
        if status["status"] in ("done", "failed"):
            assert status["status"] == "done", status
            return
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_a_cross_site_page_on_another_port_stores_nothing(served, root, tmp_path):
    from playwright.sync_api import sync_playwright

    link, data = served
    base = link.split("/#key=")[0]
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:  # waitress, no version
        assert response.status == 200 and response.read() == b"ok\n"
        assert response.headers["Server"] == "music-study"
        assert response.headers["X-Frame-Options"] == "DENY"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/", timeout=30)
    assert refused.value.code == 401 and "Werkzeug" not in str(refused.value.headers)
    _api_prediction(link, root / "data" / "music" / "openmsx_be_sharp_render.ogg")
    attack = tmp_path / "attack"
    attack.mkdir()
    (attack / "label.html").write_text(
        f"<!doctype html><form id=f method=post action='{base}/label'>"
        "<input name=song_id value=1><input name=prediction_id value=1>"
        "<input name=action value=correct><input name=new_genre value='junk from evil'>"
        "<input name=who value=attacker></form><script>document.getElementById('f').submit()</script>")
    (attack / "predict.html").write_text(
        f"<!doctype html><form id=f method=post action='{base}/predict'>"
        "<input name=url value='http://127.0.0.1:22/'></form>"
        "<script>document.getElementById('f').submit()</script>")
    (attack / "frame.html").write_text(f"<!doctype html><iframe id=x src='{base}/'></iframe>")
    store = LabelStore(data / "labels.sqlite")
    events_before = len(store.events())
    with serve_directory(attack, allow=False) as evil, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport=PHONE)
        page.goto(link)  # the victim holds a valid session cookie
        page.wait_for_selector("#predict", timeout=30_000)
        for name in ("label.html", "predict.html"):
            with page.expect_navigation(url=re.compile(re.escape(base)), timeout=30_000):
                page.goto(f"{evil.base}/{name}")
            assert "did not come from this page" in page.inner_text("body"), name
        page.goto(f"{evil.base}/frame.html")
        page.wait_for_timeout(1000)
        framed = page.frames[-1]
        assert framed.url in ("about:blank", "chrome-error://chromewebdata/") or not framed.content().count("predict")
        browser.close()
    assert len(store.events()) == events_before == 0
    assert len(store.songs()) == 1

"""The labeler in a real JupyterLab in Chromium: fixed keys, answers bound to the song on screen,
likes and undo, relabelling from the review list, the play key, a .au file and a tagged song.

Slow (a JupyterLab server, a kernel and a browser): marked ``slow``. Skips when Playwright,
Chromium, JupyterLab or the ipyevents extension is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

from helpers.labeling.launch import LABELER_NOTEBOOK, working_copy
from helpers.labeling.session import DEBOUNCE_SECONDS

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
ACCEPT_READY = ("() => [...document.querySelectorAll('button')].some("
                "b => /^Accept \\S+ \\[a\\]$/.test(b.textContent.trim()) && !b.disabled)")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    pytest.importorskip("playwright.sync_api")
    jupyter = Path(sys.executable).parent / "jupyter"
    if not CHROMIUM.is_file() or not jupyter.is_file():
        pytest.skip("needs /usr/bin/chromium and JupyterLab")
    extensions = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True)
    if "ipyevents" not in extensions.stdout + extensions.stderr:
        pytest.skip("the ipyevents JupyterLab extension is not installed")
    songs = tmp_path / "songs"
    songs.mkdir()
    t = np.arange(6 * 22050) / 22050
    def tone(i, freq):
        return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + i % 2)).astype(np.float32) / 2

    for i, freq in enumerate((220, 330, 440, 550)):
        sf.write(songs / f"tone_{freq}.wav", tone(i, freq), 22050)
    sf.write(songs / "tone_au_660.au", tone(0, 660), 22050, format="AU")  # GTZAN's own format
    with sf.SoundFile(songs / "tagged.flac", "w", 22050, 1, format="FLAC") as handle:
        handle.title, handle.artist = "Tagged Tone", "Test Artist"
        handle.write(tone(1, 770))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from helpers.labeling.widget import Labeler\n"
        f"labeler = Labeler({str(songs)!r}, store={str(tmp_path / 'labels.sqlite')!r}, "
        "window_seconds=3.0, audio=True, workers=1, epsilon=0.0)\n"
        "labeler.show()")], metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, tmp_path / "labeler.ipynb")
    port, token = _free_port(), "labeler-browser-test"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               MUSIC_STUDY_DATA_DIR=str(tmp_path / "data"), JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               MUSIC_STUDY_INTERACTIVE="1")  # as `make label` starts JupyterLab
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("JupyterLab did not start")
                time.sleep(0.5)
        yield f"{base}/lab/tree/labeler.ipynb?token={token}", tmp_path
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp_path / "jupyter-config", ignore_errors=True)


def _events(store: Path) -> list[tuple]:
    with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as db:
        return db.execute("SELECT id, song_id, kind, genre FROM label_events ORDER BY id").fetchall()


def test_the_labeler_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import sync_playwright

    url, folder = jupyter_lab
    latencies: list[float] = []

    def status_text(page):
        return page.evaluate("() => (document.querySelector('.labeler-status') || {}).textContent || ''")

    def status(page, text, before=None):
        # the text as it was when it matched (any of *text*, when a list): a song arriving
        # later may extend the line
        texts = [text] if isinstance(text, str) else list(text)
        found = page.wait_for_function(
            "([ts, b]) => { const e = document.querySelector('.labeler-status'); "
            "return e && ts.some(t => e.textContent.includes(t)) && e.textContent !== b "
            "? e.textContent : false; }",
            arg=[texts, before], timeout=60000)
        return found.json_value()

    last_press = {}  # key -> when this test last pressed it

    def press(page, key, expect):
        """Press *key* over the labeler; return the new status line, timing the answer.

        A key pressed while the next song is still being drawn names the song that was on
        screen and is refused (nothing is stored); a person then presses again, and so does
        this (a loaded machine draws slowly)."""
        for _attempt in range(3):
            page.wait_for_timeout(150)  # no one answers faster (quicker answers are ignored)
            since = time.monotonic() - last_press.get(key, float("-inf"))
            if since < DEBOUNCE_SECONDS + 0.15:  # the same key again at once is a double tap,
                page.wait_for_timeout(int((DEBOUNCE_SECONDS + 0.15 - since) * 1000))  # ignored
            before = status_text(page)
            start = time.perf_counter()
            page.keyboard.press(key)
            last_press[key] = time.monotonic()
            text = status(page, [expect, "refused: the song on screen"], before)
            if expect in text or "refused: the song on screen" not in text:
                break
            page.wait_for_timeout(300)
        latencies.append(time.perf_counter() - start)
        return text

    def buttons(page):
        return page.evaluate("() => [...document.querySelectorAll('.labeler-keys button')]"
                             ".map(b => b.textContent.trim())")

    def genre_keys(page):
        names = [b for b in buttons(page) if b.endswith("]") and " [" in b]
        pairs = dict(b.rsplit(" [", 1) for b in names)
        return {g: k.rstrip("]") for g, k in pairs.items()
                if g not in ("Skip", "Undo", "Like", "Dislike", "Liked ✓", "Disliked ✓")
                and not g.startswith(("Accept", "Back to", "Open", "Previous", "Play", "◀", "window"))}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120000)
            for _attempt in range(5):  # a run asked for before the kernel connects is dropped
                page.locator(".jp-Cell .jp-InputArea-editor").first.click()
                page.keyboard.press("Control+Enter")  # run the cell, stay on it
                try:
                    page.wait_for_function(
                        "() => /\\[(\\*|\\d+)\\]/.test(document.querySelector('.jp-InputPrompt').textContent)",
                        timeout=10000)
                    break
                except Exception:
                    continue
            page.wait_for_function(ACCEPT_READY, timeout=120000)
            page.wait_for_function(  # every song extracted, the .au and the tagged one too
                "() => /of 6 ready/.test(document.querySelector('.labeler-progress').textContent)",
                timeout=120000)
            header = page.locator(".labeler-header").first
            header.hover()

            # the play key plays the window, pauses it where it is, resumes from there; the
            # play-state line says "Playing" only while the audio element plays
            audio = "document.querySelector('.labeler-keys audio')"
            state = "document.querySelector('.labeler-play-state').textContent"
            page.keyboard.press("k")
            page.wait_for_function(f"() => {{ const a = {audio}; return a && !a.paused && a.currentTime > 0.3; }}",
                                   timeout=30000)
            page.wait_for_function(f"() => {state}.startsWith('Playing')", timeout=10000)
            page.keyboard.press("k")
            page.wait_for_function(f"() => {audio}.paused", timeout=10000)
            paused_at = page.evaluate(f"() => {audio}.currentTime")
            assert paused_at > 0.3
            page.wait_for_function(f"() => {state}.startsWith('Paused at')", timeout=10000)
            page.wait_for_timeout(400)
            assert page.evaluate(f"() => {audio}.currentTime") == pytest.approx(paused_at, abs=0.05)
            page.keyboard.press("k")  # resumes from where it paused, not from the window's start
            page.wait_for_function(f"() => !{audio}.paused", timeout=10000)
            assert page.evaluate(f"() => {audio}.currentTime") >= paused_at - 0.05
            page.wait_for_function(f"() => {state}.startsWith('Playing')", timeout=10000)
            page.evaluate(f"() => {audio}.pause()")  # as the player's own pause control does
            page.wait_for_function(f"() => {state}.startsWith('Paused at')", timeout=10000)
            assert "Playing" not in page.locator(".labeler-keys").first.text_content()
            assert page.locator(".labeler-keys .labeler-waveform-window").count() == 1  # the song's waveform

            assert press(page, "a", "Recorded:").startswith("Recorded: ")
            page.wait_for_function(ACCEPT_READY, timeout=120000)
            assert "waits in the Skipped list" in press(page, "s", "Skipped:")
            selected = page.locator(".widget-dropdown select").first.evaluate(
                "s => s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''")
            assert "tone" in selected or "Tagged" in selected  # the skipped list shows its song

            # a new genre mid-session: every old key still labels the same genre
            keys_before = genre_keys(page)
            assert keys_before["blues"] == "1" and len(keys_before) == 10
            box = page.locator(".labeler-new-genre input").first
            box.click()
            box.type("zydeco")
            box.press("Enter")
            assert "Recorded: zydeco for" in status(page, "zydeco")
            page.wait_for_function("() => [...document.querySelectorAll('.labeler-keys button')]"
                                   ".some(b => b.textContent.trim() === 'zydeco [g1]')", timeout=30000)
            keys_after = genre_keys(page)
            assert {g: keys_after[g] for g in keys_before} == keys_before
            header.hover()
            assert "Undone: label zydeco" in press(page, "u", "Undone:")

            # like, then undo: the like is a decision, the song shows its state
            assert "Liked:" in press(page, "l", "Liked:")
            page.wait_for_function("() => document.querySelector('.labeler-header').textContent"
                                   ".includes('liked')", timeout=30000)
            assert "Undone: like" in press(page, "u", "Undone: like")
            assert "liked" not in header.text_content()
            assert "Recorded: blues" in press(page, "1", "Recorded: blues")  # the key of blues

            # two keys 20 ms apart: one decision, for the song on screen
            page.wait_for_function(ACCEPT_READY, timeout=120000)
            before = _events(folder / "labels.sqlite")
            shown = header.text_content()
            page.wait_for_timeout(150)  # a person's pace since the last answer
            page.keyboard.press("2")
            page.wait_for_timeout(20)
            page.keyboard.press("s")
            status(page, f"Recorded: {next(g for g, k in keys_before.items() if k == '2')}")
            page.wait_for_timeout(700)  # time for a wrongly applied second key to land
            new = _events(folder / "labels.sqlite")[len(before):]
            assert [e[2] for e in new] == ["label"], new
            assert page.locator(".labeler-review select").first.evaluate(
                "s => s.options[0].text.replace(/\\u00a0/g, ' ')").split(" — ")[0] in shown

            for _ in range(3):  # the last new songs, then the skipped one comes back
                page.wait_for_function(ACCEPT_READY, timeout=120000)
                press(page, "a", "Recorded:")
            page.wait_for_function("() => /6 labelled/.test(document.querySelector('.labeler-progress')"
                                   ".textContent)", timeout=60000)
            options = page.locator(".labeler-review select").first.evaluate(
                "s => [...s.options].map(o => o.text.replace(/\\u00a0/g, ' '))")
            assert len(options) == 6
            assert any(o.startswith("Tagged Tone — ") for o in options)  # its tag, not its name
            assert any(o.startswith("tone au 660 — ") for o in options)  # the .au file

            # relabel the song five decisions back from the review list
            target = options[5].split(" — ")[0]
            start = time.perf_counter()
            page.locator(".labeler-review select").first.select_option(index=5)
            box.hover()
            header.hover()  # back over the labeler, so its keys are caught
            press(page, "o", "Reopened:")
            relabelled = press(page, "3", "(was ")
            # without the two 150 ms pauses press() makes before each key
            relabel_seconds = time.perf_counter() - start - 0.3
            assert target in relabelled and "earlier label is kept" in relabelled
            events = _events(folder / "labels.sqlite")
            song = events[-1][1]
            assert [e[2] for e in events if e[1] == song].count("label") >= 2  # the old one kept
            page.screenshot(path=str(folder / "labeler.png"))

            # notebook 05 as `make label` opens it: a working copy is run and saved, the
            # tracked notebook stays byte for byte what it was
            tracked = ROOT / "notebooks" / LABELER_NOTEBOOK
            before = tracked.read_bytes()
            copy = working_copy(folder=folder / "data" / "user" / "notebooks")
            page.close()  # a fresh page and workspace: only the copy is open
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url.replace("labeler.ipynb?", f"{copy.relative_to(folder)}?reset&"))
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120000)
            for _attempt in range(5):
                page.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
                page.keyboard.press("Shift+Enter")  # the parameters ...
                try:
                    page.wait_for_function(
                        "() => /\\[\\d+\\]/.test(document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent)",
                        timeout=10000)
                    break
                except Exception:
                    continue
            page.keyboard.press("Shift+Enter")  # ... and the cell that reads the launch's variable
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].filter("
                "e => /\\[\\d+\\]/.test(e.textContent)).length >= 2", timeout=60000)
            page.keyboard.press("Control+s")
            deadline = time.monotonic() + 30
            while b'"execution_count": 2' not in copy.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert b'"execution_count": 2' in copy.read_bytes()  # the session went to the copy
            assert tracked.read_bytes() == before
        finally:
            page.screenshot(path=str(folder / "labeler-last.png"))
            browser.close()
    median = statistics.median(latencies)
    p90 = statistics.quantiles(latencies, n=10)[-1]
    print(f"\nlabeler in Chromium: {len(latencies)} key actions, status line median "
          f"{median * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms; relabel five decisions back "
          f"{relabel_seconds:.2f} s")

"""The labeler in a real JupyterLab in Chromium: keys, Enter, status line, skipped list.

Slow (a JupyterLab server, a kernel and a browser): marked ``slow``. Skips when Playwright,
Chromium, JupyterLab or the ipyevents extension is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

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
    for i, freq in enumerate((220, 330, 440, 550)):
        sf.write(songs / f"tone_{freq}.wav", (0.3 * np.sin(2 * np.pi * freq * t) * (1 + i % 2)).astype(np.float32) / 2, 22050)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from helpers.labeling.widget import Labeler\n"
        f"labeler = Labeler({str(songs)!r}, store={str(tmp_path / 'labels.sqlite')!r}, "
        "window_seconds=3.0, audio=False, workers=1, epsilon=0.0)\n"
        "labeler.show()")], metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, tmp_path / "labeler.ipynb")
    port, token = _free_port(), "labeler-browser-test"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               MUSIC_STUDY_DATA_DIR=str(tmp_path / "data"), JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
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


def test_keys_enter_and_status_line_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import sync_playwright

    url, folder = jupyter_lab

    def status(page, text):
        # the text as it was when it matched: a song arriving later may extend the line
        found = page.wait_for_function(
            "t => { const e = document.querySelector('.labeler-status'); "
            "return e && e.textContent.includes(t) ? e.textContent : false; }", arg=text, timeout=60000)
        return found.json_value()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
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
            header = page.locator(".labeler-header").first
            header.hover()
            page.keyboard.press("a")
            assert status(page, "Recorded:").startswith("Recorded: ")
            page.wait_for_function(ACCEPT_READY, timeout=120000)
            header.hover()
            page.keyboard.press("s")
            assert "waits in the Skipped list" in status(page, "Skipped:")
            selected = page.locator(".widget-dropdown select").first.evaluate(
                "s => s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''")
            assert "tone_" in selected  # the skipped list shows its song selected
            box = page.locator(".labeler-new-genre input").first
            box.click()
            box.type("zydeco")
            box.press("Enter")
            assert "Recorded: zydeco for" in status(page, "zydeco")
            header.hover()
            page.keyboard.press("u")
            assert "Undone: label zydeco" in status(page, "Undone:")
            page.screenshot(path=str(folder / "labeler.png"))
        finally:
            browser.close()

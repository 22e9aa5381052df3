"""The command line imports only what a command needs (start-up time, issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from helpers.paths import project_root

#: Packages no prediction needs: plotting, the web page, downloads, widgets, notebooks.
NOT_FOR_PREDICT = ("matplotlib", "flask", "yt_dlp", "ipywidgets", "IPython", "papermill",
                   "seaborn", "wordcloud", "nltk", "distributed")


def _imported_by(*argv) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "helpers", *argv],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode in (0, 2), run.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
            if line.startswith("import time:")}


def test_help_imports_no_science_stack():
    imported = _imported_by("--help")
    assert not {"numpy", "pandas", "sklearn", "librosa"} & imported


def test_predict_imports_nothing_it_does_not_need(tmp_path):
    t = np.arange(12 * 22050) / 22050
    song = tmp_path / "song.wav"
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    imported = _imported_by("predict", str(song), "--json")
    assert "helpers.features.spectral" in imported  # it did compute features
    assert not {name for name in imported if name.split(".")[0] in NOT_FOR_PREDICT}
    # the GTZAN features come from helpers.features.spectral: librosa's import (and scipy.signal's,
    # which it pulls) was most of the start-up
    assert not {name for name in imported
                if name.split(".")[0] == "librosa" or name.startswith("scipy.signal")}


def test_tags_imports_nothing_it_does_not_need(tmp_path):
    t = np.arange(4 * 22050) / 22050
    song = tmp_path / "song.wav"
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    imported = _imported_by("tags", str(song), "--json")
    assert "helpers.features.musicnn.network" in imported  # it did tag
    assert not {name for name in imported if name.split(".")[0] in NOT_FOR_PREDICT}
    # no model library, no table, no GTZAN features: the networks need numpy and scipy.fft
    assert not {name for name in imported
                if name.split(".")[0] in ("sklearn", "pandas", "librosa", "numba", "skops")
                or name.startswith("scipy.signal") or name == "helpers.features.gtzan"}

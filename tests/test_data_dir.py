"""Every command with ``MUSIC_STUDY_DATA_DIR`` pointed at an empty folder (issue 11, item 1).

What the workspace ships (GTZAN table, splits, artist index, lyrics, songs) is read from the
checkout whatever the data folder is; only what the user makes lands in the data folder.
Each command runs as a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import serve_directory

ROOT = Path(__file__).resolve().parents[1]
#: Variables that would move a single user file away from the data folder.
PER_FILE_VARIABLES = ("MUSIC_STUDY_LABEL_STORE", "MUSIC_STUDY_FEATURE_CACHE",
                      "MUSIC_STUDY_LYRICS_CACHE", "MUSIC_STUDY_LYRICS_PROVIDERS")


def _shipped_listing() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "data").rglob("*"))


@pytest.fixture(scope="module")
def empty_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("empty-data-dir")


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """A 12-s generated song (short, so predict stays fast)."""
    folder = tmp_path_factory.mktemp("song")
    t = np.arange(12 * 22050) / 22050
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    sf.write(folder / "tone.wav", signal.astype(np.float32), 22050)
    return folder / "tone.wav"


def run(args, data_dir, **extra_env):
    env = {k: v for k, v in os.environ.items() if k not in PER_FILE_VARIABLES}
    env.update(MUSIC_STUDY_DATA_DIR=str(data_dir), PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), env.get("PYTHONPATH", "")]), **extra_env)
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "restore it" not in result.stderr and "Traceback" not in result.stderr
    return result


def test_extract_writes_only_to_the_data_folder(empty_data_dir, song, tmp_path):
    before = _shipped_listing()
    _ok(run(["extract", str(song), "-o", str(tmp_path / "table.csv")], empty_data_dir))
    assert (tmp_path / "table.csv").is_file()
    assert (empty_data_dir / "cache" / "features").is_dir()  # the cache follows the data folder
    assert _shipped_listing() == before


def test_evaluate_reads_the_shipped_table_and_splits(empty_data_dir):
    result = _ok(run(["evaluate", "--model", "knn", "--grid", "small", "--json"], empty_data_dir))
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["split"] == "fault-filtered" and report["n_test"] == 290


def test_predict_trains_the_default_model_into_the_data_folder(empty_data_dir, song):
    result = _ok(run(["predict", str(song), "--json"], empty_data_dir))
    assert json.loads(result.stdout)["genre"]
    assert (empty_data_dir / "models" / "default.skops").is_file()


def test_recommend_reads_the_shipped_artist_index(empty_data_dir):
    result = _ok(run(["recommend", "--liked", "blues.00000.wav", "-k", "3", "--json"], empty_data_dir))
    assert len(json.loads(result.stdout)) == 3


def test_lyrics_against_a_local_server_caches_in_the_data_folder(empty_data_dir, tmp_path):
    record = {"id": 1, "trackName": "River Song", "artistName": "The Willows", "albumName": "A",
              "duration": 215.0, "instrumental": False, "syncedLyrics": None,
              "plainLyrics": "Down by the river where the willows grow\n" * 4}
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "get").write_text(json.dumps(record))
    with serve_directory(tmp_path) as server:
        result = _ok(run(["lyrics", "The Willows", "River Song", "--provider", "lrclib", "--json"],
                         empty_data_dir, MUSIC_STUDY_LRCLIB_URL=server.base))
    assert "willows grow" in json.loads(result.stdout)["lyrics"]
    assert (empty_data_dir / "cache" / "lyrics.sqlite").is_file()
    # a second run is answered from the cache in the data folder, with no server at all
    again = _ok(run(["lyrics", "The Willows", "River Song", "--provider", "lrclib", "--json"],
                    empty_data_dir, MUSIC_STUDY_LRCLIB_URL="http://127.0.0.1:9"))
    assert "willows grow" in json.loads(again.stdout)["lyrics"]


@pytest.mark.slow
def test_quick_report_of_the_labeler_notebook(tmp_path):
    """``report`` with an empty data folder: notebook 05 caches its active-learning simulation
    there and writes nothing into the checkout (the default model's training into the data
    folder is checked by the predict test above)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    before = _shipped_listing()
    result = run(["report", "--quick", "--only", "05", "--output-dir", str(tmp_path / "reports")],
                 data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    index = json.loads((tmp_path / "reports" / "index.json").read_text())
    assert [(r["name"][:2], r["status"]) for r in index["runs"]] == [("05", "ok")], \
        [r.get("error") for r in index["runs"]]
    assert any((data_dir / "cache" / "simulation").glob("*.json"))
    assert _shipped_listing() == before

"""helpers.features.batch and `music-study extract`: table layout, labels, segments, cache, failures, Dask."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import main
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS, SAMPLE_RATE, batch, feature_columns


def _song(path, seconds, freq=220.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    beat = (np.sin(2 * np.pi * 2 * t) > 0.9).astype(float)  # 120 BPM clicks
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.2 * beat * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), SAMPLE_RATE)
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """<genre>/<file> layout: two short songs, one 6.5-s song, and one broken file."""
    root = tmp_path_factory.mktemp("library")
    _song(root / "blues" / "blues.00001.wav", 2.0, 110.0, seed=1)
    _song(root / "rock" / "rock.00001.wav", 6.5, 330.0, seed=2)
    (root / "rock" / "broken.wav").write_bytes(b"this is not audio at all" * 10)
    return root


def test_table_has_filename_features_label_and_lists_failures(library, tmp_path):
    result = batch.extract_table([library], jobs=1, cache_dir=tmp_path / "cache", progress=False)
    table = result.table
    assert list(table.columns) == ["filename", *FEATURE_COLUMNS, "label"]
    assert table["filename"].tolist() == ["blues.00001.wav", "rock.00001.wav"]
    assert table["label"].tolist() == ["blues", "rock"]
    assert table["length"].tolist() == [2 * SAMPLE_RATE, int(6.5 * SAMPLE_RATE)]
    assert result.files == 3 and result.cached == 0
    [failure] = result.failures
    assert failure.path.endswith("broken.wav") and "not a recognised audio format" in failure.reason


def test_segments_drop_the_partial_tail_and_keep_the_clip_name(library, tmp_path):
    result = batch.extract_table([library / "rock" / "rock.00001.wav"], segment_seconds=3,
                                 cache=False, progress=False)
    table = result.table
    assert table["filename"].tolist() == ["rock.00001.0.wav", "rock.00001.1.wav"]
    assert table["clip"].tolist() == ["rock.00001.wav"] * 2
    assert table["segment"].tolist() == [0, 1] and table["start"].tolist() == [0.0, 3.0]
    assert (table["length"] == 3 * SAMPLE_RATE).all() and not table["silent"].any()
    assert table["label"].tolist() == ["rock", "rock"]  # rock/rock.00001.wav names its genre
    too_short = batch.extract_table([library / "blues"], segment_seconds=3, cache=False,
                                    progress=False)
    assert too_short.table.empty and "shorter than one 3-s segment" in too_short.failures[0].reason


def test_cache_is_keyed_by_content_and_parameters(tmp_path):
    song = _song(tmp_path / "a" / "song.wav", 1.5)
    cache = tmp_path / "cache"
    first = batch.extract_table(song, cache_dir=cache, progress=False)
    second = batch.extract_table(song, cache_dir=cache, progress=False)
    assert (first.cached, second.cached) == (0, 1)
    pd.testing.assert_frame_equal(first.table, second.table)
    extended = batch.extract_table(song, cache_dir=cache, feature_set="extended", progress=False)
    assert extended.cached == 0 and list(extended.table.columns)[1:] == list(feature_columns("extended"))
    _song(song, 1.5, freq=440.0)  # same name, new content
    changed = batch.extract_table(song, cache_dir=cache, progress=False)
    assert changed.cached == 0
    assert changed.table["spectral_centroid_mean"][0] > first.table["spectral_centroid_mean"][0]
    # a damaged cache entry is recomputed, not trusted
    for entry in cache.rglob("*.json"):
        entry.write_text("{not json")
    assert batch.extract_table(song, cache_dir=cache, progress=False).cached == 0


@pytest.mark.slow
def test_parallel_jobs_give_the_same_table(library):
    serial = batch.extract_table([library], jobs=1, cache=False, progress=False)
    parallel = batch.extract_table([library], jobs=2, cache=False, progress=False)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    assert [f.path for f in parallel.failures] == [f.path for f in serial.failures]


def test_missing_path_or_no_audio_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        batch.extract_table([tmp_path / "nope"], progress=False)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no audio files found"):
        batch.extract_table([tmp_path], progress=False)


def test_extract_command_writes_csv_and_reports_failures(library, tmp_path, capsys):
    out = tmp_path / "table.csv"
    status = main(["extract", str(library), "-o", str(out), "--no-cache", "--segment-seconds", "3"])
    assert status == 1  # one file failed, the rest were written
    table = pd.read_csv(out)
    assert table["clip"].tolist() == ["rock.00001.wav"] * 2
    err = capsys.readouterr().err
    assert "wrote 2 rows from 1 of 3 files" in err
    assert "broken.wav: cannot decode audio" in err and "blues.00001.wav: shorter than" in err
    # nothing usable: exit 2, one line, and the earlier output is left untouched
    before = out.read_bytes()
    status = main(["extract", str(library / "rock" / "broken.wav"), "-o", str(out), "--no-cache"])
    assert status == 2 and out.read_bytes() == before
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "broken.wav" in lines[0] and "Traceback" not in lines[0]


@pytest.mark.slow
def test_runs_on_a_local_dask_cluster(library, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        result = batch.extract_table([library / "blues", library / "rock" / "broken.wav"],
                                     scheduler=cluster.scheduler_address, cache=False,
                                     progress=False)
    local = batch.extract_table([library / "blues"], cache=False, progress=False)
    pd.testing.assert_frame_equal(result.table, local.table)
    assert [f.path for f in result.failures] == [str(library / "rock" / "broken.wav")]


def test_bad_options_are_input_errors(library, capsys):
    with pytest.raises(InputError, match="unknown feature set"):
        batch.extract_table([library], feature_set="fancy", progress=False)
    with pytest.raises(InputError, match="positive number of processes"):
        batch.extract_table([library], jobs=0, progress=False)
    assert main(["extract", str(library), "-o", "x.csv", "--feature-set", "fancy"]) == 2
    assert "unknown feature set" in capsys.readouterr().err


def test_truncated_files_are_failures_unless_allowed_then_marked(tmp_path, capsys):
    whole = _song(tmp_path / "in" / "whole.wav", 4.0)
    data = whole.read_bytes()
    cut = tmp_path / "in" / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # the header still promises 4 s
    result = batch.extract_table([tmp_path / "in"], cache=False, progress=False)
    assert result.table["filename"].tolist() == ["whole.wav"]
    [failure] = result.failures
    assert failure.path.endswith("cut.wav") and failure.reason.startswith("truncated")
    allowed = batch.extract_table([tmp_path / "in"], cache_dir=tmp_path / "cache",
                                  progress=False, allow_truncated=True)
    assert allowed.failures == []
    assert list(allowed.table.columns)[-1] == "truncated"
    marked = dict(zip(allowed.table["filename"], allowed.table["truncated"], strict=True))
    assert marked == {"cut.wav": True, "whole.wav": False}
    # rows kept from a truncated file never come back from the cache in the strict mode
    again = batch.extract_table([tmp_path / "in"], cache_dir=tmp_path / "cache", progress=False)
    assert again.table["filename"].tolist() == ["whole.wav"] and len(again.failures) == 1
    out = tmp_path / "table.csv"
    assert main(["extract", str(tmp_path / "in"), "-o", str(out), "--no-cache"]) == 1
    assert "failed:" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "in"), "-o", str(out), "--no-cache",
                 "--allow-truncated"]) == 0
    assert "kept truncated: cut.wav" in capsys.readouterr().err
    assert pd.read_csv(out)["truncated"].tolist() == [True, False]


def test_special_files_named_directly_are_reported_with_their_reason(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.wav")
    os.symlink(tmp_path / "a.wav", tmp_path / "b.wav")
    os.symlink(tmp_path / "b.wav", tmp_path / "a.wav")
    ok = _song(tmp_path / "ok.wav", 2.0)
    result = batch.extract_table([tmp_path / "pipe.wav", tmp_path / "a.wav", ok],
                                 cache_dir=tmp_path / "cache", progress=False)
    reasons = {f.path.rsplit("/", 1)[-1]: f.reason for f in result.failures}
    assert "is a FIFO" in reasons["pipe.wav"] and "symlink loop" in reasons["a.wav"]
    assert result.table["filename"].tolist() == ["ok.wav"]

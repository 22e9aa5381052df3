"""musicnn in every path: the tags command, predict's tags, the learned feature sets through
extract (cache, jobs, Dask), the label store and predict --features.

The audio is a 13-s excerpt of a shipped song (4 patches; its musicnn results are computed
once per module) and, for training, 6-s cuts of six GTZAN clips of ``../shared``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import require_shared

from helpers.audio.decode import load_audio
from helpers.cli import main
from helpers.errors import InputError
from helpers.features import batch, musicnn, sets
from helpers.features.columns import FEATURE_COLUMNS
from helpers.features.windows import window_features
from helpers.store import _SCHEMA_V1 as STORE_SCHEMA_V1
from helpers.store import SCHEMA_VERSION, LabelStore

EXCERPT_SECONDS = 13.0


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory, shipped_songs) -> Path:
    """The first 13 s of the shipped electronic song, as a WAV file at its own rate."""
    song = next(p for p in shipped_songs if p.stem == "singularity_coherence")
    with sf.SoundFile(song) as handle:
        samples = handle.read(int(EXCERPT_SECONDS * handle.samplerate), dtype="float32")
        rate = handle.samplerate
    path = tmp_path_factory.mktemp("songs") / "coherence.wav"
    sf.write(path, samples, rate)
    return path


@pytest.fixture(scope="module")
def excerpt_tags(excerpt):
    return musicnn.song_tags(excerpt)


@pytest.fixture(scope="module")
def gtzan_model():
    from helpers.data import load_gtzan_table
    from helpers.models.pipelines import fit_on_table

    return fit_on_table(load_gtzan_table())


@pytest.fixture
def feature_cache(tmp_path, monkeypatch):
    folder = tmp_path / "feature-cache"
    monkeypatch.setenv("MUSIC_STUDY_FEATURE_CACHE", str(folder))
    return folder


# --------------------------------------------------------------------------- tags


def test_tags_text_gives_song_tags_and_one_line_per_patch(excerpt, excerpt_tags, capsys):
    assert main(["tags", str(excerpt), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "coherence: 0:13 min, 4 patches of 2.992 s"
    top = ", ".join(f"{tag} {score:.2f}" for tag, score in excerpt_tags.top_tags("MSD_musicnn", 3))
    assert lines[2] == f"msd tags (mean over the song): {top}"
    assert lines[1].startswith("mtt tags (mean over the song): ")
    timeline = lines[lines.index("tags over time (top 3 of each patch):") + 1:]
    assert [line.split()[0] for line in timeline] == ["0:00-0:03", "0:03-0:06", "0:06-0:09",
                                                      "0:09-0:12"]


def test_tags_json_is_the_mean_over_patches_and_the_taggram(excerpt, excerpt_tags, capsys):
    assert main(["tags", str(excerpt), "--json", "--vocabulary", "msd", "--top", "5"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document["tags"]) == {"msd"}
    taggram = excerpt_tags.taggram["MSD_musicnn"]
    names = excerpt_tags.tags["MSD_musicnn"]
    mean = dict(zip(names, taggram.mean(axis=0), strict=True))
    song = document["tags"]["msd"]
    assert [entry["tag"] for entry in song] == sorted(mean, key=mean.get, reverse=True)[:5]
    assert [entry["score"] for entry in song] == pytest.approx([mean[e["tag"]] for e in song],
                                                               abs=1e-4)
    assert len(document["timeline"]) == len(taggram) == 4
    third = document["timeline"][2]
    assert third["start"] == pytest.approx(2 * 2.992) and "mtt" not in third
    assert third["msd"][0]["tag"] == names[int(taggram[2].argmax())]
    assert document["duration"] == pytest.approx(EXCERPT_SECONDS, abs=0.01)
    assert document["source"] == str(excerpt) and document["source_url"] is None


def test_tags_of_a_url_go_through_the_safe_download(excerpt, tmp_path, monkeypatch, capsys):
    from conftest import serve_directory

    from helpers.audio import ingest

    site = tmp_path / "site"
    site.mkdir()
    (site / "tune.wav").write_bytes(excerpt.read_bytes())
    monkeypatch.setattr(ingest, "downloads_dir", lambda: tmp_path / "downloads")
    with serve_directory(site) as server:
        url = f"{server.base}/tune.wav"
        assert main(["tags", url, "--json", "--vocabulary", "mtt", "--top", "3"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["source"] == url and document["source_url"] == url
    assert len(document["timeline"]) == 4 and captured.err == ""
    assert len(list((tmp_path / "downloads").glob("*.ogg"))) == 1
    # a host the safe path refuses is one line naming the URL
    assert main(["tags", "http://127.0.0.1:9/song.ogg"]) == 2
    assert "refused: 127.0.0.1 is a loopback address" in capsys.readouterr().err


def _short_wav(path: Path, seconds: float = 2.1) -> Path:
    t = np.arange(int(seconds * 22050)) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    return path


def test_tags_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    short = _short_wav(tmp_path / "short.wav")
    assert main(["tags", str(short)]) == 2
    assert capsys.readouterr().err == (f"music-study tags: error: {short}: too short: 2.10 s of "
                                       "audio; tags need at least 3 s\n")
    (tmp_path / "notes.mp3").write_text("not audio\n")
    assert main(["tags", str(tmp_path / "notes.mp3")]) == 2
    assert "not a recognised audio format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["tags", str(short), "--vocabulary", "gtzan"])
    assert exc.value.code == 2
    assert "invalid choice: 'gtzan' (choose from 'mtt', 'msd', 'both')" in capsys.readouterr().err


def test_predict_json_gains_the_songs_tags(excerpt, excerpt_tags, gtzan_model, monkeypatch,
                                           capsys):
    from helpers.commands import predict as predict_command

    monkeypatch.setattr(predict_command, "_load_model_argument",
                        lambda choice, features="gtzan": gtzan_model)
    assert main(["predict", str(excerpt), "--json", "--window-seconds", "6"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"source", "genre", "confidence", "probabilities", "rule", "window_seconds",
            "snippets", "model", "open_set", "uncertain", "title", "path"} <= set(document)
    assert set(document["tags"]) == {"mtt", "msd"} and document["feature_set"] == "gtzan"
    for name, model in (("mtt", "MTT_musicnn"), ("msd", "MSD_musicnn")):
        expected = excerpt_tags.top_tags(model, 10)
        assert [(e["tag"], e["score"]) for e in document["tags"][name]] == [
            (tag, pytest.approx(score, abs=1e-4)) for tag, score in expected]


# --------------------------------------------------------------------------- feature sets


def _cosine(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_sets_are_registered_with_their_rates():
    embedding = sets.feature_set("musicnn")
    assert embedding.columns == tuple(f"musicnn_msd_{i}" for i in range(200))
    assert (embedding.sample_rate, embedding.min_seconds) == (16000, 3.0)
    both = sets.feature_set("gtzan+musicnn")
    assert both.columns == (*FEATURE_COLUMNS, *embedding.columns)
    assert both.sample_rate == 22050 and both.min_seconds == 3.0
    assert [part.name for part in both.parts] == ["gtzan", "musicnn"]


def test_window_embedding_is_the_mean_over_its_patches(excerpt):
    table = window_features(excerpt, 6.0, feature_set="musicnn")
    assert table["used"].tolist() == [True, True, False]  # the 1-s tail is below min(10, 6)
    from helpers.audio.windows import iter_checked_windows

    windows = list(iter_checked_windows(excerpt, window_seconds=6.0, sr=16000))
    patches = musicnn.logmel_patches(windows[1].samples)
    assert len(patches) == 2  # 6 s hold two whole 2.992-s patches
    penultimate = musicnn.load_model("MSD_musicnn").forward(patches)["penultimate"]
    np.testing.assert_allclose(table.loc[1, list(musicnn.EMBEDDING_COLUMNS)].to_numpy(float),
                               penultimate.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_a_window_shorter_than_a_patch_gets_the_too_short_rule(tmp_path):
    short = _short_wav(tmp_path / "short.wav", 2.5)
    with pytest.raises(Exception) as exc:
        window_features(short, 3.0, feature_set="musicnn", needs="segments")
    assert str(exc.value) == f"{short}: too short: 2.50 s of audio; segments need at least 3 s"
    with pytest.raises(Exception, match="too short: 2.50 s of audio"):
        sets.feature_set("musicnn").describe(load_audio(short, sr=16000), 16000)


def test_extract_features_musicnn_and_the_combined_set_with_the_cache(excerpt, feature_cache,
                                                                      tmp_path, capsys):
    out = tmp_path / "both.csv"
    args = ["extract", str(excerpt), "-o", str(out), "--features", "gtzan+musicnn",
            "--segment-seconds", "6"]
    assert main(args) == 0
    assert "(0 from cache)" in capsys.readouterr().err
    both = pd.read_csv(out)
    assert list(both.columns[6:]) == list(sets.feature_set("gtzan+musicnn").columns)
    assert both["segment"].tolist() == [0, 1]  # the same windows as gtzan's
    assert main(args) == 0
    assert "(1 from cache)" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out), both)
    embedding = tmp_path / "musicnn.csv"
    assert main(["extract", str(excerpt), "-o", str(embedding), "--feature-set", "musicnn",
                 "--segment-seconds", "6"]) == 0
    capsys.readouterr()
    alone = pd.read_csv(embedding)
    columns = list(musicnn.EMBEDDING_COLUMNS)
    assert list(alone.columns[6:]) == columns
    gtzan = batch.extract_table([excerpt], segment_seconds=6, cache=False, progress=False).table
    np.testing.assert_allclose(both[list(FEATURE_COLUMNS)].to_numpy(),
                               gtzan[list(FEATURE_COLUMNS)].to_numpy(), rtol=1e-9)
    # decoded at 22 050 Hz and resampled, or decoded at 16 kHz: the same embedding, nearly
    for k in range(2):
        assert _cosine(both.loc[k, columns], alone.loc[k, columns]) > 0.999
    assert main(["extract", str(excerpt), "-o", str(out), "--features", "vggish"]) == 2
    assert capsys.readouterr().err.strip() == (
        "music-study extract: error: vggish: unknown feature set; choose one of extended, "
        "gtzan, gtzan+musicnn, musicnn")


def test_extract_musicnn_with_two_jobs_and_on_dask(excerpt, tmp_path):
    distributed = pytest.importorskip("distributed")
    other = tmp_path / "second.wav"
    y, sr = sf.read(excerpt, dtype="float32")
    sf.write(other, y[: int(7 * sr)], sr)
    files = [excerpt, other]
    local = batch.extract_table(files, feature_set="musicnn", cache=False, progress=False)
    assert local.table.shape == (2, 201) and not local.failures
    jobs = batch.extract_table(files, feature_set="musicnn", jobs=2, cache=False, progress=False)
    pd.testing.assert_frame_equal(jobs.table, local.table)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask = batch.extract_table(files, feature_set="musicnn", cache=False, progress=False,
                                   scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(dask.table, local.table)


# --------------------------------------------------------------------------- label store


def _rows(table: pd.DataFrame, columns) -> list:
    return [(row["start"], row["end"], {c: row[c] for c in columns})
            for row in table[table["used"]].to_dict("records")]


def test_store_round_trip_of_musicnn_windows_beside_gtzan(excerpt, tmp_path):
    both = window_features(excerpt, 6.0, feature_set="gtzan+musicnn")
    columns = list(sets.feature_set("gtzan+musicnn").columns)
    with LabelStore(tmp_path / "labels.sqlite") as store:
        song = store.add_song(excerpt, title="Coherence")
        ids = store.add_windows(song, _rows(both, columns), feature_set="gtzan+musicnn")
        assert len(ids) == 2
        stored = store.windows(song, feature_set="gtzan+musicnn")
        np.testing.assert_array_equal(stored[columns].to_numpy(),
                                      both.loc[both["used"], columns].to_numpy())
        # stored as its parts: the gtzan table's columns and the musicnn vectors
        assert store.windows(song)[list(FEATURE_COLUMNS)].shape == (2, 58)
        assert store.windows(song, feature_set="musicnn").shape == (2, 204)
        # a second store of the same windows keeps the first features
        assert store.add_windows(song, _rows(both, columns), feature_set="gtzan+musicnn") == ids
        store.record_label(song, "electronic")
        rows = store.export_training_rows(feature_set="musicnn")
        assert list(rows.columns) == ["filename", *musicnn.EMBEDDING_COLUMNS, "label", "source"]
        assert rows["label"].tolist() == ["electronic"] * 2
        with pytest.raises(Exception, match="features lack 200 columns"):
            store.add_windows(song, [(30.0, 36.0, {"length": 1.0})], feature_set="musicnn")


def test_a_schema_1_store_with_gtzan_windows_migrates_without_loss(excerpt, tmp_path):
    path = tmp_path / "old.sqlite"
    values = {c: float(i) for i, c in enumerate(FEATURE_COLUMNS)}
    with sqlite3.connect(path) as raw:
        raw.executescript(STORE_SCHEMA_V1)
        raw.execute("INSERT INTO schema_version VALUES (1, 'then')")
        raw.execute("INSERT INTO songs (location, filename, added_utc) VALUES ('/a.ogg', 'a.ogg',"
                    " 'then')")
        names = ", ".join(f'"{c}"' for c in FEATURE_COLUMNS)
        raw.execute(f'INSERT INTO windows (song_id, start, "end", {names}, added_utc) VALUES '
                    f"(1, 0, 30, {', '.join('?' * 58)}, 'then')", list(values.values()))
        raw.execute("INSERT INTO label_events (song_id, kind, genre, who, \"where\", created_utc)"
                    " VALUES (1, 'label', 'blues', 'me', 'widget', 'then')")
    path.chmod(0o444)  # an old store nobody may write still reads
    with LabelStore(path, read_only=True) as old:
        assert old.schema_version == 1 and old.windows(feature_set="musicnn").empty
        assert old.windows()[list(FEATURE_COLUMNS)].iloc[0].to_dict() == values
    path.chmod(0o644)
    with LabelStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.windows()[list(FEATURE_COLUMNS)].iloc[0].to_dict() == values
        assert store.current_labels()["genre"].tolist() == ["blues"]
        embedding = {c: 0.5 for c in musicnn.EMBEDDING_COLUMNS}
        store.add_window(1, 0.0, 30.0, embedding, feature_set="musicnn")
        assert store.export_training_rows(feature_set="gtzan+musicnn").shape == (1, 261)


# --------------------------------------------------------------------------- predict --features


def test_predict_features_without_a_model_or_audio_names_the_remedy(excerpt, tmp_path,
                                                                     monkeypatch, capsys):
    from helpers.models import learned

    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(learned, "training_folders", lambda: [])
    assert main(["predict", str(excerpt), "--features", "musicnn", "--window-seconds", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("music-study predict: error: musicnn: no genre model for the musicnn "
                       "feature set, and no GTZAN audio to train one: set MUSIC_STUDY_GTZAN_AUDIO "
                       "to a GTZAN genres_original folder (<genre>/<genre>.NNNNN.wav), or pass "
                       "--model FILE trained on that feature set")
    assert main(["predict", str(excerpt), "--features", "vggish"]) == 2
    assert "vggish: unknown feature set; choose one of" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_gtzan(tmp_path_factory) -> Path:
    """6-s cuts of two clips of three genres (a GTZAN-like ``<genre>/<clip>`` folder)."""
    shared = require_shared("gtzan")
    folder = tmp_path_factory.mktemp("gtzan")
    for genre in ("blues", "classical", "metal"):
        (folder / genre).mkdir()
        sources = [shared / "audio" / genre / f"{genre}.00000.wav",
                   *sorted((shared / "more_audio" / genre).glob("*.flac"))[:1]]
        for source in sources:
            y, sr = sf.read(source, frames=6 * 22050, dtype="float32")
            sf.write(folder / genre / f"{source.stem}.wav", y, sr)
    return folder


def test_predict_features_musicnn_trains_once_and_then_reads_its_model(
        excerpt, small_gtzan, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MUSIC_STUDY_GTZAN_AUDIO", str(small_gtzan))
    args = ["predict", str(excerpt), "--features", "musicnn", "--window-seconds", "6", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "training a genre model on the musicnn feature set" in captured.err
    document = json.loads(captured.out)
    assert document["feature_set"] == "musicnn"
    assert set(document["probabilities"]) == {"blues", "classical", "metal"}
    assert document["model"]["name"] == "logreg on musicnn"
    assert document["model"]["test_split"].startswith("artist-grouped")
    assert document["model"]["n_test"] == 6 and len(document["model"]["test_ci95"]) == 2
    assert (tmp_path / "data" / "models" / "musicnn-logreg.skops").is_file()
    assert main(args[:-1]) == 0  # text this time: no tags to compute
    again = capsys.readouterr()
    assert again.err == "" and "model: logreg on musicnn: " in again.out
    assert f"genre: {document['genre']} " in again.out
    # a model of one set is refused for another, naming the columns
    from helpers.models.files import load_model
    from helpers.predict import check_model_columns

    model = load_model(tmp_path / "data" / "models" / "musicnn-logreg.skops")
    assert model.model_card_["feature_set"] == "musicnn"
    check_model_columns(model, feature_set="gtzan+musicnn")
    with pytest.raises(InputError) as exc:
        check_model_columns(model, source="m.skops", feature_set="gtzan")
    assert str(exc.value) == ("m.skops: model needs features the gtzan feature set does not "
                              "compute: musicnn_msd_0, musicnn_msd_1, musicnn_msd_2, musicnn_msd_3"
                              " (it was trained on the musicnn feature set: --features musicnn)")

"""helpers.predict: windowing edge cases, voting rules, JSON schema, CLI bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import serve_directory

from helpers import audio, predict
from helpers.errors import AudioError, InputError
from helpers.paths import project_root

SR = 22050


def _song(path, segments, sr=SR):
    """Write a song made of (seconds, kind) segments: kind 'tone', 'noise' or 'silence'."""
    rng = np.random.default_rng(0)
    parts = []
    for seconds, kind in segments:
        n = int(seconds * sr)
        t = np.arange(n) / sr
        if kind == "tone":
            parts.append(0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)))
        elif kind == "noise":
            parts.append(0.2 * rng.standard_normal(n))
        else:
            parts.append(np.zeros(n))
    sf.write(path, np.concatenate(parts).astype(np.float32), sr)
    return path


def _table(durations, probabilities, notes=None, genres=("a", "b")):
    """A hand-made window table (what window_table returns)."""
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    table = pd.DataFrame({"start": starts, "end": starts + np.asarray(durations)})
    for i, genre in enumerate(genres):
        table[genre] = [p[i] for p in probabilities]
    table["genre"] = [genres[int(np.argmax(p))] for p in probabilities]
    table["used"] = True
    table["note"] = notes or [""] * len(durations)
    return table


def test_weighted_rule_discounts_a_short_last_window_the_plain_mean_does_not():
    # Two full windows lean to "a"; a 12-s tail is sure it is "b".
    table = _table([30, 30, 12], [(0.7, 0.3), (0.65, 0.35), (0.0, 1.0)])
    weighted, _ = predict.vote(table, "weighted")
    mean, _ = predict.vote(table, "mean")
    assert next(iter(weighted)) == "a"
    assert weighted["a"] == pytest.approx((0.7 * 30 + 0.65 * 30) / 72)
    assert next(iter(mean)) == "b"
    assert mean["b"] == pytest.approx((0.3 + 0.35 + 1.0) / 3)
    majority, _ = predict.vote(table, "majority")
    assert majority == pytest.approx({"a": 60 / 72, "b": 12 / 72})


def test_short_and_silent_windows_vote_only_under_the_original_rule():
    table = _table([30, 30, 4], [(0.9, 0.1), (0.2, 0.8), (0.0, 1.0)], notes=["silent", "", "short"])
    probabilities, used = predict.vote(table, "weighted")
    assert list(used) == [False, True, False]
    assert probabilities == pytest.approx({"b": 0.8, "a": 0.2})
    _, used_mean = predict.vote(table, "mean")
    assert list(used_mean) == [True, True, True]
    with pytest.raises(InputError, match="unknown voting rule"):
        predict.vote(table, "median")


def test_song_shorter_than_one_window_is_one_partial_window(tmp_path, model):
    path = _song(tmp_path / "short.wav", [(14, "noise")])
    result = predict.predict_song(path, model=model, window_seconds=30)
    assert len(result.windows) == 1
    assert result.windows.loc[0, ["start", "end"]].tolist() == pytest.approx([0, 14], abs=1e-3)
    assert bool(result.windows.loc[0, "used"])
    assert result.genre in model.classes_
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.confidence == max(result.probabilities.values())


def test_exact_multiple_and_a_short_tail(tmp_path, model):
    exact = predict.predict_song(_song(tmp_path / "exact.wav", [(12, "noise")]), model=model,
                                 window_seconds=4)
    assert exact.windows[["start", "end"]].to_numpy().tolist() == [[0, 4], [4, 8], [8, 12]]
    assert exact.windows["used"].all()
    tail = predict.predict_song(_song(tmp_path / "tail.wav", [(9.5, "noise")]), model=model,
                                window_seconds=4)
    assert tail.windows["end"].tolist() == pytest.approx([4, 8, 9.5])
    assert tail.windows["used"].tolist() == [True, True, False]
    assert tail.windows["note"].tolist() == ["", "", "short"]
    assert tail.min_window_seconds == 4  # min(10 s, window length)


def test_long_silence_at_the_start_is_left_out(tmp_path, model):
    path = _song(tmp_path / "late.wav", [(8, "silence"), (8, "tone")])
    result = predict.predict_song(path, model=model, window_seconds=4)
    assert result.windows["note"].tolist() == ["silent", "silent", "", ""]
    assert result.windows["used"].tolist() == [False, False, True, True]
    assert result.agreement > 0
    plain = predict.revote(result, "mean")
    assert plain.windows["used"].sum() >= 2 and plain.rule == "mean"


def test_silent_and_too_short_songs_are_refused(tmp_path, model):
    with pytest.raises(InputError, match="silent"):
        predict.predict_song(_song(tmp_path / "quiet.wav", [(8, "silence")]), model=model,
                             window_seconds=4)
    with pytest.raises(InputError, match="too short"):
        predict.predict_song(_song(tmp_path / "blip.wav", [(5, "tone")]), model=model)


def test_truncated_files_are_refused(tmp_path):
    wav = _song(tmp_path / "whole.wav", [(4, "noise")])
    data = wav.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        audio.check_not_truncated(tmp_path / "cut.wav")
    audio.check_not_truncated(wav)
    ogg = tmp_path / "whole.ogg"
    sf.write(ogg, np.random.default_rng(1).standard_normal(SR * 6).astype(np.float32) * 0.1, SR,
             format="OGG", subtype="VORBIS")
    audio.check_not_truncated(ogg)
    (tmp_path / "cut.ogg").write_bytes(ogg.read_bytes()[: ogg.stat().st_size // 2])
    with pytest.raises(AudioError, match="truncated"):
        audio.check_not_truncated(tmp_path / "cut.ogg")


def test_json_document_schema(tmp_path, model):
    result = predict.predict_song(_song(tmp_path / "s.wav", [(9.5, "noise")]), model=model,
                                  window_seconds=4)
    document = json.loads(result.to_json())
    assert {"genre", "confidence", "probabilities", "snippets"} <= set(document)
    assert set(document["probabilities"]) == {str(g) for g in model.classes_}
    assert document["genre"] == result.genre
    assert len(document["snippets"]) == 3
    for snippet in document["snippets"]:
        assert {"start", "end", "genre", "probabilities", "used"} <= set(snippet)
        assert isinstance(snippet["used"], bool)
        assert set(snippet["probabilities"]) == set(document["probabilities"])
    assert [s["used"] for s in document["snippets"]] == [True, True, False]


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "helpers", "predict", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.mp3").write_text("these are not the droids you are looking for\n")
    whole = _song(folder / "whole.wav", [(4, "noise")])
    (folder / "cut.wav").write_bytes(whole.read_bytes()[:20000])
    _song(folder / "blip.wav", [(3, "tone")])
    _song(folder / "ok.wav", [(11, "noise")])
    return folder


# A few in a real subprocess (what a user runs); the rest through cli.main in this process,
# with file-descriptor capture so native decoder output would still be seen.
@pytest.mark.parametrize("source, reason, subprocess_run", [
    ("missing.wav", "file not found", True),
    ("notes.mp3", "not a recognised audio format", True),
    ("http://127.0.0.1:9/song.ogg", "refused: 127.0.0.1 is a loopback address", True),
    ("cut.wav", "truncated", False),
    ("blip.wav", "too short", False),
    ("gopher://127.0.0.1/song", "unsupported URL scheme", False),
    ("blip.wav --window-seconds 0", "window length", False),
    ("ok.wav --model no_such_model.skops", "model file does not exist", False),
    ("ok.wav --model ok.wav", "not a readable skops model file", False),
])
def test_cli_bad_input_exits_2_with_one_line(bad_inputs, capfd, source, reason, subprocess_run):
    from helpers.cli import main

    source, *options = source.split()
    target = source if "://" in source else str(bad_inputs / source)
    options = [str(bad_inputs / o) if o.endswith((".skops", ".wav")) else o for o in options]
    if subprocess_run:
        run = _cli(target, "--json", *options)
        status, stdout, stderr = run.returncode, run.stdout, run.stderr
    else:
        status = main(["predict", target, "--json", *options])
        stdout, stderr = capfd.readouterr()
    assert status == 2, stderr
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert (options[-1] if "--model" in options else target) in lines[-1]
    assert reason in lines[-1]
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_cli_json_and_human_output_on_a_real_song(tmp_path, capsys):
    song = _song(tmp_path / "song.wav", [(10, "noise"), (6, "tone")])
    run = _cli(str(song), "--json", "--window-seconds", "8")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert len(document["snippets"]) == 2 and document["genre"] in document["probabilities"]
    assert document["title"] == "song" and document["source_url"] is None
    from helpers.cli import main
    from helpers.models import default_model, save_model

    model_file = save_model(default_model(), tmp_path / "knn.skops")
    assert main(["predict", str(song), "--window-seconds", "8", "--model", str(model_file)]) == 0
    human = capsys.readouterr().out
    assert f"genre: {document['genre']}" in human
    assert "0:00-0:08" in human and "0:08-0:16" in human


def test_cli_predicts_a_url_served_on_127_0_0_1(tmp_path, capsys, monkeypatch):
    from helpers.audio import ingest
    from helpers.cli import main

    site = tmp_path / "site"
    site.mkdir()
    _song(site / "tune.wav", [(12, "noise")])

    monkeypatch.setattr(ingest, "downloads_dir", lambda: tmp_path / "downloads")
    with serve_directory(site) as server:
        url = f"{server.base}/tune.wav"
        assert main(["predict", url, "--json", "--window-seconds", "6"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["source"] == url and document["source_url"] == url
    assert [s["end"] for s in document["snippets"]] == pytest.approx([6, 12], abs=0.05)
    assert captured.err == ""
    assert len(list((tmp_path / "downloads").glob("*.ogg"))) == 1


def _count_probes(monkeypatch):
    from helpers.audio import decode

    calls = []
    probe = decode.probe_audio  # every probe goes through the decode module's name
    monkeypatch.setattr(decode, "probe_audio",
                        lambda *a, **k: calls.append(a[0]) or probe(*a, **k))
    return calls


def test_predict_song_probes_the_file_once_beyond_fetch_audio(tmp_path, model, monkeypatch):
    song = _song(tmp_path / "song.wav", [(12, "noise")])
    calls = _count_probes(monkeypatch)
    steps = []
    predict.predict_song(song, model=model, window_seconds=6,
                         progress=lambda k, n: steps.append((k, n)))
    # fetch_audio's own (the ingested duration), then one check whose result serves the
    # window count, the windows' checks and the decoder
    assert len(calls) == 2
    assert steps == [(1, 2), (2, 2)]


def test_predict_command_checks_the_file_once(tmp_path, model, monkeypatch, capsys):
    from helpers.cli import main
    from helpers.commands import predict as predict_command

    song = _song(tmp_path / "song.wav", [(12, "noise")])
    monkeypatch.setattr(predict_command, "_load_model_argument",
                        lambda choice, features="gtzan": model)
    calls = _count_probes(monkeypatch)
    assert main(["predict", str(song), "--json", "--window-seconds", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == str(song)
    # the command's fetch_audio and check, and predict_song's fetch_audio of the same path;
    # predict_song does not check again
    assert len(calls) == 3


def test_a_model_without_a_card_reads_the_feature_set_of_its_columns():
    """A model retrained in the labeler carries no card: its columns name its feature set."""
    import numpy as np

    from helpers.features.columns import MODEL_FEATURES
    from helpers.predict import model_feature_set

    class Fitted:
        def __init__(self, columns):
            self.feature_names_in_ = np.asarray(columns, dtype=object)

    musicnn_columns = [f"musicnn_msd_{i}" for i in range(200)]
    assert model_feature_set(Fitted(musicnn_columns)) == "musicnn"
    assert model_feature_set(Fitted(list(MODEL_FEATURES))) == "gtzan"
    assert model_feature_set(Fitted([*MODEL_FEATURES, *musicnn_columns[:3]])) == "gtzan+musicnn"
    assert model_feature_set(Fitted(["no_such_column"])) == "gtzan"  # the default
    carded = Fitted(musicnn_columns)
    carded.model_card_ = {"feature_set": "gtzan+musicnn"}
    assert model_feature_set(carded) == "gtzan+musicnn"  # the card speaks first

"""`music-study evaluate --songs`: whole-song accuracy on a label store or a path,genre CSV."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import cli
from helpers.errors import InputError
from helpers.evaluation import songbed
from helpers.store import LabelStore

SR = 22050


def _tone(path, seconds=11.0, freq=220.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    signal = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(t.size)
    sf.write(path, signal.astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bed")
    _tone(folder / "a.wav", freq=220)
    _tone(folder / "b.wav", freq=880, noise=0.2, seed=1)
    _tone(folder / "c.wav", freq=440, noise=0.05, seed=2)
    (folder / "songs.csv").write_text("path,genre\na.wav,Classical\nb.wav,metal\nc.wav,electronic\n")
    return folder


def test_csv_test_bed_scores_known_genres_and_flags_unknown_ones(bed, model):
    result = songbed.evaluate_songs(bed / "songs.csv", model=model)
    songs = result.songs.set_index("genre")
    assert list(songs.index) == ["classical", "metal", "electronic"]  # normalised genres
    # the electronic song is no error: it only counts toward the flagged rate
    assert result.overall["n"] == 2 and result.unknown["n"] == 1
    assert result.unknown["genres"] == ["electronic"]
    assert result.unknown["flagged_rate"] == float(songs.loc["electronic", "uncertain"])
    assert not songs.loc["electronic", "correct"]
    assert result.overall["accuracy"] == songs.loc[["classical", "metal"], "correct"].mean()
    assert result.overall["ci95"] is None  # two songs: too few for an interval
    per_genre = result.per_genre.set_index("genre")
    assert pd.isna(per_genre.loc["electronic", "accuracy"]) and not per_genre.loc["electronic", "known"]
    assert result.confusion.to_numpy().sum() == 3
    assert result.model["name"] == model.model_card_["name"]
    from helpers.commands.evaluate import format_test_bed

    text = format_test_bed(result)
    assert "genres the model does not know (electronic; n=1)" in text and "too few songs to say" in text


def test_store_test_bed_uses_the_current_labels(bed, tmp_path, model, capsys):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        first = store.add_song(bed / "a.wav")
        second = store.add_song(bed / "c.wav")
        store.add_song(bed / "b.wav")  # never labelled: not in the test bed
        store.record_label(first, "jazz")
        wrong = store.record_label(second, "metal")
        store.undo(wrong)
        store.record_label(second, "ambient")
    songs, skipped = songbed.load_test_bed(tmp_path / "labels.sqlite")
    assert list(songs["genre"]) == ["jazz", "ambient"] and skipped == []
    assert cli.main(["evaluate", "--songs", str(tmp_path / "labels.sqlite"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["overall"]["n"] == 1 and document["unknown_genres"]["genres"] == ["ambient"]
    assert {"name", "test_accuracy", "test_split"} <= set(document["model"])
    assert sum(sum(row.values()) for row in document["confusion"].values()) == 2


@pytest.mark.parametrize("content, reason", [
    ("file,label\na.wav,jazz\n", "lacks the column(s) path, genre"),
    ("path,genre\nmissing.wav,jazz\n", "does not exist"),
])
def test_bad_csv_exits_2_with_one_line(bed, tmp_path, capsys, content, reason):
    csv = tmp_path / "bed.csv"
    csv.write_text(content)
    if "a.wav" in content:
        _tone(tmp_path / "a.wav")
    assert cli.main(["evaluate", "--songs", str(csv)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and reason in captured.err


def test_missing_source_is_refused_in_one_line(tmp_path, capsys):
    assert cli.main(["evaluate", "--songs", str(tmp_path / "nope.csv"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nope.csv: test bed does not exist" in captured.err
    with pytest.raises(InputError, match="no labelled song"):
        LabelStore(tmp_path / "empty.sqlite").close()
        songbed.load_test_bed(tmp_path / "empty.sqlite")


def test_an_empty_test_bed_is_refused_naming_its_source(tmp_path):
    empty_csv = tmp_path / "bed.csv"
    empty_csv.write_text("path,genre\n")
    reason = "test bed holds no labelled song with a readable audio file"
    with pytest.raises(InputError) as from_csv:
        songbed.load_test_bed(empty_csv)
    assert str(from_csv.value) == f"{empty_csv}: {reason}"
    with pytest.raises(InputError) as from_frame:
        songbed.load_test_bed(pd.DataFrame({"path": [], "genre": []}))
    assert str(from_frame.value) == f"test bed: {reason}"


def test_the_command_reads_the_test_bed_once_and_scores_as_evaluate_songs(bed, model, capsys,
                                                                          monkeypatch):
    expected = songbed.evaluate_songs(bed / "songs.csv", model=model).as_dict()
    reads = []
    original = songbed.load_test_bed

    def counted(source):
        reads.append(source)
        return original(source)

    from helpers.commands import evaluate as evaluate_command  # where the command reads it

    monkeypatch.setattr(evaluate_command, "load_test_bed", counted)
    assert cli.main(["evaluate", "--songs", str(bed / "songs.csv"), "--json"]) == 0
    assert len(reads) == 1
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(expected))

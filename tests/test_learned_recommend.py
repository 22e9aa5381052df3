"""Recommendations over libraries of musicnn features: an extract CSV, the label store, a folder.

The audio is a tiny folder of 8-s cuts of the shipped songs (two of the electronic one, one of
each other) plus a truncated WAV; the liked song is another cut of the electronic song, outside
the folder. Every file is tagged once per module (the musicnn cache keeps the results).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import main
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.features.learned import tag_songs
from helpers.features.musicnn import EMBEDDING_COLUMNS
from helpers.recommend.liked import liked_from_items
from helpers.recommend.recommender import Library, Recommender, resolve_liked
from helpers.store import LabelStore

CUT_SECONDS = 8.0


def _cut(song: Path, start: float, target: Path) -> Path:
    with sf.SoundFile(song) as handle:
        handle.seek(int(start * handle.samplerate))
        samples = handle.read(int(CUT_SECONDS * handle.samplerate), dtype="float32")
        rate = handle.samplerate
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, samples, rate)
    return target


@pytest.fixture(scope="module")
def songs(tmp_path_factory, shipped_songs):
    """The folder (one song in an ``electronic`` sub-folder), the liked cut and the bad file."""
    by_name = {p.stem: p for p in shipped_songs}
    root = tmp_path_factory.mktemp("learned-library")
    folder = root / "music"
    electronic = by_name["singularity_coherence"]
    _cut(electronic, 20.0, folder / "electronic" / "coherence_a.wav")
    _cut(electronic, 60.0, folder / "coherence_b.wav")
    _cut(by_name["openmsx_be_sharp_render"], 30.0, folder / "be_sharp.wav")
    _cut(by_name["wesnoth_heroes_rite"], 30.0, folder / "heroes_rite.wav")
    whole = _cut(by_name["wesnoth_heroes_rite"], 60.0, root / "whole.wav").read_bytes()
    (folder / "damaged.wav").write_bytes(whole[: len(whole) // 3])  # the header claims 8 s
    liked = _cut(electronic, 100.0, root / "liked" / "coherence_liked.wav")
    good, bad = tag_songs(sorted(folder.rglob("*.wav")) + [liked])  # every file tagged once
    assert [p.name for p, _ in bad] == ["damaged.wav"] and len(good) == 5
    return {"folder": folder, "liked": liked, "bad_reason": bad[0][1]}


@pytest.fixture(scope="module")
def extract_csv(songs):
    """``music-study extract --features musicnn`` of the folder, written into the folder."""
    output = songs["folder"] / "library.csv"
    # exit 1: written, with the damaged file listed as failed
    assert main(["extract", str(songs["folder"]), "-o", str(output), "--features", "musicnn",
                 "--no-cache"]) == 1
    return output


def _recommend(library, liked, k=3):
    seeds = resolve_liked(liked_from_items([str(liked)]), library)
    return Recommender(library).recommend(seeds, k=k)


def test_an_extract_csv_of_musicnn_is_an_embedding_library_with_tags(songs, extract_csv):
    table = pd.read_csv(extract_csv)
    assert set(EMBEDDING_COLUMNS) <= set(table.columns) and len(table) == 4  # damaged left out
    library = Library.from_csv(extract_csv)
    assert library.space == "embedding" and library.feature_columns == list(EMBEDDING_COLUMNS)
    assert library.meta.set_index("id").loc["coherence_a.wav", "genre"] == "electronic"
    recs = _recommend(library, songs["liked"])
    assert recs[0].id in {"coherence_a.wav", "coherence_b.wav"}, [r.id for r in recs]
    assert "musicnn embedding space" in recs[0].reason and "both: " in recs[0].reason
    assert "tags" in recs[0].shared


def test_a_csv_whose_files_are_gone_recommends_without_tags(songs, extract_csv, tmp_path):
    moved = tmp_path / "library.csv"
    moved.write_bytes(extract_csv.read_bytes())  # no audio next to it any more
    library = Library.from_csv(moved)
    recs = _recommend(library, songs["liked"])
    assert recs and all("both: " not in r.reason and "tags" not in r.shared for r in recs)
    # told where the audio is, the tags come back
    found = Library.from_csv(moved, audio_folder=songs["folder"])
    assert "both: " in _recommend(found, songs["liked"])[0].reason


def test_a_store_of_musicnn_windows_is_an_embedding_library_with_tags(songs, extract_csv, tmp_path):
    table = pd.read_csv(extract_csv)
    files = {p.name: p for p in songs["folder"].rglob("*.wav")}
    with LabelStore(tmp_path / "labels.sqlite") as store:
        for row in table.to_dict("records"):
            song_id = store.add_song(files[row["filename"]])
            features = {c: row[c] for c in EMBEDDING_COLUMNS}
            # two windows per song: the library averages them
            store.add_windows(song_id, [(0.0, 4.0, features), (4.0, 8.0, features)], feature_set="musicnn")
        library = Library.from_store(store)
        with pytest.raises(InputError, match="choose embedding$"):
            Library.from_store(store, space="features")
    assert library.space == "embedding" and len(library) == 4
    recs = _recommend(library, songs["liked"])
    assert recs[0].title in {"coherence_a.wav", "coherence_b.wav"}, [r.title for r in recs]
    assert "both: " in recs[0].reason


def test_recommend_folder_end_to_end_lists_the_bad_file(songs, capsys):
    folder, liked = songs["folder"], songs["liked"]
    inside = folder / "coherence_b.wav"
    assert main(["recommend", "--folder", str(folder), "--liked", str(liked), str(inside),
                 "-k", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"skipped {folder / 'damaged.wav'}: {songs['bad_reason']}" in captured.err
    recs = json.loads(captured.out)
    ids = [r["id"] for r in recs]
    assert "coherence_b.wav" not in ids  # a liked file of the folder is never recommended back
    assert ids[0] == "electronic/coherence_a.wav" and recs[0]["genre"] == "electronic"
    assert "both: " in recs[0]["reason"] and recs[0]["space"] == "embedding"
    for space in ("tags", "embedding"):
        assert main(["recommend", "--folder", str(folder), "--liked", str(liked), "-k", "2",
                     "--space", space]) == 0
        out = capsys.readouterr().out
        assert f"musicnn {'tag' if space == 'tags' else 'embedding'} space" in out and "both: " in out


def test_a_space_that_does_not_fit_the_library_is_refused_in_one_line(songs, extract_csv):
    cli = [sys.executable, "-m", "helpers.cli", "recommend", "--liked", str(songs["liked"])]
    for extra, choices in (([ "--folder", str(songs["folder"]), "--space", "genre"], "embedding, tags"),
                           (["--library", str(extract_csv), "--space", "tags"], "embedding"),
                           (["--space", "embedding"], "features, features+genre, genre")):
        run = subprocess.run(cli + extra, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].endswith(f"choose {choices}"), run.stderr


def test_a_segmented_combined_table_averages_segments_and_offers_both_kinds_of_space(songs, tmp_path):
    output = songs["folder"].parent / "combined.csv"
    main(["extract", str(songs["folder"]), "-o", str(output), "--features", "gtzan+musicnn",
          "--segment-seconds", "4", "--no-cache"])
    table = pd.read_csv(output)
    assert table.groupby("clip").size().min() == 2  # two 4-s segments per 8-s cut
    library = Library.from_csv(output, audio_folder=songs["folder"])
    assert library.space == "embedding" and len(library) == 4
    row = library.index_of("be_sharp.wav")
    expected = table[table["clip"] == "be_sharp.wav"][list(EMBEDDING_COLUMNS)].mean().to_numpy()
    np.testing.assert_allclose(library.raw[row], expected)
    assert "both: " in _recommend(library, songs["liked"])[0].reason
    assert Library.from_csv(output, space="features").feature_columns == list(MODEL_FEATURES)
    with pytest.raises(InputError, match="choose embedding, features, features\\+genre, genre$"):
        Library.from_csv(output, space="tags")

import shutil

import pandas as pd
import pytest

from helpers import data
from helpers.errors import DataIntegrityError, InputError
from helpers.features import FEATURE_COLUMNS


def test_table_has_1000_rows_and_the_feature_columns():
    table = data.load_gtzan_table()
    assert table.shape == (1000, 60)
    assert tuple(table.columns[1:-1]) == FEATURE_COLUMNS
    assert table["label"].value_counts().to_dict() == {g: 100 for g in data.GENRES}


def test_edited_table_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "gtzan"
    shutil.copytree(data.gtzan_table_path().parent, copy)
    table = copy / "features_30_sec.csv"
    table.write_text(table.read_text().replace("blues.00000.wav,661794", "blues.00000.wav,661795"))
    monkeypatch.setattr(data, "shipped_data_dir", lambda: tmp_path)
    data._load_table.cache_clear()
    try:
        with pytest.raises(DataIntegrityError, match="md5"):
            data.load_gtzan_table()
    finally:
        data._load_table.cache_clear()


@pytest.mark.parametrize("name,sizes", [("fault-filtered", (443, 197, 290)),
                                        ("stratified", (500, 250, 250))])
def test_splits_have_published_sizes_and_are_disjoint(name, sizes):
    split = data.load_split(name)
    assert tuple(len(split[p]) for p in data.SPLIT_PARTS) == sizes
    assert not set(split["train"]) & set(split["test"])
    assert not set(split["valid"]) & set(split["test"])
    table_names = set(data.load_gtzan_table()["filename"])
    assert set(sum(split.values(), [])) <= table_names


def test_fault_filtered_split_keeps_artists_apart():
    split = data.load_split("fault-filtered")
    index = data.load_artist_index().set_index("filename")["artist"]
    artists = {p: {index[f] for f in split[p]} - {""} for p in data.SPLIT_PARTS}
    assert not artists["train"] & artists["test"]


def test_unknown_split_is_a_clear_error():
    with pytest.raises(InputError, match="unknown split"):
        data.load_split("random")


def test_artist_index_knows_the_famous_repeats():
    index = data.load_artist_index()
    assert len(index) == 1000
    assert (index["artist"] == "").sum() == 81
    reggae = index[index["genre"] == "reggae"]["artist"].value_counts()
    assert reggae["Bob Marley"] == 35
    pop = index[index["genre"] == "pop"]["artist"].value_counts()
    assert pop["Britney Spears"] == 24


def test_artist_groups_give_unknown_clips_their_own_group():
    groups = data.artist_groups(["reggae.00000.wav", "blues.00000.wav"])
    assert isinstance(groups, pd.Series) and len(groups) == 2
    unknown = data.load_artist_index().query("artist == ''")["filename"].iloc[:2]
    assert data.artist_groups(unknown).nunique() == 2


def test_public_domain_lyrics():
    lyrics = data.load_public_domain_lyrics()
    assert len(lyrics) == 197
    assert {"title", "lyrics", "origin_tag", "collection"} <= set(lyrics.columns)


def test_shipped_copies_match_the_reference(shared_data):
    for relative in ["gtzan/features_30_sec.csv", "gtzan/metadata/GTZANindex.txt",
                     "lyrics/public_domain_songs.csv"]:
        assert data.file_md5(data.shipped_data_dir() / relative) == data.file_md5(shared_data / relative)

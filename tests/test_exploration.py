import numpy as np
import pandas as pd

from helpers import data
from helpers.features import exploration
from helpers.models import MODEL_FEATURES


def test_class_balance_counts_every_genre():
    balance = exploration.class_balance(data.load_gtzan_table())
    assert balance.to_dict() == {g: 100 for g in data.GENRES}


def test_artist_repetition_names_the_dominant_artists():
    repetition = exploration.artist_repetition(data.load_artist_index())
    assert repetition.loc["reggae", "top_artists"].startswith("Bob Marley (35)")
    assert repetition.loc["reggae", "top_artist_share"] == 0.35
    assert repetition.loc["pop", "top_artists"].startswith("Britney Spears (24)")
    assert repetition["clips"].sum() == 1000
    assert repetition["clips_without_artist"].sum() == 81


def test_exact_duplicate_groups_find_planted_and_real_replicas():
    table = pd.DataFrame({"filename": ["a", "b", "c"], "label": ["x", "x", "y"],
                          "f1": [1.0, 1.0, 2.0], "f2": [0.5, 0.5, 0.5]})
    groups = exploration.exact_duplicate_groups(table, columns=["f1", "f2"])
    assert groups["filenames"].tolist() == ["a, b"]
    real = exploration.exact_duplicate_groups(data.load_gtzan_table())
    assert len(real) > 0 and all(", " in names for names in real["filenames"])


def test_pca_projection_is_standardised_and_two_dimensional():
    table = data.load_gtzan_table()
    projection = exploration.pca_projection(table, MODEL_FEATURES)
    assert list(projection.columns) == ["pc1", "pc2", "label"]
    assert abs(projection["pc1"].mean()) < 1e-8
    ratios = projection.attrs["explained_variance"]
    assert 0 < ratios[1] <= ratios[0] < 1


def test_example_clips_pick_one_file_per_genre_folder(tmp_path):
    for genre in ["rock", "jazz"]:
        (tmp_path / genre).mkdir()
        for i in range(2):
            (tmp_path / genre / f"{genre}.0000{i}.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a genre folder")
    clips = exploration.example_clips(tmp_path)
    assert sorted(clips) == ["jazz", "rock"]
    assert clips["rock"][0].name == "rock.00000.wav"


def test_mel_spectrogram_db_peaks_at_zero():
    sr = 22050
    y = np.sin(2 * np.pi * 440 * np.arange(sr) / sr).astype(np.float32)
    mel = exploration.mel_spectrogram_db(y, sr)
    assert mel.shape[0] == 128 and np.isclose(mel.max(), 0.0)


def test_genre_variance_share_is_one_for_a_genre_constant_and_zero_for_equal_means():
    table = pd.DataFrame({"label": ["a", "a", "b", "b"], "by_genre": [1.0, 1.0, 3.0, 3.0],
                          "noise": [1.0, 3.0, 1.0, 3.0]})
    share = exploration.genre_variance_share(table, ["by_genre", "noise"])
    assert share["by_genre"] == 1.0 and share["noise"] == 0.0


def test_centroid_agreement_reads_separated_and_mixed_genres():
    projection = pd.DataFrame({"pc1": [0, 0.1, 10, 10.1, 5, 5.2], "pc2": [0] * 6,
                               "label": ["a", "a", "b", "b", "a", "b"]})
    agreement = exploration.centroid_agreement(projection)
    assert set(agreement.index) == {"a", "b"} and agreement.max() <= 1.0


def test_random_splits_put_most_test_clips_beside_a_clip_by_their_artist():
    shares = exploration.same_artist_share(data.load_artist_index(), n_seeds=5)
    assert len(shares) == 5 and (shares > 0.5).all() and (shares < 1).all()


def test_fault_filtered_composition_counts_every_clip_once():
    table = data.load_gtzan_table()
    composition = exploration.split_composition(data.load_split("fault-filtered"), table)
    assert composition.loc["total"].to_dict() == {"train": 443, "valid": 197, "test": 290, "left out": 70}
    assert composition.drop("total").sum(axis=1).eq(100).all()

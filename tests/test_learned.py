"""Learned features in genre prediction, open set and recommendations: mapping, comparison, reasons."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared
from scipy.stats import beta, binomtest

from helpers.cli import main
from helpers.data import load_split
from helpers.errors import InputError
from helpers.evaluation import learned as learned_eval
from helpers.features import learned as learned_features
from helpers.features.musicnn import load_model
from helpers.models import tag_genres
from helpers.recommend import evaluation as recommend_eval
from helpers.recommend.learned import audio_seeds, learned_library
from helpers.recommend.recommender import Library, Recommender
from helpers.stats import binomial_interval, mcnemar

#: Genres whose clips are driven by a drum kit or a beat (what an electronic song should meet).
BEAT_DRIVEN = {"hiphop", "disco", "pop", "metal", "reggae"}


# --------------------------------------------------------------------------- the mapping


def test_the_mapping_covers_every_listed_genre_with_tags_the_models_have():
    wanted = {"blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae",
              "rock", "electronic", "house", "alternative", "dance", "ambient", "punk", "folk",
              "soul/rnb", "funk"}
    assert set(tag_genres.GENRES) == wanted == set(tag_genres.TAG_GENRES)
    vocabularies = {m: set(load_model(m).tags) for m in (tag_genres.MTT, tag_genres.MSD)}
    for genre, pairs in tag_genres.TAG_GENRES.items():
        for model, tag in pairs:
            assert tag in vocabularies[model], f"{genre}: {model} has no tag {tag!r}"
    untagged = [g for g, pairs in tag_genres.TAG_GENRES.items() if not pairs]
    assert untagged == ["reggae"]  # the one genre neither vocabulary names (documented)
    table = tag_genres.mapping_table()
    assert set(table["genre"]) == wanted


def test_genre_scores_are_the_mean_of_the_genres_tags():
    tags = {tag_genres.MSD: {"70s": 0.9, "dance": 0.6, "funk": 0.3, "House": 0.5},
            tag_genres.MTT: {"dance": 0.2}}
    scores = tag_genres.genre_scores(tags)
    assert scores["disco"] == pytest.approx(0.6)
    assert scores["dance"] == pytest.approx((0.6 + 0.2 + 0.0) / 3)
    assert scores["reggae"] == 0.0
    assert tag_genres.predict_genre(tags) == ("disco", pytest.approx(0.6))
    assert tag_genres.predict_genre(tags, tag_genres.GTZAN_GENRES)[0] == "disco"
    with pytest.raises(InputError, match="no tag mapping"):
        tag_genres.genre_scores(tags, genres=["polka"])


# --------------------------------------------------------------------------- statistics


def test_exact_interval_and_mcnemar_match_their_definitions():
    low, high = binomial_interval(7, 20)
    assert low == pytest.approx(beta.ppf(0.025, 7, 14))
    assert high == pytest.approx(beta.ppf(0.975, 8, 13))
    assert binomial_interval(0, 4)[0] == 0.0 and binomial_interval(4, 4)[1] == 1.0
    a = [True] * 9 + [False] * 1 + [True] * 5 + [False] * 5
    b = [False] * 9 + [True] * 1 + [True] * 5 + [False] * 5
    test = mcnemar(a, b, exact=True)
    assert (dict(test.detail)["only_a_right"], dict(test.detail)["only_b_right"]) == (9, 1)
    assert test.p_value == pytest.approx(binomtest(9, 10, 0.5).pvalue)
    with pytest.raises(InputError):
        binomial_interval(5, 4)


def test_compare_predictions_on_a_case_with_a_known_answer():
    truth = np.array(["a", "b"] * 10)
    good = truth.copy()
    good[:2] = ["b", "a"]  # 18 of 20 right
    poor = truth.copy()
    poor[:10] = ["b", "a"] * 5  # 10 of 20 right, wrong on every item `good` gets wrong
    table = learned_eval.compare_predictions(truth, {"poor": poor, "good": good}, reference="poor")
    assert table.loc["good", "correct"] == 18 and table.loc["poor", "correct"] == 10
    assert (table.loc["good", "ci_low"], table.loc["good", "ci_high"]) == pytest.approx(binomial_interval(18, 20))
    assert table.loc["good", "diff"] == pytest.approx(0.4)
    assert table.loc["good", "diff_low"] > 0  # every discordant item favours `good`
    assert (table.loc["good", "a_only"], table.loc["good", "b_only"]) == (8, 0)
    assert table.loc["good", "mcnemar_p"] == pytest.approx(binomtest(8, 8, 0.5).pvalue)
    assert np.isnan(table.loc["poor", "diff"])
    scoped = learned_eval.compare_predictions(truth, {"poor": poor, "good": good}, reference="poor",
                                              rows=np.arange(20) >= 10)
    assert scoped.loc["good", "n"] == 10 and scoped.loc["good", "accuracy"] == 1.0
    with pytest.raises(InputError, match="predictions for"):
        learned_eval.compare_predictions(truth, {"x": truth[:3]}, reference="x")


def test_open_set_summary_and_rates_on_a_separable_case():
    rng = np.random.default_rng(0)
    rows = []
    for left_out in ("a", "b", "c"):
        for i in range(12):
            unknown = i < 4
            genre = left_out if unknown else [g for g in ("a", "b", "c") if g != left_out][i % 2]
            rows.append({"left_out": left_out, "id": f"{genre}{i}", "genre": genre, "artist_group": f"{genre}{i}",
                         "unknown": unknown, "perfect": float(unknown) + rng.random() * 0.1,
                         "noise": rng.random()})
    scores = pd.DataFrame(rows)
    summary = learned_eval.open_set_summary(scores, reference="noise", n_boot=50)
    assert summary.loc["perfect", "auroc"] == 1.0
    assert summary.loc["perfect", "diff_low"] > 0
    rates = learned_eval.out_of_sample_rates(scores, "perfect", false_flag_rate=0.1)
    assert rates["detection_rate"] == 1.0 and rates["false_flag_rate"] <= 0.25


# --------------------------------------------------------------------------- the genre oracle


def test_the_genre_oracle_lists_liked_genres_by_new_artists():
    library = Library.gtzan()
    users = recommend_eval.simulate_users(library, n_users=12, seed=3)
    oracle = recommend_eval.GenreOracleRecommender(library, seed=0)
    meta = library.meta.set_index("id")
    for user in users:
        recs = oracle.recommend(user.seeds, k=10)
        shown = {a for a in meta.loc[list(user.seeds), "artist"] if a}
        assert len(recs) == 10
        assert all(r.genre in user.genres for r in recs)
        assert not any(r.artist in shown for r in recs if r.artist)
        assert not set(r.id for r in recs) & set(user.seeds)
    per_user, _ = recommend_eval.evaluate(library, users, recommend_eval.baselines(library, users), k=10)
    means = per_user.groupby("config")[["in_user_genres_new_artists", "seed_artist_share"]].mean()
    assert means.loc["genre oracle", "in_user_genres_new_artists"] == 1.0
    assert means.loc["genre oracle", "seed_artist_share"] == 0.0
    assert means.loc["random", "in_user_genres_new_artists"] < 0.5


# --------------------------------------------------------------------------- real audio


@pytest.fixture(scope="module")
def clips():
    """Three GTZAN clips of every genre (30), tagged once by the port and cached by content."""
    base = require_shared("gtzan")
    table = learned_features.gtzan_clips_with_audio(base.parent)
    return table.groupby("genre", group_keys=False).head(3).reset_index(drop=True)


@pytest.fixture(scope="module")
def electronic_song(root):
    return root / "data" / "music" / "singularity_coherence.ogg"


def test_gtzan_clips_with_audio_carry_genre_and_artist(clips):
    assert len(clips) == 30 and clips["genre"].nunique() == 10
    row = clips.set_index("id").loc["blues.00000.wav"]
    assert row["artist"] == "John Lee Hooker" and row["artist_group"] == "john lee hooker"


def test_the_cache_returns_what_the_port_computed(clips, tmp_path):
    path = clips["path"].iloc[0]
    first = learned_features.cached_song_tags(path, folder=tmp_path)
    again = learned_features.cached_song_tags(path, folder=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1
    for model in first.models:
        np.testing.assert_allclose(again.taggram[model], first.taggram[model], atol=1e-6)
        np.testing.assert_allclose(again.penultimate[model], first.penultimate[model], atol=1e-5)
    assert [t for t, _ in again.top_tags("MTT_musicnn", 3)] == [t for t, _ in first.top_tags("MTT_musicnn", 3)]


@pytest.fixture(scope="module")
def reference_tags():
    """Song-level tags of the 96 GTZAN clips from the original musicnn's outputs (fast to read)."""
    folder = require_shared("musicnn")
    table = learned_features.gtzan_clips_with_audio(folder.parent)
    columns = learned_features.tag_columns()
    rows = []
    archives = [np.load(folder / f"reference_{m}.npz") for m in ("MTT_musicnn", "MSD_musicnn")]
    for clip in table["id"]:
        key = clip.removesuffix(".wav")
        rows.append(np.concatenate([a[f"{key}/taggram"].mean(axis=0) for a in archives]))
    return table, pd.DataFrame(rows, index=table["id"], columns=columns)


def test_an_electronic_song_gets_beat_driven_neighbours_not_orchestral_ones(reference_tags, electronic_song):
    """The ambient/electronic shipped song, tagged by the port, among the 96 GTZAN clips."""
    table, tags = reference_tags
    library = learned_library(table, "tags", tags=tags)
    seeds = audio_seeds([electronic_song], library)
    recs = Recommender(library).recommend([], external=seeds, k=10)
    genres = [r.genre for r in recs]
    assert "classical" not in genres, genres
    assert sum(g in BEAT_DRIVEN for g in genres) >= 6, genres
    assert all("both: " in r.reason for r in recs[:3]), [r.reason for r in recs[:3]]


def test_every_reason_names_the_tags_the_songs_share(clips, electronic_song):
    library = learned_library(clips, "tags")
    seeds = audio_seeds([electronic_song], library)
    own = library.song_tags(seeds[library.tag_columns].to_numpy(dtype=float)[0])
    recs = Recommender(library).recommend([], external=seeds, k=5)
    for rec in recs:
        assert "in the musicnn tag space" in rec.reason
        if "tags" in rec.shared:
            named = rec.reason.split("both: ", 1)[1].split(",")
            assert named and all(t.strip().split(" (")[0] in own for t in named)
        else:
            assert "no tag among both songs' top" in rec.reason
    assert any("both: " in r.reason for r in recs)
    # a library song liked from the 58-feature library names shared tags too
    features = learned_library(clips, "features")
    rec = Recommender(features).recommend(["disco.00000.wav"], k=3)[0]
    assert "audio-feature space" in rec.reason and ("both: " in rec.reason or "no tag among" in rec.reason)


def test_a_features_library_needs_gtzan_ids(clips):
    odd = clips.head(4).assign(id=["x1", "x2", "x3", "x4"])
    with pytest.raises(InputError, match="GTZAN table"):
        learned_library(odd, "features")
    with pytest.raises(InputError, match="unknown library space"):
        learned_library(clips, "lyrics")


# --------------------------------------------------------------------------- the command line


def _linked_folder(tmp_path, clips):
    """A GTZAN-like audio folder (<genre>/<file>) of symlinks to *clips*."""
    for row in clips.itertuples():
        target = tmp_path / "gtzan" / row.genre / Path(row.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(row.path)
    return tmp_path / "gtzan"


def test_evaluate_songs_with_musicnn_compares_the_learned_paths_with_the_default(clips, tmp_path, monkeypatch, capsys):
    folder = _linked_folder(tmp_path, clips)
    monkeypatch.setenv("MUSIC_STUDY_GTZAN_AUDIO", str(folder))
    bed = tmp_path / "bed.csv"
    chosen = clips[clips["id"].isin(["classical.00000.wav", "metal.00000.wav"])]
    pd.DataFrame({"path": chosen["path"], "genre": chosen["genre"]}).to_csv(bed, index=False)
    assert main(["evaluate", "--songs", str(bed), "--features", "musicnn", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["embedding_training_clips"] == len(clips)
    methods = {row["method"]: row for row in document["comparison"]}
    assert set(methods) == {"default recipe, 58 features", "tag genre (no training)", "embedding classifier"}
    assert all(row["n"] == 2 for row in methods.values())
    by_path = {Path(s["path"]).name: s for s in document["songs"]}
    assert by_path["classical.00000.wav"]["tag genre (no training)"] == "classical"
    assert by_path["classical.00000.wav"]["embedding classifier"] == "classical"  # a training clip


def test_evaluate_features_musicnn_runs_the_fault_filtered_split_from_a_folder(clips, tmp_path, monkeypatch, capsys):
    folder = _linked_folder(tmp_path, clips)
    monkeypatch.setenv("MUSIC_STUDY_GTZAN_AUDIO", str(folder))
    assert main(["evaluate", "--features", "musicnn", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    parts = load_split("fault-filtered")
    in_split = {c for part in parts.values() for c in part}
    ids = set(clips["id"])
    assert result["n_train"] == len(ids & set(parts["train"] + parts["valid"]))
    assert result["n_test"] == len(ids & set(parts["test"]))
    assert result["missing"] == len(in_split) - result["n_train"] - result["n_test"]
    assert 0 <= result["ci95"][0] <= result["accuracy"] <= result["ci95"][1] <= 1


def test_evaluate_refuses_an_unknown_feature_set_and_a_missing_folder(monkeypatch, capsys):
    monkeypatch.delenv("MUSIC_STUDY_GTZAN_AUDIO", raising=False)
    assert main(["evaluate", "--features", "mfcc-only"]) == 2
    err = capsys.readouterr().err
    assert "unknown feature set" in err and "musicnn" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", "--features", "musicnn"]) == 2
    assert "MUSIC_STUDY_GTZAN_AUDIO" in capsys.readouterr().err


def test_neighbour_genre_agreement_skips_the_songs_own_artist():
    table = pd.DataFrame({"id": list("abcd"), "artist": ["x", "x", "y", "z"], "genre": ["g", "g", "g", "h"],
                          "f1": [1.0, 1.0, 0.8, -1.0], "f2": [0.0, 0.01, 0.3, 0.2]})
    library = Library(table, feature_columns=["f1", "f2"])
    out = recommend_eval.neighbour_genre_agreement({"f": library}, table["artist"])["f"]
    # a's nearest song is b (same artist, skipped), so its answer comes from c or d
    sims = library.embedding @ library.embedding.T
    assert out[0] == table["genre"][2 if sims[0, 2] > sims[0, 3] else 3]
    assert out[3] == table["genre"][int(np.argmax(np.where([True, True, True, False], sims[3], -np.inf)))]


def test_the_recipe_argument_comes_from_paired_differences():
    rng = np.random.default_rng(0)
    users = np.arange(40)
    base = rng.random(40)
    per_user = pd.concat([
        pd.DataFrame({"config": "default", "user": users, "precision": base + 0.2, "seed_artist_share": base}),
        pd.DataFrame({"config": "other", "user": users, "precision": base, "seed_artist_share": base + 0.3}),
        pd.DataFrame({"config": "same", "user": users, "precision": base + 0.2 + rng.normal(0, 0.05, 40),
                      "seed_artist_share": base}),
    ])
    gains = recommend_eval.paired_gains(per_user, ["other", "same"], "default", metrics=("precision", "seed_artist_share"),
                                        n_boot=200)
    stand = recommend_eval.standing(gains, ("precision", "seed_artist_share"))
    assert stand["other"]["ahead"] == ["precision", "seed_artist_share"] and not stand["other"]["behind"]
    assert stand["same"]["unclear"] == ["precision", "seed_artist_share"]
    text = recommend_eval.recipe_argument(per_user, "default", ["other"], ("precision",), n_boot=200)
    assert text == "against other the default recipe is ahead on precision, behind on nothing"

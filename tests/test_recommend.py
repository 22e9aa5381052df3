"""Recommender: library conditioning, exclusions, artist cap, MMR, hubs, lyrics blend, CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile
from conftest import require_shared, serve_directory

from helpers.cli import main
from helpers.data import load_gtzan_table
from helpers.errors import InputError
from helpers.paths import project_root
from helpers.recommend import evaluation as recommend_eval
from helpers.recommend import recommender as recommender_module
from helpers.recommend.liked import normalize_artist
from helpers.recommend.recommender import Library, Recommender


@pytest.fixture(scope="module")
def library():
    return Library.gtzan()


@pytest.fixture(scope="module")
def users(library):
    return recommend_eval.simulate_users(library, n_users=40, seed=1)


def _cli(*args):
    env = {"PYTHONPATH": str(project_root() / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "helpers", "recommend", *args],
                          capture_output=True, text=True, env=env, cwd=project_root(), timeout=120)


def test_library_conditions_and_collapses_duplicates(library):
    conditioner = library.conditioner
    logged = {c for c, flag in zip(library.feature_columns, conditioner.log_mask_, strict=True) if flag}
    assert {"rms_var", "spectral_centroid_var", "mfcc1_var"} <= logged
    assert not logged & {"mfcc2_mean", "tempo", "harmony_mean"}
    assert np.allclose(np.linalg.norm(library.embedding, axis=1), 1.0, atol=1e-5)
    assert np.allclose(library.standardised.mean(axis=0), 0, atol=1e-4)
    # GTZAN's exact replicas share one representative.
    ids = library.meta["id"].tolist()
    a, b = ids.index("disco.00098.wav"), ids.index("disco.00099.wav")
    assert library.duplicate_of[a] == library.duplicate_of[b] == a
    assert (library.duplicate_of != np.arange(len(library))).sum() == 14


def test_library_rejects_bad_tables(library):
    table = library.meta.assign(tempo=1.0, rms_mean=2.0)
    with pytest.raises(InputError, match="appears twice"):
        Library(pd.concat([table, table.iloc[:1]]))
    broken = table.copy()
    broken.loc[3, "tempo"] = np.nan
    with pytest.raises(InputError, match="tempo is not a finite number"):
        Library(broken)
    with pytest.raises(InputError, match="no id column"):
        Library(table.drop(columns="id"))
    with pytest.raises(InputError, match="not a song id"):
        library.index_of("blues.99999")


def test_liked_duplicates_same_song_and_dislikes_are_excluded(library):
    ids = library.meta["id"].tolist()
    liked = ["disco.00098.wav", "jazz.00033.wav", "hiphop.00039.wav", "classical.00004.wav"]
    recommender = Recommender(library, mmr_lambda=None, artist_cap=None)
    allowed = recommender.allowed_mask([library.index_of(s) for s in liked])
    # the exact replicas of liked clips and other clips of the same song (same artist and title:
    # Coleman Hawkins' "Body and Soul" is jazz.00033 and jazz.00051)
    for other in ("disco.00099.wav", "hiphop.00045.wav", "jazz.00051.wav"):
        assert not allowed[ids.index(other)], other
    # clips whose title is unknown are not "the same song" (JS Bach, classical.00004-00010)
    assert allowed[ids.index("classical.00005.wav")]
    recs = recommender.recommend(liked, k=60, explain=False)
    recommended = {r.id for r in recs}
    assert len(recs) == 60 and not recommended & set(liked)
    assert not recommended & {"disco.00099.wav", "hiphop.00045.wav", "jazz.00051.wav"}

    disliked = recs[0].id
    row = library.index_of(disliked)
    nearest = np.argsort(-(library.embedding @ library.embedding[row]))[:11]
    after = {r.id for r in recommender.recommend(liked, disliked=[disliked], k=60, explain=False)}
    assert disliked not in after
    assert not after & {ids[i] for i in nearest}
    # something from the neighbourhood was recommended before, so the exclusion did work
    assert recommended & {ids[i] for i in nearest}


def test_artist_cap(library):
    marley = ["reggae.00000.wav", "reggae.00001.wav", "reggae.00002.wav", "reggae.00003.wav"]
    uncapped = Recommender(library, mmr_lambda=None, artist_cap=None).recommend(marley, k=10)
    counts = pd.Series([normalize_artist(r.artist) for r in uncapped if r.artist]).value_counts()
    assert counts.iloc[0] > 2, "precondition: without a cap one artist fills the list"
    capped = Recommender(library, mmr_lambda=None, artist_cap=2).recommend(marley, k=10)
    counts = pd.Series([normalize_artist(r.artist) for r in capped if r.artist]).value_counts()
    assert len(capped) == 10 and counts.max() <= 2
    one = Recommender(library, mmr_lambda=0.7, artist_cap=1).recommend(marley, k=10)
    assert pd.Series([normalize_artist(r.artist) for r in one if r.artist]).value_counts().max() == 1


def test_mmr_diversifies_lists(library, users):
    def diversity(**kwargs):
        recommender = Recommender(library, artist_cap=None, **kwargs)
        rows = [recommend_eval.user_metrics([r.id for r in recommender.recommend(u.seeds, explain=False)], u, library)
                for u in users]
        return pd.DataFrame(rows)

    plain, mmr = diversity(mmr_lambda=None), diversity(mmr_lambda=0.5)
    assert mmr["distinct_artists"].mean() >= plain["distinct_artists"].mean() + 0.5
    assert mmr["distinct_genres"].mean() >= plain["distinct_genres"].mean() + 0.5
    assert (mmr["distinct_genres"] >= plain["distinct_genres"]).mean() > 0.7
    # lambda=1 is plain relevance ranking
    same = Recommender(library, mmr_lambda=1.0, artist_cap=None).recommend(users[0].seeds, explain=False)
    base = Recommender(library, mmr_lambda=None, artist_cap=None).recommend(users[0].seeds, explain=False)
    assert [r.id for r in same] == [r.id for r in base]


def test_hub_penalty_spreads_recommendations(library, users):
    configs = {"plain": {"hub_penalty": 0.0}, "csls": {"hub_penalty": 0.5}}
    _, catalogue = recommend_eval.evaluate(library, users, configs, k=10)
    assert catalogue.loc["csls", "coverage"] > catalogue.loc["plain", "coverage"]
    assert catalogue.loc["csls", "gini"] < catalogue.loc["plain", "gini"]


def test_centroid_and_per_seed_strategies_differ(library):
    liked = ["classical.00020.wav", "classical.00030.wav", "metal.00010.wav", "metal.00020.wav"]
    per_seed = Recommender(library, mmr_lambda=None, artist_cap=None).recommend(liked, k=10)
    centroid = Recommender(library, strategy="centroid", mmr_lambda=None, artist_cap=None).recommend(liked, k=10)
    assert {r.genre for r in per_seed} >= {"classical", "metal"}
    assert [r.id for r in per_seed] != [r.id for r in centroid]


def test_every_recommendation_explains_itself(library):
    liked = ["blues.00000.wav", "jazz.00010.wav"]
    recs = Recommender(library).recommend(liked, k=10)
    titles = set(library.meta.set_index("id").loc[liked, "title"])
    for rec in recs:
        assert rec.near and rec.near[0]["id"] in liked
        assert rec.near[0]["title"] in rec.reason and rec.reason.startswith("near ")
        assert 0.0 <= rec.score <= 1.0 and rec.near[0]["similarity"] <= 1.0
        nearest_genre = library.meta.set_index("id").at[rec.near[0]["id"], "genre"]
        assert ("genre" in rec.shared) == (rec.genre == nearest_genre)
        assert set(rec.shared) <= {"genre", "tempo", "timbre", "brightness", "lyrics"}
    assert any(n["title"] in titles for rec in recs for n in rec.near)
    assert [r.score for r in recs][0] == 1.0


def test_lyrics_blend_pulls_in_songs_with_similar_lyrics(library):
    liked = ["blues.00000.wav", "blues.00001.wav"]
    rng = np.random.default_rng(0)
    ids = library.meta["id"].to_numpy()
    lyrics = pd.DataFrame(rng.normal(size=(len(ids), 4)), index=ids, columns=["sentiment", "t1", "t2", "t3"])
    audio_only = [r.id for r in Recommender(library, mmr_lambda=None, artist_cap=None).recommend(liked, k=10)]
    # give a far-away classical clip exactly the liked songs' lyrics profile
    target = "classical.00050.wav"
    assert target not in audio_only
    lyrics.loc[target] = lyrics.loc[liked[0]]
    lyrics = lyrics.drop(index=["metal.00001.wav"])  # a song without lyrics keeps working
    blended = Library.gtzan(lyrics=lyrics, lyrics_weight=0.8)
    recs = Recommender(blended, mmr_lambda=None, artist_cap=None).recommend(liked, k=10)
    assert target in [r.id for r in recs]
    assert "lyrics" in next(r for r in recs if r.id == target).shared
    with pytest.raises(InputError):
        Library.gtzan(lyrics=lyrics, lyrics_weight=1.5)


def test_cli_json_schema():
    result = _cli("--liked", "blues.00000", "jazz.00010.wav", "-k", "5", "--json")
    assert result.returncode == 0, result.stderr
    recs = json.loads(result.stdout)
    assert isinstance(recs, list) and len(recs) == 5
    for rec in recs:
        assert {"id", "artist", "title", "score", "reason"} <= set(rec)
        assert isinstance(rec["id"], str) and isinstance(rec["reason"], str) and rec["reason"]
        assert isinstance(rec["score"], float) and isinstance(rec["artist"], str)
        assert isinstance(rec["title"], str) and isinstance(rec["near"], list)
    assert len({r["id"] for r in recs}) == 5


def test_cli_space_option_chooses_the_space_the_reasons_name(capsys):
    from helpers import cli

    assert cli.main(["recommend", "--liked", "blues.00000", "-k", "3", "--space", "genre",
                     "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and all("genre-projection space" in r["reason"] for r in recs)
    assert cli.main(["recommend", "--liked", "blues.00000", "-k", "3", "--json"]) == 0
    assert all("audio-feature space" in r["reason"] for r in json.loads(capsys.readouterr().out))


def test_cli_unknown_id_exits_2_with_one_line():
    result = _cli("--liked", "blues.00000", "blues.99999", "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("music-study recommend: error: blues.99999: not a song id of the "
                                     "library (1000 songs; ids look like blues.00000.wav)")


@pytest.mark.parametrize("args, expected", [
    (["--liked-file", "/nonexistent/liked.txt"], "/nonexistent/liked.txt: liked-songs file does not exist"),
    ([], "give at least one liked song"),
    (["--liked", "blues.00000", "--lambda", "2"], "outside [0, 1]"),
    (["--liked", "blues.00000", "--dislike", "nope"], "nope: not a song id"),
    (["--liked", "blues.00000", "--library", "/nonexistent.csv"], "library table does not exist"),
])
def test_cli_bad_input_in_process(args, expected, capsys):
    assert main(["recommend", *args]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


def test_cli_library_from_an_extracted_table(tmp_path, capsys):
    # a feature table as `music-study extract` writes it: filename, features, no artist column
    source = load_gtzan_table().iloc[::10].drop(columns="label")
    path = tmp_path / "table.csv"
    source.to_csv(path, index=False)
    assert main(["recommend", "--library", str(path), "--liked", source["filename"].iloc[0], "-k", "4",
                 "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 4 and {r["id"] for r in recs} <= set(source["filename"][1:])
    assert all(r["artist"] == "" and r["genre"] == "" for r in recs)


def test_cli_real_liked_list_has_no_gtzan_match(capsys):
    path = require_shared("seed", "ytmusic_liked_songs.txt")
    assert main(["recommend", "--liked-file", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert "none of the 717 liked songs is in the library of 1000 songs" in captured.err
    assert captured.out == ""


def _write_song(path, seconds=6.0, freq=220.0):
    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    signal = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    signal += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    soundfile.write(path, signal.astype(np.float32), sr)


@pytest.mark.slow
def test_cli_liked_audio_file_outside_the_library(tmp_path, capsys):
    path = tmp_path / "my song.wav"
    _write_song(path)
    assert main(["recommend", "--liked", str(path), "-k", "3", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 3 and recs[0]["near"][0]["id"] == str(path)
    assert "my song" in recs[0]["reason"]


@pytest.fixture()
def site(tmp_path, monkeypatch):
    """A local web site with a page of two songs; downloads go to tmp_path."""

    from helpers.audio import ingest

    root = tmp_path / "site"
    root.mkdir()
    _write_song(root / "first.wav", 5.0, 220.0)
    _write_song(root / "second.wav", 5.0, 660.0)
    (root / "list.html").write_text("<!doctype html><html><head><title>Two songs</title></head><body>"
                                    "<audio src='first.wav'></audio><audio src='second.wav'></audio></body></html>")

    monkeypatch.setattr(ingest, "downloads_dir", lambda: tmp_path / "downloads")
    with serve_directory(root) as server:
        yield server.base


@pytest.mark.slow
def test_cli_liked_urls_are_downloaded_and_used(site, tmp_path, capsys):
    songs = [site + "/first.wav", site + "/second.wav"]
    assert main(["recommend", "--liked", *songs, "blues.00000", "-k", "5", "--json"]) == 0
    captured = capsys.readouterr()
    recs = json.loads(captured.out)
    assert {n["id"] for r in recs for n in r["near"]} & set(songs)
    assert len(list((tmp_path / "downloads").glob("*.json"))) == 2  # one sidecar per download
    assert "3 liked songs used" in captured.err

    # with a fetch limit of 1 the second song is reported, not downloaded
    assert main(["recommend", "--liked", *songs, "--fetch-limit", "1", "--json"]) == 0
    assert "1 liked songs used (1 not in the library" in capsys.readouterr().err

    # a liked URL that does not answer is bad input: one line naming it, exit status 2
    assert main(["recommend", "--liked", songs[0], site + "/missing.wav", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"music-study recommend: error: {site}/missing.wav: download failed: HTTP 404 File not found"
    assert captured.out == ""


def test_cli_takeout_csv_matches_titles_and_downloads_the_rest(tmp_path, monkeypatch, capsys):
    from helpers.audio import ingest

    path = tmp_path / "music-library-songs.csv"
    path.write_text("Video ID,Song Title,Album Title,Artist Name 1\n"
                    "aaaaaaaaaaa,\"No Woman, No Cry (Live)\",Live!,Bob Marley\n"
                    "bbbbbbbbbbb,Buffalo Soldier,Confrontation,Bob Marley & The Wailers\n"
                    "ccccccccccc,Watercolour,Immersion,Pendulum\n")
    assert main(["recommend", "--liked-file", str(path), "--fetch-limit", "0", "-k", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "2 liked songs used (1 not in the library" in captured.err
    assert {n["id"] for r in json.loads(captured.out) for n in r["near"]} <= {"reggae.00001.wav", "reggae.00004.wav"}

    song = tmp_path / "watercolour.wav"
    _write_song(song)
    fetched = []
    monkeypatch.setattr(recommender_module, "fetch_audio", lambda url, **kw: fetched.append(url) or ingest.IngestedAudio(song))
    assert main(["recommend", "--liked-file", str(path), "-k", "3", "--json"]) == 0
    assert fetched == ["https://music.youtube.com/watch?v=ccccccccccc"]
    assert "3 liked songs used (0 not in the library" in capsys.readouterr().err


def test_playlist_songs_match_by_title_before_download(monkeypatch, library):
    from helpers.audio import ingest
    from helpers.recommend.liked import liked_from_items
    from helpers.recommend.recommender import resolve_liked

    listed = [ingest.PlaylistEntry(url="https://example.org/v1", title="John Lee Hooker - One Bourbon, One Scotch And One Beer (Live)"),
              ingest.PlaylistEntry(url="https://example.org/v2", title="Is This Love", artist="Bob Marley"),
              ingest.PlaylistEntry(url="https://example.org/v3", title="Unknown Song", artist="Nobody")]
    monkeypatch.setattr(recommender_module, "playlist_entries", lambda url: listed)
    seeds = resolve_liked(liked_from_items(["https://example.org/playlist"]), library, fetch_limit=0)
    assert [library.meta["id"].iloc[r] for r in seeds.indices] == []  # nothing fetched, nothing listed
    seeds = resolve_liked(liked_from_items(["https://example.org/playlist"]), library, fetch_limit=1)
    assert [library.meta["id"].iloc[r] for r in seeds.indices] == ["blues.00000.wav", "reggae.00000.wav"]
    # the third song would need a download; the network is not reachable from tests
    monkeypatch.setattr(recommender_module, "fetch_audio", lambda url, **kw: (_ for _ in ()).throw(InputError(url, "offline")))
    seeds = resolve_liked(liked_from_items(["https://example.org/playlist"]), library, fetch_limit=1)
    assert seeds.report["how"].tolist() == ["title match", "title match", "failed: offline"]


def test_top_per_row_is_exact_including_fallback():
    from helpers.recommend.recommender import _top_per_row

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, 30000)).astype(np.float32)
    scores[1, :] = -np.inf  # almost everything excluded: the sampled threshold cannot work
    scores[1, rng.choice(30000, 60, replace=False)] = rng.normal(size=60)
    scores[2, 100:200] = 5.0  # ties: lower index first, as a stable full sort gives
    top = _top_per_row(scores, 50)
    for row in range(4):
        expected = np.argsort(-scores[row], kind="stable")[:50]
        assert top[row].tolist() == expected.tolist()


def test_lyrics_features_from_texts_and_cli(tmp_path, capsys):
    from helpers.data import load_public_domain_lyrics
    from helpers.recommend.recommender import lyrics_features

    songs = load_public_domain_lyrics().iloc[:40]
    ids = [f"blues.{i:05d}.wav" for i in range(20)] + [f"classical.{i:05d}.wav" for i in range(20)]
    texts = pd.Series(songs["lyrics"].to_numpy(), index=ids)
    texts.iloc[5] = ""  # no words: no row
    features = lyrics_features(texts, n_topics=5)
    assert len(features) == 39 and "blues.00005.wav" not in features.index
    assert list(features.columns[:4]) == ["sentiment_mean", "sentiment_positive", "sentiment_negative",
                                          "sentiment_change"]
    assert [c for c in features.columns if c.startswith("topic_")] == [f"topic_{i}" for i in range(1, 6)]
    assert np.isfinite(features.to_numpy()).all()
    blended = Library.gtzan(lyrics=features, lyrics_weight=0.5)
    assert blended.has_lyrics.sum() == 39

    path = tmp_path / "lyrics.csv"
    pd.DataFrame({"id": ids, "lyrics": texts.to_numpy()}).to_csv(path, index=False)
    assert main(["recommend", "--liked", "blues.00000", "--lyrics", str(path), "--lyrics-weight", "0.6",
                 "-k", "5", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 5 and any("lyrics" in r["shared"] for r in recs)
    with pytest.raises(InputError, match="fewer than two"):
        lyrics_features(pd.Series(["", "oh oh"], index=["a", "b"]))


def test_library_from_label_store_and_cli(tmp_path, capsys):
    from helpers.features import FEATURE_COLUMNS
    from helpers.recommend.recommender import store_preferences
    from helpers.store import LabelStore

    table = load_gtzan_table()
    rows = table[table["filename"].str.match(r"(blues|metal|classical)\.0000[0-3]")]
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        ids = {}
        for _, row in rows.iterrows():
            song = store.add_song(f"https://example.org/{row['filename']}", title=row["filename"], artist="someone " + row["label"])
            features = {c: float(row[c]) for c in FEATURE_COLUMNS}
            store.add_windows(song, [(0, 30, features), (30, 60, {**features, "tempo": features["tempo"] + 2})])
            ids[row["filename"]] = song
        store.record_label(ids["metal.00000.wav"], "metal", where="import")
        store.record_preference(ids["blues.00000.wav"], True)
        store.record_preference(ids["metal.00001.wav"], False)
        library = Library.from_store(store)
        liked_ids, disliked_ids = store_preferences(store)
    assert len(library) == 12 and set(library.meta["id"]) == {str(i) for i in ids.values()}
    row = library.index_of(str(ids["blues.00000.wav"]))
    assert library.raw[row, library.feature_columns.index("tempo")] == pytest.approx(
        float(rows.set_index("filename").at["blues.00000.wav", "tempo"]) + 1)
    assert library.meta.set_index("id").at[str(ids["metal.00000.wav"]), "genre"] == "metal"
    assert liked_ids == [str(ids["blues.00000.wav"])] and disliked_ids == [str(ids["metal.00001.wav"])]

    assert main(["recommend", "--store", str(path), "-k", "20", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    got = {r["id"] for r in recs}
    assert recs and recs[0]["near"][0]["id"] == liked_ids[0]
    assert not got & {liked_ids[0], disliked_ids[0]} and len(got) <= 12 - 3


def test_library_from_segmented_extract_table(tmp_path):
    from helpers.features import FEATURE_COLUMNS

    table = load_gtzan_table().iloc[[0, 1, 100, 101]]
    rows = []
    for _, row in table.iterrows():
        for segment in range(3):
            rows.append({"filename": f"{row['filename'][:-4]}.{segment}.wav", "clip": row["filename"],
                         "segment": segment, "start": 3.0 * segment, "end": 3.0 * segment + 3,
                         "silent": segment == 2,
                         **{c: float(row[c]) * (1 + 0.1 * segment) for c in FEATURE_COLUMNS}, "label": row["label"]})
    path = tmp_path / "segments.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    library = Library.from_csv(path)
    assert library.meta["id"].tolist() == table["filename"].tolist()
    assert library.meta["genre"].tolist() == ["blues", "blues", "classical", "classical"]
    tempo = library.raw[0, library.feature_columns.index("tempo")]
    assert tempo == pytest.approx(float(table["tempo"].iloc[0]) * 1.05)  # silent segment left out


# --------------------------------------------------------------------------- similarity spaces, baselines, hubness


def test_small_panel_compares_spaces_with_baselines_leak_free(library):
    spaces = {"features": {"space": "features"}, "features+genre": {"space": "features+genre"}}
    per_user = recommend_eval.compare_spaces(library, spaces, n_users=16, n_likes=10, n_folds=2, k=5, seed=3)
    assert set(per_user["config"]) == {"features", "features+genre", *recommend_eval.BASELINES}
    # every configuration is scored on the same users
    users = per_user.groupby("config")["user"].apply(lambda u: tuple(sorted(u)))
    assert users.nunique() == 1 and len(users.iloc[0]) == 16
    # each fold's users like songs of that fold only
    folds = recommend_eval.artist_folds(library, 2, seed=3)
    fold_of = dict(zip(library.meta["id"], folds, strict=True))
    sims = recommend_eval.simulate_users(library, n_users=8, n_likes=10, seed=3, rows=np.flatnonzero(folds == 0))
    assert all(fold_of[s] == 0 for u in sims for s in u.seeds + u.held_out)
    # artist folds: no artist in two folds
    artists = library.meta.assign(fold=folds, a=library.meta["artist"].map(normalize_artist))
    assert artists[artists["a"] != ""].groupby("a")["fold"].nunique().max() == 1
    summary = recommend_eval.summarise(per_user, n_boot=200)
    for metric in recommend_eval.METRICS:
        assert summary[f"{metric}_low"].le(summary[metric] + 1e-12).all()
    long = recommend_eval.long_table(summary)
    assert list(long.columns) == ["metric", "config", "mean", "95% CI", "n users"]
    assert len(long) == len(recommend_eval.METRICS) * (2 + len(recommend_eval.BASELINES))
    # the decision keeps the current space unless a candidate's interval lies above it
    chosen, why = recommend_eval.choose_space(summary, "features", ["features+genre"])
    table = summary.set_index("config")
    above = table.at["features+genre", "precision_low"] > table.at["features", "precision_high"]
    assert (chosen == "features+genre") == above and why.startswith("chose" if above else "kept")
    gain = recommend_eval.paired_gain(per_user, "precision", "features+genre", "features", n_boot=200)
    assert gain[1] <= gain[0] <= gain[2]


def test_choose_space_needs_a_gain_outside_the_interval():
    summary = pd.DataFrame({"config": ["cur", "near", "far"], "precision": [0.02, 0.03, 0.06],
                            "precision_low": [0.01, 0.015, 0.045], "precision_high": [0.03, 0.045, 0.075],
                            "precision_ci": ["a", "b", "c"]})
    assert recommend_eval.choose_space(summary, "cur", ["near"])[0] == "cur"
    assert "intervals overlap" in recommend_eval.choose_space(summary, "cur", ["near"])[1]
    assert recommend_eval.choose_space(summary, "cur", ["near", "far"])[0] == "far"


def test_genre_projection_is_fitted_only_on_allowed_rows(library):
    fit = np.zeros(len(library), dtype=bool)
    fit[::2] = True
    spaced = library.in_space("features+genre", genre_fit_rows=fit)
    assert spaced.projection.n_fitted_ == fit.sum()
    assert library.space == "features" and library.projection is None  # the original is untouched
    assert spaced.embedding.shape[1] == library.embedding.shape[1] + 9
    assert np.allclose(np.linalg.norm(spaced.embedding, axis=1), 1.0, atol=1e-5)
    # cos in the blend = (1 - w) cos_features + w cos_genre
    genre = library.in_space("genre", genre_fit_rows=fit)
    a, b = 3, 500
    blended = spaced.embedding[a] @ spaced.embedding[b]
    expected = 0.5 * library.embedding[a] @ library.embedding[b] + 0.5 * genre.embedding[a] @ genre.embedding[b]
    assert blended == pytest.approx(expected, abs=1e-5)
    with pytest.raises(InputError, match="unknown similarity space"):
        library.in_space("lyrics-only")
    unlabelled = library.meta.assign(genre="", tempo=1.0, rms_mean=2.0)
    with pytest.raises(InputError, match="at least two genres"):
        Library(unlabelled, space="genre")


def test_reason_names_the_space_it_was_chosen_in(library):
    liked = ["metal.00010.wav", "classical.00020.wav"]
    default = Recommender(library).recommend(liked, k=5)
    assert all(r.space == "features" and "in the audio-feature space" in r.reason for r in default)
    genre = Recommender(library.in_space("features+genre")).recommend(liked, k=5)
    assert all(r.space == "features+genre" and "in the audio + genre-projection space" in r.reason for r in genre)
    assert any("genre profile" in r.shared and "both closest to" in r.reason for r in genre)
    # the similarity a reason quotes is the cosine in that space
    rec = genre[0]
    row, seed = library.index_of(rec.id), library.index_of(rec.near[0]["id"])
    space = library.in_space("features+genre")
    assert rec.near[0]["similarity"] == pytest.approx(float(space.embedding[row] @ space.embedding[seed]), abs=1e-3)


def test_random_and_popularity_baselines(library, users):
    rand = recommend_eval.RandomRecommender(library, seed=1)
    first = [r.id for r in rand.recommend(users[0].seeds, k=10)]
    assert first == [r.id for r in rand.recommend(users[0].seeds, k=10)]  # reproducible
    assert len(set(first)) == 10 and not set(first) & set(users[0].seeds)
    assert first != [r.id for r in rand.recommend(users[1].seeds, k=10)]
    popular = recommend_eval.PopularityRecommender(library, users, seed=1)
    counts = pd.Series([s for u in users for s in u.seeds]).value_counts()
    recs = [r.id for r in popular.recommend(users[0].seeds, k=5)]
    eligible = counts.drop(index=list(users[0].seeds), errors="ignore")
    assert counts[recs].tolist() == sorted(counts[recs].tolist(), reverse=True)
    assert counts[recs[0]] == eligible.max()
    per_user, _ = recommend_eval.evaluate(library, users, recommend_eval.baselines(library, users), k=10)
    summary = recommend_eval.summarise(per_user, n_boot=200).set_index("config")
    # with ten genres and random lists, about a tenth (one genre) or a fifth (two) is on-genre
    assert 0.05 < summary.at["random", "in_user_genres"] < 0.25


def test_k_occurrence_counts_neighbour_list_appearances():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=6)
    rows = rng.normal(size=(40, 6)) + 0.2 * centre
    rows[0] = centre  # a hub: close to the mean direction of everything
    table = pd.DataFrame(rows, columns=[f"f{i}" for i in range(6)])
    table.insert(0, "id", [f"s{i}" for i in range(40)])
    table = pd.concat([table, table.iloc[[5]].assign(id="copy of s5")], ignore_index=True)
    lib = Library(table, feature_columns=[f"f{i}" for i in range(6)])
    counts = lib.k_occurrence(3)
    # every representative song lists 3 neighbours; the copy counts nothing and is in no list
    assert counts.sum() == 3 * 40 and counts[-1] == 0
    sims = lib.embedding[:40] @ lib.embedding[:40].T
    np.fill_diagonal(sims, -np.inf)
    expected = np.bincount(np.argsort(-sims, axis=1)[:, :3].ravel(), minlength=40)
    assert counts[:40].tolist() == expected.tolist()
    assert counts[0] == counts.max()
    assert lib.k_occurrence(3, hub_penalty=0.5)[0] <= counts[0]
    summary = recommend_eval.k_occurrence_summary(counts[:40], 3)
    assert summary["skewness"] > 0 and summary["max_over_k"] == counts[0] / 3
    with pytest.raises(InputError):
        lib.k_occurrence(40)


def test_in_user_genres_without_the_users_own_artists(library):
    meta = library.meta.set_index("id")
    user = recommend_eval.SimulatedUser(0, ("reggae",), ("reggae.00000.wav", "reggae.00010.wav"),
                                        ("reggae.00050.wav",))
    own = meta.at["reggae.00000.wav", "artist"]
    same_artist = [i for i in meta.index if meta.at[i, "artist"] == own and i not in user.seeds][:2]
    other_reggae = [i for i in meta.index if meta.at[i, "genre"] == "reggae"
                    and meta.at[i, "artist"] not in (own, meta.at["reggae.00010.wav", "artist"])][:1]
    recs = same_artist + other_reggae + ["metal.00001.wav"]
    metrics = recommend_eval.user_metrics(recs, user, library)
    assert metrics["in_user_genres"] == pytest.approx(3 / 4)
    assert metrics["in_user_genres_new_artists"] == pytest.approx(1 / 4)


def test_two_genre_spreading_example_is_computed(library, users):
    configs = {"centroid": dict(strategy="centroid", mmr_lambda=None, artist_cap=None, hub_penalty=0),
               "default": {}}
    per_user, _ = recommend_eval.evaluate(library, users, configs, k=10)
    counts = recommend_eval.genre_counts(per_user, users, library)
    assert set(counts["user"]) == {u.user for u in users if len(u.genres) == 2}
    assert (counts[["n_a", "n_b", "n_other"]].sum(axis=1) == 10).all()
    pick = recommend_eval.spreading_example(counts, "default", "centroid")
    wide = counts.pivot_table(index="user", columns="config", values="balance")
    assert (wide["default"] - wide["centroid"])[pick] == (wide["default"] - wide["centroid"]).max()


def test_liked_audio_is_summarised_from_all_its_windows(tmp_path):
    from helpers.features import FEATURE_COLUMNS, extract_signal
    from helpers.recommend.recommender import song_features

    sr = 22050
    t = np.arange(int(70 * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    noise = 0.1 * np.random.default_rng(0).standard_normal(t.size)
    signal = np.where(t < 30, tone, noise).astype(np.float32)  # first window tonal, the rest noise
    path = tmp_path / "two halves.wav"
    soundfile.write(path, signal, sr, subtype="FLOAT")  # decoded exactly as written
    summary = song_features(path, window_seconds=30.0)
    # windows 0-30 s and 30-60 s, and the 10-s tail: the policy's minimum is min(10 s, 30 s)
    assert summary["windows"] == 3 and summary["seconds"] == pytest.approx(70.0, abs=0.01)
    parts = [extract_signal(signal[a * sr:b * sr]) for a, b in ((0, 30), (30, 60), (60, 70))]
    for column in ("zero_crossing_rate_mean", "spectral_centroid_mean", "mfcc1_mean"):
        assert summary[column] == pytest.approx(np.mean([p[column] for p in parts]), rel=1e-4)
    assert set(FEATURE_COLUMNS) <= set(summary)
    middle = song_features(path, window_seconds=30.0, middle_only=True)
    assert middle["windows"] == 1
    short = tmp_path / "short.wav"
    soundfile.write(short, signal[:8 * sr], sr)
    assert song_features(short)["windows"] == 1  # shorter than a window: summarised by itself
    with pytest.raises(InputError):
        song_features(tmp_path / "missing.wav")


def test_catalogue_counts_and_top_share_agree_with_the_lorenz_curve():
    import matplotlib.pyplot as plt

    from helpers.recommend import plots as recommend_plots

    lists = [["a", "b"], ["a", "c"], ["a"]]
    counts = recommend_eval.recommendation_counts(lists, 200)
    assert counts.tolist() == [3.0, 1.0, 1.0] + [0.0] * 197
    assert recommend_eval.top1pct_share(counts) == 4 / 5  # the top 1 % of 200 is two songs
    assert recommend_eval.top1pct_share(np.zeros(5)) == 0.0
    metrics = recommend_eval.catalogue_metrics(lists, 200)
    assert metrics == {"coverage": 3 / 200, "gini": recommend_eval.gini(counts),
                       "top1pct_share": 4 / 5, "recommendations": 5}
    assert type(metrics["coverage"]) is float
    per_user = pd.DataFrame({"config": ["x"] * 3, "recommended": lists})
    fig = recommend_plots.plot_lorenz(per_user, 200, "t")
    curve = fig.axes[0].lines[0].get_ydata()
    plt.close(fig)
    assert len(curve) == 200 and curve[-1] == 1.0 and curve[-4] == 0.0 and curve[-2] == 2 / 5


def test_genre_profile_explanations_match_a_prediction_per_pair(library, users):
    # the profiles are predicted once per space and once per call; each explanation must say
    # what predicting the recommended song and its nearest liked song together says
    space = library.in_space("features+genre")
    assert space.genre_profiles.tolist() == space.projection.predict(space.standardised).tolist()
    assert library.genre_profiles is None  # the audio-feature space has no projection
    seen = 0
    for user in users[:20]:
        for rec in Recommender(space).recommend(user.seeds, k=10):
            item, best = space.index_of(rec.id), space.index_of(rec.near[0]["id"])
            seed_std = space.conditioner.transform(space.raw[[best]])
            pair = space.projection.predict(np.vstack([space.standardised[item], seed_std[0]]))
            assert ("genre profile" in rec.shared) == (pair[0] == pair[1])
            if pair[0] == pair[1]:
                assert f"genre profile (both closest to {pair[0]})" in rec.reason
                seen += 1
    assert seen > 0


def test_songs_by_the_users_own_artists_earn_no_precision_or_recall(library):
    """A held-out song by an artist the user has shown is neither a hit nor something to recall."""
    meta = library.meta.set_index("id")
    own = meta.at["reggae.00000.wav", "artist"]
    by_own = [i for i in meta.index if meta.at[i, "artist"] == own and i != "reggae.00000.wav"]
    other = next(i for i in meta.index if meta.at[i, "genre"] == "reggae"
                 and meta.at[i, "artist"] and meta.at[i, "artist"] != own)
    assert own and by_own
    user = recommend_eval.SimulatedUser(0, ("reggae",), ("reggae.00000.wav",), (by_own[0], other))
    metrics = recommend_eval.user_metrics([by_own[0], other], user, library)
    assert metrics["precision"] == pytest.approx(1 / 2)  # only the new artist's song is a hit
    assert metrics["recall"] == pytest.approx(1 / 1)  # the own artist's song is not asked for
    only_own = recommend_eval.user_metrics([by_own[0]], user, library)
    assert only_own["precision"] == 0.0 and only_own["recall"] == 0.0

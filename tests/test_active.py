"""Query strategies, retraining with held-out metrics, and the simulated study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import data
from helpers.data import load_gtzan_table
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS
from helpers.labeling import queries, simulation
from helpers.labeling import retrain as retraining
from helpers.models import make_knn, selection_result
from helpers.store import LabelStore

PROBA = np.array([
    [0.90, 0.05, 0.05],
    [0.40, 0.40, 0.20],
    [0.50, 0.30, 0.20],
    [1 / 3, 1 / 3, 1 / 3],
])


def test_uncertainty_scores_follow_their_definitions():
    np.testing.assert_allclose(queries.uncertainty(PROBA, "least_confidence"),
                               [0.10, 0.60, 0.50, 2 / 3])
    np.testing.assert_allclose(queries.uncertainty(PROBA, "margin"), [0.15, 1.0, 0.80, 1.0])
    entropy = queries.uncertainty(PROBA, "entropy")
    assert entropy[3] == pytest.approx(np.log2(3))
    assert entropy[0] == pytest.approx(-(0.9 * np.log2(0.9) + 2 * 0.05 * np.log2(0.05)))
    assert np.all(queries.uncertainty(PROBA, "random") == 0)
    assert queries.uncertainty(np.array([[1.0, 0.0]]), "entropy")[0] == 0.0  # 0 log 0 = 0


def test_query_picks_the_most_uncertain_over_the_whole_pool():
    assert queries.query(PROBA, 2, "least_confidence", epsilon=0.0, random_state=0).tolist() == [3, 1]
    assert queries.query(PROBA, 1, "entropy", epsilon=0.0, random_state=0).tolist() == [3]
    # margin ties between rows 1 and 3 are broken at random, not by position
    firsts = {int(queries.query(PROBA, 1, "margin", epsilon=0.0, random_state=s)[0]) for s in range(20)}
    assert firsts == {1, 3}
    picks = queries.query(PROBA, 10, "margin", epsilon=0.5, random_state=1)
    assert sorted(picks.tolist()) == [0, 1, 2, 3]  # never more than the pool, never twice


def test_a_share_epsilon_of_the_picks_is_random():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10), size=2000)
    scores = queries.uncertainty(proba, "least_confidence")
    top = set(np.argsort(-scores)[:400].tolist())
    counts = []
    for seed in range(10):
        picks = queries.query(proba, 400, "least_confidence", epsilon=0.25, random_state=seed)
        counts.append(sum(p not in top for p in picks.tolist()))
    # a random pick lands outside the top 400 with probability 0.8: expect 0.25 * 400 * 0.8 = 80
    assert 60 < np.mean(counts) < 100
    assert set(queries.query(proba, 400, "least_confidence", epsilon=0.0, random_state=0).tolist()) == top
    random_picks = queries.query(proba, 400, "random", random_state=0)
    assert len(set(random_picks.tolist()) & top) < 200


def test_bad_strategy_or_probabilities_are_input_errors():
    with pytest.raises(InputError, match="unknown query strategy"):
        queries.query(PROBA, 1, "confusion")
    with pytest.raises(InputError, match="NaN"):
        queries.uncertainty(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="2-D"):
        queries.uncertainty(np.array([0.5, 0.5]))
    with pytest.raises(InputError, match="epsilon"):
        queries.query(PROBA, 1, epsilon=1.5)


def _store_with_rows(path, rows: pd.DataFrame, genre_of) -> LabelStore:
    store = LabelStore(path)
    for i, row in enumerate(rows.itertuples(index=False)):
        song = store.add_song(f"https://example.org/{i}/{row.filename}", title=row.filename)
        store.add_window(song, 0.0, 30.0, dict(zip(FEATURE_COLUMNS, row[1:59], strict=True)))
        store.record_label(song, genre_of(row), where="notebook")
    return store


def test_retrain_adds_store_labels_and_reports_held_out_metrics(tmp_path):
    table = load_gtzan_table()
    train, test = data.held_out_split(table)
    # a made-up genre: metal clips pushed far away in every feature
    newgenre = train[train["label"] == "metal"].head(6).copy()
    for column in FEATURE_COLUMNS[1:]:
        newgenre[column] = newgenre[column] + 1e4
    leak = test.head(1)  # a held-out clip labelled in the store must not be trained on
    store = _store_with_rows(tmp_path / "s.sqlite", pd.concat([newgenre, leak]),
                             lambda r: "noise" if r.label == "metal" else r.label)
    result = retraining.retrain(store, curve_points=3, n_boot=200)
    # the default is the selected recipe (no longer the study's KNN): on the base rows alone it
    # is the very model behind the model card's test figure
    selection, _ = selection_result()
    assert result.fit.name == selection.chosen == retraining.default_recipe()
    assert result.before["accuracy"] == pytest.approx(selection.row()["test_accuracy"], abs=1e-4)
    assert result.before["ci_low"] < result.before["accuracy"] < result.before["ci_high"]
    assert result.split == "fault-filtered" and result.after["n"] == len(test) == 290
    assert result.excluded == 1 and result.n_store == 6 and result.n_base == len(train)
    assert result.new_genres == ["noise"] and "noise" in result.model.classes_
    assert result.curve["store_songs"].tolist() == [0, 2, 4, 6]
    assert result.curve["accuracy"].iloc[0] == pytest.approx(result.before["accuracy"])
    assert f"before {result.before['accuracy']:.3f}" in result.summary()
    assert "new genres: noise" in result.summary() and selection.chosen in result.summary()
    shifted = newgenre[list(result.model.feature_names_in_)] + 1.0
    assert set(result.model.predict(shifted)) == {"noise"}


def test_retrain_with_a_custom_estimator_fits_it_as_given(tmp_path):
    store = LabelStore(tmp_path / "s.sqlite")
    result = retraining.retrain(store, estimator=make_knn(), curve_points=0, n_boot=200)
    # the study's reference figure: KNN on train+valid_filtered tested on test_filtered = 0.445
    assert result.before["accuracy"] == pytest.approx(0.445, abs=0.005)
    assert result.fit.name == "KNeighborsClassifier" and result.fit.calibration_folds is None


def test_simulation_pairs_strategies_on_the_same_seed_set():
    results = simulation.simulate(seeds=[0, 1], strategies=("margin", "random"), per_class=1,
                              batch_size=5, n_rounds=3)
    assert len(results) == 2 * 2 * 4
    first = results[results["round"] == 0].groupby("seed")["accuracy"].nunique()
    assert (first == 1).all()  # both strategies start from the same seed set
    assert results.groupby(["strategy", "seed"])["n_labelled"].apply(list).map(
        lambda n: n == [10, 15, 20, 25]).all()
    curves = simulation.learning_curves(results)
    assert set(curves.columns) >= {"strategy", "n_labelled", "mean", "low", "high", "n_seeds"}
    assert (curves["low"] <= curves["mean"]).all() and (curves["mean"] <= curves["high"]).all()
    comparison = simulation.compare_to_random(results)
    assert comparison["strategy"].tolist() == ["margin"]
    row = comparison.iloc[0]
    assert row["ci_low_auc"] <= row["mean_gain_auc"] <= row["ci_high_auc"]
    with pytest.raises(InputError, match="random"):
        simulation.compare_to_random(results[results["strategy"] != "random"])


def test_make_estimator_always_gives_probabilities():
    assert hasattr(retraining.make_estimator("logistic"), "predict_proba")
    assert hasattr(retraining.make_estimator("svm"), "predict_proba")  # Platt scaling switched on
    assert retraining.make_estimator("knn").steps[-1][1].n_neighbors == 4
    with pytest.raises(InputError, match="unknown model"):
        retraining.make_estimator("oracle")


@pytest.mark.shared_data
def test_retrain_on_the_original_study_rows_learns_their_new_genres(tmp_path):
    from conftest import require_shared

    store = LabelStore(tmp_path / "s.sqlite")
    store.import_original_study(require_shared("seed", "features_30_secActive.csv"))
    result = retraining.retrain(store, curve_points=0, n_boot=200)
    assert result.new_genres == ["alternative", "house"]
    assert result.n_store == 196 and result.store_genres["alternative"] == 103
    assert result.curve.empty
    assert 0.3 < result.after["accuracy"] < 0.6  # GTZAN held-out set: no new genre in it


def test_describe_gain_needs_both_intervals_to_claim_a_gain():
    base = {"strategy": "margin", "mean_gain_auc": 0.01, "mean_gain_final": -0.02}
    both_above = base | {"ci_low_auc": 0.001, "ci_high_auc": 0.02, "ci_low_final": 0.01, "ci_high_final": 0.03}
    assert "beats random" in simulation.describe_gain(both_above)
    both_below = base | {"ci_low_auc": -0.02, "ci_high_auc": -0.01, "ci_low_final": -0.03, "ci_high_final": -0.003}
    assert "worse than random" in simulation.describe_gain(both_below)
    neither = base | {"ci_low_auc": -0.01, "ci_high_auc": 0.02, "ci_low_final": -0.03, "ci_high_final": 0.01}
    assert "no clear difference" in simulation.describe_gain(neither)
    # the case: area interval includes 0 but the final gain is below zero
    mixed = base | {"ci_low_auc": -0.009, "ci_high_auc": 0.015, "ci_low_final": -0.033, "ci_high_final": -0.003}
    text = simulation.describe_gain(mixed)
    assert "mixed" in text and "below zero" in text and "indistinguishable" not in text


def test_rarest_genre_counts_compare_each_strategy_with_random():
    results = pd.DataFrame({
        "strategy": ["random", "random", "entropy", "entropy", "entropy"],
        "seed": [0, 1, 0, 1, 0], "n_labelled": [40, 40, 40, 40, 20],
        "fewest_per_genre": [4, 6, 2, 4, 1]})
    counts = simulation.rarest_genre_counts(results)
    assert counts.loc["entropy", "mean"] == 3 and counts.loc["entropy", "vs_random"] == -2
    assert counts.loc["random", "n_seeds"] == 2
    # paired per seed: entropy has 2 fewer on both seeds, so the interval is [-2, -2]
    assert counts.loc["entropy", "vs_random_low"] == counts.loc["entropy", "vs_random_high"] == -2


def test_the_query_default_is_read_off_the_simulation():
    comparison = pd.DataFrame({"strategy": ["margin, ε=0.1", "entropy, ε=0"],
                               "mean_gain_auc": [0.02, 0.03], "ci_low_auc": [0.01, 0.01],
                               "ci_low_final": [0.005, 0.01]})
    counts = pd.DataFrame({"vs_random_high": [1.0, -0.5]}, index=["margin, ε=0.1", "entropy, ε=0"])
    # entropy gains more but starves the rarest genre: margin is the one supported
    assert simulation.choose_setting(comparison, counts)["setting"] == "margin, ε=0.1"
    comparison["ci_low_final"] = [-0.01, 0.01]
    assert simulation.choose_setting(comparison, counts)["setting"] == "random"
    assert simulation.setting_name("margin", 0.1) == "margin, ε=0.1"
    assert simulation.setting_name("random", 0.3) == "random"


def test_the_labeler_s_own_model_replays_the_loop_paired_with_random():
    runs = simulation.simulate_settings([("margin", 0.1)], seeds=[0], per_class=1, batch_size=10,
                                        n_rounds=1, cache=False)
    assert sorted(runs["strategy"].unique()) == ["margin, ε=0.1", "random"]
    assert runs.groupby("strategy")["n_labelled"].apply(list).map(lambda n: n == [10, 20]).all()
    start = runs[runs["round"] == 0].groupby("seed")["accuracy"].nunique()
    assert (start == 1).all()  # the same seed set and the same (labeler's) fit for both
    model = simulation.labeler_fit(data.held_out_split()[0].groupby("label").head(3))
    assert type(model.steps[-1][1]).__name__ in {"CalibratedClassifierCV", "LogisticRegression"}


def test_held_out_song_predictions_never_use_the_song_itself(tmp_path):
    from helpers.data import load_gtzan_table
    from helpers.features import FEATURE_COLUMNS
    from helpers.store import LabelStore

    table = load_gtzan_table()
    with LabelStore(tmp_path / "s.sqlite") as store:
        for i, genre in enumerate(["metal", "metal"]):
            song = store.add_song(f"https://example.org/{i}", title=f"song {i}")
            row = table[table["label"] == "classical"].iloc[i]
            store.add_window(song, 0.0, 30.0, {c: row[c] for c in FEATURE_COLUMNS})
            store.record_label(song, genre)
        predictions = retraining.held_out_song_predictions(store, estimator=retraining.make_estimator("knn"))
    assert len(predictions) == 2 and set(predictions["label"]) == {"metal"}
    # trained on its own window, KNN would answer metal; left out, the classical features win
    assert "metal" not in set(predictions["predicted"])


# --------------------------------------------------------------------------- the shared fit (issue 13)
def _labelled_store(path, songs) -> LabelStore:
    """A store with one labelled song per ``(genre, artist, n_windows, source_row)``."""
    table = load_gtzan_table()
    store = LabelStore(path)
    for i, (genre, artist, n_windows, row) in enumerate(songs):
        song = store.add_song(f"https://example.org/{i}.ogg", title=f"song {i}", artist=artist)
        features = table.iloc[row]
        store.add_windows(song, [(30.0 * w, 30.0 * (w + 1), {c: features[c] + w for c in FEATURE_COLUMNS})
                                 for w in range(n_windows)])
        store.record_label(song, genre, where="notebook")
    return store


def test_groups_keep_each_song_and_each_artist_in_one_calibration_fold(tmp_path, monkeypatch):
    from helpers.models import selection  # fit_candidate, which retraining.fit_rows calls, uses it

    store = _labelled_store(tmp_path / "s.sqlite", [
        ("metal", None, 3, 0), ("metal", None, 3, 1), ("blues", "John Lee Hooker", 2, 2),
        ("jazz", None, 3, 3), ("jazz", "Miles Davis", 3, 4), ("jazz", "miles davis ", 2, 5)])
    base, extra, held_out, _ = retraining.training_rows(store)
    groups = retraining.training_groups(base, extra)
    store_groups = pd.Series(groups[len(base):]).groupby(extra["song_id"].to_numpy()).agg(set)
    # a song of unknown artist is its own group (all its windows); a known artist is one group,
    # lower-cased as the GTZAN artist groups are, so it joins that artist's table clips
    assert store_groups.tolist() == [{"store song 1"}, {"store song 2"}, {"john lee hooker"},
                                     {"store song 4"}, {"miles davis"}, {"miles davis"}]
    assert "john lee hooker" in set(groups[:len(base)])

    seen = {}
    real = selection.fit_grouped

    def spy(pipeline, X, y, groups):
        seen.update(pipeline=pipeline, X=X, y=np.asarray(y), groups=np.asarray(groups))
        return real(pipeline, X, y, groups)

    monkeypatch.setattr(selection, "fit_grouped", spy)
    fit = retraining.fit_rows(base, extra)
    assert fit.calibration_folds == retraining.CALIBRATION_FOLDS and fit.note == ""
    np.testing.assert_array_equal(seen["groups"], groups)  # the groups reach the calibration
    folds = seen["pipeline"].steps[-1][1].cv  # the calibration's own splitter
    fold_of = np.full(len(groups), -1)
    for i, (_, test_idx) in enumerate(folds.split(seen["X"], seen["y"], seen["groups"])):
        fold_of[test_idx] = i
    by_group = pd.DataFrame({"group": groups, "fold": fold_of}).groupby("group")["fold"].nunique()
    assert (by_group == 1).all()  # no artist and no song in two folds
    store_folds = pd.Series(fold_of[len(base):]).groupby(extra["song_id"].to_numpy()).nunique()
    assert (store_folds == 1).all()


def test_calibration_folds_fall_back_when_a_genre_has_few_groups():
    labels = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10)
    many = np.array([f"{g}{i % 10}" for i, g in enumerate(labels)])
    for method in ("temperature", "sigmoid"):
        assert retraining.calibration_folds(labels, many, method=method) == (5, "")
    three = many.copy()
    three[labels == "c"] = ["c0", "c1", "c2"] * 3 + ["c2"]
    one = many.copy()
    one[labels == "c"] = "c0"
    # one temperature for all genres: fitted on the other genres' grouped folds, with the thin
    # genre's rows (whole groups) in every fold's training part and never in a calibration part
    for grouped, n in ((three, 3), (one, 1)):
        folds, note = retraining.calibration_folds(labels, grouped, method="temperature")
        assert len(folds) == 5 and f"c ({n})" in note and note.startswith("Temperature fitted")
        thin = np.flatnonzero(labels == "c")
        for train, test in folds:
            assert set(thin) <= set(train) and not set(thin) & set(test)
            assert not set(grouped[train]) & set(grouped[test])  # no group on both sides
        assert sorted(np.concatenate([test for _, test in folds])) == list(np.flatnonzero(labels != "c"))
    # one curve per genre needs the genre in the calibration part: fewer folds, or none
    folds, note = retraining.calibration_folds(labels, three, method="sigmoid")
    assert 2 <= folds <= 3 and f"{folds} artist-grouped folds instead of 5" in note and "c (3)" in note
    folds, note = retraining.calibration_folds(labels, one, method="sigmoid")
    assert folds == 0 and note.startswith("Not calibrated") and "c (1)" in note


@pytest.mark.parametrize("n_songs", [1, 2])
def test_a_new_genre_with_one_or_two_songs_is_learnt_with_a_note(tmp_path, n_songs):
    store = _labelled_store(tmp_path / "s.sqlite", [("zydeco", None, 2, 7 + i) for i in range(n_songs)])
    result = retraining.retrain(store, curve_points=2, n_boot=100)
    assert "zydeco" in result.model.classes_ and result.new_genres == ["zydeco"]
    assert f"zydeco ({n_songs})" in result.fit.note and result.fit.note.rstrip(".") in result.summary()
    # the default recipe is temperature-calibrated: the new genre trains in every fold
    assert len(result.fit.calibration_folds) == retraining.CALIBRATION_FOLDS
    calibrated = result.model.steps[-1][1]
    zydeco = list(calibrated.classes_).index("zydeco")  # fold models see encoded labels
    assert all(zydeco in c.estimator.classes_ for c in calibrated.calibrated_classifiers_)
    proba = result.model.predict_proba(load_gtzan_table()[list(result.model.feature_names_in_)].head(3))
    assert np.allclose(proba.sum(axis=1), 1)
    assert len(result.curve) == 3 if n_songs == 2 else len(result.curve) == 2


def test_retrain_and_held_out_predictions_resolve_the_default_recipe_once(tmp_path, monkeypatch):
    store = _labelled_store(tmp_path / "s.sqlite", [("metal", None, 2, 0), ("jazz", None, 2, 3)])
    calls, real = [], retraining.default_recipe
    monkeypatch.setattr(retraining, "default_recipe", lambda: calls.append(1) or real())
    result = retraining.retrain(store, curve_points=2, n_boot=100)  # before, after, curve: 4 fits
    assert len(calls) == 1 and result.fit.name == real() and len(result.curve) == 3
    calls.clear()
    predictions = retraining.held_out_song_predictions(store)  # one fit per song
    assert len(calls) == 1 and len(predictions) == 4


def test_a_sigmoid_recipe_with_a_one_song_genre_is_fitted_without_calibration(tmp_path):
    store = _labelled_store(tmp_path / "s.sqlite", [("zydeco", None, 2, 7)])
    base, extra, _, _ = retraining.training_rows(store)
    fit = retraining.fit_rows(base, extra, recipe="lda-knn")  # a sigmoid-calibrated candidate
    assert fit.calibration_folds == 0 and fit.note.startswith("Not calibrated")
    assert fit.description.endswith("not calibrated") and "zydeco" in fit.model.classes_


def test_fit_rows_never_trains_on_a_held_out_clip(tmp_path, monkeypatch):
    table = load_gtzan_table()
    train, test = data.held_out_split(table)
    rows = pd.concat([train.head(2), test.head(3)])
    store = _store_with_rows(tmp_path / "s.sqlite", rows, lambda r: r.label)
    trained = []
    real = retraining.fit_rows

    def spy(base, extra=None, **kwargs):
        trained.append(pd.concat([base, extra]) if extra is not None else base)
        return real(base, extra, **kwargs)

    monkeypatch.setattr(retraining, "fit_rows", spy)
    result = retraining.retrain(store, curve_points=2, n_boot=100)
    assert result.excluded == 3 and result.n_store == 2
    for frame in trained:
        assert not frame["filename"].isin(set(test["filename"])).any()


def test_a_labelled_song_by_a_test_artist_takes_that_artist_out_of_the_held_out_score(tmp_path):
    from helpers.data import artist_groups

    table = load_gtzan_table()
    _, test = data.held_out_split(table)
    test_artists = artist_groups(test["filename"])
    artist = test_artists.value_counts().index[0]  # the test split's most frequent artist
    n_clips = int((test_artists == artist).sum())
    store = _labelled_store(tmp_path / "s.sqlite", [("jazz", artist.title(), 2, 0)])
    _, extra, held_out, _ = retraining.training_rows(store)
    assert len(extra) == 2  # the song is trained on ...
    assert len(held_out) == len(test) - n_clips  # ... so its artist's test clips are not scored
    assert not artist_groups(held_out["filename"]).eq(artist).any()
    result = retraining.retrain(store, curve_points=0, n_boot=100)
    assert result.after["n"] == result.before["n"] == len(test) - n_clips


def test_a_held_out_set_of_a_few_clips_gets_an_exact_interval():
    from helpers.labeling.retrain import EXACT_BELOW, bootstrap_accuracy

    few = bootstrap_accuracy(["a", "b"], ["a", "b"])  # a bootstrap would say [1, 1]
    assert few["method"] == "exact" and few["accuracy"] == 1.0
    assert few["ci_low"] == pytest.approx(0.1581, abs=1e-4) and few["ci_high"] == 1.0
    many = bootstrap_accuracy(["a"] * EXACT_BELOW, ["a"] * (EXACT_BELOW - 3) + ["b"] * 3)
    assert many["method"] == "bootstrap" and many["ci_low"] < many["accuracy"] < many["ci_high"]

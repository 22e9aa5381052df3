"""Evaluation protocol, uncertainty, the study's numbers, and the ``evaluate`` command."""

import json

import numpy as np
import pytest

from helpers import cli, data, evaluation, models, paths, stats
from helpers.features import MODEL_FEATURES
from helpers.models import selection as model_selection
from helpers.models import tuning


@pytest.fixture(scope="module")
def table():
    return data.load_gtzan_table()


def test_bootstrap_interval_brackets_the_accuracy_and_shrinks_with_more_clips():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, 2000)
    guess = np.where(rng.random(2000) < 0.6, truth, (truth + 1) % 10)
    small = stats.accuracy_interval(truth[:200], guess[:200])
    large = stats.accuracy_interval(truth, guess)
    assert small[0] <= np.mean(truth[:200] == guess[:200]) <= small[1]
    assert large[1] - large[0] < small[1] - small[0]
    # the standard error of one 200-clip split is about 3.5 points: the interval spans ~14
    assert 0.10 < small[1] - small[0] < 0.18
    assert stats.accuracy_interval([1, 1], [1, 1]) == (1.0, 1.0)


def test_split_frames_use_the_published_split(table):
    train, test = data.held_out_split(table, "fault-filtered")
    split = data.load_split("fault-filtered")
    assert set(train["filename"]) == set(split["train"]) | set(split["valid"])
    assert set(test["filename"]) == set(split["test"])
    assert (len(train), len(test)) == (640, 290)


def test_inner_folds_never_put_an_artist_on_both_sides(table):
    train, _ = data.held_out_split(table, "stratified")
    groups = data.artist_groups(train["filename"]).to_numpy()
    for fit_idx, score_idx in tuning.grouped_folds(5, seed=3).split(train, train["label"], groups):
        assert not set(groups[fit_idx]) & set(groups[score_idx])


def test_original_study_numbers_reproduce(table):
    study = evaluation.reproduce_study(table)
    assert study["accuracy"].round(3).tolist() == [0.645, 0.685, 0.69]
    assert study["reported"].tolist() == [0.645, 0.685, 0.69]  # what the study stated
    assert (study["ci95_lo"] < study["accuracy"]).all() and (study["accuracy"] < study["ci95_hi"]).all()


def test_tuning_is_cached_per_training_data(table, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    train, _ = data.held_out_split(table, "fault-filtered")
    first = tuning.tune_model("knn", train, grid="small")
    again = tuning.tune_model("knn", train, grid="small")
    assert not first.cached and again.cached and again.params == first.params
    assert len(list((tmp_path / "cache" / "tuning").glob("knn-*.json"))) == 1
    other = tuning.tune_model("knn", train.iloc[:-40], grid="small")
    assert not other.cached


def test_tuning_cache_keeps_its_file_name_and_contents(table, tmp_path, monkeypatch):
    """Existing ``tuning/{name}-{key}.json`` entries stay valid: same key recipe, same bytes."""
    import hashlib

    import sklearn

    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    train, _ = data.held_out_split(table, "fault-filtered")
    result = tuning.tune_model("knn", train, grid="small")
    source = json.dumps({"name": "knn", "estimator": repr(models.build_model("knn", random_state=0)),
                         "grid": models.param_grid("knn", "small"), "seed": 0, "n_splits": 5,
                         "sklearn": sklearn.__version__, "rows": models.table_fingerprint(train),
                         "files": hashlib.md5("\n".join(train["filename"]).encode()).hexdigest()},
                        sort_keys=True, default=str)
    path = tmp_path / "cache" / "tuning" / f"knn-{hashlib.md5(source.encode()).hexdigest()[:16]}.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    written = json.dumps({"params": result.params, "cv_mean": result.cv_mean,
                          "cv_std": result.cv_std, "cached": False, "key": source})
    assert path.read_text() == written
    # an unreadable or incomplete entry is tuned again and overwritten with the same bytes
    for broken in ("{", '{"params": {}}'):
        path.write_text(broken)
        again = tuning.tune_model("knn", train, grid="small")
        assert not again.cached and again.params == result.params
        assert path.read_text() == written
    assert tuning.tune_model("knn", train, grid="small").cached


def test_evaluate_json_lists_one_object_per_model(capsys):
    status = cli.main(["evaluate", "--model", "knn", "--grid", "small", "--retune", "--json"])
    out = capsys.readouterr().out
    assert status == 0
    results = json.loads(out)
    assert isinstance(results, list) and len(results) == 1
    result = results[0]
    assert {"model", "split", "accuracy", "macro_f1", "ci95", "n_train", "n_test", "params"} <= set(result)
    assert (result["model"], result["split"]) == ("knn", "fault-filtered")
    assert (result["n_train"], result["n_test"]) == (640, 290)
    lo, hi = result["ci95"]
    assert lo <= result["accuracy"] <= hi and 0.3 < result["accuracy"] < 0.6
    assert set(result["params"]) == set(models.param_grid("knn", "small"))


def test_evaluate_table_names_split_and_interval(capsys):
    status = cli.main(["evaluate", "--model", "logreg", "--split", "stratified", "--grid", "small",
                       "--retune"])
    out = capsys.readouterr().out
    assert status == 0
    line = out.splitlines()[0]
    assert "stratified test (n=250)" in line and "95% CI" in line and "n=750" in line


def test_evaluate_refuses_an_unknown_model(capsys):
    assert cli.main(["evaluate", "--model", "bert", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "bert: unknown model" in captured.err


def _merged_with_fake_rows(table):
    extra = table.groupby("label").head(4).copy()
    extra["filename"] = [f"song_{i}.wav" for i in range(len(extra))]
    # a "modern master": louder than any GTZAN clip, and all of the new genre
    extra["rms_mean"] = extra["rms_mean"] * 4
    extra["label"] = ["house"] * 30 + ["blues"] * 10
    extra["length"] = 30.0
    return models.merge_extra_rows(table, extra)


def test_source_confounding_detects_a_loudness_shift(table):
    merged = _merged_with_fake_rows(table)
    report = evaluation.source_confounding(merged, n_splits=3)
    assert report["source_share"].loc["house", "original study"] == 1.0
    assert report["new_genres"] == ["house"]
    assert report["old_genre_rows"] == 10
    assert report["source_balanced_accuracy"] > 0.8
    # converted to samples, 30 s is exactly 661500: still not a GTZAN length
    assert report["length_source_accuracy"] > 0.95
    assert report["rms_median"]["original study"] > 2 * report["rms_median"]["gtzan"]
    lo, hi = report["source_ci95"]
    assert lo <= report["source_accuracy"] <= hi


def test_source_confounding_of_the_study_rows(table):
    from conftest import require_shared

    merged = models.merge_extra_rows(table, require_shared("seed", "features_30_secActive.csv"))
    report = evaluation.source_confounding(merged, n_splits=3)
    assert report["new_genres"] == ["alternative", "house"]
    assert report["source_balanced_accuracy"] > 0.75


def test_candidate_recipes_calibrate_inside_the_pipeline(table):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedGroupKFold

    small = table.groupby("label").head(30)
    model, params = model_selection.fit_candidate("logreg", small, n_splits=3)
    calibrator = model.named_steps["model"]
    assert isinstance(calibrator, CalibratedClassifierCV) and calibrator.method == "temperature"
    assert isinstance(calibrator.cv, StratifiedGroupKFold) and params == {}
    proba = model.predict_proba(small[list(MODEL_FEATURES)])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    study, _ = model_selection.fit_candidate("knn", small)
    assert study.get_params()["model__n_neighbors"] == 4  # the study's model, not calibrated
    assert not isinstance(study.named_steps["model"], CalibratedClassifierCV)


def test_the_knn_candidate_is_the_study_model(table):
    small = table.groupby("label").head(30)
    fitted, params = model_selection.fit_candidate("knn", small)
    study = models.fit_on_table(small, models.make_knn())
    assert params == {} and repr(fitted) == repr(study)
    rows = table[list(MODEL_FEATURES)].tail(50)
    np.testing.assert_array_equal(fitted.predict_proba(rows), study.predict_proba(rows))


def test_grid_test_scores_ranks_settings_by_inner_cv(table):
    gap = evaluation.grid_test_scores("knn", grid="small", table=table)
    assert len(gap) == 4 and gap["inner_rank"].iloc[0] == 1
    assert {"method", "n_neighbors", "inner_cv_mean", "inner_cv_std", "test_accuracy"} <= set(gap.columns)
    assert gap["test_accuracy"].between(0.2, 0.7).all()


def test_selection_ranks_by_mean_then_spread_and_round_trips_its_document():
    import dataclasses

    rows = [{"name": "a", "cv_accuracy": 0.6, "cv_std": 0.05},
            {"name": "b", "cv_accuracy": 0.7, "cv_std": 0.04},
            {"name": "c", "cv_accuracy": 0.7, "cv_std": 0.02},
            {"name": "d", "cv_accuracy": 0.7, "cv_std": 0.02}]
    selection = model_selection.Selection(chosen="c", candidates=rows, seed=0, grid="small",
                                     n_splits=5, training_fingerprint="f")
    assert [r["name"] for r in selection.ranked()] == ["c", "d", "b", "a"]  # full ties: list order
    assert min(rows, key=model_selection.Selection.rank_key)["name"] == selection.ranked()[0]["name"]
    document = selection.to_document()
    assert "cached" not in document
    assert document == {k: v for k, v in dataclasses.asdict(selection).items() if k != "cached"}
    again = model_selection.Selection.from_document(document)
    assert again.cached and again.to_document() == document


def test_the_shipped_selection_reads_back_unchanged():
    shipped = json.loads(paths.shipped_selection_path().read_text())
    selection = model_selection.Selection.from_document(shipped["selection"])
    assert selection.cached
    assert json.dumps(selection.to_document(), sort_keys=True) == json.dumps(shipped["selection"],
                                                                             sort_keys=True)


def test_default_recipe_predicts_the_test_clips_it_scores(table):
    from helpers.models import selection as model_selection

    small = table.groupby("label").head(40)
    predicted = model_selection.candidate_test_predictions("logreg", small, n_splits=3)
    assert len(predicted["y_true"]) == len(predicted["y_pred"]) == len(predicted["proba"])
    assert predicted["proba"].shape[1] == len(predicted["classes"])
    assert (predicted["proba"].sum(axis=1) == pytest.approx(1.0))

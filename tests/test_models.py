"""Genre model pipelines: no leakage, registry, model files, default model, extra rows."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline

from helpers import data, models
from helpers.constants import DEFAULT_SEED
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS
from helpers.models import MODEL_FEATURES


@pytest.fixture(scope="module")
def table():
    return data.load_gtzan_table()


@pytest.fixture(scope="module")
def fitted_knn(table):
    return models.fit_on_table(table, models.build_model("knn"))


FITTED_ROWS = []  # module level: cross-validation clones estimators (and would copy a list param)


class RowSpy(TransformerMixin, BaseEstimator):
    """Records the first-column values of every block it is fitted on in FITTED_ROWS."""

    def fit(self, X, y=None):
        FITTED_ROWS.append(np.asarray(X)[:, 0].copy())
        return self

    def transform(self, X):
        return X


def test_the_scaler_is_fitted_on_training_rows_only(table):
    masks = data.split_masks(table, "fault-filtered")
    train, test = table[masks["train"]], table[masks["test"]]
    model = models.fit_on_table(train, models.build_model("knn"))
    scaler = model.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, train[list(MODEL_FEATURES)].mean().to_numpy())
    both = pd.concat([train, test])[list(MODEL_FEATURES)].mean().to_numpy()
    assert not np.allclose(scaler.mean_, both)


def test_cross_validation_never_fits_preprocessing_on_held_out_rows(table):
    FITTED_ROWS.clear()
    pipeline = models.build_model("lda-knn")
    pipeline.steps.insert(0, ("spy", RowSpy()))
    sample = table.sample(200, random_state=0).reset_index(drop=True)
    # a unique value per row in the first column identifies the rows each fit saw
    sample["chroma_stft_mean"] = np.arange(len(sample), dtype=float)
    groups = data.artist_groups(sample["filename"])
    folds = list(GroupKFold(4).split(sample, groups=groups))
    cross_val_score(pipeline, sample[list(MODEL_FEATURES)], sample["label"], groups=groups, cv=folds)
    assert len(FITTED_ROWS) == len(folds)
    for seen, (train_idx, test_idx) in zip(FITTED_ROWS, folds, strict=True):
        assert set(seen.astype(int)) == set(train_idx)
        assert not set(seen.astype(int)) & set(test_idx)


def test_registry_builds_every_model_and_refuses_unknown_names(table):
    small = table.groupby("label").head(12)
    for name in models.MODEL_NAMES:
        model = models.fit_on_table(small, models.build_model(name))
        assert set(model.predict(small[list(MODEL_FEATURES)])) <= set(data.GENRES)
        assert isinstance(model, Pipeline) and "scale" in model.named_steps
        grid = models.param_grid(name, "small")
        model.set_params(**{k: v[0] for k, v in grid.items()})
    with pytest.raises(InputError, match="unknown model"):
        models.build_model("transformer")


def test_length_is_not_a_model_feature():
    assert "length" not in MODEL_FEATURES and len(MODEL_FEATURES) == len(FEATURE_COLUMNS) - 1


@pytest.mark.parametrize("method", models.CONDITIONING_METHODS)
def test_conditioning_keeps_shape_and_is_learned_from_fit_rows(table, method):
    X = table[list(MODEL_FEATURES)]
    conditioner = models.FeatureConditioner(method).fit(X.iloc[:500])
    out = conditioner.transform(X)
    assert out.shape == X.shape and np.isfinite(out).all()
    assert list(conditioner.get_feature_names_out()) == list(MODEL_FEATURES)
    if method == "log-variance":
        np.testing.assert_allclose(out[:, MODEL_FEATURES.index("rms_var")], np.log(X["rms_var"]))
        np.testing.assert_allclose(out[:, MODEL_FEATURES.index("tempo")], X["tempo"])


def test_conditioner_rejects_other_columns(table):
    conditioner = models.FeatureConditioner("log-variance").fit(table[list(MODEL_FEATURES)])
    with pytest.raises(InputError, match="columns differ"):
        conditioner.transform(table[list(MODEL_FEATURES)[::-1]])
    with pytest.raises(InputError, match="unknown conditioning"):
        models.FeatureConditioner("cube").fit(table[list(MODEL_FEATURES)])


def test_model_file_round_trip_keeps_predictions_and_metadata(tmp_path, table, fitted_knn):
    path = models.save_model(fitted_knn, tmp_path / "knn.skops",
                             models.model_metadata(fitted_knn, table, metrics={"accuracy": 0.5}))
    loaded, meta = models.load_model(path, expected_columns=MODEL_FEATURES,
                                     expected_genres=data.GENRES, return_metadata=True)
    X = table[list(MODEL_FEATURES)]
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_knn.predict_proba(X))
    assert meta["feature_columns"] == list(MODEL_FEATURES)
    assert meta["genres"] == list(data.GENRES)
    assert meta["training_fingerprint"] == models.table_fingerprint(table)
    assert meta["metrics"] == {"accuracy": 0.5}
    assert {"scikit-learn", "numpy", "skops"} <= set(meta["library_versions"])
    assert meta["created"]


def test_model_file_with_other_columns_or_genres_is_refused(tmp_path, fitted_knn):
    path = models.save_model(fitted_knn, tmp_path / "knn.skops")
    with pytest.raises(InputError, match="knn.skops.*columns"):
        models.load_model(path, expected_columns=list(MODEL_FEATURES)[:-1])
    with pytest.raises(InputError, match="another order"):
        models.load_model(path, expected_columns=list(MODEL_FEATURES)[::-1])
    with pytest.raises(InputError, match="knn.skops.*genres"):
        models.load_model(path, expected_genres=[*data.GENRES, "house"])


def test_corrupt_foreign_and_tampered_files_are_refused(tmp_path, fitted_knn):
    import skops.io as sio

    not_a_model = tmp_path / "notes.skops"
    not_a_model.write_text("hello")
    with pytest.raises(InputError, match="notes.skops: not a readable skops"):
        models.load_model(not_a_model)
    with pytest.raises(InputError, match="does not exist"):
        models.load_model(tmp_path / "missing.skops")
    # a valid skops file that is not one of ours (no metadata)
    foreign = tmp_path / "foreign.skops"
    sio.dump(fitted_knn, foreign)
    with pytest.raises(InputError, match="not a music-study model file"):
        models.load_model(foreign)
    # a file holding a type outside the trusted list is refused before it is deserialised
    untrusted = tmp_path / "untrusted.skops"
    sio.dump({"metadata_json": "{}", "model": RowSpy()}, untrusted)
    with pytest.raises(InputError, match="untrusted object types: .*RowSpy"):
        models.load_model(untrusted)
    # tampered metadata
    good = models.save_model(fitted_knn, tmp_path / "good.skops")
    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            if item.filename == "schema.json":
                payload = payload.replace(b"music-study-model/1", b"music-study-model/9")
            dst.writestr(item, payload)
    with pytest.raises(InputError, match="format"):
        models.load_model(tampered)
    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="truncated.skops"):
        models.load_model(truncated)


def test_default_model_is_trained_once_then_reused(tmp_path, table):
    path = tmp_path / "models" / "default.skops"
    model = models.default_model(path=path)
    assert path.is_file()
    assert hasattr(model, "predict_proba") and list(model.classes_) == list(data.GENRES)
    assert list(model.feature_names_in_) == list(MODEL_FEATURES)
    created = models.read_model_metadata(path)["created"]
    stamp = path.stat().st_mtime_ns
    again = models.default_model(path=path)
    assert path.stat().st_mtime_ns == stamp
    X = table[list(MODEL_FEATURES)].head(20)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert models.read_model_metadata(path)["created"] == created


def test_default_model_retrains_when_the_cached_file_is_stale(tmp_path, table):
    path = tmp_path / "default.skops"
    stale = models.fit_on_table(table.head(300), models.build_model("knn"))
    models.save_model(stale, path, models.model_metadata(stale, table.head(300)))
    with pytest.warns(UserWarning, match="retraining.*genres"):
        model = models.default_model(path=path)
    meta = models.read_model_metadata(path)
    assert meta["training_fingerprint"] == models.table_fingerprint(table)
    assert len(model.classes_) == 10
    path.write_text("garbage")
    with pytest.warns(UserWarning, match="retraining"):
        models.default_model(path=path)
    assert models.read_model_metadata(path)["n_training_rows"] == 1000


def _extra_rows(table):
    extra = table.groupby("label").head(2).copy()
    extra["filename"] = [f"song_{i}.wav" for i in range(len(extra))]
    extra["label"] = ["house"] * 10 + ["alternative"] * 10
    extra["length"] = 30.0
    return pd.concat([table.head(5), extra])  # the study's file repeats GTZAN rows first


def test_merge_extra_rows_fixes_length_and_marks_source(table, tmp_path):
    merged = models.merge_extra_rows(table, _extra_rows(table))
    assert len(merged) == 1020
    assert merged["source"].value_counts().to_dict() == {"gtzan": 1000, "original study": 20}
    added = merged[merged["source"] == "original study"]
    assert (added["length"] == 30.0 * 22050).all()
    assert set(added["label"]) == {"house", "alternative"}
    csv = tmp_path / "extra.csv"
    _extra_rows(table).to_csv(csv, index=False)
    assert models.merge_extra_rows(table, csv, source="web").equals(
        models.merge_extra_rows(table, _extra_rows(table), source="web"))
    with pytest.raises(InputError, match="missing columns"):
        models.merge_extra_rows(table, _extra_rows(table).drop(columns="tempo"))
    with pytest.raises(InputError, match="nope.csv"):
        models.merge_extra_rows(table, tmp_path / "nope.csv")


def test_merge_with_the_study_rows(table):
    from conftest import require_shared

    seed = require_shared("seed", "features_30_secActive.csv")
    merged = models.merge_extra_rows(table, seed)
    added = merged[merged["source"] == "original study"]
    assert len(added) == 196
    assert added["label"].value_counts()[["alternative", "house"]].tolist() == [103, 58]
    assert added["length"].between(600_000, 700_000).all()
    assert json.dumps(merged["source"].unique().tolist()) == '["gtzan", "original study"]'


# --------------------------------------------------------------------------- the default model

CARD_KEYS = {"name", "description", "selection_score", "selection_std", "selection_method",
             "test_accuracy", "test_ci95", "test_split", "n_test", "genres", "training_fingerprint",
             "n_training_rows", "open_set"}


def test_shipped_selection_picks_the_documented_model(table):
    selection, rules = models.selection_result()
    assert selection.cached  # the shipped result: no selection run at first use
    assert selection.training_fingerprint == models.table_fingerprint(table)
    assert selection.seed == DEFAULT_SEED
    assert selection.chosen == "logreg"  # documented in README (seed 0, grouped 5-fold CV)
    best = max(selection.candidates, key=lambda r: r["cv_accuracy"])
    assert best["name"] == selection.chosen
    assert {r["name"] for r in selection.candidates} == set(models.CANDIDATE_NAMES)
    assert set(rules) == set(models.CANDIDATE_NAMES)
    knn = selection.row("knn")
    assert knn["test_split"] == "fault-filtered" and knn["n_test"] == 290
    assert knn["test_accuracy"] == pytest.approx(0.445, abs=0.001)  # data/README's study figure


def test_default_model_carries_a_complete_card(tmp_path, table):
    path = tmp_path / "default.skops"
    model = models.default_model(path=path)
    card = model.model_card_
    assert CARD_KEYS <= set(card)
    assert card["name"] == "logreg" and card["chosen_as_default"]
    assert card["test_split"] == "fault-filtered" and card["n_test"] == 290
    low, high = card["test_ci95"]
    assert low < card["test_accuracy"] < high
    assert card["genres"] == list(data.GENRES)
    assert card["training_fingerprint"] == models.table_fingerprint(table)
    assert {"signal", "thresholds", "false_flag_rate", "detection_rate"} <= set(card["open_set"])
    assert hasattr(model, "novelty_")  # the neighbour signals of the open-set rule
    assert models.read_model_metadata(path)["card"] == card
    assert models.load_model(path).model_card_ == card
    proba = model.predict_proba(table[list(MODEL_FEATURES)].head(50))
    assert len(np.unique(proba.round(6))) > 20  # calibrated, not steps of 1/k
    line = models.describe_model(model)
    assert line.startswith("logreg: ") and "fault-filtered test split (n=290" in line and "95% CI" in line
    summary = models.model_summary(model)
    assert {"name", "test_accuracy", "test_split"} <= set(summary) and summary["line"] == line
    assert "no model card" in models.describe_model(models.make_knn())


def test_models_are_picked_by_name_or_path(tmp_path, monkeypatch, table):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    knn = models.resolve_model("knn")
    assert knn.model_card_["name"] == "knn"
    assert knn.get_params()["model__n_neighbors"] == 4 and knn.get_params()["model__p"] == 1
    assert (tmp_path / "models" / "knn.skops").is_file()
    assert models.resolve_model(tmp_path / "models" / "knn.skops").model_card_["name"] == "knn"
    with pytest.raises(InputError, match="bert: unknown model; choose one of knn, knn-tuned"):
        models.resolve_model("bert")
    with pytest.raises(InputError, match="model file does not exist"):
        models.resolve_model(tmp_path / "nope.skops")


def test_selection_is_deterministic_and_cached(tmp_path, monkeypatch, table):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    small = table.groupby("label").head(40)
    first = evaluation_select(small)
    again = evaluation_select(small)
    assert not first.cached and again.cached
    assert again.chosen == first.chosen and again.candidates == first.candidates
    fresh = evaluation_select(small, cache=False)
    assert fresh.candidates == first.candidates  # same seed, same numbers
    for row in first.candidates:
        assert len(row["fold_accuracies"]) == 3 and row["test_split"] == "fault-filtered"
    with pytest.raises(InputError, match="unknown model"):
        evaluation_select(small, candidates=["knn", "bert"])


def evaluation_select(small, **kwargs):
    kwargs = {"candidates": ["knn", "logreg"], "n_splits": 3} | kwargs
    return models.select_model(small, **kwargs)


def _tone(path, seconds=11.0):
    import soundfile as sf

    t = np.arange(int(seconds * 22050)) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    return path


def test_predict_names_its_model_in_json_and_text(tmp_path, capsys):
    from helpers import cli

    song = _tone(tmp_path / "song.wav")
    assert cli.main(["predict", str(song), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["model"]["name"] == "logreg"
    assert document["model"]["test_split"] == "fault-filtered"
    assert 0.4 < document["model"]["test_accuracy"] < 0.7
    assert document["open_set"]["features"]["signal"] == document["model"]["uncertain_rule"]["signal"]
    assert document["uncertain"] == document["open_set"]["flagged"]
    assert cli.main(["predict", str(song), "--model", "knn"]) == 0
    text = capsys.readouterr().out
    assert "model: knn: " in text and "fault-filtered test split" in text
    assert cli.main(["predict", str(song), "--model", "bert", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "bert: unknown model; choose one of knn, knn-tuned, lda-knn, logreg, svm, forest" in captured.err


def test_an_unknown_model_name_gives_one_message_wherever_it_is_met():
    with pytest.raises(InputError) as by_name:
        models.get_candidate("bert")
    with pytest.raises(InputError) as resolved:
        models.resolve_model("bert")
    assert str(resolved.value) == str(by_name.value) == (
        "bert: unknown model; choose one of knn, knn-tuned, lda-knn, logreg, svm, forest "
        "or a model file path")


def test_a_reused_candidate_file_carries_its_card(tmp_path):
    path = tmp_path / "knn.skops"
    built = models.candidate_model("knn", path=path)
    stamp = path.stat().st_mtime_ns
    reused = models.candidate_model("knn", path=path)
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert reused.model_card_ == built.model_card_
    assert reused.model_card_ == models.read_model_metadata(path)["card"]


def test_a_model_file_saved_before_the_models_package_still_loads(root):
    """A file written when the classes lived in helpers.models and helpers.openset (made with
    that code: a 3-NN on three clips per genre, with its novelty scorer) loads as the classes of
    today and gives the same answers."""
    from helpers.features import MODEL_FEATURES
    from helpers.models.novelty import NeighbourScorer
    from helpers.models.pipelines import FeatureConditioner

    path = root / "tests" / "data" / "model_saved_before_the_models_package.skops"
    import skops.io as sio

    assert set(sio.get_untrusted_types(file=path)) == {"helpers.models.FeatureConditioner",
                                                      "helpers.openset.NeighbourScorer"}
    model, metadata = models.load_model(path, return_metadata=True)
    assert metadata["name"] == "saved-before-the-move"
    assert type(model.named_steps["condition"]) is FeatureConditioner
    assert type(model.novelty_) is NeighbourScorer
    small = data.load_gtzan_table().groupby("label").head(3).reset_index(drop=True)
    rows = small[list(MODEL_FEATURES)].head(2)
    assert model.predict(rows).tolist() == ["blues", "blues"]
    scores = model.novelty_.score(rows)
    assert np.allclose(scores["neighbour_distance"], [3.28268024, 3.30522383])
    assert np.allclose(scores["local_density"], [0.64307667, 0.61332066])

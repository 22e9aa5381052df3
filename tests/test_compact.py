"""The compact copy of a linear model predicts exactly what the pipeline does (issue 13, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from helpers import data, models
from helpers.features import MODEL_FEATURES
from helpers.models import compact, pipelines
from helpers.paths import project_root


@pytest.fixture(scope="module")
def table():
    return data.load_gtzan_table()


@pytest.fixture(scope="module")
def rows(table):
    return table[list(MODEL_FEATURES)]


def _small_fit(table, pipeline, calibrated=False):
    """Fit *pipeline* on 300 rows (every genre), grouped by artist when calibrated."""
    part = table.groupby("label").head(30)
    if calibrated:
        models.calibrate(pipeline, method="temperature", n_splits=3)
        return models.fit_grouped(pipeline, part[list(MODEL_FEATURES)], part["label"],
                                  data.artist_groups(part["filename"]))
    return pipeline.fit(part[list(MODEL_FEATURES)], part["label"])


@pytest.mark.parametrize("condition", ["none", "log-variance", "power"])
@pytest.mark.parametrize("calibrated", [False, True])
def test_compact_copy_gives_the_pipelines_probabilities(table, rows, condition, calibrated):
    pipeline = _small_fit(table, pipelines._pipeline(LogisticRegression(max_iter=2000), condition),
                          calibrated)
    fast = compact.compact_model(pipeline)
    np.testing.assert_allclose(fast.predict_proba(rows), pipeline.predict_proba(rows),
                               rtol=0, atol=1e-12)
    assert list(fast.classes_) == list(pipeline.classes_)
    assert (fast.predict(rows) == pipeline.predict(rows)).all()


def test_the_default_model_and_its_open_set_index_survive_the_file(tmp_path, table, rows):
    model = models.default_model(path=tmp_path / "default.skops")
    target = tmp_path / "default.npz"
    assert target.is_file()  # default_model wrote the copy beside the skops file
    with zipfile.ZipFile(target) as archive:  # arrays and one JSON header, nothing pickled
        assert all(name.endswith(".npy") for name in archive.namelist())
    fast = compact.load_compact(target, compact.source_key(tmp_path / "default.skops"))
    np.testing.assert_allclose(fast.predict_proba(rows), model.predict_proba(rows), rtol=0, atol=1e-12)
    assert fast.model_card_ == model.model_card_
    expected = model.novelty_.score(rows.head(100))
    for name, values in fast.novelty_.score(rows.head(100)).items():
        np.testing.assert_allclose(values, expected[name], rtol=1e-6)


def test_the_copy_is_refused_when_it_no_longer_belongs_to_the_model_file(tmp_path, table):
    source = tmp_path / "default.skops"
    models.default_model(path=source)
    target = compact.compact_path(source)
    key = compact.source_key(source)
    assert compact.load_compact(target, key) is not None
    stale = dict(key, source_sha256="0" * 64)  # the skops file was rebuilt since
    assert compact.load_compact(target, stale) is None
    newer = dict(key, libraries=dict(key["libraries"], numpy="0.0"))
    assert compact.load_compact(target, newer) is None
    target.write_bytes(b"not an archive")
    assert compact.load_compact(target, key) is None
    assert compact.load_compact(tmp_path / "missing.npz", key) is None


def test_models_without_a_compact_form_are_refused_by_name(table):
    knn = _small_fit(table, models.build_model("knn"))
    with pytest.raises(compact.UnsupportedModel, match="KNeighborsClassifier"):
        compact.compact_model(knn)
    quantile = _small_fit(table, pipelines._pipeline(LogisticRegression(max_iter=2000), "quantile"))
    with pytest.raises(compact.UnsupportedModel, match="quantile"):
        compact.compact_model(quantile)
    assert compact.ensure_compact(knn, "unused.skops") is None  # the skops file stays the way in


def test_wrong_columns_are_refused(table, rows):
    fast = compact.compact_model(_small_fit(table, models.build_model("logreg")))
    with pytest.raises(ValueError, match="columns differ"):
        fast.predict_proba(rows[list(reversed(rows.columns))])
    with pytest.raises(ValueError, match="expected 57 columns"):
        fast.predict_proba(rows.to_numpy()[:, :5])


def test_a_fresh_predict_loads_the_copy_without_scikit_learn(tmp_path, monkeypatch, shipped_songs):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    from helpers.paths import default_model_path

    model = models.default_model()  # writes data/models/default.skops and its copy
    assert compact.compact_path(default_model_path()).is_file()
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"), MUSIC_STUDY_DATA_DIR=str(tmp_path))
    code = ("import sys, json; from helpers.cli import main; code = main(['predict', sys.argv[1], "
            "'--json']); print(sorted(m for m in ('sklearn', 'skops', 'scipy.stats', 'librosa') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(shipped_songs[0])], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    document, loaded = run.stdout.strip().splitlines()
    assert loaded == "[]"
    import json

    assert json.loads(document)["model"]["name"] == model.model_card_["name"]

"""A DC offset and a single feature far outside the training range: the guard and DC removal."""

import numpy as np
import pandas as pd
import pytest

from helpers import data, predict
from helpers.evaluation import robustness
from helpers.features.columns import MODEL_FEATURES
from helpers.models import default_model
from helpers.models.novelty import NeighbourScorer
from helpers.models.pipelines import OFFSET_FEATURES, FeatureGuard, build_model, make_knn


@pytest.fixture(scope="module")
def table():
    return data.load_gtzan_table()


def test_the_guard_clips_to_the_training_range_and_drops_the_offset_columns(table):
    rows = table[list(MODEL_FEATURES)]
    guard = FeatureGuard(margin=0.1).fit(rows)
    kept = [c for c in MODEL_FEATURES if c not in OFFSET_FEATURES]
    assert list(guard.get_feature_names_out()) == kept
    far = rows.head(1).copy()
    far["tempo"] = 1e6
    far["harmony_mean"] = -0.2  # the offset column is left out whatever it holds
    out = pd.DataFrame(guard.transform(far), columns=kept)
    span = rows["tempo"].max() - rows["tempo"].min()
    assert out["tempo"].iloc[0] == pytest.approx(rows["tempo"].max() + 0.1 * span)
    inside = guard.transform(rows)
    np.testing.assert_array_equal(inside, rows[kept].to_numpy())  # training rows pass unchanged
    with pytest.raises(ValueError, match="margin"):
        FeatureGuard(margin=-1).fit(rows)


def test_one_feature_far_out_cannot_decide_the_genre_or_the_distance(table):
    rows, labels = table[list(MODEL_FEATURES)], table["label"]
    model = build_model("logreg").fit(rows, labels)
    scorer = NeighbourScorer().fit(rows)
    clip = rows.iloc[[3]]
    for column in ("harmony_mean", "zero_crossing_rate_mean", "mfcc4_var"):
        broken = clip.copy()
        broken[column] = clip[column] * 1000 + 1000  # far beyond every training clip
        bounded = model.predict_proba(broken)
        assert np.abs(bounded - model.predict_proba(clip)).max() < 0.9
        distance = scorer.score(broken)["neighbour_distance"][0]
        assert distance < 3 * scorer.score(clip)["neighbour_distance"][0] + 3
    same = clip.copy()
    same["harmony_mean"], same["perceptr_mean"] = -0.2, 0.1  # a DC offset's signature
    np.testing.assert_allclose(model.predict_proba(same), model.predict_proba(clip))


def test_the_study_knn_stays_the_study_s_model():
    assert "guard" not in make_knn().named_steps
    assert "guard" in build_model("logreg").named_steps


def test_a_real_song_with_a_dc_offset_gets_the_same_prediction_and_verdict(tmp_path, shipped_songs):
    model = default_model()
    song = next(p for p in shipped_songs if p.stem.startswith("wesnoth"))
    plain = robustness.with_dc_offset(song, tmp_path / "plain.wav", offset=0.0, seconds=65)
    shifted = robustness.with_dc_offset(song, tmp_path / "shifted.wav", offset=-0.15, seconds=65)
    before = predict.predict_song(plain, model=model)
    after = predict.predict_song(shifted, model=model)
    assert after.genre == before.genre
    assert after.is_uncertain() == before.is_uncertain()
    assert after.open_set["features"]["scores"] == pytest.approx(
        before.open_set["features"]["scores"], rel=1e-3, abs=1e-4)
    # the verdict is the same; the tags themselves hear the offset, as the original network does
    assert after.open_set["decided_by"] == before.open_set["decided_by"]
    genres = list(before.probabilities)
    np.testing.assert_allclose(after.windows[genres].to_numpy(), before.windows[genres].to_numpy(),
                               atol=1e-3)

"""helpers.models.openset and .novelty: signals, AUROC with intervals, leave-one-genre-out on a
tiny table, the rule, and one flag rule for validation and inference."""

import numpy as np
import pandas as pd
import pytest

from helpers import data
from helpers.errors import InputError
from helpers.models import novelty, openset


@pytest.fixture(scope="module")
def tiny():
    """Three genres x 24 clips of the real table: a tiny but real leave-one-genre-out."""
    table = data.load_gtzan_table()
    return table[table["label"].isin(["classical", "metal", "pop"])].groupby("label").head(24)


def test_probability_signals_follow_their_definitions():
    signals = novelty.probability_signals(np.array([[1.0, 0.0, 0.0], [0.5, 0.3, 0.2], [1/3, 1/3, 1/3]]))
    np.testing.assert_allclose(signals["top_probability"], [0.0, 0.5, 2 / 3])
    np.testing.assert_allclose(signals["margin"], [0.0, 0.8, 1.0])
    np.testing.assert_allclose(signals["entropy"][[0, 2]], [0.0, 1.0])
    assert 0 < signals["entropy"][1] < 1
    with pytest.raises(InputError):
        novelty.probability_signals(np.array([0.5, 0.5]))


def test_auroc_is_a_rank_statistic_with_an_interval():
    unknown = np.array([True] * 5 + [False] * 5)
    assert openset.auroc(np.arange(10)[::-1], unknown) == 1.0
    assert openset.auroc(np.arange(10), unknown) == 0.0
    assert openset.auroc(np.ones(10), unknown) == 0.5
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 200), rng.normal(0, 1, 200)]
    labels = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    low, high = openset.auroc_interval(scores, labels, n_boot=200)
    assert low < openset.auroc(scores, labels) < high and 0.6 < low and high < 0.85
    with pytest.raises(InputError, match="both"):
        openset.auroc([0.1, 0.2], [True, True])


def test_leave_one_genre_out_on_a_tiny_table(tiny):
    scores = openset.leave_one_genre_out(tiny, candidate="knn", n_splits=3)
    assert set(scores["left_out"]) == {"classical", "metal", "pop"}
    for genre, part in scores.groupby("left_out"):
        unknown = part[part["unknown"]]
        # every clip of the left-out genre is scored exactly once, and only it is "unknown"
        assert sorted(unknown["filename"]) == sorted(tiny.loc[tiny["label"] == genre, "filename"])
        assert (unknown["label"] == genre).all() and (part.loc[~part["unknown"], "label"] != genre).all()
        # each known clip is held out once (artist-grouped folds cover every known clip)
        assert part.loc[~part["unknown"], "filename"].is_unique
        assert len(part) == len(tiny)
    assert set(openset.SIGNALS) <= set(scores.columns)
    table = openset.auroc_table(scores, n_boot=50)
    assert len(table) == 3 * len(openset.SIGNALS)
    assert ((table["ci_low"] <= table["auroc"]) & (table["auroc"] <= table["ci_high"])).all()
    assert table["auroc"].between(0, 1).all()


def test_a_far_away_genre_is_found_by_the_neighbour_distance(tiny):
    shifted = tiny.copy()
    far = shifted["label"] == "pop"
    shifted.loc[far, "spectral_centroid_mean"] *= 4  # far outside every known clip
    shifted.loc[far, "mfcc1_mean"] += 500
    scores = openset.leave_one_genre_out(shifted, candidate="knn", n_splits=3, genres=["pop"])
    assert openset.auroc(scores["neighbour_distance"], scores["unknown"]) > 0.95


def _runs(genres, n_per_genre):
    """Scores shaped like leave_one_genre_out's: one run per left-out genre over every clip."""
    clips = pd.DataFrame({"filename": [f"{g}.{i:05d}.wav" for g in genres for i in range(n_per_genre)],
                          "label": np.repeat(genres, n_per_genre)})
    return pd.concat([clips.assign(left_out=g, unknown=clips["label"] == g) for g in genres],
                     ignore_index=True)


def test_rule_threshold_keeps_its_false_flag_rate_and_applies_to_songs():
    rng = np.random.default_rng(1)
    scores = _runs(["a", "b", "c", "d"], 100)
    for signal in openset.SIGNALS:
        scores[signal] = rng.random(len(scores)) + scores["unknown"] * (0.5 if signal == "margin" else 0.0)
    rule = openset.choose_rule(scores, false_flag_rate=0.1)
    assert "margin" in rule["thresholds"] and rule["signal"].startswith("margin")
    assert rule["false_flag_rate"] <= 0.1 + 1e-9 and rule["false_flag_rate"] == pytest.approx(0.1, abs=0.01)
    assert rule["false_flag_ci95"][0] <= rule["false_flag_rate"] <= rule["false_flag_ci95"][1]
    assert rule["detection_rate"] > 0.5 and set(rule["detection_by_genre"]) == {"a", "b", "c", "d"}
    assert rule["n_known"] == 400 and rule["n_unknown"] == 400  # each clip once, not once per run
    assert rule["detection_rate"] == max(rule["alternatives"].values())
    assert "margin+neighbour_distance" in rule["alternatives"]  # pairs are considered
    sure = np.array([[0.95, 0.05], [0.9, 0.1]])
    torn = np.array([[0.5, 0.5], [0.45, 0.55]])
    rule = {"signal": "margin", "thresholds": {"margin": 0.5}}
    assert novelty.song_flag(sure, rule)[1] is False and novelty.song_flag(torn, rule)[1] is True
    far = {"thresholds": {"margin": 0.5, "neighbour_distance": 10.0}}
    assert novelty.song_flag(sure, far, {"neighbour_distance": [30.0, 40.0]}) == (
        {"margin": pytest.approx(0.15), "neighbour_distance": 35.0}, True)
    assert novelty.song_flag(sure, far)[1] is False  # no distances given: that signal is left out
    with pytest.raises(InputError, match="unknown open-set signal"):
        novelty.song_flag(sure, {"thresholds": {"loudness": 1.0}})
    with pytest.raises(InputError, match="between 0 and 1"):
        openset.choose_rule(scores, false_flag_rate=1.5)


def test_a_pair_of_complementary_signals_beats_each_alone():
    rng = np.random.default_rng(2)
    frame = _runs(["near", "far", "plain"], 150)
    for signal in openset.SIGNALS:
        frame[signal] = rng.random(len(frame))
    # top probability finds the "near" genre, neighbour distance the "far" one
    frame.loc[frame["unknown"] & (frame["left_out"] == "near"), "top_probability"] += 1
    frame.loc[frame["unknown"] & (frame["left_out"] == "far"), "neighbour_distance"] += 1
    rule = openset.choose_rule(frame, false_flag_rate=0.1)
    assert set(rule["thresholds"]) == {"top_probability", "neighbour_distance"}
    assert rule["detection_rate"] > max(rule["alternatives"]["top_probability"],
                                        rule["alternatives"]["neighbour_distance"])
    assert rule["false_flag_rate"] <= 0.1 + 1e-9


def test_out_of_sample_rates_count_each_clip_once_and_are_not_fitted_to_it():
    rng = np.random.default_rng(3)
    scores = _runs(list("abcdef"), 60)
    for signal in openset.SIGNALS:
        scores[signal] = rng.random(len(scores))
    # noise only: the best of the candidate rules looks better in-sample than it is
    noise = openset.out_of_sample(scores, false_flag_rate=0.1, n_splits=3)
    assert noise["n_known_clips"] == 360 and noise["n_unknown_clips"] == 360
    assert sum(noise["rules_chosen"].values()) == 6 * 3
    low, high = noise["detection_ci95"]
    assert low <= noise["detection_rate"] <= high and low < 0.1 + 0.02  # chance: the false-flag rate
    low, high = noise["false_flag_ci95"]
    assert low <= noise["false_flag_rate"] <= high and 0.04 < noise["false_flag_rate"] < 0.2
    # a signal that finds every unknown genre keeps finding the genre left out of fitting
    scores.loc[scores["unknown"], "neighbour_distance"] += 1
    found = openset.out_of_sample(scores, false_flag_rate=0.1, n_splits=3)
    assert min(v["rate"] for v in found["detection_by_genre"].values()) > 0.9
    assert found["rules_chosen"].get("neighbour_distance", 0) >= 1
    rule = openset.choose_rule(scores, false_flag_rate=0.1)  # the in-sample choice carries it
    assert rule["out_of_sample"] == openset.out_of_sample(scores, false_flag_rate=0.1)


def test_conditions_are_said_in_the_signal_s_own_terms():
    from helpers.models.novelty import SIGNALS, describe_condition

    assert describe_condition("top_probability", 0.723) == "the top genre probability is below 0.277"
    assert "below 0.400" in describe_condition("margin", 0.6)
    assert "above 7.647" in describe_condition("neighbour_distance", 7.647)
    assert all(describe_condition(s, 0.5) for s in SIGNALS)
    with pytest.raises(InputError, match="unknown open-set signal"):
        describe_condition("loudness", 0.5)


def test_the_flag_rule_is_strict_and_the_same_for_validation_and_songs():
    """A value exactly at its threshold is not flagged, by the validation's per-clip rates and by
    a song's verdict alike; a hair above is flagged by both."""
    import pandas as pd

    threshold = 0.25
    rule = {"signal": "margin", "thresholds": {"margin": threshold}}
    at = np.array([[0.875, 0.125]])  # margin signal 1 - (0.875 - 0.125) = 0.25, exact in binary
    above = np.array([[0.874, 0.126]])  # 0.252
    assert novelty.probability_signals(at)["margin"][0] == threshold
    assert novelty.song_flag(at, rule)[1] is False
    assert novelty.song_flag(above, rule)[1] is True
    clips = pd.DataFrame({"margin": [threshold, 0.252], "unknown": [False, True]})
    flagged, _ = openset._rates(clips, rule["thresholds"])
    assert flagged.tolist() == [False, True]
    assert novelty.flags({"margin": threshold}, rule["thresholds"]) is False
    assert novelty.flags({"margin": np.nextafter(threshold, 1)}, rule["thresholds"]) is True

"""One windowing policy and one window-feature function for every consumer.

Whole-song prediction, the labeler, liked audio in recommendations and batch segments all cut a
file with :func:`helpers.features.window_features` under the rule of :mod:`helpers.audio`
(a window is used when it lasts at least ``min(10 s, window)`` and is neither silent nor
non-finite) and check a window length with :func:`helpers.audio.check_window_seconds`. These
tests give the four the same real music (excerpts of a shipped song) and compare what they do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import audio, features
from helpers.audio import check_window_seconds, decode, min_window_seconds
from helpers.errors import AudioError, InputError
from helpers.features import FEATURE_COLUMNS, FeatureSet, sets, window_features

SR = 22050
SONG = "wesnoth_heroes_rite.ogg"  # 219 s of orchestral music, no silence between 20 s and 200 s


@pytest.fixture(scope="module")
def music(root):
    """The shipped song from 20 s on, decoded once (the excerpts are cut from it)."""
    return audio.load_audio(root / "data" / "music" / SONG, offset=20.0, duration=90.0)


def _excerpt(music, folder, seconds: float):
    path = folder / f"excerpt_{seconds:g}s.wav"
    sf.write(path, music[: int(round(seconds * SR))], SR, subtype="FLOAT")  # decoded exactly
    return path


def _spans(frame) -> list[tuple[float, float]]:
    return [(round(float(a), 3), round(float(b), 3)) for a, b in zip(frame["start"], frame["end"],
                                                                      strict=True)]


def _used_by_every_consumer(path, window_seconds, model) -> dict[str, list[tuple[float, float]]]:
    """The (start, end) of the windows each consumer uses for its features."""
    from helpers.features.batch import extract_table
    from helpers.labeling.pool import prepare_song
    from helpers.predict import predict_song
    from helpers.recommend.recommender import song_features

    prediction = predict_song(path, model=model, window_seconds=window_seconds)
    prepared = prepare_song(path, window_seconds=window_seconds)
    assert prepared.error is None, prepared.error
    segments = extract_table([path], segment_seconds=window_seconds, cache=False, progress=False)
    assert segments.failures == []
    table = window_features(path, window_seconds)
    liked = song_features(path, window_seconds=window_seconds)
    used = {
        "window_features": _spans(table[table["used"]]),
        "predict": _spans(prediction.windows[prediction.windows["used"]]),
        "labeler": [(round(a, 3), round(b, 3)) for a, b, _ in prepared.windows],
        "batch": _spans(segments.table[~segments.table["silent"]]),
    }
    # recommendations average the used windows: same count, same seconds, same mean
    spans = used["window_features"]
    assert liked["windows"] == len(spans)
    assert liked["seconds"] == pytest.approx(sum(b - a for a, b in spans), abs=1e-3)
    mean = table.loc[table["used"], list(FEATURE_COLUMNS)].mean()
    assert liked["mfcc1_mean"] == pytest.approx(mean["mfcc1_mean"], rel=1e-9)
    return used


@pytest.mark.parametrize("seconds, window, expected", [
    # 30-s windows: a 10-s tail is used (min(10 s, 30 s) = 10 s) ...
    (70.0, 30.0, [(0, 30), (30, 60), (60, 70)]),
    # ... a 5-s tail is not
    (65.0, 30.0, [(0, 30), (30, 60)]),
    # 3-s segments: the minimum is the segment itself, so a partial one is never used
    (10.0, 3.0, [(0, 3), (3, 6), (6, 9)]),
    # full windows of a length whose end - start is not exact in floating point are all used
    (20.5, 4.1, [(0, 4.1), (4.1, 8.2), (8.2, 12.3), (12.3, 16.4), (16.4, 20.5)]),
])
def test_predict_labeler_recommend_and_batch_use_the_same_windows(
        music, tmp_path, model, seconds, window, expected):
    path = _excerpt(music, tmp_path, seconds)
    used = _used_by_every_consumer(path, window, model)
    expected = [(round(a, 3), round(b, 3)) for a, b in expected]
    assert used == {name: expected for name in used}


def test_a_file_shorter_than_the_minimum_is_refused_alike_but_liked_audio_is_summarised(
        music, tmp_path, model):
    from helpers.features.batch import extract_table
    from helpers.labeling.pool import extract_windows
    from helpers.predict import predict_song
    from helpers.recommend.recommender import song_features

    path = _excerpt(music, tmp_path, 8.0)
    reasons = []
    for refuse in (lambda: predict_song(path, model=model),
                   lambda: extract_windows(path),
                   lambda: window_features(path)):
        with pytest.raises(AudioError) as exc_info:
            refuse()
        reasons.append(exc_info.value.reason)
    assert [r.split(";")[0] for r in reasons] == ["too short: 8.00 s of audio"] * 3
    assert all(r.endswith("need at least 10 s") for r in reasons)
    [failure] = extract_table([path], segment_seconds=30, cache=False, progress=False).failures
    assert failure.reason == "shorter than one 10-s segment: too short (8.00 s of audio)"
    # the policy's one stated exception: a liked file shorter than the minimum, described whole
    liked = song_features(path)
    assert liked["windows"] == 1 and liked["seconds"] == pytest.approx(8.0, abs=1e-3)


@pytest.mark.parametrize("value", ["2", "abc", 0, 601, float("nan"), "-30"])
def test_every_consumer_checks_a_window_length_with_the_same_sentence(
        music, tmp_path, model, value, capsys):
    from helpers.features.batch import extract_table
    from helpers.labeling.widget import Labeler
    from helpers.predict import predict_song
    from helpers.recommend.recommender import song_features

    path = _excerpt(music, tmp_path, 12.0)
    with pytest.raises(InputError) as expected:
        check_window_seconds("x", value)
    reason = expected.value.reason
    store = tmp_path / "labels.sqlite"
    calls = {
        "predict": lambda: predict_song(path, model=model, window_seconds=value),
        "labeler": lambda: Labeler([path], store, model=model, window_seconds=value,
                                   audio=False, background=False),
        "recommend": lambda: song_features(path, window_seconds=value),
        "batch": lambda: extract_table([path], segment_seconds=value, cache=False,
                                       progress=False),
        "window_features": lambda: window_features(path, value),
    }
    named = {"predict": str(path), "labeler": "window_seconds", "recommend": str(path),
             "batch": "segment_seconds", "window_features": str(path)}
    for name, call in calls.items():
        with pytest.raises(InputError) as exc_info:
            call()
        message = str(exc_info.value)
        assert exc_info.value.reason == reason, name
        assert message == f"{named[name]}: {reason}" and "\n" not in message, name
    assert not store.exists()  # refused before the labeler opened its store
    if value in ("2", "abc"):  # the command lines say the same, on one line
        from helpers.cli import main

        assert main(["predict", str(path), "--window-seconds", value]) == 2
        assert capsys.readouterr().err.strip() == f"music-study predict: error: {path}: {reason}"
        out = tmp_path / "table.csv"
        assert main(["extract", str(path), "-o", str(out), "--segment-seconds", value]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"music-study extract: error: --segment-seconds: {reason}"
        assert not out.exists()


def test_the_window_length_rule():
    assert check_window_seconds("song.ogg", "30") == 30.0
    assert check_window_seconds("song.ogg", 3) == 3.0 and check_window_seconds("s", 600) == 600.0
    with pytest.raises(InputError, match=r"^song.ogg: window length 2 s is outside 3-600 s$"):
        check_window_seconds("song.ogg", "2")
    with pytest.raises(InputError, match=r"^song.ogg: window length 'abc' is not a number$"):
        check_window_seconds("song.ogg", "abc")
    with pytest.raises(InputError, match=r"window length inf is not a finite number"):
        check_window_seconds("song.ogg", float("inf"))
    assert [min_window_seconds(w) for w in (3.0, 4.1, 10.0, 30.0, 600.0)] == [3.0, 4.1, 10.0,
                                                                             10.0, 10.0]
    assert min_window_seconds(30.0, 4.0) == 4.0  # an explicit minimum replaces the rule
    # the short-file clause: only a file shorter than the minimum falls to what features need
    assert min_window_seconds(30.0, file_seconds=10.0) == 10.0
    assert min_window_seconds(30.0, file_seconds=9.9, shortest=1.0) == 1.0
    assert min_window_seconds(3.0, file_seconds=2.0, shortest=3.0) == 3.0


def _synthetic(path, parts):
    """Write (seconds, kind) parts, kind 'tone' or 'silence'."""
    pieces = []
    for seconds, kind in parts:
        t = np.arange(int(round(seconds * SR))) / SR
        pieces.append(0.3 * np.sin(2 * np.pi * 330 * t) if kind == "tone" else np.zeros(t.size))
    sf.write(path, np.concatenate(pieces).astype(np.float32), SR, subtype="FLOAT")
    return path


def test_window_features_table_notes_and_options(tmp_path, monkeypatch):
    path = _synthetic(tmp_path / "gaps.wav", [(3, "tone"), (3, "silence"), (3, "tone"),
                                              (0.5, "tone")])
    probes = []
    probe = decode.probe_audio  # every probe goes through the decode module's name
    monkeypatch.setattr(decode, "probe_audio", lambda *a, **k: probes.append(a[0]) or probe(*a, **k))
    steps = []
    table = window_features(path, 3.0, progress=lambda k, n: steps.append((k, n)))
    assert len(probes) == 1  # checked and decoded on one probe
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert list(table.columns) == ["start", "end", "note", "used", *FEATURE_COLUMNS]
    assert table["note"].tolist() == ["", "silent", "", "short"]
    assert table["used"].tolist() == [True, False, True, False]
    described = table[list(FEATURE_COLUMNS)].notna().all(axis=1)
    assert described.tolist() == [True, False, True, False]
    # the notes asked for are described too, and still not used
    both = window_features(path, 3.0, describe_notes=("silent", "short"))
    assert both[list(FEATURE_COLUMNS)].notna().all(axis=1).tolist() == [True, True, True, False]
    assert both["used"].tolist() == [True, False, True, False]  # 0.5 s: below the features' 1 s
    pd.testing.assert_frame_equal(both.loc[[0, 2]], table.loc[[0, 2]])
    with pytest.raises(ValueError, match="describe_notes"):
        window_features(path, 3.0, describe_notes=("non-finite",))
    # max_windows counts usable windows; skip_starts are counted, not described nor returned
    first = window_features(path, 3.0, max_windows=1)
    assert first["start"].tolist() == [0.0]
    rest = window_features(path, 3.0, skip_starts=[0.0], max_windows=2)
    assert rest["start"].tolist() == [3.0, 6.0] and rest["used"].tolist() == [False, True]
    with pytest.raises(InputError, match="max_windows: 0 is not a positive number"):
        window_features(path, 3.0, max_windows=0)
    # times are positions in the file, offset included
    part = window_features(path, 3.0, offset=6.0, duration=3.5)
    assert _spans(part) == [(6.0, 9.0), (9.0, 9.5)]


def test_a_file_with_no_used_window_is_refused_with_the_shared_reason(tmp_path):
    quiet = _synthetic(tmp_path / "quiet.wav", [(7, "silence")])
    with pytest.raises(AudioError, match="the audio is silent"):
        window_features(quiet, 3.0)
    short = _synthetic(tmp_path / "short.wav", [(2, "tone")])
    with pytest.raises(AudioError, match=r"too short: 2.00 s of audio; segments need at least 3 s"):
        window_features(short, 3.0, needs="segments")


# --------------------------------------------------------------------------- feature sets


@pytest.fixture
def registry(monkeypatch):
    """A copy of the feature-set registry, so a test's registrations do not outlive it."""
    monkeypatch.setattr(sets, "_REGISTRY", dict(sets._REGISTRY))
    return sets._REGISTRY


def test_registered_sets_and_an_unknown_name(registry):
    assert features.feature_set_names() == ("extended", "gtzan", "gtzan+musicnn", "musicnn")
    gtzan = features.feature_set("gtzan")
    assert gtzan.columns == FEATURE_COLUMNS and gtzan.sample_rate == SR and gtzan.min_seconds == 1
    assert features.feature_columns("extended") == features.feature_set("extended").columns
    assert features.feature_set(gtzan) is gtzan
    for lookup in (features.feature_set, features.feature_columns):
        with pytest.raises(InputError) as exc_info:
            lookup("vggish")
        assert str(exc_info.value) == ("vggish: unknown feature set; choose one of extended, "
                                       "gtzan, gtzan+musicnn, musicnn")
    with pytest.raises(ValueError, match="already registered"):
        features.register_feature_set(FeatureSet("gtzan", ("a",), lambda y, sr: [0.0]))
    with pytest.raises(ValueError, match="names a column twice"):
        features.register_feature_set(FeatureSet("twice", ("a", "a"), lambda y, sr: [0.0, 0.0]))


def test_a_new_feature_set_is_one_registration_away(registry, tmp_path):
    """A learned set at 16 kHz with 3-s patches (stand-in numbers): registered, it is chosen by
    name by the window table, the batch and whole-file extraction, with its own rate."""
    from helpers.features.batch import extract_table

    rates = []

    def patches(y, sr):
        rates.append((sr, len(y)))
        n = len(y) // (3 * sr)  # whole 3-s patches, as a patch model would see them
        blocks = y[: n * 3 * sr].reshape(n, -1)
        return np.array([n, float(np.abs(blocks).mean())])

    spec = features.register_feature_set(
        FeatureSet("patches", ("patches", "level"), patches, sample_rate=16000, min_seconds=3.0))
    assert features.feature_set("patches") is spec
    assert "patches" in str(pytest.raises(InputError, features.feature_set, "fancy").value)
    path = _synthetic(tmp_path / "tone.wav", [(7, "tone")])
    table = window_features(path, 6.0, feature_set="patches")
    assert list(table.columns) == ["start", "end", "note", "used", "patches", "level"]
    assert table["used"].tolist() == [True, False]  # the 1-s tail is below min(10 s, 6 s)
    assert table["patches"].iloc[0] == 2 and rates == [(16000, 6 * 16000)]
    segments = extract_table([path], segment_seconds=3, feature_set="patches", cache=False,
                             progress=False)
    assert segments.table["patches"].tolist() == [1, 1]
    whole = extract_table([path], feature_set="patches", cache=False, progress=False)
    assert whole.table["patches"].tolist() == [2]
    assert features.extract_file(path, feature_set="patches")["level"] == pytest.approx(
        0.3 * 2 / np.pi, rel=1e-2)  # the mean |sin| of the tone, at 16 kHz
    with pytest.raises(InputError, match="not one of the GTZAN table's sets"):
        features.extract_signal(np.zeros(SR, dtype=np.float32), feature_set="patches")


def test_feature_set_describe_checks_what_the_extractor_gives():
    y = np.full(SR, 0.5, dtype=np.float32)
    as_mapping = FeatureSet("m", ("a", "b"), lambda y, sr: {"b": 2, "a": 1, "extra": 3})
    assert as_mapping.describe(y, SR) == {"a": 1.0, "b": 2.0}
    with pytest.raises(ValueError, match="gave no b"):
        FeatureSet("m", ("a", "b"), lambda y, sr: {"a": 1}).describe(y, SR)
    with pytest.raises(ValueError, match="gave 3 values for 2 columns"):
        FeatureSet("v", ("a", "b"), lambda y, sr: [1, 2, 3]).describe(y, SR)
    with pytest.raises(ValueError, match="defined at 16000 Hz"):
        FeatureSet("r", ("a",), lambda y, sr: [1], sample_rate=16000).describe(y, SR)

"""helpers.audio: decoding (soundfile and ffmpeg), resampling like librosa, windowing policy."""

import subprocess

import numpy as np
import pytest
import soundfile as sf

from helpers import audio
from helpers.audio import decode
from helpers.errors import AudioError

SR = 22050


def _tone(seconds, sr=SR, freq=440.0, channels=1, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        y = np.stack([y * (c + 1) / channels for c in range(channels)], axis=1)
    return y.astype(np.float32)


def test_iter_windows_yields_every_window_and_one_last_partial_window():
    y = np.arange(int(70 * SR), dtype=np.float32)
    windows = list(audio.iter_windows(y, window_seconds=30.0))
    assert [(w.start, w.end) for w in windows] == [(0.0, 30.0), (30.0, 60.0), (60.0, 70.0)]
    assert windows[-1].duration == pytest.approx(10.0)
    assert np.array_equal(np.concatenate([w.samples for w in windows]), y)


def test_overlapping_windows_stop_at_the_first_window_that_reaches_the_end():
    y = np.zeros(100, dtype=np.float32)
    spans = [(w.start, w.end) for w in audio.iter_windows(y, sr=10, window_seconds=3, hop_seconds=1)]
    assert spans[0] == (0.0, 3.0) and spans[-1] == (7.0, 10.0) and len(spans) == 8
    # a signal shorter than one window is one partial window; an empty one yields nothing
    assert [(w.start, w.end) for w in audio.iter_windows(y[:15], sr=10, window_seconds=3)] == [(0.0, 1.5)]
    assert list(audio.iter_windows(y[:0], sr=10)) == []
    with pytest.raises(ValueError):
        next(audio.iter_windows(y, window_seconds=0))


def test_window_is_frozen():
    window = next(audio.iter_windows(np.zeros(10), sr=10, window_seconds=1))
    with pytest.raises(AttributeError):
        window.start = 3.0


def test_is_silent_uses_rms_level():
    assert audio.is_silent(np.zeros(1000))
    assert audio.is_silent(np.full(1000, 1e-4))  # -80 dBFS
    assert not audio.is_silent(np.full(1000, 1e-2))  # -40 dBFS
    assert audio.is_silent(np.full(1000, 1e-2), threshold_db=-30.0)
    assert audio.is_silent(np.zeros(0))


def test_load_matches_librosa_load_for_a_gtzan_clip(gtzan_audio_dir):
    import librosa

    clip = gtzan_audio_dir / "blues" / "blues.00000.wav"
    expected, _ = librosa.load(clip, sr=SR, offset=3.5, duration=10.0)
    y = audio.load_audio(clip, offset=3.5, duration=10.0)
    assert y.dtype == np.float32 and np.array_equal(y, expected)


def test_stereo_48k_is_mixed_and_resampled_exactly_like_librosa(tmp_path):
    import librosa

    path = tmp_path / "stereo48k.wav"
    sf.write(path, _tone(2.0, sr=48000, channels=2), 48000)
    expected, _ = librosa.load(path, sr=SR)
    y = audio.load_audio(path)
    assert len(y) == len(expected) == int(np.ceil(2.0 * SR))
    assert np.array_equal(y, expected)
    windows = list(audio.iter_file_windows(path, window_seconds=0.5, hop_seconds=0.3))
    assert np.array_equal(windows[1].samples, expected[int(0.3 * SR):int(0.3 * SR) + int(0.5 * SR)])


def test_file_windows_equal_windows_of_the_loaded_signal(shipped_songs):
    song = shipped_songs[0]
    y = audio.load_audio(song, offset=5.0, duration=20.0)
    for window_seconds, hop in [(3.0, None), (7.0, 11.0), (5.0, 2.5)]:
        expected = list(audio.iter_windows(y, window_seconds=window_seconds, hop_seconds=hop))
        streamed = list(audio.iter_file_windows(song, window_seconds=window_seconds,
                                                hop_seconds=hop, offset=5.0, duration=20.0))
        assert [(w.start, w.end) for w in streamed] == [(w.start, w.end) for w in expected]
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(streamed, expected, strict=True))


@pytest.fixture(scope="module")
def m4a_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m4a") / "tone.m4a"
    wav = path.with_suffix(".wav")
    sf.write(wav, _tone(3.0, sr=44100, channels=2), 44100)
    subprocess.run([audio.ffmpeg_executable(), "-v", "error", "-y", "-i", str(wav), str(path)],
                   check=True)
    return path


def test_m4a_goes_through_the_shipped_ffmpeg(m4a_file):
    info = audio.probe_audio(m4a_file)
    assert info.decoder == "ffmpeg" and info.samplerate == 44100 and info.channels == 2
    y = audio.load_audio(m4a_file)
    assert abs(len(y) - 3 * SR) < 0.1 * SR
    # the left/right average of a 440 Hz tone at 0.25 and 0.5: peak about 0.375
    assert 0.3 < np.abs(y[SR // 2:SR]).max() < 0.45
    part = audio.load_audio(m4a_file, offset=1.0, duration=1.0)
    assert len(part) == SR
    assert [w.start for w in audio.iter_file_windows(m4a_file, window_seconds=1.0)][:3] == [0, 1, 2]


def test_load_refuses_more_than_fits_in_one_array(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(3.0), SR)
    monkeypatch.setattr(decode, "MAX_LOAD_SECONDS", 2.0)  # load_audio reads it
    with pytest.raises(AudioError, match="long.wav.*too long"):
        audio.load_audio(path)
    assert len(audio.load_audio(path, duration=1.5)) == int(1.5 * SR)


def test_libsndfile_failure_on_first_block_falls_back_to_ffmpeg(tmp_path, monkeypatch):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(1.0, sr=44100, channels=2), 44100)
    expected = audio.load_audio(path)

    def broken(*args, **kwargs):
        raise RuntimeError("libsndfile gave up")
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(decode, "_soundfile_blocks", broken)
    y = audio.load_audio(path)
    assert len(y) == len(expected) and np.max(np.abs(y - expected)) < 1e-4


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_mix_to_mono_equals_numpy_mean_exactly(channels):
    block = np.random.default_rng(channels).standard_normal((5000, channels)).astype(np.float32)
    mono = decode.mix_to_mono(block)
    assert mono.dtype == np.float32 and mono.flags.owndata
    np.testing.assert_array_equal(mono, block.mean(axis=1, dtype=np.float32))


# --------------------------------------------------------------------------- validation


def test_audio_and_features_share_constants_without_importing_each_other():
    import sys as _sys

    code = ("import sys, helpers.audio; "
            "assert 'helpers.features' not in sys.modules, 'audio imports features'; "
            "import helpers.features, helpers.constants as c; "
            "import helpers.audio.decode as d; "
            "assert helpers.features.SAMPLE_RATE == d.SAMPLE_RATE == c.SAMPLE_RATE")
    run = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_probe_duration_reads_the_header_only(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(2.5), SR)
    assert audio.probe_duration(path) == pytest.approx(2.5)
    ogg = tmp_path / "tone.ogg"
    sf.write(ogg, _tone(2.0), SR, format="OGG", subtype="VORBIS")
    assert audio.probe_duration(ogg) == pytest.approx(2.0, abs=0.01)
    with pytest.raises(AudioError, match="file not found"):
        audio.probe_duration(tmp_path / "nope.wav")


def test_probe_duration_asks_ffmpeg_for_what_libsndfile_cannot_read(tmp_path):
    wav = tmp_path / "tone.wav"
    sf.write(wav, _tone(3.0), SR)
    m4a = tmp_path / "tone.m4a"
    run = subprocess.run([audio.ffmpeg_executable(), "-v", "error", "-y", "-i", str(wav), "-c:a",
                          "aac", str(m4a)], capture_output=True)
    if run.returncode != 0:
        pytest.skip("this ffmpeg has no AAC encoder")
    assert audio.probe_duration(m4a) == pytest.approx(3.0, abs=0.1)


def test_check_audio_refuses_by_the_header_before_decoding(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(4.0), SR)
    assert audio.check_audio(path, min_seconds=3.0) == pytest.approx(4.0)
    with pytest.raises(AudioError, match="too short: 4.00 s of audio; predictions need at least 10 s"):
        audio.check_audio(path, min_seconds=10.0)
    data = path.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        audio.check_audio(tmp_path / "cut.wav")
    # libsndfile states what the cut file holds
    assert audio.check_audio(tmp_path / "cut.wav", allow_truncated=True) == pytest.approx(2.0, abs=0.01)


def test_check_decoded_length_allows_a_little_slack():
    audio.check_decoded_length("x.mp3", 100.0, 99.6)  # decoder padding and rounding
    audio.check_decoded_length("x.mp3", None, 3.0)  # nothing stated, nothing to compare
    audio.check_decoded_length("x.mp3", 100.0, 30.0, offset=10.0, duration=30.0)
    with pytest.raises(AudioError, match="states 100.0 s but only 31.0 s could be decoded"):
        audio.check_decoded_length("x.mp3", 100.0, 31.0)


def test_checked_windows_carry_notes_and_a_file_without_a_usable_window_is_refused(tmp_path):
    y = np.concatenate([_tone(4.0), np.zeros(4 * SR, np.float32), _tone(2.0)])
    y[SR] = np.nan
    path = tmp_path / "mixed.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    notes = []
    with pytest.raises(AudioError) as exc_info:  # after the last window: none was usable
        for window in audio.iter_checked_windows(path, window_seconds=4.0, min_window_seconds=3.0):
            notes.append(window.note)
    assert notes == ["non-finite", "silent", "short"]
    message = str(exc_info.value)
    assert message.startswith(str(path)) and "no usable window" in message
    assert "1 holds NaN or infinite samples" in message and "1 silent" in message


def test_no_usable_window_reason_names_one_reason_when_there_is_one():
    assert audio.no_usable_window_reason(["silent", "silent", "short"], 70, 10) == \
        audio.silent_reason()
    assert audio.no_usable_window_reason(["non-finite", "short"], 40, 10) == \
        audio.NON_FINITE_REASON
    assert audio.no_usable_window_reason(["short"], 4, 10).startswith("too short: 4.00 s")
    assert audio.no_usable_window_reason([], 0, 10) == "no audio samples"


@pytest.mark.parametrize("samples, note", [
    (np.array([0.1, np.nan] * SR, np.float32), "non-finite"),  # before "short": checked first
    (_tone(0.5), "short"),
    (np.zeros(2 * SR, np.float32), "silent"),
    (_tone(2.0), ""),
])
def test_signal_checks_share_one_rule_set(samples, note):
    from helpers.features.gtzan import _check_signal

    assert audio.signal_note(samples, len(samples), SR) == note
    window = audio.Window(0.0, len(samples) / SR, samples)
    assert audio.window_note(window, min_window_seconds=1.0) == note
    reason = audio.signal_problem(samples, SR, 1.0)
    assert reason == {"non-finite": audio.NON_FINITE_REASON,
                      "short": "too short: 0.50 s of audio; features need at least 1 s",
                      "silent": audio.silent_reason(), "": None}[note]
    if note in ("non-finite", "short"):  # the features' own check leaves silence to its callers
        with pytest.raises(AudioError) as exc_info:
            _check_signal(samples, SR)
        assert str(exc_info.value) == f"signal: {reason}"
    else:
        assert len(_check_signal(samples, SR)) == len(samples)


def test_names_a_file_is_anything_at_the_path_but_a_folder(tmp_path):
    import os

    (tmp_path / "song.wav").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe.wav")
    os.symlink(tmp_path / "gone.wav", tmp_path / "dangling.wav")
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "folder", tmp_path / "to_folder")
    named = {p.name for p in tmp_path.iterdir() if audio.names_a_file(p)}
    assert named == {"song.wav", "pipe.wav", "dangling.wav", "a", "b"}
    assert not audio.names_a_file(tmp_path / "missing.wav")
    from helpers.recommend.liked import liked_from_items

    kinds = [s.kind for s in liked_from_items(
        str(tmp_path / name) for name in ("song.wav", "pipe.wav", "folder", "missing.wav"))]
    assert kinds == ["path", "path", "id", "id"]


def _count_probes(monkeypatch):
    """Count calls of audio.probe_audio (every header probe goes through it)."""
    calls = []
    probe = decode.probe_audio  # every probe goes through the decode module's name

    def counting(*args, **kwargs):
        calls.append(args[0])
        return probe(*args, **kwargs)

    monkeypatch.setattr(decode, "probe_audio", counting)
    return calls


def test_checked_windows_probe_the_file_once(tmp_path, monkeypatch):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(7.0), SR)
    calls = _count_probes(monkeypatch)
    windows = list(audio.iter_checked_windows(path, window_seconds=3.0))
    assert len(windows) == 3
    assert len(calls) == 1  # the check's probe serves the decoder too


def test_check_audio_path_words_a_missing_file_as_the_caller_asks(tmp_path):
    import os

    from helpers.errors import InputError

    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError) as exc_info:
        audio.check_audio_path(missing, "song", not_found="file not found (and elsewhere)")
    assert str(exc_info.value) == "song: file not found (and elsewhere)"
    with pytest.raises(InputError) as exc_info:
        audio.check_audio_path(missing, not_found=InputError("/abs/missing.wav", "gone"))
    assert str(exc_info.value) == "/abs/missing.wav: gone"
    os.symlink(tmp_path / "gone.wav", tmp_path / "dangling.wav")  # keeps its own reason
    with pytest.raises(AudioError, match="a symbolic link to a missing file"):
        audio.check_audio_path(tmp_path / "dangling.wav", not_found="other")
    (tmp_path / "folder").mkdir()
    with pytest.raises(AudioError, match="is a folder"):
        audio.check_audio_path(tmp_path / "folder", not_found="other")

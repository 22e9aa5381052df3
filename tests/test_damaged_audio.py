"""Decoders that always end and read only the file they are given.

The damaged-file corpus (:mod:`damaged_audio`): every variant of every container through the
decode entry point, a sample of them through every entry point (predict, extract, the labeler,
a web job), a short hypothesis run, and the attacks that used to get through: an AAC file with
its middle overwritten (ffmpeg blocked on its unread error pipe: a hang), a DASH manifest named
``.wav`` (ffmpeg opened a file elsewhere on the server) and decoder messages shown to a user.
``tools/decode_fuzz.py`` is the long run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from damaged_audio import (
    CONTAINERS,
    NOT_AUDIO,
    SR,
    encode_song,
    known_reason,
    make_damaged_corpus,
    reason_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import audio
from helpers.audio import decode
from helpers.errors import AudioError, InputError
from helpers.paths import project_root

#: Parameters of the decode entry point as whole-song prediction uses it.
PREDICT_WINDOWS = dict(window_seconds=30.0, min_window_seconds=10.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_damaged_corpus(tmp_path_factory.mktemp("damaged"))


def _decode_outcome(path, **windows) -> str | None:
    """None when the decode entry point gives windows, else its reason; anything but an
    InputError propagates (a traceback is a failure)."""
    try:
        for _window in audio.iter_checked_windows(path, **(windows or PREDICT_WINDOWS)):
            pass
    except InputError as exc:
        return exc.reason
    return None


def _decoder_children() -> list[psutil.Process]:
    """This process's decoder processes still running (other tests' workers are not counted)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in process.name() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def test_the_corpus_has_20_variants_of_every_container(corpus):
    per_container = {}
    for variant in corpus:
        per_container.setdefault(variant.container, []).append(variant)
    assert sorted(per_container) == sorted(CONTAINERS), "a container could not be written"
    for container, variants in per_container.items():
        assert len(variants) >= 20, container
        assert sum(v.reference for v in variants) >= 3, container
        assert len({v.kind for v in variants}) == len(variants)


def test_every_variant_ends_with_windows_or_a_known_sentence(corpus):
    unknown, decoded_references = [], []
    for variant in corpus:
        reason = _decode_outcome(variant.path)
        if reason is not None and not known_reason(reason):
            unknown.append(f"{variant.path.name}: {reason}")
        if variant.reference and reason != NOT_AUDIO:
            decoded_references.append(f"{variant.path.name}: {reason}")
    assert unknown == [], "sentences that are not the decoders' own"
    assert decoded_references == [], "a file naming another file was not refused as not audio"
    assert _decoder_children() == [], "a decoder process was left behind"


def test_3_s_segments_of_every_variant_end_too(corpus):
    """The segment table's windows (extract --segment-seconds 3) on the same files."""
    segments = dict(window_seconds=3.0, min_window_seconds=1.0)
    unknown = [f"{v.path.name}: {r}" for v in corpus
               if (r := _decode_outcome(v.path, **segments)) is not None and not known_reason(r)]
    assert unknown == []


# --------------------------------------------------------------------------- entry points

#: A sample for the suite (the long run takes every variant): the attack's kind, the one that
#: most often decodes, and a reference, for every container.
SAMPLE_KINDS = ("middle_random_33pct", "bitflip_16", "ref_dash_manifest")


@pytest.fixture(scope="module")
def sample(corpus):
    return [v for v in corpus if v.kind in SAMPLE_KINDS]


def _check(variant, outcome: str | None, wrong: list) -> None:
    if outcome is None:
        if variant.reference:
            wrong.append(f"{variant.path.name}: a reference was accepted")
        return
    reason = reason_for(outcome, variant.path.name)
    if reason is None:
        wrong.append(f"{variant.path.name}: the message does not name the file: {outcome!r}")
        return
    if not known_reason(reason):
        wrong.append(f"{variant.path.name}: {outcome!r}")
    elif variant.reference and reason != NOT_AUDIO:
        wrong.append(f"{variant.path.name}: {outcome!r} (a reference must be not audio)")


def _cli_outcome(args, capfd) -> str | None:
    from helpers.cli import main

    status = main(args)
    out, err = capfd.readouterr()
    if status == 0:
        return None
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0].removeprefix(f"music-study {args[0]}: error: ")


def test_predict_and_extract_commands_on_the_sample(sample, capfd, tmp_path, model):
    wrong = []
    for variant in sample:
        _check(variant, _cli_outcome(["predict", str(variant.path), "--json"], capfd), wrong)
        _check(variant, _cli_outcome(["extract", str(variant.path), "-o",
                                      str(tmp_path / "t.csv"), "--no-cache"], capfd), wrong)
    assert wrong == []
    assert _decoder_children() == []


def test_the_labeler_on_the_sample(sample, tmp_path, model):
    from helpers.labeling.widget import Labeler

    wrong = []
    for index, variant in enumerate(sample):
        try:
            Labeler([variant.path], tmp_path / f"labels{index}.sqlite", model=model, audio=False,
                    background=False)
            outcome = None
        except InputError as exc:
            outcome = str(exc)
        _check(variant, outcome, wrong)
    assert wrong == []


def _web_client(tmp_path, model):
    from helpers.web.app import create_app

    app = create_app(store_path=tmp_path / "labels.sqlite", model=model,
                     upload_dir=tmp_path / "uploads", window_seconds=6.0,
                     access_key="damaged-key-0123456789",
                     fetch_options={"download_dir": tmp_path / "downloads"})
    app.config["TESTING"] = True
    return app, {"Authorization": "Bearer damaged-key-0123456789"}


def _web_outcome(client, bearer, path: Path, name: str | None = None,
                 wait_seconds: float = 120.0) -> str | None:
    """Upload *path* through the JSON API; None when its job ends with a prediction, else the
    page's sentence (the upload's name is added, as the other outcomes name the file)."""
    name = name or path.name
    with open(path, "rb") as handle:
        response = client.post("/api/predict", headers=bearer, data={"file": (handle, name)},
                               content_type="multipart/form-data")
    if response.status_code == 400:
        return response.get_json()["error"]
    assert response.status_code == 202, response.get_data(as_text=True)
    status_url = response.get_json()["status_url"]
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        job = client.get(status_url, headers=bearer).get_json()
        if job["status"] in ("done", "failed"):
            return job["error"] if job["status"] == "failed" else None
        time.sleep(0.05)
    raise AssertionError(f"{name}: the web job did not end within {wait_seconds:g} s")


def test_web_jobs_on_the_sample(sample, tmp_path, model):
    app, bearer = _web_client(tmp_path, model)
    client = app.test_client()
    wrong = []
    try:
        for variant in sample:
            _check(variant, _web_outcome(client, bearer, variant.path), wrong)
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    assert wrong == []


# --------------------------------------------------------------------------- the attacks

@pytest.fixture(scope="module")
def overwritten_m4a(tmp_path_factory, root):
    """40 s of a shipped song as AAC (about 640 KiB) with its middle third overwritten by
    random bytes: ffmpeg writes an error per damaged frame, and used to block on that pipe."""
    folder = tmp_path_factory.mktemp("m4a")
    song = folder / "song.m4a"
    run = subprocess.run([decode.ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error",
                          "-y", "-i", str(root / "data" / "music" / "singularity_coherence.ogg"),
                          "-t", "40", "-c:a", "aac", "-b:a", "128k", str(song)],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = bytearray(song.read_bytes())
    third = len(data) // 6
    middle = len(data) // 2
    data[middle - third:middle + third] = np.random.default_rng(1).integers(
        0, 256, 2 * third, dtype=np.uint8).tobytes()
    damaged = folder / "overwritten.m4a"
    damaged.write_bytes(bytes(data))
    return damaged


def _fresh(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_an_overwritten_m4a_ends_in_predict_and_extract(overwritten_m4a, tmp_path):
    for args in (["predict", str(overwritten_m4a)],
                 ["extract", str(overwritten_m4a), "-o", str(tmp_path / "t.csv"), "--no-cache"]):
        run = _fresh(*args)  # used to hang: killed after 60 s
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, run.stderr
        assert overwritten_m4a.name in lines[0]
        assert known_reason(lines[0].split(f"{overwritten_m4a}: ", 1)[1]), lines[0]


def test_two_overwritten_m4a_uploads_do_not_stop_the_page(overwritten_m4a, tmp_path, model,
                                                          root):
    app, bearer = _web_client(tmp_path, model)
    client = app.test_client()
    try:
        for name in ("first.m4a", "second.m4a"):
            outcome = _web_outcome(client, bearer, overwritten_m4a, name)
            assert outcome is not None and outcome.startswith(name + ": ")
            assert known_reason(outcome.split(": ", 1)[1]), outcome
        fine = root / "data" / "music" / "openmsx_be_sharp_render.ogg"
        assert _web_outcome(client, bearer, fine) is None, "analysis stopped after the attack"
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


def _dash_manifest(path: Path, base_url: str) -> Path:
    path.write_text(
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT30S" minBufferTime="PT1S" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n<Period><AdaptationSet '
        'mimeType="audio/mp4"><Representation id="a" bandwidth="128000">\n'
        f"<BaseURL>{base_url}</BaseURL>\n</Representation></AdaptationSet></Period></MPD>\n")
    return path


def test_a_dash_manifest_named_wav_is_not_audio_whether_its_target_exists_or_not(
        overwritten_m4a, tmp_path, model):
    intact = encode_song(tmp_path / "songs")["m4a"]  # a file elsewhere on the server
    existing = _dash_manifest(tmp_path / "existing.wav", str(intact.resolve()))
    missing = _dash_manifest(tmp_path / "missing.wav", str(tmp_path / "no_such_file.m4a"))
    assert len(existing.read_bytes()) < 600
    for manifest in (existing, missing):
        run = _fresh("predict", str(manifest), "--json")
        assert run.returncode == 2 and run.stdout == "", run.stdout
        assert run.stderr.strip() == f"music-study predict: error: {manifest}: {NOT_AUDIO}"
    app, bearer = _web_client(tmp_path, model)
    client = app.test_client()
    try:
        said = {_web_outcome(client, bearer, m, "song.wav") for m in (existing, missing)}
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    assert said == {f"song.wav: {NOT_AUDIO}"}, "the page tells whether a server file exists"


def test_a_dash_manifest_served_by_a_url_is_never_decoded(tmp_path, model):
    from conftest import serve_directory

    site = tmp_path / "site"
    site.mkdir()
    intact = encode_song(tmp_path / "songs")["m4a"]
    _dash_manifest(site / "song.wav", str(intact.resolve()))
    app, bearer = _web_client(tmp_path, model)
    client = app.test_client()
    try:
        with serve_directory(site) as server:
            response = client.post("/api/predict", headers=bearer,
                                   json={"url": server.base + "/song.wav"})
            assert response.status_code == 202
            status_url = response.get_json()["status_url"]
            for _ in range(1200):
                job = client.get(status_url, headers=bearer).get_json()
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.05)
    finally:
        app.extensions["music_study"]["jobs"].shutdown()
    assert job["status"] == "failed", job


def test_decoder_messages_never_reach_a_user(tmp_path, model, capfd):
    """A corrupt flac (libsndfile: "flac decoder lost sync") and a corrupt m4a (ffmpeg: lines
    with heap addresses) give the decoders' own sentence on the command line and the page."""
    songs = encode_song(tmp_path / "songs")
    corrupt = {}
    for container in ("flac", "m4a"):
        data = bytearray(songs[container].read_bytes())
        middle = len(data) // 2
        data[middle:middle + len(data) // 5] = np.random.default_rng(5).integers(
            0, 256, len(data) // 5, dtype=np.uint8).tobytes()
        corrupt[container] = tmp_path / f"corrupt.{songs[container].suffix[1:]}"
        corrupt[container].write_bytes(bytes(data))
    app, bearer = _web_client(tmp_path, model)
    client = app.test_client()
    try:
        for path in corrupt.values():
            said = [_cli_outcome(["predict", str(path)], capfd), _web_outcome(client, bearer, path)]
            for outcome in said:
                assert outcome is not None, path.name
                reason = outcome.split(": ", 1)[1]
                assert known_reason(reason), outcome
                for leak in ("Error", "0x", "@", "[", "sync", "aist"):
                    assert leak not in reason, outcome
    finally:
        app.extensions["music_study"]["jobs"].shutdown()


# --------------------------------------------------------------------------- deadlines

@pytest.fixture()
def hanging_ffmpeg(tmp_path, monkeypatch):
    """An "ffmpeg" that starts a child, writes both pids to a file, then never finishes."""
    pids = tmp_path / "pids"
    script = tmp_path / "ffmpeg"
    script.write_text(f"#!/bin/sh\nsleep 1000 &\necho $$ $! > {pids}\nwait\n")
    script.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(script))
    return pids


def _alive(pid: int, patience: float = 10.0) -> bool:
    """True when *pid* still runs after *patience* seconds (a killed process that is not our
    child dies a moment after the signal, and is reaped by someone else)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            process = psutil.Process(pid)
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


def test_a_decoder_past_its_deadline_is_killed_with_its_process_group(hanging_ffmpeg, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(decode, "DECODE_DEADLINE_BASE", 1.0)
    monkeypatch.setattr(decode, "DECODE_SECONDS_PER_AUDIO_SECOND", 0.0)
    info = decode.AudioInfo(44100, 2, 30.0, "ffmpeg")  # as a probe would report an m4a
    song = tmp_path / "song.m4a"
    song.write_bytes(b"\0" * 1000)
    with pytest.raises(AudioError) as caught:
        decode.load_audio(song, info=info)
    assert caught.value.reason == decode.deadline_reason(1.0)
    leader, child = map(int, hanging_ffmpeg.read_text().split())
    assert not _alive(leader) and not _alive(child), "the decoder's group outlived its deadline"


def test_a_probe_past_its_deadline_is_killed(hanging_ffmpeg, tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "PROBE_DEADLINE", 1.0)
    song = tmp_path / "song.m4a"
    song.write_bytes(b"not something libsndfile reads" * 10)
    with pytest.raises(AudioError) as caught:
        decode.probe_audio(song)
    assert caught.value.reason == decode.deadline_reason(1.0)
    assert all(not _alive(int(pid)) for pid in hanging_ffmpeg.read_text().split())


def test_a_consumer_that_stops_early_stops_the_decoder(tmp_path):
    songs = encode_song(tmp_path / "songs")
    blocks = decode.iter_decoded_blocks(songs["m4a"])
    next(blocks)
    decoders = [p for p in psutil.Process().children() if "ffmpeg" in p.name()]
    assert decoders, "the m4a should be decoded by an ffmpeg process"
    blocks.close()
    assert all(not _alive(p.pid) for p in decoders)


def test_the_deadline_follows_the_stated_length_with_a_cap():
    assert decode.decode_deadline(0.0) == decode.DECODE_DEADLINE_BASE
    assert decode.decode_deadline(60.0) < decode.decode_deadline(240.0) < decode.DECODE_DEADLINE_CAP
    assert decode.decode_deadline(36_000.0) == decode.DECODE_DEADLINE_CAP
    assert decode.decode_deadline(None) == decode.DECODE_DEADLINE_CAP
    assert decode.decode_deadline(float("nan")) == decode.DECODE_DEADLINE_CAP


def test_error_output_is_kept_bounded():
    sink = decode._BoundedText(limit=10)
    for chunk in (b"0123456789", b"abcdefghij" * 100, b"THE END"):
        sink.add(chunk)
    text = sink.text()
    assert text.startswith("0123456789") and text.endswith("hijTHE END") and "[...]" in text
    assert len(text) < 40


def test_log_lines_escape_control_characters_and_are_capped():
    assert decode.loggable("a\nb\rc\x1b[0m") == "a\\nb\\rc\\x1b[0m"
    assert len(decode.loggable("x" * 10_000)) == 303


def test_a_stated_sample_rate_out_of_range_is_refused(tmp_path):
    import soundfile as sf

    path = tmp_path / "one_hertz.wav"
    sf.write(path, np.zeros(SR, np.float32), SR)
    data = bytearray(path.read_bytes())
    data[24:28] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="sample rate of 1 Hz, outside 1000-768000 Hz"):
        decode.probe_audio(path)


def test_text_named_au_is_not_audio(tmp_path):
    """libsndfile reads a headerless file named .au as u-law noise; no header, no audio."""
    path = tmp_path / "notes.au"
    path.write_text("these are not the droids you are looking for\n" * 500)
    with pytest.raises(AudioError, match=NOT_AUDIO):
        decode.probe_audio(path)


# --------------------------------------------------------------------------- fuzzing

@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    songs = encode_song(tmp_path_factory.mktemp("seeds"))
    return {name: path.read_bytes() for name, path in sorted(songs.items())}


@st.composite
def _mutated(draw, seeds):
    container = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[container])
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return container, bytes(data)


def test_fuzzing_the_decode_entry_point(seeds, tmp_path_factory):
    """A short, reproducible run (the long one: tools/decode_fuzz.py --minutes N)."""
    folder = tmp_path_factory.mktemp("fuzz")
    suffix = {name: CONTAINERS[name][0] for name in seeds}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_mutated(seeds))
    def run(case):
        container, data = case
        path = folder / f"fuzz.{suffix[container]}"
        path.write_bytes(data)
        reason = _decode_outcome(path, window_seconds=3.0, min_window_seconds=1.0)
        assert reason is None or known_reason(reason), reason

    run()
    assert _decoder_children() == []


def test_fuzz_tool_reports_its_counts(tmp_path):
    """The long-run script works end to end on a tiny budget (its counts are the note's)."""
    script = project_root() / "tools" / "decode_fuzz.py"
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))
    run = subprocess.run([sys.executable, str(script), "--containers", "wav",
                          "--entry-points", "decode", "--fuzz-examples", "10",
                          "--json", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["hangs"] == 0 and report["tracebacks"] == 0 and report["unknown"] == 0
    assert report["files_per_container"]["wav"] >= 20
    assert report["runs"] >= 20  # every wav variant (the other entry points: the tests above)


def test_killing_a_decoder_group_leaves_no_zombie(tmp_path):
    process = decode.DecoderProcess(["sleep", "100"], 5.0, "sleep")
    process.kill()
    with pytest.raises(ProcessLookupError):  # killed and reaped: no such process any more
        os.kill(process.pid, 0)

"""Every audio entry point against the same bad-input corpus: same verdict, same reason.

The corpus (:mod:`bad_audio_corpus`) is written once per module. Each test runs one entry point
over every case and collects the mismatches, so a failure lists every case it got wrong. Entry
points that take folders (extract, the batch API, the labeler) search a folder instead of
refusing it, so the "folder" case is not theirs; the web page receives uploads, which are
always regular files, so the cases about the server's file system are not its.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from bad_audio_corpus import make_corpus

from helpers.errors import InputError
from helpers.paths import project_root

FOLDER_TAKERS_SKIP = {"folder"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("bad_audio"))


def _verdict(call) -> str | None:
    """None when *call* works, else its one-line error message."""
    try:
        call()
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message
        return message
    return None


def _mismatches(corpus, verdict_of, skip=()) -> list[str]:
    wrong = []
    for name, path, reason in corpus:
        if name in skip:
            continue
        got = verdict_of(path)
        if reason is None:
            if got is not None:
                wrong.append(f"{name}: should be accepted, got {got!r}")
        elif got is None or reason not in got:
            wrong.append(f"{name}: expected {reason!r}, got {got!r}")
        elif not any(str(name_) in got for name_ in (path, path.name, os.path.realpath(path))):
            wrong.append(f"{name}: the message does not name the file: {got!r}")
    return wrong


def test_the_corpus_covers_every_kind_of_bad_input(corpus):
    reasons = {reason for _, _, reason in corpus}
    for expected in ("file not found", "is a folder", "not a recognised audio format",
                     "truncated", "too short", "silent", "NaN or infinite samples", None):
        assert expected in reasons
    assert len({name for name, _, _ in corpus}) == len(corpus)


def test_features_extract_file(corpus):
    from helpers.features import extract_file

    assert _mismatches(corpus, lambda p: _verdict(lambda: extract_file(p))) == []


def test_batch_api(corpus):
    from helpers.features.batch import extract_table

    def verdict(path):
        def run():
            result = extract_table([path], cache=False, progress=False)
            if result.failures:
                raise InputError(result.failures[0].path, result.failures[0].reason)
        return _verdict(run)

    assert _mismatches(corpus, verdict, skip=FOLDER_TAKERS_SKIP) == []


def test_extract_command(corpus, tmp_path, capfd):
    from helpers.cli import main

    def verdict(path):
        status = main(["extract", str(path), "-o", str(tmp_path / "table.csv"), "--no-cache"])
        out, err = capfd.readouterr()
        lines = err.strip().splitlines()
        if status == 0:
            return None
        assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
        return lines[0]

    assert _mismatches(corpus, verdict, skip=FOLDER_TAKERS_SKIP) == []


def test_predict_song(corpus, model):
    from helpers.predict import predict_song

    assert _mismatches(corpus, lambda p: _verdict(lambda: predict_song(p, model=model))) == []


def _command_verdict(capfd, command: str, *options: str):
    """A verdict function running ``music-study COMMAND PATH --json OPTIONS`` in this process:
    None for a JSON document with a quiet stderr, else the one stderr line of exit 2."""
    from helpers.cli import main

    def verdict(path):
        status = main([command, str(path), "--json", *options])
        out, err = capfd.readouterr()
        if status == 0:
            json.loads(out)
            assert err.strip() == "", err
            return None
        lines = err.strip().splitlines()
        assert status == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
        return lines[0]

    return verdict


def test_predict_command(corpus, capfd, model):
    assert _mismatches(corpus, _command_verdict(capfd, "predict")) == []


def test_tags_command(corpus, capfd):
    assert _mismatches(corpus, _command_verdict(capfd, "tags", "--vocabulary", "mtt")) == []


def test_predict_command_in_a_fresh_process_keeps_decoder_chatter_off_stderr(corpus):
    chosen = {"first 30 % of an mp3", "fifo", "NaN and infinite samples", "6 channels at 96 kHz"}
    env = dict(os.environ, PYTHONPATH=str(project_root() / "src"))

    def verdict(path):
        run = subprocess.run([sys.executable, "-m", "helpers", "predict", str(path), "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
        if run.returncode == 0:
            assert run.stderr.strip() == "", run.stderr
            return None
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and run.stdout == "" and len(lines) == 1, run.stderr
        return lines[0]

    subset = [case for case in corpus if case.name in chosen]
    assert _mismatches(subset, verdict) == []


def test_recommend_with_an_audio_path(corpus):
    from helpers.recommend.liked import LikedSong
    from helpers.recommend.recommender import Library, resolve_liked

    library = Library.gtzan()

    def verdict(path):
        liked = [LikedSong(path.stem, kind="path", ref=str(path))]
        return _verdict(lambda: resolve_liked(liked, library))

    assert _mismatches(corpus, verdict) == []


def test_labeler_adding_the_file(corpus, tmp_path, model):
    from helpers.labeling.widget import Labeler

    def verdict(path):
        store = tmp_path / f"labels_{abs(hash(path.name))}.sqlite"
        return _verdict(lambda: Labeler([path], store, model=model, audio=False, background=False))

    assert _mismatches(corpus, verdict, skip=FOLDER_TAKERS_SKIP) == []


def test_labeler_extracting_in_the_background(corpus, tmp_path, model):
    """The default labeler extracts in the background: a bad file is named, with its reason,
    among the labeler's problems (its status line) instead of stopping the session."""
    from helpers.labeling.widget import Labeler

    fine = next(path for name, path, reason in corpus if reason is None)

    def verdict(path):
        store = tmp_path / f"labels_bg_{abs(hash(path.name))}.sqlite"
        try:  # a path that does not exist is refused before any extraction starts
            labeler = Labeler([fine, path], store, model=model, audio=False).wait(timeout=120)
        except InputError as exc:
            return str(exc)
        problems = [p for p in labeler.problems if fine.name not in p]
        return problems[0] if problems else None

    assert _mismatches(corpus, verdict, skip=FOLDER_TAKERS_SKIP) == []


#: Cases about the server's own file system: an upload always arrives as a regular file.
NOT_UPLOADABLE = {"missing", "folder", "fifo", "device", "symlink loop", "socket",
                  "permission denied"}


def test_web_page_upload(corpus, tmp_path, model):
    """The JSON API of the web page: refused at submission (400) or by the job (failed), with
    the corpus' reason and the upload's name; fine files end with a prediction."""
    import time

    from helpers.web.app import create_app

    key = "corpus-key-0123456789"
    app = create_app(store_path=tmp_path / "labels.sqlite", model=model,
                     upload_dir=tmp_path / "uploads", window_seconds=6.0, access_key=key,
                     fetch_options={"download_dir": tmp_path / "downloads"})
    app.config["TESTING"] = True
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {key}"}

    def verdict(path):
        with open(path, "rb") as handle:
            response = client.post("/api/predict", headers=bearer,
                                   data={"file": (handle, path.name)},
                                   content_type="multipart/form-data")
        if response.status_code == 400:
            return response.get_json()["error"]
        assert response.status_code == 202, response.get_data(as_text=True)
        status_url = response.get_json()["status_url"]
        for _ in range(600):  # bounded wait for the background job
            job = client.get(status_url, headers=bearer).get_json()
            if job["status"] in ("done", "failed"):
                return job["error"] if job["status"] == "failed" else None
            time.sleep(0.1)
        raise AssertionError(f"{path.name}: job did not finish")

    try:
        assert _mismatches(corpus, verdict, skip=NOT_UPLOADABLE) == []
    finally:
        app.extensions["music_study"]["jobs"].shutdown()

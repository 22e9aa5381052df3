"""Shared fixtures.

Tests that need the reference data in ``../shared/data`` use the ``shared_data`` fixture: it
skips with a reason when the folder is absent, and fails instead when
``MUSIC_STUDY_REQUIRE_SHARED_DATA=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
import types
from pathlib import Path

import pytest

from helpers.paths import project_root, shared_data_dir

REQUIRE_SHARED = os.environ.get("MUSIC_STUDY_REQUIRE_SHARED_DATA") == "1"


def require_shared(*relative: str) -> Path:
    """Return ``../shared/data/<relative>``; skip (or fail under CI) when it is absent."""
    base = shared_data_dir()
    path = base.joinpath(*relative) if base else None
    if path is None or not path.exists():
        reason = f"reference data {'/'.join(('../shared/data',) + relative)} is not present"
        if REQUIRE_SHARED:
            pytest.fail(f"{reason} (MUSIC_STUDY_REQUIRE_SHARED_DATA=1)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder ``../shared/data``."""
    return require_shared()


@pytest.fixture(scope="session")
def gtzan_audio_dir() -> Path:
    """The 10 real GTZAN clips, ``<genre>/<genre>.00000.wav``."""
    return require_shared("gtzan", "audio")


@pytest.fixture(scope="session")
def quick_reports(tmp_path_factory, gtzan_audio_dir, shared_data) -> Path:
    """Every notebook run once in quick mode into one folder (minutes; shared by the tests that
    read the reports, so they cost seconds each). Yields the folder; the runs are in
    ``folder / "index.json"``."""
    from helpers.reports import runner

    folder = tmp_path_factory.mktemp("quick-reports")
    overrides = {"01": {"audio_dir": str(gtzan_audio_dir)},
                 "02": {"gtzan_audio_dir": str(gtzan_audio_dir)},
                 "03": {"extra_rows": str(shared_data / "seed" / "features_30_secActive.csv")},
                 "04": {"wordcloud_dir": str(folder.parent / f"{folder.name}-clouds")},
                 "07": {"liked_file": str(shared_data / "seed" / "ytmusic_liked_songs.txt")}}
    runner.run_reports(quick=True, output_dir=folder, overrides=overrides, jobs=2)
    return folder


@pytest.fixture(scope="session")
def model():
    """The default genre model, loaded once for the whole run."""
    from helpers.models import default_model

    return default_model()


@pytest.fixture(scope="session")
def root() -> Path:
    """The checkout root."""
    return project_root()


@pytest.fixture(scope="session")
def shipped_songs(root) -> list[Path]:
    """The openly licensed whole songs shipped in data/music."""
    return sorted((root / "data" / "music").glob("*.ogg"))


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, records each GET path on its server, logs nothing."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


class _QuietFileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client closing a connection early (e.g. a size limit) is expected


@contextlib.contextmanager
def allow_hosts(*pairs):
    """Add ``host:port`` pairs to ``$MUSIC_STUDY_ALLOW_HOSTS`` (fetched although not public)
    for the duration of a ``with`` block (subprocesses started inside inherit it)."""
    before = os.environ.get("MUSIC_STUDY_ALLOW_HOSTS")
    os.environ["MUSIC_STUDY_ALLOW_HOSTS"] = ",".join(filter(None, [before, *pairs]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MUSIC_STUDY_ALLOW_HOSTS", None)
        else:
            os.environ["MUSIC_STUDY_ALLOW_HOSTS"] = before


@contextlib.contextmanager
def serve_directory(folder, allow=True):
    """Serve *folder* over HTTP on 127.0.0.1 in a thread for the duration of a ``with`` block.

    With *allow* (default) its ``127.0.0.1:PORT`` is on the fetch allow-list meanwhile
    (:mod:`helpers.audio.netsafe` refuses loopback addresses otherwise).

    Yields
    ------
    types.SimpleNamespace
        ``base`` (``http://127.0.0.1:PORT``) and ``requests`` (the GET paths served, in order).
    """
    server = _QuietFileServer(("127.0.0.1", 0),
                              functools.partial(_QuietFileHandler, directory=str(folder)))
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with allow_hosts(f"127.0.0.1:{server.server_port}" if allow else ""):
            yield types.SimpleNamespace(base=f"http://127.0.0.1:{server.server_port}",
                                        requests=server.requests)
    finally:
        server.shutdown()
        server.server_close()

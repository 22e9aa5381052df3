"""A web page to share with friends: paste a song URL or upload a file, see its genre, confirm
or correct it.

Each prediction shown is recorded in the label store (``where="web"``) with the model's
fingerprint, and each confirmation or correction becomes a label event that carries what the
model had said (read from the stored prediction), so the labels feed the next retraining (new
genres included, typed explicitly in the "new genre" box).

Safety (the page is meant for a home or lab network; :mod:`helpers.web.security` holds the
checks):

* **Access key.** ``music-study serve`` prints one link with ``#key=...``; the page sends the
  key once (a CSRF-protected form post) and gets a session cookie holding a random session id
  the server knows, then takes the key out of the address bar and the history entry. Old
  ``?key=`` links still work (redirected at once to the bare path). Without the key or the
  cookie every page answers 401 (403 for a wrong key; 429 after a few wrong keys from one
  address), except ``GET /healthz``. The JSON API takes the key only as
  ``Authorization: Bearer <key>``.
* **Names.** Only the names the server was started for are answered (``Host``); a page on
  another name cannot reach it through DNS tricks.
* **CSRF.** Every form carries a ``csrf_token`` (Flask-WTF); every browser POST must also come
  from this page's own origin (``Origin``/``Referer``).
* **URLs.** Only http(s) URLs of public hosts are fetched (:mod:`helpers.audio.netsafe`), and every
  fetch failure shows one sentence; the detail goes to the server log.
* **Cost.** The HTTP server decides from a request's headers whether its body may be read (no
  key, a foreign name or origin, too large for the upload limit or the disk quota: answered at
  once, body unread); idle connections make room for new ones. Submitting returns at once with
  a job page (:mod:`helpers.web.jobs`); the disk quota is checked when an upload is accepted, the
  duration from the file's header before the work starts. The default model is built when the
  app is created.
* **Headers, errors and logs.** No framing, no MIME sniffing, a strict Content-Security-Policy;
  error pages say what went wrong in plain words, never a server path, a class name or a
  decoder's output; names are stored without control or right-to-left characters
  (:func:`helpers.text.clean_text`) and log lines escape them (:mod:`helpers.text`).

Examples
--------
>>> from helpers.web.app import create_app
>>> app = create_app(store_path=tmp_path / "labels.sqlite", access_key="s3cret-key")  # doctest: +SKIP
>>> client = app.test_client()                                  # doctest: +SKIP
>>> client.get("/?key=s3cret-key")   # an old-style link: sets the session  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from flask import (
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadData
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_cookie

from helpers.audio.checks import check_audio
from helpers.audio.decode import probe_duration
from helpers.audio.files import AUDIO_SUFFIXES
from helpers.audio.ingest import (
    MAX_FILESIZE_BYTES,
    cached_download,
    downloads_dir,
    enforce_disk_quota,
    fetch_audio,
    is_url,
)
from helpers.audio.netsafe import check_url
from helpers.audio.windows import min_window_seconds
from helpers.errors import (
    InputError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from helpers.labeling.retrain import model_fingerprint
from helpers.labeling.session import model_said, record_answer
from helpers.models.default import default_model
from helpers.paths import data_dir
from helpers.predict import predict_song
from helpers.store import LabelStore, file_sha256, normalise_genre
from helpers.text import clean_text, safe_logger
from helpers.web.jobs import DEFAULT_WORKERS, JobBoard
from helpers.web.security import (
    CROSS_SITE,
    NEEDS_KEY_API,
    NEEDS_KEY_PAGE,
    WRONG_HOST,
    Access,
    AttemptLimiter,
    HostRule,
    Refusal,
    SessionBook,
    bearer_token,
    origin_matches,
)

#: File extensions accepted for upload: the workspace's one list of audio suffixes.
ALLOWED_EXTENSIONS = frozenset(suffix.lstrip(".") for suffix in AUDIO_SUFFIXES)
#: Largest accepted upload, in bytes.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Room for the form fields next to an upload, in bytes (the request may be this much larger).
FORM_ROOM_BYTES = 64 * 1024
#: Largest JSON body of the API, in bytes (a form's text fields keep Flask's 500 kB limit).
MAX_FIELD_BYTES = 64 * 1024
#: Longest URL accepted, in characters.
MAX_URL_CHARACTERS = 2048
#: Longest song (uploads and URLs), in seconds.
MAX_DURATION_SECONDS = 20 * 60
#: Default size limit of ``uploads/`` + ``downloads/`` together, in bytes.
DISK_QUOTA_BYTES = 2 * 1024**3
#: Identical confirmations of one song by one person within this many seconds are one event.
REPEAT_WINDOW_SECONDS = 10 * 60
#: Longest kept upload name (characters of the stem; UTF-8 bytes are capped too).
MAX_NAME_CHARACTERS = 100
#: Longest error shown to a visitor, in characters.
MAX_SHOWN_ERROR = 300
#: Environment variable holding the access key for ``music-study serve``.
WEB_KEY_ENV = "MUSIC_STUDY_WEB_KEY"
#: Colours of the genre bars, in the model's genre order (then cycled).
GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")
#: The one sentence shown for every failed fetch (the reason goes to the server log only).
FETCH_FAILED = "could not fetch a song from that URL"
#: What an upload or URL gets when the uploads and downloads folders are full.
NO_ROOM = "the server has no room for more songs right now"
#: What the page says when the label store cannot take an answer.
STORE_MESSAGES = {
    StoreReadOnlyError: "This page cannot save answers right now.",
    StoreLockedError: "The answers store is busy right now; please try again in a minute.",
    StoreFullError: "The server has no room to save answers right now; please tell the person "
                    "running this page.",
    StoreError: "This page cannot save answers right now.",
}
_MAX_ID = 2**63 - 1  # SQLite's largest integer
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_log = safe_logger(__name__)


def uploads_dir() -> Path:
    """Return the folder uploads are saved to (``data/uploads``, git-ignored)."""
    return data_dir() / "uploads"


def too_large_message(max_upload_bytes: int) -> str:
    """The sentence for an upload over the size limit."""
    return f"upload: file is larger than the {max_upload_bytes // 2**20} MB limit"


def clean_filename(original: str, max_characters: int = MAX_NAME_CHARACTERS) -> str:
    """Return a display-safe, file-system-safe version of an uploaded file's name.

    Any script is kept (``Песня.mp3``, ``日本.wav``); folders, control and invisible formatting
    characters (e.g. right-to-left overrides: :func:`helpers.text.clean_text`), characters that
    some file systems forbid and leading dots are removed; the stem is capped at
    *max_characters* characters and 150 UTF-8 bytes, and the extension is lower-cased.

    Examples
    --------
    >>> clean_filename("C:\\\\music\\\\Песня.MP3")
    'Песня.mp3'
    >>> clean_filename("../../etc/passwd")
    'passwd'
    >>> clean_filename("a" * 300 + ".wav") == "a" * 100 + ".wav"
    True
    """
    name = unicodedata.normalize("NFC", str(original)).replace("\\", "/").rsplit("/", 1)[-1]
    name = clean_text(name)
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = name.strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = stem.strip(" .")[:max_characters]
    while len(stem.encode("utf-8")) > 150:
        stem = stem[:-1]
    extension = extension.lower()[:10]
    return f"{stem or 'upload'}.{extension}" if extension else (stem or "upload")


def upload_name(storage) -> str:
    """Return the cleaned name of an upload after checking it names an accepted audio type.

    Raises
    ------
    InputError
        No file chosen, or an extension that is not in :data:`ALLOWED_EXTENSIONS`.
    """
    if not storage.filename:
        raise InputError("upload", "no file chosen")
    shown = clean_filename(storage.filename)
    extension = shown.rsplit(".", 1)[-1] if "." in shown else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise InputError(shown, "not an accepted audio file type (accepted: "
                                f"{', '.join(sorted(ALLOWED_EXTENSIONS))})")
    return shown


def save_upload(storage, folder: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[Path, str]:
    """Save an uploaded file under *folder* with a safe, content-addressed name.

    The name is ``<first 12 hex of sha256>_<cleaned original name>`` (spaces become ``_``):
    the same file uploaded twice lands on the same path, and no name can escape *folder*.

    Returns
    -------
    (Path, str)
        The saved file and the cleaned name to show.

    Raises
    ------
    InputError
        No file, a disallowed extension, an empty file or one over *max_bytes*; the message
        names the upload by its cleaned name, never by a server path.
    """
    shown = upload_name(storage)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f".incoming-{secrets.token_hex(8)}.part"
    size = 0
    try:
        with open(partial, "wb") as handle:
            for block in iter(lambda: storage.stream.read(1 << 20), b""):
                size += len(block)
                if size > max_bytes:
                    raise InputError(shown, f"file is larger than the {max_bytes // 2**20} MB limit")
                digest.update(block)
                handle.write(block)
        if size == 0:
            raise InputError(shown, "file is empty")
        target = folder / f"{digest.hexdigest()[:12]}_{'_'.join(shown.split())}"
        os.replace(partial, target)
        return target, shown
    finally:
        partial.unlink(missing_ok=True)


def parse_id(value, name: str, required: bool = True) -> int | None:
    """Return a form field as a positive row id; a missing, non-numeric or out-of-range value
    is an :class:`InputError` (a 400 on the page)."""
    text = (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value))
    if not text:
        if required:
            raise InputError(name, "missing from the form")
        return None
    if not re.fullmatch(r"\d{1,19}", text) or not 1 <= int(text) <= _MAX_ID:
        raise InputError(name, "not a valid id")
    return int(text)


def _clean_who(text) -> str:
    return clean_text(text or "", 64) or "web visitor"


def _colour_map(genres) -> dict[str, str]:
    return {g: GENRE_COLOURS[i % len(GENRE_COLOURS)] for i, g in enumerate(genres)}


def _visible(exc: InputError) -> str:
    """The text a visitor reads for a refused input: a store failure's plain sentence, else
    the error's own one-line message, cleaned and capped."""
    if isinstance(exc, StoreError):
        return _store_message(exc)
    return clean_text(str(exc), MAX_SHOWN_ERROR)


def _stream_size(storage) -> int | None:
    """Bytes of an uploaded file (werkzeug keeps it in a seekable spool), or None."""
    try:
        stream = storage.stream
        here = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return int(size)
    except (AttributeError, OSError, ValueError):
        return None


class DiskRoom:
    """The disk quota of the uploads and downloads folders, checked when an upload is
    accepted: what is on disk, plus what is being saved right now, plus the new upload.

    When that is over the quota, the oldest files nobody needs are removed first (see
    :func:`helpers.audio.ingest.enforce_disk_quota`); if it is still over, the upload is refused.

    Parameters
    ----------
    folders : list of Path
    quota : int
        Bytes.
    protected : callable
        ``protected() -> list of paths`` that must stay (labelled songs, files of jobs).
    """

    def __init__(self, folders, quota: int, protected):
        self.folders = [Path(f) for f in folders]
        self.quota = int(quota)
        self.protected = protected
        self.reserved = 0
        self.pending: set[Path] = set()  # saved, but their job is not recorded yet
        self._lock = threading.Lock()

    def used(self) -> int:
        """Bytes the quota counts now (the files :func:`enforce_disk_quota` would weigh)."""
        total = 0
        for folder in self.folders:
            if folder.is_dir():
                for path in folder.iterdir():
                    if not path.name.startswith(".") and path.suffix != ".json":
                        try:
                            total += path.stat().st_size if path.is_file() else 0
                        except OSError:
                            continue
        return total

    def free(self) -> int:
        """Bytes left under the quota once the oldest files nobody needs are removed (what a
        download may take, so a URL cannot grow the folders past the quota either)."""

        with self._lock:
            enforce_disk_quota(self.folders, max(0, self.quota - self.reserved),
                               keep=[*self.protected(), *self.pending])
            return max(0, self.quota - self.reserved - self.used())

    @contextmanager
    def reserve(self, nbytes: int, shown: str):
        """Hold room for *nbytes* while an upload is saved; yields a function to call with the
        saved path (it is then counted on disk, and kept until the ``with`` block ends)."""

        nbytes = max(0, int(nbytes))
        with self._lock:
            if nbytes > self.quota or self.used() + self.reserved + nbytes > self.quota:
                if nbytes <= self.quota:
                    enforce_disk_quota(self.folders, max(0, self.quota - self.reserved - nbytes),
                                       keep=[*self.protected(), *self.pending])
                if nbytes > self.quota or self.used() + self.reserved + nbytes > self.quota:
                    _log.warning("upload %s (%d bytes) refused: disk quota of %d bytes reached",
                                 shown, nbytes, self.quota)
                    raise InputError(shown, NO_ROOM)
            self.reserved += nbytes
        landed: list[Path] = []

        def saved(path: Path) -> None:
            with self._lock:
                self.reserved -= nbytes
                self.pending.add(Path(path))
                landed.append(Path(path))

        try:
            yield saved
        finally:
            with self._lock:
                if landed:
                    self.pending.discard(landed[0])
                else:
                    self.reserved -= nbytes


def create_app(store_path=None, model=None, upload_dir=None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, window_seconds: float = 30.0,
               fetch_options: dict | None = None, secret_key: str | None = None,
               access_key: str | None = None, require_key: bool = True,
               workers: int | None = None, max_duration: float = MAX_DURATION_SECONDS,
               disk_quota_bytes: int = DISK_QUOTA_BYTES, allowed_hosts=None,
               trusted_proxies=(), behind_https: bool = False, limiter=None) -> Flask:
    """Return the Flask application (``music-study serve`` serves it with waitress: :func:`helpers.commands.serve.run`).

    Parameters
    ----------
    store_path : path-like, optional
        Label store file (default ``data/labels.sqlite``); the jobs and sessions tables live
        in it too.
    model : fitted classifier, optional
        Default :func:`helpers.models.default_model`, built here (never inside a request).
    upload_dir : path-like, optional
        Where uploads are saved (default ``data/uploads``).
    max_upload_bytes : int
        Uploads larger than this are refused with a message.
    window_seconds : float
        Window length for whole-song prediction.
    fetch_options : dict, optional
        Keyword arguments for :func:`helpers.audio.ingest.fetch_audio` (``download_dir``,
        ``max_filesize``).
    secret_key : str, optional
        Signs the session cookie; by default a random secret kept in the store's file (so a
        restart keeps friends signed in). Never derived from the access key.
    access_key : str, optional
        The key of the shared link; random when ``None`` and *require_key*.
    require_key : bool
        ``False`` serves without a key (only for a loopback host; see ``--no-key``).
    workers : int, optional
        Background worker threads (default :data:`helpers.web.jobs.DEFAULT_WORKERS`).
    max_duration : float
        Longest song accepted, in seconds (checked from headers before decoding).
    disk_quota_bytes : int
        Size limit of the uploads and downloads folders together, checked when an upload is
        accepted and before a job's work; the oldest files no label points to are removed
        first.
    allowed_hosts : HostRule or iterable of str, optional
        The names the page answers to (``Host``); default ``localhost``, ``127.0.0.1``,
        ``::1``. :func:`helpers.commands.serve.run` passes the bound address and ``--public-name``.
    trusted_proxies : iterable of str
        Addresses of reverse proxies whose ``X-Forwarded-For``/``-Proto`` are believed.
    behind_https : bool
        The page is reached through https: the session cookie is ``Secure``.
    limiter : AttemptLimiter, optional
        The wrong-key limiter (tests pass one with their own clock).
    """

    if require_key:
        access_key = access_key or secrets.token_urlsafe(24)
    else:
        access_key = None
    if allowed_hosts is None:
        allowed_hosts = HostRule()
    elif not isinstance(allowed_hosts, HostRule):
        allowed_hosts = HostRule(allowed_hosts)
    lifetime = timedelta(days=30)
    store = LabelStore(store_path)
    sessions = SessionBook(":memory:" if store.read_only else store.path, access_key,
                           lifetime.total_seconds())
    access = Access(key=access_key, hosts=allowed_hosts, sessions=sessions,
                    limiter=limiter if limiter is not None else AttemptLimiter(),
                    trusted_proxies=trusted_proxies,
                    behind_https=behind_https)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=max_upload_bytes + FORM_ROOM_BYTES,
        SECRET_KEY=secret_key or sessions.secret,
        SESSION_COOKIE_NAME="music_study_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=lifetime,
        # the cookie is sent only when the session changes: a request that overlaps another
        # (the favicon, a second tab) would otherwise answer with the older cookie and
        # overwrite the newer one, losing its CSRF token
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session: a page left open works
        ACCESS_KEY=access_key,
    )

    class CookieSessions(SecureCookieSessionInterface):
        def get_cookie_secure(self, app):  # per request: https directly or via a trusted proxy
            return access.is_https(request.scheme, request.remote_addr,
                                   request.headers.get("X-Forwarded-Proto"))

    app.session_interface = CookieSessions()

    def read_session_id(cookie_header):
        """The session id in a ``Cookie`` header, if its signature is this server's."""

        value = parse_cookie(cookie_header or "").get(app.config["SESSION_COOKIE_NAME"])
        serializer = app.session_interface.get_signing_serializer(app)
        if not value or serializer is None:
            return None
        try:
            data = serializer.loads(value, max_age=int(lifetime.total_seconds()))
        except BadData:
            return None
        return data.get("sid") if isinstance(data, dict) else None

    access.read_session_id = read_session_id
    folder = Path(upload_dir) if upload_dir is not None else uploads_dir()
    fetch_options = dict(fetch_options or {})
    download_folder = Path(fetch_options.get("download_dir") or _default_downloads())
    fetch_options["download_dir"] = download_folder
    if model is None:
        started = time.monotonic()
        _log.info("building the default genre model (once, at start) ...")
        model = default_model()
        _log.info("default genre model ready in %.1f s", time.monotonic() - started)

    fingerprint = model_fingerprint(model)
    model_genres = [str(g) for g in model.classes_]
    label_lock = threading.Lock()

    # ------------------------------------------------------------------ the work of one job
    def protected_files(extra=()) -> list:
        """Files the quota must keep: what labels point to, and what jobs are working on."""

        keep = list(extra)
        for location in store.current_labels()["location"]:
            keep.append(cached_download(location, download_folder) if is_url(location)
                        else Path(location))
        for payload in jobs.active_payloads():
            if payload.get("upload"):
                keep.append(Path(payload["upload"]))
            elif payload.get("url"):
                keep.append(cached_download(payload["url"], download_folder))
        return keep

    room = DiskRoom([folder, download_folder], disk_quota_bytes, protected_files)

    def run_job(payload: dict, report) -> dict:
        if payload.get("url"):
            url = payload["url"]
            report("downloading")
            cached = cached_download(url, download_folder)
            budget = room.free() if cached is None else None
            if budget == 0:
                _log.warning("download of %s refused: disk quota of %d bytes reached", url,
                             disk_quota_bytes)
                raise InputError("URL", NO_ROOM)
            limits = dict(fetch_options)
            if budget is not None:  # what is left under the quota caps the download
                limits["max_filesize"] = min(limits.get("max_filesize", MAX_FILESIZE_BYTES),
                                             budget)
            try:
                ingested = fetch_audio(url, allow_local=False, max_duration=max_duration,
                                       **limits)
            except InputError as exc:
                _log.info("fetch refused or failed: %s", exc)
                raise InputError("URL", FETCH_FAILED) from exc
            # a site's title can hold anything: stored and shown like every other name
            path, title, artist, location, source = (
                ingested.path, clean_text(ingested.title or "", 200) or None,
                clean_text(ingested.artist or "", 200) or None, url, "web url")
            shown, source_url = url, url
        else:
            path, shown = Path(payload["upload"]), payload["name"]
            title, artist, location, source, source_url = (Path(shown).stem, None, path,
                                                           "web upload", None)
        try:
            within = enforce_disk_quota([folder, download_folder], disk_quota_bytes,
                                        keep=protected_files([path]))
        except StoreError as exc:
            _log.warning("label store: %s", exc)
            raise InputError("label store", _store_message(exc)) from exc
        if not within:
            _log.warning("disk quota of %d bytes reached by kept files", disk_quota_bytes)
            raise InputError(shown, NO_ROOM)
        report("analysing")

        def progress(k: int, n: int) -> None:
            if (k - 1) * window_seconds >= max_duration:  # a file whose header told no length
                raise InputError(shown, f"song is longer than the {max_duration / 60:.1f} min limit")
            report(f"analysing window {k} of {n}")

        try:
            prediction = predict_song(path, model=model, window_seconds=window_seconds,
                                      progress=progress)
        except InputError as exc:  # name the song as the visitor knows it, not the server path
            raise InputError(shown, _without_paths(exc.reason, path, shown)) from exc
        report("saving")
        song_id = prediction_id = None
        try:
            song_id = store.add_song(location, title=title, artist=artist,
                                     duration=prediction.duration, source=source,
                                     content_hash=file_sha256(path))
            prediction_id = store.record_prediction(song_id, prediction.probabilities,
                                                    fingerprint, where="web")
        except StoreReadOnlyError as exc:  # show the genre anyway; answers cannot be saved
            _log.warning("store is read-only: %s", exc)
        except StoreError as exc:
            _log.warning("store refused a prediction: %s", exc)
            raise InputError("label store", _store_message(exc)) from exc
        prediction.source = shown
        document = prediction.to_dict()
        document.update(title=title, artist=artist, source_url=source_url)
        return {"prediction": document, "song_id": song_id, "prediction_id": prediction_id}

    try:
        jobs = JobBoard(store.path, run_job, workers=workers or DEFAULT_WORKERS,
                        describe=_visible)
    except StoreReadOnlyError as exc:  # jobs live in memory; the page says answers are not saved
        _log.warning("%s; jobs are kept in memory until the server stops", exc)
        jobs = JobBoard(":memory:", run_job, workers=workers or DEFAULT_WORKERS,
                        describe=_visible)

    def gate(head):
        """The HTTP server's decision once a request's headers are in (see build_server)."""
        return access.early(head, max_body=max_upload_bytes + FORM_ROOM_BYTES,
                            quota_bytes=disk_quota_bytes,
                            too_large=too_large_message(max_upload_bytes),
                            no_room=f"upload: {NO_ROOM}")

    app.extensions["music_study"] = {"store": store, "upload_dir": folder, "jobs": jobs,
                                     "model": model, "access_key": access_key,
                                     "access": access, "sessions": sessions, "gate": gate,
                                     "room": room}

    # ------------------------------------------------------------------ access key, origin
    def refuse(refusal: Refusal):
        if refusal.json or wants_json():
            response = jsonify(error=refusal.message)
        else:
            response = app.make_response(page_error(refusal.message, refusal.status))
        response.status_code = refusal.status
        for name, value in refusal.headers:
            response.headers[name] = value
        return response

    def start_session() -> None:
        """A new session for a visitor who gave the key (a fresh id: none from before)."""
        sessions.close(session.get("sid"))
        session.clear()
        session.permanent = True
        session["sid"] = sessions.open()

    def path_only() -> str:
        """Where the key link leads once the key is taken out: this page's path alone (no
        query argument, no other host: '//x' or '/\\x' cannot become another site)."""
        if request.endpoint is None:
            return "/"
        return "/" + quote(request.path.lstrip("/\\"), safe="/-._~")

    def key_page():
        return render_template("message.html", error=NEEDS_KEY_PAGE, key_exchange=True), 401

    @app.before_request
    def check_access():
        g.csp_nonce = secrets.token_urlsafe(16)
        if not access.hosts.allows(request.headers.get("Host")):
            _log.info("refused a request for host %r: %s %s", request.headers.get("Host"),
                      request.method, request.path)
            return refuse(Refusal(400, WRONG_HOST))
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return None
        g.client = access.client(request.remote_addr, request.headers.get("X-Forwarded-For"))
        if access_key is not None:
            if request.path.startswith("/api/"):
                token = bearer_token(request.headers.get("Authorization"))
                if token is None:
                    return refuse(Refusal(401, NEEDS_KEY_API, True, (
                        ("WWW-Authenticate", 'Bearer realm="music-study"'),)))
                check = access.try_key(token, g.client)
                return None if check.ok else refuse(access.refuse_key(check, True))
            given = request.args.get("key")
            if given is not None and request.method in ("GET", "HEAD"):  # an old-style link
                check = access.try_key(given, g.client)
                if not check.ok:
                    return refuse(access.refuse_key(check, False))
                start_session()
                # drop the key from the address bar (history, screenshots, Referer)
                return redirect(path_only(), code=303)
            if not (request.path == "/session" and request.method == "POST") and \
                    not sessions.valid(session.get("sid")):
                return key_page()
        if request.method not in _SAFE_METHODS and not request.path.startswith("/api/") \
                and not same_origin():
            _log.info("refused a cross-site %s %s (Origin %r, Referer %r)", request.method,
                      request.path, request.headers.get("Origin"), request.headers.get("Referer"))
            return refuse(Refusal(403, CROSS_SITE))
        return None

    def same_origin() -> bool:
        # Host and port must match; the scheme may differ (an https proxy in front of http).
        claimed = request.headers.get("Origin") or request.headers.get("Referer")
        if claimed is None:
            return True  # neither header (privacy tools): the CSRF token alone decides
        return origin_matches(claimed, request.host)

    csrf = CSRFProtect(app)  # registered after check_access, so the key is checked first

    @app.after_request
    def security_headers(response):
        nonce = getattr(g, "csp_nonce", "")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Server", None)
        return response

    @app.context_processor
    def template_values():
        return {"csp_nonce": getattr(g, "csp_nonce", "")}

    # ------------------------------------------------------------------ pages
    def known_genres() -> list[str]:
        stored = store.current_labels()
        # cleaned again on the way out: a store written by an older version may hold anything
        found = {clean_text(g, 64) for g in stored["genre"]} if len(stored) else set()
        return model_genres + sorted(found - set(model_genres) - {""})

    def recent_labels(limit: int = 10):
        labels = store.current_labels()
        if labels.empty:
            return []
        labels = labels.sort_values("labelled_utc", ascending=False).head(limit)
        rows = labels[["title", "filename", "genre", "model_said", "who"]].to_dict("records")
        return [{k: (None if isinstance(v, float) and math.isnan(v) or v is None
                     else clean_text(v, 200)) for k, v in r.items()} for r in rows]

    def page_error(message: str, status: int):
        return render_template("message.html", error=message), status

    def show_index(error: str | None = None, status: int = 200):
        try:
            recent = recent_labels()
        except StoreError:
            recent = []
        return render_template("index.html", error=error, recent=recent,
                               read_only=bool(getattr(store, "read_only", False)),
                               max_mb=max_upload_bytes // 2**20, window_seconds=window_seconds,
                               max_minutes=max_duration / 60,
                               extensions=", ".join(sorted(ALLOWED_EXTENSIONS))), status

    def submit_job(form, files) -> str:
        """Check the submission (cheap checks only) and queue its job; return the job id."""

        upload = files.get("file")
        url = form.get("url")
        if url is not None and not isinstance(url, str):
            raise InputError("url", "must be a text: the song's http(s) address")
        url = (url or "").strip()
        if upload is not None and upload.filename:
            return submit_upload(upload)
        if url:
            if len(url) > MAX_URL_CHARACTERS:
                _log.info("URL refused: %d characters: %s", len(url), url)
                raise InputError("URL", f"longer than {MAX_URL_CHARACTERS} characters")
            try:
                if not is_url(url):
                    raise InputError(url, "not an http(s) URL")
                url = check_url(url)
            except InputError as exc:
                _log.info("URL refused: %s", exc)
                raise InputError("URL", FETCH_FAILED) from None
            return jobs.submit("predict", {"url": url})
        raise InputError("form", "paste a song URL or choose a file to upload")

    def submit_upload(upload) -> str:
        """Save an upload within the disk quota, check its header, and queue its job."""
        shown = upload_name(upload)
        size = _stream_size(upload)
        if size is not None and size > max_upload_bytes:  # the size limit speaks before the quota
            raise InputError(shown, f"file is larger than the {max_upload_bytes // 2**20} MB limit")
        with room.reserve(size if size is not None else max_upload_bytes, shown) as landed:
            saved, shown = save_upload(upload, folder, max_upload_bytes)
            landed(saved)
            try:
                check_upload(saved, shown)
                return jobs.submit("predict", {"upload": str(saved), "name": shown})
            except BaseException:
                try:
                    known = store.song_id(saved) is not None
                except StoreError:
                    known = True  # cannot tell: keep the file rather than lose a labelled one
                if not known:
                    saved.unlink(missing_ok=True)  # keep nothing the page refused
                raise

    def check_upload(path: Path, shown: str) -> None:
        """Refuse an upload from its header alone: not audio, too short, or too long."""

        try:
            stated = probe_duration(path)
        except InputError:  # not audio: check_audio below gives the reason
            stated = None
        if stated is not None and stated > max_duration:
            raise InputError(shown, f"song is {stated / 60:.1f} min long, over the "
                                    f"{max_duration / 60:.1f} min limit")
        try:
            check_audio(path, min_window_seconds(window_seconds), source=shown)
        except InputError as exc:
            raise InputError(shown, _without_paths(exc.reason, path, shown)) from None

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/")
    def index():
        return show_index()

    @app.post("/session")
    def open_session():
        """The page's script sends the key of a ``#key=`` link here once."""
        if access_key is None:
            return jsonify(ok=True)
        check = access.try_key(request.form.get("key"), g.client)
        if not check.ok:  # the page's own sentence, as JSON for its script
            return refuse(access.refuse_key(check, False))
        start_session()
        return jsonify(ok=True)

    @app.post("/predict")
    def predict_page():
        try:
            job_id = submit_job(request.form, request.files)
        except StoreError:
            raise
        except InputError as exc:
            return show_index(error=_visible(exc), status=400)
        return redirect(url_for("job_page", job_id=job_id), code=303)

    def get_job(job_id: str) -> dict:
        job = jobs.get(job_id)
        if job is None:
            abort(404)
        return job

    @app.get("/jobs/<job_id>")
    def job_page(job_id):
        job = get_job(job_id)
        if job["status"] != "done":
            return render_template("job.html", job=job, title=_job_title(job))
        result = job["result"]
        document = result["prediction"]
        return render_template(
            "result.html", doc=document, title=document.get("title") or _job_title(job),
            song_id=result["song_id"], prediction_id=result["prediction_id"],
            genres=known_genres(), colours=_colour_map(model_genres + sorted(
                set(document["probabilities"]) - set(model_genres))),
            model_genres=[g for g in model_genres if g in document["probabilities"]])

    @app.get("/jobs/<job_id>/status")
    def job_status(job_id):
        job = get_job(job_id)
        return jsonify(status=job["status"], stage=job["stage"])

    @app.post("/label")
    def label():
        form = request.form
        try:
            song_id = parse_id(form.get("song_id"), "song_id")
            prediction_id = parse_id(form.get("prediction_id"), "prediction_id")
            said = model_said(store, song_id, prediction_id)  # the store's, never the form's
            action = form.get("action", "")
            if action == "confirm":
                genre = said
            elif action == "correct":
                typed = (form.get("new_genre") or "").strip()
                picked = (form.get("genre") or "").strip()
                if typed:
                    try:
                        genre = normalise_genre(typed)
                    except InputError as exc:  # name the field, not the visitor's text
                        raise InputError("new genre", exc.reason) from None
                elif picked:
                    if picked not in known_genres():
                        raise InputError("genre", "pick a genre from the list, or type a new "
                                                  "one in the new-genre box")
                    genre = picked
                else:
                    raise InputError("correction", "pick a genre from the list or type a new one")
            else:
                raise InputError("form", "choose confirm or correct")
            who = _clean_who(form.get("who"))
            with label_lock:
                if not _repeated(store, song_id, genre, who):
                    record_answer(store, song_id, genre, prediction_id=prediction_id, who=who,
                                  where="web")
        except StoreError:
            raise
        except InputError as exc:
            return show_index(error=_visible(exc), status=400)
        song = store.songs().set_index("song_id").loc[song_id]
        title = clean_text(song["title"] or song["filename"] or "", 200)
        verb = "Confirmed" if action == "confirm" else "Corrected"
        flash(f"{verb}: \u201c{title}\u201d is {genre}. Thank you!")
        return redirect(url_for("index"), code=303)

    # ------------------------------------------------------------------ JSON API
    def api_fields():
        """The API's fields: a form, or a JSON object (anything else is a 400 sentence)."""
        if not request.is_json:
            return request.form
        if (request.content_length or 0) > MAX_FIELD_BYTES:
            raise InputError("request body", f"JSON larger than {MAX_FIELD_BYTES // 1024} KB")
        body = request.get_json(silent=True)
        if body is None:
            raise InputError("request body", 'not valid JSON; send {"url": "https://..."} or a '
                                             "multipart form with a file")
        if not isinstance(body, dict):
            raise InputError("request body", 'must be a JSON object such as '
                                             '{"url": "https://..."}')
        return body

    @app.post("/api/predict")
    @csrf.exempt
    def api_predict():
        try:
            job_id = submit_job(api_fields(), request.files)
        except StoreError:
            raise
        except InputError as exc:
            return jsonify(error=_visible(exc)), 400
        secure = access.is_https(request.scheme, request.remote_addr,
                                 request.headers.get("X-Forwarded-Proto"))
        return jsonify(job_id=job_id, status_url=url_for(
            "api_job", job_id=job_id, _external=True, _scheme="https" if secure else "http")), 202

    @app.get("/api/jobs/<job_id>")
    def api_job(job_id):
        job = get_job(job_id)
        result = job["result"] or {}
        return jsonify(status=job["status"], stage=job["stage"],
                       result=result.get("prediction"), error=job["error"],
                       song_id=result.get("song_id"), prediction_id=result.get("prediction_id"))

    # ------------------------------------------------------------------ errors
    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path == "/session"

    @app.errorhandler(StoreError)
    def store_unavailable(exc):
        _log.warning("label store: %s", exc)
        message = _store_message(exc)
        if wants_json():
            return jsonify(error=message), 503
        return show_index(error=message, status=503)

    @app.errorhandler(CSRFError)
    def bad_csrf(exc):
        _log.info("CSRF check failed on %s: %s", request.path, exc.description)
        message = ("This form has expired or did not come from this page; nothing was done. "
                   "Please reload the page and try again.")
        if wants_json():
            return jsonify(error=message), 400
        return page_error(message, 400)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        if (request.content_length or 0) > max_upload_bytes:
            message = too_large_message(max_upload_bytes)
        else:  # werkzeug's limit on a form's text field
            message = "form: a field is too long"
        if wants_json():
            return jsonify(error=message), 413
        return show_index(error=message, status=413)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        messages = {404: "No such page.", 405: "That address does not take this kind of request.",
                    400: "The request was incomplete or malformed."}
        message = messages.get(exc.code, "The request could not be handled.")
        if wants_json():
            return jsonify(error=message), exc.code
        return page_error(message, exc.code)

    @app.errorhandler(Exception)
    def server_error(exc):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        _log.exception("while serving %s", request.path)
        message = ("Something went wrong on our side; nothing was stored. Please try again or "
                   "tell the person running this page.")
        if wants_json():
            return jsonify(error=message), 500
        return page_error(message, 500)

    return app


def _without_paths(reason: str, path: Path, shown: str) -> str:
    """Return *reason* with the server-side file (and any other absolute path) replaced, so a
    decoder's message can be shown on the page."""
    reason = reason.replace(str(path), shown).replace(str(path.parent), "")
    return re.sub(r"(?<![\w:/.])/(?:[^\s/'\"]+/)+[^\s'\"),;]*", "(a file)", reason)


def _store_message(exc: StoreError) -> str:
    for kind in type(exc).__mro__:
        if kind in STORE_MESSAGES:
            return STORE_MESSAGES[kind]
    return STORE_MESSAGES[StoreError]


def _default_downloads() -> Path:
    return downloads_dir()


def _job_title(job: dict) -> str:
    payload = job["payload"]
    return clean_text(payload.get("name") or payload.get("url") or "", 200) or "your song"


def _repeated(store, song_id: int, genre: str, who: str) -> bool:
    """True when *who* labelled *song_id* as *genre* on the web within the repeat window and
    that label is still the song's current one (a double click, a reload, a re-send)."""
    events = store.events(song_id)
    if events.empty:
        return False
    active = events[(events["kind"] == "label") & ~events["undone"]]
    if active.empty:
        return False
    last = active.iloc[-1]
    if (last["genre"], last["who"], last["where"]) != (genre, who, "web"):
        return False
    age = datetime.now(UTC) - datetime.fromisoformat(last["created_utc"])
    return age.total_seconds() < REPEAT_WINDOW_SECONDS

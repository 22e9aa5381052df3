"""A web page to share with friends: paste a song URL or upload a file, see its genre, confirm
or correct it.

Each prediction shown is recorded in the label store (``where="web"``) with the model's
fingerprint, and each confirmation or correction becomes a label event that carries what the
model had said (read from the stored prediction), so the labels feed the next retraining (new
genres included, typed explicitly in the "new genre" box).

Safety (the page is meant for a home or lab network):

* **Access key.** ``music-study serve`` prints one link with ``?key=...``; opening it sets a
  session cookie. Without the key or the cookie every page answers 401 (403 for a wrong key),
  except ``GET /healthz``. The JSON API takes the key only as ``Authorization: Bearer <key>``.
* **CSRF.** Every form carries a ``csrf_token`` (Flask-WTF); every browser POST must also come
  from this page's own origin (``Origin``/``Referer``).
* **URLs.** Only http(s) URLs of public hosts are fetched (:mod:`helpers.netsafe`), and every
  fetch failure shows one sentence; the detail goes to the server log.
* **Work in the background.** Submitting returns at once with a job page
  (:mod:`helpers.jobs`); limits (upload size, duration from the header, disk quota) are
  checked before the work starts. The default model is built when the app is created.
* **Headers and errors.** No framing, no MIME sniffing, a strict Content-Security-Policy;
  error pages say what went wrong in plain words, never a server path or a class name.

Examples
--------
>>> from helpers.web import create_app
>>> app = create_app(store_path=tmp_path / "labels.sqlite", access_key="s3cret-key")  # doctest: +SKIP
>>> client = app.test_client()                                  # doctest: +SKIP
>>> client.get("/?key=s3cret-key")                              # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import re
import secrets
import socket
import sys
import threading
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

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
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from helpers.audio import AUDIO_SUFFIXES
from helpers.errors import (
    InputError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from helpers.paths import data_dir

#: File extensions accepted for upload: the workspace's one list of audio suffixes.
ALLOWED_EXTENSIONS = frozenset(suffix.lstrip(".") for suffix in AUDIO_SUFFIXES)
#: Largest accepted upload, in bytes.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Longest accepted song (uploads and URLs), in seconds.
MAX_DURATION_SECONDS = 20 * 60
#: Default size limit of ``uploads/`` + ``downloads/`` together, in bytes.
DISK_QUOTA_BYTES = 2 * 1024**3
#: Identical confirmations of one song by one person within this many seconds are one event.
REPEAT_WINDOW_SECONDS = 10 * 60
#: Longest kept upload name (characters of the stem; UTF-8 bytes are capped too).
MAX_NAME_CHARACTERS = 100
#: Environment variable holding the access key for ``music-study serve``.
WEB_KEY_ENV = "MUSIC_STUDY_WEB_KEY"
#: Colours of the genre bars, in the model's genre order (then cycled).
GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")
#: The one sentence shown for every failed fetch (the reason goes to the server log only).
FETCH_FAILED = "could not fetch a song from that URL"
#: What the page says when the label store cannot take an answer.
STORE_MESSAGES = {
    StoreReadOnlyError: "This page cannot save answers right now.",
    StoreLockedError: "The answers store is busy right now; please try again in a minute.",
    StoreFullError: "The server has no room to save answers right now; please tell the person "
                    "running this page.",
    StoreError: "This page cannot save answers right now.",
}
_MAX_ID = 2**63 - 1  # SQLite's largest integer
_log = logging.getLogger(__name__)


def uploads_dir() -> Path:
    """Return the folder uploads are saved to (``data/uploads``, git-ignored)."""
    return data_dir() / "uploads"


def clean_filename(original: str, max_characters: int = MAX_NAME_CHARACTERS) -> str:
    """Return a display-safe, file-system-safe version of an uploaded file's name.

    Any script is kept (``Песня.mp3``, ``日本.wav``); folders, control and invisible formatting
    characters (e.g. right-to-left overrides), characters that some file systems forbid and
    leading dots are removed; the stem is capped at *max_characters* characters and 150 UTF-8
    bytes, and the extension is lower-cased.

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
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = " ".join(name.split()).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = stem.strip(" .")[:max_characters]
    while len(stem.encode("utf-8")) > 150:
        stem = stem[:-1]
    extension = extension.lower()[:10]
    return f"{stem or 'upload'}.{extension}" if extension else (stem or "upload")


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
    if not storage.filename:
        raise InputError("upload", "no file chosen")
    shown = clean_filename(storage.filename)
    extension = shown.rsplit(".", 1)[-1] if "." in shown else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise InputError(shown, "not an accepted audio file type (accepted: "
                                f"{', '.join(sorted(ALLOWED_EXTENSIONS))})")
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
    who = "".join(ch for ch in str(text or "") if unicodedata.category(ch)[0] != "C")
    return " ".join(who.split())[:64] or "web visitor"


def _colour_map(genres) -> dict[str, str]:
    return {g: GENRE_COLOURS[i % len(GENRE_COLOURS)] for i, g in enumerate(genres)}


def _key_digest(key: str) -> str:
    return hashlib.sha256(("music-study web key:" + key).encode("utf-8")).hexdigest()


def create_app(store_path=None, model=None, upload_dir=None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, window_seconds: float = 30.0,
               fetch_options: dict | None = None, secret_key: str | None = None,
               access_key: str | None = None, require_key: bool = True,
               workers: int | None = None, max_duration: float = MAX_DURATION_SECONDS,
               disk_quota_bytes: int = DISK_QUOTA_BYTES) -> Flask:
    """Return the Flask application (serve it with waitress: :func:`run_serve_command`).

    Parameters
    ----------
    store_path : path-like, optional
        Label store file (default ``data/labels.sqlite``); the jobs table lives in it too.
    model : fitted classifier, optional
        Default :func:`helpers.models.default_model`, built here (never inside a request).
    upload_dir : path-like, optional
        Where uploads are saved (default ``data/uploads``).
    max_upload_bytes : int
        Uploads larger than this are refused with a message.
    window_seconds : float
        Window length for whole-song prediction.
    fetch_options : dict, optional
        Keyword arguments for :func:`helpers.ingest.fetch_audio` (``download_dir``,
        ``max_filesize``).
    secret_key : str, optional
        Signs the session cookie; by default derived from the access key (so a restart with
        the same key keeps friends signed in), else random.
    access_key : str, optional
        The key of the shared link; random when ``None`` and *require_key*.
    require_key : bool
        ``False`` serves without a key (only for a loopback host; see ``--no-key``).
    workers : int, optional
        Background worker threads (default :data:`helpers.jobs.DEFAULT_WORKERS`).
    max_duration : float
        Longest song accepted, in seconds (checked from headers before decoding).
    disk_quota_bytes : int
        Size limit of the uploads and downloads folders together; the oldest files no label
        points to are removed first.
    """
    from helpers.jobs import DEFAULT_WORKERS, JobBoard
    from helpers.store import LabelStore

    if require_key:
        access_key = access_key or secrets.token_urlsafe(24)
    else:
        access_key = None
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=max_upload_bytes + 64 * 1024,  # room for the form fields
        SECRET_KEY=secret_key or (hashlib.sha256(b"session:" + access_key.encode()).hexdigest()
                                  if access_key else secrets.token_hex(32)),
        SESSION_COOKIE_NAME="music_study_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session: a page left open works
        ACCESS_KEY=access_key,
    )
    store = LabelStore(store_path)
    folder = Path(upload_dir) if upload_dir is not None else uploads_dir()
    fetch_options = dict(fetch_options or {})
    download_folder = Path(fetch_options.get("download_dir") or _default_downloads())
    fetch_options["download_dir"] = download_folder
    if model is None:
        from helpers.models import default_model

        started = time.monotonic()
        _log.info("building the default genre model (once, at start) ...")
        model = default_model()
        _log.info("default genre model ready in %.1f s", time.monotonic() - started)
    from helpers.active import model_fingerprint

    fingerprint = model_fingerprint(model)
    model_genres = [str(g) for g in model.classes_]
    label_lock = threading.Lock()

    # ------------------------------------------------------------------ the work of one job
    def protected_files(extra=()) -> list:
        """Files the quota must keep: what labels point to, and what jobs are working on."""
        from helpers.ingest import cached_download, is_url

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

    def run_job(payload: dict, report) -> dict:
        from helpers.ingest import enforce_disk_quota, fetch_audio
        from helpers.predict import predict_song
        from helpers.store import file_sha256

        if payload.get("url"):
            url = payload["url"]
            report("downloading")
            try:
                ingested = fetch_audio(url, allow_local=False, max_duration=max_duration,
                                       **fetch_options)
            except InputError as exc:
                _log.info("fetch refused or failed: %s", exc)
                raise InputError("URL", FETCH_FAILED) from exc
            path, title, artist, location, source = (ingested.path, ingested.title,
                                                     ingested.artist, url, "web url")
            shown, source_url = url, url
        else:
            path, shown = Path(payload["upload"]), payload["name"]
            title, artist, location, source, source_url = (Path(shown).stem, None, path,
                                                           "web upload", None)
        if not enforce_disk_quota([folder, download_folder], disk_quota_bytes,
                                  keep=protected_files([path])):
            _log.warning("disk quota of %d bytes reached by kept files", disk_quota_bytes)
            raise InputError(shown, "the server has no room for more songs right now")
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
        jobs = JobBoard(store.path, run_job, workers=workers or DEFAULT_WORKERS)
    except StoreReadOnlyError as exc:  # jobs live in memory; the page says answers are not saved
        _log.warning("%s; jobs are kept in memory until the server stops", exc)
        jobs = JobBoard(":memory:", run_job, workers=workers or DEFAULT_WORKERS)
    app.extensions["music_study"] = {"store": store, "upload_dir": folder, "jobs": jobs,
                                     "model": model, "access_key": access_key}

    # ------------------------------------------------------------------ access key, origin
    def key_matches(candidate) -> bool:
        return isinstance(candidate, str) and access_key is not None and hmac.compare_digest(
            _key_digest(candidate), _key_digest(access_key))

    @app.before_request
    def check_access():
        g.csp_nonce = secrets.token_urlsafe(16)
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return None
        if request.path.startswith("/api/"):
            if access_key is None:
                return None
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and key_matches(token.strip()):
                return None
            response = jsonify(error="this API needs the key: send 'Authorization: Bearer <key>'")
            response.status_code = 401 if not token else 403
            response.headers["WWW-Authenticate"] = 'Bearer realm="music-study"'
            return response
        if access_key is not None:
            given = request.args.get("key")
            if given is not None:
                if not key_matches(given):
                    return page_error("This link's key is not right. Please ask for the link "
                                      "again.", 403)
                session.clear()
                session.permanent = True
                session["key"] = _key_digest(access_key)
                # drop the key from the address bar (history, screenshots, Referer)
                args = {k: v for k, v in request.args.items() if k != "key"}
                return redirect(url_for(request.endpoint, **(request.view_args or {}), **args)
                                if request.endpoint else "/", code=303)
            if session.get("key") != _key_digest(access_key):
                return page_error("This page needs its key: open the full link you were given "
                                  "(it ends in ?key=...).", 401)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin():
            _log.info("refused a cross-site %s %s (Origin %r, Referer %r)", request.method,
                      request.path, request.headers.get("Origin"), request.headers.get("Referer"))
            return page_error("This form did not come from this page, so nothing was done.", 403)
        return None

    def same_origin() -> bool:
        # Host and port must match; the scheme may differ (an https proxy in front of http).
        claimed = request.headers.get("Origin") or request.headers.get("Referer")
        if claimed is None:
            return True  # neither header (privacy tools): the CSRF token alone decides
        parts = urlsplit(claimed)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()

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
        extra = sorted(set(stored["genre"]) - set(model_genres)) if len(stored) else []
        return model_genres + extra

    def recent_labels(limit: int = 10):
        labels = store.current_labels()
        if labels.empty:
            return []
        labels = labels.sort_values("labelled_utc", ascending=False).head(limit)
        rows = labels[["title", "filename", "genre", "model_said", "who"]].to_dict("records")
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in rows]

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
        from helpers.ingest import is_url
        from helpers.netsafe import check_url

        upload = files.get("file")
        url = (form.get("url") or "").strip()
        if upload is not None and upload.filename:
            saved, shown = save_upload(upload, folder, max_upload_bytes)
            try:
                check_upload(saved, shown)
            except InputError:
                if store.song_id(saved) is None:
                    saved.unlink(missing_ok=True)  # keep nothing the page refused
                raise
            return jobs.submit("predict", {"upload": str(saved), "name": shown})
        if url:
            try:
                if not is_url(url):
                    raise InputError(url, "not an http(s) URL")
                url = check_url(url)
            except InputError as exc:
                _log.info("URL refused: %s", exc)
                raise InputError("URL", FETCH_FAILED) from None
            return jobs.submit("predict", {"url": url})
        raise InputError("form", "paste a song URL or choose a file to upload")

    def check_upload(path: Path, shown: str) -> None:
        """Refuse an upload from its header alone: not audio, too short, or too long."""
        from helpers.audio import check_audio, probe_duration
        from helpers.predict import default_min_window_seconds

        try:
            stated = probe_duration(path)
        except InputError:  # not audio: check_audio below gives the reason
            stated = None
        if stated is not None and stated > max_duration:
            raise InputError(shown, f"song is {stated / 60:.1f} min long, over the "
                                    f"{max_duration / 60:.1f} min limit")
        try:
            check_audio(path, default_min_window_seconds(window_seconds), source=shown)
        except InputError as exc:
            raise InputError(shown, _without_paths(exc.reason, path, shown)) from None

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/")
    def index():
        return show_index()

    @app.post("/predict")
    def predict_page():
        try:
            job_id = submit_job(request.form, request.files)
        except InputError as exc:
            return show_index(error=str(exc), status=400)
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
            predictions = store.predictions(song_id)
            row = predictions[predictions["prediction_id"] == prediction_id]
            if row.empty:
                raise InputError("prediction_id", "no such prediction for this song")
            model_said = str(row["genre"].iloc[0])  # from the store, never from the form
            action = form.get("action", "")
            if action == "confirm":
                genre = model_said
            elif action == "correct":
                from helpers.store import normalise_genre

                typed = (form.get("new_genre") or "").strip()
                picked = (form.get("genre") or "").strip()
                if typed:
                    genre = normalise_genre(typed)
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
                    store.record_label(song_id, genre, who=who, where="web",
                                       model_said=model_said, prediction_id=prediction_id)
        except StoreError:
            raise
        except InputError as exc:
            return show_index(error=str(exc), status=400)
        song = store.songs().set_index("song_id").loc[song_id]
        title = song["title"] or song["filename"]
        verb = "Confirmed" if action == "confirm" else "Corrected"
        flash(f"{verb}: \u201c{title}\u201d is {genre}. Thank you!")
        return redirect(url_for("index"), code=303)

    # ------------------------------------------------------------------ JSON API
    @app.post("/api/predict")
    @csrf.exempt
    def api_predict():
        form = request.form
        if request.is_json:
            body = request.get_json(silent=True)
            form = body if isinstance(body, dict) else {}
        try:
            job_id = submit_job(form, request.files)
        except InputError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(job_id=job_id, status_url=url_for("api_job", job_id=job_id,
                                                         _external=True)), 202

    @app.get("/api/jobs/<job_id>")
    def api_job(job_id):
        job = get_job(job_id)
        result = job["result"] or {}
        return jsonify(status=job["status"], stage=job["stage"],
                       result=result.get("prediction"), error=job["error"],
                       song_id=result.get("song_id"), prediction_id=result.get("prediction_id"))

    # ------------------------------------------------------------------ errors
    def wants_json() -> bool:
        return request.path.startswith("/api/")

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
        return page_error("This form has expired or did not come from this page; nothing was "
                          "done. Please reload the page and try again.", 400)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        message = f"upload: file is larger than the {max_upload_bytes // 2**20} MB limit"
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
    from helpers.ingest import downloads_dir

    return downloads_dir()


def _job_title(job: dict) -> str:
    payload = job["payload"]
    return payload.get("name") or payload.get("url") or "your song"


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


# --------------------------------------------------------------------------- command line

def is_loopback_host(host: str) -> bool:
    """Return True when *host* is a loopback address or ``localhost``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def share_link(host: str, port: int, key: str | None) -> str:
    """Return the link to share: ``http://HOST:PORT/?key=KEY`` (a LAN address for 0.0.0.0)."""
    shown = host.strip("[]")
    try:
        if ipaddress.ip_address(shown).is_unspecified:
            shown = _lan_address(ipaddress.ip_address(shown).version)
    except ValueError:
        pass
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?key={key}" if key else "")


def _lan_address(version: int = 4) -> str:
    """This machine's address on its local network (no packet is sent)."""
    family, probe = (socket.AF_INET, "192.0.2.1") if version == 4 else (socket.AF_INET6, "2001:db8::1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((probe, 9))
            return udp.getsockname()[0]
    except OSError:
        return socket.gethostname()


def run_serve_command(args) -> int:
    """``music-study serve [--host H] [--port N] [--key K | --no-key] [--workers N]``.

    Builds the model, then serves the page with waitress until Ctrl-C. Prints one line on
    stdout: the link to share (with ``key=``); everything else goes to stderr.
    """
    import waitress

    if not 0 <= args.port < 65536:
        raise InputError(args.port, "port must be between 1 and 65535 (0: any free port)")
    if args.workers < 1:
        raise InputError(args.workers, "--workers must be at least 1")
    if args.no_key:
        if not is_loopback_host(args.host):
            raise InputError(args.host, "--no-key is allowed only with a loopback --host "
                                        "(127.0.0.1, ::1 or localhost)")
        key = None
    else:
        key = args.key or os.environ.get(WEB_KEY_ENV) or secrets.token_urlsafe(24)
        if len(key) < 8 or not re.fullmatch(r"[A-Za-z0-9._~-]+", key):
            raise InputError("--key", "use at least 8 characters from A-Z a-z 0-9 . _ ~ -")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="music-study serve: %(message)s")
    quota = int(args.disk_quota_mb * 2**20) if args.disk_quota_mb else DISK_QUOTA_BYTES
    app = create_app(access_key=key, require_key=key is not None, workers=args.workers,
                     disk_quota_bytes=quota)
    server = waitress.create_server(app, host=args.host, port=args.port, threads=8,
                                    ident="music-study")
    port = getattr(server, "effective_port", args.port)
    print(share_link(args.host, port, key), flush=True)
    print(f"music-study serve: serving on {args.host}:{port} with waitress; share the link "
          "above (it holds the key); Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        server.close()
        app.extensions["music_study"]["jobs"].shutdown(wait=False)
    return 0

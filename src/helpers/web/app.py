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

The app is a factory (:func:`create_app`) over small parts: the views are two blueprints
(:mod:`helpers.web.views`), the job that predicts a song is a plain function
(:func:`helpers.web.jobs.run_predict_job`), uploads and the quota are
:mod:`helpers.web.uploads`; this module holds the access gate, the headers and the error pages.

Examples
--------
>>> from helpers.web.app import create_app
>>> app = create_app(store_path=tmp_path / "labels.sqlite", access_key="s3cret-key")  # doctest: +SKIP
>>> client = app.test_client()                                  # doctest: +SKIP
>>> client.get("/?key=s3cret-key")   # an old-style link: sets the session  # doctest: +SKIP
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from flask import Flask, g, redirect, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadData
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_cookie

from helpers.audio.ingest import downloads_dir
from helpers.errors import StoreError, StoreReadOnlyError
from helpers.models.default import default_model
from helpers.store import LabelStore
from helpers.text import safe_logger
from helpers.web import views
from helpers.web.jobs import (
    DEFAULT_WORKERS,
    FETCH_FAILED,
    JobBoard,
    PredictContext,
    run_predict_job,
    store_message,
)
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
from helpers.web.uploads import (
    DISK_QUOTA_BYTES,
    FORM_ROOM_BYTES,
    MAX_DURATION_SECONDS,
    MAX_UPLOAD_BYTES,
    NO_ROOM,
    clean_filename,
    too_large_message,
    uploads_dir,
)
from helpers.web.views import WebState, page_error, refuse, show_index, wants_json

#: Environment variable holding the access key for ``music-study serve``.
WEB_KEY_ENV = "MUSIC_STUDY_WEB_KEY"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_log = safe_logger(__name__)

__all__ = ["create_app", "WEB_KEY_ENV", "DISK_QUOTA_BYTES", "FETCH_FAILED", "FORM_ROOM_BYTES",
           "MAX_UPLOAD_BYTES", "NO_ROOM", "clean_filename", "too_large_message"]


def create_app(store_path=None, model=None, upload_dir=None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, window_seconds: float = 30.0,
               fetch_options: dict | None = None, secret_key: str | None = None,
               access_key: str | None = None, require_key: bool = True,
               workers: int | None = None, max_duration: float = MAX_DURATION_SECONDS,
               disk_quota_bytes: int = DISK_QUOTA_BYTES, allowed_hosts=None,
               trusted_proxies=(), behind_https: bool = False, limiter=None,
               tags: bool = True) -> Flask:
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
    tags : bool
        Show each song's music tags (pretrained musicnn networks, about 2 s more per minute of
        audio on one core).
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
    download_folder = Path(fetch_options.pop("download_dir", None) or downloads_dir())
    if model is None:
        started = time.monotonic()
        _log.info("building the default genre model (once, at start) ...")
        model = default_model()
        _log.info("default genre model ready in %.1f s", time.monotonic() - started)

    context = PredictContext(store=store, model=model, upload_dir=folder,
                             download_dir=download_folder, window_seconds=window_seconds,
                             max_duration=max_duration, disk_quota_bytes=disk_quota_bytes,
                             fetch_options=fetch_options, tags=tags)

    def work(payload: dict, report) -> dict:
        return run_predict_job(payload, report, context)

    try:
        jobs = JobBoard(store.path, work, workers=workers or DEFAULT_WORKERS,
                        describe=views.visible)
    except StoreReadOnlyError as exc:  # jobs live in memory; the page says answers are not saved
        _log.warning("%s; jobs are kept in memory until the server stops", exc)
        jobs = JobBoard(":memory:", work, workers=workers or DEFAULT_WORKERS,
                        describe=views.visible)
    context.active_payloads = jobs.active_payloads

    def gate(head):
        """The HTTP server's decision once a request's headers are in (see build_server)."""
        return access.early(head, max_body=max_upload_bytes + FORM_ROOM_BYTES,
                            quota_bytes=disk_quota_bytes,
                            too_large=too_large_message(max_upload_bytes),
                            no_room=f"upload: {NO_ROOM}")

    web = WebState(store=store, model=model, jobs=jobs, room=context.room, access=access,
                   sessions=sessions, upload_dir=folder, access_key=access_key, gate=gate,
                   max_upload_bytes=max_upload_bytes, window_seconds=window_seconds,
                   max_duration=max_duration, model_genres=[str(g) for g in model.classes_])
    app.extensions["music_study"] = web

    # ------------------------------------------------------------------ access key, origin
    def path_only() -> str:
        """Where the key link leads once the key is taken out: this page's path alone (no
        query argument, no other host: '//x' or '/\\x' cannot become another site)."""
        if request.endpoint is None:
            return "/"
        return "/" + quote(request.path.lstrip("/\\"), safe="/-._~")

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
                views.start_session(web)
                # drop the key from the address bar (history, screenshots, Referer)
                return redirect(path_only(), code=303)
            if not (request.path == "/session" and request.method == "POST") and \
                    not sessions.valid(session.get("sid")):
                return page_error_with_key_exchange()
        if request.method not in _SAFE_METHODS and not request.path.startswith("/api/") \
                and not same_origin():
            _log.info("refused a cross-site %s %s (Origin %r, Referer %r)", request.method,
                      request.path, request.headers.get("Origin"), request.headers.get("Referer"))
            return refuse(Refusal(403, CROSS_SITE))
        return None

    def page_error_with_key_exchange():
        return render_template("message.html", error=NEEDS_KEY_PAGE, key_exchange=True), 401

    def same_origin() -> bool:
        # Host and port must match; the scheme may differ (an https proxy in front of http).
        claimed = request.headers.get("Origin") or request.headers.get("Referer")
        if claimed is None:
            return True  # neither header (privacy tools): the CSRF token alone decides
        return origin_matches(claimed, request.host)

    csrf = CSRFProtect(app)  # registered after check_access, so the key is checked first
    csrf.exempt(views.api)  # the API takes a bearer key, never a cookie
    app.register_blueprint(views.pages)
    app.register_blueprint(views.api)

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

    _register_error_pages(app, max_upload_bytes)
    return app


def _register_error_pages(app: Flask, max_upload_bytes: int) -> None:
    """Every failure answers with one plain sentence: a page, or JSON for the API."""

    @app.errorhandler(StoreError)
    def store_unavailable(exc):
        _log.warning("label store: %s", exc)
        message = store_message(exc)
        if wants_json():
            return {"error": message}, 503
        return show_index(error=message, status=503)

    @app.errorhandler(CSRFError)
    def bad_csrf(exc):
        _log.info("CSRF check failed on %s: %s", request.path, exc.description)
        message = ("This form has expired or did not come from this page; nothing was done. "
                   "Please reload the page and try again.")
        if wants_json():
            return {"error": message}, 400
        return page_error(message, 400)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        if (request.content_length or 0) > max_upload_bytes:
            message = too_large_message(max_upload_bytes)
        else:  # werkzeug's limit on a form's text field
            message = "form: a field is too long"
        if wants_json():
            return {"error": message}, 413
        return show_index(error=message, status=413)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        messages = {404: "No such page.", 405: "That address does not take this kind of request.",
                    400: "The request was incomplete or malformed."}
        message = messages.get(exc.code, "The request could not be handled.")
        if wants_json():
            return {"error": message}, exc.code
        return page_error(message, exc.code)

    @app.errorhandler(Exception)
    def server_error(exc):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        _log.exception("while serving %s", request.path)
        message = ("Something went wrong on our side; nothing was stored. Please try again or "
                   "tell the person running this page.")
        if wants_json():
            return {"error": message}, 500
        return page_error(message, 500)

"""The web page's views: the pages a visitor sees (blueprint ``pages``) and the JSON API
(blueprint ``api``), over one :class:`WebState` that :func:`helpers.web.app.create_app` builds.

The views only read the request, call the plain functions of :mod:`helpers.web.uploads`,
:mod:`helpers.web.jobs` and :mod:`helpers.labeling.session`, and render the answer; access,
origin and error handling are the app's (:mod:`helpers.web.app`).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from helpers.audio.ingest import is_url
from helpers.audio.netsafe import check_url
from helpers.errors import InputError, StoreError
from helpers.labeling.session import model_said, record_answer
from helpers.store import LabelStore, normalise_genre
from helpers.text import clean_text, safe_logger
from helpers.web.jobs import FETCH_FAILED, JobBoard, store_message
from helpers.web.security import Access, Refusal, SessionBook
from helpers.web.uploads import (
    ALLOWED_EXTENSIONS,
    MAX_DURATION_SECONDS,
    MAX_UPLOAD_BYTES,
    DiskRoom,
    check_upload,
    save_upload,
    stream_size,
    upload_name,
)

#: Largest JSON body of the API, in bytes (a form's text fields keep Flask's 500 kB limit).
MAX_FIELD_BYTES = 64 * 1024
#: Longest URL accepted, in characters.
MAX_URL_CHARACTERS = 2048
#: Identical confirmations of one song by one person within this many seconds are one event.
REPEAT_WINDOW_SECONDS = 10 * 60
#: Longest error shown to a visitor, in characters.
MAX_SHOWN_ERROR = 300
#: Colours of the genre bars, in the model's genre order (then cycled).
GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")
_MAX_ID = 2**63 - 1  # SQLite's largest integer
_log = safe_logger(__name__)

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


@dataclass
class WebState:
    """Everything the views share: built once by :func:`helpers.web.app.create_app`.

    ``app.extensions["music_study"]`` is this object; its fields can also be read by key
    (``state["jobs"]``).
    """

    store: LabelStore
    model: object
    jobs: JobBoard
    room: DiskRoom
    access: Access
    sessions: SessionBook
    upload_dir: Path
    access_key: str | None
    gate: object
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    window_seconds: float = 30.0
    max_duration: float = MAX_DURATION_SECONDS
    model_genres: list = field(default_factory=list)
    label_lock: threading.Lock = field(default_factory=threading.Lock)

    def __getitem__(self, name: str):
        return getattr(self, name)

    def job_or_404(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            abort(404)
        return job

    def known_genres(self) -> list[str]:
        """The model's genres, then every other genre of the store's current labels."""
        stored = self.store.current_labels()
        # cleaned again on the way out: a store written by an older version may hold anything
        found = {clean_text(g, 64) for g in stored["genre"]} if len(stored) else set()
        return self.model_genres + sorted(found - set(self.model_genres) - {""})


def state() -> WebState:
    """The running app's :class:`WebState`."""
    return current_app.extensions["music_study"]


# ---------------------------------------------------------------------- small rules
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


def visible(exc: InputError) -> str:
    """The text a visitor reads for a refused input: a store failure's plain sentence, else
    the error's own one-line message, cleaned and capped."""
    if isinstance(exc, StoreError):
        return store_message(exc)
    return clean_text(str(exc), MAX_SHOWN_ERROR)


def _clean_who(text) -> str:
    return clean_text(text or "", 64) or "web visitor"


def _colour_map(genres) -> dict[str, str]:
    return {g: GENRE_COLOURS[i % len(GENRE_COLOURS)] for i, g in enumerate(genres)}


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


# ---------------------------------------------------------------------- submissions
def submit_job(web: WebState, form, files) -> str:
    """Check a submission (cheap checks only) and queue its job; return the job id."""

    upload = files.get("file")
    url = form.get("url")
    if url is not None and not isinstance(url, str):
        raise InputError("url", "must be a text: the song's http(s) address")
    url = (url or "").strip()
    if upload is not None and upload.filename:
        return submit_upload(web, upload)
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
        return web.jobs.submit("predict", {"url": url})
    raise InputError("form", "paste a song URL or choose a file to upload")


def submit_upload(web: WebState, upload) -> str:
    """Save an upload within the disk quota, check its header, and queue its job."""
    shown = upload_name(upload)
    size = stream_size(upload)
    limit = web.max_upload_bytes
    if size is not None and size > limit:  # the size limit speaks before the quota
        raise InputError(shown, f"file is larger than the {limit // 2**20} MB limit")
    with web.room.reserve(size if size is not None else limit, shown) as landed:
        saved, shown = save_upload(upload, web.upload_dir, limit)
        landed(saved)
        try:
            check_upload(saved, shown, max_duration=web.max_duration,
                         window_seconds=web.window_seconds)
            return web.jobs.submit("predict", {"upload": str(saved), "name": shown})
        except BaseException:
            try:
                known = web.store.song_id(saved) is not None
            except StoreError:
                known = True  # cannot tell: keep the file rather than lose a labelled one
            if not known:
                saved.unlink(missing_ok=True)  # keep nothing the page refused
            raise


def answer_from_form(web: WebState, form) -> tuple[int, str, str]:
    """Record the visitor's confirmation or correction; return ``(song_id, genre, action)``.

    What the model said is read from the stored prediction, never from the form; a repeat of
    the same answer within :data:`REPEAT_WINDOW_SECONDS` is one event.
    """

    store = web.store
    song_id = parse_id(form.get("song_id"), "song_id")
    prediction_id = parse_id(form.get("prediction_id"), "prediction_id")
    said = model_said(store, song_id, prediction_id)
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
            if picked not in web.known_genres():
                raise InputError("genre", "pick a genre from the list, or type a new "
                                          "one in the new-genre box")
            genre = picked
        else:
            raise InputError("correction", "pick a genre from the list or type a new one")
    else:
        raise InputError("form", "choose confirm or correct")
    who = _clean_who(form.get("who"))
    with web.label_lock:
        if not _repeated(store, song_id, genre, who):
            record_answer(store, song_id, genre, prediction_id=prediction_id, who=who,
                          where="web")
    return song_id, genre, action


# ---------------------------------------------------------------------- pages
def recent_labels(store, limit: int = 10):
    """The store's latest current labels, cleaned for the page."""
    labels = store.current_labels()
    if labels.empty:
        return []
    labels = labels.sort_values("labelled_utc", ascending=False).head(limit)
    rows = labels[["title", "filename", "genre", "model_said", "who"]].to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) or v is None
                 else clean_text(v, 200)) for k, v in r.items()} for r in rows]


def page_error(message: str, status: int):
    return render_template("message.html", error=message), status


def wants_json() -> bool:
    """The request is the API's or the key exchange's: answers are JSON, not pages."""
    return request.path.startswith("/api/") or request.path == "/session"


def refuse(refusal: Refusal):
    """The response for a refused request: JSON or a page, with the refusal's headers."""
    if refusal.json or wants_json():
        response = jsonify(error=refusal.message)
    else:
        response = current_app.make_response(page_error(refusal.message, refusal.status))
    response.status_code = refusal.status
    for name, value in refusal.headers:
        response.headers[name] = value
    return response


def start_session(web: WebState) -> None:
    """A new session for a visitor who gave the key (a fresh id: none from before)."""
    web.sessions.close(session.get("sid"))
    session.clear()
    session.permanent = True
    session["sid"] = web.sessions.open()


def show_index(error: str | None = None, status: int = 200):
    web = state()
    try:
        recent = recent_labels(web.store)
    except StoreError:
        recent = []
    return render_template("index.html", error=error, recent=recent,
                           read_only=bool(getattr(web.store, "read_only", False)),
                           max_mb=web.max_upload_bytes // 2**20,
                           window_seconds=web.window_seconds,
                           max_minutes=web.max_duration / 60,
                           extensions=", ".join(sorted(ALLOWED_EXTENSIONS))), status


@pages.get("/healthz")
def healthz():
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@pages.get("/")
def index():
    return show_index()


@pages.post("/session")
def open_session():
    """The page's script sends the key of a ``#key=`` link here once."""
    web = state()
    if web.access_key is None:
        return jsonify(ok=True)
    check = web.access.try_key(request.form.get("key"), g.client)
    if not check.ok:  # the page's own sentence, as JSON for its script
        return refuse(web.access.refuse_key(check, False))
    start_session(web)
    return jsonify(ok=True)


@pages.post("/predict")
def predict_page():
    try:
        job_id = submit_job(state(), request.form, request.files)
    except StoreError:
        raise
    except InputError as exc:
        return show_index(error=visible(exc), status=400)
    return redirect(url_for("pages.job_page", job_id=job_id), code=303)


@pages.get("/jobs/<job_id>")
def job_page(job_id):
    web = state()
    job = web.job_or_404(job_id)
    if job["status"] != "done":
        return render_template("job.html", job=job, title=_job_title(job))
    result = job["result"]
    document = result["prediction"]
    model_genres = web.model_genres
    return render_template(
        "result.html", doc=document, title=document.get("title") or _job_title(job),
        song_id=result["song_id"], prediction_id=result["prediction_id"],
        genres=web.known_genres(), colours=_colour_map(model_genres + sorted(
            set(document["probabilities"]) - set(model_genres))),
        model_genres=[g for g in model_genres if g in document["probabilities"]])


@pages.get("/jobs/<job_id>/status")
def job_status(job_id):
    job = state().job_or_404(job_id)
    return jsonify(status=job["status"], stage=job["stage"])


@pages.post("/label")
def label():
    web = state()
    try:
        song_id, genre, action = answer_from_form(web, request.form)
    except StoreError:
        raise
    except InputError as exc:
        return show_index(error=visible(exc), status=400)
    song = web.store.songs().set_index("song_id").loc[song_id]
    title = clean_text(song["title"] or song["filename"] or "", 200)
    verb = "Confirmed" if action == "confirm" else "Corrected"
    flash(f"{verb}: \u201c{title}\u201d is {genre}. Thank you!")
    return redirect(url_for("pages.index"), code=303)


# ---------------------------------------------------------------------- JSON API
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


@api.post("/predict")
def api_predict():
    web = state()
    try:
        job_id = submit_job(web, api_fields(), request.files)
    except StoreError:
        raise
    except InputError as exc:
        return jsonify(error=visible(exc)), 400
    secure = web.access.is_https(request.scheme, request.remote_addr,
                                 request.headers.get("X-Forwarded-Proto"))
    return jsonify(job_id=job_id, status_url=url_for(
        "api.api_job", job_id=job_id, _external=True,
        _scheme="https" if secure else "http")), 202


@api.get("/jobs/<job_id>")
def api_job(job_id):
    job = state().job_or_404(job_id)
    result = job["result"] or {}
    return jsonify(status=job["status"], stage=job["stage"],
                   result=result.get("prediction"), error=job["error"],
                   song_id=result.get("song_id"), prediction_id=result.get("prediction_id"))

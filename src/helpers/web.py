"""A small web page: paste a song URL or upload a file, see its genre, confirm or correct it.

Each prediction shown is recorded in the label store (``where="web"``) with the model's
fingerprint, and each confirmation or correction becomes a label event carrying what the model
had said, so the labels feed the next retraining (new genres included).

Run it with ``music-study serve [--host 127.0.0.1] [--port 5000]``; it is meant for a trusted
local network (no accounts). Uploads are limited in size and extension, saved under
``data/uploads/`` with a content-hash prefix and a sanitised name; bad input is shown on the
page, never as a server error.

Examples
--------
>>> from helpers.web import create_app
>>> app = create_app(store_path=tmp_path / "labels.sqlite")  # doctest: +SKIP
>>> app.run(port=5000)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

from flask import Flask, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from helpers.errors import InputError
from helpers.paths import data_dir

#: File extensions accepted for upload (decoded by libsndfile or the shipped ffmpeg).
ALLOWED_EXTENSIONS = frozenset({
    "wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "aac", "webm", "aif", "aiff", "wma",
})
#: Largest accepted upload, in bytes.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Colours of the genre bars, in the model's genre order (then cycled).
GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")


def uploads_dir() -> Path:
    """Return the folder uploads are saved to (``data/uploads``, git-ignored)."""
    return data_dir() / "uploads"


def save_upload(storage, folder: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Save an uploaded file under *folder* with a safe, content-addressed name.

    The name is ``<first 12 hex of sha256>_<sanitised original name>``: the same file uploaded
    twice lands on the same path, and no name can escape *folder*.

    Raises
    ------
    InputError
        No file, a disallowed extension, an empty file or one over *max_bytes*.
    """
    original = storage.filename or ""
    if not original:
        raise InputError("upload", "no file chosen")
    name = secure_filename(original) or "upload"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise InputError(original, "not an accepted audio file type (accepted: "
                                   f"{', '.join(sorted(ALLOWED_EXTENSIONS))})")
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f".incoming-{os.getpid()}-{threading.get_ident()}.part"
    size = 0
    try:
        with open(partial, "wb") as handle:
            for block in iter(lambda: storage.stream.read(1 << 20), b""):
                size += len(block)
                if size > max_bytes:
                    raise InputError(original, f"file is larger than the {max_bytes // 2**20} MB limit")
                digest.update(block)
                handle.write(block)
        if size == 0:
            raise InputError(original, "file is empty")
        target = folder / f"{digest.hexdigest()[:12]}_{name}"
        os.replace(partial, target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def create_app(store_path=None, model=None, upload_dir=None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, window_seconds: float = 30.0,
               fetch_options: dict | None = None, secret_key: str | None = None) -> Flask:
    """Return the Flask application.

    Parameters
    ----------
    store_path : path-like, optional
        Label store file (default ``data/labels.sqlite``).
    model : fitted classifier, optional
        Default :func:`helpers.models.default_model`, loaded on the first prediction.
    upload_dir : path-like, optional
        Where uploads are saved (default ``data/uploads``).
    max_upload_bytes : int
        Uploads larger than this are refused with a message.
    window_seconds : float
        Window length for whole-song prediction.
    fetch_options : dict, optional
        Keyword arguments for :func:`helpers.ingest.fetch_audio` (``download_dir``,
        ``max_duration``, ``max_filesize``).
    secret_key : str, optional
        Signs the flash messages; random per process by default.
    """
    from helpers.store import LabelStore

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=max_upload_bytes + 64 * 1024,  # room for the form fields
        SECRET_KEY=secret_key or os.urandom(24).hex(),
    )
    store = LabelStore(store_path)
    folder = Path(upload_dir) if upload_dir is not None else uploads_dir()
    state = {"model": model, "fingerprint": None}
    model_lock = threading.Lock()
    app.extensions["music_study"] = {"store": store, "upload_dir": folder, "state": state}

    def get_model():
        with model_lock:
            if state["model"] is None:
                from helpers.models import default_model

                state["model"] = default_model()
            if state["fingerprint"] is None:
                from helpers.active import model_fingerprint

                state["fingerprint"] = model_fingerprint(state["model"])
        return state["model"], state["fingerprint"]

    def known_genres() -> list[str]:
        genres = [str(g) for g in state["model"].classes_] if state["model"] is not None else []
        stored = store.current_labels()
        extra = sorted(set(stored["genre"]) - set(genres)) if len(stored) else []
        return genres + extra

    def recent_labels(limit: int = 10):
        labels = store.current_labels()
        if labels.empty:
            return []
        labels = labels.sort_values("labelled_utc", ascending=False).head(limit)
        return labels[["title", "filename", "genre", "model_said", "who"]].to_dict("records")

    def show_index(error: str | None = None, status: int = 200):
        return render_template("index.html", error=error, recent=recent_labels(),
                               max_mb=max_upload_bytes // 2**20, window_seconds=window_seconds,
                               extensions=", ".join(sorted(ALLOWED_EXTENSIONS))), status

    @app.get("/")
    def index():
        return show_index()

    @app.post("/predict")
    def predict_page():
        from helpers.ingest import fetch_audio
        from helpers.predict import predict_song

        upload = request.files.get("file")
        url = (request.form.get("url") or "").strip()
        saved = None
        try:
            if upload is not None and upload.filename:
                saved = save_upload(upload, folder, max_upload_bytes)
                ingested = fetch_audio(saved)
                title, artist, source = Path(upload.filename).stem, None, "web upload"
                location = saved
            elif url:
                ingested = fetch_audio(url, **(fetch_options or {}))
                title, artist, source = ingested.title, ingested.artist, "web url"
                location = url
            else:
                raise InputError("form", "paste a song URL or choose a file to upload")
            model, fingerprint = get_model()
            prediction = predict_song(ingested.path, model=model, window_seconds=window_seconds)
        except InputError as exc:
            if saved is not None and saved.exists() and store.song_id(saved) is None:
                saved.unlink()  # keep nothing the page refused
            return show_index(error=str(exc), status=400)
        from helpers.store import file_sha256

        song_id = store.add_song(location, title=title, artist=artist,
                                 duration=prediction.duration, source=source,
                                 content_hash=file_sha256(ingested.path))
        prediction_id = store.record_prediction(song_id, prediction.probabilities, fingerprint,
                                                where="web")
        return render_template(
            "result.html", prediction=prediction, title=title or ingested.path.name,
            artist=artist, song_id=song_id, prediction_id=prediction_id,
            genres=known_genres(), colours=_colour_map(prediction.genres),
            windows=prediction.windows.to_dict("records"),
        )

    @app.post("/label")
    def label():
        form = request.form
        try:
            song_id = _form_int(form, "song_id")
            prediction_id = _form_int(form, "prediction_id", required=False)
            model_said = (form.get("model_said") or "").strip() or None
            action = form.get("action", "")
            if action == "confirm":
                genre = model_said or ""
            elif action == "correct":
                genre = (form.get("new_genre") or "").strip() or (form.get("genre") or "").strip()
                if not genre:
                    raise InputError("correction", "pick a genre from the list or type a new one")
            else:
                raise InputError("form", f"unknown action {action!r}")
            who = (form.get("who") or "").strip() or "web visitor"
            store.record_label(song_id, genre, who=who[:64], where="web", model_said=model_said,
                               prediction_id=prediction_id)
        except InputError as exc:
            return show_index(error=str(exc), status=400)
        title = store.songs().set_index("song_id").loc[song_id, "title"]
        verb = "Confirmed" if action == "confirm" else "Corrected"
        flash(f"{verb}: \u201c{title}\u201d is {genre.strip().lower()}. Thank you!")
        return redirect(url_for("index"), code=303)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        return show_index(error=f"upload: file is larger than the {max_upload_bytes // 2**20} MB "
                                "limit", status=413)

    @app.errorhandler(404)
    def not_found(_exc):
        return show_index(error=f"{request.path}: no such page", status=404)

    @app.errorhandler(405)
    def wrong_method(_exc):
        return redirect(url_for("index"), code=303)

    return app


def _form_int(form, name: str, required: bool = True) -> int | None:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise InputError(name, "missing from the form")
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(name, f"not a number: {value!r}") from None


def _colour_map(genres) -> dict[str, str]:
    return {g: GENRE_COLOURS[i % len(GENRE_COLOURS)] for i, g in enumerate(genres)}


def run_serve_command(args) -> int:
    """``music-study serve [--host 127.0.0.1] [--port N]``: run the page until Ctrl-C."""
    if not 0 < args.port < 65536:
        raise InputError(args.port, "port must be between 1 and 65535")
    app = create_app()
    print(f"music-study serve: open http://{args.host}:{args.port}/ (Ctrl-C stops)",
          file=sys.stderr)
    app.run(host=args.host, port=args.port, threaded=True, debug=False)
    return 0

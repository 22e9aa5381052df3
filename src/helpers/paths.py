"""Where the workspace finds its data, and how a user points it elsewhere.

Environment variables
---------------------
MUSIC_STUDY_DATA_DIR
    Where what the *user* makes goes: label store, caches, downloads, uploads, models
    (default: ``data/`` of the checkout). What the workspace *ships* (GTZAN table, splits,
    artist index, public-domain lyrics, songs) is always read from :func:`shipped_data_dir`.
MUSIC_STUDY_GTZAN_AUDIO
    A full GTZAN audio folder in the ``genres_original/<genre>/<clip>.wav`` layout
    (the folder that holds the genre folders).
MUSIC_STUDY_SHARED_DATA
    The reference data folder (default: ``../shared/data`` beside the checkout), used by tests
    and, through :func:`optional_input`, by the notebooks' optional sections.
MUSIC_STUDY_<PARAMETER>
    An optional notebook input named by its parameter, upper-cased (``extra_rows`` ->
    ``MUSIC_STUDY_EXTRA_ROWS``), when the parameter itself is not given (:func:`optional_input`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """Return the checkout root (the folder that holds ``pyproject.toml``).

    Falls back to the current directory when the package is installed outside a checkout.
    """
    for candidate in (PACKAGE_DIR.parent.parent, Path.cwd()):
        if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
            return candidate
    return Path.cwd()


def shipped_data_dir() -> Path:
    """Return the folder of data the workspace ships (``<checkout>/data``), never moved.

    The GTZAN table, splits, artist index, public-domain lyrics and the openly licensed
    songs live here whatever ``$MUSIC_STUDY_DATA_DIR`` says.
    """
    return project_root() / "data"


def data_dir() -> Path:
    """Return the folder for what the user makes (``$MUSIC_STUDY_DATA_DIR`` or ``<root>/data``).

    Label store, caches, downloads, uploads and models go here; shipped data does not
    (see :func:`shipped_data_dir`).
    """
    env = os.environ.get("MUSIC_STUDY_DATA_DIR")
    return Path(env).expanduser().resolve() if env else shipped_data_dir()


user_data_dir = data_dir


def default_model_path() -> Path:
    """Return where the default model is cached (``data/models/default.skops``, git-ignored)."""
    return data_dir() / "models" / "default.skops"


def shipped_selection_path() -> Path:
    """Return the shipped result of the default-model selection on the embedded table."""
    return shipped_data_dir() / "model_selection.json"


def reports_dir() -> Path:
    """Return the folder reports are written to."""
    return project_root() / "reports"


def notebooks_dir() -> Path:
    """Return the folder of numbered notebooks."""
    return project_root() / "notebooks"


def shared_data_dir() -> Path | None:
    """Return the reference data folder if it exists, else ``None``."""
    env = os.environ.get("MUSIC_STUDY_SHARED_DATA")
    candidate = Path(env) if env else project_root().parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


def gtzan_audio_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """Return a GTZAN audio folder: *explicit*, else ``$MUSIC_STUDY_GTZAN_AUDIO``, else ``None``.

    The folder must hold ``<genre>/<genre>.NNNNN.wav`` files (GTZAN's ``genres_original``).
    """
    chosen = explicit or os.environ.get("MUSIC_STUDY_GTZAN_AUDIO")
    if not chosen:
        return None
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise InputError(path, "GTZAN audio folder does not exist")
    return path


def shipped_music_dir() -> Path:
    """Return the folder of openly licensed whole songs shipped in ``data/music``."""
    return shipped_data_dir() / "music"


def input_environment_variable(parameter: str) -> str:
    """Return the environment variable that names optional input *parameter* (``MUSIC_STUDY_`` + upper case)."""
    return "MUSIC_STUDY_" + parameter.upper()


def optional_input(parameter: str, explicit: str | os.PathLike | None = None,
                   shared: str | None = None, env: str | None = None) -> tuple[Path | None, str]:
    """Find an optional input: the parameter, else its environment variable, else the shared data.

    Every notebook finds its optional inputs (GTZAN audio, the study's extra rows, a liked
    list) this one way, so a section runs wherever its data exists.

    Parameters
    ----------
    parameter : str
        The notebook parameter's name (``"extra_rows"``).
    explicit : path-like, optional
        The parameter's value; when given it must exist.
    shared : str, optional
        Path of the input inside the reference data folder (:func:`shared_data_dir`), e.g.
        ``"seed/features_30_secActive.csv"``; used only when it exists.
    env : str, optional
        Environment variable to read (default :func:`input_environment_variable`); when set it
        must name an existing path.

    Returns
    -------
    (path, source) : (pathlib.Path or None, str)
        The resolved path and where it came from: ``"parameter"``, ``"$NAME"``,
        ``"shared data"``; ``(None, "")`` when nothing is found.

    Raises
    ------
    InputError
        When the parameter or the environment variable names a path that does not exist.
    """
    env = env or input_environment_variable(parameter)
    for value, source in ((explicit, "parameter"), (os.environ.get(env), f"${env}")):
        if value:
            path = Path(value).expanduser().resolve()
            if not path.exists():
                raise InputError(path, f"{parameter} ({source}) does not exist")
            return path, source
    base = shared_data_dir()
    if shared and base is not None and (base / shared).exists():
        return (base / shared).resolve(), "shared data"
    return None, ""


def fingerprint(path: str | os.PathLike, length: int = 12) -> str:
    """Return a short fingerprint of an input: the sha256 prefix of a file's bytes, or for a
    folder of the sorted relative names and sizes of the files in it."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{item.stat().st_size}\n".encode())
        return digest.hexdigest()[:length]
    return file_sha256(path)[:length]


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file's bytes (the label store's content hash, and what a
    compact model copy records of its source files)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Give a temporary file beside *path* to write; it replaces *path* only once complete.

    The folder of *path* is created. The temporary file (``NAME*.part`` in the same folder,
    so the replace is atomic) is removed if the writing fails.

    Examples
    --------
    >>> with atomic_write(tmp_path / "model.npz") as temp, open(temp, "wb") as out:  # doctest: +SKIP
    ...     np.savez(out, weights=weights)  # a file object: savez would add .npz to a name
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=path.name, suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)

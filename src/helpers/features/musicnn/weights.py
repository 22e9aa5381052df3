"""The shipped musicnn weights: where they are, how they are checked, how they are loaded.

``weights/MTT_musicnn.npz`` and ``weights/MSD_musicnn.npz`` hold, under TensorFlow's variable
names, the 64 float32 arrays inference reads (kernels, biases, batch-norm gamma / beta /
moving mean / moving variance; none of the Adam slots), plus ``tags``, the 50 output tags in
order. They were converted once from musicnn 0.1.0's PyPI wheel by
``tools/convert_musicnn_weights.py`` (:mod:`helpers.features.musicnn.convert`); ``weights/ORIGIN.json``
records the wheel's name, version and sha256, the sha256 of every file read from it, the
command, and the sha256 of each ``.npz`` written. ``weights/LICENSE`` is musicnn's ISC notice,
which allows redistribution with the notice kept beside the copy.

Why ship the arrays instead of building them at install time: a clone works offline straight
away (no step that downloads a 29 MB wheel and no network at install or run time), the bytes
are fixed and checked (the same weights for everyone, verified against ORIGIN.json at load),
and installing needs no build step and no TensorFlow. The arrays are 6.3 MB in all.

At load, a missing or damaged file (sha256 other than ORIGIN.json's, unreadable archive,
variable missing or of the wrong shape) is a one-line :class:`helpers.errors.InputError`
naming the file and the remedy.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from helpers.errors import InputError
from helpers.paths import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ORIGIN_PATH = WEIGHTS_DIR / "ORIGIN.json"
MODELS = ("MTT_musicnn", "MSD_musicnn")

#: What a user can do about missing or damaged weights.
REMEDY = ("reinstall the package, or rebuild the weights with "
          "`python tools/convert_musicnn_weights.py musicnn-0.1.0-py3-none-any.whl`")


def weights_path(model: str) -> Path:
    """The shipped ``.npz`` of *model*.

    Raises
    ------
    helpers.errors.InputError
        *model* is not one of :data:`MODELS`.
    """
    if model not in MODELS:
        raise InputError(model, f"unknown musicnn model; choose one of {', '.join(MODELS)}")
    return WEIGHTS_DIR / f"{model}.npz"


def origin() -> dict:
    """The provenance record ``weights/ORIGIN.json``.

    Raises
    ------
    helpers.errors.InputError
        The file is missing or not JSON.
    """
    try:
        return json.loads(ORIGIN_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(ORIGIN_PATH, f"musicnn weights record not found; {REMEDY}") from None
    except (OSError, ValueError) as exc:
        raise InputError(ORIGIN_PATH, f"unreadable musicnn weights record ({exc}); "
                                      f"{REMEDY}") from None


def read_weights(model: str, path: str | Path | None = None,
                 expected_sha256: str | None = None) -> tuple[dict[str, np.ndarray], tuple]:
    """Read and check one model's arrays.

    Parameters
    ----------
    model : str
        ``"MTT_musicnn"`` or ``"MSD_musicnn"``.
    path : path-like, optional
        Another ``.npz`` to read (default: the shipped one).
    expected_sha256 : str, optional
        The sha256 the file must have; default: ORIGIN.json's for the shipped file, none
        for another *path*.

    Returns
    -------
    arrays : dict of str to np.ndarray
        The inference variables.
    tags : tuple of str
        The output tags in order.

    Raises
    ------
    helpers.errors.InputError
        Missing file, sha256 mismatch, unreadable archive, missing or misshapen variable.
    """
    from .network import variable_shapes

    shipped = path is None
    path = Path(weights_path(model) if shipped else path)
    if not path.is_file():
        raise InputError(path, f"musicnn weights not found; {REMEDY}")
    if expected_sha256 is None and shipped:
        expected_sha256 = origin().get("outputs", {}).get(path.name, {}).get("sha256")
        if expected_sha256 is None:
            raise InputError(ORIGIN_PATH, f"records no sha256 for {path.name}; {REMEDY}")
    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise InputError(path, f"damaged musicnn weights (sha256 differs from "
                               f"weights/ORIGIN.json); {REMEDY}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, f"unreadable musicnn weights ({type(exc).__name__}); "
                               f"{REMEDY}") from None
    tags = tuple(str(t) for t in arrays.pop("tags", ()))
    problems = [f"{name} missing" if name not in arrays else
                f"{name} has shape {arrays[name].shape}, not {shape}"
                for name, shape in variable_shapes().items()
                if name not in arrays or arrays[name].shape != shape]
    if len(tags) != 50:
        problems.append(f"{len(tags)} tags, not 50")
    if problems:
        raise InputError(path, f"incomplete musicnn weights ({problems[0]}); {REMEDY}")
    return {name: arrays[name].astype(np.float32, copy=False) for name in variable_shapes()}, tags

"""Notebook 05 for labelling by hand, with the tracked notebook left as it is.

``make label`` opens a working copy of the labeler notebook (:func:`working_copy`, under the
user's data folder, git-ignored) in JupyterLab with :data:`INTERACTIVE_ENV` set, which the
notebook reads (:func:`interactive_requested`) right after its parameters. Outputs and
autosaves then go to the copy; the tracked notebook, which ``make report`` runs headless with
its scripted session and simulation, never changes.

Examples
--------
>>> from helpers.labeling.launch import working_copy
>>> working_copy()  # doctest: +SKIP
PosixPath('.../data/user/notebooks/05_active_learning_labeler.ipynb')
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers.paths import data_dir, notebooks_dir

#: Environment variable that makes notebook 05 interactive (any of 1, true, yes).
INTERACTIVE_ENV = "MUSIC_STUDY_INTERACTIVE"

#: The labeler notebook.
LABELER_NOTEBOOK = "05_active_learning_labeler.ipynb"


def interactive_requested(default: bool = False) -> bool:
    """Whether the notebook runs for a person: :data:`INTERACTIVE_ENV` set, else *default*."""
    value = os.environ.get(INTERACTIVE_ENV, "").strip().lower()
    return True if value in ("1", "true", "yes") else bool(default)


def working_copy(name: str = LABELER_NOTEBOOK, folder=None) -> Path:
    """Return the person's working copy of a tracked notebook, made from it when missing.

    The copy lives in ``<data folder>/user/notebooks/`` (git-ignored). An existing copy is
    kept (it holds the person's outputs and edits) unless the tracked notebook is newer.

    Parameters
    ----------
    name : str
        File name of the notebook in ``notebooks/``.
    folder : path-like, optional
        Where the copy goes; default ``data_dir() / "user" / "notebooks"``.
    """
    tracked = notebooks_dir() / name
    target = Path(folder) if folder is not None else data_dir() / "user" / "notebooks"
    copy = target / name
    if not copy.is_file() or copy.stat().st_mtime < tracked.stat().st_mtime:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tracked, copy)
    return copy

"""The default genre model: the best candidate by honest selection, fitted on all clips.

:func:`default_model` takes the candidate :func:`helpers.models.selection.select_model` chose (by
artist-grouped CV over every clip, never by a test split; the shipped result
``data/model_selection.json`` spares the first call the selection), fits it on all clips with
its calibration and its open-set rule (:func:`helpers.models.openset.cached_rule`), and caches it as
a model file with its model card (:func:`model_card`); :func:`resolve_model` turns a user's
``--model`` (name or file) into a fitted model.

Examples
--------
>>> from helpers.models.default import default_model
>>> model = default_model()  # doctest: +SKIP
>>> model.model_card_["name"], model.model_card_["test_split"]  # doctest: +SKIP
('logreg', 'fault-filtered')
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from helpers import data
from helpers.constants import DEFAULT_GRID, DEFAULT_SEED, MODEL_CARD_VERSION, SELECTION_VERSION
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.models import openset
from helpers.models.candidates import CANDIDATE_NAMES, CANDIDATES, get_candidate
from helpers.models.card import library_versions
from helpers.models.compact import ensure_compact
from helpers.models.files import load_model, model_metadata, save_model
from helpers.models.novelty import NeighbourScorer
from helpers.models.selection import Selection, fit_candidate, select_model
from helpers.models.training import table_fingerprint
from helpers.paths import data_dir, default_model_path, shipped_selection_path

# MODEL_CARD_VERSION (bumped when the card or the objects a model file carries change), the
# selection's DEFAULT_SEED / DEFAULT_GRID and default_model_path live in helpers.constants and
# helpers.paths, which the fast start of `predict` (helpers.models.compact) reads without scikit-learn.


def candidate_model_path(name: str) -> Path:
    """Return where candidate *name*, fitted on all clips, is cached (``data/models/NAME.skops``)."""
    return data_dir() / "models" / f"{get_candidate(name).name}.skops"


def selection_result(seed: int = DEFAULT_SEED, grid: str = DEFAULT_GRID):
    """Return the default-model selection (:func:`helpers.models.selection.select_model`) and open-set rules.

    The workspace ships the result for the embedded table (``data/model_selection.json``,
    written by :func:`write_shipped_selection`); it is used when its training fingerprint, seed,
    grid and protocol version match, so the first :func:`default_model` costs one fit. Otherwise
    the selection runs (a few minutes, then cached in ``data/cache/``).

    Returns
    -------
    (Selection, dict) : the selection, and candidate name -> validated open-set rule (only the
    candidates whose rule is known so far)
    """
    table = data.load_gtzan_table()
    fingerprint = table_fingerprint(table)
    shipped = shipped_selection_path()
    try:
        stored = json.loads(shipped.read_text()) if shipped.is_file() else None
    except (OSError, ValueError):
        stored = None
    if (stored and stored.get("version") == SELECTION_VERSION
            and stored["selection"]["training_fingerprint"] == fingerprint
            and stored["selection"]["seed"] == seed and stored["selection"]["grid"] == grid):
        return Selection.from_document(stored["selection"]), dict(stored["open_set"])
    return select_model(table, seed=seed, grid=grid), {}


def write_shipped_selection(seed: int = DEFAULT_SEED, grid: str = DEFAULT_GRID,
                            path: str | Path | None = None) -> Path:
    """Run the selection and the open-set validation of every candidate; write the shipped file."""
    table = data.load_gtzan_table()
    selection = select_model(table, seed=seed, grid=grid)
    rules = {name: openset.cached_rule(name, table, seed=seed, grid=grid) for name in CANDIDATE_NAMES}
    document = selection.to_document()
    path = Path(path) if path is not None else shipped_selection_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": SELECTION_VERSION, "selection": document,
                                "open_set": rules}, indent=1, sort_keys=True) + "\n")
    return path


def model_card(name: str, selection, rule: dict | None, table: pd.DataFrame) -> dict:
    """Return the model card of candidate *name* from a selection (see :func:`default_model`).

    Keys: ``name``, ``description``, ``chosen_as_default``, ``selection_score`` /
    ``selection_std`` (artist-grouped CV accuracy, mean and std over folds) with
    ``selection_method`` and ``selection_rank``, ``test_accuracy`` / ``test_ci95`` /
    ``test_split`` / ``n_test`` / ``test_protocol``, ``genres``, ``training_fingerprint``,
    ``n_training_rows``, ``params``, ``seed``, ``open_set`` (the validated rule, or None).
    """
    row = selection.row(name)
    ranked = selection.ranked()
    return {
        "name": name, "description": row["description"],
        "chosen_as_default": name == selection.chosen,
        "selection_score": row["cv_accuracy"], "selection_std": row["cv_std"],
        "selection_log_loss": row["cv_log_loss"],
        "selection_method": f"artist-grouped {selection.n_splits}-fold CV over all {len(table)} "
                            "clips of the embedded GTZAN table (mean ± std accuracy over folds)",
        "selection_rank": [r["name"] for r in ranked].index(name) + 1,
        "selection_scores": {r["name"]: r["cv_accuracy"] for r in ranked},
        "test_accuracy": row["test_accuracy"], "test_ci95": row["test_ci95"],
        "test_split": row["test_split"], "n_test": row["n_test"],
        "test_protocol": f"same recipe trained on {row['test_split']} train+valid "
                         f"(n={row['n_train']}), scored once on its test clips (artists unseen); "
                         "bootstrap 95% interval",
        "genres": sorted(map(str, table["label"].unique())),
        "training_fingerprint": table_fingerprint(table), "n_training_rows": len(table),
        "params": row["params"], "seed": selection.seed, "grid": selection.grid,
        "open_set": rule,
    }


def _load_fresh(path: Path, card_check) -> Pipeline | None:
    """Load a cached model file if it is still valid for this table and environment."""
    if not path.is_file():
        return None
    try:
        model, metadata = load_model(path, expected_columns=MODEL_FEATURES, expected_genres=data.GENRES,
                                     return_metadata=True)
    except InputError as exc:
        warnings.warn(f"retraining the default model: {exc}", stacklevel=3)
        return None
    card = metadata.get("card") or {}
    if (metadata.get("library_versions") != library_versions() or not card_check(card)):
        return None
    return model  # load_model attached the card (model_card_)


def candidate_model(name: str, path: str | Path | None = None, retrain: bool = False,
                    seed: int = DEFAULT_SEED, grid: str = DEFAULT_GRID) -> Pipeline:
    """Return candidate *name* fitted on all clips of the embedded table, with its model card.

    Built by its recipe (:func:`helpers.models.selection.fit_candidate`), cached as a model file
    (default :func:`candidate_model_path`) and reused while the table, the library versions
    and the selection protocol are unchanged. The card is attached as ``model.model_card_`` and
    stored in the file's metadata (``card``); ``model.novelty_`` (a
    :class:`helpers.models.novelty.NeighbourScorer` over the training clips) serves the open-set rule.

    Raises
    ------
    InputError
        Unknown name (the message lists the choices).
    """
    get_candidate(name)
    table = data.load_gtzan_table()
    fingerprint = table_fingerprint(table)
    path = Path(path) if path is not None else candidate_model_path(name)

    def current(card):
        return (card.get("name") == name and card.get("training_fingerprint") == fingerprint
                and card.get("seed") == seed and card.get("grid") == grid
                and card.get("selection_version") == SELECTION_VERSION
                and card.get("card_version") == MODEL_CARD_VERSION)

    model = None if retrain else _load_fresh(path, current)
    if model is not None:
        return model
    selection, rules = selection_result(seed, grid)
    rule = rules.get(name) or openset.cached_rule(name, table, seed=seed, grid=grid)
    card = model_card(name, selection, rule, table)
    card["selection_version"] = SELECTION_VERSION
    card["card_version"] = MODEL_CARD_VERSION
    model, _ = fit_candidate(name, table, seed=seed, grid=grid)
    # the open-set rule may use the distance to the training clips: the file carries them
    model.novelty_ = NeighbourScorer().fit(table[list(MODEL_FEATURES)])
    try:
        save_model(model, path, model_metadata(model, table, name=name,
                                               description=card["description"], card=card))
    except OSError as exc:  # a read-only checkout still gets a working model
        warnings.warn(f"could not cache the model at {path}: {exc}", stacklevel=2)
    model.model_card_ = card
    return model


def default_model(path: str | Path | None = None, retrain: bool = False) -> Pipeline:
    """Return the default genre model: the best candidate by honest selection, fitted on all clips.

    The candidates (:data:`helpers.models.CANDIDATES`) are compared by artist-grouped 5-fold CV
    over the 1000 clips of the embedded GTZAN table (:func:`helpers.models.selection.select_model`, seed
    :data:`DEFAULT_SEED`; never by a test split); the best is refitted on all clips with
    calibrated probabilities and cached as a model file (default :func:`default_model_path`)
    whose metadata holds its model card (:func:`model_card`; also ``model.model_card_``). A
    cached file is reused only when its training fingerprint, library versions and selection
    protocol match; otherwise (or if it is unreadable) the model is rebuilt and the file replaced.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted; has ``predict_proba``, ``classes_``, ``feature_names_in_`` and ``model_card_``.
    """
    selection, _ = selection_result()
    path = Path(path) if path is not None else default_model_path()
    model = candidate_model(selection.chosen, path=path, retrain=retrain)
    if path.is_file():
        ensure_compact(model, path)  # what `music-study predict` loads in a fresh process
    return model


def resolve_model(choice: str | os.PathLike | None = None) -> Pipeline:
    """Return the model a user means: None -> the default, a candidate name, or a model file.

    Raises
    ------
    InputError
        Neither a candidate name nor an existing file (one line listing the names).
    """
    if choice is None:
        return default_model()
    if str(choice) in CANDIDATES:
        return candidate_model(str(choice))
    path = Path(choice)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:  # a name, not a path
        get_candidate(choice)  # no candidate's name: raises the one "unknown model" error
    return load_model(path)

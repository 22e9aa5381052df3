"""Model files: a fitted model and its metadata in one skops file, loaded only if trusted.

:func:`save_model` writes the model with its metadata (feature columns, genres, library
versions, creation time, training fingerprint) atomically; :func:`load_model` deserialises
only the object types of :data:`TRUSTED_TYPES`, refusing anything else before it is loaded,
and refuses a file whose columns or genres differ from the caller's.

Examples
--------
>>> from helpers.models.files import load_model, save_model
>>> save_model(model, "data/models/mine.skops")  # doctest: +SKIP
>>> load_model("data/models/mine.skops", expected_columns=MODEL_FEATURES)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import logging
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import skops.io as sio
from sklearn.utils.validation import check_is_fitted

from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.models.card import library_versions
from helpers.models.training import table_fingerprint
from helpers.paths import atomic_write

#: Format marker stored in every model file's metadata.
MODEL_FILE_FORMAT = "music-study-model/1"

_log = logging.getLogger(__name__)


#: Object types (besides skops' own defaults) a model file may contain.
TRUSTED_TYPES: tuple[str, ...] = (
    "helpers.models.pipelines.FeatureConditioner",
    "helpers.models.pipelines.FeatureGuard",
    "helpers.models.novelty.NeighbourScorer",
    # where those classes lived before the models package: files saved then still load
    "helpers.models.FeatureConditioner",
    "helpers.openset.NeighbourScorer",
    "sklearn.neighbors._unsupervised.NearestNeighbors",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.model_selection._split.StratifiedGroupKFold",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.PowerTransformer",
    "sklearn.preprocessing._data.QuantileTransformer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
    "collections.OrderedDict",
)


#: Classes that moved since model files were first written: old path -> new path. Loading
#: rewrites the old paths, so a file saved before a move loads as the class of today.
MOVED_CLASSES = {
    "helpers.models.FeatureConditioner": "helpers.models.pipelines.FeatureConditioner",
    "helpers.openset.NeighbourScorer": "helpers.models.novelty.NeighbourScorer",
}


def _with_current_class_paths(data: bytes) -> bytes:
    """A skops file's bytes with the class paths of :data:`MOVED_CLASSES` brought up to date."""
    source = io.BytesIO(data)
    with zipfile.ZipFile(source) as archive:
        schema = json.loads(archive.read("schema.json"))
        if not _rewrite_modules(schema):
            return data
        target = io.BytesIO()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for item in archive.infolist():
                content = archive.read(item.filename)
                if item.filename == "schema.json":
                    content = json.dumps(schema).encode()
                out.writestr(item, content)
    return target.getvalue()


def _rewrite_modules(node) -> bool:
    """Point every schema node of a moved class at its new module; True when any changed."""
    changed = False
    if isinstance(node, dict):
        moved = MOVED_CLASSES.get(f"{node.get('__module__')}.{node.get('__class__')}")
        if moved is not None:
            node["__module__"] = moved.rsplit(".", 1)[0]
            changed = True
        for value in node.values():
            changed |= _rewrite_modules(value)
    elif isinstance(node, list):
        for value in node:
            changed |= _rewrite_modules(value)
    return changed


def model_metadata(model, table: pd.DataFrame | None = None, columns=None,
                   metrics: dict | None = None, **extra) -> dict:
    """Return the metadata :func:`save_model` stores beside a fitted *model*."""
    columns = list(columns if columns is not None else getattr(model, "feature_names_in_", MODEL_FEATURES))
    metadata = {
        "format": MODEL_FILE_FORMAT,
        "feature_columns": [str(c) for c in columns],
        "genres": [str(g) for g in getattr(model, "classes_", [])],
        "library_versions": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "metrics": metrics or {},
    }
    if table is not None:
        metadata["training_fingerprint"] = table_fingerprint(table, columns)
        metadata["n_training_rows"] = len(table)
    metadata.update(extra)
    return metadata


def save_model(model, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a fitted *model* and its metadata to a skops file, atomically.

    Parameters
    ----------
    model : fitted estimator
        Built from the types in :data:`TRUSTED_TYPES` (else :func:`load_model` refuses it).
    path : path-like
        Target file (``.skops``); its folder is created. An existing file is replaced only
        once the new one is complete.
    metadata : dict, optional
        JSON-serialisable metadata; :func:`model_metadata` fills in what is missing
        (feature columns, genres, library versions, creation time).

    Returns
    -------
    pathlib.Path
    """
    check_is_fitted(model)
    path = Path(path)
    full = model_metadata(model)
    full.update(metadata or {})
    # JSON text keeps the metadata readable and free of arbitrary objects
    payload = {"metadata_json": json.dumps(full, sort_keys=True, default=str), "model": model}
    with atomic_write(path) as temp:
        sio.dump(payload, temp)
    return path


def read_model_metadata(path: str | Path) -> dict:
    """Return the metadata of a model file without trusting anything else in it."""
    return load_model(path, return_metadata=True)[1]


def load_model(path: str | Path, expected_columns=None, expected_genres=None,
               return_metadata: bool = False):
    """Load a model file written by :func:`save_model`, refusing anything unexpected.

    Parameters
    ----------
    path : path-like
        A ``.skops`` model file.
    expected_columns : sequence of str, optional
        The feature columns the caller will pass; the file must have been trained on exactly
        these, in this order.
    expected_genres : sequence of str, optional
        The genres the caller expects the model to predict (any order).
    return_metadata : bool
        Also return the stored metadata.

    Returns
    -------
    estimator, or (estimator, dict) when *return_metadata*

    Raises
    ------
    InputError
        The file is missing, corrupt, not a model file, holds object types outside
        :data:`TRUSTED_TYPES` (it is then never deserialised), or its columns or genres differ
        from the expected ones.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file does not exist")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # zip or schema errors: whatever it is, it is not our file
        _log.info("%s is not a skops file: %s: %s", path, type(exc).__name__, exc)
        raise InputError(path, "not a readable skops model file") from None
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise InputError(path, "refusing to load a model file with untrusted object types: "
                         + ", ".join(unknown[:5]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = sio.loads(_with_current_class_paths(path.read_bytes()),
                                trusted=sorted({MOVED_CLASSES.get(t, t) for t in untrusted}))
    except Exception as exc:
        _log.info("cannot load %s: %s: %s", path, type(exc).__name__, exc)
        raise InputError(path, "corrupt model file (it cannot be read back)") from None
    if not isinstance(payload, dict) or set(payload) != {"metadata_json", "model"}:
        raise InputError(path, "not a music-study model file (no model + metadata inside)")
    try:
        metadata = json.loads(payload["metadata_json"])
    except (TypeError, ValueError):
        raise InputError(path, "model metadata is not valid JSON") from None
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FILE_FORMAT:
        raise InputError(path, f"not a music-study model file (format is not {MODEL_FILE_FORMAT})")
    model = payload["model"]
    if not hasattr(model, "predict"):
        raise InputError(path, "the stored object is not a fitted model")
    if expected_columns is not None and list(expected_columns) != metadata["feature_columns"]:
        stored, wanted = metadata["feature_columns"], list(expected_columns)
        diff = sorted(set(stored) ^ set(wanted))
        detail = f"differing: {', '.join(diff[:4])}" if diff else "same names in another order"
        raise InputError(path, f"model was trained on {len(stored)} columns, caller has "
                         f"{len(wanted)} ({detail})")
    if expected_genres is not None and sorted(map(str, expected_genres)) != sorted(metadata["genres"]):
        raise InputError(path, f"model predicts genres {', '.join(metadata['genres'])}; expected "
                         f"{', '.join(sorted(map(str, expected_genres)))}")
    if isinstance(metadata.get("card"), dict):
        model.model_card_ = metadata["card"]  # describe_model / model_summary read it
    return (model, metadata) if return_metadata else model

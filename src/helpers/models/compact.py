"""A fitted linear genre model reduced to its numbers, so a fresh process predicts with numpy alone.

The default model (:func:`helpers.models.default.default_model`) is a scikit-learn pipeline kept in a
skops file. Loading that file imports scikit-learn, scipy's statistics and, through skops, every
estimator skops can trust: over a second of a fresh ``music-study predict``, for a model whose
prediction is a few matrix products. :func:`compact_model` takes the fitted pipeline apart into
those numbers (conditioning, scaling, the fold models' weights and calibration temperatures,
the open-set neighbour index), :func:`save_compact` writes them beside the skops file as an
``.npz`` archive read without pickle, and :func:`load_default` reads them back when they still
belong to the current default model file.

Supported pipelines are those :func:`helpers.models.pipelines.build_model` makes for linear candidates:
``FeatureConditioner`` (``none``, ``log-variance`` or ``power``) -> ``FeatureGuard`` -> ``StandardScaler`` ->
``LogisticRegression`` (multinomial), optionally inside a temperature-calibrated
``CalibratedClassifierCV``. Anything else raises :class:`UnsupportedModel` and keeps using the
skops file. The predictions equal the pipeline's to float64 rounding (tested).

Examples
--------
>>> from helpers.models import compact, default_model
>>> fast = compact.compact_model(default_model())  # doctest: +SKIP
>>> fast.predict_proba(rows)  # same as default_model().predict_proba(rows)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from helpers import constants
from helpers.errors import InputError
from helpers.models.card import library_versions
from helpers.models.novelty import neighbour_signals
from helpers.paths import atomic_write, default_model_path, file_sha256, shipped_selection_path

#: Format marker of a compact model file.
COMPACT_FORMAT = "music-study-compact/1"

class UnsupportedModel(InputError):
    """The pipeline has a step :func:`compact_model` cannot express with its numbers."""


# --------------------------------------------------------------------------- the arithmetic


def yeo_johnson(x: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Yeo-Johnson transform of each column of *x* with its own lambda (as scipy computes it)."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    eps = np.finfo(float).eps
    for j, lmbda in enumerate(np.asarray(lambdas, dtype=float)):
        column = x[:, j]
        positive = column >= 0
        with np.errstate(invalid="ignore", over="ignore"):
            if abs(lmbda) < eps:
                out[positive, j] = np.log1p(column[positive])
            else:
                out[positive, j] = np.expm1(lmbda * np.log1p(column[positive])) / lmbda
            if abs(lmbda - 2) > eps:
                out[~positive, j] = -np.expm1((2 - lmbda) * np.log1p(-column[~positive])) / (2 - lmbda)
            else:
                out[~positive, j] = -np.log1p(-column[~positive])
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class _Stages:
    """The feature transforms in front of a model: log of variance columns, Yeo-Johnson,
    clipping to the training range (and leaving out columns), standardisations, in the order
    they were fitted."""

    def __init__(self, stages: list[dict]):
        self.stages = stages

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = np.array(values, dtype=float)  # a copy: callers' rows stay as they were
        for stage in self.stages:
            kind = stage["kind"]
            if kind == "guard":
                out = np.clip(out, stage["lower"], stage["upper"])[:, stage["keep"]]
            elif kind == "log":
                columns = stage["columns"]
                if len(columns):
                    out[:, columns] = np.log(np.maximum(out[:, columns], stage["floor"]))
            elif kind == "yeo-johnson":
                out = yeo_johnson(out, stage["lambdas"])
            elif kind == "standardise":
                out = (out - stage["mean"]) / stage["scale"]
        return out


def _export_stages(steps) -> list[dict]:
    """Turn the conditioning and scaling steps of a fitted pipeline into :class:`_Stages` data."""
    # imported here: exporting needs scikit-learn; loading a compact copy must not
    from sklearn.preprocessing import PowerTransformer, StandardScaler

    from helpers.models.pipelines import FeatureConditioner, FeatureGuard

    def standardise(scaler: StandardScaler, width: int) -> dict:
        mean = scaler.mean_ if scaler.with_mean else np.zeros(width)
        scale = scaler.scale_ if scaler.with_std else np.ones(width)
        return {"kind": "standardise", "mean": np.asarray(mean, float), "scale": np.asarray(scale, float)}

    stages: list[dict] = []
    for name, step in steps:
        if isinstance(step, FeatureGuard):
            stages.append({"kind": "guard", "lower": np.asarray(step.lower_, float),
                           "upper": np.asarray(step.upper_, float),
                           "keep": np.asarray(step.keep_columns_, int)})
        elif isinstance(step, FeatureConditioner):
            if step.method not in ("none", "log-variance", "power"):
                raise UnsupportedModel(name, f"conditioning {step.method!r} has no compact form")
            if step.method in ("log-variance", "power"):
                stages.append({"kind": "log", "columns": np.asarray(step.variance_columns_, int),
                               "floor": float(step.floor)})
            if step.method == "power":
                power: PowerTransformer = step.transformer_
                if power.method != "yeo-johnson":
                    raise UnsupportedModel(name, f"power method {power.method!r} has no compact form")
                stages.append({"kind": "yeo-johnson", "lambdas": np.asarray(power.lambdas_, float)})
                if power.standardize:
                    stages.append(standardise(power._scaler, len(power.lambdas_)))
        elif isinstance(step, StandardScaler):
            stages.append(standardise(step, step.n_features_in_))
        else:
            raise UnsupportedModel(name, f"step {type(step).__name__} has no compact form")
    return stages


def _export_classifier(name, classifier) -> dict:
    """Weights, intercepts and inverse temperatures of the final (calibrated) logistic model."""
    # imported here: exporting needs scikit-learn; loading a compact copy must not
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    def weights(model) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(model, LogisticRegression) or model.coef_.shape[0] < 3:
            raise UnsupportedModel(name, f"{type(model).__name__} has no compact form "
                                         "(only multinomial logistic regression)")
        return np.asarray(model.coef_, float), np.asarray(model.intercept_, float)

    classes = np.asarray(classifier.classes_).astype(str)
    if isinstance(classifier, LogisticRegression):
        coef, intercept = weights(classifier)
        return {"classes": classes, "coef": coef[None], "intercept": intercept[None],
                "beta": np.ones(1)}
    if not isinstance(classifier, CalibratedClassifierCV) or classifier.method != "temperature":
        raise UnsupportedModel(name, f"{type(classifier).__name__} has no compact form")
    coefs, intercepts, betas = [], [], []
    for calibrated in classifier.calibrated_classifiers_:
        seen = np.asarray(calibrated.estimator.classes_)
        if seen.dtype.kind in "iu":  # the fold models are fitted on encoded labels
            seen = np.asarray(calibrated.classes)[seen]
        if list(seen.astype(str)) != list(classes):
            raise UnsupportedModel(name, "a calibration fold saw other genres than the model")
        coef, intercept = weights(calibrated.estimator)
        coefs.append(coef)
        intercepts.append(intercept)
        betas.append(float(calibrated.calibrators[0].beta_))
    return {"classes": classes, "coef": np.stack(coefs), "intercept": np.stack(intercepts),
            "beta": np.asarray(betas)}


# --------------------------------------------------------------------------- the models


class CompactNeighbours:
    """:class:`helpers.models.novelty.NeighbourScorer` as numbers: the open-set distances by brute force.

    Parameters
    ----------
    stages : list of dict
        The scorer's space (log of the variance columns, then standardisation).
    points : np.ndarray
        The training clips in that space.
    train_distance : np.ndarray
        Each training clip's mean distance to its *k* nearest other clips.
    k : int
        Number of nearest training clips.
    """

    def __init__(self, stages: list[dict], points: np.ndarray, train_distance: np.ndarray, k: int):
        self.space_ = _Stages(stages)
        self.points_ = np.asarray(points, float)
        self.train_distance_ = np.asarray(train_distance, float)
        self.k_ = int(k)

    def score(self, X) -> dict[str, np.ndarray]:
        """Return ``neighbour_distance`` and ``local_density`` for the rows of *X*."""
        query = self.space_.transform(np.asarray(X, dtype=float))
        squared = ((query[:, None, :] - self.points_[None, :, :]) ** 2).sum(axis=-1)
        nearest = np.argsort(squared, axis=1, kind="stable")[:, : self.k_]
        distances = np.sqrt(np.take_along_axis(squared, nearest, axis=1))
        return neighbour_signals(distances, nearest, self.train_distance_)


class CompactModel:
    """A fitted linear pipeline as arrays: ``predict_proba`` and ``predict`` with numpy alone.

    Has what prediction reads from a model: ``classes_``, ``feature_names_in_``,
    ``model_card_`` (its card, or None) and ``novelty_`` (a :class:`CompactNeighbours`, or None).
    Build one with :func:`compact_model`; save and load with :func:`save_compact` /
    :func:`load_compact`.
    """

    def __init__(self, arrays: dict[str, np.ndarray], stages: list[dict], card: dict | None = None,
                 novelty: CompactNeighbours | None = None):
        self.classes_ = np.asarray(arrays["classes"]).astype(object)
        self.feature_names_in_ = np.asarray(arrays["features"]).astype(object)
        self.coef_ = np.asarray(arrays["coef"], float)  # (folds, genres, features)
        self.intercept_ = np.asarray(arrays["intercept"], float)  # (folds, genres)
        self.beta_ = np.asarray(arrays["beta"], float)  # inverse temperature per fold
        self.stages_ = _Stages(stages)
        self.model_card_ = card
        self.novelty_ = novelty

    def _values(self, X) -> np.ndarray:
        if hasattr(X, "columns") and list(map(str, X.columns)) != list(map(str, self.feature_names_in_)):
            raise InputError("features", "columns differ from those the model was fitted on")
        values = np.asarray(X, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(self.feature_names_in_):
            raise InputError("features", f"expected {len(self.feature_names_in_)} columns, got "
                             f"{values.shape[1] if values.ndim == 2 else values.ndim}")
        return values

    def predict_proba(self, X) -> np.ndarray:
        """Genre probabilities of each row of *X* (columns in ``classes_`` order)."""
        z = self.stages_.transform(self._values(X))
        logits = np.einsum("nf,kcf->knc", z, self.coef_) + self.intercept_[:, None, :]
        # each calibration fold's model, softened by its own temperature, then averaged
        return softmax(self.beta_[:, None, None] * logits).mean(axis=0)

    def predict(self, X) -> np.ndarray:
        """The most probable genre of each row of *X*."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def compact_model(pipeline) -> CompactModel:
    """Reduce a fitted linear *pipeline* (see the module notes) to a :class:`CompactModel`.

    Its ``model_card_`` and ``novelty_`` (:class:`helpers.models.novelty.NeighbourScorer`) come along.

    Raises
    ------
    UnsupportedModel
        A step has no compact form (the skops file stays the way to load that model).
    """
    steps = getattr(pipeline, "steps", None)
    if not steps:
        raise UnsupportedModel(type(pipeline).__name__, "not a pipeline")
    arrays = _export_classifier(*steps[-1])
    arrays["features"] = np.asarray(pipeline.feature_names_in_).astype(str)
    novelty = getattr(pipeline, "novelty_", None)
    compact_novelty = None
    if novelty is not None:
        compact_novelty = CompactNeighbours(_export_stages(novelty.space_.steps),
                                            novelty.points_, novelty.train_distance_,
                                            novelty.k_)
    return CompactModel(arrays, _export_stages(steps[:-1]), getattr(pipeline, "model_card_", None),
                        compact_novelty)


# --------------------------------------------------------------------------- files


def _flatten(prefix: str, stages: list[dict], arrays: dict) -> list[dict]:
    """Stage descriptions for JSON, their arrays moved into *arrays* under *prefix* names."""
    described = []
    for i, stage in enumerate(stages):
        entry = {}
        for key, value in stage.items():
            if isinstance(value, np.ndarray):
                arrays[f"{prefix}{i}_{key}"] = value
                entry[key] = {"array": f"{prefix}{i}_{key}"}
            else:
                entry[key] = value
        described.append(entry)
    return described


def _unflatten(described: list[dict], archive) -> list[dict]:
    return [{key: (archive[value["array"]] if isinstance(value, dict) else value)
             for key, value in stage.items()} for stage in described]


def save_compact(model: CompactModel, path: str | Path, key: dict | None = None) -> Path:
    """Write *model* to an ``.npz`` archive (no pickled objects), atomically.

    *key* (JSON) records what the file was made from; :func:`load_compact` compares it.
    """
    path = Path(path)
    arrays = {"classes": model.classes_.astype(str), "features": model.feature_names_in_.astype(str),
              "coef": model.coef_, "intercept": model.intercept_, "beta": model.beta_}
    header = {"format": COMPACT_FORMAT, "key": key, "card": model.model_card_,
              "stages": _flatten("stage", model.stages_.stages, arrays), "novelty": None}
    if model.novelty_ is not None:
        arrays["novelty_points"] = model.novelty_.points_
        arrays["novelty_train_distance"] = model.novelty_.train_distance_
        header["novelty"] = {"k": model.novelty_.k_,
                             "stages": _flatten("novelty", model.novelty_.space_.stages, arrays)}
    arrays["header"] = np.asarray(json.dumps(header, sort_keys=True, default=str))
    with atomic_write(path) as temp, open(temp, "wb") as out:
        np.savez(out, **arrays)
    return path


def load_compact(path: str | Path, key: dict | None = None) -> CompactModel | None:
    """Read a compact model file; None when it is missing, unreadable or not made from *key*."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            if header.get("format") != COMPACT_FORMAT or (key is not None and header.get("key") != key):
                return None
            arrays = {name: archive[name] for name in ("classes", "features", "coef", "intercept", "beta")}
            novelty = None
            if header.get("novelty"):
                novelty = CompactNeighbours(_unflatten(header["novelty"]["stages"], archive),
                                            archive["novelty_points"],
                                            archive["novelty_train_distance"], header["novelty"]["k"])
            return CompactModel(arrays, _unflatten(header["stages"], archive), header.get("card"),
                                novelty)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None


def source_key(model_file: str | Path) -> dict:
    """What a compact copy of *model_file* depends on: that file's bytes, the shipped selection,
    the selection protocol and the library versions (the same things that make the skops file
    be rebuilt)."""
    selection = shipped_selection_path()
    return {"source_sha256": file_sha256(Path(model_file)),
            "selection_sha256": file_sha256(selection) if selection.is_file() else None,
            "protocol": dict(constants.MODEL_PROTOCOL),
            "libraries": library_versions()}


def compact_path(model_file: str | Path) -> Path:
    """Where the compact copy of a skops *model_file* lives (same name, ``.npz``)."""
    return Path(model_file).with_suffix(".npz")


def ensure_compact(pipeline, model_file: str | Path) -> Path | None:
    """Write the compact copy of *pipeline* (saved at *model_file*) unless it is current.

    Returns its path, or None when the pipeline has no compact form or the folder is read-only
    (prediction then loads the skops file, only slower).
    """
    target = compact_path(model_file)
    try:
        key = source_key(model_file)
        if load_compact(target, key) is None:
            save_compact(compact_model(pipeline), target, key)
    except (UnsupportedModel, OSError):
        return None
    return target


def load_default() -> CompactModel | None:
    """The default model's compact copy, if it is there and belongs to the current default file.

    None means: load :func:`helpers.models.default.default_model` (which also writes the copy).
    """
    model_file = default_model_path()
    target = compact_path(model_file)
    if not (model_file.is_file() and target.is_file()):
        return None
    try:
        key = source_key(model_file)
    except OSError:
        return None
    return load_compact(target, key)

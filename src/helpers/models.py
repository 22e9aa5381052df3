"""Genre models: scikit-learn pipelines over the GTZAN-table features, and safe model files.

Every model is a :class:`~sklearn.pipeline.Pipeline` ``condition -> scale -> [project ->] model``:
the feature conditioning and the scaler live inside it, so cross-validation and test splits never
leak statistics from held-out rows. Models are built by name (:data:`MODEL_NAMES`,
:func:`build_model`); :func:`param_grid` gives each one's tuning grid, including the feature
conditioning, so that choice is made by (grouped) cross-validation like any hyper-parameter.

Model files are written with skops (:func:`save_model`) together with their metadata, and
:func:`load_model` only loads the object types this module trusts, refusing anything else.

The default model (:func:`default_model`) is the best of the :data:`CANDIDATES` recipes by
artist-grouped CV over all clips (:func:`helpers.evaluation.select_model`), calibrated, and
carries a model card (:func:`model_card`, :func:`describe_model`, :func:`model_summary`);
:func:`resolve_model` turns a user's ``--model`` (name or file) into a fitted model.

Examples
--------
>>> from helpers import data, models
>>> table = data.load_gtzan_table()
>>> knn = models.fit_on_table(table, models.build_model("knn"))
>>> knn.predict(table[list(models.MODEL_FEATURES)].head(2))
array(['blues', 'blues'], dtype=object)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer, QuantileTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from helpers.compact import library_versions  # noqa: F401 (public name, kept here)
from helpers.constants import DEFAULT_GRID, DEFAULT_SEED, MODEL_CARD_VERSION
from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS, MODEL_FEATURES, SAMPLE_RATE  # noqa: F401
from helpers.model_card import describe_model, model_summary  # noqa: F401 (public names)
from helpers.paths import atomic_write, default_model_path, shipped_selection_path  # noqa: F401 (the last two: public names)

#: Model names accepted by :func:`build_model` (the registry; the default model is chosen among
#: :data:`CANDIDATES` by :func:`default_model`).
MODEL_NAMES: tuple[str, ...] = ("knn", "svm", "logreg", "forest", "lda-knn")

#: Feature-conditioning methods of :class:`FeatureConditioner`.
CONDITIONING_METHODS: tuple[str, ...] = ("none", "log-variance", "quantile", "power")

#: Format marker stored in every model file's metadata.
MODEL_FILE_FORMAT = "music-study-model/1"


class FeatureConditioner(TransformerMixin, BaseEstimator):
    """Make heavy-tailed feature columns well-behaved before scaling.

    Many ``*_var`` columns of the GTZAN table span several orders of magnitude, so a few loud
    clips dominate any distance or linear score computed on them.

    Parameters
    ----------
    method : {'none', 'log-variance', 'quantile', 'power'}
        ``none`` passes values through; ``log-variance`` takes the natural log of every column
        whose name ends in ``_var`` (floored at ``floor``); ``quantile`` maps each column to a
        normal distribution by its training quantiles; ``power`` applies a Yeo-Johnson power
        transform fitted on the training rows.
    n_quantiles : int
        Quantiles used by ``quantile`` (at most the number of training rows).
    floor : float
        Smallest variance before the logarithm, so zero variances stay finite.
    random_state : int or None
        Seed for the ``quantile`` subsampling.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"rms_var": [1e-4, 1e-2, 1.0], "tempo": [90.0, 120.0, 150.0]})
    >>> FeatureConditioner("log-variance").fit_transform(frame).round(2)
    array([[ -9.21,  90.  ],
           [ -4.61, 120.  ],
           [  0.  , 150.  ]])
    """

    def __init__(self, method="none", n_quantiles=200, floor=1e-12, random_state=0):
        self.method = method
        self.n_quantiles = n_quantiles
        self.floor = floor
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn the conditioning from the training rows *X* only."""
        if self.method not in CONDITIONING_METHODS:
            raise InputError(self.method, "unknown conditioning method; choose one of "
                             + ", ".join(CONDITIONING_METHODS))
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        names = getattr(self, "feature_names_in_", None)
        if names is None and values.shape[1] == len(MODEL_FEATURES):
            names = np.asarray(MODEL_FEATURES, dtype=object)
        self.variance_columns_ = np.array(
            [i for i, name in enumerate(names if names is not None else []) if str(name).endswith("_var")],
            dtype=int,
        )
        self.transformer_ = None
        if self.method == "quantile":
            self.transformer_ = QuantileTransformer(
                n_quantiles=min(self.n_quantiles, values.shape[0]), output_distribution="normal",
                random_state=self.random_state).fit(values)
        elif self.method == "power":
            self.transformer_ = PowerTransformer(method="yeo-johnson", standardize=True).fit(
                self._log_variance(values))
        return self

    def _log_variance(self, values):
        out = values.copy()
        if len(self.variance_columns_):
            out[:, self.variance_columns_] = np.log(np.maximum(out[:, self.variance_columns_], self.floor))
        return out

    def transform(self, X):
        """Apply the conditioning learned in :meth:`fit`."""
        check_is_fitted(self, "n_features_in_")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and hasattr(X, "columns") and list(X.columns) != list(names):
            raise InputError("features", "columns differ from those the model was fitted on")
        values = np.asarray(X, dtype=float)
        if values.ndim != 2 or values.shape[1] != self.n_features_in_:
            raise InputError("features", f"expected {self.n_features_in_} columns, got "
                             f"{values.shape[1] if values.ndim == 2 else values.ndim}")
        if self.method == "none":
            return values
        if self.method == "log-variance":
            return self._log_variance(values)
        if self.method == "power":
            return self.transformer_.transform(self._log_variance(values))
        return self.transformer_.transform(values)

    def get_feature_names_out(self, input_features=None):
        """Return the input feature names (conditioning keeps columns one-to-one)."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return np.asarray(names, dtype=object)


def _pipeline(model, condition="none", project=None) -> Pipeline:
    steps = [("condition", FeatureConditioner(condition)), ("scale", StandardScaler())]
    if project is not None:
        steps.append(("project", project))
    steps.append(("model", model))
    return Pipeline(steps)


def make_knn(n_neighbors: int = 4, weights: str = "distance", p: int = 1,
             condition: str = "none") -> Pipeline:
    """Return the original study's model: (condition,) standardise, then k-nearest neighbours.

    The defaults are the study's tuned values (k=4, distance weights, Manhattan distance) on
    unconditioned features.
    """
    return _pipeline(KNeighborsClassifier(n_neighbors=n_neighbors, weights=weights, p=p), condition)


def build_model(name: str = "knn", random_state: int = 0) -> Pipeline:
    """Return an unfitted pipeline by name.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`: ``knn`` (the study's KNN), ``svm`` (RBF
        support vector machine), ``logreg`` (multinomial logistic regression), ``forest``
        (random forest), ``lda-knn`` (KNN in the supervised linear-discriminant projection of
        the conditioned features: the study's family on a learned metric).
    random_state : int
        Seed for the models that use randomness.

    Raises
    ------
    InputError
        Unknown name.
    """
    if name == "knn":
        return make_knn()
    if name == "svm":
        return _pipeline(SVC(C=3.0, gamma="scale", random_state=random_state), "quantile")
    if name == "logreg":
        return _pipeline(LogisticRegression(C=1.0, max_iter=5000), "power")
    if name == "forest":
        return _pipeline(RandomForestClassifier(n_estimators=200, random_state=random_state,
                                                n_jobs=1), "none")
    if name == "lda-knn":
        return _pipeline(KNeighborsClassifier(n_neighbors=30, weights="distance"), "power",
                         project=LinearDiscriminantAnalysis(solver="eigen"))
    raise InputError(name, f"unknown model; choose one of {', '.join(MODEL_NAMES)}")


def param_grid(name: str, size: str = "full") -> dict[str, list]:
    """Return the tuning grid of model *name* (conditioning included).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    size : {'full', 'small'}
        ``small`` is a few points per model, for tests and quick notebook runs.
    """
    small = size == "small"
    conditions = ["none", "log-variance"] if small else list(CONDITIONING_METHODS)
    grids = {
        "knn": {"condition__method": conditions,
                "model__n_neighbors": [4, 15] if small else [1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50],
                "model__weights": ["distance"] if small else ["uniform", "distance"],
                "model__p": [1] if small else [1, 2]},
        "svm": {"condition__method": conditions,
                "model__C": [3.0] if small else [0.3, 1.0, 3.0, 10.0],
                "model__gamma": ["scale"] if small else ["scale", 0.003, 0.01]},
        "logreg": {"condition__method": conditions,
                   "model__C": [0.1] if small else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]},
        # trees do not care about monotone conditioning, so it is not searched
        "forest": {"model__max_features": ["sqrt"] if small else ["sqrt", 0.3],
                   "model__min_samples_leaf": [1] if small else [1, 3]},
        "lda-knn": {"condition__method": conditions,
                    "project__shrinkage": [None] if small else [None, 0.1, 0.3],
                    "model__n_neighbors": [15] if small else [5, 10, 20, 30, 40],
                    "model__weights": ["distance"] if small else ["uniform", "distance"]},
    }
    if name not in grids:
        raise InputError(name, f"unknown model; choose one of {', '.join(MODEL_NAMES)}")
    return grids[name]


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """A recipe for a genre model: which registry model, whether tuned, whether calibrated.

    Attributes
    ----------
    name : str
        The name users pass (``music-study predict --model NAME``).
    base : str
        The :func:`build_model` name it starts from.
    tuned : bool
        Conditioning and hyper-parameters are chosen by artist-grouped CV on the training rows
        (:func:`helpers.evaluation.tune_model`) before every fit.
    calibration : {None, 'sigmoid', 'temperature'}
        The classifier is wrapped in a :class:`~sklearn.calibration.CalibratedClassifierCV`
        with this method over artist-grouped folds (None: its own probabilities). The method
        per candidate is the one with the lower out-of-fold log loss in artist-grouped CV
        over all clips (notebook 03 shows the comparison).
    description : str
        One line for people.
    """

    name: str
    base: str
    tuned: bool
    calibration: str | None
    description: str


#: The models the default is chosen from (:func:`helpers.evaluation.select_model`), by name.
#: ``knn`` is exactly the original study's model (no tuning, no calibration).
CANDIDATES: dict[str, Candidate] = {c.name: c for c in (
    Candidate("knn", "knn", False, None,
              "the original study's KNN (k=4, distance weights, Manhattan) on standardised features"),
    Candidate("knn-tuned", "knn", True, "sigmoid",
              "KNN with conditioning, k, weights and distance tuned by artist-grouped CV; "
              "sigmoid-calibrated"),
    Candidate("lda-knn", "lda-knn", False, "sigmoid",
              "KNN in a linear-discriminant projection of power-transformed features; "
              "sigmoid-calibrated"),
    Candidate("logreg", "logreg", False, "temperature",
              "multinomial logistic regression on power-transformed features; "
              "temperature-calibrated"),
    Candidate("svm", "svm", False, "temperature",
              "RBF support vector machine on quantile-normalised features; temperature-calibrated"),
    Candidate("forest", "forest", False, "sigmoid",
              "random forest of 200 trees; sigmoid-calibrated"),
)}
CANDIDATE_NAMES: tuple[str, ...] = tuple(CANDIDATES)


def get_candidate(name: str) -> Candidate:
    """Return the :class:`Candidate` called *name*.

    Raises
    ------
    InputError
        Unknown name (the message lists the choices).
    """
    if name not in CANDIDATES:
        raise InputError(name, f"unknown model; choose one of {', '.join(CANDIDATE_NAMES)} "
                               "or a model file path")
    return CANDIDATES[name]


#: Calibration methods of :func:`calibrate`.
CALIBRATION_METHODS: tuple[str, ...] = ("sigmoid", "temperature")


def calibrate(pipeline: Pipeline, method: str = "sigmoid", n_splits: int = 5, seed: int = 0,
              folds=None) -> Pipeline:
    """Wrap *pipeline*'s final classifier in a calibration over artist-grouped folds.

    ``sigmoid`` fits one Platt curve per genre (one-vs-rest, then renormalised);
    ``temperature`` divides all log-probabilities by one fitted temperature (keeps each fold
    model's ranking of genres).

    The conditioning and scaling stay in front, so they are fitted once on the rows
    :func:`fit_grouped` receives; the classifier is refitted per fold and calibrated on the
    fold it did not see. Fit it with :func:`fit_grouped` (the folds need the artist groups).
    *folds*, a list of ``(train, test)`` row-index pairs built from the groups beforehand
    (:func:`helpers.active.calibration_folds`), replaces the *n_splits* grouped folds.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedGroupKFold

    name, classifier = pipeline.steps[-1]
    if folds is None:
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    if method not in CALIBRATION_METHODS:
        raise InputError(method, f"unknown calibration; choose one of {', '.join(CALIBRATION_METHODS)}")
    pipeline.steps[-1] = (name, CalibratedClassifierCV(classifier, method=method, cv=folds))
    return pipeline


def fit_grouped(pipeline: Pipeline, X, y, groups) -> Pipeline:
    """Fit *pipeline*, passing the artist *groups* to any grouped folds inside it."""
    import sklearn
    from sklearn.calibration import CalibratedClassifierCV

    if not any(isinstance(step, CalibratedClassifierCV) and hasattr(step.cv, "split")
               for _, step in pipeline.steps):
        return pipeline.fit(X, y)  # nothing inside uses groups (or the folds are built already)
    with sklearn.config_context(enable_metadata_routing=True):
        return pipeline.fit(X, np.asarray(y), groups=np.asarray(groups))


def fit_on_table(table: pd.DataFrame, pipeline: Pipeline | None = None,
                 columns=MODEL_FEATURES, label: str = "label") -> Pipeline:
    """Fit *pipeline* (default :func:`make_knn`) on a feature table's *columns* and *label*."""
    pipeline = pipeline if pipeline is not None else make_knn()
    missing = [c for c in [*columns, label] if c not in table.columns]
    if missing:
        raise InputError("table", f"missing columns {', '.join(missing[:5])}")
    return pipeline.fit(table[list(columns)], table[label])


# --------------------------------------------------------------------------- training data

def table_fingerprint(table: pd.DataFrame, columns=MODEL_FEATURES, label: str = "label") -> str:
    """Return the md5 of a table's training rows (the feature values in *columns* and *label*).

    Row order matters; the same rows give the same fingerprint across pandas versions.
    """
    digest = hashlib.md5()
    digest.update(json.dumps(list(columns)).encode())
    digest.update(np.ascontiguousarray(table[list(columns)].to_numpy(dtype="<f8")).tobytes())
    digest.update("\n".join(map(str, table[label])).encode())
    return digest.hexdigest()


def merge_extra_rows(table: pd.DataFrame, extra, source: str = "original study") -> pd.DataFrame:
    """Append extra labelled rows (e.g. the original study's active-learning rows) to a table.

    Parameters
    ----------
    table : pandas.DataFrame
        A GTZAN-style table (``filename``, :data:`~helpers.features.FEATURE_COLUMNS`,
        ``label``). Rows without a ``source`` column are marked ``"gtzan"``.
    extra : pandas.DataFrame or path-like
        Rows to add; rows whose ``filename`` is already in *table* are dropped (the study's
        file repeats the whole GTZAN table before its own rows).
    source : str
        Value of the ``source`` column for the added rows.

    Returns
    -------
    pandas.DataFrame
        *table* followed by the new rows, with a ``source`` column. A ``length`` stored in
        seconds (under 1000) is converted to samples at 22050 Hz, the table's unit.

    Raises
    ------
    InputError
        *extra* cannot be read or lacks required columns.
    """
    name = "extra rows"
    if not isinstance(extra, pd.DataFrame):
        name = str(extra)
        try:
            extra = pd.read_csv(extra)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(name, f"cannot read extra rows: {exc}") from None
    required = ["filename", *FEATURE_COLUMNS, "label"]
    for frame, what in ((table, "table"), (extra, name)):
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise InputError(what, f"missing columns {', '.join(missing[:5])}")
    base = table.copy()
    if "source" not in base.columns:
        base["source"] = "gtzan"
    added = extra.loc[~extra["filename"].isin(base["filename"]), required].copy()
    in_seconds = added["length"] < 1000
    added.loc[in_seconds, "length"] = added.loc[in_seconds, "length"] * SAMPLE_RATE
    added["source"] = source
    return pd.concat([base, added[base.columns.intersection(added.columns)]], ignore_index=True)


# --------------------------------------------------------------------------- model files

#: Object types (besides skops' own defaults) a model file may contain.
TRUSTED_TYPES: tuple[str, ...] = (
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
    import skops.io as sio

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
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file does not exist")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # zip or schema errors: whatever it is, it is not our file
        raise InputError(path, f"not a readable skops model file ({type(exc).__name__})") from None
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise InputError(path, "refusing to load a model file with untrusted object types: "
                         + ", ".join(unknown[:5]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise InputError(path, f"corrupt model file ({type(exc).__name__}: {exc})") from None
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


# --------------------------------------------------------------------------- default model

# MODEL_CARD_VERSION (bumped when the card or the objects a model file carries change), the
# selection's DEFAULT_SEED / DEFAULT_GRID and default_model_path live in helpers.constants and
# helpers.paths, which the fast start of `predict` (helpers.compact) reads without scikit-learn.


def candidate_model_path(name: str) -> Path:
    """Return where candidate *name*, fitted on all clips, is cached (``data/models/NAME.skops``)."""
    from helpers.paths import data_dir

    return data_dir() / "models" / f"{get_candidate(name).name}.skops"


def selection_result(seed: int = DEFAULT_SEED, grid: str = DEFAULT_GRID):
    """Return the default-model selection (:func:`helpers.evaluation.select_model`) and open-set rules.

    The workspace ships the result for the embedded table (``data/model_selection.json``,
    written by :func:`write_shipped_selection`); it is used when its training fingerprint, seed,
    grid and protocol version match, so the first :func:`default_model` costs one fit. Otherwise
    the selection runs (a few minutes, then cached in ``data/cache/``).

    Returns
    -------
    (Selection, dict) : the selection, and candidate name -> validated open-set rule (only the
    candidates whose rule is known so far)
    """
    from helpers import data, evaluation

    table = data.load_gtzan_table()
    fingerprint = table_fingerprint(table)
    shipped = shipped_selection_path()
    try:
        stored = json.loads(shipped.read_text()) if shipped.is_file() else None
    except (OSError, ValueError):
        stored = None
    if (stored and stored.get("version") == evaluation.SELECTION_VERSION
            and stored["selection"]["training_fingerprint"] == fingerprint
            and stored["selection"]["seed"] == seed and stored["selection"]["grid"] == grid):
        return evaluation.Selection.from_document(stored["selection"]), dict(stored["open_set"])
    return evaluation.select_model(table, seed=seed, grid=grid), {}


def write_shipped_selection(seed: int = DEFAULT_SEED, grid: str = DEFAULT_GRID,
                            path: str | Path | None = None) -> Path:
    """Run the selection and the open-set validation of every candidate; write the shipped file."""
    from helpers import data, evaluation, openset

    table = data.load_gtzan_table()
    selection = evaluation.select_model(table, seed=seed, grid=grid)
    rules = {name: openset.cached_rule(name, table, seed=seed, grid=grid) for name in CANDIDATE_NAMES}
    document = selection.to_document()
    path = Path(path) if path is not None else shipped_selection_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": evaluation.SELECTION_VERSION, "selection": document,
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
    from helpers.data import GENRES

    if not path.is_file():
        return None
    try:
        model, metadata = load_model(path, expected_columns=MODEL_FEATURES, expected_genres=GENRES,
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

    Built by its recipe (:func:`helpers.evaluation.fit_candidate`), cached as a model file
    (default :func:`candidate_model_path`) and reused while the table, the library versions
    and the selection protocol are unchanged. The card is attached as ``model.model_card_`` and
    stored in the file's metadata (``card``); ``model.novelty_`` (a
    :class:`helpers.openset.NeighbourScorer` over the training clips) serves the open-set rule.

    Raises
    ------
    InputError
        Unknown name (the message lists the choices).
    """
    from helpers import data, evaluation, openset

    get_candidate(name)
    table = data.load_gtzan_table()
    fingerprint = table_fingerprint(table)
    path = Path(path) if path is not None else candidate_model_path(name)

    def current(card):
        return (card.get("name") == name and card.get("training_fingerprint") == fingerprint
                and card.get("seed") == seed and card.get("grid") == grid
                and card.get("selection_version") == evaluation.SELECTION_VERSION
                and card.get("card_version") == MODEL_CARD_VERSION)

    model = None if retrain else _load_fresh(path, current)
    if model is not None:
        return model
    selection, rules = selection_result(seed, grid)
    rule = rules.get(name) or openset.cached_rule(name, table, seed=seed, grid=grid)
    card = model_card(name, selection, rule, table)
    card["selection_version"] = evaluation.SELECTION_VERSION
    card["card_version"] = MODEL_CARD_VERSION
    model, _ = evaluation.fit_candidate(name, table, seed=seed, grid=grid)
    # the open-set rule may use the distance to the training clips: the file carries them
    model.novelty_ = openset.NeighbourScorer().fit(table[list(MODEL_FEATURES)])
    try:
        save_model(model, path, model_metadata(model, table, name=name,
                                               description=card["description"], card=card))
    except OSError as exc:  # a read-only checkout still gets a working model
        warnings.warn(f"could not cache the model at {path}: {exc}", stacklevel=2)
    model.model_card_ = card
    return model


def default_model(path: str | Path | None = None, retrain: bool = False) -> Pipeline:
    """Return the default genre model: the best candidate by honest selection, fitted on all clips.

    The candidates (:data:`CANDIDATES`) are compared by artist-grouped 5-fold CV over the 1000
    clips of the embedded GTZAN table (:func:`helpers.evaluation.select_model`, seed
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
    from helpers.compact import ensure_compact

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

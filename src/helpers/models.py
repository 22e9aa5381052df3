"""Genre models: scikit-learn pipelines over the GTZAN-table features, and safe model files.

Every model is a :class:`~sklearn.pipeline.Pipeline` ``condition -> scale -> [project ->] model``:
the feature conditioning and the scaler live inside it, so cross-validation and test splits never
leak statistics from held-out rows. Models are built by name (:data:`MODEL_NAMES`,
:func:`build_model`); :func:`param_grid` gives each one's tuning grid, including the feature
conditioning, so that choice is made by (grouped) cross-validation like any hyper-parameter.

Model files are written with skops (:func:`save_model`) together with their metadata, and
:func:`load_model` only loads the object types this module trusts, refusing anything else.

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
import tempfile
import warnings
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

from helpers.errors import InputError
from helpers.features import FEATURE_COLUMNS, SAMPLE_RATE

#: Columns a model sees by default. ``length`` is left out: it measures the clip, not the music
#: (GTZAN clips are all ~30 s; the original study's added rows stored seconds instead of samples).
MODEL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c != "length")

#: Model names accepted by :func:`build_model`; the first is the default.
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
        One of :data:`MODEL_NAMES`: ``knn`` (the study's KNN, the default), ``svm`` (RBF
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
        return _pipeline(RandomForestClassifier(n_estimators=300, random_state=random_state,
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
                "model__n_neighbors": [4, 15] if small else
                [1, 2, 3, 4, 5, 7, 10, 15, 20, 25, 30, 40, 50],
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


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a model file depends on."""
    import platform

    import scipy
    import sklearn
    import skops

    return {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__, "skops": skops.__version__}


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
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=path.name, suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        sio.dump(payload, temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
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
    return (model, metadata) if return_metadata else model


# --------------------------------------------------------------------------- default model

def default_model_path() -> Path:
    """Return where the default model is cached (``data/models/default.skops``, git-ignored)."""
    from helpers.paths import data_dir

    return data_dir() / "models" / "default.skops"


def default_model(path: str | Path | None = None, retrain: bool = False) -> Pipeline:
    """Return the default genre model (the study's KNN), fitted on the embedded GTZAN table.

    Trained on first use and cached as a model file (default :func:`default_model_path`).
    A cached file is reused only when its training fingerprint and library versions match the
    current table and environment; otherwise (or if it is unreadable) the model is retrained
    and the file replaced.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted; has ``predict_proba``, ``classes_`` and ``feature_names_in_``.
    """
    from helpers.data import GENRES, load_gtzan_table

    table = load_gtzan_table()
    path = Path(path) if path is not None else default_model_path()
    fingerprint = table_fingerprint(table)
    if path.is_file() and not retrain:
        try:
            model, metadata = load_model(path, expected_columns=MODEL_FEATURES,
                                         expected_genres=GENRES, return_metadata=True)
            if (metadata.get("training_fingerprint") == fingerprint
                    and metadata.get("library_versions") == library_versions()):
                return model
        except InputError as exc:
            warnings.warn(f"retraining the default model: {exc}", stacklevel=2)
    model = fit_on_table(table, make_knn())
    try:
        save_model(model, path, model_metadata(model, table, name="knn",
                                               description="study KNN (k=4, distance, p=1) on all 1000 GTZAN clips"))
    except OSError as exc:  # a read-only checkout still gets a working model
        warnings.warn(f"could not cache the default model at {path}: {exc}", stacklevel=2)
    return model

"""The model registry: scikit-learn pipelines over the GTZAN-table features, built by name.

Every model is a :class:`~sklearn.pipeline.Pipeline` ``condition -> guard -> scale -> [project ->]
model``: the feature conditioning (:class:`FeatureConditioner`), the guard against any single
feature far outside the training range (:class:`FeatureGuard`, which also leaves out the columns
that measure a DC offset) and the scaler live inside it, so
cross-validation and test splits never leak statistics from held-out rows. Models are built by
name (:data:`MODEL_NAMES`, :func:`build_model`); :func:`param_grid` gives each one's tuning
grid, including the feature conditioning, so that choice is made by (grouped)
cross-validation like any hyper-parameter.

Examples
--------
>>> from helpers import data
>>> from helpers.models import pipelines
>>> table = data.load_gtzan_table()
>>> knn = pipelines.fit_on_table(table, pipelines.build_model("knn"))
>>> knn.predict(table[list(pipelines.MODEL_FEATURES)].head(2))
array(['blues', 'blues'], dtype=object)
"""

from __future__ import annotations

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
from helpers.features.columns import MODEL_FEATURES

#: Model names accepted by :func:`build_model` (the registry; the default model is chosen among
#: the recipes of :data:`helpers.models.candidates.CANDIDATES`).
MODEL_NAMES: tuple[str, ...] = ("knn", "svm", "logreg", "forest", "lda-knn")

#: Feature-conditioning methods of :class:`FeatureConditioner`.
CONDITIONING_METHODS: tuple[str, ...] = ("none", "log-variance", "quantile", "power")

#: Columns that measure a recording's DC offset rather than its music: the means of the harmonic
#: and percussive waveforms sum to the mean of the signal, and a DC offset lands in them.
OFFSET_FEATURES: tuple[str, ...] = ("harmony_mean", "perceptr_mean")


def _fitted_columns(transformer, X) -> np.ndarray:
    """*X* as a float array, refused when its columns are not those *transformer* was fitted on."""
    names = getattr(transformer, "feature_names_in_", None)
    if names is not None and hasattr(X, "columns") and list(X.columns) != list(names):
        raise InputError("features", "columns differ from those the model was fitted on")
    values = np.asarray(X, dtype=float)
    if values.ndim != 2 or values.shape[1] != transformer.n_features_in_:
        raise InputError("features", f"expected {transformer.n_features_in_} columns, got "
                         f"{values.shape[1] if values.ndim == 2 else values.ndim}")
    return values


class FeatureGuard(TransformerMixin, BaseEstimator):
    """Keep any one feature from deciding alone: clip to the training range, drop offset columns.

    Every column is clipped to the range the training rows span, widened by *margin* times
    that range on each side, so a value far outside (a DC offset, a broken decoder, a feature
    at z = 100) counts no more than the most extreme training clip. The *drop* columns are left
    out of the output. In a pipeline the guard follows the conditioning, which keeps the model
    features one-to-one and in order, so the columns are known by position when no names come in.

    Parameters
    ----------
    margin : float
        Share of each column's training range added below its minimum and above its maximum.
    drop : sequence of str
        Columns left out (default :data:`OFFSET_FEATURES`; names that are not among the columns
        are ignored).

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"tempo": [90.0, 120.0, 150.0], "harmony_mean": [0.0, 0.01, -0.01]})
    >>> FeatureGuard(margin=0.5).fit(train).transform(
    ...     pd.DataFrame({"tempo": [400.0], "harmony_mean": [-0.2]})).tolist()
    [[180.0]]
    """

    def __init__(self, margin=0.1, drop=OFFSET_FEATURES):
        self.margin = margin
        self.drop = drop

    def fit(self, X, y=None):
        """Learn each column's bounds from the training rows *X*."""
        if not self.margin >= 0:
            raise InputError(str(self.margin), "guard margin must be zero or positive")
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        names = self._names()
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        width = (high - low) * float(self.margin)
        self.lower_, self.upper_ = low - width, high + width
        dropped = set(self.drop)
        self.keep_columns_ = np.asarray([i for i, name in enumerate(names) if name not in dropped],
                                        dtype=int)
        return self

    def _names(self) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is None and self.n_features_in_ == len(MODEL_FEATURES):
            names = np.asarray(MODEL_FEATURES, dtype=object)  # a pipeline's earlier step's output
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return names

    def transform(self, X):
        """Clip every column to its bounds; leave out the dropped columns."""
        check_is_fitted(self, "lower_")
        values = _fitted_columns(self, X)
        return np.clip(values, self.lower_, self.upper_)[:, self.keep_columns_]

    def get_feature_names_out(self, input_features=None):
        """Return the names of the columns kept."""
        return np.asarray(self._names()[self.keep_columns_], dtype=object)


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
        values = _fitted_columns(self, X)
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


def _pipeline(model, condition="none", project=None, guard=True) -> Pipeline:
    steps = [("condition", FeatureConditioner(condition)), ("scale", StandardScaler())]
    if guard:
        steps.insert(1, ("guard", FeatureGuard()))
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
    # no guard: this is the study's model, kept exactly so its published numbers reproduce
    return _pipeline(KNeighborsClassifier(n_neighbors=n_neighbors, weights=weights, p=p), condition,
                     guard=False)


def make_logreg(condition: str = "power", C: float = 1.0) -> Pipeline:
    """Return the multinomial logistic-regression pipeline: conditioning, scaling, the model.

    ``condition="power"`` (Yeo-Johnson) is the ``logreg`` candidate's, for the heavy-tailed
    table columns; ``"log-variance"`` logs only the ``*_var`` columns and costs nothing on the
    many columns of a learned embedding (which are batch-normalised already).
    """
    return _pipeline(LogisticRegression(C=C, max_iter=5000), condition)


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
        return make_logreg("power")
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


def fit_on_table(table: pd.DataFrame, pipeline: Pipeline | None = None,
                 columns=MODEL_FEATURES, label: str = "label") -> Pipeline:
    """Fit *pipeline* (default :func:`make_knn`) on a feature table's *columns* and *label*."""
    pipeline = pipeline if pipeline is not None else make_knn()
    missing = [c for c in [*columns, label] if c not in table.columns]
    if missing:
        raise InputError("table", f"missing columns {', '.join(missing[:5])}")
    return pipeline.fit(table[list(columns)], table[label])

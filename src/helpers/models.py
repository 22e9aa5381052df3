"""Genre models: scikit-learn pipelines over the GTZAN-table features.

The scaler lives inside each :class:`~sklearn.pipeline.Pipeline`, so cross-validation and test
splits never leak statistics from held-out rows.
"""

from __future__ import annotations

import pandas as pd
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helpers.features import FEATURE_COLUMNS

#: Columns a model sees by default. ``length`` is left out: it measures the clip, not the music
#: (GTZAN clips are all ~30 s; the original study's added rows stored seconds instead of samples).
MODEL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c != "length")


def make_knn(n_neighbors: int = 4, weights: str = "distance", p: int = 1) -> Pipeline:
    """Return the original study's model: standardise, then k-nearest neighbours."""
    return Pipeline([
        ("scale", StandardScaler()),
        ("model", KNeighborsClassifier(n_neighbors=n_neighbors, weights=weights, p=p)),
    ])


def fit_on_table(table: pd.DataFrame, pipeline: Pipeline | None = None,
                 columns=MODEL_FEATURES, label: str = "label") -> Pipeline:
    """Fit *pipeline* (default :func:`make_knn`) on a feature table's *columns* and *label*."""
    pipeline = pipeline if pipeline is not None else make_knn()
    return pipeline.fit(table[list(columns)], table[label])


def default_model() -> Pipeline:
    """Return the default genre model, fitted on the embedded GTZAN table."""
    from helpers.data import load_gtzan_table

    return fit_on_table(load_gtzan_table())

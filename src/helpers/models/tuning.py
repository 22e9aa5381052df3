"""Tuning a genre model by artist-grouped cross-validation on its training rows only.

:func:`tune_model` grid-searches a registry model's conditioning and hyper-parameters
(:func:`helpers.models.param_grid`) with genre-stratified, artist-grouped folds
(:func:`grouped_folds`: no artist in two folds), so the chosen settings never saw a held-out
artist. Results are cached by everything they depend on (:mod:`helpers.cache`).

Examples
--------
>>> from helpers import data
>>> from helpers.models import tuning
>>> train, _ = data.held_out_split()
>>> tuning.tune_model("knn", train, grid="small").params  # doctest: +SKIP
{'condition__method': 'log-variance', 'model__n_neighbors': 15, ...}
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from helpers import data
from helpers.cache import CacheEntry
from helpers.features.columns import MODEL_FEATURES
from helpers.models.pipelines import build_model, param_grid
from helpers.models.training import table_fingerprint


def grouped_folds(n_splits: int = 5, seed: int = 0) -> StratifiedGroupKFold:
    """Return artist-grouped, genre-stratified folds (no artist in two folds)."""
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def files_digest(table: pd.DataFrame) -> str:
    """Return the md5 of *table*'s file names in row order (part of the cache keys over rows)."""
    return hashlib.md5("\n".join(table["filename"]).encode()).hexdigest()


def cache_entry(kind: str, payload: dict, prefix: str = "") -> CacheEntry:
    """The cache entry of a model-fitting result: *payload* plus the scikit-learn version."""
    return CacheEntry.for_payload(kind, payload | {"sklearn": sklearn.__version__}, prefix)


@dataclass
class Tuning:
    """The settings chosen by grouped inner cross-validation."""

    params: dict
    cv_mean: float
    cv_std: float
    cached: bool = False


def plain(value):
    """A numpy scalar as the Python number it holds (settings go into JSON and ``repr``)."""
    return value.item() if isinstance(value, np.generic) else value


def tune_model(name: str, train: pd.DataFrame, seed: int = 0, grid: str = "full",
               n_splits: int = 5, n_jobs: int = 1, cache: bool = True) -> Tuning:
    """Choose conditioning and hyper-parameters of *name* by artist-grouped CV on *train*.

    Parameters
    ----------
    name : str
        A model of :data:`helpers.models.MODEL_NAMES`.
    train : pandas.DataFrame
        Training rows with ``filename`` (for the artist groups), features and ``label``.
    grid : {'full', 'small'}
        Grid size (:func:`helpers.models.param_grid`).
    cache : bool
        Reuse (and store) the result in ``data/cache/tuning/``, keyed by the model, grid,
        seed, folds, library version and the fingerprint of *train*.
    """
    grid_values = param_grid(name, grid)
    entry = cache_entry("tuning", {
        "name": name, "estimator": repr(build_model(name, random_state=seed)), "grid": grid_values,
        "seed": seed, "n_splits": n_splits, "rows": table_fingerprint(train),
        "files": files_digest(train)}, prefix=f"{name}-")
    stored = entry.read() if cache else None
    if stored is not None:
        try:
            return Tuning(stored["params"], stored["cv_mean"], stored["cv_std"], cached=True)
        except KeyError:
            pass  # incomplete cache entry: tune again and overwrite it
    search = grid_search(name, train, grid_values, seed=seed, n_splits=n_splits, n_jobs=n_jobs,
                         error_score="raise", scratch_prefix="music-study-tuning-")
    best = search.best_index_
    result = Tuning({k: plain(v) for k, v in search.best_params_.items()},
                    round(float(search.cv_results_["mean_test_score"][best]), 4),
                    round(float(search.cv_results_["std_test_score"][best]), 4))
    if cache:
        entry.write(asdict(result) | {"cached": False})
    return result


def grid_search(name: str, train: pd.DataFrame, grid_values: dict, seed: int, n_splits: int,
                n_jobs: int, error_score, scratch_prefix: str) -> GridSearchCV:
    """Return *name*'s grid search over *grid_values*, fitted by artist-grouped CV on *train*.

    Parameters
    ----------
    error_score : 'raise' or float
        What a failing fit scores (GridSearchCV's ``error_score``).
    scratch_prefix : str
        Name prefix of the temporary folder that caches the fitted transforms.
    """
    with tempfile.TemporaryDirectory(prefix=scratch_prefix) as scratch:
        # cache each fold's fitted conditioning + scaler, shared by all model settings
        estimator = build_model(name, random_state=seed).set_params(
            memory=joblib.Memory(scratch, verbose=0))
        search = GridSearchCV(estimator, grid_values, cv=grouped_folds(n_splits, seed),
                              n_jobs=n_jobs, error_score=error_score)
        # plain arrays and integer labels keep the cache keys cheap to hash; one BLAS/OpenMP
        # thread per process avoids oversubscribing a busy machine on many tiny fits
        codes, _ = pd.factorize(train["label"])
        with threadpool_limits(1):
            search.fit(train[list(MODEL_FEATURES)].to_numpy(dtype=float), codes,
                       groups=data.artist_groups(train["filename"]).to_numpy())
    return search

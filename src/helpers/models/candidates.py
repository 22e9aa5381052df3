"""Candidate recipes for the default genre model, and the calibration they may carry.

A :class:`Candidate` names a registry model (:func:`helpers.models.pipelines.build_model`),
whether its settings are tuned by artist-grouped CV (:mod:`helpers.models.tuning`) and which
calibration wraps it (:func:`calibrate`, over artist-grouped folds: fit it with
:func:`fit_grouped`). :mod:`helpers.models.selection` scores the candidates;
:mod:`helpers.models.default` fits the chosen one.

Examples
--------
>>> from helpers.models.candidates import get_candidate
>>> get_candidate("logreg").calibration
'temperature'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

from helpers.errors import InputError


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
        (:func:`helpers.models.tuning.tune_model`) before every fit.
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


#: The models the default is chosen from (:func:`helpers.models.selection.select_model`), by name.
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
    (:func:`helpers.labeling.retrain.calibration_folds`), replaces the *n_splits* grouped folds.
    """
    name, classifier = pipeline.steps[-1]
    if folds is None:
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    if method not in CALIBRATION_METHODS:
        raise InputError(method, f"unknown calibration; choose one of {', '.join(CALIBRATION_METHODS)}")
    pipeline.steps[-1] = (name, CalibratedClassifierCV(classifier, method=method, cv=folds))
    return pipeline


def fit_grouped(pipeline: Pipeline, X, y, groups) -> Pipeline:
    """Fit *pipeline*, passing the artist *groups* to any grouped folds inside it."""
    if not any(isinstance(step, CalibratedClassifierCV) and hasattr(step.cv, "split")
               for _, step in pipeline.steps):
        return pipeline.fit(X, y)  # nothing inside uses groups (or the folds are built already)
    with sklearn.config_context(enable_metadata_routing=True):
        return pipeline.fit(X, np.asarray(y), groups=np.asarray(groups))

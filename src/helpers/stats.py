"""Statistics shared by every evaluation: one bootstrap, and what is built on it.

:func:`bootstrap_mean_interval` resamples observations with replacement and takes percentiles of
their means; :func:`mean_interval` gives a mean with that interval (NaN observations left out),
:func:`accuracy_interval` the interval of the share of correct predictions, and
:func:`score_predictions` a test set's accuracy with its interval and macro precision, recall
and F1. :func:`proportion_interval` is the exact (Clopper-Pearson) interval of a share of yes/no
outcomes, for small counts where a bootstrap degenerates; below :data:`MIN_COUNT` outcomes it
gives none ("too few to say").
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from helpers.errors import InputError

#: Fewest outcomes a share is quoted with an interval for; below it, "too few to say".
MIN_COUNT = 5


def proportion_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Exact (Clopper-Pearson) interval of the share *successes* / *n*; None when n < :data:`MIN_COUNT`.

    Unlike a bootstrap, it does not collapse to a point when every outcome agrees (2 of 2
    correct is "somewhere in [0.16, 1]", not "1.00 [1.00-1.00]").

    Examples
    --------
    >>> [round(v, 3) for v in proportion_interval(5, 5)]
    [0.478, 1.0]
    >>> proportion_interval(2, 2) is None
    True
    """
    successes, n = int(successes), int(n)
    if not 0 <= successes <= n:
        raise InputError(f"{successes} of {n}", "successes must lie between 0 and n")
    if n < MIN_COUNT:
        return None
    interval = binomtest(successes, n).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def bootstrap_mean_interval(values, n_boot: int = 1000, level: float = 0.95,
                            rng=None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of *values*.

    Parameters
    ----------
    values : array-like
        Observations (booleans count as 0/1); must not be empty.
    n_boot : int
        Number of resamples with replacement.
    level : float
        Coverage of the interval (0.95: the 2.5th and 97.5th percentiles).
    rng : numpy.random.Generator or int or None
        A generator to draw from (callers bootstrapping several groups pass one and share it),
        or a seed.

    Returns
    -------
    (low, high) : tuple of float

    Examples
    --------
    >>> bootstrap_mean_interval([0, 1] * 50, rng=0)
    (0.4, 0.6)
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    values = np.asarray(values)
    means = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
    tail = round((1 - level) / 2 * 100, 10)
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(values, n_boot: int = 1000, level: float = 0.95,
                  rng=None) -> tuple[float, float, float]:
    """Return the mean of *values* (NaN left out) and its percentile bootstrap interval.

    ``(nan, nan, nan)`` when no value is left.

    Examples
    --------
    >>> mean_interval([0, 1, float("nan")] * 50, rng=0)
    (0.5, 0.4, 0.6)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    return (float(values.mean()), *bootstrap_mean_interval(values, n_boot, level, rng=rng))


def accuracy_interval(y_true, y_pred, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Return a percentile bootstrap interval of accuracy on one test set (rounded to 4 places).

    Test clips are resampled with replacement *n_boot* times (:func:`bootstrap_mean_interval`
    of the per-clip correctness).

    Examples
    --------
    >>> accuracy_interval(["a"] * 50 + ["b"] * 50, ["a"] * 100)
    (0.4, 0.6)
    """
    correct = np.asarray(y_true) == np.asarray(y_pred)
    if correct.size == 0:
        raise InputError("predictions", "cannot bootstrap an empty test set")
    low, high = bootstrap_mean_interval(correct, n_boot, level, rng=seed)
    return round(low, 4), round(high, 4)


def score_predictions(y_true, y_pred, seed: int = 0) -> dict:
    """Return accuracy (with its bootstrap 95% interval) and macro precision, recall and F1."""

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0)
    return {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "ci95": list(accuracy_interval(y_true, y_pred, seed=seed)),
            "macro_precision": round(float(precision), 4),
            "macro_recall": round(float(recall), 4),
            "macro_f1": round(float(f1), 4)}

"""Small statistics shared by the evaluation code of every notebook."""

from __future__ import annotations

import numpy as np


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

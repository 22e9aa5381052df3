"""Statistics shared by every evaluation: one bootstrap, and what is built on it.

:func:`bootstrap_mean_interval` resamples observations with replacement and takes percentiles of
their means; :func:`mean_interval` gives a mean with that interval (NaN observations left out),
:func:`accuracy_interval` the interval of the share of correct predictions, and
:func:`score_predictions` a test set's accuracy with its interval and macro precision, recall
and F1.

Comparisons a referee expects, each returning its statistic: :func:`binomial_interval` (exact
Clopper–Pearson or Wilson interval of a share, for small n), :func:`paired_difference` (mean of
paired differences with a bootstrap interval), :func:`corrected_resampled_ttest` (Nadeau &
Bengio's corrected t-test for the fold scores of repeated cross-validation) and
:func:`mcnemar` (two models' predictions on one shared test split, exact for few discordant
pairs). :mod:`helpers.reports.narrate` turns these into sentences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from helpers.errors import InputError

#: Below this many observations a share or a mean is not quoted: "too few to say".
MIN_N = 5


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


@dataclass(frozen=True)
class Comparison:
    """The outcome of a paired comparison of *a* against *b* (``a - b``).

    Attributes
    ----------
    test : str
        Which statistic: ``"paired bootstrap"``, ``"corrected resampled t-test"`` or
        ``"McNemar exact"`` / ``"McNemar chi-square"``.
    estimate : float
        Mean difference ``a - b`` (for McNemar: the difference of accuracies).
    interval : (float, float)
        Interval of the mean difference at *level* (NaN when the test gives none).
    statistic : float
        The test statistic (t, chi-square; for exact McNemar the smaller discordant count).
    p_value : float
        Two-sided p-value (NaN for the bootstrap, which gives an interval only).
    n : int
        Paired observations (folds, test clips).
    level : float
        Coverage of *interval*.
    detail : dict
        Test-specific numbers (degrees of freedom, discordant counts, the variance factor).
    """

    test: str
    estimate: float
    interval: tuple
    statistic: float
    p_value: float
    n: int
    level: float = 0.95
    detail: tuple = ()

    def as_dict(self) -> dict:
        """The fields as plain JSON-able values (``detail`` as a dict)."""
        record = asdict(self)
        record["interval"] = list(self.interval)
        record["detail"] = dict(self.detail)
        return record


def binomial_interval(successes: int, n: int, level: float = 0.95,
                      method: str = "clopper-pearson") -> tuple[float, float]:
    """Return a confidence interval of the share *successes* / *n*.

    Parameters
    ----------
    successes, n : int
        Count of successes and of trials (``0 <= successes <= n``, ``n >= 1``).
    level : float
        Coverage.
    method : {'clopper-pearson', 'wilson'}
        ``clopper-pearson``: the exact interval from beta quantiles (never below its
        coverage); ``wilson``: the score interval (closer to nominal on average).

    Returns
    -------
    (low, high) : tuple of float

    Examples
    --------
    >>> [round(v, 4) for v in binomial_interval(3, 10)]
    [0.0667, 0.6525]
    >>> [round(v, 4) for v in binomial_interval(2, 2)]
    [0.1581, 1.0]
    """
    successes, n = int(successes), int(n)
    if n < 1 or not 0 <= successes <= n:
        raise InputError("binomial interval", f"needs 0 <= successes <= n and n >= 1, got {successes}/{n}")
    alpha = 1 - level
    if method == "clopper-pearson":
        low = 0.0 if successes == 0 else scipy_stats.beta.ppf(alpha / 2, successes, n - successes + 1)
        high = 1.0 if successes == n else scipy_stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes)
        return float(low), float(high)
    if method == "wilson":
        z = scipy_stats.norm.ppf(1 - alpha / 2)
        share = successes / n
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
        return float(max(0.0, centre - half)), float(min(1.0, centre + half))
    raise InputError("binomial interval", f"method must be 'clopper-pearson' or 'wilson', not {method!r}")


def _paired(a, b, name: str) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise InputError(name, f"needs two paired 1-d samples of equal length >= 2, got {a.shape} and {b.shape}")
    return a - b


def paired_difference(a, b, level: float = 0.95, n_boot: int = 2000, rng=0) -> Comparison:
    """Mean of the paired differences ``a - b`` with a percentile bootstrap interval.

    For paired observations that are independent (users, songs, seeds). Fold scores of
    cross-validation share training rows and need :func:`corrected_resampled_ttest`.

    Examples
    --------
    >>> result = paired_difference([0.5, 0.6, 0.7, 0.6], [0.4, 0.5, 0.5, 0.5])
    >>> round(result.estimate, 3), result.n
    (0.125, 4)
    """
    diff = _paired(a, b, "paired difference")
    low, high = bootstrap_mean_interval(diff, n_boot, level, rng=rng)
    return Comparison("paired bootstrap", float(diff.mean()), (low, high), float("nan"),
                      float("nan"), int(diff.size), level)


def difference_of_means(a, b, level: float = 0.95, n_boot: int = 2000, rng=0) -> Comparison:
    """Difference of the means of two independent samples ``mean(a) - mean(b)``, with a
    percentile bootstrap interval (each sample resampled on its own; NaN left out).

    Examples
    --------
    >>> result = difference_of_means([1.0, 2.0, 3.0] * 10, [0.0, 1.0, 2.0] * 10)
    >>> result.estimate, result.n
    (1.0, 30)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        raise InputError("difference of means", f"needs two samples of at least 2, got {a.size} and {b.size}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    diffs = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1)
             - b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Comparison("bootstrap difference of means", float(a.mean() - b.mean()),
                      (float(low), float(high)), float("nan"), float("nan"),
                      int(min(a.size, b.size)), level, (("n_a", int(a.size)), ("n_b", int(b.size))))


def corrected_resampled_ttest(a, b, n_train: int, n_test: int, level: float = 0.95) -> Comparison:
    """Nadeau & Bengio's corrected resampled t-test of paired fold scores ``a - b``.

    The folds of repeated cross-validation share training rows, so their differences are
    correlated and the plain t-test is far too confident. Nadeau & Bengio (2003, *Machine
    Learning* 52) replace the variance of the mean, ``s² / k``, by ``(1/k + n_test/n_train) s²``
    for *k* fold differences with sample variance ``s²``; ``t = mean / sqrt(that)`` with
    ``k - 1`` degrees of freedom.

    Parameters
    ----------
    a, b : array-like
        Scores of the two models on the same folds, in the same order.
    n_train, n_test : int
        Rows in one fold's training and test part.
    level : float
        Coverage of the interval of the mean difference.

    Examples
    --------
    >>> result = corrected_resampled_ttest([0.8, 0.7, 0.9, 0.8, 0.75], [0.7, 0.7, 0.8, 0.7, 0.7],
    ...                                    n_train=80, n_test=20)
    >>> round(result.statistic, 3), round(result.p_value, 3)
    (2.333, 0.08)
    """
    diff = _paired(a, b, "corrected resampled t-test")
    k = diff.size
    factor = 1 / k + n_test / n_train
    variance = diff.var(ddof=1)
    se = float(np.sqrt(factor * variance))
    mean = float(diff.mean())
    t = mean / se if se > 0 else (0.0 if mean == 0 else float(np.copysign(np.inf, mean)))
    p = float(2 * scipy_stats.t.sf(abs(t), k - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, k - 1) * se)
    return Comparison("corrected resampled t-test", mean, (mean - half, mean + half), float(t), p,
                      int(k), level, (("df", k - 1), ("se", se), ("variance_factor", factor),
                                      ("n_train", int(n_train)), ("n_test", int(n_test))))


def mcnemar(correct_a, correct_b, exact: bool | None = None, level: float = 0.95) -> Comparison:
    """McNemar's test of two models scored on the same test clips.

    Only the discordant clips count: *b* where only model a is right, *c* where only model b
    is. The exact test is the two-sided binomial test of ``min(b, c)`` in ``b + c`` trials at
    1/2; the asymptotic one is the chi-square ``(|b - c| - 1)² / (b + c)`` with 1 degree of
    freedom. The interval is the Wald interval of the accuracy difference ``(b - c) / n``.

    Parameters
    ----------
    correct_a, correct_b : array-like of bool
        Per test clip, whether each model is right.
    exact : bool, optional
        Default: exact when ``b + c < 25``.

    Examples
    --------
    >>> a = [True] * 9 + [False] * 1 + [True] * 20
    >>> b = [False] * 9 + [True] * 1 + [True] * 20
    >>> result = mcnemar(a, b)
    >>> result.test, round(result.p_value, 4)
    ('McNemar exact', 0.0215)
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1 or a.size == 0:
        raise InputError("McNemar", "needs two equal-length lists of per-clip correctness")
    only_a, only_b = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    discordant, n = only_a + only_b, int(a.size)
    exact = discordant < 25 if exact is None else exact
    if discordant == 0:
        statistic, p, test = 0.0, 1.0, "McNemar exact"
    elif exact:
        statistic = float(min(only_a, only_b))
        p = float(min(1.0, 2 * scipy_stats.binom.cdf(statistic, discordant, 0.5)))
        test = "McNemar exact"
    else:
        statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
        p, test = float(scipy_stats.chi2.sf(statistic, 1)), "McNemar chi-square"
    estimate = (only_a - only_b) / n
    z = scipy_stats.norm.ppf(0.5 + level / 2)
    se = np.sqrt(max((only_a + only_b) / n - estimate ** 2, 0.0) / n)
    return Comparison(test, float(estimate), (float(estimate - z * se), float(estimate + z * se)),
                      float(statistic), p, n, level,
                      (("only_a_right", only_a), ("only_b_right", only_b),
                       ("accuracy_a", float(a.mean())), ("accuracy_b", float(b_.mean()))))


def reliability_table(confidence, correct, n_bins: int = 10) -> tuple[list[dict], float]:
    """Bin predictions by their confidence; return the bins and the expected calibration error.

    Parameters
    ----------
    confidence : array-like
        The probability each prediction gives its predicted class (its top probability).
    correct : array-like of bool
        Whether each prediction is right.
    n_bins : int
        Equal-width bins over [0, 1].

    Returns
    -------
    (bins, ece) : list of dict, float
        Per non-empty bin ``low``, ``high``, ``n``, ``confidence`` (mean), ``accuracy`` and
        ``ci95`` (Clopper–Pearson of its accuracy); ``ece`` = sum over bins of
        ``n_bin / n * |accuracy - confidence|``.

    Examples
    --------
    >>> bins, ece = reliability_table([0.9, 0.9, 0.6, 0.6], [True, False, True, True], n_bins=5)
    >>> round(ece, 3), [b["n"] for b in bins]
    (0.4, [2, 2])
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.size == 0:
        raise InputError("reliability", "needs one confidence per prediction")
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        if not mask.any():
            continue
        k, n = int(correct[mask].sum()), int(mask.sum())
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
                     "confidence": float(confidence[mask].mean()), "accuracy": k / n,
                     "ci95": binomial_interval(k, n)})
        ece += n / confidence.size * abs(k / n - confidence[mask].mean())
    return bins, float(ece)

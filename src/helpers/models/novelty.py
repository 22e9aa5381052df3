"""Novelty: how far a clip or a song lies from the genres a model knows, and the flag rule.

A genre model answers with one of its genres for any song. These signals (higher means "more
likely none of them") are what a validated open-set rule (:mod:`helpers.models.openset`) thresholds:

* ``top_probability``: 1 - the highest genre probability;
* ``margin``: 1 - (highest - second highest probability);
* ``entropy``: entropy of the genre probabilities, divided by its maximum log(K);
* ``neighbour_distance``: mean distance to the ``k`` nearest training clips in the
  standardised log-variance feature space, each feature clipped to its training range
  (:class:`NeighbourScorer`);
* ``local_density``: that distance divided by the same distance of those neighbours (a local
  outlier ratio: > 1 means the clip sits in a sparser place than its neighbours).

:func:`flags` is the one rule, used by validation (per clip) and by inference (per song, on the
mean of each signal over its voting windows, :func:`song_flag`): flagged when *any* signal of
the rule is strictly above its threshold.

Examples
--------
>>> import numpy as np
>>> from helpers.models.novelty import probability_signals
>>> signals = probability_signals(np.array([[0.9, 0.1], [0.5, 0.5]]))
>>> signals["margin"].round(2).tolist()
[0.2, 1.0]
"""

from __future__ import annotations

import numpy as np

from helpers.errors import InputError

#: Signals computed from a model's genre probabilities alone.
PROBABILITY_SIGNALS: tuple[str, ...] = ("top_probability", "margin", "entropy")
#: Signals computed from the distance to the training clips.
NEIGHBOUR_SIGNALS: tuple[str, ...] = ("neighbour_distance", "local_density")
#: Every candidate signal.
SIGNALS: tuple[str, ...] = PROBABILITY_SIGNALS + NEIGHBOUR_SIGNALS


#: Each signal in its own terms: (name for people, stored as 1 - value: flagged *below* the
#: threshold's own value).
READABLE_SIGNALS: dict[str, tuple[str, bool]] = {
    "top_probability": ("top genre probability", True),
    "margin": ("gap between the two most probable genres", True),
    "entropy": ("normalised entropy of the genre probabilities", False),
    "neighbour_distance": ("mean distance to the nearest training clips", False),
    "local_density": ("local-density ratio", False),
}


def readable_value(signal: str, value):
    """Return a stored *signal* value (or threshold) in the signal's own terms.

    The probability signals are stored as ``1 - value`` (so every signal flags above its
    threshold); a reader wants the top probability itself.

    Examples
    --------
    >>> round(readable_value("top_probability", 0.287), 3), readable_value("entropy", 0.4)
    (0.713, 0.4)
    """
    if signal not in READABLE_SIGNALS:
        raise InputError(signal, f"unknown open-set signal (choose from {', '.join(SIGNALS)})")
    return 1 - value if READABLE_SIGNALS[signal][1] else value


def describe_condition(signal: str, threshold: float) -> str:
    """Say in plain words when *signal* (oriented "higher = more unknown") passes *threshold*.

    The probability signals are stored as ``1 - value`` so that every signal flags above its
    threshold; a reader wants the value itself ("the top genre probability is below 0.277").

    Examples
    --------
    >>> describe_condition("top_probability", 0.723)
    'the top genre probability is below 0.277'
    """
    threshold = float(threshold)
    phrases = {
        "top_probability": f"the top genre probability is below {1 - threshold:.3f}",
        "margin": f"the gap between the two most probable genres is below {1 - threshold:.3f}",
        "entropy": f"the normalised entropy of the genre probabilities is above {threshold:.3f}",
        "neighbour_distance": ("the mean distance to the nearest training clips is above "
                               f"{threshold:.3f}"),
        "local_density": f"the local-density ratio is above {threshold:.3f}",
    }
    if signal not in phrases:
        raise InputError(signal, f"unknown open-set signal (choose from {', '.join(SIGNALS)})")
    return phrases[signal]


def probability_signals(proba) -> dict[str, np.ndarray]:
    """Return the probability-based signals of each row of *proba* (higher = more unknown).

    Parameters
    ----------
    proba : array-like, shape (n, K)
        Genre probabilities per clip or window (rows sum to 1).
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise InputError("probabilities", "expected a 2-D array with at least two genres")
    ordered = np.sort(proba, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(proba > 0, proba * np.log(proba), 0.0)
    return {"top_probability": 1.0 - ordered[:, -1],
            "margin": 1.0 - (ordered[:, -1] - ordered[:, -2]),
            "entropy": -plogp.sum(axis=1) / np.log(proba.shape[1])}


class NeighbourScorer:
    """Distance of new clips to the nearest training clips, and a local-density ratio.

    The space is the standardised model features with the ``*_var`` columns log-transformed
    (:class:`helpers.models.FeatureConditioner` ``log-variance``), fitted on the training rows,
    behind the same :class:`helpers.models.pipelines.FeatureGuard` as the genre models: each
    feature clipped to its training range, the DC-offset columns left out, so no single feature
    (a DC offset, say) decides the distance alone.

    Parameters
    ----------
    k : int
        Number of nearest training clips.
    """

    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, X) -> NeighbourScorer:
        """Remember the training clips *X* (rows of the model features)."""
        # imported here: predicting with a fitted scorer or a compact copy must not load
        # scikit-learn (start-up time of `music-study predict`)
        from sklearn.neighbors import NearestNeighbors
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from helpers.models.pipelines import FeatureConditioner, FeatureGuard

        self.space_ = make_pipeline(FeatureConditioner("log-variance"), FeatureGuard(),
                                    StandardScaler()).fit(X)
        points = self.space_.transform(X)
        self.k_ = min(self.k, len(points) - 1)
        self.index_ = NearestNeighbors(n_neighbors=self.k_ + 1).fit(points)
        distances, _ = self.index_.kneighbors(points)
        self.train_distance_ = distances[:, 1:].mean(axis=1)  # without the clip itself
        self.points_ = points  # the clips in the space, for helpers.models.compact's brute-force copy
        return self

    def score(self, X) -> dict[str, np.ndarray]:
        """Return ``neighbour_distance`` and ``local_density`` for the rows of *X*."""
        distances, neighbours = self.index_.kneighbors(self.space_.transform(X), n_neighbors=self.k_)
        return neighbour_signals(distances, neighbours, self.train_distance_)


def neighbour_signals(distances: np.ndarray, neighbours: np.ndarray,
                      train_distance: np.ndarray) -> dict[str, np.ndarray]:
    """The two open-set signals from each row's *k* nearest training clips.

    ``neighbour_distance`` is the mean of the row's *distances*; ``local_density`` divides it by
    the same mean of its *neighbours* (indices into *train_distance*, each training clip's own
    mean distance to its nearest clips): above 1, the row lies farther out than its neighbours.
    """
    mean_distance = distances.mean(axis=1)
    around = train_distance[neighbours].mean(axis=1)
    return {"neighbour_distance": mean_distance,
            "local_density": mean_distance / np.maximum(around, 1e-12)}


def flags(values: dict, thresholds: dict):
    """The one open-set rule: flagged where any signal is strictly above its threshold.

    Parameters
    ----------
    values : dict
        Signal name -> value(s): arrays (one value per clip, as validation scores them) or
        floats (one song's means, as inference scores it). Signals of *thresholds* missing
        from *values* are left out of the decision.
    thresholds : dict
        Signal name -> threshold.

    Returns
    -------
    numpy.ndarray of bool, or bool
        One flag per clip (arrays in), or one flag (floats in).

    Examples
    --------
    >>> flags({"margin": 0.5}, {"margin": 0.5}), flags({"margin": 0.51}, {"margin": 0.5})
    (False, True)
    """
    flagged = None
    for signal, threshold in thresholds.items():
        if signal in values:
            above = np.asarray(values[signal], dtype=float) > float(threshold)
            flagged = above if flagged is None else flagged | above
    if flagged is None:
        return False
    return bool(flagged) if np.ndim(flagged) == 0 else flagged


def song_flag(window_proba, rule: dict, window_neighbours: dict | None = None) -> tuple[dict, bool]:
    """Apply an open-set *rule* to a whole song.

    Parameters
    ----------
    window_proba : array-like, shape (n_windows, K)
        Genre probabilities of the song's voting windows.
    rule : dict
        A rule from :func:`helpers.models.openset.choose_rule` (``thresholds``: signal -> threshold).
    window_neighbours : dict, optional
        The song's windows' :meth:`NeighbourScorer.score` values (needed by neighbour signals;
        without them those signals are left out of the decision).

    Returns
    -------
    (scores, flagged) : each signal's mean over the windows, and whether any exceeds its threshold
    """
    thresholds = rule.get("thresholds")
    if not isinstance(thresholds, dict) or not thresholds:
        raise InputError(str(rule.get("signal")), "open-set rule has no thresholds")
    proba = np.asarray(window_proba, dtype=float)
    if proba.ndim != 2 or not len(proba):
        raise InputError("song", "no window probabilities to score")
    available = probability_signals(proba)
    available.update({k: np.asarray(v, dtype=float) for k, v in (window_neighbours or {}).items()})
    unknown = [s for s in thresholds if s not in SIGNALS]
    if unknown:
        raise InputError(", ".join(unknown), f"unknown open-set signal (choose from {', '.join(SIGNALS)})")
    scores = {s: float(np.nanmean(available[s])) for s in thresholds if s in available}
    return scores, flags(scores, thresholds)

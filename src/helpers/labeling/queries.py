"""Query strategies: which songs to ask a person about next.

They score the whole unlabelled pool at once from the model's class probabilities (one
matrix, no loop over songs) and pick the most uncertain items; a share ``epsilon`` of the
picks is drawn at random instead, so that genres the model is wrongly sure about (often the
minority ones) are still seen. The labeler's default (:data:`DEFAULT_STRATEGY`) is random
picking: that is what its simulation supports.

Examples
--------
>>> import numpy as np
>>> from helpers.labeling.queries import uncertainty, query
>>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
>>> uncertainty(proba, "margin").round(2).tolist()
[0.2, 1.0, 0.8]
>>> query(proba, 1, "least_confidence", epsilon=0.0, random_state=0).tolist()
[1]
"""

from __future__ import annotations

import numpy as np

from helpers.errors import InputError

#: Query strategies accepted by :func:`uncertainty` and :func:`query`.
STRATEGIES = ("least_confidence", "margin", "entropy", "random")

#: The labeler's query default. Simulated with the labeler's own model
#: (:func:`helpers.labeling.simulation.simulate_settings`; notebook 05 states the numbers), no
#: uncertainty setting beat random picking, and margin with 10% random picks left the rarest
#: genre with fewer clips than random picking did.
DEFAULT_STRATEGY = "random"
#: Share of random picks when a person chooses an uncertainty strategy: the one share simulated
#: whose rarest-genre count did not fall below random picking's.
DEFAULT_EPSILON = 0.2


def _proba(probabilities) -> np.ndarray:
    proba = np.asarray(probabilities, dtype=float)
    if proba.ndim != 2 or proba.shape[1] == 0:
        raise InputError("probabilities", f"need a 2-D (items x classes) array, got shape {proba.shape}")
    if not np.all(np.isfinite(proba)):
        raise InputError("probabilities", "hold NaN or infinite values")
    return proba


def uncertainty(probabilities, strategy: str = "least_confidence") -> np.ndarray:
    """Score each row of a probability matrix: higher means the model is less sure.

    Parameters
    ----------
    probabilities : array-like, shape (n_items, n_classes)
        ``predict_proba`` output over the pool.
    strategy : {'least_confidence', 'margin', 'entropy', 'random'}
        ``least_confidence``: 1 - top probability. ``margin``: 1 - (top - second).
        ``entropy``: Shannon entropy in bits. ``random``: all zeros (every item equal).

    Returns
    -------
    np.ndarray, shape (n_items,)
    """
    proba = _proba(probabilities)
    if strategy == "least_confidence":
        return 1.0 - proba.max(axis=1)
    if strategy == "margin":
        if proba.shape[1] == 1:
            return np.zeros(len(proba))
        top_two = -np.partition(-proba, 1, axis=1)[:, :2]
        return 1.0 - (top_two[:, 0] - top_two[:, 1])
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(proba > 0, proba * np.log2(proba), 0.0)
        return -terms.sum(axis=1)
    if strategy == "random":
        return np.zeros(len(proba))
    raise InputError(repr(strategy), f"unknown query strategy; choose one of {', '.join(STRATEGIES)}")


def query(probabilities, n: int = 1, strategy: str = "least_confidence", epsilon: float = 0.1,
          random_state=None) -> np.ndarray:
    """Pick *n* items of the pool to label next.

    Each pick is, with probability *epsilon*, drawn uniformly from the pool; the others are the
    most uncertain items under *strategy* (ties broken at random).

    Parameters
    ----------
    probabilities : array-like, shape (n_items, n_classes)
        Model probabilities over the whole unlabelled pool.
    n : int
        How many items to pick (fewer if the pool is smaller).
    strategy : str
        One of :data:`STRATEGIES`; ``'random'`` ignores the probabilities.
    epsilon : float in [0, 1]
        Share of random picks.
    random_state : int, numpy Generator or None

    Returns
    -------
    np.ndarray of int
        Row indices into *probabilities*, most uncertain first, random picks after them.
    """
    scores = uncertainty(probabilities, strategy)
    if not 0.0 <= float(epsilon) <= 1.0:
        raise InputError(repr(epsilon), "epsilon must be between 0 and 1")
    if int(n) < 0:
        raise InputError(repr(n), "number of picks must be >= 0")
    rng = np.random.default_rng(random_state)
    n = min(int(n), len(scores))
    n_random = n if strategy == "random" else int(rng.binomial(n, float(epsilon)))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -scores))  # by score descending, ties at random
    chosen = order[: n - n_random]
    rest = np.setdiff1d(np.arange(len(scores)), chosen)
    random_picks = rng.choice(rest, size=n_random, replace=False) if n_random else []
    return np.concatenate([chosen, np.asarray(random_picks, dtype=int)]).astype(int)

"""Robustness of a genre model to one feature far outside the training range, and to a DC offset.

A recording with a DC offset (a constant added to the waveform) is the same music, yet the
GTZAN table's ``harmony_mean`` and ``perceptr_mean`` measure exactly that offset (the harmonic
and percussive waveforms sum to the signal, so their means sum to its mean), and the offset
moves the zero-crossing rate and RMS too. :class:`helpers.models.pipelines.FeatureGuard` leaves
the offset columns out and clips every other feature to its training range.
:func:`guard_comparison` scores a candidate recipe with and without the guard by the same
artist-grouped folds (paired per clip); :func:`with_dc_offset` writes a copy of a song with an
offset added, so a prediction can be compared with and without it.

Examples
--------
>>> from helpers.evaluation import robustness
>>> robustness.guard_comparison("logreg")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import data
from helpers.audio.decode import load_audio
from helpers.cache import CacheEntry, code_fingerprint
from helpers.constants import SAMPLE_RATE
from helpers.errors import InputError
from helpers.features.columns import MODEL_FEATURES
from helpers.models.candidates import calibrate, fit_grouped, get_candidate
from helpers.models.pipelines import FeatureGuard, build_model
from helpers.models.selection import recipe_key
from helpers.models.training import table_fingerprint
from helpers.models.tuning import grouped_folds
from helpers.stats import bootstrap_mean_interval, mean_interval

#: Guard settings :func:`guard_comparison` scores by default (None: no guard).
GUARD_VARIANTS: dict[str, dict | None] = {
    "no guard": None,
    "clip only": {"drop": ()},
    "drop offset columns only": {"margin": np.inf},
    "clip + drop offset columns (default)": {},
}


def guard_comparison(candidate: str = "logreg", table: pd.DataFrame | None = None,
                     variants: dict | None = None, n_splits: int = 5, seed: int = 0,
                     cache: bool = True) -> pd.DataFrame:
    """Artist-grouped CV accuracy of *candidate*'s recipe under each guard setting, paired per clip.

    Every variant is fitted and scored on the same folds (:func:`helpers.models.tuning.grouped_folds`
    over the artist groups), so the difference to the first variant is paired clip by clip;
    its interval is a bootstrap over clips.

    Parameters
    ----------
    candidate : str
        An untuned candidate recipe (:data:`helpers.models.CANDIDATES`) whose pipeline has a guard.
    variants : dict, optional
        Name -> :class:`FeatureGuard` parameters (None: the guard removed); default
        :data:`GUARD_VARIANTS`. The first is the reference of the differences.
    cache : bool
        Reuse a result stored in ``data/cache/robustness`` for the same rows, recipe and settings.

    Returns
    -------
    pandas.DataFrame
        ``variant``, ``cv_accuracy``, ``ci_low``, ``ci_high``, ``difference``, ``diff_low``,
        ``diff_high`` (to the first variant), ``n`` (clips, each scored once).
    """
    spec = get_candidate(candidate)
    if spec.tuned or "guard" not in build_model(spec.base).named_steps:
        raise InputError(candidate, "guard comparison needs an untuned candidate with a guard step")
    table = (data.load_gtzan_table() if table is None else table).reset_index(drop=True)
    variants = dict(GUARD_VARIANTS if variants is None else variants)
    entry = CacheEntry.for_payload("robustness", {
        "code": code_fingerprint("helpers.evaluation.robustness", "helpers.models.pipelines"),
        "candidate": candidate, "recipe": recipe_key(candidate, seed),
        "variants": {k: repr(v) for k, v in variants.items()}, "n_splits": n_splits, "seed": seed,
        "rows": table_fingerprint(table)})
    stored = entry.read() if cache else None
    if stored is not None and isinstance(stored.get("rows"), list):
        return pd.DataFrame(stored["rows"])
    groups = data.artist_groups(table["filename"]).to_numpy()
    folds = list(grouped_folds(n_splits, seed).split(table, table["label"], groups))
    X, y = table[list(MODEL_FEATURES)], table["label"].to_numpy()
    correct = {}
    for name, params in variants.items():
        hits = np.zeros(len(table), dtype=bool)
        for fit_idx, score_idx in folds:
            pipeline = build_model(spec.base, random_state=seed)
            pipeline.set_params(guard="passthrough" if params is None else FeatureGuard(**params))
            if spec.calibration is not None:
                pipeline = calibrate(pipeline, spec.calibration, n_splits=n_splits, seed=seed)
            fit_grouped(pipeline, X.iloc[fit_idx], y[fit_idx], groups[fit_idx])
            hits[score_idx] = pipeline.predict(X.iloc[score_idx]) == y[score_idx]
        correct[name] = hits
    reference = correct[next(iter(variants))].astype(float)
    rows = []
    for name, hits in correct.items():
        accuracy, low, high = mean_interval(hits, rng=seed)
        difference = hits.astype(float) - reference
        d_low, d_high = bootstrap_mean_interval(difference, rng=seed)
        rows.append({"variant": name, "cv_accuracy": round(accuracy, 4), "ci_low": round(low, 4),
                     "ci_high": round(high, 4), "difference": round(float(difference.mean()), 4),
                     "diff_low": round(d_low, 4), "diff_high": round(d_high, 4), "n": len(hits)})
    if cache:
        entry.write({"rows": rows})
    return pd.DataFrame(rows)


def with_dc_offset(source, target, offset: float = 0.1, seconds: float | None = None) -> Path:
    """Write *source* (decoded mono at 22 050 Hz) plus a constant *offset* to the WAV *target*.

    *seconds* keeps only the start of the song. Samples are stored as 32-bit floats, so the
    offset does not clip.
    """
    # imported here: only this helper writes audio
    import soundfile

    samples = np.asarray(load_audio(source, duration=seconds), dtype=np.float32)
    target = Path(target)
    soundfile.write(target, samples + np.float32(offset), SAMPLE_RATE, subtype="FLOAT")
    return target

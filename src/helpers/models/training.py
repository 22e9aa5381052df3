"""The rows a genre model is fitted on: their fingerprint, and extra labelled rows.

Examples
--------
>>> from helpers import data
>>> from helpers.models.training import table_fingerprint
>>> len(table_fingerprint(data.load_gtzan_table()))
32
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from helpers.errors import InputError
from helpers.features import SAMPLE_RATE
from helpers.features.columns import FEATURE_COLUMNS, MODEL_FEATURES


def table_fingerprint(table: pd.DataFrame, columns=MODEL_FEATURES, label: str = "label") -> str:
    """Return the md5 of a table's training rows (the feature values in *columns* and *label*).

    Row order matters; the same rows give the same fingerprint across pandas versions.
    """
    digest = hashlib.md5()
    digest.update(json.dumps(list(columns)).encode())
    digest.update(np.ascontiguousarray(table[list(columns)].to_numpy(dtype="<f8")).tobytes())
    digest.update("\n".join(map(str, table[label])).encode())
    return digest.hexdigest()


def merge_extra_rows(table: pd.DataFrame, extra, source: str = "original study") -> pd.DataFrame:
    """Append extra labelled rows (e.g. the original study's active-learning rows) to a table.

    Parameters
    ----------
    table : pandas.DataFrame
        A GTZAN-style table (``filename``, :data:`~helpers.features.FEATURE_COLUMNS`,
        ``label``). Rows without a ``source`` column are marked ``"gtzan"``.
    extra : pandas.DataFrame or path-like
        Rows to add; rows whose ``filename`` is already in *table* are dropped (the study's
        file repeats the whole GTZAN table before its own rows).
    source : str
        Value of the ``source`` column for the added rows.

    Returns
    -------
    pandas.DataFrame
        *table* followed by the new rows, with a ``source`` column. A ``length`` stored in
        seconds (under 1000) is converted to samples at 22050 Hz, the table's unit.

    Raises
    ------
    InputError
        *extra* cannot be read or lacks required columns.
    """
    name = "extra rows"
    if not isinstance(extra, pd.DataFrame):
        name = str(extra)
        try:
            extra = pd.read_csv(extra)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(name, f"cannot read extra rows: {exc}") from None
    required = ["filename", *FEATURE_COLUMNS, "label"]
    for frame, what in ((table, "table"), (extra, name)):
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise InputError(what, f"missing columns {', '.join(missing[:5])}")
    base = table.copy()
    if "source" not in base.columns:
        base["source"] = "gtzan"
    added = extra.loc[~extra["filename"].isin(base["filename"]), required].copy()
    in_seconds = added["length"] < 1000
    added.loc[in_seconds, "length"] = added.loc[in_seconds, "length"] * SAMPLE_RATE
    added["source"] = source
    return pd.concat([base, added[base.columns.intersection(added.columns)]], ignore_index=True)

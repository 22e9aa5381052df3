"""Prose that a notebook computes: claims rendered from this run's values.

A report is a claim. Notebooks state findings with :func:`say` (Markdown built from the run's
own numbers), mark sections that could not run with :func:`not_run` (one visible line, no
conclusions), and record their headline results with :func:`headline`. ``music-study report``
reads the last two back from the executed notebook (:func:`collect`) into ``reports/index.json``.

Examples
--------
>>> from helpers.reports.narrate import say, not_run, headline, interval_verdict
>>> say("KNN reaches **{acc:.3f}** on the fault-filtered test split (n={n}).", acc=0.42, n=290)
'KNN reaches **0.420** on the fault-filtered test split (n=290).'
>>> not_run("Source confound", needs="the original study's extra rows", parameter="extra_rows")
"needs the original study's extra rows (set parameter `extra_rows`)"
>>> headline(ff_test_accuracy_best=0.562)
{'ff_test_accuracy_best': 0.562}
>>> interval_verdict("logreg", (0.50, 0.62), "knn", (0.37, 0.48))
'logreg is higher than knn (95% intervals do not overlap)'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from helpers.errors import InputError

#: MIME types of the machine-readable records a notebook leaves in its outputs.
HEADLINE_MIME = "application/vnd.music-study.headline+json"
SKIPPED_MIME = "application/vnd.music-study.skipped+json"


class _Quiet:
    """Mixin: IPython shows nothing for the value when it ends a cell (it was shown already)."""

    def _ipython_display_(self) -> None:
        pass


class Said(_Quiet, str):
    """The Markdown :func:`say` and :func:`not_run` displayed; a plain ``str`` otherwise."""


class Recorded(_Quiet, dict):
    """The record :func:`headline` stored; a plain ``dict`` otherwise."""


def _display(data: dict, markdown: str | None = None) -> None:
    """Show *markdown* (if any) and leave *data* as a raw output; a no-op outside IPython."""
    try:  # imported here: outside a kernel (a script, a test) there may be no IPython
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the workspace
        return
    if get_ipython() is None:
        return
    if markdown is not None:
        display(Markdown(markdown))
    if data:
        display(data, raw=True)


def say(template: str, /, **values) -> str:
    """Display Markdown built from *template* and this run's *values*; return the text.

    Parameters
    ----------
    template : str
        Markdown with ``str.format`` fields, e.g. ``"accuracy **{acc:.3f}** (n={n})"``.
    **values
        The numbers and names the sentence states; every one must come from this run.

    Returns
    -------
    str
        The rendered Markdown, already displayed when running in IPython (so a ``say`` that
        ends a cell is not shown a second time).
    """
    text = Said(template.format(**values))
    _display({}, text)
    return text


def not_run(section: str, needs: str, parameter: str | None = None) -> str:
    """Mark *section* as not run in one visible line and record it for the report index.

    Parameters
    ----------
    section : str
        The section's title as the reader sees it.
    needs : str
        What was missing ("the full GTZAN audio", "quick mode", ...).
    parameter : str, optional
        The notebook parameter that would make it run.

    Returns
    -------
    str
        The one-line reason, also stored as ``{"section", "reason"}``.
    """
    reason = Said(f"needs {needs}" + (f" (set parameter `{parameter}`)" if parameter else ""))
    _display({SKIPPED_MIME: {"section": section, "reason": reason}},
             f"**Not run: {section}** — {reason}.")
    return reason


def headline(**values) -> dict:
    """Record named headline results of this run (numbers, short strings) for the index.

    Values must be JSON-serialisable scalars; NumPy scalars are converted, NaN and infinity
    become None. Calling it again adds or overrides names. Nothing is shown on the page.

    Raises
    ------
    InputError
        When no value is given or a value cannot be stored as JSON.
    """
    if not values:
        raise InputError("headline", "name at least one result, e.g. headline(test_accuracy=0.56)")
    clean = {}
    for name, value in values.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        clean[name] = value
    try:  # fail here, in the notebook, not in the report runner
        json.dumps(clean, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError("headline", f"values are not JSON numbers or strings ({exc})") from None
    _display({HEADLINE_MIME: clean})
    return Recorded(clean)


def _checked(interval: Sequence[float], name: str) -> tuple[float, float]:
    low, high = (float(v) for v in interval)
    if not low <= high:  # also refuses NaN
        raise InputError(name, f"interval [{low}, {high}] is not (low, high)")
    return low, high


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals already passed through :func:`_checked` overlap (touching counts)."""
    return max(a[0], b[0]) <= min(a[1], b[1])


def intervals_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Return True when the intervals ``(low, high)`` *a* and *b* overlap (touching counts)."""
    return _overlap(_checked(a, "first interval"), _checked(b, "second interval"))


def interval_verdict(name_a: str, interval_a: Sequence[float], name_b: str,
                     interval_b: Sequence[float], level: str = "95%") -> str:
    """Say what two intervals show: which is higher, or "no clear difference" when they overlap."""
    interval_a, interval_b = _checked(interval_a, name_a), _checked(interval_b, name_b)
    if _overlap(interval_a, interval_b):
        return f"no clear difference between {name_a} and {name_b} ({level} intervals overlap)"
    higher, lower = (name_a, name_b) if interval_a[0] > interval_b[1] else (name_b, name_a)
    return f"{higher} is higher than {lower} ({level} intervals do not overlap)"


def gain_verdict(name: str, interval: Sequence[float], level: str = "95%",
                 what: str = "gain") -> str:
    """Say what an interval of a difference shows: above zero, below zero, or not clear."""
    low, high = _checked(interval, name)
    if low > 0:
        return f"{name}: {what} above zero ({level} interval [{low:+.3f}, {high:+.3f}])"
    if high < 0:
        return f"{name}: {what} below zero ({level} interval [{low:+.3f}, {high:+.3f}])"
    return f"{name}: no clear {what} ({level} interval [{low:+.3f}, {high:+.3f}] includes 0)"


def collect(notebook) -> tuple[dict, list[dict]]:
    """Read the headline results and not-run sections a notebook recorded in its outputs.

    Parameters
    ----------
    notebook : nbformat.NotebookNode or Mapping
        An executed notebook.

    Returns
    -------
    headline : dict
        Every name recorded with :func:`headline` (later calls win).
    skipped : list of dict
        ``{"section", "reason"}`` per :func:`not_run` call, in order.
    """
    found: dict = {}
    skipped: list[dict] = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if HEADLINE_MIME in data and isinstance(data[HEADLINE_MIME], Mapping):
                found.update(data[HEADLINE_MIME])
            if SKIPPED_MIME in data and isinstance(data[SKIPPED_MIME], Mapping):
                skipped.append(dict(data[SKIPPED_MIME]))
    return found, skipped

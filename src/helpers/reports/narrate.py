"""Prose that a notebook computes: claims rendered from this run's values.

A report is a claim. Notebooks state findings with :func:`say` (Markdown built from the run's
own numbers), mark sections that could not run with :func:`not_run` (one visible line, no
conclusions), and record their headline results with :func:`headline`. ``music-study report``
reads these records back from the executed notebook (:func:`collect`) into ``reports/index.json``.

The API a notebook uses
-----------------------
Set-up, once, in the first code cell
    :func:`setup_notebook` — the report's plotting and table defaults (legible ticks, figures
    that fit the page, tables that wrap instead of truncating).
Optional inputs
    :func:`find_input` ``(parameter, value, shared=..., needs=..., section=...)`` — the one
    resolver: the parameter, else ``$MUSIC_STUDY_<PARAMETER>``, else ``../shared/data/<shared>``
    (:func:`helpers.paths.optional_input`). It records the input used, with a sha256
    fingerprint, for the index; when nothing is found it says "Not run: <section> — needs
    <needs>" itself and returns None.
Numbers with their uncertainty
    :func:`share` ``(k, n)`` — a share with its exact (Clopper–Pearson) interval, or "too few
    to say" below :data:`MIN_N`; :func:`estimate` ``(value, interval, n, split)`` — any figure
    with its interval and n. Both format as text and go into :func:`headline` whole (value,
    interval, n and split reach the index).
Verdicts
    A sentence that says "better", "worse" or "no clear difference" comes only from a
    comparison, returned as a :class:`Verdict` (its text, plus the statistic in
    ``.comparison``):

    - :func:`compare_folds` — fold scores of repeated CV (corrected resampled t-test);
    - :func:`compare_on_test` — two models' predictions on one shared test split (McNemar);
    - :func:`compare_paired` — independent paired observations (users, seeds, songs);
      bootstrap interval of the mean difference;
    - :func:`compare_groups` — two independent groups (songs of two collections); bootstrap
      interval of the difference of their means;
    - :func:`gain_verdict` — an interval of a difference computed elsewhere.

Examples
--------
>>> from helpers.reports.narrate import say, not_run, headline, share, compare_folds
>>> say("KNN reaches **{acc:.3f}** on the fault-filtered test split (n={n}).", acc=0.42, n=290)
'KNN reaches **0.420** on the fault-filtered test split (n=290).'
>>> not_run("Source confound", needs="the original study's extra rows", parameter="extra_rows")
"needs the original study's extra rows (set parameter `extra_rows`)"
>>> str(share(3, 10, split="songs"))
'0.300 [95% CI 0.067–0.652] (3 of 10, songs)'
>>> str(share(2, 2))
'too few to say (2 of 2)'
>>> str(compare_folds("tuned", [0.8, 0.7, 0.9, 0.8, 0.75], "default", [0.7, 0.7, 0.8, 0.7, 0.7],
...                   n_train=80, n_test=20))  # doctest: +NORMALIZE_WHITESPACE
'no clear difference between tuned and default (corrected resampled t-test over 5 folds: mean
difference +0.070 [95% CI -0.013, +0.153], t = 2.33, p = 0.080)'
>>> headline(ff_test_accuracy=share(171, 290, split="fault-filtered test"))["ff_test_accuracy"]["n"]
290
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from helpers import paths, stats
from helpers.errors import InputError

#: MIME types of the machine-readable records a notebook leaves in its outputs.
HEADLINE_MIME = "application/vnd.music-study.headline+json"
SKIPPED_MIME = "application/vnd.music-study.skipped+json"
INPUT_MIME = "application/vnd.music-study.input+json"

MIN_N = stats.MIN_N  # below it a share or a mean is not quoted: "too few to say"


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

    Values must be JSON-serialisable scalars, or an :class:`Estimate` (:func:`share`,
    :func:`estimate`) or :class:`Verdict`, stored as a record with its value, interval, n and
    split; NumPy scalars are converted, NaN and infinity become None. Calling it again adds or overrides names. Nothing is shown on the page.

    Raises
    ------
    InputError
        When no value is given or a value cannot be stored as JSON.
    """
    if not values:
        raise InputError("headline", "name at least one result, e.g. headline(test_accuracy=0.56)")
    clean = {}
    for name, value in values.items():
        if isinstance(value, (Estimate, Verdict)):
            clean[name] = value.record()
            continue
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
    """Say what two intervals show: which is higher, or "no clear difference" when they overlap.

    Overlap of two separate intervals is a weak test (two intervals can overlap while the
    difference is clear); for a verdict on paired or independent samples prefer
    :func:`compare_paired`, :func:`compare_groups`, :func:`compare_folds` or
    :func:`compare_on_test`, which test the difference itself.
    """
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


def collect_inputs(notebook) -> list[dict]:
    """Read the inputs a notebook recorded with :func:`find_input` (``name``, ``path``,
    ``source``, ``sha256``), in order."""
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            record = (output.get("data") or {}).get(INPUT_MIME)
            if isinstance(record, Mapping):
                found.append(dict(record))
    return found


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


def _fmt(value: float, digits: int = 3, sign: bool = False) -> str:
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval, n and split; formats as ``0.590 [95% CI 0.531–0.645] (n=290, …)``.

    Built by :func:`share` or :func:`estimate`. Below :data:`MIN_N` observations it formats as
    "too few to say" and its record keeps the counts only.
    """

    value: float
    interval: tuple
    n: int
    split: str = ""
    method: str = ""
    successes: int | None = None
    digits: int = 3

    @property
    def too_few(self) -> bool:
        return self.n < MIN_N

    def __str__(self) -> str:
        counts = f"{self.successes} of {self.n}" if self.successes is not None else f"n={self.n}"
        where = f"{counts}, {self.split}" if self.split else counts
        if self.too_few:
            return f"too few to say ({where})"
        low, high = self.interval
        return (f"{_fmt(self.value, self.digits)} [95% CI {_fmt(low, self.digits)}–"
                f"{_fmt(high, self.digits)}] ({where})")

    def __format__(self, spec: str) -> str:
        return format(str(self), spec) if spec and not spec[-1:].isalpha() else str(self)

    def record(self) -> dict:
        """What :func:`headline` stores: value, ci95, n, split, method (value None if too few)."""
        too_few = self.too_few
        return {"value": None if too_few else round(float(self.value), 4),
                "ci95": None if too_few else [round(float(v), 4) for v in self.interval],
                "n": int(self.n), "split": self.split, "method": self.method,
                **({"successes": int(self.successes)} if self.successes is not None else {})}


def share(successes: int, n: int, split: str = "", level: float = 0.95,
          method: str = "clopper-pearson") -> Estimate:
    """A share *successes* / *n* with its exact interval (:func:`helpers.stats.binomial_interval`).

    For an accuracy, a detection rate, a share of songs: any n, and the only honest interval
    for a handful (a bootstrap of 2 of 2 gives [1, 1]; Clopper–Pearson gives [0.16, 1]).
    """
    successes, n = int(successes), int(n)
    interval = stats.binomial_interval(successes, n, level, method) if n > 0 else (np.nan, np.nan)
    return Estimate(successes / n if n else float("nan"), interval, n, split,
                    method.replace("-", "–").title() if n else "", successes)


def estimate(value: float, interval: Sequence[float], n: int, split: str = "",
             method: str = "bootstrap 95%", digits: int = 3) -> Estimate:
    """Any figure with its interval (computed by the caller), its n and split."""
    return Estimate(float(value), tuple(float(v) for v in interval), int(n), split, method,
                    None, digits)


@dataclass(frozen=True)
class Verdict:
    """A verdict sentence and the comparison it comes from.

    ``text`` says "better" / "worse" / "no clear difference" only as the statistic allows;
    ``comparison`` is the :class:`helpers.stats.Comparison` (estimate, interval, statistic,
    p-value, n). ``str(verdict)`` is the text; :func:`headline` stores the record.
    """

    text: str
    comparison: stats.Comparison
    name_a: str
    name_b: str

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        return str(self)

    @property
    def clear(self) -> bool:
        """Whether the comparison separates the two: McNemar's p below 1 − level, otherwise an
        interval of the difference that excludes 0."""
        return _separated(self.comparison)

    def record(self) -> dict:
        c = self.comparison
        return {"value": round(c.estimate, 4), "ci95": [round(v, 4) for v in c.interval],
                "n": c.n, "split": f"{self.name_a} − {self.name_b}", "method": c.test,
                "statistic": round(c.statistic, 4),
                "p_value": None if math.isnan(c.p_value) else round(c.p_value, 4)}


def _separated(comparison: stats.Comparison) -> bool:
    if comparison.test.startswith("McNemar"):  # the exact p decides; the Wald interval only shows size
        return bool(comparison.p_value < 1 - comparison.level and comparison.estimate != 0)
    low, high = comparison.interval
    return bool(low > 0 or high < 0)


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _verdict(comparison: stats.Comparison, name_a: str, name_b: str, unit: str,
             what: str = "", words: tuple = ("better", "worse")) -> Verdict:
    low, high = comparison.interval
    level = f"{comparison.level:.0%}"
    mcnemar = comparison.test.startswith("McNemar")
    difference = "accuracy difference" if mcnemar else "mean difference"
    how = f"{comparison.test} over {comparison.n} {unit}: {difference} " \
          f"{_fmt(comparison.estimate, sign=True)} [{level} CI {_fmt(low, sign=True)}, " \
          f"{_fmt(high, sign=True)}]"
    if mcnemar:
        detail = dict(comparison.detail)
        how += f", {detail['only_a_right']} clips right only by {name_a} and " \
               f"{detail['only_b_right']} only by {name_b}"
    if not math.isnan(comparison.p_value):
        if "t-test" in comparison.test:
            how += f", t = {comparison.statistic:.2f}"
        elif "chi-square" in comparison.test:
            how += f", chi² = {comparison.statistic:.2f}"
        how += f", {_p(comparison.p_value)}"
    what = f" on {what}" if what else ""
    if comparison.n < MIN_N:
        text = f"too few to say whether {name_a} differs from {name_b}{what} ({how})"
    elif mcnemar and not (dict(comparison.detail)["only_a_right"] or dict(comparison.detail)["only_b_right"]):
        text = (f"no difference between {name_a} and {name_b}{what}: right and wrong on the same "
                f"{comparison.n} {unit}")
    elif _separated(comparison) and comparison.estimate > 0:
        text = f"{name_a} is {words[0]} than {name_b}{what} ({how})"
    elif _separated(comparison):
        text = f"{name_a} is {words[1]} than {name_b}{what} ({how})"
    else:
        text = f"no clear difference between {name_a} and {name_b}{what} ({how})"
    return Verdict(text, comparison, name_a, name_b)


def compare_folds(name_a: str, scores_a, name_b: str, scores_b, n_train: int, n_test: int,
                  what: str = "", level: float = 0.95) -> Verdict:
    """Compare two models' scores on the same CV folds (:func:`helpers.stats.corrected_resampled_ttest`).

    *n_train* and *n_test* are the rows of one fold's training and test part (5-fold CV over
    1000 clips: 800 and 200). "Better" only when the corrected interval excludes 0.
    """
    result = stats.corrected_resampled_ttest(scores_a, scores_b, n_train, n_test, level)
    return _verdict(result, name_a, name_b, "folds", what)


def compare_on_test(name_a: str, y_true, pred_a, name_b: str, pred_b, split: str = "",
                    level: float = 0.95) -> Verdict:
    """Compare two models' predictions on one shared test split (:func:`helpers.stats.mcnemar`)."""
    y_true = np.asarray(y_true)
    result = stats.mcnemar(np.asarray(pred_a) == y_true, np.asarray(pred_b) == y_true,
                           level=level)
    return _verdict(result, name_a, name_b, f"{split} test clips".strip(), "accuracy")


def compare_paired(name_a: str, values_a, name_b: str, values_b, unit: str = "pairs",
                   what: str = "", level: float = 0.95, seed: int = 0,
                   words: tuple = ("better", "worse")) -> Verdict:
    """Compare paired, independent observations (:func:`helpers.stats.paired_difference`).
    *words* name the two directions (``("higher", "lower")`` where higher is not better)."""
    result = stats.paired_difference(values_a, values_b, level=level, rng=seed)
    return _verdict(result, name_a, name_b, unit, what, words)


def compare_groups(name_a: str, values_a, name_b: str, values_b, unit: str = "observations",
                   what: str = "", level: float = 0.95, seed: int = 0,
                   words: tuple = ("higher", "lower")) -> Verdict:
    """Compare two independent groups by the difference of their means
    (:func:`helpers.stats.difference_of_means`); "too few to say" when the smaller has < 5.
    *words* name the two directions ("higher"/"lower" by default: a mean need not be better)."""
    result = stats.difference_of_means(values_a, values_b, level=level, rng=seed)
    return _verdict(result, name_a, name_b, f"{unit} in the smaller group", what, words)


def find_input(parameter: str, value=None, shared: str | None = None, needs: str = "",
               section: str | None = None, env: str | None = None):
    """Resolve an optional input (:func:`helpers.paths.optional_input`) and record it for the index.

    Parameters
    ----------
    parameter : str
        The notebook parameter (``"extra_rows"``); its environment variable is
        ``MUSIC_STUDY_<PARAMETER>`` unless *env* names another.
    value : path-like, optional
        The parameter's value.
    shared : str, optional
        Where the input lives in ``../shared/data`` (``"seed/features_30_secActive.csv"``).
    needs, section : str, optional
        When nothing is found and *section* is given, the section is marked not run
        (:func:`not_run`) with "needs *needs*".

    Returns
    -------
    pathlib.Path or None
    """
    path, source = paths.optional_input(parameter, value, shared=shared, env=env)
    if path is None:
        if section:
            not_run(section, needs=needs or f"`{parameter}`", parameter=parameter)
        return None
    record = {"name": parameter, "path": path.name, "source": source,
              "sha256": paths.fingerprint(path)}
    _display({INPUT_MIME: record}, f"*Input `{parameter}`: `{path.name}` ({source}, "
                                   f"sha256 {record['sha256']}).*")
    return path


def setup_notebook() -> None:
    """Set the report's plotting and table defaults; every notebook calls it once.

    Figures: 100 dpi, at most :data:`PAGE_INCHES` wide to fit the report page unshrunk,
    ticks and labels of at least 9 pt. Tables: no cut cell text, no hidden columns or rows
    up to 200 (long text wraps in the HTML page).
    """
    import matplotlib as mpl  # imported here: narrate is also used where no plotting happens
    import pandas as pd
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (8, 4),
                         "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
                         "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
                         "figure.constrained_layout.use": False})
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", 60)
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.width", 120)
    try:  # the inline backend keeps its own figure format settings
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("config", "InlineBackend.print_figure_kwargs = {'bbox_inches': 'tight'}")
    except ImportError:  # pragma: no cover
        pass


#: Widest figure (inches at 100 dpi) that the report page shows at its natural size.
PAGE_INCHES = 10.0

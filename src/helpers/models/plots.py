"""Figures of the open-set rule: its candidate rules, and its signals on whole songs.

Notebook 06 draws these; they live here so the notebook only narrates.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from helpers.constants import PAGE_WIDTH_INCHES
from helpers.models import novelty
from helpers.stats import binomial_interval

#: Units of the signals that are not a probability.
SIGNAL_UNITS = {"neighbour_distance": "standardised feature units", "local_density": "ratio"}


def plot_candidate_rules(rule: dict, model_name: str):
    """Bar chart: the share of left-out-genre clips each candidate rule flags (in sample), with
    exact 95% intervals and the chance line (a random flag at the target false-flag rate).

    Parameters
    ----------
    rule : dict
        A model card's ``open_set`` entry (``alternatives``, ``n_unknown``,
        ``target_false_flag_rate``).
    model_name : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    alternatives = pd.Series(rule["alternatives"]).sort_values()
    n = rule["n_unknown"]
    bounds = [binomial_interval(round(v * n), n) for v in alternatives]
    fig, ax = plt.subplots(figsize=(min(8.5, PAGE_WIDTH_INCHES), 0.9 + 0.4 * len(alternatives)))
    ax.barh(alternatives.index, alternatives, color="steelblue",
            xerr=[[v - b[0] for v, b in zip(alternatives, bounds, strict=True)],
                  [b[1] - v for v, b in zip(alternatives, bounds, strict=True)]],
            error_kw={"elinewidth": 1, "capsize": 2})
    chance = rule["target_false_flag_rate"]
    ax.axvline(chance, color="black", ls="--", lw=1,
               label=f"chance: a random flag at a {chance:.0%} false-flag rate")
    ax.set(xlabel=f"share of left-out-genre clips flagged (in-sample, n={n}, exact 95% CI)",
           ylabel="rule (signals joined by +)", title=f"Candidate open-set rules, model {model_name}")
    ax.legend(loc="lower right", fontsize=9)
    return fig


def song_signal_table(predictions: dict) -> pd.DataFrame:
    """The open-set signals of whole songs as stored (probability signals as 1 − value):
    one row per song (file name), one column per signal."""
    return pd.DataFrame({Path(str(source)).name: p.open_set["features"]["scores"]
                         for source, p in predictions.items()}).T


def readable_signals(stored: pd.DataFrame) -> pd.DataFrame:
    """:func:`song_signal_table` in each signal's own terms (a probability as itself)."""
    return pd.DataFrame({novelty.READABLE_SIGNALS[s][0]: novelty.readable_value(s, stored[s])
                         for s in stored})


def plot_song_signals(stored: pd.DataFrame, rule: dict, model_name: str):
    """One panel per signal: each song's mean over its voting windows against the rule's
    threshold (dashed), red where that signal flags the song.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(len(stored.columns), 1, squeeze=False,
                             figsize=(min(9, PAGE_WIDTH_INCHES),
                                      (1.3 + 0.45 * len(stored)) * len(stored.columns)))
    for ax, signal in zip(axes[:, 0], stored.columns, strict=True):
        flagged = stored[signal] > rule["thresholds"][signal]
        threshold = novelty.readable_value(signal, rule["thresholds"][signal])
        name, below = novelty.READABLE_SIGNALS[signal]
        ax.barh(stored.index, novelty.readable_value(signal, stored[signal]),
                color=["#b2182b" if f else "#2166ac" for f in flagged])
        ax.axvline(threshold, color="black", ls="--", lw=1)
        ax.set(xlabel=f"song mean ({SIGNAL_UNITS.get(signal, '0-1')}); flagged "
                      f"{'below' if below else 'above'} the dashed threshold {threshold:.3f}",
               title=name)
    fig.suptitle(f"Open-set signals of {len(stored)} whole songs, model {model_name} "
                 "(red: flagged by this signal)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_open_set_aurocs(summary: pd.DataFrame, chosen: str, title: str):
    """Point-range chart of each open-set signal's AUROC with its 95% interval.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`helpers.evaluation.learned.open_set_summary` (indexed by signal: ``auroc``,
        ``ci_low``, ``ci_high``).
    chosen : str
        The signal that decides (drawn filled and named in the legend).
    title : str
        The figure title (name the clips, the protocol and n).
    """
    order = summary.sort_values("auroc")
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_INCHES, 0.45 * len(order) + 1.4))
    y = range(len(order))
    for position, (signal, row) in zip(y, order.iterrows(), strict=True):
        picked = signal == chosen
        ax.errorbar(row["auroc"], position, xerr=[[row["auroc"] - row["ci_low"]], [row["ci_high"] - row["auroc"]]],
                    fmt="o", mfc="C3" if picked else "white", color="C3" if picked else "C0",
                    capsize=3, label="the verdict for songs analysed from audio" if picked else None)
    ax.axvline(0.5, color="black", ls="--", lw=1, label="chance (AUROC 0.5)")
    ax.set_yticks(list(y), order.index)
    ax.set(xlabel="AUROC, mean over left-out genres (bootstrap 95% CI)", ylabel="signal", title=title, xlim=(0.3, 1.0))
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig

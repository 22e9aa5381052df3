"""Figures for the recommendation evaluation of notebook 07.

Every figure states what was measured, over how many users or clips, and draws the bootstrap
intervals that :mod:`helpers.recommend.evaluation` computed; legends sit outside the data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.recommend.evaluation import BASELINES, recommendation_counts

#: Axis label of each per-user metric.
METRIC_LABELS = {
    "precision": "precision@k (share of the list, own artists earn nothing)",
    "recall": "recall@k (share of creditable held-out likes)",
    "in_user_genres": "share of the list in the user's genres",
    "in_user_genres_new_artists": "share in the user's genres, by new artists",
    "seed_artist_share": "share of the list by the user's own artists",
    "distinct_artists": "distinct artists per list (count)",
    "distinct_genres": "distinct genres per list (count)",
}


#: How each audio-free baseline is drawn: told apart by colour and marker, never by a legend alone.
BASELINE_STYLES = {"random": ("#7f7f7f", "x"), "popularity": ("#404040", "+"),
                   "genre oracle": ("#b2182b", "*")}


def plot_metric_intervals(summary: pd.DataFrame, metrics, title: str, by: str = "config",
                          columns: int = 3):
    """One panel per metric, *columns* panels a row: mean per configuration with its 95 % interval.

    Baselines (:data:`BASELINE_STYLES`) are drawn in their own colours; the figure stays about
    10 inches wide whatever the number of metrics, so its labels are legible at page width.
    """
    names = summary[by].tolist()
    columns = max(1, min(columns, len(metrics)))
    rows = int(np.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, rows * (0.32 * len(names) + 1.3)),
                             sharey=True, squeeze=False)
    colours = [BASELINE_STYLES[n][0] if n in BASELINE_STYLES else "steelblue" for n in names]
    for ax, metric in zip(axes.ravel(), metrics, strict=False):  # more panels than metrics
        means = summary[metric].to_numpy()
        errors = np.vstack([means - summary[f"{metric}_low"], summary[f"{metric}_high"] - means])
        ax.barh(names, means, xerr=errors, color=colours, capsize=3)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.tick_params(labelsize=9)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    axes[0][0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_k_occurrence(counts: dict, k: int, title: str):
    """Histograms of k-occurrence (how often each clip is in other clips' k-NN lists)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    top = max(int(np.max(v)) for v in counts.values())
    bins = np.arange(0, top + 2) - 0.5
    for name, values in counts.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.6, label=name)
    ax.axvline(k, color="grey", linestyle=":", label=f"k = {k} (every clip's share if uniform)")
    ax.set_xlabel(f"k-occurrence: times a clip is among other clips' {k} nearest (count)")
    ax.set_ylabel("clips (count)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def plot_lorenz(per_user: pd.DataFrame, catalogue_size: int, title: str):
    """Lorenz curves of how often each catalogue clip is recommended, per configuration."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, group in per_user.groupby("config", sort=False):
        full = np.sort(recommendation_counts(group["recommended"], catalogue_size))
        style = ":" if name in BASELINES else "-"
        ax.plot(np.linspace(0, 1, len(full)), np.cumsum(full) / full.sum(), style, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="equal counts")
    ax.set_xlabel("share of the catalogue's clips, least recommended first")
    ax.set_ylabel("share of all recommendations")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def plot_tradeoff(summary: pd.DataFrame, x: str, y: str, title: str, by: str = "config"):
    """*y* against *x* per configuration with both 95 % intervals; a legend names the points."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    markers = "osD^vP*X<>"
    for i, (_, row) in enumerate(summary.iterrows()):
        xerr = [[row[x] - row[f"{x}_low"]], [row[f"{x}_high"] - row[x]]]
        yerr = [[row[y] - row[f"{y}_low"]], [row[f"{y}_high"] - row[y]]]
        colour, marker = BASELINE_STYLES.get(row[by], (None, markers[i % len(markers)]))
        ax.errorbar(row[x], row[y], xerr=xerr, yerr=yerr, marker=marker, markersize=8,
                    capsize=3, linestyle="none", label=row[by], color=colour)
    ax.set_xlabel(METRIC_LABELS.get(x, x))
    ax.set_ylabel(METRIC_LABELS.get(y, y))
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def plot_local_density(library, title: str):
    """Box plot of each clip's local density (mean cosine to its 10 nearest clips) by genre."""
    frame = pd.DataFrame({"local density": library.local_density, "genre": library.meta["genre"]})
    fig, ax = plt.subplots(figsize=(9, 3.4))
    genres = sorted(g for g in frame["genre"].unique() if g)
    ax.boxplot([frame.loc[frame["genre"] == g, "local density"] for g in genres], flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(genres) + 1), genres)
    ax.set_xlabel("genre")
    ax.set_ylabel("mean cosine to 10 nearest clips (no unit)")
    ax.set_title(title)
    fig.tight_layout()
    return fig

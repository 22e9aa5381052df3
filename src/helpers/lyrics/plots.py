"""Figures for lyrics analysis: word clouds, top-term bars, sentiment distributions and arcs.

Word clouds are rendered with wordcloud's bundled font and written with
:meth:`wordcloud.WordCloud.to_file` — independent of matplotlib's figure state — and grids are
saved with ``fig.savefig`` *before* anything is shown (saving after ``plt.show()`` writes a
blank image, the original study's bug). :func:`ink_fraction` checks an image is not blank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image
from wordcloud import WordCloud

from helpers.constants import PAGE_WIDTH_INCHES
from helpers.errors import InputError

#: Part of the colour map words are drawn from: viridis from dark purple to blue-teal, each
#: colour with a contrast of at least 4.5:1 on white (its green and yellow end is too pale).
READABLE_RANGE = (0.0, 0.42)


def _colour_func(colormap: str, low: float, high: float):
    cmap = plt.get_cmap(colormap)

    def colour(word, font_size, position, orientation, random_state=None, **kwargs):
        fraction = low + (high - low) * (random_state.random() if random_state else 0.5)
        r, g, b, _ = cmap(fraction)
        return f"rgb({int(255 * r)}, {int(255 * g)}, {int(255 * b)})"

    return colour


def make_wordcloud(frequencies: Mapping[str, float], *, width: int = 800, height: int = 400,
                   max_words: int = 100, seed: int = 0, colormap: str = "viridis",
                   background: str = "white", colour_range=READABLE_RANGE):
    """Render a word cloud from ``{term: weight}`` with wordcloud's bundled font.

    Words take colours from *colormap* within *colour_range* (default: viridis without its
    light end, so every word stays readable on white).

    Raises
    ------
    InputError
        When *frequencies* holds no positive weight.
    """

    weights = {str(k): float(v) for k, v in dict(frequencies).items() if v and v > 0}
    if not weights:
        raise InputError("frequencies", "no words to draw a word cloud from")
    cloud = WordCloud(width=width, height=height, max_words=max_words, random_state=seed,
                      color_func=_colour_func(colormap, *colour_range),
                      background_color=background, prefer_horizontal=0.9)
    return cloud.generate_from_frequencies(weights)


def save_wordcloud(cloud, path: str | Path) -> Path:
    """Write a word cloud image to *path* (PNG); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud.to_file(str(path))
    return path


def ink_fraction(path: str | Path, background=(255, 255, 255)) -> float:
    """Return the share of pixels of an image that differ from *background* (0 = blank)."""

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return float(np.any(np.abs(pixels - np.asarray(background)) > 8, axis=-1).mean())


def _titled(group, sizes, unit: str = "songs") -> str:
    return f"{group} (n = {sizes[group]} {unit})" if sizes and group in sizes else str(group)


def wordcloud_grid(frequencies_by_group: Mapping[str, Mapping[str, float]], *, ncols: int = 3,
                   path: str | Path | None = None, seed: int = 0, width: int = 600,
                   height: int = 320, sizes: Mapping[str, int] | None = None):
    """Draw one word cloud per group in a grid; save it to *path* first when given.

    *sizes* (songs per group), when given, goes into each panel's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    groups = [g for g, f in frequencies_by_group.items() if any(v > 0 for v in f.values())]
    if not groups:
        raise InputError("frequencies_by_group", "no group has words to draw")
    # two clouds a row at most: a third would make the page shrink the small words out of sight
    ncols = min(ncols, len(groups), 2)
    nrows = math.ceil(len(groups) / ncols)
    panel = min(5.0, PAGE_WIDTH_INCHES / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols, panel * height / width * nrows + 0.4 * nrows),
                             squeeze=False)
    for ax, group in zip(axes.flat, groups, strict=False):
        cloud = make_wordcloud(frequencies_by_group[group], seed=seed, width=width, height=height)
        ax.imshow(cloud.to_array(), interpolation="bilinear")
        ax.set_title(_titled(group, sizes))
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


#: x-axis labels of the term tables' value columns.
VALUE_LABELS = {"tf": "share of the group's words", "score": "TF-IDF weight",
                "count": "occurrences"}


def plot_top_terms(table: pd.DataFrame, *, value: str = "tf", n: int = 10, ncols: int = 3,
                   title: str | None = None, sizes: Mapping[str, int] | None = None):
    """Bar charts of the top *n* terms per group of a term table (``group``, ``term``, *value*).

    *sizes* (songs per group), when given, goes into each panel's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    groups = sorted(table["group"].unique())
    if not groups:
        raise InputError("table", "no terms to plot")
    ncols = min(ncols, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(4.2 * ncols, PAGE_WIDTH_INCHES),
                                                    0.28 * n * nrows + 1.2 * nrows), squeeze=False)
    for ax, group in zip(axes.flat, groups, strict=False):
        part = table[table["group"] == group].nlargest(n, value).iloc[::-1]
        ax.barh(part["term"], part[value], color="steelblue")
        ax.set_title(_titled(group, sizes))
        ax.set_xlabel(VALUE_LABELS.get(value, value))
        ax.tick_params(axis="y", labelsize=8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))  # few ticks: small shares do not collide
        if value == "tf":
            ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


#: Panel titles and axis labels of the per-song sentiment measures.
SENTIMENT_LABELS = {
    "mean": ("mean line sentiment", "VADER compound (−1 to 1)"),
    "share_positive": ("positive lines", "share of the song's lines"),
    "share_negative": ("negative lines", "share of the song's lines"),
    "whole_text": ("whole text at once", "VADER compound (−1 to 1)"),
}


def plot_sentiment_distributions(scores: pd.DataFrame, groups, *, columns=("mean", "share_positive",
                                 "share_negative", "whole_text")):
    """Box plots per group of per-song sentiment aggregates (output of ``score_songs``)."""

    frame = scores[list(columns)].copy()
    frame["group"] = pd.Series(groups, index=scores.index).fillna("(none)").astype(str)
    long = frame.melt(id_vars="group", var_name="measure", value_name="value")
    ncols = min(len(columns), 2)
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(4.6 * ncols, PAGE_WIDTH_INCHES), 3.2 * nrows),
                             sharey=False, squeeze=False)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    for ax, measure in zip(axes.flat, columns, strict=False):
        part = long[long["measure"] == measure]
        sns.boxplot(data=part, x="group", y="value", ax=ax, color="lightsteelblue", fliersize=2)
        sns.stripplot(data=part, x="group", y="value", ax=ax, color="k", size=2, alpha=0.4)
        name, unit = SENTIMENT_LABELS.get(measure, (measure, "value"))
        ax.set(title=name, xlabel="", ylabel=unit)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"Sentiment per song and group (n = {len(frame)} songs)")
    fig.tight_layout()
    return fig


def plot_arcs(arcs: pd.DataFrame, groups, *, ax=None):
    """Mean sentiment arc per group with a 95% band (1.96 standard errors over songs)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    labels = pd.Series(groups, index=arcs.index).fillna("(none)").astype(str)
    x = np.asarray(arcs.columns, dtype=float)
    for group, part in arcs.groupby(labels.values):
        mean = part.mean(axis=0).to_numpy()
        se = part.std(axis=0, ddof=1).to_numpy() / np.sqrt(max(len(part), 1))
        ax.plot(x, mean, marker="o", label=f"{group} (n={len(part)})")
        if len(part) > 1:
            ax.fill_between(x, mean - 1.96 * se, mean + 1.96 * se, alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("position in the song (0 = first line, 1 = last)")
    ax.set_ylabel("mean line sentiment (VADER compound)")
    ax.set_title(f"Sentiment arc per group (n = {len(arcs)} songs; band: 95 %)")
    ax.legend(fontsize=8, title="group", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax.figure


def plot_song_lines(scored: pd.DataFrame, *, title: str = "", ax=None):
    """Line-by-line sentiment of one song (output of ``line_sentiment``) as bars."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    colours = np.where(scored["compound"] >= 0.05, "seagreen",
                       np.where(scored["compound"] <= -0.05, "firebrick", "lightgrey"))
    ax.bar(scored["line_no"], scored["compound"], color=colours)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("line number")
    ax.set_ylabel("VADER compound")
    ax.set_title(title)
    return ax.figure

"""Figures of audio features: per-genre distributions, what one window's features capture, and
how features move over a song's segments (notebooks 01 and 02).

Every figure labels its axes with units, names genres where genres are compared, puts colour
bars on images and legends outside the data, and states n in its title.
"""

from __future__ import annotations

import math

import librosa
import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers import features
from helpers.constants import PAGE_WIDTH_INCHES
from helpers.features.exploration import mel_spectrogram_db

#: Readable name and unit of the feature columns the notebooks plot.
FEATURE_UNITS = {
    "spectral_centroid_mean": ("spectral centroid, mean", "Hz"),
    "rms_mean": ("RMS level, mean", "full scale = 1"),
    "zero_crossing_rate_mean": ("zero-crossing rate, mean", "crossings per sample"),
    "tempo": ("tempo", "BPM"),
    "mfcc1_mean": ("MFCC 1, mean", "dB-scaled coefficient"),
    "chroma_stft_mean": ("chroma energy, mean", "0–1"),
    "harmony_var": ("harmonic part, variance", "amplitude²"),
    "perceptr_var": ("percussive part, variance", "amplitude²"),
}


def feature_label(column: str) -> str:
    """Return the axis label ``"name (unit)"`` of a feature column; the column when unknown."""
    if column not in FEATURE_UNITS:
        return column
    name, unit = FEATURE_UNITS[column]
    return f"{name} ({unit})"


def plot_feature_boxes(table: pd.DataFrame, columns, *, label: str = "label", ncols: int = 3):
    """Box plots of *columns* per genre, one panel per feature, genre names on every x axis.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of clips with the feature *columns* and a genre column *label*.
    columns : sequence of str
        Feature columns, one panel each; axis labels come from :data:`FEATURE_LABELS`.
    label : str
        The genre column.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """

    columns = list(columns)
    genres = sorted(table[label].unique())
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(5.2 * ncols, PAGE_WIDTH_INCHES), 3.6 * nrows),
                             squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        sns.boxplot(data=table, x=label, y=column, order=genres, ax=ax, color="lightsteelblue",
                    fliersize=1.5, linewidth=0.8)
        name, unit = FEATURE_UNITS.get(column, (column, ""))
        ax.set(title=name, xlabel="", ylabel=unit)
        ax.tick_params(axis="x", rotation=45, labelsize=9)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    counts = table[label].value_counts()
    per_genre = (f"{counts.iloc[0]} per genre" if counts.nunique() == 1
                 else f"{counts.min()}–{counts.max()} per genre")
    fig.suptitle(f"Feature distributions per genre (n = {len(table)} clips, {per_genre})")
    fig.tight_layout()
    return fig


def _image(ax, fig, data, *, sr: int, y_axis: str | None, cmap: str, unit: str, title: str,
           cax, **kwargs):

    image = librosa.display.specshow(data, sr=sr, x_axis="time", y_axis=y_axis, ax=ax, cmap=cmap,
                                     **kwargs)
    fig.colorbar(image, cax=cax, label=unit, extend=_extend(image))
    ax.set_title(title)
    ax.grid(False)  # the style's grid would draw over the image
    return image


def _extend(image) -> str:
    """Colour-bar arrows where the image's values run past the colour scale."""
    low, high = image.get_clim()
    values = np.asarray(image.get_array())
    below, above = bool((values < low).any()), bool((values > high).any())
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (below, above), "both")


def plot_feature_panels(y: np.ndarray, sr: int, *, title: str = ""):
    """What one window's features are computed from, in four panels sharing the time axis.

    Harmonic/percussive waveforms (``harmony_*``, ``perceptr_*``), the log-frequency
    spectrogram with spectral centroid and 85 % roll-off, the chromagram (``chroma_stft``) and
    MFCC 2–20 (MFCC 1, the overall level, is left out so the others show). All from one STFT
    with the table's settings (:func:`helpers.features.hpss_from_stft`,
    :func:`helpers.features.spectral_shape`). Every image has a colour bar.

    Returns
    -------
    matplotlib.figure.Figure
    """


    stft = librosa.stft(y)
    magnitude = np.abs(stft)
    harmonic, percussive = features.hpss_from_stft(stft, len(y), y=y, magnitude=magnitude)
    centroid, _, rolloff = features.spectral_shape(magnitude, sr)
    power = magnitude ** 2
    chroma = librosa.feature.chroma_stft(S=power, sr=sr)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=power)))

    fig = plt.figure(figsize=(12, 11.5))
    grid = fig.add_gridspec(4, 2, width_ratios=[1, 0.015], wspace=0.03, hspace=0.45)
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[row, 0], sharex=axes[0]) for row in range(1, 4)]
    bars = [fig.add_subplot(grid[row, 1]) for row in range(4)]
    bars[0].axis("off")  # the waveform panel has no image

    librosa.display.waveshow(harmonic, sr=sr, ax=axes[0], alpha=0.7, label="harmonic")
    librosa.display.waveshow(percussive, sr=sr, ax=axes[0], alpha=0.7, color="C1",
                             label="percussive")
    axes[0].set_ylabel("amplitude (full scale = 1)")
    axes[0].set_title("harmonic / percussive waveforms", loc="left")
    axes[0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    axes[0].set_xlim(0, len(y) / sr)
    if title:
        fig.suptitle(title, y=0.93)

    _image(axes[1], fig, librosa.amplitude_to_db(magnitude, ref=np.max), sr=sr, y_axis="log",
           cmap="magma", unit="dB (0 = loudest bin)", title="", cax=bars[1])
    times = librosa.times_like(centroid, sr=sr)
    axes[1].plot(times, centroid, color="#00e5ff", lw=1.2, label="spectral centroid")
    axes[1].plot(times, rolloff, color="#7cfc00", lw=1.2, label="85 % roll-off")
    axes[1].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=True,
                   facecolor="0.25", edgecolor="0.25", labelcolor="white", fontsize=9)
    axes[1].set_title("log-frequency spectrogram", loc="left")
    axes[1].set_ylabel("frequency (Hz)")

    _image(axes[2], fig, chroma, sr=sr, y_axis="chroma", cmap="viridis",
           unit="relative energy (0–1)", title="chromagram: energy per pitch class",
           cax=bars[2], vmin=0, vmax=1)
    axes[2].set_ylabel("pitch class")
    axes[2].tick_params(axis="y", labelsize=8)

    # MFCC 2 is far larger than the rest: a scale set by MFCC 3-20 keeps them visible, and the
    # colour bar's arrows say where values (MFCC 2's) run past it
    limit = float(np.percentile(np.abs(mfcc[2:]), 99))
    _image(axes[3], fig, mfcc[1:], sr=sr, y_axis=None, cmap="coolwarm", unit="coefficient",
           title="MFCC 2–20 (MFCC 1, the overall level, left out; colour scale fitted to "
                 "MFCC 3–20)",
           cax=bars[3], vmin=-limit, vmax=limit)
    axes[3].set_yticks(np.arange(0, 19, 3) + 0.5, labels=[str(i + 2) for i in range(0, 19, 3)])
    axes[3].set_ylabel("MFCC number")
    for ax in axes[:3]:
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
    axes[3].set_xlabel("time (s)")
    return fig


def plot_clip(y: np.ndarray, sr: int, *, title: str = ""):
    """Waveform and mel spectrogram (dB, with colour bar) of one clip, sharing the time axis.

    Returns
    -------
    matplotlib.figure.Figure
    """


    fig = plt.figure(figsize=(11, 4.6))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 0.015], wspace=0.03, hspace=0.15)
    top = fig.add_subplot(grid[0, 0])
    bottom = fig.add_subplot(grid[1, 0], sharex=top)
    fig.add_subplot(grid[0, 1]).axis("off")
    librosa.display.waveshow(y, sr=sr, ax=top, color="steelblue")
    top.set(ylabel="amplitude", xlabel="", xlim=(0, len(y) / sr))
    top.tick_params(labelbottom=False)
    top.set_title(title, loc="left")
    _image(bottom, fig, mel_spectrogram_db(y, sr), sr=sr, y_axis="mel", cmap="magma",
           unit="dB (0 = loudest)", title="", cax=fig.add_subplot(grid[1, 1]))
    bottom.set(xlabel="time (s)", ylabel="frequency (Hz, mel scale)")
    return fig


def plot_segment_curves(segments: pd.DataFrame, *, columns=("spectral_centroid_mean", "rms_mean"),
                        segment_seconds: float | None = None):
    """Features per segment over time, one line per song, legend outside the data.

    Parameters
    ----------
    segments : pandas.DataFrame
        A segment table (``clip``, ``start`` and the feature *columns*), as
        :func:`helpers.features.batch.extract_table` returns with ``segment_seconds``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    columns = list(columns)
    fig, axes = plt.subplots(1, len(columns), figsize=(min(5.2 * len(columns), PAGE_WIDTH_INCHES), 3.6),
                             squeeze=False)
    for clip, rows in segments.groupby("clip"):
        for ax, column in zip(axes[0], columns, strict=True):
            ax.plot(rows["start"], rows[column], marker="o", ms=3, label=str(clip))
    length = f"{segment_seconds:g}-s " if segment_seconds else ""
    for ax, column in zip(axes[0], columns, strict=True):
        ax.set_xlabel("segment start (s)")
        ax.set_ylabel(feature_label(column))
    fig.suptitle(f"Per {length}segment (n = {len(segments)} segments from "
                 f"{segments['clip'].nunique()} songs)")
    fig.tight_layout()
    handles, labels = axes[0, 0].get_legend_handles_labels()  # below the panels: the page is not wider
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(labels)),
               title="song", frameon=False)
    return fig


#: Vocabulary labels of the musicnn networks, for titles.
_VOCABULARY_TITLES = {"MTT_musicnn": "MagnaTagATune tags (MTT_musicnn)",
                      "MSD_musicnn": "Million Song Dataset tags (MSD_musicnn)"}
_VOCABULARY_SHORT = {"MTT_musicnn": "MTT tags", "MSD_musicnn": "MSD tags"}


def plot_taggram(result, model: str = "MSD_musicnn", *, top: int = 12, ax=None, title: str = "",
                 colorbar: bool = True):
    """Draw a song's taggram: its *top* tags (by song-level score) against time.

    Parameters
    ----------
    result : helpers.features.musicnn.SongTags
        What :func:`helpers.features.musicnn.song_tags` returned.
    model : str
        Whose tags: ``"MSD_musicnn"`` or ``"MTT_musicnn"``.
    top : int
        Tags shown, best song-level score at the top.
    ax : matplotlib Axes, optional
    title : str
        Default: the file name, the vocabulary and the number of patches.
    colorbar : bool
        Draw the colour bar beside *ax* (:func:`plot_taggrams` draws one for all panels).

    Returns
    -------
    matplotlib.image.AxesImage
        The image (its colour bar is drawn beside *ax*: tag probability, 0-1).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.25 * top + 1.2))
    scores = result.mean_tags(model)
    order = np.argsort(-scores, kind="stable")[:top]
    taggram = result.taggram[model][:, order].T  # tags x patches
    start, end = float(result.patch_times[0, 0]), float(result.patch_times[-1, 1])
    image = ax.imshow(taggram, aspect="auto", origin="upper", cmap="magma", vmin=0.0, vmax=1.0,
                      interpolation="nearest", extent=(start, end, top - 0.5, -0.5))
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([f"{result.tags[model][i]} ({scores[i]:.2f})" for i in order], fontsize=9)
    ax.set_xlabel("time in the song (s)")
    ax.set_ylabel("tag (song mean)")
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="tag probability (0–1)", pad=0.01)
    n = len(result.patch_times)
    ax.set_title(title or f"{result.path.name}: {_VOCABULARY_TITLES.get(model, model)}, "
                          f"{n} patches of 3 s", fontsize=10)
    return image


def plot_taggrams(results, models=("MSD_musicnn", "MTT_musicnn"), *, top: int = 12,
                  title: str = ""):
    """One taggram per song (rows) and vocabulary (columns); see :func:`plot_taggram`.

    Parameters
    ----------
    results : iterable of helpers.features.musicnn.SongTags
    models : sequence of str
        Vocabularies, one column each.
    top : int
        Tags per taggram.
    title : str
        Figure title (default: how many songs).

    Returns
    -------
    matplotlib.figure.Figure
    """
    results = list(results)
    fig, axes = plt.subplots(len(results), len(models), squeeze=False,
                             figsize=(PAGE_WIDTH_INCHES, (0.24 * top + 1.6) * len(results)),
                             layout="constrained")
    image = None
    for row, result in zip(axes, results, strict=True):
        for ax, model in zip(row, models, strict=True):
            image = plot_taggram(result, model, top=top, ax=ax, colorbar=False,
                                 title=f"{result.path.stem}: {_VOCABULARY_SHORT.get(model, model)}")
    if image is not None:
        fig.colorbar(image, ax=axes, label="tag probability (0–1)", shrink=0.9, pad=0.01)
    fig.suptitle(title or f"Tags over time of {len(results)} song(s): each tag's probability "
                          "per 3-s patch (musicnn; tag labels give the song mean)")
    return fig

"""Descriptive statistics of the GTZAN table and its artist index (notebook 01)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers.features.columns import FEATURE_COLUMNS


def class_balance(table: pd.DataFrame, label: str = "label") -> pd.Series:
    """Return the number of rows per genre, sorted by genre name."""
    return table[label].value_counts().sort_index().rename("clips")


def artist_repetition(index: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Summarise how often artists repeat inside each genre.

    Parameters
    ----------
    index : pandas.DataFrame
        Sturm's index as returned by :func:`helpers.data.load_artist_index`.
    top : int
        How many of the most frequent artists to name per genre.

    Returns
    -------
    pandas.DataFrame
        One row per genre: ``clips``, ``known_artists`` (distinct), ``clips_without_artist``,
        ``top_artist_share`` (share of the genre's clips by its most frequent artist) and
        ``top_artists`` ("name (n), ...").
    """
    rows = []
    for genre, clips in index.groupby("genre"):
        known = clips.loc[clips["artist"] != "", "artist"].value_counts()
        rows.append({
            "genre": genre,
            "clips": len(clips),
            "known_artists": int(known.size),
            "clips_without_artist": int((clips["artist"] == "").sum()),
            "top_artist_share": float(known.iloc[0] / len(clips)) if known.size else 0.0,
            "top_artists": ", ".join(f"{name} ({n})" for name, n in known.head(top).items()),
        })
    return pd.DataFrame(rows).set_index("genre")


def exact_duplicate_groups(table: pd.DataFrame, columns=FEATURE_COLUMNS) -> pd.DataFrame:
    """Return groups of rows whose feature values are identical (replicated clips).

    Returns
    -------
    pandas.DataFrame
        One row per group of two or more identical rows: ``filenames`` and ``labels``.
    """
    features = table[list(columns)].round(10)
    keys = pd.util.hash_pandas_object(features, index=False)
    groups = []
    for _, members in table.groupby(keys.values):
        if len(members) > 1:
            groups.append({"filenames": ", ".join(members["filename"]),
                           "labels": ", ".join(sorted(set(members["label"])))})
    return pd.DataFrame(groups, columns=["filenames", "labels"])


def same_artist_share(index: pd.DataFrame, test_size: float = 0.2, n_seeds: int = 20,
                      stratify: bool = True) -> pd.Series:
    """Share of test clips with a training clip by the same artist, under random splits.

    For each seed a random (stratified by genre) split of the clips of *index* is drawn; a test
    clip counts when its artist is known and also appears in the training part.

    Returns
    -------
    pandas.Series
        One share per seed (index: seed).
    """
    known = index["artist"].fillna("").str.strip() != ""
    shares = {}
    for seed in range(n_seeds):
        train, test = train_test_split(index, test_size=test_size, random_state=seed,
                                       stratify=index["genre"] if stratify else None)
        seen = set(train.loc[known.loc[train.index], "artist"])
        shares[seed] = float(test["artist"].isin(seen).mean())
    return pd.Series(shares, name="test clips with a training clip by the same artist")


def split_composition(split: dict, table: pd.DataFrame, label: str = "label") -> pd.DataFrame:
    """Clips per genre and part of a published split, and the table's clips it leaves out.

    Parameters
    ----------
    split : dict
        Part name -> clip filenames (:func:`helpers.data.load_split`).
    table : pandas.DataFrame
        The table the split draws from (``filename`` and *label*).

    Returns
    -------
    pandas.DataFrame
        One row per genre (and a ``total`` row), one column per part, and ``left out``.
    """
    genre = table.set_index("filename")[label]
    parts = {part: genre.reindex(names).value_counts() for part, names in split.items()}
    used = set().union(*map(set, split.values()))
    parts["left out"] = genre[~genre.index.isin(used)].value_counts()
    frame = pd.DataFrame(parts).fillna(0).astype(int).sort_index()
    frame.loc["total"] = frame.sum()
    return frame


def pca_projection(table: pd.DataFrame, columns, label: str = "label", seed: int = 0) -> pd.DataFrame:
    """Project standardised *columns* onto two principal components.

    Returns
    -------
    pandas.DataFrame
        Columns ``pc1``, ``pc2`` and *label*; ``attrs['explained_variance']`` holds the two ratios.
    """
    projector = make_pipeline(StandardScaler(), PCA(n_components=2, random_state=seed))
    coords = projector.fit_transform(table[list(columns)])
    frame = pd.DataFrame(coords, columns=["pc1", "pc2"], index=table.index)
    frame[label] = table[label].values
    frame.attrs["explained_variance"] = projector[-1].explained_variance_ratio_.tolist()
    return frame


def genre_variance_share(table: pd.DataFrame, columns, label: str = "label") -> pd.Series:
    """Return, per feature, the share of its variance that genre explains (eta squared).

    ``between-genre sum of squares / total sum of squares``: 1 when a feature is constant within
    each genre, 0 when every genre has the same mean. Sorted from most to least explained.
    """
    values = table[list(columns)].astype(float)
    means = values.groupby(table[label].to_numpy()).transform("mean")
    total = ((values - values.mean()) ** 2).sum()
    between = ((means - values.mean()) ** 2).sum()
    return (between / total).sort_values(ascending=False).rename("variance share explained by genre")


def centroid_agreement(projection: pd.DataFrame, label: str = "label",
                       coords=("pc1", "pc2")) -> pd.Series:
    """Share of each genre's points whose nearest genre centroid (in *coords*) is their own.

    A simple reading of a 2-D projection: near 1, the genre forms its own region; low, it
    overlaps others. Sorted from most to least separated.
    """
    points = projection[list(coords)].to_numpy(dtype=float)
    labels = projection[label].to_numpy()
    genres = np.unique(labels)
    centroids = np.stack([points[labels == g].mean(axis=0) for g in genres])
    nearest = genres[np.argmin(((points[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)]
    return (pd.Series(nearest == labels).groupby(labels).mean()
            .sort_values(ascending=False).rename("share nearest to own centroid"))


def example_clips(audio_dir: str | Path, per_genre: int = 1) -> dict[str, list[Path]]:
    """Return up to *per_genre* audio files for each ``<genre>/`` folder under *audio_dir*."""
    audio_dir = Path(audio_dir)
    clips = {}
    for folder in sorted(p for p in audio_dir.iterdir() if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in {".wav", ".au", ".flac", ".ogg", ".mp3"})
        if files:
            clips[folder.name] = files[:per_genre]
    return clips


def mel_spectrogram_db(y: np.ndarray, sr: int) -> np.ndarray:
    """Return a mel spectrogram in dB (librosa defaults, 128 bands) for display."""

    return librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max)

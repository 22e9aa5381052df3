"""Learned descriptions of whole songs: musicnn tags and embeddings, cached by file content.

:func:`cached_song_tags` runs :func:`helpers.features.musicnn.song_tags` once per file content
(and weights) and keeps the result in the cache (``data/cache/musicnn-songs/``), so notebooks,
tests and evaluations that describe the same clips again read them in milliseconds.
:func:`song_vectors` turns a set of songs into the two learned spaces the evaluations compare:

``"tags"``
    100 numbers: the song-mean MTT taggram (50 tags such as ``techno``) then the song-mean MSD
    taggram (50 last.fm tags such as ``rock``), columns named ``mtt:<tag>`` / ``msd:<tag>``.
``"embedding"``
    400 numbers: the song-mean penultimate layers of MTT and MSD musicnn (``mtt:e0`` ...).

:func:`gtzan_clips_with_audio` lists the GTZAN clips whose audio the reference folder holds
(``gtzan/audio`` and ``gtzan/more_audio``) with their genre and artist.

Examples
--------
>>> from helpers.features.learned import cached_song_tags, song_vectors
>>> song = cached_song_tags("data/music/singularity_coherence.ogg")  # doctest: +SKIP
>>> [tag for tag, _ in song.top_tags("MTT_musicnn", 3)]  # doctest: +SKIP
['techno', 'electronic', 'ambient']
>>> song_vectors(["a.ogg", "b.ogg"], "tags").shape  # doctest: +SKIP
(2, 100)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.audio.files import AUDIO_SUFFIXES
from helpers.cache import CacheEntry, code_fingerprint
from helpers.data import artist_groups, load_artist_index
from helpers.errors import InputError
from helpers.features.musicnn import EMBEDDING_COLUMNS, EMBEDDING_MODEL, MODELS, PORT_MODULES
from helpers.features.musicnn.song import SongTags, load_model, song_tags
from helpers.features.musicnn.weights import origin
from helpers.paths import file_sha256

#: The learned spaces :func:`song_vectors` builds.
SPACES = ("tags", "embedding")

#: Short prefixes of the models' columns.
PREFIX = {"MTT_musicnn": "mtt", "MSD_musicnn": "msd"}

CACHE_KIND = "musicnn-songs"


def _weights_fingerprint() -> dict:
    outputs = origin().get("outputs", {})
    return {name: outputs.get(f"{name}.npz", {}).get("sha256", "") for name in MODELS}


def cached_song_tags(path: str | os.PathLike, *, cache: bool = True,
                     folder: str | os.PathLike | None = None) -> SongTags:
    """:func:`~helpers.features.musicnn.song_tags` of a file (both models, every patch), cached.

    The cache entry is named by the file's sha256, the weights' sha256 and the port's source
    (:data:`helpers.features.musicnn.PORT_MODULES`), so a changed file, changed weights or changed code are computed
    again; the file's name does not matter.

    Parameters
    ----------
    path : path-like
        An audio file.
    cache : bool
        Read and write the cache (False: always compute).
    folder : path-like, optional
        Cache folder (default ``data/cache/musicnn-songs``).

    Raises
    ------
    helpers.errors.AudioError
        As :func:`~helpers.features.musicnn.song_tags`: missing, corrupt or too short audio.
    """
    path = Path(path)
    if not cache:
        return song_tags(path)
    if not path.is_file():
        return song_tags(path)  # the one place that words the error
    payload = {"file": file_sha256(path), "weights": _weights_fingerprint(), "models": list(MODELS),
               "code": code_fingerprint(*PORT_MODULES)}
    entry = CacheEntry.for_payload(CACHE_KIND, payload, folder=folder)
    stored = entry.read()
    if stored is not None:
        try:
            return SongTags(
                path=path, seconds=float(stored["seconds"]),
                patch_times=np.asarray(stored["patch_times"], dtype=float).reshape(-1, 2),
                tags={m: load_model(m).tags for m in MODELS},
                taggram={m: np.asarray(stored["taggram"][m], dtype=np.float32) for m in MODELS},
                penultimate={m: np.asarray(stored["penultimate"][m], dtype=np.float32) for m in MODELS})
        except (KeyError, TypeError, ValueError):
            pass  # an old or damaged entry: compute again and overwrite it
    result = song_tags(path)
    entry.write({"seconds": result.seconds, "patch_times": result.patch_times.round(4),
                 "taggram": {m: result.taggram[m].round(6) for m in MODELS},
                 "penultimate": {m: result.penultimate[m].round(5) for m in MODELS}})
    return result


def tag_columns() -> list[str]:
    """Names of the ``"tags"`` space: ``mtt:<tag>`` for the 50 MTT tags, then ``msd:<tag>``."""
    return [f"{PREFIX[m]}:{tag}" for m in MODELS for tag in load_model(m).tags]


def song_vector(song: SongTags, space: str = "tags") -> np.ndarray:
    """One song in a learned space (:data:`SPACES`): song-mean tags (100) or embeddings (400)."""
    if space == "tags":
        return np.concatenate([song.mean_tags(m) for m in MODELS]).astype(float)
    if space == "embedding":
        return np.concatenate([song.embedding(m) for m in MODELS]).astype(float)
    raise InputError(space, f"unknown learned space; choose {', '.join(SPACES)}")


def song_vectors(paths: Iterable, space: str = "tags", ids: Iterable | None = None) -> pd.DataFrame:
    """A table of songs in a learned space, one row per file (index: *ids* or the file names)."""
    paths = [Path(p) for p in paths]
    rows = [song_vector(cached_song_tags(p), space) for p in paths]
    width = len(rows[0]) // len(MODELS) if rows else 200
    columns = tag_columns() if space == "tags" else [
        f"{PREFIX[m]}:e{i}" for m in MODELS for i in range(width)]
    index = [str(i) for i in ids] if ids is not None else [p.name for p in paths]
    return pd.DataFrame(np.vstack(rows) if rows else np.empty((0, len(columns))), index=index, columns=columns)


def gtzan_clips_with_audio(folder: str | os.PathLike) -> pd.DataFrame:
    """The GTZAN clips whose audio a reference folder holds, with genre and artist.

    Parameters
    ----------
    folder : path-like
        The shared data folder (``gtzan/audio/<genre>/*.wav`` and ``gtzan/more_audio/<genre>/*.flac``)
        or any folder of ``<genre>/<genre>.NNNNN.<ext>`` files.

    Returns
    -------
    pandas.DataFrame
        ``id`` (the table's file name, ``blues.00003.wav``), ``path``, ``genre``, ``artist``
        (Sturm's index; empty when unknown), ``title`` and ``artist_group`` (the artist, or the
        clip itself when unknown), sorted by id.
    """
    folder = Path(folder)
    roots = [folder / "gtzan" / "audio", folder / "gtzan" / "more_audio"]
    roots = [r for r in roots if r.is_dir()] or [folder]
    found = {}
    for root in roots:
        for path in sorted(root.glob("*/*.*")):
            if path.suffix.lower() in AUDIO_SUFFIXES and path.stem.count(".") == 1:
                found.setdefault(f"{path.stem}.wav", path)
    index = load_artist_index().set_index("filename")
    ids = sorted(found)
    frame = pd.DataFrame({"id": ids, "path": [str(found[i]) for i in ids],
                          "genre": [i.split(".")[0] for i in ids]})
    frame["artist"] = frame["id"].map(index["artist"]).fillna("")
    frame["title"] = frame["id"].map(index["title"]).fillna("")
    frame["artist_group"] = artist_groups(frame["id"]).to_numpy()
    return frame


def learned_row(song: SongTags) -> dict[str, float]:
    """Every learned description of one song, by column name.

    The ``"tags"`` columns (:func:`tag_columns`), the ``"embedding"`` columns (``mtt:e0`` ...)
    and the ``musicnn`` feature set's columns (``musicnn_msd_0`` ...: the MSD embedding, what
    ``music-study extract --features musicnn`` writes for a window), so a liked file can be
    compared with any learned library.
    """
    row = dict(zip(tag_columns(), song_vector(song, "tags").tolist(), strict=True))
    embedding = song_vector(song, "embedding")
    width = len(embedding) // len(MODELS)
    row.update({f"{PREFIX[m]}:e{i}": float(embedding[j * width + i])
                for j, m in enumerate(MODELS) for i in range(width)})
    row.update(zip(EMBEDDING_COLUMNS, song.embedding(EMBEDDING_MODEL).astype(float).tolist(), strict=True))
    return row


def tags_where_found(paths: Iterable, ids: Iterable) -> pd.DataFrame:
    """Song-level tags (the ``"tags"`` space) of the files that are there, NaN rows for the rest.

    For libraries whose features came without tags (an extract CSV, the label store): a row
    whose file is missing or cannot be tagged gets no tags, so its reasons name none, and the
    library is built all the same. Tags come from the cache (:func:`cached_song_tags`) and are
    computed once for a file the cache lacks.

    Parameters
    ----------
    paths : iterable of path-like or None
        Each song's audio file (``None``: not known).
    ids : iterable
        The songs' ids (the index of the result).
    """
    columns = tag_columns()
    rows = []
    for path in paths:
        vector = np.full(len(columns), np.nan)
        if path is not None and Path(path).is_file():
            try:
                vector = song_vector(cached_song_tags(path), "tags")
            except InputError:
                pass  # an unreadable file: its song is described without tags
        rows.append(vector)
    index = [str(i) for i in ids]
    return pd.DataFrame(np.vstack(rows) if rows else np.empty((0, len(columns))), index=index,
                        columns=columns)


def tag_songs(paths: Iterable) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split audio files into those musicnn describes and those it refuses, with the reason.

    Each file is tagged (cached) once: a missing, corrupt, silent or too short file gets the
    one-line reason the audio checks give it (:func:`cached_song_tags`).

    Returns
    -------
    good : list of Path
    bad : list of (Path, str)
    """
    good, bad = [], []
    for path in map(Path, paths):
        try:
            cached_song_tags(path)
        except InputError as exc:
            bad.append((path, exc.reason))
            continue
        good.append(path)
    return good, bad

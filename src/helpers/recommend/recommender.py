"""Recommend songs from a liked list: per-song retrieval, fair merging, MMR, exclusions.

The usual recipe — standardise features, cosine similarity to the average liked song, top-k —
fails in three known ways: the average of a taste that spans genres lands between clusters;
"hub" songs appear in everyone's list; the top results repeat one artist. This module answers
each:

1. :class:`Library` conditions the features (log of heavy-tailed, non-negative columns such as
   the variances) and standardises them *on the library*, then unit-normalises rows so a dot
   product is a cosine similarity. Exact duplicate rows (GTZAN holds replicated clips) collapse
   to one representative. The similarity *space* is a choice (:data:`SPACES`): the conditioned
   audio features alone (``'features'``), or those joined with a genre-informed block — a
   linear discriminant projection fitted on the library's genre labels (:class:`GenreProjection`)
   — with weight ``genre_weight`` (``'features+genre'``), or the projection alone (``'genre'``).
2. :class:`Recommender` retrieves neighbours for *each* liked song and merges the lists by
   reciprocal-rank fusion, so every liked song gets the same say whatever its neighbourhood's
   density (``strategy='centroid'`` keeps the classic recipe as a baseline).
3. Maximal marginal relevance (MMR) re-ranks the merged pool with a trade-off ``mmr_lambda``
   (1 = relevance only), and a per-artist cap bounds how often one artist appears.
4. Liked songs, their exact duplicates and other clips of the same song, and the neighbourhoods
   of disliked songs are never recommended.
5. Optional lyrics features (any numeric table indexed by song id: sentiment, TF-IDF
   components) blend in with weight ``lyrics_weight``.

Every :class:`Recommendation` says which liked song(s) it is near — with the similarity measured
in the space the recommendation was chosen in, which the reason names — and what they share
(genre, genre profile, tempo, timbre, brightness, lyrics and, when the library carries musicnn
tags, the tags both songs have: "both: electronic, techno, synth").

Examples
--------
>>> library = Library.gtzan()
>>> recs = Recommender(library).recommend(["blues.00000.wav", "jazz.00010.wav"], k=5)
>>> sorted(recs[0].to_dict())
['artist', 'genre', 'id', 'near', 'reason', 'score', 'shared', 'space', 'title']
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.feature_extraction.text import TfidfVectorizer

from helpers.audio.checks import check_audio_info
from helpers.audio.ingest import fetch_audio, playlist_entries
from helpers.audio.windows import check_window_seconds
from helpers.data import load_artist_index, load_gtzan_table, read_user_csv
from helpers.errors import InputError
from helpers.features.columns import FEATURE_COLUMNS, MODEL_FEATURES
from helpers.features.windows import window_features
from helpers.lyrics.analysis import score_songs, tokenize
from helpers.recommend.liked import (
    LikedSong,
    match_to_library,
    normalize_artist,
    normalize_title,
    split_artist_title,
)

#: Feature blocks a reason can name, by column-name prefix.
TIMBRE_PREFIX = "mfcc"
BRIGHTNESS_PREFIXES = ("spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate")

#: Tempos closer than this fraction count as "similar tempo" in a reason.
TEMPO_TOLERANCE = 0.06

#: Percentile of random-pair block similarity above which two songs "share" a block.
SHARED_PERCENTILE = 90.0

#: A tag is one of a song's own tags when it is among its this many highest-scoring tags.
TOP_TAGS = 10

#: Shared tags a reason names at most.
REASON_TAGS = 3

#: Similarity spaces a :class:`Library` can embed its songs in, with the words a reason uses.
SPACES = {
    "features": "audio-feature space",
    "features+genre": "audio + genre-projection space",
    "genre": "genre-projection space",
    "tags": "musicnn tag space",
    "embedding": "musicnn embedding space",
}

#: Spaces whose columns are the library's own learned features (set by the library's table),
#: not the 58 audio features; they take no genre projection.
LEARNED_SPACES = ("tags", "embedding")

#: The space :class:`Library` uses unless told otherwise. Notebook 07 compares the spaces on
#: simulated users (artist-grouped folds, projection fitted without the evaluated users' songs);
#: the default changes only when a space's gain lies outside the intervals.
DEFAULT_SPACE = "features"

#: Weight of the genre block's cosine in ``'features+genre'`` (the audio block gets 1 - weight).
DEFAULT_GENRE_WEIGHT = 0.5


class SkewedColumnScaler(TransformerMixin, BaseEstimator):
    """Log-transform heavy-tailed non-negative columns, then standardise.

    Variances of frame-level features are right-skewed over orders of magnitude; without the log
    a few loud or noisy songs dominate every distance. A column is logged when it has no negative
    value and its skewness exceeds *skew_threshold*; ``log(x + offset)`` uses an offset of 1 % of
    the column's median so zeros stay finite.

    Parameters
    ----------
    skew_threshold : float
        Skewness above which a non-negative column is logged.
    """

    def __init__(self, skew_threshold: float = 1.0):
        self.skew_threshold = skew_threshold

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        if values.ndim != 2 or values.shape[0] < 2:
            raise InputError("feature table", "needs at least two rows to fit the conditioning")
        centred = values - values.mean(axis=0)
        std = values.std(axis=0)
        skew = np.divide((centred ** 3).mean(axis=0), std ** 3, out=np.zeros_like(std), where=std > 0)
        self.log_mask_ = (values.min(axis=0) >= 0) & (skew > self.skew_threshold)
        self.offset_ = np.where(self.log_mask_, 0.01 * np.median(values, axis=0) + 1e-12, 0.0)
        logged = self._log(values)
        self.mean_ = logged.mean(axis=0)
        scale = logged.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def _log(self, values: np.ndarray) -> np.ndarray:
        out = values.copy()
        cols = self.log_mask_
        out[:, cols] = np.log(np.clip(values[:, cols], 0, None) + self.offset_[cols])
        return out

    def transform(self, X) -> np.ndarray:
        return (self._log(np.asarray(X, dtype=float)) - self.mean_) / self.scale_


class GenreProjection(TransformerMixin, BaseEstimator):
    """Linear discriminant projection of conditioned features onto the directions that separate genres.

    A shrinkage LDA (``solver='eigen'``, Ledoit-Wolf shrinkage) fitted on labelled rows; its
    ``n_genres - 1`` discriminant axes keep what tells the genres apart and drop the rest (level,
    recording colour), so songs of one genre sit together even when their raw timbre differs.

    Parameters
    ----------
    min_rows_per_genre : int
        Genres with fewer labelled rows are left out of the fit.
    """

    def __init__(self, min_rows_per_genre: int = 3):
        self.min_rows_per_genre = min_rows_per_genre

    def fit(self, X, y):
        values = np.asarray(X, dtype=float)
        labels = pd.Series(np.asarray(y, dtype=object)).fillna("").astype(str).to_numpy()
        counts = pd.Series(labels[labels != ""]).value_counts()
        kept = counts[counts >= self.min_rows_per_genre].index
        rows = np.isin(labels, kept)
        if len(kept) < 2:
            raise InputError("genre labels", "a genre projection needs at least two genres with "
                                             f"{self.min_rows_per_genre} labelled songs each")
        self.lda_ = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(values[rows], labels[rows])
        self.genres_ = [str(g) for g in self.lda_.classes_]
        self.n_fitted_ = int(rows.sum())
        return self

    def transform(self, X) -> np.ndarray:
        return self.lda_.transform(np.asarray(X, dtype=float))

    def predict(self, X) -> np.ndarray:
        """The genre each row's projection lies closest to (for explanations)."""
        return self.lda_.predict(np.asarray(X, dtype=float))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _song_keys(artists: pd.Series, titles: pd.Series) -> np.ndarray:
    """Integer code per (normalised artist, title); -1 where either is unknown."""
    artist = artists.fillna("").astype(str).map(normalize_artist)
    title = titles.fillna("").astype(str).map(normalize_title)
    keys = artist + "\x1f" + title
    codes, _ = pd.factorize(keys)
    return np.where((artist.to_numpy() == "") | (title.to_numpy() == ""), -1, codes)


class Library:
    """Songs that can be recommended: metadata plus a conditioned, unit-norm feature embedding.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per song with an id column, optional ``artist``/``title``/``genre`` columns and
        numeric feature columns.
    id_column : str
        Column of unique song ids.
    feature_columns : sequence of str, optional
        Default: every :data:`helpers.features.MODEL_FEATURES` column present in *table*.
    artist_column, title_column, genre_column : str
        Metadata columns; missing ones are filled with empty strings.
    lyrics : pandas.DataFrame, optional
        Numeric lyrics features indexed by song id (e.g. sentiment scores and TF-IDF
        components); songs without a row have no lyrics.
    lyrics_weight : float
        Weight of lyrics similarity in [0, 1]; 0 ignores *lyrics*.
    space : {'features', 'features+genre', 'genre'}
        Similarity space (:data:`SPACES`); default :data:`DEFAULT_SPACE`.
    genre_weight : float
        Weight in [0, 1] of the genre projection's cosine in ``'features+genre'``.
    genre_fit_rows : array-like of bool, optional
        Rows whose genre labels may fit the projection (default: every labelled row). An
        evaluation passes the rows outside the evaluated users' songs so nothing leaks.
    tags : pandas.DataFrame, optional
        Song-level tag scores indexed by song id, one column per tag (musicnn's song-mean
        taggram; column names may carry a ``mtt:`` / ``msd:`` prefix, which reasons drop).
        Reasons then name the tags a recommendation shares with its liked song.

    Attributes
    ----------
    local_density : numpy.ndarray
        Mean cosine of each song to its 10 nearest library songs in the chosen space (high in
        dense regions); the CSLS term of :class:`Recommender`. Not hubness: see
        :meth:`k_occurrence` for how often a song is among other songs' nearest neighbours.
    genre_profiles : numpy.ndarray or None
        The genre each song's projection lies closest to (:meth:`GenreProjection.predict`), for
        explanations; None in the ``'features'`` space, which has no projection.

    Raises
    ------
    InputError
        Missing id or feature columns, duplicate ids, non-finite feature values, an unknown
        space, or a genre space without enough labelled genres.
    """

    def __init__(self, table: pd.DataFrame, *, id_column: str = "id", feature_columns=None,
                 artist_column: str = "artist", title_column: str = "title",
                 genre_column: str = "genre", lyrics: pd.DataFrame | None = None,
                 lyrics_weight: float = 0.0, space: str | None = None,
                 genre_weight: float = DEFAULT_GENRE_WEIGHT, genre_fit_rows=None,
                 tags: pd.DataFrame | None = None):
        if id_column not in table.columns:
            raise InputError(id_column, f"library table has no id column (columns: {', '.join(map(str, table.columns[:8]))}, ...)")
        if feature_columns is None:
            feature_columns = [c for c in MODEL_FEATURES if c in table.columns]
        feature_columns = list(feature_columns)
        missing = [c for c in feature_columns if c not in table.columns]
        if missing or len(feature_columns) < 2:
            raise InputError(missing[0] if missing else "feature columns",
                             "library table lacks feature columns" if missing else "need at least two feature columns")
        ids = table[id_column].astype(str)
        if ids.duplicated().any():
            raise InputError(ids[ids.duplicated()].iloc[0], "song id appears twice in the library")
        values = table[feature_columns].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad_row, bad_col = np.argwhere(~np.isfinite(values))[0]
            raise InputError(ids.iloc[bad_row], f"feature {feature_columns[bad_col]} is not a finite number")
        if not 0.0 <= lyrics_weight <= 1.0:
            raise InputError("lyrics_weight", f"{lyrics_weight} is outside [0, 1]")

        def column(name):
            return table[name].fillna("").astype(str).to_numpy() if name in table.columns else np.full(len(table), "", dtype=object)

        self.meta = pd.DataFrame({"id": ids.to_numpy(), "artist": column(artist_column),
                                  "title": column(title_column), "genre": column(genre_column)})
        self._columns = {name: self.meta[name].to_numpy() for name in self.meta.columns}
        self.feature_columns = feature_columns
        self.raw = values
        self.conditioner = SkewedColumnScaler().fit(values)
        self.standardised = self.conditioner.transform(values).astype(np.float32)
        self.lyrics_weight = float(lyrics_weight)
        self.has_lyrics = np.zeros(len(ids), dtype=bool)
        self._lyrics = self._lyrics_block(lyrics, ids)
        self._position = {song_id: i for i, song_id in enumerate(self.meta["id"])}
        # Exact duplicates: identical feature rows collapse to their first occurrence.
        _, first, inverse = np.unique(values, axis=0, return_index=True, return_inverse=True)
        self.duplicate_of = first[inverse.ravel()]
        self.song_key = _song_keys(self.meta["artist"], self.meta["title"])
        self._blocks = {
            "timbre": [i for i, c in enumerate(feature_columns) if c.startswith(TIMBRE_PREFIX)],
            "brightness": [i for i, c in enumerate(feature_columns) if c.startswith(BRIGHTNESS_PREFIXES)],
        }
        self._tempo = feature_columns.index("tempo") if "tempo" in feature_columns else None
        self.shared_thresholds = self._block_thresholds()
        self.tag_columns, self.tag_scores = self._tag_block(tags, ids)
        # what a reason calls a tag: its name without the model prefix
        self.tag_names = [str(c).split(":", 1)[-1] for c in self.tag_columns]
        self._set_space(DEFAULT_SPACE if space is None else space, genre_weight, genre_fit_rows)

    # ----------------------------------------------------------------- construction helpers

    def _lyrics_block(self, lyrics: pd.DataFrame | None, ids: pd.Series) -> np.ndarray | None:
        if lyrics is None or self.lyrics_weight == 0.0:
            return None
        numeric = lyrics.select_dtypes("number")
        if numeric.shape[1] == 0:
            raise InputError("lyrics", "lyrics features hold no numeric column")
        numeric.index = numeric.index.astype(str)
        aligned = numeric.reindex(ids.to_numpy())
        self.has_lyrics = aligned.notna().all(axis=1).to_numpy()
        if self.has_lyrics.sum() < 2:
            raise InputError("lyrics", "fewer than two library songs have lyrics features")
        known = aligned.to_numpy(dtype=float)[self.has_lyrics]
        self._lyrics_columns = list(numeric.columns)
        self._lyrics_mean = known.mean(axis=0)
        std = known.std(axis=0)
        self._lyrics_scale = np.where(std > 0, std, 1.0)
        block = np.zeros((len(ids), numeric.shape[1]), dtype=np.float32)
        block[self.has_lyrics] = _unit_rows((known - self._lyrics_mean) / self._lyrics_scale)
        return block

    @staticmethod
    def _tag_block(tags: pd.DataFrame | None, ids: pd.Series) -> tuple[list, np.ndarray | None]:
        """Tag columns, and a (songs x tags) score matrix; NaN rows: songs without tags."""
        if tags is None:
            return [], None
        numeric = tags.select_dtypes("number")
        if numeric.shape[1] == 0:
            raise InputError("tags", "tag table holds no numeric column")
        numeric.index = numeric.index.astype(str)
        return list(numeric.columns), numeric.reindex(ids.to_numpy()).to_numpy(dtype=float)

    def song_tags(self, scores) -> dict[str, float]:
        """A song's own tags: its :data:`TOP_TAGS` best, a name kept once at its best score."""
        scores = np.asarray(scores, dtype=float)
        if not self.tag_names or not np.isfinite(scores).all():
            return {}
        best: dict[str, float] = {}
        for i in np.argsort(-scores, kind="stable"):
            name = self.tag_names[i]
            if name not in best:
                best[name] = float(scores[i])
            if len(best) == TOP_TAGS:
                break
        return best

    def shared_tags(self, scores_a, scores_b, limit: int = REASON_TAGS) -> list[str]:
        """Tags among both songs' own tags, strongest in both first (the lower score ranks)."""
        a, b = self.song_tags(scores_a), self.song_tags(scores_b)
        common = sorted(set(a) & set(b), key=lambda t: (-min(a[t], b[t]), t))
        return common[:limit]

    def _set_space(self, space: str, genre_weight: float, genre_fit_rows) -> None:
        """Embed every song in *space*; fit the genre projection when the space needs one."""
        if space not in SPACES:
            raise InputError(space, f"unknown similarity space; choose {', '.join(SPACES)}")
        if not 0.0 <= genre_weight <= 1.0:
            raise InputError("genre_weight", f"{genre_weight} is outside [0, 1]")
        self.space = space
        self.genre_weight = float(genre_weight)
        self.projection = None
        self.genre_profiles = None
        if space not in ("features", *LEARNED_SPACES):
            labels = self.meta["genre"].to_numpy(dtype=object).copy()
            if genre_fit_rows is not None:
                fit_rows = np.asarray(genre_fit_rows, dtype=bool)
                if fit_rows.shape != (len(self),):
                    raise InputError("genre_fit_rows", f"needs one flag per library song ({len(self)})")
                labels[~fit_rows] = ""
            self.projection = GenreProjection().fit(self.standardised, labels)
            # once per space, not once per explained recommendation
            self.genre_profiles = self.projection.predict(self.standardised)
        self.embedding = self._embed(self.standardised, self._lyrics)
        self.local_density = self._local_density()

    def in_space(self, space: str, genre_weight: float = DEFAULT_GENRE_WEIGHT,
                 genre_fit_rows=None) -> Library:
        """The same library embedded in another similarity space (metadata and conditioning shared).

        Parameters are those of :class:`Library`; the copy is independent of this library's space.
        """
        other = copy.copy(self)
        other._set_space(space, genre_weight, genre_fit_rows)
        return other

    def sound_vectors(self, standardised: np.ndarray) -> np.ndarray:
        """Unit vectors of conditioned feature rows in this library's space (lyrics not included)."""
        audio = _unit_rows(standardised)
        if self.projection is None:
            return audio
        genre = _unit_rows(self.projection.transform(standardised))
        if self.space == "genre":
            return genre
        weight = self.genre_weight
        return np.hstack([audio * np.sqrt(1 - weight), genre * np.sqrt(weight)]).astype(np.float32)

    def _embed(self, standardised: np.ndarray, lyrics_block: np.ndarray | None) -> np.ndarray:
        audio = self.sound_vectors(standardised)
        if lyrics_block is None:
            return audio
        weight = self.lyrics_weight
        with_lyrics = lyrics_block.any(axis=1)
        # cos = (1-w) cos_audio + w cos_lyrics between songs with lyrics; songs without lyrics keep
        # a unit audio vector, so they are compared on sound alone (scaled by sqrt(1-w)).
        audio_scale = np.where(with_lyrics, np.sqrt(1 - weight), 1.0)[:, None]
        return np.hstack([audio * audio_scale, lyrics_block * np.sqrt(weight)]).astype(np.float32)

    def _block_thresholds(self, n_pairs: int = 20000, seed: int = 0) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, len(self), size=(2, min(n_pairs, len(self) ** 2)))
        thresholds = {}
        for name, cols in self._blocks.items():
            if len(cols) >= 2:
                block = _unit_rows(self.standardised[:, cols])
                thresholds[name] = float(np.percentile((block[a] * block[b]).sum(axis=1), SHARED_PERCENTILE))
        return thresholds

    def _local_density(self, n_neighbours: int = 10, reference_size: int = 2000, seed: int = 0) -> np.ndarray:
        """Mean cosine of each song to its nearest library songs (high in dense regions).

        Songs in dense regions top the neighbour lists of many queries, so CSLS subtracts this.
        With more than *reference_size* songs the neighbours are sought in a random reference
        sample, which estimates the same quantity at a fraction of the cost.
        """
        n = len(self)
        if n < 2:
            return np.zeros(n, dtype=np.float32)
        rng = np.random.default_rng(seed)
        reference = np.arange(n) if n <= reference_size else rng.choice(n, reference_size, replace=False)
        reach = min(n_neighbours, len(reference) - 1)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, 8192):
            sims = self.embedding[start:start + 8192] @ self.embedding[reference].T
            # drop each song's similarity to itself (and its exact copies) when it is in the reference
            sims[sims > 0.99999] = -np.inf
            top = np.partition(sims, sims.shape[1] - reach, axis=1)[:, -reach:]
            out[start:start + 8192] = np.where(np.isfinite(top), top, 0).mean(axis=1)
        return out

    # ----------------------------------------------------------------- constructors

    @classmethod
    def gtzan(cls, **kwargs) -> Library:
        """The embedded GTZAN table with Sturm's artist and title for every clip (ids: filenames)."""

        table = load_gtzan_table().merge(load_artist_index()[["filename", "artist", "title"]],
                                         on="filename", how="left")
        table = table.rename(columns={"filename": "id", "label": "genre"})
        return cls(table, **kwargs)

    @classmethod
    def from_csv(cls, path, **kwargs) -> Library:
        """A feature table written by ``music-study extract`` or any CSV with ids and features.

        The id column is the first of ``id``, ``filename``, ``path`` present; a ``label`` column
        is read as the genre. A segmented table (``clip``/``segment`` columns) becomes one song
        per clip: the mean of its non-silent segments, id = the clip's file name.
        """
        path = Path(path)
        table = read_user_csv(path, "library table")
        if "genre" not in table.columns and "label" in table.columns:
            table = table.rename(columns={"label": "genre"})
        if "clip" in table.columns and "segment" in table.columns:
            # `music-study extract --segment-seconds`: one song is the mean of its non-silent segments
            kept = table[~table["silent"].astype(bool)] if "silent" in table.columns else table
            numeric = kept.drop(columns=["segment", "start", "end", "silent"], errors="ignore")
            table = numeric.groupby("clip", sort=False).agg(
                {c: ("mean" if pd.api.types.is_numeric_dtype(numeric[c]) else "first")
                 for c in numeric.columns if c not in ("clip", "filename")}).reset_index()
            table = table.rename(columns={"clip": "id"})
        id_column = next((c for c in ("id", "filename", "path") if c in table.columns), None)
        if id_column is None:
            raise InputError(path, "library table needs an id, filename or path column")
        return cls(table, id_column=id_column, **kwargs)

    @classmethod
    def from_store(cls, store, **kwargs) -> Library:
        """The songs of a :class:`helpers.store.LabelStore` that have stored window features.

        A song's features are the mean of its windows' features (songs are summarised the way
        their windows were extracted); its genre is its current label, if any. Ids are the
        store's song ids as strings.

        Raises
        ------
        InputError
            Fewer than two songs with features in the store.
        """

        windows = store.windows()
        if windows["song_id"].nunique() < 2:
            raise InputError(getattr(store, "path", "label store"),
                             "fewer than two songs with stored features; extract some songs first")
        features = windows.groupby("song_id")[list(FEATURE_COLUMNS)].mean()
        songs = store.songs().set_index("song_id")
        labels = store.current_labels().set_index("song_id")["genre"]
        table = features.join(songs[["title", "artist", "filename"]], how="left")
        table["genre"] = labels.reindex(table.index).fillna("")
        table["title"] = table["title"].fillna(table["filename"])
        table = table.reset_index().rename(columns={"song_id": "id"})
        table["id"] = table["id"].astype(str)
        return cls(table, **kwargs)

    # ----------------------------------------------------------------- lookups

    def __len__(self) -> int:
        return len(self.meta)

    def index_of(self, song_id) -> int:
        """Row of *song_id*; GTZAN ids may be given without ``.wav``.

        Raises
        ------
        InputError
            The id is not in the library.
        """
        key = str(song_id).strip()
        for candidate in (key, f"{key}.wav"):
            if candidate in self._position:
                return self._position[candidate]
        example = self.meta["id"].iloc[0] if len(self) else "?"
        raise InputError(song_id, f"not a song id of the library ({len(self)} songs; ids look like {example})")

    def k_occurrence(self, k: int = 10, hub_penalty: float = 0.0, block: int = 2048) -> np.ndarray:
        """How often each song is among the *k* nearest neighbours of the other songs (hubness).

        Counted over representative songs (one per group of exact duplicates) in this library's
        space; a song's own duplicates are not its neighbours. Non-representative copies get 0.
        Uniform neighbourhoods give every song about *k*; hubs get many times *k*, anti-hubs 0.

        Parameters
        ----------
        k : int
            Neighbour-list length.
        hub_penalty : float
            Rank neighbours by ``cosine - hub_penalty * local_density`` as :class:`Recommender`
            retrieves them (0: plain cosine; 0.5: CSLS).
        block : int
            Query rows per matrix product (memory bound).

        Returns
        -------
        numpy.ndarray of int
            One count per library row.
        """
        representatives = np.flatnonzero(self.duplicate_of == np.arange(len(self)))
        if k < 1 or k >= len(representatives):
            raise InputError("k", f"{k}: needs 1 <= k < {len(representatives)} (representative songs)")
        vectors = self.embedding[representatives]
        bias = (hub_penalty * self.local_density[representatives]).astype(np.float32)
        counts = np.zeros(len(representatives), dtype=np.int64)
        for start in range(0, len(representatives), block):
            sims = vectors[start:start + block] @ vectors.T - bias
            sims[np.arange(sims.shape[0]), np.arange(start, start + sims.shape[0])] = -np.inf
            neighbours = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            counts += np.bincount(neighbours.ravel(), minlength=len(representatives))
        out = np.zeros(len(self), dtype=np.int64)
        out[representatives] = counts
        return out

    def embed_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """Embed external feature rows (e.g. extracted from a liked audio file) like library rows."""
        missing = [c for c in self.feature_columns if c not in rows.columns]
        if missing:
            raise InputError(missing[0], "feature row lacks a library feature column")
        standardised = self.conditioner.transform(rows[self.feature_columns].to_numpy(dtype=float))
        block = None
        if self.has_lyrics.any():  # external rows have no lyrics features: compared on sound
            block = np.zeros((len(rows), len(self._lyrics_columns)), dtype=np.float32)
        return self._embed(standardised.astype(np.float32), block)


@dataclass
class Recommendation:
    """One recommended song and why.

    Attributes
    ----------
    id, artist, title, genre : str
    score : float
        Ranking relevance in [0, 1] (1 = the most relevant song of the candidate pool).
    reason : str
        One sentence: which liked song(s) it is near, in which similarity space, and what
        they share.
    near : list of dict
        The liked songs it is near: ``id``, ``artist``, ``title``, ``similarity`` (cosine in
        *space*).
    shared : list of str
        What it shares with the nearest liked song: ``genre`` (same label), ``genre profile``
        (the genre projection puts both closest to the same genre), ``tempo``, ``timbre``,
        ``brightness``, ``lyrics``.
    space : str
        The similarity space it was chosen in (a key of :data:`SPACES`).
    """

    id: str
    artist: str
    title: str
    score: float
    reason: str
    genre: str = ""
    near: list = field(default_factory=list)
    shared: list = field(default_factory=list)
    space: str = DEFAULT_SPACE

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Seeds:
    """Liked songs resolved against a library: library rows plus external feature rows.

    Attributes
    ----------
    indices : list of int
        Library rows of liked songs found in the library.
    external : pandas.DataFrame
        Feature rows (with ``id``, ``artist``, ``title``) of liked songs outside the library,
        e.g. extracted from an audio file.
    report : pandas.DataFrame
        One row per liked entry: how it was resolved (``library_id`` or ``None``).
    """

    indices: list
    external: pd.DataFrame
    report: pd.DataFrame

    def __len__(self) -> int:
        return len(self.indices) + len(self.external)


class Recommender:
    """Rank library songs for a set of liked songs.

    Parameters
    ----------
    library : Library
    strategy : {'per-seed', 'centroid'}
        ``per-seed``: the *per_seed* nearest songs of each liked song, merged by reciprocal-rank
        fusion (each liked song gets an equal say). ``centroid``: nearest songs to the average
        liked song (the classic recipe, kept as a baseline).
    per_seed : int
        Candidates retrieved per liked song (and pool size factor for ``centroid``).
    mmr_lambda : float or None
        MMR trade-off: 1 (or ``None``) ranks by relevance only; lower values trade relevance for
        dissimilarity to the songs already chosen.
    artist_cap : int or None
        At most this many songs per artist (songs with an unknown artist are not capped).
    dislike_neighbours : int
        Each disliked song excludes itself and this many of its nearest songs (at most 2 % of
        the library, at least one).
    rrf_k : float
        Reciprocal-rank-fusion constant: a song at rank r of a liked song's list earns 1/(rrf_k + r).
    hub_penalty : float
        Retrieval ranks by ``cosine - hub_penalty * local_density`` where local density is a
        song's mean cosine to its nearest library songs (:attr:`Library.local_density`); 0.5 is
        the CSLS correction of Conneau et al. (2018), 0 ranks by plain cosine. Songs in dense
        regions otherwise become hubs (high :meth:`Library.k_occurrence`) and fill most users' lists.
    """

    def __init__(self, library: Library, *, strategy: str = "per-seed", per_seed: int = 50,
                 mmr_lambda: float | None = 0.7, artist_cap: int | None = 2,
                 dislike_neighbours: int = 10, rrf_k: float = 10.0, hub_penalty: float = 0.5):
        if strategy not in ("per-seed", "centroid"):
            raise InputError(strategy, "unknown strategy; choose per-seed or centroid")
        if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
            raise InputError("mmr_lambda", f"{mmr_lambda} is outside [0, 1]")
        if artist_cap is not None and artist_cap < 1:
            raise InputError("artist_cap", f"{artist_cap} must be at least 1")
        if per_seed < 1:
            raise InputError("per_seed", f"{per_seed} must be at least 1")
        self.library = library
        self.strategy = strategy
        self.per_seed = int(per_seed)
        self.mmr_lambda = mmr_lambda
        self.artist_cap = artist_cap
        self.dislike_neighbours = int(dislike_neighbours)
        self.rrf_k = float(rrf_k)
        self.hub_penalty = float(hub_penalty)
        artists = library.meta["artist"].map(normalize_artist).to_numpy()
        codes, _ = pd.factorize(artists)
        self._artist_code = np.where(artists == "", -1, codes)

    # ----------------------------------------------------------------- exclusions

    def allowed_mask(self, liked_rows, disliked_rows=()) -> np.ndarray:
        """Songs that may be recommended for these liked and disliked library rows.

        Excluded: liked songs, their exact duplicates and other clips of the same song (same
        artist and normalised title), non-representative copies of any duplicated row, disliked
        songs with their duplicates and their nearest songs (see *dislike_neighbours*).
        """
        lib = self.library
        n = len(lib)
        allowed = lib.duplicate_of == np.arange(n)
        liked_rows = np.asarray(list(liked_rows), dtype=int)
        if liked_rows.size:
            allowed &= ~np.isin(lib.duplicate_of, lib.duplicate_of[liked_rows])
            keys = lib.song_key[liked_rows]
            allowed &= ~np.isin(lib.song_key, keys[keys >= 0])
        disliked_rows = np.asarray(list(disliked_rows), dtype=int)
        if disliked_rows.size:
            allowed &= ~np.isin(lib.duplicate_of, lib.duplicate_of[disliked_rows])
            sims = lib.embedding[disliked_rows] @ lib.embedding.T
            # a small library would lose everything to a fixed radius: at most 2 % of it
            reach = min(self.dislike_neighbours, max(1, n // 50)) + 1
            if self.dislike_neighbours > 0:
                near = np.argpartition(-sims, reach - 1, axis=1)[:, :reach]
                allowed[near.ravel()] = False
        return allowed

    # ----------------------------------------------------------------- retrieval

    def _pool(self, queries: np.ndarray, allowed: np.ndarray, k: int):
        """Candidate rows, their relevance in [0, 1] and, per candidate, the seeds it came from."""
        emb = self.library.embedding
        n_allowed = int(allowed.sum())
        # One additive bias carries both the hub correction and the exclusions.
        bias = np.where(allowed, -self.hub_penalty * self.library.local_density, -np.inf).astype(np.float32)
        if self.strategy == "centroid":
            centre = queries.mean(axis=0)
            centre /= max(np.linalg.norm(centre), 1e-12)
            sims = (emb @ centre)[None, :]
            sims += bias
            size = min(max(self.per_seed, 5 * k), n_allowed)
            pool = _top_per_row(sims, size)[0]
            relevance = sims[0, pool].astype(float)
            sources = [None] * len(pool)
        else:
            # (songs x liked) is the fast layout for BLAS here; rows are read through a view.
            sims = emb @ queries.T
            sims += bias[:, None]
            sims = sims.T
            depth = min(self.per_seed, n_allowed)
            ranked = _top_per_row(sims, depth)
            fused: dict[int, float] = {}
            origin: dict[int, list] = {}
            gains = 1.0 / (self.rrf_k + np.arange(1, depth + 1))
            for seed, row in enumerate(ranked):
                for rank, item in enumerate(row.tolist()):
                    fused[item] = fused.get(item, 0.0) + gains[rank]
                    origin.setdefault(item, []).append(seed)
            pool = np.fromiter(fused.keys(), dtype=int, count=len(fused))
            relevance = np.fromiter(fused.values(), dtype=float, count=len(fused))
            sources = [origin[i] for i in pool.tolist()]
        low, high = relevance.min(), relevance.max()
        relevance = (relevance - low) / (high - low) if high > low else np.ones_like(relevance)
        return pool, relevance, sources

    def _select(self, pool: np.ndarray, relevance: np.ndarray, k: int) -> list[int]:
        """Greedy MMR over the pool with the artist cap and one clip per song; positions into *pool*."""
        lam = 1.0 if self.mmr_lambda is None else self.mmr_lambda
        vectors = self.library.embedding[pool]
        redundancy = np.full(len(pool), -np.inf)
        available = np.ones(len(pool), dtype=bool)
        artist = self._artist_code[pool]
        keys = self.library.song_key[pool]
        per_artist: dict[int, int] = {}
        chosen: list[int] = []
        while len(chosen) < k and available.any():
            penalty = np.where(np.isfinite(redundancy), redundancy, 0.0) if chosen else 0.0
            score = np.where(available, lam * relevance - (1 - lam) * penalty, -np.inf)
            best = int(np.argmax(score))
            chosen.append(best)
            available[best] = False
            if keys[best] >= 0:
                available &= keys != keys[best]
            if artist[best] >= 0 and self.artist_cap is not None:
                per_artist[artist[best]] = per_artist.get(artist[best], 0) + 1
                if per_artist[artist[best]] >= self.artist_cap:
                    available &= artist != artist[best]
            if lam < 1.0:
                redundancy = np.maximum(redundancy, vectors @ vectors[best])
        return chosen

    # ----------------------------------------------------------------- public

    def recommend(self, liked, disliked=(), k: int = 10, external: pd.DataFrame | None = None,
                  explain: bool = True) -> list[Recommendation]:
        """Recommend *k* library songs for liked (and disliked) songs.

        Parameters
        ----------
        liked : iterable of str or Seeds
            Library ids of liked songs, or :class:`Seeds` from :func:`resolve_liked`.
        disliked : iterable of str
            Library ids of disliked songs; they and their neighbourhoods are excluded.
        k : int
            Number of recommendations (fewer when the library runs out).
        external : pandas.DataFrame, optional
            Feature rows of liked songs outside the library (``id``, ``artist``, ``title`` and
            the library's feature columns).
        explain : bool
            Build the ``reason`` of each recommendation (off for fast evaluation loops).

        Raises
        ------
        InputError
            No liked song, an unknown id, or *k* < 1.
        """
        if k < 1:
            raise InputError("k", f"{k}: ask for at least one recommendation")
        lib = self.library
        if isinstance(liked, Seeds):
            rows, external = list(liked.indices), liked.external
        else:
            rows = [lib.index_of(song_id) for song_id in liked]
        external = external if external is not None and len(external) else None
        if not rows and external is None:
            raise InputError("liked songs", "no liked song to recommend from")
        disliked_rows = [lib.index_of(song_id) for song_id in disliked]
        queries = lib.embedding[rows] if rows else np.empty((0, lib.embedding.shape[1]), np.float32)
        if external is not None:
            queries = np.vstack([queries, lib.embed_rows(external)])
        allowed = self.allowed_mask(rows, disliked_rows)
        if not allowed.any():
            return []
        pool, relevance, sources = self._pool(queries, allowed, k)
        picks = self._select(pool, relevance, k)
        if explain:
            seed_meta = self._seed_meta(rows, external)
            seed_tags = self._seed_tags(rows, external)
            seed_raw = lib.raw[rows]
            if external is not None:
                external_raw = external[lib.feature_columns].to_numpy(dtype=float)
                seed_raw = np.vstack([seed_raw, external_raw])
            seed_std = lib.conditioner.transform(seed_raw)
            # the liked songs' genre profiles once per call, not once per recommendation
            seed_profiles = None if lib.projection is None else lib.projection.predict(seed_std)
            seed_has_lyrics = np.concatenate([lib.has_lyrics[rows], np.zeros(len(queries) - len(rows), bool)])
        columns = lib._columns
        recs = []
        for position in picks:
            item = int(pool[position])
            rec = Recommendation(id=columns["id"][item], artist=columns["artist"][item],
                                 title=columns["title"][item], genre=columns["genre"][item],
                                 score=round(float(relevance[position]), 4), reason="", space=lib.space)
            if explain:
                self._explain(rec, item, queries, sources[position], seed_meta, seed_raw, seed_std,
                              seed_profiles, seed_has_lyrics, seed_tags)
            recs.append(rec)
        return recs

    def _seed_meta(self, rows, external) -> list[dict]:
        columns = self.library._columns
        meta = [{key: columns[key][r] for key in ("id", "artist", "title", "genre")} for r in rows]
        if external is not None:
            for _, row in external.iterrows():
                meta.append({key: str(row.get(key, "") or "") for key in ("id", "artist", "title", "genre")})
        return meta

    def _seed_tags(self, rows, external) -> np.ndarray | None:
        """Tag scores of the liked songs (library rows, then external rows with tag columns)."""
        lib = self.library
        if lib.tag_scores is None:
            return None
        parts = [lib.tag_scores[rows]]
        if external is not None:
            block = np.full((len(external), len(lib.tag_columns)), np.nan)
            if all(c in external.columns for c in lib.tag_columns):
                block = external[lib.tag_columns].to_numpy(dtype=float)
            parts.append(block)
        return np.vstack(parts)

    def _explain(self, rec: Recommendation, item: int, queries, source_seeds, seed_meta, seed_raw,
                 seed_std, seed_profiles, seed_has_lyrics, seed_tags=None) -> None:
        lib = self.library
        sims = queries @ lib.embedding[item]
        candidates = source_seeds if source_seeds else list(range(len(queries)))
        ordered = sorted(candidates, key=lambda s: -sims[s])[:3]
        rec.near = [{**{k: seed_meta[s][k] for k in ("id", "artist", "title")},
                     "similarity": round(float(sims[s]), 4)} for s in ordered]
        best = ordered[0]
        shared = []
        if rec.genre and rec.genre == seed_meta[best].get("genre"):
            shared.append("genre")
        detail = {}
        if lib.projection is not None:
            profile = lib.genre_profiles[item]
            if profile == seed_profiles[best]:
                shared.append("genre profile")
                detail["genre profile"] = f"both closest to {profile}"
        if lib._tempo is not None:
            a, b = lib.raw[item, lib._tempo], seed_raw[best, lib._tempo]
            if abs(a - b) <= TEMPO_TOLERANCE * max(a, b):
                shared.append("tempo")
                detail["tempo"] = f"{b:.0f} vs {a:.0f} BPM"
        for name, cols in lib._blocks.items():
            if name in lib.shared_thresholds:
                u, v = lib.standardised[item, cols], seed_std[best, cols]
                cos = float(u @ v / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))
                if cos >= lib.shared_thresholds[name]:
                    shared.append(name)
        if lib.lyrics_weight > 0 and lib.has_lyrics[item] and seed_has_lyrics[best]:
            shared.append("lyrics")
        if seed_tags is not None:
            common = lib.shared_tags(lib.tag_scores[item], seed_tags[best])
            if common:
                shared.append("tags")
                detail["tags"] = "both: " + ", ".join(common)
        rec.shared = shared
        names = "; ".join(_describe(n) for n in rec.near[:2])
        what = ", ".join(detail[s] if s == "tags" else f"{s} ({detail[s]})" if s in detail else
                         (f"genre ({rec.genre})" if s == "genre" else s) for s in shared)
        rec.reason = (f"near {names} in the {SPACES[lib.space]}"
                      + (f" — shares {what}" if what else " — overall sound"))
        if seed_tags is not None and "tags" not in shared and np.isfinite(seed_tags[best]).all():
            rec.reason += f" (no tag among both songs' top {TOP_TAGS})"


def _top_per_row(scores: np.ndarray, depth: int, sample_size: int = 4096, seed: int = 0) -> np.ndarray:
    """Column indices of the *depth* largest scores of each row, best first (exact).

    A full ``argpartition`` of 100 000 scores per liked song dominates a query. Instead a
    threshold is read off a fixed random sample of columns so that a few times *depth* scores
    pass it; the top *depth* among those that pass are the exact top *depth* whenever at least
    *depth* pass, and a row where fewer pass falls back to a full sort.
    """
    n_rows, n_cols = scores.shape
    out = np.empty((n_rows, depth), dtype=np.int64)
    use_sample = n_cols > 4 * sample_size and depth * 8 < sample_size
    if use_sample:
        columns = np.random.default_rng(seed).choice(n_cols, sample_size, replace=False)
        wanted = min(sample_size - 1, max(4, int(np.ceil(4 * depth * sample_size / n_cols))))
        thresholds = np.partition(scores[:, columns], sample_size - wanted, axis=1)[:, sample_size - wanted]
    for row in range(n_rows):
        values = scores[row]
        candidates = np.flatnonzero(values >= thresholds[row]) if use_sample else None
        if candidates is None or len(candidates) < depth or not np.isfinite(thresholds[row]):
            out[row] = np.argsort(-values, kind="stable")[:depth]
            continue
        # higher score first, ties by lower index (as a full stable sort would)
        out[row] = candidates[np.lexsort((candidates, -values[candidates]))[:depth]]
    return out


def _describe(near: dict) -> str:
    if near.get("artist"):
        label = f"'{near['artist']} – {near['title']}' ({near['id']}, "
    elif near.get("title") and near["title"] not in near["id"]:
        label = f"'{near['title']}' ({near['id']}, "
    else:
        label = f"{near['id']} ("
    return f"{label}similarity {near['similarity']:.2f})"


def store_preferences(store, who: str | None = None) -> tuple[list[str], list[str]]:
    """Liked and disliked song ids (as :meth:`Library.from_store` spells them) from a store.

    The latest preference per song and person counts; *who* restricts to one person.
    """
    prefs = store.preferences()
    if who is not None:
        prefs = prefs[prefs["who"] == who]
    ids = prefs["song_id"].astype(str)
    return ids[prefs["liked"]].unique().tolist(), ids[~prefs["liked"]].unique().tolist()


# --------------------------------------------------------------------------- lyrics features


def lyrics_features(texts, n_topics: int = 8, seed: int = 0) -> pd.DataFrame:
    """Numeric lyrics features per song for :class:`Library`'s lyrics blend.

    Sentiment comes from :func:`helpers.lyrics.analysis.score_songs` (line-by-line VADER: mean compound,
    share of positive and negative lines, change over the song); topics are the TF-IDF matrix
    of :func:`helpers.lyrics.analysis.tokenize` tokens reduced to *n_topics* components by truncated SVD
    (latent semantic analysis), so songs with similar vocabulary get similar rows.

    Parameters
    ----------
    texts : pandas.Series of str
        Lyrics indexed by song id; empty or missing texts get no row.
    n_topics : int
        TF-IDF components kept (fewer when the vocabulary or the number of songs is small).

    Returns
    -------
    pandas.DataFrame
        Indexed by song id: ``sentiment_mean``, ``sentiment_positive``, ``sentiment_negative``,
        ``sentiment_change``, ``topic_1`` ... ``topic_n``.

    Raises
    ------
    InputError
        Fewer than two songs with words.
    """


    texts = pd.Series(texts).dropna().astype(str)
    tokens = texts.map(tokenize)
    texts, tokens = texts[tokens.map(len) > 0], tokens[tokens.map(len) > 0]
    if len(texts) < 2:
        raise InputError("lyrics", "fewer than two songs have lyrics with words")
    sentiment = score_songs(texts, whole_text=False)
    frame = pd.DataFrame({
        "sentiment_mean": sentiment["mean"], "sentiment_positive": sentiment["share_positive"],
        "sentiment_negative": sentiment["share_negative"], "sentiment_change": sentiment["arc_change"],
    }, index=texts.index)
    matrix = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True).fit_transform(tokens.tolist())
    components = min(n_topics, matrix.shape[1] - 1, len(texts) - 1)
    if components >= 1:
        topics = TruncatedSVD(n_components=components, random_state=seed).fit_transform(matrix)
        for i in range(components):
            frame[f"topic_{i + 1}"] = topics[:, i]
    frame.index = frame.index.astype(str)
    return frame


def read_lyrics_table(path) -> pd.DataFrame:
    """Lyrics input of the command line: a CSV with an ``id`` column and either a ``lyrics``
    text column (features computed by :func:`lyrics_features`) or numeric feature columns."""
    path = Path(path)
    table = read_user_csv(path, "lyrics table")
    if "id" not in table.columns:
        raise InputError(path, "lyrics table needs an id column")
    table = table.set_index(table["id"].astype(str))
    if "lyrics" in table.columns:
        return lyrics_features(table["lyrics"])
    return table.drop(columns="id").select_dtypes("number")


# --------------------------------------------------------------------------- resolving liked lists


def resolve_liked(liked, library: Library, *, window_seconds: float = 30.0, fetch_limit: int = 0,
                  download_dir=None) -> Seeds:
    """Resolve liked entries against *library*: ids, titles, audio paths and URLs.

    Parameters
    ----------
    liked : LikedList or iterable of LikedSong
        From :mod:`helpers.recommend.liked` parsers or :func:`helpers.recommend.liked.liked_from_items`.
    library : Library
    window_seconds : float
        Audio outside the library is summarised by the mean over its used windows of this
        length (:func:`song_features`; the library's clips are 30-s excerpts).
    fetch_limit : int
        At most this many songs are downloaded: ``'url'`` entries (a song URL, or a playlist
        URL whose songs are listed with :func:`helpers.audio.ingest.playlist_entries`; a playlist
        song whose title and artist match the library is used without download) and listed
        songs that match no library song but carry a URL (Takeout rows with a video id).
        0 downloads nothing: such entries are reported unmatched.
    download_dir : path-like, optional
        Where downloads go (default: the ingest helpers' ``data/downloads``).

    Returns
    -------
    Seeds

    Raises
    ------
    InputError
        An explicit id that is not in the library, an unreadable audio file, or a URL that
        cannot be listed. A song of a playlist that fails to download is reported, not raised.
    """
    songs = list(liked)
    rows, external, report = [], [], []
    titled = [s for s in songs if s.kind in ("song", "video")]
    matches = match_to_library(titled, library.meta) if titled else None
    match_iter = iter(matches.itertuples(index=False)) if matches is not None else iter(())
    budget = [int(fetch_limit)]

    def add_report(entry, artist, kind, library_id, how, url):
        report.append({"entry": entry, "artist": artist, "kind": kind, "library_id": library_id,
                       "how": how, "url": url})

    for song in songs:
        if song.kind in ("song", "video"):
            match = next(match_iter)
            library_id = match.library_id if pd.notna(match.library_id) else None
            if library_id is not None:
                rows.append(library.index_of(library_id))
                add_report(song.title, song.artist, song.kind, library_id, "title match", song.url)
            elif song.url and budget[0] > 0:  # e.g. a Takeout row with a video id
                _download(song.url, song.title, song.artist, library, external, add_report, budget,
                          window_seconds, download_dir)
            else:
                add_report(song.title, song.artist, song.kind, None, "unmatched", song.url)
        elif song.kind == "id":
            row = library.index_of(song.ref)
            rows.append(row)
            add_report(song.ref, "", "id", library.meta["id"].iloc[row], "id", None)
        elif song.kind == "path":
            external.append(_features_of_file(song.ref, library, window_seconds))
            add_report(song.ref, "", "path", None, "audio features", None)
        elif budget[0] <= 0:
            add_report(song.ref, song.artist, song.kind, None, "unmatched", song.url)
        else:
            _resolve_url(song, library, rows, external, add_report, budget, window_seconds, download_dir)
    frame = pd.DataFrame(external) if external else pd.DataFrame(columns=["id", "artist", "title"])
    rows = list(dict.fromkeys(rows))  # a song liked twice counts once
    return Seeds(rows, frame, pd.DataFrame(report, columns=["entry", "artist", "kind", "library_id", "how", "url"]))


def _resolve_url(song, library, rows, external, add_report, budget, window_seconds, download_dir):
    """Expand a song or playlist URL; match its songs by title or download their audio."""

    for entry in playlist_entries(song.url):
        title, artists = entry.title, ((entry.artist,) if entry.artist else ())
        split = split_artist_title(title) if title else None
        if split is not None:
            artists, title = split[0], split[1]
        if title and artists:
            match = match_to_library([LikedSong(title, tuple(artists))], library.meta).iloc[0]
            if pd.notna(match["library_id"]):
                rows.append(library.index_of(match["library_id"]))
                add_report(entry.url, ", ".join(artists), "url", match["library_id"], "title match", entry.url)
                continue
        if budget[0] <= 0:
            add_report(entry.url, entry.artist or "", "url", None, "unmatched (fetch limit reached)", entry.url)
            continue
        _download(entry.url, entry.title, entry.artist, library, external, add_report, budget,
                  window_seconds, download_dir)


def _download(url, title, artist, library, external, add_report, budget, window_seconds, download_dir):
    """Download one song and add its features as a liked song outside the library."""

    budget[0] -= 1
    try:
        audio = fetch_audio(url, download_dir=download_dir)
        row = _features_of_file(audio.path, library, window_seconds)
    except InputError as exc:
        add_report(title or url, artist or "", "url", None, f"failed: {exc.reason}", url)
        return
    row.update({"id": url, "title": title or audio.title or row["title"], "artist": artist or audio.artist or ""})
    external.append(row)
    add_report(title or url, row["artist"], "url", None, "downloaded, audio features", url)


def song_features(path, window_seconds: float = 30.0, middle_only: bool = False) -> dict:
    """Summarise a whole audio file by the mean of its used windows' features.

    The windows are those of :func:`helpers.features.window_features`, the one windowing policy
    (the library's clips are 30-s excerpts, so each window is summarised as a clip is): silent
    windows and a last window shorter than ``min(10 s, window_seconds)`` are left out, and the
    song's row is the mean of the remaining windows' feature rows. A file shorter than that
    minimum is summarised by itself, as one window (prediction and the labeler refuse it: the
    policy's one exception, see :func:`helpers.audio.min_window_seconds`).

    :meth:`Library.from_store` also averages a song's windows, over those the labeler stored
    (:func:`helpers.labeling.pool.extract_windows`): the same windows under the same policy, so the
    two rows of one song agree unless the labeler stored only its first ``max_windows`` or
    used another window length.

    Parameters
    ----------
    path : path-like
        An audio file the workspace can decode.
    window_seconds : float
        Window length in seconds (3-600).
    middle_only : bool
        Summarise one window from the middle of the file instead (the former recipe, kept to
        compare with).

    Returns
    -------
    dict
        Every :data:`helpers.features.FEATURE_COLUMNS` name to its mean over the used windows,
        plus ``windows`` (how many were averaged) and ``seconds`` (the audio they cover).

    Raises
    ------
    InputError
        The file cannot be decoded or holds no window with usable features.

    Examples
    --------
    >>> row = song_features("data/music/wesnoth_heroes_rite.ogg")  # doctest: +SKIP
    >>> row["windows"], row["seconds"]  # doctest: +SKIP
    (7, 210.0)
    """

    window_seconds = check_window_seconds(path, window_seconds)
    info = check_audio_info(path)  # probed once: it also places the middle window
    offset, duration = 0.0, None
    if middle_only:
        stated = info.duration or window_seconds
        offset, duration = max(0.0, (stated - window_seconds) / 2), window_seconds
    # the validation every audio entry point shares: a file with no usable window (or a
    # truncated one) is refused with its reason; a liked file shorter than the minimum window
    # is described whole (the policy's short-file clause) rather than refused
    table = window_features(path, window_seconds, offset=offset, duration=duration, info=info,
                            short_file=True, needs="recommendations")
    used = table[table["used"]]
    if used.empty:
        raise InputError(path, "no window of the audio yields features (silent or too short)")
    mean = used[list(FEATURE_COLUMNS)].mean()
    return {**{c: float(mean[c]) for c in FEATURE_COLUMNS}, "windows": len(used),
            "seconds": round(float((used["end"] - used["start"]).sum()), 3)}


def _features_of_file(path, library: Library, window_seconds: float) -> dict:
    """Feature row of a liked audio file outside the library: the mean over all its windows."""
    features = song_features(path, window_seconds=window_seconds)
    return {"id": str(path), "artist": "", "title": Path(path).stem, "genre": "", **features}

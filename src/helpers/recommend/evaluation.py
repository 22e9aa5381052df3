"""Offline evaluation of recommenders with simulated users.

A simulated user likes songs drawn from one or two genres of a library; half of the likes are
shown to the recommender (seeds), the other half are held out to be recovered. Because GTZAN
repeats artists heavily (35 reggae clips are Bob Marley), recommending the seeds' own artists is
easy and says little: a recommended song whose artist is among the user's seed artists earns no
credit, and held-out songs by those artists are left out of recall's denominator.

"Staying in taste" is measured twice: ``in_user_genres`` (share of the list inside the user's
genres) and ``in_user_genres_new_artists`` (share of the list inside the user's genres *and* by
an artist the user has not shown), because recommending the seeds' own artists keeps a list
on-genre for free.

Every comparison carries three baselines that use no audio at all, with the same exclusions as
the recommender: random lists (:class:`RandomRecommender`), the most-liked songs
(:class:`PopularityRecommender`) and the **genre oracle** (:class:`GenreOracleRecommender`):
random songs of the user's liked genres by artists the user has not shown. Simulated taste is
genre by construction, so the oracle is the bar an audio recommender has to approach; the share
of the list by the user's own artists (``seed_artist_share``) shows what a list gains for free.

Catalogue-level measures show whether a few "hub" songs take most recommendations: coverage
(share of the catalogue recommended to anyone), the Gini coefficient of recommendation counts
and the share of all recommendations taken by the top 1 % of songs.

:func:`compare_spaces` compares similarity spaces on artist-grouped folds: users like songs of
one fold only, and a genre projection is fitted on the labels of the other folds, so no space
sees the labels of the songs it is scored on.

Examples
--------
>>> from helpers.recommend.recommender import Library
>>> library = Library.gtzan()
>>> users = simulate_users(library, n_users=20, seed=0)
>>> per_user, catalogue = evaluate(library, users, {"mmr": {"mmr_lambda": 0.7}}, k=10)
>>> sorted(catalogue.columns)[:3]
['coverage', 'gini', 'recommendations']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.recommend.liked import normalize_artist
from helpers.recommend.recommender import (
    DEFAULT_GENRE_WEIGHT,
    Library,
    Recommendation,
    Recommender,
    song_features,
)
from helpers.reports.narrate import intervals_overlap
from helpers.stats import mean_interval

#: Names of the audio-free baselines every table carries.
BASELINES = ("random", "popularity", "genre oracle")


@dataclass(frozen=True)
class SimulatedUser:
    """Liked songs shown to the recommender (``seeds``) and held out (``held_out``), as ids."""

    user: int
    genres: tuple
    seeds: tuple
    held_out: tuple


def simulate_users(library: Library, n_users: int = 200, n_likes: int = 20,
                   two_genre_share: float = 0.5, seed_fraction: float = 0.5,
                   seed: int = 0, rows=None, first_user: int = 0) -> list[SimulatedUser]:
    """Draw users whose likes come from one genre or two genres (half from each).

    Only one copy of each duplicated feature row can be liked. Parameters are counts and
    fractions; *seed* fixes the random draw. *rows* (boolean mask or indices) restricts the
    songs users may like, e.g. to one fold; users are numbered from *first_user*.
    """
    rng = np.random.default_rng(seed)
    meta = library.meta
    representative = library.duplicate_of == np.arange(len(library))
    if rows is not None:
        mask = np.zeros(len(library), dtype=bool)
        mask[np.asarray(rows)] = True
        representative &= mask
    labels = meta["genre"].to_numpy()
    by_genre = {g: np.flatnonzero(representative & (labels == g)) for g in sorted(set(labels) - {""})}
    by_genre = {g: rows_of for g, rows_of in by_genre.items() if len(rows_of) >= 2}  # a like to show, one to hold out
    genres = sorted(by_genre)
    if len(genres) < 2:
        raise ValueError("simulated users need a library (or rows) with at least two genres of two songs each")
    users = []
    for user in range(n_users):
        chosen = tuple(rng.choice(genres, size=2 if rng.random() < two_genre_share else 1, replace=False))
        shares = np.array_split(np.arange(n_likes), len(chosen))
        likes = np.concatenate([rng.choice(by_genre[g], size=min(len(part), len(by_genre[g])), replace=False)
                                for g, part in zip(chosen, shares, strict=True)])
        rng.shuffle(likes)
        n_seeds = max(1, int(round(seed_fraction * len(likes))))
        ids = meta["id"].to_numpy()
        users.append(SimulatedUser(first_user + user, tuple(str(g) for g in chosen), tuple(ids[likes[:n_seeds]]),
                                   tuple(ids[likes[n_seeds:]])))
    return users


def user_metrics(recommended_ids, user: SimulatedUser, library: Library) -> dict:
    """Precision/recall with the user's seed artists excluded from credit, and list diversity.

    ``in_user_genres`` is the share of the list inside the user's genres; ``in_user_genres_new_artists``
    the share inside them *and* by an artist the user has not shown (a song by an unknown artist
    counts as new), over the whole list, so own-artist songs earn no credit there either.
    """
    meta = library.meta.set_index("id")
    seed_artists = {normalize_artist(a) for a in meta.loc[list(user.seeds), "artist"] if a}

    def creditable(song_id) -> bool:
        artist = normalize_artist(meta.at[song_id, "artist"])
        return not artist or artist not in seed_artists

    held = {s for s in user.held_out if creditable(s)}
    recs = list(recommended_ids)
    hits = sum(1 for s in recs if s in held)
    rec_meta = meta.loc[recs] if recs else meta.iloc[:0]
    artists = [normalize_artist(a) for a in rec_meta["artist"]]
    in_genres = rec_meta["genre"].isin(user.genres).to_numpy()
    new_artist = np.array([not a or a not in seed_artists for a in artists], dtype=bool)
    return {
        "precision": hits / len(recs) if recs else np.nan,
        "recall": hits / len(held) if held else np.nan,
        "in_user_genres": float(in_genres.mean()) if recs else np.nan,
        "in_user_genres_new_artists": float((in_genres & new_artist).mean()) if recs else np.nan,
        "seed_artist_share": float(np.mean([a in seed_artists for a in artists if a])) if any(artists) else 0.0,
        "distinct_artists": len({a for a in artists if a}) + sum(1 for a in artists if not a),
        "distinct_genres": rec_meta["genre"].nunique(),
        "n_recommended": len(recs),
    }


class RandomRecommender:
    """Baseline: *k* songs drawn at random among those the recommender may recommend.

    Same exclusions as :meth:`Recommender.allowed_mask` (liked songs, their copies, other clips
    of the same song); the draw depends on *seed* and the liked songs, so it is reproducible.
    """

    name = "random"

    def __init__(self, library: Library, seed: int = 0):
        self.library = library
        self.seed = seed
        self._rules = Recommender(library, mmr_lambda=None, artist_cap=None)

    def _candidates(self, liked):
        rows = [self.library.index_of(s) for s in liked]
        return np.flatnonzero(self._rules.allowed_mask(rows)), rows

    def recommend(self, liked, k: int = 10, explain: bool = False) -> list[Recommendation]:
        candidates, rows = self._candidates(liked)
        rng = np.random.default_rng([self.seed, *sorted(rows)])
        picks = rng.choice(candidates, size=min(k, len(candidates)), replace=False)
        return self._as_recommendations(picks, "random draw among the allowed songs")

    def _as_recommendations(self, picks, reason: str) -> list[Recommendation]:
        meta = self.library._columns
        return [Recommendation(id=meta["id"][i], artist=meta["artist"][i], title=meta["title"][i],
                               genre=meta["genre"][i], score=0.0, reason=reason, space="none")
                for i in picks]


class PopularityRecommender(RandomRecommender):
    """Baseline: the songs liked most often by a panel of users, ties broken at random.

    Parameters
    ----------
    library : Library
    users : list of SimulatedUser
        The panel; only their *shown* likes (seeds) count, as a system would observe them.
    seed : int
        Tie-breaking draw.
    """

    name = "popularity"

    def __init__(self, library: Library, users, seed: int = 0):
        super().__init__(library, seed)
        counts = pd.Series([s for u in users for s in u.seeds]).value_counts()
        self.counts = np.zeros(len(library))
        for song_id, count in counts.items():
            self.counts[library.index_of(song_id)] = count
        self._tiebreak = np.random.default_rng(seed).random(len(library))

    def recommend(self, liked, k: int = 10, explain: bool = False) -> list[Recommendation]:
        candidates, _ = self._candidates(liked)
        order = np.lexsort((self._tiebreak[candidates], -self.counts[candidates]))
        return self._as_recommendations(candidates[order[:k]], "liked most often by the panel")


class GenreOracleRecommender(RandomRecommender):
    """Baseline: random songs of the liked songs' genres, by artists the user has not shown.

    Reads the genre labels of the library (which no audio recommender sees), so it knows the
    simulated users' taste exactly; a list is topped up with random other allowed songs when the
    liked genres hold fewer than *k* new-artist songs. Same exclusions as the recommender.
    """

    name = "genre oracle"

    def recommend(self, liked, k: int = 10, explain: bool = False) -> list[Recommendation]:
        candidates, rows = self._candidates(liked)
        meta = self.library.meta
        genres = set(meta["genre"].to_numpy()[rows]) - {""}
        shown = {normalize_artist(a) for a in meta["artist"].to_numpy()[rows] if a}
        artists = np.array([normalize_artist(a) for a in meta["artist"].to_numpy()[candidates]], dtype=object)
        in_taste = np.isin(meta["genre"].to_numpy()[candidates], list(genres)) & ~np.isin(artists, list(shown))
        rng = np.random.default_rng([self.seed, *sorted(rows)])
        first = rng.permutation(candidates[in_taste])
        rest = rng.permutation(candidates[~in_taste])
        picks = np.concatenate([first, rest])[:k]
        return self._as_recommendations(picks, "random song of a liked genre by a new artist")


def baselines(library: Library, users, seed: int = 0) -> dict:
    """The audio-free baselines of every table (:data:`BASELINES`): name -> recommender."""
    return {"random": RandomRecommender(library, seed), "popularity": PopularityRecommender(library, users, seed),
            "genre oracle": GenreOracleRecommender(library, seed)}


def gini(counts) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, near 1 = one item takes all)."""
    values = np.sort(np.asarray(counts, dtype=float))
    if values.sum() == 0:
        return 0.0
    n = len(values)
    cumulative = np.cumsum(values)
    return float((n + 1 - 2 * (cumulative / cumulative[-1]).sum()) / n)


def recommendation_counts(recommended_lists, catalogue_size: int) -> np.ndarray:
    """How often each catalogue song was recommended, zero for the songs never recommended.

    Parameters
    ----------
    recommended_lists : iterable of list
        The recommended ids of every list.
    catalogue_size : int
        Songs in the catalogue.

    Returns
    -------
    numpy.ndarray
        *catalogue_size* float counts, most recommended first, then the zeros; which song a
        count belongs to is not kept (the concentration measures need only the counts).
    """
    counts = pd.Series([s for recs in recommended_lists for s in recs]).value_counts()
    full = np.zeros(catalogue_size)
    full[:len(counts)] = counts.to_numpy()
    return full


def top1pct_share(counts) -> float:
    """Share of all *counts* taken by the top 1 % of items (at least one item); 0 when all are 0."""
    top = max(1, int(np.ceil(0.01 * len(counts))))
    total = counts.sum()
    return float(np.sort(counts)[::-1][:top].sum() / total) if total else 0.0


def catalogue_metrics(recommended_lists, catalogue_size: int) -> dict:
    """Coverage, Gini and top-1 % share of recommendation counts over a catalogue."""
    full = recommendation_counts(recommended_lists, catalogue_size)
    return {
        "coverage": int(np.count_nonzero(full)) / catalogue_size,  # songs recommended at least once
        "gini": gini(full),
        "top1pct_share": top1pct_share(full),
        "recommendations": int(full.sum()),
    }


def evaluate(library: Library, users, configs: dict, k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run each recommender configuration for every simulated user.

    Parameters
    ----------
    library : Library
    users : list of SimulatedUser
    configs : dict
        Name -> keyword arguments of :class:`~helpers.recommend.recommender.Recommender`, or a ready
        recommender (anything with ``recommend(liked, k=, explain=)``, e.g. a baseline).
    k : int
        List length.

    Returns
    -------
    per_user : pandas.DataFrame
        One row per (config, user) with :func:`user_metrics` columns, ``two_genres`` and
        ``recommended`` (the list of ids).
    catalogue : pandas.DataFrame
        One row per config with :func:`catalogue_metrics` columns.
    """
    rows, catalogue = [], []
    size = int((library.duplicate_of == np.arange(len(library))).sum())
    for name, kwargs in configs.items():
        recommender = Recommender(library, **kwargs) if isinstance(kwargs, dict) else kwargs
        lists = []
        for user in users:
            recs = [r.id for r in recommender.recommend(user.seeds, k=k, explain=False)]
            lists.append(recs)
            rows.append({"config": name, "user": user.user, "two_genres": len(user.genres) == 2,
                         **user_metrics(recs, user, library), "recommended": recs})
        catalogue.append({"config": name, **catalogue_metrics(lists, size)})
    return pd.DataFrame(rows), pd.DataFrame(catalogue).set_index("config")


#: Metrics of the summary tables, in display order.
METRICS = ("precision", "recall", "in_user_genres", "in_user_genres_new_artists",
           "seed_artist_share", "distinct_artists", "distinct_genres")


def summarise(per_user: pd.DataFrame, metrics=METRICS,
              by=("config",), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap 95 % interval over users of each metric, per group.

    Columns: the *by* keys, then per metric its mean, ``{metric}_low`` and ``{metric}_high``
    (numbers, for plots and verdicts) and ``{metric}_ci`` (the interval as text), and ``users``.
    """
    rows = []
    for keys, group in per_user.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys, strict=True))
        for metric in metrics:
            mean, low, high = mean_interval(group[metric], n_boot=n_boot, rng=seed)
            row[metric] = mean
            row[f"{metric}_low"], row[f"{metric}_high"] = low, high
            row[f"{metric}_ci"] = f"[{low:.3f}, {high:.3f}]"
        row["users"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)


def catalogue_intervals(per_user: pd.DataFrame, catalogue_size: int, panel_size: int | None = None,
                        n_draws: int = 200, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Catalogue metrics per config for random panels of users, with their spread.

    Coverage and concentration depend on how many users are pooled (more users reach more of
    the catalogue), and resampling users *with* replacement would shrink coverage. So panels of
    *panel_size* distinct users (default: half of them) are drawn without replacement
    *n_draws* times; the table gives the mean over panels and the central *level* interval.
    """
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    for name, group in per_user.groupby("config", sort=False):
        lists = group["recommended"].tolist()
        size = panel_size or max(1, len(lists) // 2)
        draws = [catalogue_metrics([lists[i] for i in rng.choice(len(lists), size, replace=False)], catalogue_size)
                 for _ in range(n_draws)]
        row = {"config": name, "panel_users": size}
        for metric in ("coverage", "gini", "top1pct_share"):
            values = [d[metric] for d in draws]
            row[metric] = float(np.mean(values))
            row[f"{metric}_low"], row[f"{metric}_high"] = np.quantile(values, alpha), np.quantile(values, 1 - alpha)
            row[f"{metric}_ci"] = f"[{row[f'{metric}_low']:.3f}, {row[f'{metric}_high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")


def long_table(summary: pd.DataFrame, metrics=METRICS, by: str = "config") -> pd.DataFrame:
    """One row per (metric, group): mean, 95 % interval and users, for reports.

    *summary* is a :func:`summarise` table.
    """
    rows = [{"metric": metric, by: row[by], "mean": round(row[metric], 4),
             "95% CI": row[f"{metric}_ci"], "n users": int(row["users"])}
            for metric in metrics for _, row in summary.iterrows()]
    return pd.DataFrame(rows)


def paired_gain(per_user: pd.DataFrame, metric: str, candidate: str, reference: str,
                n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean per-user difference *candidate* - *reference* of *metric* with a bootstrap interval.

    Both configurations must have been run on the same users (rows matched on ``user``).
    """
    wide = per_user.pivot_table(index="user", columns="config", values=metric, aggfunc="first")
    # users missing from either configuration give NaN differences, which mean_interval drops
    return mean_interval(wide[candidate] - wide[reference], n_boot, level, rng=seed)


def paired_gains(per_user: pd.DataFrame, candidates, reference: str, metrics=METRICS,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired per-user differences of each candidate against *reference*, as a compact table.

    One row per candidate, one column per metric holding ``"+0.012 [-0.003, +0.027]"`` (mean
    difference and bootstrap 95 % interval over the same users, :func:`paired_gain`); the
    numbers themselves are in ``{metric}_gain``, ``{metric}_low`` and ``{metric}_high``.
    """
    rows = []
    for name in candidates:
        row = {"config": name}
        for metric in metrics:
            gain, low, high = paired_gain(per_user, metric, name, reference, n_boot=n_boot, seed=seed)
            row[metric] = f"{gain:+.3f} [{low:+.3f}, {high:+.3f}]"
            row[f"{metric}_gain"], row[f"{metric}_low"], row[f"{metric}_high"] = gain, low, high
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")


#: Metrics where less is better (the rest: more is better).
LOWER_IS_BETTER = ("seed_artist_share",)


def standing(gains: pd.DataFrame, metrics) -> dict:
    """Where the reference of a :func:`paired_gains` table stands against each candidate.

    Returns
    -------
    dict
        Candidate -> ``{"ahead": [...], "behind": [...], "unclear": [...]}``: the metrics on which
        the *reference* is better than the candidate (the paired interval excludes 0 in its
        favour, with :data:`LOWER_IS_BETTER` metrics counted the other way), worse, or neither.
    """
    out = {}
    for name, row in gains.iterrows():
        verdict = {"ahead": [], "behind": [], "unclear": []}
        for metric in metrics:
            low, high = row[f"{metric}_low"], row[f"{metric}_high"]
            sign = -1 if metric in LOWER_IS_BETTER else 1
            # gains are candidate - reference: a candidate below zero (on a higher-is-better metric) trails
            if (high < 0 and sign > 0) or (low > 0 and sign < 0):
                verdict["ahead"].append(metric)
            elif (low > 0 and sign > 0) or (high < 0 and sign < 0):
                verdict["behind"].append(metric)
            else:
                verdict["unclear"].append(metric)
        out[name] = verdict
    return out


def compare_libraries(libraries: dict, *, n_users: int = 200, n_likes: int = 6, k: int = 10,
                      recommender: dict | None = None, seed: int = 0) -> tuple[pd.DataFrame, list]:
    """The same simulated users recommended for in libraries of the same songs in other spaces.

    Parameters
    ----------
    libraries : dict
        Name -> :class:`Library`; every library holds the same song ids (e.g.
        :func:`helpers.recommend.learned.learned_library` in each space). The first one draws
        the users and carries the baselines (:data:`BASELINES`).
    n_users, n_likes, k : int
    recommender : dict, optional
        Keyword arguments of :class:`Recommender` (default: its defaults, the shipped recipe).
    seed : int

    Returns
    -------
    per_user : pandas.DataFrame
        :func:`evaluate`'s rows for every space and baseline.
    users : list of SimulatedUser
    """
    first = next(iter(libraries.values()))
    ids = set(first.meta["id"])
    for name, library in libraries.items():
        if set(library.meta["id"]) != ids:
            raise ValueError(f"library {name!r} holds other songs than the first one")
    users = simulate_users(first, n_users=n_users, n_likes=n_likes, seed=seed)
    frames = []
    for name, library in libraries.items():
        per_user, _ = evaluate(library, users, {name: Recommender(library, **(recommender or {}))}, k=k)
        frames.append(per_user)
    per_user, _ = evaluate(first, users, baselines(first, users, seed=seed), k=k)
    frames.append(per_user)
    return pd.concat(frames, ignore_index=True), users


def artist_folds(library: Library, n_folds: int = 2, seed: int = 0) -> np.ndarray:
    """Fold number of every library row, grouped by artist (unknown artist: by clip).

    Exact duplicates follow their representative, so a song and its copy share a fold. Artists
    are dealt to folds largest first, each to the fold with the fewest rows so far (ties at
    random), which keeps the folds close in size.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    artists = library.meta["artist"].map(normalize_artist).to_numpy(dtype=object)
    groups = np.where(artists == "", library.meta["id"].to_numpy(dtype=object), artists)
    groups = groups[library.duplicate_of]
    sizes = pd.Series(groups).value_counts()
    rng = np.random.default_rng(seed)
    order = sizes.sample(frac=1.0, random_state=int(rng.integers(2**31))).sort_values(ascending=False, kind="stable")
    load = np.zeros(n_folds)
    fold_of = {}
    for group, size in order.items():
        fold = int(rng.choice(np.flatnonzero(load == load.min())))
        fold_of[group] = fold
        load[fold] += size
    return np.array([fold_of[g] for g in groups])


def compare_spaces(library: Library, spaces: dict, *, n_users: int = 200, n_likes: int = 20,
                   n_folds: int = 2, k: int = 10, recommender: dict | None = None,
                   include_baselines: bool = True, seed: int = 0) -> pd.DataFrame:
    """Evaluate similarity spaces (and the baselines) on the same simulated users, fold by fold.

    The library's rows are split into *n_folds* artist-grouped folds (:func:`artist_folds`).
    For each fold, ``n_users // n_folds`` users like songs of that fold only (seeds and held-out
    likes), and each space's genre projection is fitted on the labels of the *other* folds — so
    neither the shown nor the held-out songs' labels reach the space they are scored in. Every
    library song stays recommendable.

    Parameters
    ----------
    library : Library
    spaces : dict
        Name -> ``{"space": ..., "genre_weight": ...}`` (keyword arguments of
        :meth:`Library.in_space`).
    n_users, n_likes, k : int
        Users in all, likes per user, list length.
    n_folds : int
        Artist-grouped folds.
    recommender : dict, optional
        Keyword arguments of :class:`Recommender` shared by every space (default: its defaults).
    include_baselines : bool
        Add the random and popularity baselines (:data:`BASELINES`) on the same users.
    seed : int

    Returns
    -------
    pandas.DataFrame
        :func:`evaluate`'s per-user rows for every space and baseline, plus ``fold``.
    """
    folds = artist_folds(library, n_folds, seed=seed)
    per_fold = [n_users // n_folds + (1 if f < n_users % n_folds else 0) for f in range(n_folds)]
    frames = []
    for fold in range(n_folds):
        users = simulate_users(library, n_users=per_fold[fold], n_likes=n_likes, seed=seed + fold,
                               rows=np.flatnonzero(folds == fold), first_user=sum(per_fold[:fold]))
        configs = {}
        for name, options in spaces.items():
            options = {"genre_weight": DEFAULT_GENRE_WEIGHT, **options}
            spaced = library.in_space(options["space"], options["genre_weight"],
                                      genre_fit_rows=folds != fold)
            configs[name] = Recommender(spaced, **(recommender or {}))
        if include_baselines:
            configs.update(baselines(library, users, seed=seed))
        per_user, _ = evaluate(library, users, configs, k=k)
        frames.append(per_user.assign(fold=fold))
    return pd.concat(frames, ignore_index=True)


def choose_space(summary: pd.DataFrame, current: str, candidates, metric: str = "precision") -> tuple[str, str]:
    """Keep *current* unless a candidate's interval of *metric* lies wholly above current's.

    *summary* is a :func:`summarise` table (``config`` column). Returns the chosen name and a
    sentence saying why, with the intervals.
    """
    table = summary.set_index("config")
    ref = interval(table, current, metric)
    best = None
    for name in candidates:
        if interval(table, name, metric)[0] > ref[1] and (
                best is None or table.at[name, metric] > table.at[best, metric]):
            best = name
    describe = ", ".join(f"{name} {table.at[name, metric]:.3f} {table.at[name, f'{metric}_ci']}"
                         for name in [current, *candidates])
    if best is None:
        overlapping = [n for n in candidates if intervals_overlap(interval(table, n, metric), ref)]
        why = ("intervals overlap" if overlapping else "no candidate is higher")
        return current, f"kept {current}: no space's {metric} lies above the current one's interval ({why}; {describe})"
    return best, f"chose {best}: its {metric} interval lies above {current}'s ({describe})"


def k_occurrence_summary(counts, k: int) -> dict:
    """Hubness of a k-occurrence distribution (:meth:`Library.k_occurrence`).

    Returns the skewness of the counts (0 for a symmetric spread; hubness shows as a long right
    tail), the largest count as a multiple of *k*, the share of songs in no neighbour list
    (anti-hubs) and the share of all neighbour slots taken by the top 1 % of songs.
    """
    values = np.asarray(counts, dtype=float)
    values = values[values >= 0]
    std = values.std()
    return {
        "skewness": float(((values - values.mean()) ** 3).mean() / std ** 3) if std > 0 else 0.0,
        "max_over_k": float(values.max() / k),
        "antihub_share": float((values == 0).mean()),
        "top1pct_share": top1pct_share(values),
    }


def genre_counts(per_user: pd.DataFrame, users, library: Library) -> pd.DataFrame:
    """Per (config, user) of two-genre users: how many of the list fall in each liked genre.

    Columns: ``config``, ``user``, ``genre_a``, ``genre_b``, ``n_a``, ``n_b``, ``n_other``,
    ``balance`` (the smaller of ``n_a`` and ``n_b``: 0 when one liked genre is missing) and
    ``balance_new_artists`` (the same counting only songs by artists the user has not shown,
    which the recommender cannot get for free by repeating the user's artists).
    """
    genre_of = dict(zip(library.meta["id"], library.meta["genre"], strict=True))
    artist_of = dict(zip(library.meta["id"], library.meta["artist"].map(normalize_artist), strict=True))
    by_user = {u.user: u for u in users if len(u.genres) == 2}
    rows = []
    for row in per_user.itertuples(index=False):
        user = by_user.get(row.user)
        if user is None:
            continue
        genres = [genre_of[s] for s in row.recommended]
        n_a, n_b = genres.count(user.genres[0]), genres.count(user.genres[1])
        shown = {artist_of[s] for s in user.seeds if artist_of[s]}
        new = [genre_of[s] for s in row.recommended if not artist_of[s] or artist_of[s] not in shown]
        rows.append({"config": row.config, "user": row.user, "genre_a": user.genres[0],
                     "genre_b": user.genres[1], "n_a": n_a, "n_b": n_b,
                     "n_other": len(genres) - n_a - n_b, "balance": min(n_a, n_b),
                     "balance_new_artists": min(new.count(user.genres[0]), new.count(user.genres[1]))})
    return pd.DataFrame(rows)


def spreading_example(counts: pd.DataFrame, spread: str, reference: str,
                      metric: str = "balance_new_artists") -> int:
    """The two-genre user whose list under *spread* gains most *metric* over *reference*.

    *counts* is a :func:`genre_counts` table. Ties go to the lower user number. The example is
    chosen to make the effect visible; the averages over all users are what measure it. The
    default metric counts only new artists' songs, so the example's gain is not the user's own
    artists repeated.
    """
    wide = counts.pivot_table(index="user", columns="config", values=metric, aggfunc="first")
    gain = (wide[spread] - wide[reference]).sort_index()
    return int(gain.idxmax())


def compact_table(summary: pd.DataFrame, metrics=METRICS, by=("config",)) -> pd.DataFrame:
    """A :func:`summarise` table as text cells ``mean [low, high]``, one column per metric, plus n."""
    by = [by] if isinstance(by, str) else list(by)
    table = pd.DataFrame({metric: [f"{row[metric]:.3f} {row[f'{metric}_ci']}" for _, row in summary.iterrows()]
                          for metric in metrics}, index=pd.MultiIndex.from_frame(summary[by]) if len(by) > 1
                         else pd.Index(summary[by[0]], name=by[0]))
    table["n users"] = summary["users"].to_numpy()
    return table


def interval(table: pd.DataFrame, name: str, metric: str) -> tuple[float, float]:
    """The 95 % interval ``(low, high)`` of *metric* for *name* in a table indexed by config."""
    return float(table.at[name, f"{metric}_low"]), float(table.at[name, f"{metric}_high"])


def recommendations_table(recs) -> pd.DataFrame:
    """One row per recommendation: genre, artist, title, score, space and reason."""
    return pd.DataFrame([{"id": r.id, "genre": r.genre, "artist": r.artist, "title": r.title,
                          "score": r.score, "space": r.space, "reason": r.reason} for r in recs],
                        columns=["id", "genre", "artist", "title", "score", "space", "reason"])


def liked_audio_lists(library: Library, liked_sets: dict, spaces: dict, k: int = 10,
                      window_seconds: float = 30.0) -> tuple[pd.DataFrame, dict]:
    """Recommend for liked sets that mix library ids and audio files, in several spaces.

    Each audio file is summarised by one middle window and by the mean of all its windows
    (:func:`helpers.recommend.recommender.song_features`); every liked set is then recommended for in each
    space of *spaces* (name -> :meth:`Library.in_space` arguments) with the default recommender.

    Parameters
    ----------
    library : Library
    liked_sets : dict
        Name -> list of items: existing audio paths, or library ids.
    spaces : dict
    k : int
    window_seconds : float

    Returns
    -------
    table : pandas.DataFrame
        One row per (liked set, summary, space): ``windows`` (per file), ``genres of the list``
        (counts of the top *k* as text), ``genre_counts`` (the same as a dict), ``top_genre``, ``top_genre_count`` and
        ``mean_similarity`` (of each recommendation to its nearest liked song, in that space).
    lists : dict
        (liked set, summary, space) -> list of :class:`~helpers.recommend.recommender.Recommendation`.
    """

    libraries = {name: library.in_space(**options) for name, options in spaces.items()}
    cache: dict = {}

    def summary_of(path, middle):
        if (path, middle) not in cache:
            cache[(path, middle)] = song_features(path, window_seconds, middle_only=middle)
        return cache[(path, middle)]

    rows, lists = [], {}
    for liked_name, items in liked_sets.items():
        files = [str(i) for i in items if Path(i).is_file()]
        ids = [str(i) for i in items if not Path(i).is_file()]
        for summary, middle in (("middle 30 s", True), ("all windows", False)):
            if not files and middle:
                continue  # library songs have one summary
            features = [summary_of(f, middle) for f in files]
            external = pd.DataFrame([{"id": Path(f).name, "artist": "", "title": Path(f).stem, "genre": "", **row}
                                     for f, row in zip(files, features, strict=True)])
            for name, spaced in libraries.items():
                recs = Recommender(spaced).recommend(ids, external=external if files else None, k=k)
                lists[(liked_name, summary if files else "library clips", name)] = recs
                genres = pd.Series([r.genre for r in recs]).value_counts()
                rows.append({"liked": liked_name, "summary": summary if files else "library clips",
                             "space": name, "windows": ", ".join(str(row["windows"]) for row in features) or "-",
                             "genres of the list": ", ".join(f"{g} {n}" for g, n in genres.items()),
                             "genre_counts": {str(g): int(n) for g, n in genres.items()},
                             "top_genre": genres.index[0], "top_genre_count": int(genres.iloc[0]),
                             "mean_similarity": round(float(np.mean([r.near[0]["similarity"] for r in recs])), 3)})
    return pd.DataFrame(rows), lists


#: Name of the shipped recipe among :func:`recipe_configs`.
DEFAULT_RECIPE = "per-seed+CSLS+MMR0.7+cap2"


def recipe_configs() -> dict:
    """The recipe built up step by step, as :class:`Recommender` keyword arguments.

    ``centroid`` (the classic recipe), ``per-seed`` retrieval, ``+CSLS``, the shipped
    :data:`DEFAULT_RECIPE` (``+MMR0.7+cap2``) and the centroid with the same additions.
    """
    return {
        "centroid": dict(strategy="centroid", mmr_lambda=None, artist_cap=None, hub_penalty=0),
        "per-seed": dict(mmr_lambda=None, artist_cap=None, hub_penalty=0),
        "per-seed+CSLS": dict(mmr_lambda=None, artist_cap=None, hub_penalty=0.5),
        DEFAULT_RECIPE: dict(mmr_lambda=0.7, artist_cap=2, hub_penalty=0.5),
        "centroid+CSLS+MMR0.7+cap2": dict(strategy="centroid", mmr_lambda=0.7, artist_cap=2, hub_penalty=0.5),
    }


def neighbour_genre_agreement(libraries: dict, groups, rows=None) -> dict:
    """Per library, the genre of each song's nearest song by *another* artist group.

    Parameters
    ----------
    libraries : dict
        Name -> :class:`Library` of the same songs in the same order.
    groups : array-like
        Artist group of each song (songs of one group are never each other's neighbour).
    rows : array-like of bool, optional
        Songs to answer for (e.g. those whose genre has a second artist); default all.

    Returns
    -------
    dict
        Name -> array of the neighbour's genre for each chosen song, ready for
        :func:`helpers.evaluation.learned.compare_predictions` against the songs' own genres.
    """
    groups = np.asarray(groups, dtype=object)
    rows = np.ones(len(groups), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    out = {}
    for name, library in libraries.items():
        sims = library.embedding[rows] @ library.embedding.T
        sims[groups[rows][:, None] == groups[None, :]] = -np.inf
        out[name] = library.meta["genre"].to_numpy()[sims.argmax(axis=1)]
    return out


#: How :func:`recipe_argument` names each metric.
ARGUMENT_WORDS = {"precision": "precision", "recall": "recall", "in_user_genres": "taste",
                  "in_user_genres_new_artists": "new-artist taste",
                  "seed_artist_share": "own-artist share (lower counts as ahead)",
                  "distinct_artists": "distinct artists", "distinct_genres": "distinct genres"}


def recipe_argument(per_user: pd.DataFrame, reference: str, alternatives, metrics, n_boot: int = 1000,
                    seed: int = 0) -> str:
    """One sentence: on which metrics *reference* is ahead of or behind each alternative.

    Built from :func:`paired_gains` and :func:`standing` (paired per-user differences with
    bootstrap 95 % intervals), so the argument for a default recipe comes from the statistic.
    """
    gains = paired_gains(per_user, alternatives, reference, metrics=metrics, n_boot=n_boot, seed=seed)

    def listed(names):
        return ", ".join(ARGUMENT_WORDS.get(m, m) for m in names) or "nothing"

    return "; ".join(f"against {name} the {reference} recipe is ahead on {listed(v['ahead'])}, "
                     f"behind on {listed(v['behind'])}" for name, v in standing(gains, metrics).items())

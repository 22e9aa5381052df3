"""Offline evaluation of recommenders with simulated users.

A simulated user likes songs drawn from one or two genres of a library; half of the likes are
shown to the recommender (seeds), the other half are held out to be recovered. Because GTZAN
repeats artists heavily (35 reggae clips are Bob Marley), recommending the seeds' own artists is
easy and says little: a recommended song whose artist is among the user's seed artists earns no
credit, and held-out songs by those artists are left out of recall's denominator.

Catalogue-level measures show whether a few "hub" songs take most recommendations: coverage
(share of the catalogue recommended to anyone), the Gini coefficient of recommendation counts
and the share of all recommendations taken by the top 1 % of songs.

Examples
--------
>>> from helpers.recommend import Library
>>> library = Library.gtzan()
>>> users = simulate_users(library, n_users=20, seed=0)
>>> per_user, catalogue = evaluate(library, users, {"mmr": {"mmr_lambda": 0.7}}, k=10)
>>> sorted(catalogue.columns)[:3]
['coverage', 'gini', 'recommendations']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.liked import normalize_artist
from helpers.recommend import Library, Recommender
from helpers.stats import bootstrap_mean_interval


@dataclass(frozen=True)
class SimulatedUser:
    """Liked songs shown to the recommender (``seeds``) and held out (``held_out``), as ids."""

    user: int
    genres: tuple
    seeds: tuple
    held_out: tuple


def simulate_users(library: Library, n_users: int = 200, n_likes: int = 20,
                   two_genre_share: float = 0.5, seed_fraction: float = 0.5,
                   seed: int = 0) -> list[SimulatedUser]:
    """Draw users whose likes come from one genre or two genres (half from each).

    Only one copy of each duplicated feature row can be liked. Parameters are counts and
    fractions; *seed* fixes the random draw.
    """
    rng = np.random.default_rng(seed)
    meta = library.meta
    representative = library.duplicate_of == np.arange(len(library))
    genres = sorted(g for g in meta["genre"].unique() if g)
    if len(genres) < 2:
        raise ValueError("simulated users need a library with at least two genres")
    by_genre = {g: np.flatnonzero(representative & (meta["genre"].to_numpy() == g)) for g in genres}
    users = []
    for user in range(n_users):
        chosen = tuple(rng.choice(genres, size=2 if rng.random() < two_genre_share else 1, replace=False))
        shares = np.array_split(np.arange(n_likes), len(chosen))
        likes = np.concatenate([rng.choice(by_genre[g], size=min(len(part), len(by_genre[g])), replace=False)
                                for g, part in zip(chosen, shares, strict=True)])
        rng.shuffle(likes)
        n_seeds = max(1, int(round(seed_fraction * len(likes))))
        ids = meta["id"].to_numpy()
        users.append(SimulatedUser(user, tuple(str(g) for g in chosen), tuple(ids[likes[:n_seeds]]),
                                   tuple(ids[likes[n_seeds:]])))
    return users


def user_metrics(recommended_ids, user: SimulatedUser, library: Library) -> dict:
    """Precision/recall with the user's seed artists excluded from credit, and list diversity."""
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
    return {
        "precision": hits / len(recs) if recs else np.nan,
        "recall": hits / len(held) if held else np.nan,
        "in_user_genres": float(rec_meta["genre"].isin(user.genres).mean()) if recs else np.nan,
        "seed_artist_share": float(np.mean([a in seed_artists for a in artists if a])) if any(artists) else 0.0,
        "distinct_artists": len({a for a in artists if a}) + sum(1 for a in artists if not a),
        "distinct_genres": rec_meta["genre"].nunique(),
        "n_recommended": len(recs),
    }


def gini(counts) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, near 1 = one item takes all)."""
    values = np.sort(np.asarray(counts, dtype=float))
    if values.sum() == 0:
        return 0.0
    n = len(values)
    cumulative = np.cumsum(values)
    return float((n + 1 - 2 * (cumulative / cumulative[-1]).sum()) / n)


def catalogue_metrics(recommended_lists, catalogue_size: int) -> dict:
    """Coverage, Gini and top-1 % share of recommendation counts over a catalogue."""
    counts = pd.Series([s for recs in recommended_lists for s in recs]).value_counts()
    full = np.zeros(catalogue_size)
    full[:len(counts)] = counts.to_numpy()
    top = max(1, int(np.ceil(0.01 * catalogue_size)))
    total = full.sum()
    return {
        "coverage": len(counts) / catalogue_size,
        "gini": gini(full),
        "top1pct_share": float(np.sort(full)[::-1][:top].sum() / total) if total else 0.0,
        "recommendations": int(total),
    }


def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of *values* (NaN ignored) with a percentile bootstrap interval over them."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    return (float(values.mean()), *bootstrap_mean_interval(values, n_boot, level, rng=seed))


def evaluate(library: Library, users, configs: dict, k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run each recommender configuration for every simulated user.

    Parameters
    ----------
    library : Library
    users : list of SimulatedUser
    configs : dict
        Name -> keyword arguments of :class:`~helpers.recommend.Recommender`.
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
        recommender = Recommender(library, **kwargs)
        lists = []
        for user in users:
            recs = [r.id for r in recommender.recommend(user.seeds, k=k, explain=False)]
            lists.append(recs)
            rows.append({"config": name, "user": user.user, "two_genres": len(user.genres) == 2,
                         **user_metrics(recs, user, library), "recommended": recs})
        catalogue.append({"config": name, **catalogue_metrics(lists, size)})
    return pd.DataFrame(rows), pd.DataFrame(catalogue).set_index("config")


def summarise(per_user: pd.DataFrame, metrics=("precision", "recall", "in_user_genres",
                                                "distinct_artists", "distinct_genres"),
              by=("config",), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap 95 % interval over users of each metric, per group."""
    rows = []
    for keys, group in per_user.groupby(list(by)):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys, strict=True))
        for metric in metrics:
            mean, low, high = bootstrap_ci(group[metric], n_boot=n_boot, seed=seed)
            row[metric] = mean
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
            row[f"{metric}_ci"] = f"[{np.quantile(values, alpha):.3f}, {np.quantile(values, 1 - alpha):.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")

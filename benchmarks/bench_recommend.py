"""Time top-10 recommendations with MMR on a 100 000-song synthetic library, one core.

The library has the GTZAN table's 58 feature columns plus id/artist/title/genre: each row is a
random GTZAN clip jittered by 30 % of each column's spread (so genres keep their structure), with
20 000 artists. Each query likes 10 random songs. The baseline, run in the same process on the
same queries, is the textbook implementation of the same recipe: a full sort of the library per
liked song and MMR written as Python loops over the candidate pool. Both must return the same
songs; the script checks that before printing the ratio. The library uses the default similarity
space (:data:`helpers.recommend.recommender.DEFAULT_SPACE`) and the baseline ranks by cosine minus half of
each song's local density, as the recommender's CSLS correction does.

Run: ``PYTHONPATH=src python benchmarks/bench_recommend.py [--songs 100000] [--queries 200]``
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from helpers.data import load_gtzan_table  # noqa: E402
from helpers.features import FEATURE_COLUMNS  # noqa: E402
from helpers.recommend.recommender import SPACES, Library, Recommender  # noqa: E402


def synthetic_table(n_songs: int, n_artists: int = 20000, seed: int = 0) -> pd.DataFrame:
    """GTZAN-like rows: random clips jittered by 30 % of each column's standard deviation."""
    rng = np.random.default_rng(seed)
    gtzan = load_gtzan_table()
    base = gtzan[list(FEATURE_COLUMNS)].to_numpy(dtype=float)
    picks = rng.integers(0, len(base), n_songs)
    values = base[picks] + rng.normal(size=(n_songs, base.shape[1])) * 0.3 * base.std(axis=0)
    nonneg = base.min(axis=0) >= 0
    values[:, nonneg] = np.abs(values[:, nonneg])
    table = pd.DataFrame(values, columns=list(FEATURE_COLUMNS))
    table.insert(0, "id", [f"song{i:06d}" for i in range(n_songs)])
    table["artist"] = [f"artist {a}" for a in rng.integers(0, n_artists, n_songs)]
    table["title"] = [f"title {i}" for i in range(n_songs)]
    table["genre"] = gtzan["label"].to_numpy()[picks]
    return table


def baseline_recommend(recommender: Recommender, liked_ids, k: int) -> list[str]:
    """Same recipe, written the textbook way: full sorts and Python-loop MMR."""
    lib = recommender.library
    rows = [lib.index_of(s) for s in liked_ids]
    allowed = recommender.allowed_mask(rows)
    emb = lib.embedding
    fused: dict[int, float] = {}
    for row in rows:
        sims = emb @ emb[row] - recommender.hub_penalty * lib.local_density
        ranked = [int(i) for i in np.argsort(-sims, kind="stable") if allowed[i]][:recommender.per_seed]
        for rank, item in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (recommender.rrf_k + rank)
    pool = list(fused)
    low, high = min(fused.values()), max(fused.values())
    relevance = {i: (fused[i] - low) / (high - low) if high > low else 1.0 for i in pool}
    lam, cap = recommender.mmr_lambda, recommender.artist_cap
    artists = lib.meta["artist"].to_numpy()
    chosen: list[int] = []
    per_artist: dict[str, int] = {}
    while len(chosen) < k:
        best, best_score = None, -np.inf
        for item in pool:
            if item in chosen or per_artist.get(artists[item], 0) >= cap:
                continue
            redundancy = max((float(np.dot(emb[item], emb[j])) for j in chosen), default=0.0)
            score = lam * relevance[item] - (1 - lam) * redundancy
            if score > best_score:
                best, best_score = item, score
        if best is None:
            break
        chosen.append(best)
        per_artist[artists[best]] = per_artist.get(artists[best], 0) + 1
    return [lib.meta["id"].iloc[i] for i in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--baseline-queries", type=int, default=20)
    parser.add_argument("--liked", type=int, default=10, help="liked songs per query")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()

    with threadpool_limits(1):
        start = time.perf_counter()
        table = synthetic_table(args.songs)
        made = time.perf_counter() - start
        start = time.perf_counter()
        library = Library(table)
        built = time.perf_counter() - start
        recommender = Recommender(library, mmr_lambda=0.7, artist_cap=2)
        rng = np.random.default_rng(1)
        queries = [list(table["id"].to_numpy()[rng.choice(len(table), args.liked, replace=False)])
                   for _ in range(args.queries)]
        recommender.recommend(queries[0], k=args.k)  # warm-up

        timings = []
        for liked in queries:
            start = time.perf_counter()
            recommender.recommend(liked, k=args.k)
            timings.append(time.perf_counter() - start)

        base_timings, agree = [], 0
        for liked in queries[:args.baseline_queries]:
            start = time.perf_counter()
            expected = baseline_recommend(recommender, liked, args.k)
            base_timings.append(time.perf_counter() - start)
            got = [r.id for r in recommender.recommend(liked, k=args.k, explain=False)]
            agree += got == expected

    ms = [t * 1000 for t in timings]
    base_ms = [t * 1000 for t in base_timings]
    fast_mean_same = statistics.mean(ms[:args.baseline_queries])
    print(f"library: {args.songs} songs x {len(library.feature_columns)} features, "
          f"{library.meta['artist'].nunique()} artists (synthesised in {made:.1f} s, "
          f"conditioned + indexed in {built:.2f} s); similarity space: {SPACES[library.space]}")
    print(f"query: {args.liked} liked songs -> top-{args.k}, per-seed retrieval (50 each) + RRF + "
          f"MMR lambda 0.7 + artist cap 2 + reasons; 1 BLAS thread")
    print(f"recommend: {len(ms)} queries, mean {statistics.mean(ms):.1f} ms, median "
          f"{statistics.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms per query")
    print(f"baseline (full sort per liked song + Python-loop MMR): {len(base_ms)} queries, mean "
          f"{statistics.mean(base_ms):.1f} ms per query")
    print(f"same recommendations as baseline: {agree}/{len(base_ms)} queries")
    print(f"speed-up vs baseline on the same queries: {statistics.mean(base_ms) / fast_mean_same:.1f}x")
    print(f"target < 50 ms per query: {'met' if statistics.median(ms) < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()

"""``music-study recommend --liked ID...``: ranked, diverse, explained recommendations.

Examples
--------
>>> from helpers.cli import main
>>> main(["recommend", "--liked", "blues.00000", "jazz.00010.wav", "-k", "5"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.errors import InputError
from helpers.recommend.liked import LikedList, liked_from_items, read_liked_file
from helpers.recommend.recommender import (
    Library,
    Recommender,
    read_lyrics_table,
    resolve_liked,
    store_preferences,
)
from helpers.store import LabelStore


def run(args) -> int:
    """``music-study recommend``: print recommendations for liked ids, paths or a liked list."""
    lyrics, weight = None, 0.0
    if getattr(args, "lyrics", None):
        lyrics, weight = read_lyrics_table(args.lyrics), getattr(args, "lyrics_weight", 0.3)
    options = {"lyrics": lyrics, "lyrics_weight": weight}
    if getattr(args, "space", None):
        options["space"] = args.space
    disliked = list(getattr(args, "dislike", None) or [])
    store_liked: list[str] = []
    if getattr(args, "store", None):
        store_path = Path(args.store)
        if not store_path.is_file():
            raise InputError(store_path, "label store does not exist")
        with LabelStore(store_path) as store:
            library = Library.from_store(store, **options)
            store_liked, store_disliked = store_preferences(store)
        disliked += store_disliked
    elif getattr(args, "library", None):
        library = Library.from_csv(args.library, **options)
    else:
        library = Library.gtzan(**options)
    entries = LikedList(source="command line")
    entries.songs.extend(liked_from_items(list(args.liked or []) + store_liked))
    if args.liked_file:
        entries.songs.extend(read_liked_file(args.liked_file).songs)
    if not entries.songs:
        raise InputError("--liked", "give at least one liked song id, audio path or --liked-file "
                                    "(or --store with liked songs)")
    seeds = resolve_liked(entries, library, fetch_limit=getattr(args, "fetch_limit", 0))
    used = seeds.report["how"].isin(["title match", "id", "audio features", "downloaded, audio features"])
    unmatched = seeds.report[~used]
    for failure in seeds.report.loc[seeds.report["how"].str.startswith("failed"), ["entry", "how"]].itertuples():
        print(f"music-study recommend: skipped {failure.entry}: {failure.how}", file=sys.stderr)
    if not len(seeds):
        where = args.liked_file or " ".join(args.liked)
        raise InputError(where, f"none of the {len(entries)} liked songs is in the library of "
                                f"{len(library)} songs; add their audio to a library with "
                                "`music-study extract` and pass it with --library")
    recommender = Recommender(library, mmr_lambda=getattr(args, "mmr_lambda", 0.7),
                              artist_cap=getattr(args, "artist_cap", 2) or None,  # 0: no cap
                              strategy=getattr(args, "strategy", "per-seed"))
    recs = recommender.recommend(seeds, disliked=disliked, k=args.k)
    print(f"{len(seeds)} liked songs used ({len(unmatched)} not in the library of {len(library)} "
          f"songs)", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in recs], ensure_ascii=False))
        return 0
    for rank, rec in enumerate(recs, start=1):
        label = f"{rec.artist} – {rec.title}" if rec.artist else rec.id
        where = f"{rec.id}, {rec.genre}" if rec.genre else rec.id
        print(f"{rank:>2}. {label} [{where}] score {rec.score:.2f}\n    {rec.reason}")
    return 0

"""``music-study recommend --liked ID...``: ranked, diverse, explained recommendations.

Examples
--------
>>> from helpers.cli import main
>>> main(["recommend", "--liked", "blues.00000", "jazz.00010.wav", "-k", "5"])  # doctest: +SKIP
0
>>> main(["recommend", "--folder", "~/Music", "--liked", "song.ogg"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from helpers.errors import InputError
from helpers.features.batch import find_audio_files
from helpers.features.learned import tag_songs
from helpers.recommend.learned import learned_library
from helpers.recommend.liked import LikedList, LikedSong, liked_from_items, read_liked_file
from helpers.recommend.recommender import (
    Library,
    Recommender,
    check_space,
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
    elif getattr(args, "folder", None):
        if lyrics is not None:
            raise InputError("--lyrics", "a --folder library takes no lyrics table")
        library = folder_library(args.folder, getattr(args, "space", None))
    elif getattr(args, "library", None):
        library = Library.from_csv(args.library, audio_folder=getattr(args, "audio", None), **options)
    else:
        library = Library.gtzan(**options)
    entries = LikedList(source="command line")
    entries.songs.extend(liked_from_items(list(args.liked or []) + store_liked))
    if getattr(args, "folder", None):
        entries.songs[:] = [_as_library_song(song, args.folder, library) for song in entries.songs]
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


#: Spaces of a library built from a folder of audio (:func:`folder_library`).
FOLDER_SPACES = ("embedding", "tags")


def folder_library(folder, space: str | None = None) -> Library:
    """A library of every audio file under *folder*, described by musicnn (cached per file).

    Files musicnn cannot describe (missing, corrupt, silent, too short) are listed on stderr
    with their reason and left out. Ids are the files' paths relative to *folder*; a file in a
    sub-folder takes the sub-folder's name as its genre.

    Raises
    ------
    InputError
        Not a folder, a space other than :data:`FOLDER_SPACES`, or fewer than two usable files.
    """
    folder = Path(folder).expanduser()
    check_space(space, FOLDER_SPACES, folder, "a library of your audio files")
    if not folder.is_dir():
        raise InputError(folder, "not a folder of audio files")
    found = find_audio_files([folder])
    labels = {path: label for path, label in found}
    good, bad = tag_songs([path for path, _ in found])
    for path, reason in bad:
        print(f"music-study recommend: skipped {path}: {reason}", file=sys.stderr)
    if len(good) < 2:
        raise InputError(folder, f"fewer than two usable audio files ({len(bad)} skipped)")
    clips = pd.DataFrame({"id": [p.relative_to(folder).as_posix() for p in good],
                          "path": [str(p) for p in good], "genre": [labels[p] or "" for p in good],
                          "artist": "", "title": [p.stem for p in good]})
    return learned_library(clips, space or "embedding")


def _as_library_song(song: LikedSong, folder, library: Library) -> LikedSong:
    """A liked audio file that lies in the library's folder is that library song (so it is
    never recommended back); any other entry stays as it is."""
    if song.kind != "path":
        return song
    try:
        key = Path(song.ref).resolve().relative_to(Path(folder).expanduser().resolve()).as_posix()
    except ValueError:
        return song
    return LikedSong(None, kind="id", ref=key) if key in set(library.meta["id"]) else song

"""``music-study tags FILE_OR_URL``: a song's musicnn tags, for the whole song and over time.

The song's score of a tag is the mean of its 3-s patches' scores (musicnn's own song-level
reading); the tags over time are given per patch (3 s each, one after the other, the
resolution the network works at), so nothing is averaged away. ``--vocabulary`` chooses the
tags: ``mtt`` (MagnaTagATune: instruments, moods, ``techno``, ``no vocals``), ``msd`` (last.fm
tags of the Million Song Dataset: genres and decades) or ``both``.

Start-up time matters (a fresh process per song): the networks' code loads only once the
file has passed its checks.

Examples
--------
>>> from helpers.cli import main
>>> main(["tags", "data/music/singularity_coherence.ogg", "--top", "3"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys

from helpers.audio.ingest import fetch_audio, is_url
from helpers.errors import InputError
from helpers.features import musicnn

#: Tags per patch in the text timeline (the JSON gives ``--top`` per patch).
TIMELINE_TAGS = 3


def song_document(result, top: int = 10, per_patch: int | None = None) -> dict:
    """The JSON document of :func:`helpers.features.musicnn.song_tags`' *result*.

    Parameters
    ----------
    result : helpers.features.musicnn.SongTags
    top : int
        Tags per vocabulary for the song.
    per_patch : int, optional
        Tags per vocabulary in each patch of the timeline (default *top*).

    Returns
    -------
    dict
        ``duration`` (s), ``patch_seconds``, ``tags`` (vocabulary -> list of ``{tag, score}``,
        best first, the mean over patches) and ``timeline`` (one entry per patch: ``start``,
        ``end`` and its tags per vocabulary).
    """
    first = result.patch_times[0]
    return {"duration": round(result.seconds, 3),
            "patch_seconds": round(float(first[1] - first[0]), 3),
            "tags": result.tag_document(top),
            "timeline": result.timeline_document(top if per_patch is None else per_patch)}


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _line(entries) -> str:
    return ", ".join(f"{entry['tag']} {entry['score']:.2f}" for entry in entries)


def format_tags(document: dict, title: str) -> str:
    """The text report of :func:`song_document`: the song's tags, then one line per patch."""
    lines = [f"{title}: {_clock(document['duration'])} min, {len(document['timeline'])} patches "
             f"of {document['patch_seconds']:g} s"]
    for name, entries in document["tags"].items():
        lines.append(f"{name} tags (mean over the song): {_line(entries)}")
    lines.append(f"tags over time (top {TIMELINE_TAGS} of each patch):")
    for entry in document["timeline"]:
        parts = "  |  ".join(f"{name} {_line(entry[name][:TIMELINE_TAGS])}"
                             for name in document["tags"])
        lines.append(f"  {_clock(entry['start'])}-{_clock(entry['end'])}  {parts}")
    return "\n".join(lines)


def run(args) -> int:
    """``music-study tags FILE_OR_URL [--vocabulary mtt|msd|both] [--top N] [--json]``."""
    if args.top < 1:
        raise InputError(f"--top {args.top}", "use a positive number of tags")
    if is_url(args.source) and sys.stderr.isatty():  # scripts get exactly one line
        print(f"fetching {args.source} ...", file=sys.stderr)
    ingested = fetch_audio(args.source)
    result = musicnn.song_tags(ingested.path, musicnn.VOCABULARIES[args.vocabulary],
                               source=args.source)
    if args.json:
        document = song_document(result, args.top)
        document = {"source": str(args.source), "title": ingested.title,
                    "artist": ingested.artist, "source_url": ingested.source_url,
                    "path": str(ingested.path), **document}
        print(json.dumps(document))
    else:
        document = song_document(result, args.top, per_patch=TIMELINE_TAGS)
        print(format_tags(document, ingested.title or str(args.source)))
    return 0

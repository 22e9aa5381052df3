"""``music-study lyrics ARTIST TITLE``: fetch, validate and analyse a song's lyrics.

Examples
--------
>>> from helpers.cli import main
>>> main(["lyrics", "Stephen Foster", "Beautiful Dreamer", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import json
import sys

from helpers.errors import InputError
from helpers.lyrics import analysis
from helpers.lyrics.fetch import RetryPolicy, fetch_lyrics


def run(args) -> int:
    """``music-study lyrics ARTIST TITLE [--provider P] [--refresh] [--timeout S] [--retries N] [--json]``.

    Prints the cleaned lyrics (or with ``--json`` one document holding the result and a short
    analysis: word and line counts, top terms, line-by-line sentiment). Exit status 0 when
    found, 1 when not found (reasons on stderr), 2 when a provider failed or input is bad.
    """
    providers = [args.provider] if getattr(args, "provider", None) else None
    timeout, retries = getattr(args, "timeout", 10.0), getattr(args, "retries", 3)
    if timeout <= 0 or retries < 0:
        raise InputError("--timeout/--retries", "timeout must be > 0 and retries >= 0")
    result = fetch_lyrics(args.artist, args.title, providers=providers,
                          refresh=getattr(args, "refresh", False),
                          policy=RetryPolicy(timeout=timeout, retries=retries))
    if result.status == "error":
        raise InputError(f"{args.artist} - {args.title}", "; ".join(result.reasons))
    document = result.to_dict()
    if result.found:
        document["analysis"] = analysis.song_report(result.lyrics)
    if getattr(args, "json", False):
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif result.found:
        source = "cache" if result.cached else result.provider
        print(f"{result.matched_artist} - {result.matched_title} ({source}: {result.url})")
        print()
        print(result.lyrics)
    if not result.found:
        why = "; ".join(result.reasons) or "no provider answered"
        print(f"music-study lyrics: not found: {args.artist} - {args.title}: {why}", file=sys.stderr)
        return 1
    return 0

"""``music-study extract PATH... -o table.csv``: the feature table of files and folders.

Examples
--------
>>> from helpers.cli import main
>>> main(["extract", "data/music", "-o", "table.csv", "--segment-seconds", "3"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import sys

from helpers.audio.windows import check_window_seconds
from helpers.errors import InputError
from helpers.features.batch import TRUNCATED_COLUMN, Failure, extract_table, write_table


def run(args) -> int:
    """``music-study extract``: write the feature table; list failures on stderr.

    Exit status 0 when every file worked, 1 when some failed (the others are written), 2 (an
    :class:`InputError`) when none did.
    """
    segment_seconds = args.segment_seconds
    if segment_seconds is not None:  # checked here to name the option the user typed
        segment_seconds = check_window_seconds("--segment-seconds", segment_seconds)
    result = extract_table(
        args.paths, segment_seconds=segment_seconds, feature_set=args.feature_set,
        jobs=args.jobs, cache=not args.no_cache, scheduler=args.scheduler,
        duration=getattr(args, "duration", None), progress=sys.stderr.isatty(),
        allow_truncated=getattr(args, "allow_truncated", False),
    )
    if result.table.empty:
        first = result.failures[0] if result.failures else Failure(", ".join(args.paths), "?")
        more = f" (and {len(result.failures) - 1} more failed)" if len(result.failures) > 1 else ""
        raise InputError(first.path, first.reason + more)
    output = write_table(result.table, args.output)
    print(f"wrote {len(result.table)} rows from {result.files - len(result.failures)} of "
          f"{result.files} files to {output} ({result.cached} from cache)", file=sys.stderr)
    if TRUNCATED_COLUMN in result.table:
        kept = result.table.loc[result.table[TRUNCATED_COLUMN].astype(bool), "filename"]
        for name in kept:
            print(f"kept truncated: {name} (marked in the {TRUNCATED_COLUMN!r} column)",
                  file=sys.stderr)
    for failure in result.failures:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    return 1 if result.failures else 0

"""``music-study report``: run every notebook headless into ``reports/`` (HTML and an index).

Examples
--------
>>> from helpers.cli import main
>>> main(["report", "--quick", "--only", "01"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.paths import reports_dir
from helpers.reports.runner import run_reports


def run(args) -> int:
    """``music-study report``: exit 0 when every notebook ran, 1 otherwise."""
    runs = run_reports(quick=args.quick, only=args.only, output_dir=args.output_dir,
                       no_input=getattr(args, "no_input", False), jobs=getattr(args, "jobs", 1))
    failed = [r.name for r in runs if r.status != "ok"]
    where = Path(args.output_dir) if args.output_dir else reports_dir()
    print(f"reports written to {where / 'index.html'}; {len(runs) - len(failed)} ok, {len(failed)} failed",
          file=sys.stderr)
    return 1 if failed else 0

"""``python -m helpers.features --warm-cache``: compile and cache the numba kernels once, at
install time (``make`` runs it), so no command pays for the compilation.
"""

from __future__ import annotations

import argparse
import os
import time

from helpers.features.gtzan import warm_cache


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.features",
                                     description="Feature extraction utilities.")
    parser.add_argument("--warm-cache", action="store_true",
                        help="compile and cache the numba kernels (run once after installing)")
    args = parser.parse_args(argv)
    if not args.warm_cache:
        parser.print_help()
        return 0
    start = time.perf_counter()
    warm_cache()
    where = os.environ.get("NUMBA_CACHE_DIR") or "numba's cache next to the modules"
    print(f"numba kernels compiled and cached in {time.perf_counter() - start:.1f} s ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

"""The ``music-study`` command line (also ``python -m helpers``).

Each sub-command parses its arguments here and hands them to ``run(args)`` of its module in
:mod:`helpers.commands`, imported only when that command runs (so ``--help`` is instant). Bad input ends
with exit status 2 and one line on stderr naming the input and the reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from helpers import __version__
from helpers.errors import InputError

#: sub-command -> (module, function) that runs it; the function takes the parsed args and
#: returns an exit status.
HANDLERS = {
    "extract": ("helpers.commands.extract", "run"),
    "evaluate": ("helpers.commands.evaluate", "run"),
    "predict": ("helpers.commands.predict", "run"),
    "tags": ("helpers.commands.tags", "run"),
    "recommend": ("helpers.commands.recommend", "run"),
    "lyrics": ("helpers.commands.lyrics", "run"),
    "serve": ("helpers.commands.serve", "run"),
    "report": ("helpers.commands.report", "run"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="music-study",
        description="Genre classification, labelling, lyrics and recommendations over audio features.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # --- extract (feature extraction engine)
    p = sub.add_parser("extract", help="extract features (GTZAN-table or learned) from audio files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    # no type=: the one window-length check gives its one-line sentence (argparse prints two)
    p.add_argument("--segment-seconds", default=None, metavar="S",
                   help="cut each file into segments of S seconds, 3-600 (e.g. 3; a trailing "
                        "partial segment shorter than min(10 s, S) is dropped); default one row "
                        "per file, described whole")
    p.add_argument("--duration", type=float, default=None,
                   help="read only the first DURATION seconds of each file (default: all)")
    p.add_argument("--features", "--feature-set", dest="feature_set", default="gtzan",
                   metavar="NAME",
                   help="feature set: gtzan (the 58 GTZAN-table columns, default), extended, "
                        "musicnn (learned embedding, 200 columns) or gtzan+musicnn")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address for cluster runs")
    p.add_argument("--no-cache", action="store_true", help="recompute even cached files")
    p.add_argument("--allow-truncated", action="store_true",
                   help="keep what truncated files hold (rows marked in a 'truncated' column) "
                        "instead of listing them as failures")

    # --- evaluate (genre models)
    p = sub.add_parser("evaluate", help="evaluate genre models on a published split, or on your songs")
    p.add_argument("--split", choices=["stratified", "fault-filtered"], default="fault-filtered")
    p.add_argument("--model", default=None,
                   help="model name, or 'all' (default knn); with --songs a model name or file "
                        "(default: the default model)")
    p.add_argument("--songs", default=None, metavar="SOURCE",
                   help="score whole songs instead: a label store (its labelled songs) or a "
                        "CSV with columns path,genre")
    p.add_argument("--features", default=None, metavar="NAME",
                   help="feature set: gtzan (default) or musicnn (learned: the tag-genre mapping and "
                        "an embedding classifier; with MUSIC_STUDY_GTZAN_AUDIO, the fault-filtered split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", choices=["full", "small"], default="full",
                   help="tuning grid size (default full; tuned settings are cached in data/cache)")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers for the grid search")
    p.add_argument("--retune", action="store_true", help="ignore cached tuning results")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    # --- predict (whole-song prediction)
    p = sub.add_parser("predict", help="predict the genre of a whole song (file or URL)")
    p.add_argument("source", metavar="FILE_OR_URL")
    p.add_argument("--model", default=None,
                   help="model name (knn = the original study's, knn-tuned, lda-knn, logreg, svm, "
                        "forest) or a model file (default: the best model by honest selection)")
    p.add_argument("--features", default="gtzan", metavar="NAME",
                   help="feature set the model reads: gtzan (default), musicnn or gtzan+musicnn; "
                        "without --model, a learned set's model is trained once on the GTZAN "
                        "audio at hand ($MUSIC_STUDY_GTZAN_AUDIO) and cached")
    p.add_argument("--window-seconds", default=30.0, metavar="S",
                   help="window length in seconds, 3-600 (default 30); windows shorter than "
                        "min(10 s, S) and silent ones do not vote")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    # --- tags (musicnn)
    p = sub.add_parser("tags", help="a song's music tags (musicnn), for the whole song and over time",
                       description="Tag a whole song (file or URL) with the pretrained musicnn "
                                   "networks: each tag's score is its mean over the song's 3-s "
                                   "patches; the tags over time are given per 3-s patch.")
    p.add_argument("source", metavar="FILE_OR_URL")
    p.add_argument("--vocabulary", choices=["mtt", "msd", "both"], default="both",
                   help="mtt (MagnaTagATune: instruments, moods), msd (Million Song Dataset "
                        "last.fm tags: genres, decades) or both (default)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="tags per vocabulary (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    # --- recommend
    p = sub.add_parser("recommend", help="recommend songs from liked songs")
    p.add_argument("--liked", nargs="*", default=[], metavar="ID",
                   help="liked song ids, audio paths, song URLs or playlist URLs")
    p.add_argument("--liked-file", default=None, help="liked-songs list (YouTube Music copy or Takeout CSV)")
    p.add_argument("-k", type=int, default=10, help="number of recommendations")
    p.add_argument("--dislike", nargs="*", default=[], metavar="ID",
                   help="disliked song ids: they and their nearest songs are never recommended")
    p.add_argument("--library", default=None,
                   help="feature table CSV (e.g. from `music-study extract`); default the GTZAN table")
    p.add_argument("--store", default=None, metavar="SQLITE",
                   help="use a label store's songs as the library, its likes/dislikes as preferences")
    p.add_argument("--lambda", dest="mmr_lambda", type=float, default=0.7,
                   help="MMR trade-off: 1 = relevance only, lower = more diverse (default 0.7)")
    p.add_argument("--artist-cap", type=int, default=2,
                   help="at most N songs per artist (default 2; 0 for no cap)")
    p.add_argument("--strategy", choices=["per-seed", "centroid"], default="per-seed",
                   help="retrieve per liked song and merge (default) or around their average")
    p.add_argument("--folder", default=None, metavar="DIR",
                   help="use a folder of your own audio as the library (described by musicnn)")
    p.add_argument("--audio", default=None, metavar="DIR",
                   help="where a --library CSV's audio files are, for the tags in reasons "
                        "(default the CSV's folder)")
    p.add_argument("--space", choices=["features", "features+genre", "genre", "tags", "embedding"],
                   default=None,
                   help="similarity space. 58-feature libraries: features (default; notebook 07 found "
                        "no clear gain for the genre-informed spaces), features+genre, genre. "
                        "musicnn libraries (--folder, a musicnn --library or --store): embedding "
                        "(default), tags (--folder only)")
    p.add_argument("--fetch-limit", type=int, default=20,
                   help="download at most N liked songs given as URLs or playlist URLs (default 20)")
    p.add_argument("--lyrics", default=None,
                   help="CSV of lyrics per library song: id + lyrics text, or id + numeric features")
    p.add_argument("--lyrics-weight", type=float, default=0.3,
                   help="weight of lyrics similarity when --lyrics is given (default 0.3)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    # --- lyrics
    p = sub.add_parser("lyrics", help="fetch, validate and analyse a song's lyrics")
    p.add_argument("artist", help="artist as you know it (\"feat. ...\" is ignored for matching)")
    p.add_argument("title", help="song title (\"(Radio Edit)\", \"(feat. ...)\" are ignored for matching)")
    p.add_argument("--provider", choices=["genius", "lrclib"], default=None,
                   help="ask only this provider (default: lrclib then genius, or "
                        "$MUSIC_STUDY_LYRICS_PROVIDERS; genius needs $GENIUS_ACCESS_TOKEN)")
    p.add_argument("--refresh", action="store_true", help="bypass the lyrics cache")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per request (default 10)")
    p.add_argument("--retries", type=int, default=3,
                   help="extra attempts after a timeout, HTTP 429 or 5xx (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    # --- serve
    p = sub.add_parser("serve", help="run the web page for predictions and corrections",
                       description="Serve the web page with waitress. Prints one line on stdout: "
                                   "the link to share, holding the access key (key=...).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for the local network)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000; 0: any free port)")
    p.add_argument("--key", default=None,
                   help="access key of the shared link (default $MUSIC_STUDY_WEB_KEY, else random)")
    p.add_argument("--no-key", action="store_true",
                   help="serve without a key (allowed only with a loopback --host)")
    p.add_argument("--workers", type=int, default=2,
                   help="background worker threads for downloads and analysis (default 2)")
    p.add_argument("--disk-quota-mb", type=float, default=None,
                   help="size limit of data/uploads + data/downloads in MB (default 2048), "
                        "checked when an upload arrives; the oldest files no label points to "
                        "are removed first")
    p.add_argument("--public-name", action="append", default=[], metavar="NAME",
                   help="another name the page is reached under (e.g. the name an https proxy "
                        "serves it as); repeatable. The page answers only to its address, "
                        "localhost and these names")
    p.add_argument("--behind-https", action="store_true",
                   help="the page is reached through an https proxy: the session cookie is "
                        "sent over https only (Secure)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                   help="address of a reverse proxy whose X-Forwarded-For and "
                        "X-Forwarded-Proto headers are believed (https: Secure cookie; the "
                        "visitor's address for the wrong-key limit); repeatable")

    # --- report
    p = sub.add_parser("report", help="run every notebook headless into reports/ (HTML)")
    p.add_argument("--quick", action="store_true", help="use each notebook's small-data parameters")
    p.add_argument("--only", nargs="*", default=None, metavar="NN", help="run only these notebooks")
    p.add_argument("--output-dir", default=None, help="folder for the reports (default reports/)")
    p.add_argument("--no-input", action="store_true",
                   help="reader's version: leave code cells out of the HTML")
    p.add_argument("--jobs", type=int, default=1,
                   help="notebooks run at once, each in its own process (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    module_name, function_name = HANDLERS[args.command]
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        return int(handler(args) or 0)
    except InputError as exc:
        print(f"music-study {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"music-study {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""Load the small real data the workspace ships in ``data/``.

The GTZAN feature table, the two published splits, Sturm's artist/title index and the
public-domain lyrics sample. Every loader checks the file it reads, so an edited or truncated
copy fails loudly instead of silently changing results.

Examples
--------
>>> from helpers import data
>>> table = data.load_gtzan_table()
>>> table.shape
(1000, 60)
>>> train, valid, test = (data.load_split("fault-filtered")[p] for p in ("train", "valid", "test"))
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers.errors import DataIntegrityError, InputError
from helpers.paths import shipped_data_dir

#: md5 of the original GTZAN feature table (see data/README.md).
GTZAN_TABLE_MD5 = "33e05662f090110c8724cb9feb6e8923"
GTZAN_INDEX_MD5 = "ef9a5bd2ce3bdc58cbd19032c045953a"
LYRICS_MD5 = "6eb1047ccdb0879ce4ed58f2873059db"

GENRES = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)

#: Split names accepted by :func:`load_split`, mapped to their file suffix.
SPLITS = {"stratified": "stratified", "fault-filtered": "filtered"}
SPLIT_PARTS = ("train", "valid", "test")


def file_md5(path: str | Path) -> str:
    """Return the hex md5 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def _checked(path: Path, expected_md5: str | None) -> Path:
    if not path.is_file():
        raise DataIntegrityError(path, "file is missing from the workspace's shipped data; restore it with `git checkout -- data/` (see data/README.md)")
    if expected_md5 is not None:
        actual = file_md5(path)
        if actual != expected_md5:
            raise DataIntegrityError(
                path, f"md5 is {actual}, expected {expected_md5}: the file was edited or truncated"
            )
    return path


def gtzan_table_path() -> Path:
    """Return the path of the embedded GTZAN feature table."""
    return shipped_data_dir() / "gtzan" / "features_30_sec.csv"


@lru_cache(maxsize=4)
def _load_table(path: str, expected_md5: str | None) -> pd.DataFrame:
    return pd.read_csv(_checked(Path(path), expected_md5))


def load_gtzan_table(path: str | Path | None = None, verify: bool = True) -> pd.DataFrame:
    """Load the GTZAN feature table (1000 rows: ``filename``, 58 features, ``label``).

    Parameters
    ----------
    path : path-like, optional
        Another copy of the table; default the embedded one.
    verify : bool
        Check the embedded table's md5 (ignored for another *path*).

    Returns
    -------
    pandas.DataFrame
        A fresh copy; callers may modify it.

    Raises
    ------
    DataIntegrityError
        The file is missing or its md5 does not match.
    """
    chosen = Path(path) if path is not None else gtzan_table_path()
    expected = GTZAN_TABLE_MD5 if (verify and path is None) else None
    return _load_table(str(chosen), expected).copy()


def load_split(name: str = "fault-filtered") -> dict[str, list[str]]:
    """Load a published GTZAN split as clip filenames per part.

    Parameters
    ----------
    name : {'stratified', 'fault-filtered'}
        ``fault-filtered``: the artist-conscious split of Kereliuk, Sturm & Larsen (2015),
        443/197/290 clips with replicas and mislabelled clips left out.
        ``stratified``: a random stratified 500/250/250 split over all 1000 clips.

    Returns
    -------
    dict
        ``{'train': [...], 'valid': [...], 'test': [...]}`` of names like ``blues.00029.wav``
        (the table's ``filename`` column).
    """
    if name not in SPLITS:
        raise InputError(name, f"unknown split; choose one of {', '.join(SPLITS)}")
    folder = shipped_data_dir() / "gtzan" / "splits"
    parts = {}
    for part in SPLIT_PARTS:
        path = _checked(folder / f"{part}_{SPLITS[name]}.txt", None)
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        parts[part] = [line.rsplit("/", 1)[-1] for line in lines]
    return parts


def split_masks(table: pd.DataFrame, name: str = "fault-filtered") -> dict[str, pd.Series]:
    """Return boolean masks over *table* rows for each part of split *name*."""
    parts = load_split(name)
    return {part: table["filename"].isin(files) for part, files in parts.items()}


def held_out_split(table: pd.DataFrame | None = None, split: str = "fault-filtered"
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(training rows, test rows)`` of *table* under a published split.

    Train and valid form the training part. With ``'fault-filtered'`` the test part shares no
    artist with it; clips the split leaves out are in neither. Rows keep their index.

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Rows with ``filename``; default the embedded GTZAN table.
    split : {'fault-filtered', 'stratified'}
        The split (:func:`load_split`).
    """
    table = load_gtzan_table() if table is None else table
    masks = split_masks(table, split)
    return table[masks["train"] | masks["valid"]], table[masks["test"]]


_INDEX_LINE = re.compile(r"^(?P<filename>\S+\.wav)\s*:::\s*(?P<artist>.*?)\s*:::\s*(?P<title>.*?)\s*$")


@lru_cache(maxsize=1)
def _load_index(path: str) -> pd.DataFrame:
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _INDEX_LINE.match(line)
        if match is None:
            raise DataIntegrityError(path, f"unexpected line in artist index: {line[:60]!r}")
        rows.append(match.groupdict())
    frame = pd.DataFrame(rows, columns=["filename", "artist", "title"])
    frame["genre"] = frame["filename"].str.split(".").str[0]
    return frame


def load_artist_index() -> pd.DataFrame:
    """Load Sturm's artist/title index of every GTZAN clip.

    Returns
    -------
    pandas.DataFrame
        Columns ``filename``, ``artist``, ``title``, ``genre``; 1000 rows. ``artist`` is an empty
        string for the 81 clips Sturm could not identify.
    """
    path = _checked(shipped_data_dir() / "gtzan" / "metadata" / "GTZANindex.txt", GTZAN_INDEX_MD5)
    return _load_index(str(path)).copy()


def artist_groups(filenames, unknown: str = "per-clip") -> pd.Series:
    """Return an artist group label for each clip filename, for grouped cross-validation.

    Parameters
    ----------
    filenames : iterable of str
        Table filenames such as ``reggae.00012.wav``.
    unknown : {'per-clip', 'per-genre'}
        How to group clips without a known artist: each on its own (default), or one group
        per genre (more cautious).
    """
    index = load_artist_index().set_index("filename")
    names = pd.Series(list(filenames))
    artists = names.map(index["artist"]).fillna("")
    genre = names.str.split(".").str[0]
    fallback = names if unknown == "per-clip" else "unknown-" + genre
    labels = artists.where(artists != "", fallback)
    return labels.str.lower().rename("artist_group")


def load_public_domain_lyrics() -> pd.DataFrame:
    """Load the 197 public-domain songs shipped in ``data/lyrics`` (title, poet, lyrics, ...)."""
    path = _checked(shipped_data_dir() / "lyrics" / "public_domain_songs.csv", LYRICS_MD5)
    return pd.read_csv(path)


def read_user_csv(path: str | Path, what: str = "table") -> pd.DataFrame:
    """Read a CSV the user names, turning every way it can be unusable into one clear error.

    Parameters
    ----------
    path : path-like
        The CSV file.
    what : str
        What the file is meant to be (``"library table"``, ...), for the error message.

    Raises
    ------
    InputError
        The file does not exist or is not a readable CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} does not exist")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise InputError(path, f"{what} is not a readable CSV ({detail})") from None

"""One cache for results that take long to compute: JSON documents named by what they depend on.

An entry lives at ``<folder>/<prefix><key>.json`` (by default ``data/cache/<kind>/``), where
*key* is the first 16 hex digits of the md5 of its *payload* (everything the result depends on,
as sorted JSON, including :func:`code_fingerprint` of the code that computes it). The document stores that payload text under ``"key"``, so an entry can be
read by people and checked. Entries appear whole (written beside, then renamed); an unreadable
entry reads as missing (the caller computes again and overwrites it); a cache that cannot be
written only costs time.

Examples
--------
>>> from helpers.cache import CacheEntry
>>> entry = CacheEntry.for_payload("tuning", {"model": "knn", "seed": 0}, prefix="knn-")
>>> entry.path.name  # doctest: +SKIP
'knn-3c5b0bd2c6a4f1e2.json'
>>> entry.read() is None or "key" in entry.read()  # doctest: +SKIP
True
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.paths import data_dir


def cache_dir(kind: str) -> Path:
    """Return the folder of one kind of cached result: ``data/cache/<kind>``."""
    return data_dir() / "cache" / kind


def payload_key(payload: dict) -> tuple[str, str]:
    """Return the sorted-JSON text of *payload* and the first 16 hex digits of its md5."""
    source = json.dumps(payload, sort_keys=True, default=str)
    return source, hashlib.md5(source.encode()).hexdigest()[:16]


@functools.cache
def code_fingerprint(*modules: str) -> str:
    """The first 16 hex digits of the sha256 of the source of *modules* (dotted names).

    Put it in a payload whose result those modules compute, so that an entry written by older
    code is not read as current (any edit of them, even of a comment, computes it again).
    """
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            raise ValueError(f"{name}: no source file to fingerprint")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]


def _plain(value):
    """JSON for numpy scalars and arrays (what results often hold)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: str | os.PathLike) -> dict | list | None:
    """Return the JSON document at *path*, or ``None`` when it is missing or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def write_json(path: str | os.PathLike, document, *, indent: int | None = None,
               ensure_ascii: bool = True) -> bool:
    """Write *document* to *path* whole (a temporary file beside it, then a rename).

    Returns
    -------
    bool
        False when the folder cannot be written (caching is an optimisation only).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, default=_plain, indent=indent, ensure_ascii=ensure_ascii)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except (OSError, UnboundLocalError):
            pass
        return False
    return True


@dataclass(frozen=True)
class CacheEntry:
    """One cached result: its file and the payload text its name was derived from."""

    path: Path
    key: str

    @classmethod
    def for_payload(cls, kind: str, payload: dict, prefix: str = "",
                    folder: str | os.PathLike | None = None) -> CacheEntry:
        """The entry of *payload* under ``folder`` (default :func:`cache_dir` of *kind*)."""
        source, digest = payload_key(payload)
        folder = Path(folder) if folder is not None else cache_dir(kind)
        return cls(folder / f"{prefix}{digest}.json", source)

    def read(self) -> dict | None:
        """The stored document, or ``None`` (missing, unreadable or not a JSON object)."""
        document = read_json(self.path)
        return document if isinstance(document, dict) else None

    def write(self, document: dict) -> bool:
        """Store *document* with this entry's payload text under ``"key"``."""
        return write_json(self.path, {**document, "key": self.key})

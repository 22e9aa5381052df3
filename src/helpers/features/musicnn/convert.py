"""One-off conversion of musicnn 0.1.0's TF1 checkpoints to the shipped ``.npz`` weights.

Usage (the wheel from ``pip download --no-deps musicnn==0.1.0``; no TensorFlow needed)::

    python tools/convert_musicnn_weights.py musicnn-0.1.0-py3-none-any.whl
    python -m helpers.features.musicnn.convert musicnn-0.1.0-py3-none-any.whl [--out DIR]

For each of ``MTT_musicnn`` and ``MSD_musicnn`` it reads ``musicnn/<model>/.index`` and
``.data-00000-of-00001`` from the wheel (a zip file; nothing is installed or executed) with
:class:`helpers.features.musicnn.checkpoint.CheckpointReader`, which checks every block and tensor
crc32c, keeps the 64 inference variables (not the Adam slots, not ``beta1_power``), and writes
``<model>.npz`` with the tags of ``musicnn/configuration.py`` (read with :func:`ast.literal_eval`,
not imported). It copies the wheel's ``LICENSE.md`` to ``LICENSE`` and writes ``ORIGIN.json``:
wheel name, version and sha256, the sha256 of every file read, the command, and each output's
sha256. The ``.npz`` files are byte-for-byte reproducible (fixed zip timestamps, fixed order),
so running the converter again on the same wheel gives the same sha256.

The VGG variants (``MTT_vgg``, ``MSD_vgg``) are not converted: the port implements the
musicnn architecture only.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from helpers.errors import InputError

from .checkpoint import CheckpointReader
from .network import inference_variables, variable_shapes
from .weights import MODELS, WEIGHTS_DIR

WHEEL_NAME = "musicnn"
WHEEL_VERSION = "0.1.0"
_TAG_LISTS = {"MTT_musicnn": "MTT_LABELS", "MSD_musicnn": "MSD_LABELS"}
_LICENSE = f"{WHEEL_NAME}-{WHEEL_VERSION}.dist-info/LICENSE.md"
_CONFIG = "musicnn/configuration.py"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tag_lists(source: str) -> dict[str, list[str]]:
    """The ``*_LABELS`` lists assigned in musicnn's configuration.py, without running it."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.endswith("_LABELS"):
                found[target.id] = list(ast.literal_eval(node.value))
    return found


def _skipped_summary(names: set[str]) -> dict:
    """What was left out, in short: how many, and of which kinds (optimiser state)."""
    kinds = sorted({"*/" + n.rsplit("/", 1)[1] if "/" in n else n for n in names})
    return {"count": len(names), "kinds": kinds}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` that ``np.load`` reads, with reproducible bytes.

    ``np.savez`` stamps each member with the current time; here members are stored
    uncompressed with a fixed 1980-01-01 timestamp, in the order given.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def convert(wheel: str | Path, out_dir: str | Path = WEIGHTS_DIR,
            command: str | None = None) -> dict:
    """Convert the wheel's MTT_musicnn and MSD_musicnn checkpoints into *out_dir*.

    Parameters
    ----------
    wheel : path-like
        ``musicnn-0.1.0-py3-none-any.whl``.
    out_dir : path-like
        Where ``<model>.npz``, ``LICENSE`` and ``ORIGIN.json`` go (default: the package's
        ``weights/`` folder).
    command : str, optional
        The command line to record (default: this module's).

    Returns
    -------
    dict
        The ORIGIN.json record.

    Raises
    ------
    helpers.errors.InputError
        The wheel is missing, not a zip, not musicnn 0.1.0, or a checkpoint fails its checks.
    """
    wheel = Path(wheel)
    out_dir = Path(out_dir)
    if not wheel.is_file():
        raise InputError(wheel, "wheel not found (pip download --no-deps musicnn==0.1.0)")
    wheel_bytes = wheel.read_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(wheel_bytes))
    except zipfile.BadZipFile:
        raise InputError(wheel, "not a wheel (zip) file") from None
    names = set(archive.namelist())
    needed = [_LICENSE, _CONFIG] + [f"musicnn/{m}/{f}" for m in MODELS
                                    for f in (".index", ".data-00000-of-00001")]
    absent = [n for n in needed if n not in names]
    if absent:
        raise InputError(wheel, f"not the musicnn {WHEEL_VERSION} wheel ({absent[0]} missing)")
    files = {name: archive.read(name) for name in needed}
    tag_lists = _tag_lists(files[_CONFIG].decode("utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {}
    with tempfile.TemporaryDirectory() as temp:
        for model in MODELS:
            folder = Path(temp) / model
            folder.mkdir()
            for suffix in (".index", ".data-00000-of-00001"):
                (folder / suffix).write_bytes(files[f"musicnn/{model}/{suffix}"])
            reader = CheckpointReader(str(folder) + "/")  # musicnn's prefixes end in "/"
            shapes = variable_shapes()
            arrays = {}
            for name in inference_variables():
                tensor = reader.tensor(name)  # checks the crc32c
                if tensor.shape != shapes[name] or tensor.dtype != np.float32:
                    raise InputError(wheel, f"{model}: {name} is {tensor.dtype} {tensor.shape}, "
                                            f"expected float32 {shapes[name]}")
                arrays[name] = tensor
            tags = tag_lists[_TAG_LISTS[model]]
            arrays["tags"] = np.array(tags, dtype=f"<U{max(map(len, tags))}")
            target = out_dir / f"{model}.npz"
            write_npz(target, arrays)
            outputs[target.name] = {
                "sha256": _sha256(target.read_bytes()),
                "from": [f"musicnn/{model}/.index", f"musicnn/{model}/.data-00000-of-00001",
                         _CONFIG],
                "variables": len(arrays) - 1,
                "skipped": _skipped_summary(set(reader.entries) - set(arrays)),
            }
    (out_dir / "LICENSE").write_bytes(files[_LICENSE])
    record = {
        "what": "musicnn (Pons & Serra 2019) MTT_musicnn and MSD_musicnn weights, float32, "
                "inference variables only, converted from the TF1 checkpoints of the PyPI wheel",
        "source": {"package": WHEEL_NAME, "version": WHEEL_VERSION, "wheel": wheel.name,
                   "sha256": _sha256(wheel_bytes), "licence": "ISC (see LICENSE)",
                   "files": {name: _sha256(data) for name, data in sorted(files.items())}},
        "command": command or f"python -m helpers.features.musicnn.convert {wheel.name}",
        "outputs": outputs,
    }
    (out_dir / "ORIGIN.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Command line: ``python -m helpers.features.musicnn.convert WHEEL [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Convert musicnn 0.1.0's TF1 checkpoints to the shipped .npz "
                               "weights (no TensorFlow needed).")
    parser.add_argument("wheel", help="musicnn-0.1.0-py3-none-any.whl "
                                      "(pip download --no-deps musicnn==0.1.0)")
    parser.add_argument("--out", default=str(WEIGHTS_DIR),
                        help="output folder (default: the package's weights/)")
    args = parser.parse_args(argv)
    command = f"python {prog or '-m helpers.features.musicnn.convert'} {Path(args.wheel).name}"
    try:
        record = convert(args.wheel, args.out, command=command)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, output in record["outputs"].items():
        print(f"{Path(args.out) / name}: {output['variables']} arrays, sha256 {output['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

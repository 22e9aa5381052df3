"""Convert musicnn 0.1.0's TF1 checkpoints into the weights shipped in helpers/features/musicnn/weights.

A one-off: the converted arrays are committed, so nobody needs to run this after a clone.
It needs the project's environment only (no TensorFlow)::

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn_wheel
    .venv/bin/python tools/convert_musicnn_weights.py /tmp/musicnn_wheel/musicnn-0.1.0-py3-none-any.whl

See :mod:`helpers.features.musicnn.convert` for what is read, checked and recorded in ORIGIN.json.
"""

import sys

from helpers.features.musicnn.convert import main

if __name__ == "__main__":
    sys.exit(main(prog="tools/convert_musicnn_weights.py"))

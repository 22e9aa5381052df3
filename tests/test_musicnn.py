"""The TensorFlow-free musicnn port against the original (helpers.features.musicnn).

Reference data: ``../shared/data/musicnn/reference_{MTT,MSD}_musicnn.npz``, made by the
original musicnn 0.1.0 on TF 1.15 with librosa 0.7.2 (see ``../shared/data/README.md``).
Caveat found while porting: musicnn 0.1.0's extractor fills ``penultimate`` (and ``cnn1..3``)
of every patch after the first with the first patch's values (its loop unpacks the batch's
output into ``backend_`` but appends the stale ``penultimate_``), so only row 0 of each
reference ``penultimate`` is a real per-patch value; the comparisons below use row 0 when the
reference repeats it, every row otherwise.
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import require_shared

from helpers.errors import AudioError, InputError
from helpers.features.musicnn import frontend, network, weights
from helpers.features.musicnn.checkpoint import (
    CheckpointReader,
    _crc_raw_bytewise,
    crc32c,
    mask_crc,
)
from helpers.features.musicnn.resampler import EqualizerStream, resampy_response
from helpers.paths import file_sha256

MODELS = ("MTT_musicnn", "MSD_musicnn")
#: musicnn's README: MTT_musicnn's top-10 tags of its example clip (3-s patches, no overlap).
JORAM_TOP10 = ["techno", "electronic", "synth", "fast", "beat", "drums", "no vocals",
               "no vocal", "dance", "ambient"]
JORAM = "joram-moments_of_clarity-08-solipsism-59-88"


# --------------------------------------------------------------------------- checkpoint reader


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _entry_proto(dtype: int, shape, offset: int, data: bytes) -> bytes:
    dims = b"".join(_field(2, 2, _varint(len(d := _field(1, 0, _varint(n)))) + d) for n in shape)
    return (_field(1, 0, _varint(dtype)) + _field(2, 2, _varint(len(dims)) + dims)
            + _field(4, 0, _varint(offset)) + _field(5, 0, _varint(len(data)))
            + _field(6, 5, struct.pack("<I", mask_crc(crc32c(data)))))


def _block(entries, restart_interval=2) -> bytes:
    """A LevelDB block: prefix-compressed entries, then the restart array."""
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        out += key[shared:] + value
        previous = key
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray], per_block: int = 2) -> None:
    """A TF1 bundle (index + one data shard) as TensorFlow writes it, uncompressed."""
    dtypes = {np.dtype("<f4"): 1, np.dtype("<i8"): 9}
    data, entries = bytearray(), []
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        entries.append((name.encode(), _entry_proto(dtypes[tensors[name].dtype],
                                                    tensors[name].shape, len(data), raw)))
        data += raw
    header = _field(1, 0, _varint(1)) + _field(3, 2, _varint(2) + _field(1, 0, _varint(1)))
    entries.insert(0, (b"", header))
    index = bytearray()
    handles = []
    for start in range(0, len(entries), per_block):
        chunk = entries[start:start + per_block]
        block = _block(chunk) + b"\x00"
        handles.append((chunk[-1][0], _varint(len(index)) + _varint(len(block) - 1)))
        index += block + struct.pack("<I", mask_crc(crc32c(block)))
    meta = _block([]) + b"\x00"
    meta_handle = _varint(len(index)) + _varint(len(meta) - 1)
    index += meta + struct.pack("<I", mask_crc(crc32c(meta)))
    top = _block(handles, restart_interval=1) + b"\x00"
    top_handle = _varint(len(index)) + _varint(len(top) - 1)
    index += top + struct.pack("<I", mask_crc(crc32c(top)))
    footer = (meta_handle + top_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(str(prefix) + ".index").write_bytes(bytes(index + footer))
    Path(str(prefix) + ".data-00000-of-00001").write_bytes(bytes(data))


@pytest.fixture
def small_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"conv2d/kernel": rng.standard_normal((7, 3, 1, 4)).astype(np.float32),
               "conv2d/kernel/Adam": rng.standard_normal((7, 3, 1, 4)).astype(np.float32),
               "conv2d/bias": rng.standard_normal(4).astype(np.float32),
               "dense/kernel": rng.standard_normal((5000, 3)).astype(np.float32),
               "global_step": np.array(1234, dtype=np.int64)}
    prefix = tmp_path / "model" / ""
    prefix.mkdir()
    _write_checkpoint(prefix, tensors)
    return prefix, tensors


def test_crc32c_known_answers():
    # RFC 3720 (iSCSI) test vectors and the usual check value
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


@pytest.mark.parametrize("n", [4096, 4097, 65536 + 3, 300_001])
def test_lane_parallel_crc32c_equals_the_bytewise_loop(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data) == _crc_raw_bytewise(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def test_checkpoint_reader_reads_a_hand_built_bundle(small_checkpoint):
    prefix, tensors = small_checkpoint
    reader = CheckpointReader(prefix)
    assert reader.shapes() == {name: t.shape for name, t in tensors.items()}
    for name, tensor in tensors.items():
        read = reader.tensor(name)
        assert read.dtype == tensor.dtype and np.array_equal(read, tensor)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_flipped_data_byte_fails_the_crc(small_checkpoint):
    prefix, tensors = small_checkpoint
    data_path = Path(str(prefix) + ".data-00000-of-00001")
    reader = CheckpointReader(prefix)
    raw = bytearray(data_path.read_bytes())
    raw[reader.entries["dense/kernel"].offset + 1000] ^= 0x01
    data_path.write_bytes(bytes(raw))
    reader = CheckpointReader(prefix)
    with pytest.raises(InputError) as exc:
        reader.tensor("dense/kernel")
    message = _one_line(exc)
    assert str(data_path) in message and "dense/kernel fails its crc32c check" in message
    assert np.array_equal(reader.tensor("conv2d/bias"), tensors["conv2d/bias"])


def test_a_flipped_index_byte_or_a_missing_file_is_one_line(small_checkpoint):
    prefix, _ = small_checkpoint
    index_path = Path(str(prefix) + ".index")
    raw = bytearray(index_path.read_bytes())
    raw[12] ^= 0x40  # inside the first data block
    index_path.write_bytes(bytes(raw))
    with pytest.raises(InputError) as exc:
        CheckpointReader(prefix)
    assert "damaged checkpoint index" in _one_line(exc) and "crc32c" in str(exc.value)
    index_path.write_bytes(bytes(raw[:30]))
    with pytest.raises(InputError, match="too short for a table footer"):
        CheckpointReader(prefix)
    index_path.unlink()
    with pytest.raises(InputError) as exc:
        CheckpointReader(prefix)
    assert _one_line(exc) == f"{index_path}: checkpoint index not found"


def test_a_missing_data_shard_is_one_line(small_checkpoint):
    prefix, _ = small_checkpoint
    data_path = Path(str(prefix) + ".data-00000-of-00001")
    data_path.unlink()
    reader = CheckpointReader(prefix)  # the index alone is fine
    with pytest.raises(InputError) as exc:
        reader.tensor("conv2d/bias")
    assert _one_line(exc) == f"{data_path}: checkpoint data file not found"


def test_the_converter_reproduces_the_shipped_weights_from_the_wheel(tmp_path):
    """Needs the wheel (``pip download --no-deps musicnn==0.1.0``) at ``$MUSICNN_WHEEL``."""
    import os

    wheel = os.environ.get("MUSICNN_WHEEL")
    if not wheel or not Path(wheel).is_file():
        pytest.skip("set MUSICNN_WHEEL to musicnn-0.1.0-py3-none-any.whl to run the converter")
    from helpers.features.musicnn.convert import convert

    record = convert(wheel, tmp_path)
    shipped = weights.origin()
    assert record["source"] == shipped["source"]
    for name, output in shipped["outputs"].items():
        assert file_sha256(tmp_path / name) == output["sha256"]


# --------------------------------------------------------------------------- shipped weights


def test_shipped_weights_match_their_origin_record():
    record = weights.origin()
    assert record["source"]["package"] == "musicnn" and record["source"]["version"] == "0.1.0"
    assert len(record["source"]["sha256"]) == 64
    files = record["source"]["files"]
    for model in MODELS:
        assert f"musicnn/{model}/.index" in files
        assert f"musicnn/{model}/.data-00000-of-00001" in files
        output = record["outputs"][f"{model}.npz"]
        assert file_sha256(weights.weights_path(model)) == output["sha256"]
        assert output["variables"] == 64
    assert "musicnn/configuration.py" in files and "tools/convert_musicnn_weights.py" in \
        record["command"]
    licence = (weights.WEIGHTS_DIR / "LICENSE").read_text()
    assert "Music Technology Group" in licence and "Permission to use, copy, modify" in licence


def test_weights_hold_only_inference_variables_and_the_tag_lists():
    for model in MODELS:
        arrays, tags = weights.read_weights(model)
        assert sorted(arrays) == network.inference_variables()
        assert not any("Adam" in name for name in arrays)
        assert all(a.dtype == np.float32 for a in arrays.values())
        assert len(tags) == 50
    _, mtt = weights.read_weights("MTT_musicnn")
    _, msd = weights.read_weights("MSD_musicnn")
    assert mtt[:4] == ("guitar", "classical", "slow", "techno")
    assert msd[:4] == ("rock", "pop", "alternative", "indie") and msd[-1] == "happy"


def test_damaged_or_missing_weights_give_one_line_with_the_remedy(tmp_path):
    model = "MSD_musicnn"
    expected = weights.origin()["outputs"][f"{model}.npz"]["sha256"]
    copy = tmp_path / f"{model}.npz"
    raw = bytearray(weights.weights_path(model).read_bytes())
    raw[len(raw) // 2] ^= 0x10
    copy.write_bytes(bytes(raw))
    with pytest.raises(InputError) as exc:
        weights.read_weights(model, copy, expected_sha256=expected)
    message = _one_line(exc)
    assert message.startswith(f"{copy}: damaged musicnn weights")
    assert "tools/convert_musicnn_weights.py" in message and "reinstall" in message
    copy.write_bytes(bytes(raw[:1000]))  # cut short, no sha256 to compare with
    with pytest.raises(InputError, match="unreadable musicnn weights"):
        weights.read_weights(model, copy)
    copy.unlink()
    with pytest.raises(InputError) as exc:
        weights.read_weights(model, copy)
    assert _one_line(exc).startswith(f"{copy}: musicnn weights not found; reinstall")
    with pytest.raises(InputError, match="unknown musicnn model"):
        weights.read_weights("MTT_vgg")


def test_the_port_imports_only_the_low_layer():
    """No TensorFlow (or torch, onnxruntime) anywhere; only numpy/scipy/soxr/soundfile,
    threadpoolctl and helpers.audio / errors / constants / paths / features.spectral from outside."""
    allowed_third = {"numpy", "scipy", "soxr", "soundfile", "threadpoolctl"}
    allowed_helpers = {"helpers.audio", "helpers.audio.checks", "helpers.audio.decode",
                       "helpers.errors", "helpers.constants", "helpers.paths",
                       "helpers.features.spectral"}  # its numba-free mel filter bank
    for path in sorted(Path(network.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "helpers":
                    assert name.startswith("helpers.features.musicnn") or name in allowed_helpers, \
                        f"{path.name} imports {name}"
                else:
                    assert top in allowed_third or top in sys.stdlib_module_names, \
                        f"{path.name} imports {name}"


# --------------------------------------------------------------------------- front end


def test_mel_filters_equal_librosas():
    import librosa

    # librosa's Slaney mel with area normalisation is unchanged from 0.7.2 (norm=1) to 0.11
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    np.testing.assert_allclose(frontend.mel_filters(), expected, rtol=1e-5, atol=1e-9)


def _direct_logmel(y: np.ndarray) -> np.ndarray:
    """librosa 0.7.2's melspectrogram + musicnn's log, written out in one go."""
    padded = np.pad(y, 256, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 512)[::256]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)
    power = np.abs(np.fft.rfft(frames * window, axis=1).astype(np.complex64)) ** 2
    mel = (frontend.mel_filters() @ power.T).T
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)


@pytest.mark.parametrize("source_rate", [None, 22050])
def test_the_streamed_log_mel_does_not_depend_on_the_blocks(source_rate):
    rng = np.random.default_rng(3)
    y = (rng.standard_normal(123_457) * 0.1).astype(np.float32)
    whole = frontend.logmel(y, source_rate)
    assert whole.shape == (1 + len(y) // 256, 96)
    cuts = np.sort(rng.choice(len(y), 12, replace=False))
    stream = frontend.LogMelStream(source_rate)
    parts = [stream.push(part) for part in np.split(y, cuts)] + [stream.finish()]
    assert np.array_equal(np.concatenate(parts), whole)
    if source_rate is None:
        np.testing.assert_allclose(whole, _direct_logmel(y), atol=2e-3)
        assert np.mean(whole == _direct_logmel(y)) > 0.99  # float16 ties may round apart


def test_the_last_sample_is_zeroed_where_resampy_gave_one_sample_less():
    # 22050 Hz -> 16 kHz: n = 1000 gives ceil(725.6) = 726 samples, resampy int() 725, and
    # librosa 0.7.2 pads with a zero; n = 882 gives exactly 640 (no padding)
    rng = np.random.default_rng(8)
    y = (rng.standard_normal(726 + 256 * 40) * 0.1).astype(np.float32)
    n_in = int(np.ceil(len(y) / (16000 / 22050))) - 1
    assert int(np.ceil(n_in * 16000 / 22050)) == len(y) > int(n_in * (16000 / 22050))
    zeroed = y.copy()
    zeroed[-1] = 0
    assert np.array_equal(frontend.logmel(y, 22050, n_in), frontend.logmel(zeroed, 22050))
    # a stated length that does not fit the decoded one (an mp3 estimate) changes nothing
    assert np.array_equal(frontend.logmel(y, 22050, n_in + 5000), frontend.logmel(y, 22050))


def test_patches_drop_the_trailing_partial_patch_as_the_original():
    y = np.random.default_rng(4).standard_normal(16000 * 10).astype(np.float32)
    frames = frontend.logmel(y)
    patches = frontend.logmel_patches(y)
    assert len(frames) == 626 and patches.shape == (3, 187, 96)  # 626 // 187 == 3
    assert np.array_equal(patches[2], frames[374:561])
    halves = frontend.logmel_patches(y, overlap=1.5)  # 94 frames shared -> hop 93
    assert frontend.patch_hop(overlap=1.5) == 93 and len(halves) == (626 - 187) // 93 + 1
    assert np.array_equal(halves[1], frames[93:280])
    with pytest.raises(ValueError, match="shorter than one 2.992-s patch"):
        frontend.logmel_patches(y[:47615])
    assert len(frontend.logmel_patches(y[:47616])) == 1
    with pytest.raises(ValueError, match="either hop"):
        frontend.patch_hop(hop=10, overlap=1.0)
    with pytest.raises(ValueError, match="hop must be"):
        frontend.patch_hop(hop=188)


@pytest.mark.parametrize(("sr_in", "expected_db"), [
    # resampy 0.2.2 kaiser_best measured with tones (7406.25, 7687.5, 7812.5, 7968.75 Hz)
    (22050, [-1.298, -13.005, -25.181, -48.663]),
    (44100, [-1.597, -14.604, -27.677, -50.755]),
    (48000, [-1.577, -14.499, -27.532, -50.941]),
])
def test_resampy_response_matches_resampy(sr_in, expected_db):
    gains = resampy_response(np.array([7406.25, 7687.5, 7812.5, 7968.75]), sr_in)
    np.testing.assert_allclose(20 * np.log10(gains), expected_db, atol=0.01)


def test_equaliser_stream_is_block_independent_and_keeps_the_length():
    rng = np.random.default_rng(5)
    y = (rng.standard_normal(50_000) * 0.1).astype(np.float32)
    whole = EqualizerStream(44100)
    reference = np.concatenate([whole.push(y), whole.finish()])
    stream = EqualizerStream(44100)
    parts = [stream.push(p) for p in np.split(y, [1, 500, 1300, 40_000])] + [stream.finish()]
    assert np.array_equal(np.concatenate(parts), reference) and len(reference) == len(y)
    # below 6.5 kHz the equaliser passes the signal unchanged (to 1e-3 relative)
    t = np.arange(48_000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    eq = EqualizerStream(22050)
    out = np.concatenate([eq.push(tone), eq.finish()])
    np.testing.assert_allclose(out[4000:-4000], tone[4000:-4000], atol=2e-3)
    passthrough = EqualizerStream(16000)
    assert np.array_equal(passthrough.push(tone), tone)


# --------------------------------------------------------------------------- network


@pytest.fixture(scope="session")
def reference():
    folder = require_shared("musicnn")
    return {model: np.load(folder / f"reference_{model}.npz") for model in MODELS}


@pytest.fixture(scope="session")
def logmel_clips(reference):
    archive = reference["MTT_musicnn"]
    return [key.split("/")[0] for key in archive.files if key.endswith("/logmel_patches")]


def _penultimate_rows(reference_rows: np.ndarray) -> slice:
    """Row 0 when the reference repeats it (musicnn 0.1.0's extractor bug), else all."""
    repeats = np.array_equal(reference_rows, np.broadcast_to(reference_rows[0],
                                                             reference_rows.shape))
    return slice(0, 1) if repeats and len(reference_rows) > 1 else slice(None)


def test_reference_penultimate_repeats_the_first_patch(reference):
    """Documents the upstream bug the comparisons work around (if the reference is ever
    regenerated with a fixed extractor, delete this test)."""
    for model in MODELS:
        rows = reference[model]["wesnoth_heroes_rite/penultimate"]
        assert len(rows) == 73 and np.array_equal(rows, np.broadcast_to(rows[0], rows.shape))


@pytest.mark.parametrize("model", MODELS)
def test_identical_input_gives_the_originals_outputs(model, reference, logmel_clips):
    from helpers.features.musicnn import load_model

    net = load_model(model)
    assert net.tags == tuple(str(t) for t in reference[model]["tags"])
    worst_tag = worst_pen = 0.0
    for clip in logmel_clips:
        patches = reference["MTT_musicnn"][f"{clip}/logmel_patches"]
        out = net.forward(patches)
        taggram = reference[model][f"{clip}/taggram"]
        penultimate = reference[model][f"{clip}/penultimate"]
        rows = _penultimate_rows(penultimate)
        worst_tag = max(worst_tag, np.abs(out["taggram"] - taggram).max())
        worst_pen = max(worst_pen, np.abs(out["penultimate"][rows] - penultimate[rows]).max())
    print(f"{model}: largest difference on identical input: taggram {worst_tag:.2e}, "
          f"penultimate {worst_pen:.2e}")
    assert worst_tag <= 1e-4 and worst_pen <= 1e-3


def _naive_forward(arrays: dict, x: np.ndarray) -> dict:
    """musicnn.models.build_musicnn for one patch, written layer by layer in float64."""
    a = {k: v.astype(np.float64) for k, v in arrays.items()}

    def bn(v, layer):
        return ((v - a[f"{layer}/moving_mean"]) / np.sqrt(a[f"{layer}/moving_variance"] + 1e-3)
                * a[f"{layer}/gamma"] + a[f"{layer}/beta"])

    def conv(v, layer):  # "valid" 2-D convolution of (time, band), one input channel
        kernel = a[f"{layer}/kernel"][:, :, 0, :]
        windows = np.lib.stride_tricks.sliding_window_view(v, kernel.shape[:2])
        return np.einsum("tfab,abc->tfc", windows, kernel) + a[f"{layer}/bias"]

    xn = bn(x.astype(np.float64)[..., None], "batch_normalization")[..., 0]
    timbral = [bn(np.maximum(conv(np.pad(xn, ((3, 3), (0, 0))), c), 0), b).max(axis=1)
               for c, b in (("conv2d", "batch_normalization_1"),
                            ("conv2d_1", "batch_normalization_2"))]
    temporal = []
    for i in (2, 3, 4):
        k = a[f"conv2d_{i}/kernel"].shape[0]
        padded = np.pad(xn, (((k - 1) // 2, k // 2), (0, 0)))  # TF "same", even kernel
        temporal.append(bn(np.maximum(conv(padded, f"conv2d_{i}"), 0),
                           f"batch_normalization_{i + 1}").max(axis=1))
    front = np.concatenate(timbral + temporal, axis=1)
    cnn, current = [], front
    for i, layer in enumerate(("conv2d_5", "conv2d_6", "conv2d_7")):
        out = bn(np.maximum(conv(np.pad(current, ((3, 3), (0, 0))), layer)[:, 0], 0),
                 f"batch_normalization_{6 + i}")
        current = out + (current if i else 0)
        cnn.append(current)
    features = np.concatenate([front] + cnn, axis=1)
    max_pool, mean_pool = features.max(axis=0), features.mean(axis=0)
    flat = bn(np.stack([max_pool, mean_pool], axis=1).reshape(-1), "batch_normalization_9")
    hidden = np.maximum(flat @ a["dense/kernel"] + a["dense/bias"], 0)
    penultimate = bn(hidden, "batch_normalization_10")
    logits = penultimate @ a["dense_1/kernel"] + a["dense_1/bias"]
    return {"taggram": 1 / (1 + np.exp(-logits)), "penultimate": penultimate,
            "mean_pool": mean_pool, "max_pool": max_pool,
            "timbral": np.concatenate(timbral, axis=1),
            "temporal": np.concatenate(temporal, axis=1),
            "cnn1": cnn[0], "cnn2": cnn[1], "cnn3": cnn[2]}


def test_every_feature_tap_equals_a_layer_by_layer_computation():
    from helpers.features.musicnn import load_model

    arrays, _ = weights.read_weights("MSD_musicnn")
    rng = np.random.default_rng(6)
    patches = (rng.random((3, 187, 96)) * 4).astype(np.float32)
    out = load_model("MSD_musicnn").forward(patches, "all")
    assert set(out) == set(network.OUTPUTS)
    for i in (0, 2):
        expected = _naive_forward(arrays, patches[i])
        for name, value in expected.items():
            assert out[name].shape[1:] == value.shape, name
            np.testing.assert_allclose(out[name][i], value, rtol=1e-4, atol=1e-4, err_msg=name)


def test_threads_and_chunks_give_the_same_outputs():
    from helpers.features.musicnn import load_model

    net = load_model("MTT_musicnn")
    patches = (np.random.default_rng(7).random((5, 187, 96)) * 4).astype(np.float32)
    one = net.forward(patches, threads=1)
    assert all(np.array_equal(one[k], v) for k, v in net.forward(patches, threads=2).items())
    chunked = net.forward(patches, threads=1, chunk=3)
    np.testing.assert_allclose(chunked["taggram"], one["taggram"], atol=1e-6)
    single = net.forward(patches[1])  # one (187, 96) patch
    np.testing.assert_allclose(single["penultimate"][0], one["penultimate"][1], atol=1e-5)
    with pytest.raises(ValueError, match="patches must have shape"):
        net.forward(patches[:, :100])
    with pytest.raises(ValueError, match="unknown outputs"):
        net.forward(patches, ("taggram", "pool5"))


# --------------------------------------------------------------------------- end to end


def _reference_files() -> dict[str, Path]:
    base = require_shared()
    files = (sorted(base.glob("gtzan/audio/*/*.00000.wav"))
             + sorted(base.glob("gtzan/more_audio/*/*.flac"))
             + sorted(base.glob("music/*.ogg")) + sorted(base.glob("musicnn/*.mp3")))
    return {path.stem: path for path in files}


@pytest.fixture(scope="session")
def port_outputs():
    """song_tags of the 100 reference files, both models, once per session, through the
    content cache that other tests share (its key holds the port's source code, so a cached
    result is the current code's; read back, scores are rounded to 1e-6 and 1e-5)."""
    from helpers.features.learned import cached_song_tags

    files = _reference_files()
    assert len(files) == 100
    return {stem: cached_song_tags(path) for stem, path in files.items()}


#: Below this, the reference's own 3rd and 4th song-level scores are a tie at the precision a
#: different resampler allows (song-mean taggram differences of the port: median 4e-5 when
#: resampling, 1e-6 on identical input); such a file may swap the 3rd and 4th tag.
TIE = 5e-5


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_file_gives_the_originals_top3_and_embedding(model, reference, port_outputs):
    equal = 0
    lowest_cosine = 1.0
    problems = []
    for clip, result in port_outputs.items():
        taggram = reference[model][f"{clip}/taggram"]
        penultimate = reference[model][f"{clip}/penultimate"]
        ours = result.taggram[model]
        assert ours.shape == taggram.shape, f"{clip}: {len(ours)} patches, original {len(taggram)}"
        theirs_mean = taggram.mean(axis=0)
        order = np.argsort(-theirs_mean)
        top3 = set(np.argsort(-ours.mean(axis=0))[:3])
        if top3 == set(order[:3]):
            equal += 1
        elif not (theirs_mean[order[2]] - theirs_mean[order[3]] < TIE and top3 <= set(order[:4])):
            problems.append(f"{clip}: top-3 {sorted(result.tags[model][i] for i in top3)}")
        rows = _penultimate_rows(penultimate)
        a = result.penultimate[model][rows].mean(axis=0)
        b = penultimate[rows].mean(axis=0)
        cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        lowest_cosine = min(lowest_cosine, cosine)
        if cosine < 0.99:
            problems.append(f"{clip}: penultimate cosine {cosine:.4f}")
    print(f"{model}: top-3 equal for {equal} of {len(port_outputs)} files; "
          f"lowest penultimate cosine {lowest_cosine:.5f}")
    assert not problems, problems
    assert equal >= len(port_outputs) - 1


@pytest.mark.slow
def test_the_example_clip_gives_the_readme_top10(port_outputs):
    result = port_outputs[JORAM]
    assert [tag for tag, _ in result.top_tags("MTT_musicnn", 10)] == JORAM_TOP10
    assert result.patch_times.shape == (9, 2) and result.patch_times[1, 0] == 187 * 0.016


# --------------------------------------------------------------------------- song_tags API


def _write_wav(path: Path, seconds: float, sr: int = 22050, value=None) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)))
    y = y.astype(np.float32)
    if value is not None:
        y[len(y) // 2] = value
    sf.write(path, y, sr, subtype="FLOAT")
    return path


def test_a_file_shorter_than_a_patch_is_refused_with_the_packages_sentence(tmp_path):
    from helpers.features.musicnn import song_tags

    path = _write_wav(tmp_path / "short.wav", 2.10)
    with pytest.raises(AudioError) as exc:
        song_tags(path)
    assert str(exc.value) == f"{path}: too short: 2.10 s of audio; tags need at least 3 s"
    result = song_tags(_write_wav(tmp_path / "ok.wav", 2.99), models=("MTT_musicnn",))
    assert result.taggram["MTT_musicnn"].shape == (1, 50) and result.models == ("MTT_musicnn",)


def test_bad_files_and_names_are_one_line_errors(tmp_path):
    from helpers.features.musicnn import song_tags

    with pytest.raises(AudioError) as exc:
        song_tags(_write_wav(tmp_path / "nan.wav", 4.0, value=np.nan))
    assert str(exc.value).endswith("holds NaN or infinite samples")
    with pytest.raises(AudioError):
        song_tags(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="unknown musicnn model"):
        song_tags(_write_wav(tmp_path / "a.wav", 4.0), models=("MTT_vgg",))


def test_song_tags_strides_and_hops(tmp_path):
    from helpers.features.musicnn import logmel_patches, song_tags

    path = _write_wav(tmp_path / "tone.wav", 13.0, sr=16000)
    full = song_tags(path, models=("MSD_musicnn",), outputs=("mean_pool",))
    assert full.taggram["MSD_musicnn"].shape == (4, 50)
    assert full.features["MSD_musicnn"]["mean_pool"].shape == (4, 753)
    np.testing.assert_allclose(full.patch_times[:, 0], np.arange(4) * 2.992)
    strided = song_tags(path, models=("MSD_musicnn",), stride=2)
    assert strided.stride == 2 and np.array_equal(strided.patch_times, full.patch_times[::2])
    np.testing.assert_allclose(strided.taggram["MSD_musicnn"], full.taggram["MSD_musicnn"][::2],
                               atol=1e-6)
    overlapped = song_tags(path, models=("MSD_musicnn",), hop=94)
    signal = sf.read(path, dtype="float32")[0]
    direct = logmel_patches(signal, hop=94)
    assert len(overlapped.taggram["MSD_musicnn"]) == len(direct) == 7
    from helpers.features.musicnn import load_model

    np.testing.assert_allclose(overlapped.taggram["MSD_musicnn"],
                               load_model("MSD_musicnn").forward(direct)["taggram"], atol=1e-6)
    top = full.top_tags("MSD_musicnn", 3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert full.embedding("MSD_musicnn").shape == (200,)


def test_the_equaliser_design_is_kept_on_disk_bit_for_bit(tmp_path, monkeypatch):
    from helpers.features.musicnn import resampler

    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    resampler.equalizer.cache_clear()
    try:
        designed = resampler.design_equalizer(22050)
        first = resampler.equalizer(22050)  # designed, then written
        path = resampler.design_path(22050)
        assert path.is_file() and path.parent == tmp_path / "cache" / "musicnn"
        resampler.equalizer.cache_clear()
        read = resampler.equalizer(22050)  # read back
        for design in (first, read):
            for name in ("taps", "derivative_taps", "phases", "gain", "delay"):
                assert np.array_equal(getattr(design, name), getattr(designed, name)), name
        assert (read.sr_in, read.sr_out) == (22050, 16000) and not read.taps.flags.writeable
        path.write_bytes(b"damaged")
        resampler.equalizer.cache_clear()
        assert np.array_equal(resampler.equalizer(22050).taps, designed.taps)
    finally:
        resampler.equalizer.cache_clear()

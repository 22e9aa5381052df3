"""musicnn's network (Pons & Serra 2019) in inference mode, on numpy.

The architecture is ``musicnn.models.build_musicnn`` of musicnn 0.1.0 (``MTT_musicnn`` and
``MSD_musicnn`` share it: 64 mid-end filters, 200 back-end units); every batch normalisation
uses its moving statistics (``epsilon=0.001``, TF's default) and dropout is off:

* front end: batch norm of the input; two *timbral* convolutions over (7 frames x 38 or 67 mel
  bands), 204 filters each, on the input zero-padded by 3 frames in time; three *temporal*
  convolutions over (128, 64, 32 frames x 1 band), 51 filters each, ``"same"`` padding (TF pads
  an even kernel ``k`` with ``k/2 - 1`` frames before and ``k/2`` after); each is ReLU, batch
  norm, then a max over all remaining mel bands; concatenated: 187 frames x 561.
* mid end: three (7 frames x all channels) convolutions of 64 filters (ReLU, batch norm), the
  2nd and 3rd with residual connections; the front end and the three outputs are concatenated
  (dense connections): 187 x 753.
* back end: max and mean over time, interleaved (``[max_0, mean_0, max_1, ...]``, 1506), batch
  norm, a 200-unit ReLU dense layer, batch norm (**penultimate**), a 50-unit dense layer and a
  sigmoid (**taggram**).

How it is made fast
-------------------
About 2.8 GFLOP per patch, 81 % of it in the two timbral convolutions. Each convolution is one
large float32 matrix product over every patch of a chunk at once (im2col into reused buffers,
then ``np.matmul`` with ``out=``, i.e. BLAS sgemm). "ReLU, batch norm, max over bands" is
reduced to a max (or, for a filter whose batch-norm scale is negative, a min) of the raw
convolution over bands, followed by the ReLU and the affine batch norm on 187 values instead of
187 x 59: ReLU and a positive (negative) affine map are non-decreasing (non-increasing) and
commute with max (turn it into min), exactly, also in floating point; the min is taken as the
max of the convolution with the negated filter, so one max pools every filter. Activations are
channels first and bands before time, so the max over bands is an elementwise maximum of
contiguous rows. The temporal convolutions (only 51 filters, which BLAS runs at half speed)
use Toeplitz weights: 11 output frames per row (:class:`_Pooled`). The mid-end convolutions
run on the patches laid end to end, each padded by 3 zero frames on either side, so each of the
7 taps is one matrix product over every patch. Chunks of patches run on worker threads with
single-threaded BLAS (see :meth:`MusicnnNetwork.forward`). ``benchmarks/bench_musicnn.py``
measured 0.66-0.71 of the machine's float32 matrix-product rate on one thread (0.62 on two),
and 2.4-2.5x the speed of the original's TensorFlow 1.15 network (see ``benchmarks/README.md``).

Examples
--------
>>> model = load_model("MTT_musicnn")  # doctest: +SKIP
>>> out = model.forward(np.zeros((2, 187, 96), np.float32))  # doctest: +SKIP
>>> out["taggram"].shape, out["penultimate"].shape  # doctest: +SKIP
((2, 50), (2, 200))
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading

import numpy as np

from .frontend import N_MELS, PATCH_FRAMES

#: ``tf.compat.v1.layers.batch_normalization``'s default epsilon.
BN_EPSILON = 1e-3

#: Every output :meth:`MusicnnNetwork.forward` can return (the extractor's feature names plus
#: the taggram). Per patch: taggram (50), penultimate (200), mean_pool and max_pool (753);
#: per patch and frame: timbral (408), temporal (153), cnn1, cnn2, cnn3 (64).
OUTPUTS = ("taggram", "penultimate", "mean_pool", "max_pool", "timbral", "temporal",
           "cnn1", "cnn2", "cnn3")
DEFAULT_OUTPUTS = ("taggram", "penultimate")
#: Patches per chunk of :meth:`MusicnnNetwork.forward` (measured: 1 is fastest, 2 close).
DEFAULT_CHUNK = 1

#: The variables inference reads, in the order the layers are built (TF names each layer
#: ``conv2d``, ``conv2d_1``, ... in creation order).
CONV_LAYERS = ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "conv2d_5",
               "conv2d_6", "conv2d_7")
BN_LAYERS = tuple(["batch_normalization"] + [f"batch_normalization_{i}" for i in range(1, 11)])
DENSE_LAYERS = ("dense", "dense_1")


def inference_variables() -> list[str]:
    """Names of the checkpoint variables the forward pass needs (no optimiser slots)."""
    names = []
    for layer in CONV_LAYERS + DENSE_LAYERS:
        names += [f"{layer}/kernel", f"{layer}/bias"]
    for layer in BN_LAYERS:
        names += [f"{layer}/{v}" for v in ("gamma", "beta", "moving_mean", "moving_variance")]
    return sorted(names)


def variable_shapes() -> dict[str, tuple[int, ...]]:
    """The shape of every inference variable of ``MTT_musicnn`` / ``MSD_musicnn``."""
    shapes = {"conv2d/kernel": (7, 38, 1, 204), "conv2d_1/kernel": (7, 67, 1, 204),
              "conv2d_2/kernel": (128, 1, 1, 51), "conv2d_3/kernel": (64, 1, 1, 51),
              "conv2d_4/kernel": (32, 1, 1, 51), "conv2d_5/kernel": (7, 561, 1, 64),
              "conv2d_6/kernel": (7, 64, 1, 64), "conv2d_7/kernel": (7, 64, 1, 64),
              "dense/kernel": (1506, 200), "dense_1/kernel": (200, 50)}
    for name in list(shapes):
        shapes[name.replace("kernel", "bias")] = shapes[name][-1:]
    channels = [1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200]
    for layer, n in zip(BN_LAYERS, channels, strict=True):
        for v in ("gamma", "beta", "moving_mean", "moving_variance"):
            shapes[f"{layer}/{v}"] = (n,)
    return shapes


#: Multiply-adds x 2 of one patch: the convolutions and dense layers as defined.
FLOPS_PER_PATCH = 2 * (
    187 * 59 * 204 * 7 * 38            # timbral 7x38
    + 187 * 30 * 204 * 7 * 67          # timbral 7x67
    + 187 * 96 * 51 * (128 + 64 + 32)  # temporal
    + 187 * 64 * 7 * (561 + 64 + 64)   # mid end
    + 1506 * 200 + 200 * 50)           # back end


_SCRATCH = threading.local()


def _scratch(key: str, shape: tuple) -> np.ndarray:
    """A float32 scratch array of *shape* (uninitialised), reused by later calls in this thread.

    Fresh large arrays cost page faults on first touch (about a third of the network's time
    when every chunk allocated its own); keeping one buffer per role, grown to the largest
    chunk seen, avoids that. About 21 MB per patch of the chunk size, per thread.
    """
    pool = _SCRATCH.__dict__.setdefault("pool", {})
    size = int(np.prod(shape))
    have = pool.get(key)
    if have is None or have.size < size:
        have = pool[key] = np.empty(size, np.float32)
    return have[:size].reshape(shape)


_FORWARD_LOCK = threading.RLock()
_EXECUTORS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()


def _executor(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    """A worker pool of *threads* threads, kept for the process: its threads keep their
    scratch buffers between calls."""
    with _EXECUTORS_LOCK:
        if threads not in _EXECUTORS:
            _EXECUTORS[threads] = concurrent.futures.ThreadPoolExecutor(
                threads, thread_name_prefix="musicnn")
        return _EXECUTORS[threads]


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_threads(controller) -> int:
    """The thread count BLAS is currently set to (1 if no BLAS is found)."""
    counts = [info["num_threads"] for info in controller.info() if info["user_api"] == "blas"]
    return max(counts, default=1)


def default_threads() -> int:
    """Threads :meth:`MusicnnNetwork.forward` uses when not told: BLAS's current setting."""
    return _blas_threads(_controller())


def single_threaded_blas():
    """Context manager limiting BLAS to one thread (process-wide) for its duration.

    Small products (the mel filter bank) run no faster on two BLAS threads, and OpenBLAS's
    spinning threads slow them down many times over when another process holds a core.
    """
    return _controller().limit(limits=1, user_api="blas")


def release_scratch() -> None:
    """Free this thread's scratch buffers (they are otherwise kept for the next call)."""
    _SCRATCH.__dict__.pop("pool", None)


def _bn_affine(arrays: dict, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm at inference as ``scale * x + shift`` (float32)."""
    gamma = arrays[f"{layer}/gamma"].astype(np.float64)
    beta = arrays[f"{layer}/beta"].astype(np.float64)
    mean = arrays[f"{layer}/moving_mean"].astype(np.float64)
    var = arrays[f"{layer}/moving_variance"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


#: Output frames per row of the temporal convolutions' Toeplitz weights (see _Pooled);
#: 11 divides 187, so no frame is computed in vain.
TEMPORAL_BLOCK = 11


class _Pooled:
    """A convolution followed by ReLU, batch norm and a max over bands, folded (see above).

    A filter whose batch-norm scale is negative is pooled with a min; its weights are stored
    negated instead, so that every row is pooled with one max (``min(c) = -max(-c)``, exact in
    floating point: negating every product term negates the sum) and :meth:`affine` restores
    the sign on the pooled values. (A separate min over those rows was measured several times
    slower than the max.)

    With *block* ``R`` (for the temporal convolutions: 1 band wide, 128, 64 or 32 frames
    long), the weights become a Toeplitz matrix whose row ``(filter, r)`` holds the kernel
    shifted by ``r``: one product with columns of ``R + length - 1`` consecutive frames gives
    ``R`` output frames. That multiplies the arithmetic by ``(R + length - 1) / length``
    (1.08 for 128 frames) but turns a product with 51 output rows, which BLAS runs at half
    speed, into one with 51 x R rows, and the im2col copy shrinks R-fold.
    """

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, bn: tuple[np.ndarray, np.ndarray],
                 block: int = 1):
        scale, shift = bn
        sign = np.where(scale < 0, -1.0, 1.0).astype(np.float32)
        self.block = block
        self.n_filters = len(scale)
        # (filters, taps) rows: the product is weights @ columns, channels first
        flat = kernel.reshape(-1, kernel.shape[-1]).T * sign[:, np.newaxis]
        if block > 1:
            filters, length = flat.shape
            toeplitz = np.zeros((filters, block, block + length - 1), np.float32)
            for r in range(block):
                toeplitz[:, r, r:r + length] = flat
            flat = toeplitz.reshape(filters * block, -1)
        self.weights = np.ascontiguousarray(flat, np.float32)
        self.weights_t = np.ascontiguousarray(flat.T, np.float32)
        self.sign = np.repeat(sign, block)[:, np.newaxis]
        self.bias = np.repeat(bias, block).astype(np.float32)[:, np.newaxis]
        self.scale = np.repeat(scale, block)[:, np.newaxis]
        self.shift = np.repeat(shift, block)[:, np.newaxis]

    @property
    def taps(self) -> int:
        """Columns the weights multiply (kernel taps, ``block + length - 1`` for Toeplitz)."""
        return self.weights.shape[1]

    def pool(self, conv: np.ndarray, out: np.ndarray) -> None:
        """Max over bands of ``conv`` ``(rows, bands, n)`` into *out* ``(rows, n)``."""
        np.max(conv, axis=1, out=out)

    def affine(self, pooled: np.ndarray) -> np.ndarray:
        """Sign, bias, ReLU and batch norm of pooled ``(rows, n)``: ``(filters, block, n)``."""
        pooled = pooled * self.sign
        pooled += self.bias
        np.maximum(pooled, 0, out=pooled)
        pooled *= self.scale
        pooled += self.shift
        return pooled.reshape(self.n_filters, self.block, -1)

    def finish_rows(self, conv: np.ndarray) -> np.ndarray:
        """:meth:`pool` then :meth:`affine` of the transposed product ``(bands, n, rows)``.

        The max over bands is then an elementwise maximum of ``bands`` contiguous slabs, which
        numpy does at memory speed (the reduction of a ``(rows, bands, n)`` array over its
        middle axis is slow when ``n`` is short, as for the temporal blocks).
        """
        pooled = np.max(conv, axis=0)
        return self.affine(pooled.T)


class MusicnnNetwork:
    """One musicnn model (weights and tag vocabulary) with a numpy forward pass.

    Parameters
    ----------
    name : str
        ``"MTT_musicnn"`` or ``"MSD_musicnn"``.
    arrays : dict of str to np.ndarray
        The checkpoint variables of :func:`inference_variables`.
    tags : sequence of str
        The output tags in order.

    Attributes
    ----------
    name, tags
        As given (``tags`` a tuple).
    """

    def __init__(self, name: str, arrays: dict, tags):
        self.name = name
        self.tags = tuple(str(t) for t in tags)
        a = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.input_scale, self.input_shift = (float(v[0]) for v in
                                              _bn_affine(a, "batch_normalization"))
        self.timbral = [_Pooled(a[f"conv2d{s}/kernel"], a[f"conv2d{s}/bias"],
                                _bn_affine(a, f"batch_normalization_{i}"))
                        for s, i in (("", 1), ("_1", 2))]
        self.timbral_widths = [a["conv2d/kernel"].shape[1], a["conv2d_1/kernel"].shape[1]]
        self.temporal = [_Pooled(a[f"conv2d_{i}/kernel"], a[f"conv2d_{i}/bias"],
                                 _bn_affine(a, f"batch_normalization_{i + 1}"), TEMPORAL_BLOCK)
                         for i in (2, 3, 4)]
        self.temporal_lengths = [a[f"conv2d_{i}/kernel"].shape[0] for i in (2, 3, 4)]
        self.midend = []
        for i in (5, 6, 7):
            kernel = a[f"conv2d_{i}/kernel"]  # (7, channels, 1, 64) -> 7 x (64, channels)
            scale, shift = _bn_affine(a, f"batch_normalization_{i + 1}")
            self.midend.append((np.ascontiguousarray(kernel[:, :, 0, :].transpose(0, 2, 1)),
                                a[f"conv2d_{i}/bias"][:, np.newaxis],
                                scale[:, np.newaxis], shift[:, np.newaxis]))
        self.pool_bn = _bn_affine(a, "batch_normalization_9")
        self.dense = (a["dense/kernel"], a["dense/bias"])
        self.dense_bn = _bn_affine(a, "batch_normalization_10")
        self.output = (a["dense_1/kernel"], a["dense_1/bias"])
        if self.output[0].shape[1] != len(self.tags):
            raise ValueError(f"{name}: {self.output[0].shape[1]} outputs but {len(self.tags)} tags")

    def __repr__(self) -> str:
        return f"MusicnnNetwork({self.name!r}, {len(self.tags)} tags)"

    # ------------------------------------------------------------------ layers
    # Activations are channels first, (channels, patch, frame[, band]): every product is
    # weights (filters, taps) @ columns (taps, positions) with the positions of all patches of
    # a chunk in its long dimension, and every pooling reduces a contiguous last axis.

    def _front_end(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Timbral ``(408, b, 187)`` and temporal ``(153, b, 187)`` features of normalised x."""
        b = x.shape[0]
        # bands first, time last: the im2col copies then read runs of frames, and the max over
        # bands is an elementwise maximum of contiguous rows (a reduction over a short last
        # axis is several times slower in numpy)
        series = x.transpose(0, 2, 1)  # (b, 96, 187)
        padded = _scratch("pad7", (b, N_MELS, PATCH_FRAMES + 6))
        padded[:, :, :3] = 0
        padded[:, :, -3:] = 0
        padded[:, :, 3:-3] = series
        timbral = []
        n = b * PATCH_FRAMES
        for block, width in zip(self.timbral, self.timbral_widths, strict=True):
            bands = N_MELS - width + 1
            # (Computing a few bands at a time, so that columns and product stay in the core's
            # cache, was measured slower: the product's efficiency drops more than it gains.)
            cols = _scratch("cols", (7, width, bands, b, PATCH_FRAMES))
            windows = np.lib.stride_tricks.sliding_window_view(padded, (width, 7), axis=(1, 2))
            np.copyto(cols, windows.transpose(4, 3, 1, 0, 2))
            conv = _scratch("conv", (len(block.weights), bands * n))
            np.matmul(block.weights, cols.reshape(7 * width, -1), out=conv)
            pooled = _scratch("pooled", (len(block.weights), n))
            block.pool(conv.reshape(len(conv), bands, n), pooled)
            timbral.append(block.affine(pooled))

        # temporal: "same" padding puts (length - 1) // 2 zero frames before the signal; one
        # padded copy serves all three kernels (each starts at its own offset into it)
        block = TEMPORAL_BLOCK
        n_blocks = -(-PATCH_FRAMES // block)
        before = max((length - 1) // 2 for length in self.temporal_lengths)
        need = max(before - (length - 1) // 2 + n_blocks * block + length - 1
                   for length in self.temporal_lengths)
        padded = _scratch("pad_long", (b, N_MELS, need))
        padded[:, :, :before] = 0
        padded[:, :, before + PATCH_FRAMES:] = 0
        padded[:, :, before:before + PATCH_FRAMES] = series
        temporal = []
        for conv_block, length in zip(self.temporal, self.temporal_lengths, strict=True):
            first = before - (length - 1) // 2
            taps = conv_block.taps
            # columns: taps consecutive frames starting every `block` frames, one row per
            # (band, patch, block); the product's rows are then bands-major (see finish_rows)
            windows = np.lib.stride_tricks.sliding_window_view(
                padded[:, :, first:first + n_blocks * block + length - 1], taps, axis=2)[
                :, :, ::block]
            cols = _scratch("cols", (N_MELS, b, n_blocks, taps))
            np.copyto(cols, windows.transpose(1, 0, 2, 3))
            conv = _scratch("conv", (N_MELS * b * n_blocks, conv_block.weights_t.shape[1]))
            np.matmul(cols.reshape(-1, taps), conv_block.weights_t, out=conv)
            pooled = conv_block.finish_rows(conv.reshape(N_MELS, b * n_blocks, -1))
            # (filters, r, b, u) -> (filters, b, frame = u * block + r)
            frames = pooled.reshape(len(pooled), block, b, n_blocks).transpose(0, 2, 3, 1)
            temporal.append(frames.reshape(len(pooled), b, -1)[:, :, :PATCH_FRAMES])
        timbral = [t.reshape(len(t), b, PATCH_FRAMES) for t in timbral]
        return np.concatenate(timbral), np.concatenate(temporal)

    def _mid_end(self, front: np.ndarray) -> list[np.ndarray]:
        """``[cnn1, cnn2, cnn3]`` (each ``(64, b, 187)``) of the front-end features."""
        b = front.shape[1]
        span = PATCH_FRAMES + 6  # each patch with 3 zero frames on each side
        n = b * span - 6  # output column j is frame j % span of patch j // span
        outputs = []
        current = front
        for i, (kernel, bias, scale, shift) in enumerate(self.midend):
            laid = np.zeros((current.shape[0], b, span), np.float32)
            laid[:, :, 3:3 + PATCH_FRAMES] = current
            laid = laid.reshape(len(laid), -1)
            conv = np.zeros((kernel.shape[1], b * span), np.float32)
            term = np.empty((kernel.shape[1], n), np.float32)
            for tap in range(kernel.shape[0]):
                np.matmul(kernel[tap], laid[:, tap:tap + n], out=term)
                conv[:, :n] += term
            out = conv.reshape(len(conv), b, span)[:, :, :PATCH_FRAMES]
            out += bias[:, :, np.newaxis]
            np.maximum(out, 0, out=out)
            out *= scale[:, :, np.newaxis]
            out += shift[:, :, np.newaxis]
            if i:
                out += current  # residual connection
            outputs.append(np.ascontiguousarray(out))
            current = outputs[-1]
        return outputs

    def forward(self, patches: np.ndarray, outputs=DEFAULT_OUTPUTS, *,
                threads: int | None = None, chunk: int = DEFAULT_CHUNK) -> dict[str, np.ndarray]:
        """Run the network on log-mel patches.

        Parameters
        ----------
        patches : np.ndarray
            ``(n, 187, 96)`` log-mel patches (:func:`helpers.features.musicnn.logmel_patches`), or one
            patch ``(187, 96)``.
        outputs : sequence of str or "all"
            Which of :data:`OUTPUTS` to return; default taggram and penultimate.
        threads : int, optional
            Threads to use; default: as many as BLAS is currently set to use (so
            ``threadpoolctl.threadpool_limits(1)`` around a call makes it single-threaded).
            The patches are shared out in chunks to that many worker threads, each running
            single-threaded BLAS (BLAS is limited to one thread process-wide for the duration
            of the call): the im2col copies and poolings then run in parallel too, and two
            workers on two cores were measured faster and far less sensitive to a busy core
            than one chain of two-threaded BLAS calls. Calls from several threads at once are
            run one after the other.
        chunk : int
            Patches per matrix product. Small chunks keep the products' operands in cache
            (about 21 MB of scratch per patch of the chunk and per thread, kept between
            calls; :func:`release_scratch` frees it).

        Returns
        -------
        dict of str to np.ndarray
            ``taggram`` ``(n, 50)`` sigmoid outputs, ``penultimate`` ``(n, 200)``, and any other
            requested output (``timbral`` etc. keep one row per frame: ``(n, 187, d)``; the
            original extractor instead stacks frames of all patches, ``(n * 187, d)``).

        Raises
        ------
        ValueError
            Patches of the wrong shape, an unknown output name.

        Examples
        --------
        >>> model = load_model("MSD_musicnn")  # doctest: +SKIP
        >>> model.forward(patches)["taggram"].mean(axis=0)  # song-level tag scores  # doctest: +SKIP
        """
        x = np.asarray(patches, dtype=np.float32)
        if x.ndim == 2:
            x = x[np.newaxis]
        if x.ndim != 3 or x.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}), "
                             f"got {np.shape(patches)}")
        wanted = OUTPUTS if outputs == "all" else tuple(outputs)
        unknown = sorted(set(wanted) - set(OUTPUTS))
        if unknown:
            raise ValueError(f"unknown outputs {unknown}; choose from {list(OUTPUTS)}")
        chunk = max(1, int(chunk))
        parts = [x[start:start + chunk] for start in range(0, len(x), chunk)]
        with _FORWARD_LOCK:
            controller = _controller()
            if threads is None:
                threads = _blas_threads(controller)
            threads = max(1, int(threads))
            with controller.limit(limits=1, user_api="blas"):
                if threads == 1 or len(parts) == 1:
                    results = [self._forward_chunk(part, wanted) for part in parts]
                else:
                    results = list(_executor(threads).map(
                        lambda part: self._forward_chunk(part, wanted), parts))
        empty = {"taggram": (len(self.tags),), "penultimate": (self.dense[0].shape[1],)}
        return {name: (np.concatenate([r[name] for r in results]) if results else
                       np.zeros((0,) + empty.get(name, (0,)), np.float32))
                for name in wanted}

    def _forward_chunk(self, x: np.ndarray, wanted: tuple) -> dict:
        normalised = x * np.float32(self.input_scale) + np.float32(self.input_shift)
        timbral, temporal = self._front_end(normalised)
        front = np.concatenate([timbral, temporal])  # (561, b, 187)
        cnn = self._mid_end(front)
        features = np.concatenate([front] + cnn)  # (753, b, 187)
        max_pool = features.max(axis=2).T
        mean_pool = features.mean(axis=2, dtype=np.float32).T
        pooled = np.stack([max_pool, mean_pool], axis=2).reshape(len(x), -1)
        scale, shift = self.pool_bn
        hidden = (pooled * scale + shift) @ self.dense[0] + self.dense[1]
        np.maximum(hidden, 0, out=hidden)
        scale, shift = self.dense_bn
        penultimate = hidden * scale + shift
        logits = penultimate @ self.output[0] + self.output[1]
        out = {"taggram": 1.0 / (1.0 + np.exp(-logits)), "penultimate": penultimate,
               "mean_pool": np.ascontiguousarray(mean_pool),
               "max_pool": np.ascontiguousarray(max_pool)}
        taps = {"timbral": timbral, "temporal": temporal,
                "cnn1": cnn[0], "cnn2": cnn[1], "cnn3": cnn[2]}
        for name in wanted:
            if name in taps:  # (channels, b, 187) -> (b, 187, channels)
                out[name] = np.ascontiguousarray(taps[name].transpose(1, 2, 0))
        return {name: out[name] for name in wanted}

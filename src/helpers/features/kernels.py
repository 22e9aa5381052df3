"""Numba kernels behind :mod:`helpers.features`: loops that librosa/scipy run slowly.

Compiled on first use and cached on disk (``cache=True``: next to this file, or under
``$NUMBA_CACHE_DIR``, or numba's per-user cache when the package folder is read-only), so only
the very first run on a machine pays the compilation.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def reflect(i, n):
    # scipy.ndimage mode "reflect": (d c b a | a b c d | d c b a), repeated as needed.
    period = 2 * n
    i = i % period
    if i < 0:
        i += period
    return i if i < n else period - 1 - i

@njit(cache=True, nogil=True)
def median_rows(x, size, out):
    # Median over a window of `size` (odd) along the last axis of a 2-D array, edges reflected
    # like scipy.ndimage ("reflect"). The window is kept sorted: each step counts the ranks of the
    # outgoing and incoming values (vectorised compares), then rebuilds the sorted window with
    # selects instead of data-dependent shifting loops (no branch mispredictions).
    n_rows, n = x.shape
    half = size // 2
    padded = np.empty(n + 2 * half, dtype=x.dtype)
    current = np.empty(size, dtype=x.dtype)
    following = np.empty(size, dtype=x.dtype)
    for r in range(n_rows):
        for k in range(n + 2 * half):
            padded[k] = x[r, reflect(k - half, n)]
        current[:] = np.sort(padded[:size])
        out[r, 0] = current[half]
        for j in range(1, n):
            old = padded[j - 1]
            new = padded[j - 1 + size]
            rank_old = np.int32(0)
            rank_new = np.int32(0)
            for k in range(size):
                value = current[k]
                rank_old += np.int32(value < old)
                rank_new += np.int32(value < new)
            # where `new` lands once `old` is removed
            slot = rank_new - np.int32(rank_new > rank_old)
            for k in range(size):
                below = current[k - 1] if k >= 1 else new
                above = current[k + 1] if k + 1 < size else new
                here = current[k]
                kept_left = here if k < rank_old else above
                kept_right = below if k - 1 < rank_old else here
                following[k] = kept_left if k < slot else (new if k == slot else kept_right)
            current, following = following, current
            out[r, j] = current[half]
    return out


@njit(cache=True, nogil=True)
def harmonic_stft(stft, harmonic, percussive, tiny):
    # librosa.util.softmask(harmonic, percussive, power=2, split_zeros=True) applied to the
    # STFT in one pass (mask * |D| * phase == mask * D).
    out = np.empty_like(stft)
    n_bins, n_frames = stft.shape
    for f in range(n_bins):
        for t in range(n_frames):
            h = harmonic[f, t]
            p = percussive[f, t]
            z = max(h, p)
            if z < tiny:
                mask = np.float32(0.5)
            else:
                a = (h / z) * (h / z)
                b = (p / z) * (p / z)
                mask = a / (a + b)
            out[f, t] = stft[f, t] * mask
    return out

@njit(cache=True, nogil=True)
def spectral_shape(magnitude, freqs, roll_percent, tiny):
    # spectral_centroid, spectral_bandwidth (p=2) and spectral_rolloff of librosa, one pass.
    n_bins, n_frames = magnitude.shape
    centroid = np.zeros(n_frames)
    bandwidth = np.zeros(n_frames)
    rolloff = np.zeros(n_frames)
    for t in range(n_frames):
        total = 0.0
        for f in range(n_bins):
            total += magnitude[f, t]
        norm = total if total >= tiny else 1.0
        c = 0.0
        for f in range(n_bins):
            c += freqs[f] * (magnitude[f, t] / norm)
        b = 0.0
        for f in range(n_bins):
            d = freqs[f] - c
            b += (magnitude[f, t] / norm) * d * d
        threshold = roll_percent * total
        running = 0.0
        r = freqs[n_bins - 1]
        for f in range(n_bins):
            running += magnitude[f, t]
            if running >= threshold:
                r = freqs[f]
                break
        centroid[t] = c
        bandwidth[t] = np.sqrt(b)
        rolloff[t] = r
    return centroid, bandwidth, rolloff


@njit(cache=True, nogil=True)
def parabolic_shifts(x, out):
    # librosa.core.pitch._pi_stencil along axis 0, written as the same expressions so that numba
    # types them the same way (float32 neighbour sum and difference, float64 vertex); the first
    # and last rows are 0, as librosa sets them. Frames outer, bins inner: the STFT is
    # Fortran-ordered, so the inner loop is contiguous.
    n_rows, n_cols = x.shape
    for t in range(n_cols):
        out[0, t] = 0
        out[n_rows - 1, t] = 0
        for f in range(1, n_rows - 1):
            a = x[f + 1, t] + x[f - 1, t] - 2 * x[f, t]
            b = (x[f + 1, t] - x[f - 1, t]) / 2
            if np.abs(b) >= np.abs(a):
                out[f, t] = 0  # the vertex would be more than one bin away
            else:
                out[f, t] = -b / a
    return out

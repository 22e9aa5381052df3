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
    # Median over a window of `size` (odd) along the last axis of a 2-D array. The window is
    # kept sorted; each step finds the outgoing and incoming ranks by counting (branch-free,
    # vectorised) and shifts the values between them by one place.
    n_rows, n = x.shape
    half = size // 2
    padded = np.empty(n + 2 * half, dtype=x.dtype)
    window = np.empty(size, dtype=x.dtype)
    for r in range(n_rows):
        for k in range(n + 2 * half):
            padded[k] = x[r, reflect(k - half, n)]
        window[:] = np.sort(padded[:size])
        out[r, 0] = window[half]
        for j in range(1, n):
            old = padded[j - 1]
            new = padded[j - 1 + size]
            rank_old = np.int32(0)
            rank_new = np.int32(0)
            for k in range(size):
                value = window[k]
                rank_old += np.int32(value < old)
                rank_new += np.int32(value < new)
            if rank_new <= rank_old:
                for k in range(rank_old, rank_new, -1):
                    window[k] = window[k - 1]
            else:
                rank_new -= 1
                for k in range(rank_old, rank_new):
                    window[k] = window[k + 1]
            window[rank_new] = new
            out[r, j] = window[half]
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

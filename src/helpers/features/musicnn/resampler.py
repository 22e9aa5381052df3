"""Make soxr-resampled audio look like resampy-resampled audio to musicnn.

Why
---
musicnn was trained, and its reference outputs were made, on audio that librosa 0.7.2
resampled to 16 kHz with resampy's ``kaiser_best`` filter. The package decodes with soxr "HQ"
(:func:`helpers.audio.iter_decoded_blocks`). Both are excellent below 7 kHz (they differ by
less than 0.01 dB), but their anti-aliasing filters roll off differently in the top 600 Hz:
at 7.9 kHz resampy passes -40 dB and soxr -70 dB. That changes only the three top mel bands
(93-95) of the network's input, yet the network weighs them enough that, on the 100 reference
files, 17 % of the top-3 tag sets of MTT_musicnn came out different (with the original's top
bands patched in, every taggram matched to 1e-6).

What
----
:class:`EqualizerStream` turns the 16 kHz soxr output into (nearly) what resampy would have
made of the same file:

* a zero-phase FIR (2049 taps) with gain ``|H_resampy(f)| / |H_soxr(f)|``: 1 up to about
  6.5 kHz, up to +40 dB just below 8 kHz;
* resampy is not quite time-invariant: its table step is truncated (``int(scale * 512)``)
  while the fractional position is not, so each output is read about
  ``0.0015 * (phase - 1/2)`` input samples off its instant and scaled by ``1 +- 1e-4``,
  depending on where it falls between input samples. That is applied to first order (the
  filtered signal plus delay x its derivative, times the gain).

Both responses are computed, not copied: resampy's by evaluating resampy 0.2.2's resampling
loop on tones (its ``kaiser_best`` table is a closed formula: 64 zero crossings, Kaiser beta
14.7697, roll-off 0.94759; the truncated step and the linear interpolation between table
entries are reproduced); soxr's by running the installed soxr, as the decoder does, on tones.
Against resampy 0.2.2 itself the computed gain agrees within 0.001 dB, and on a GTZAN clip
the equalised signal differs from resampy's by 1.5e-5 RMS (soxr alone: 3.8e-3), about what
resampy's own aliasing above 8 kHz amounts to, which no filter of the 16 kHz signal can
restore. Top-3 tags on the 100 reference files: 83 / 87 equal without, 100 / 99 with it.
The design depends on the source rate and is cached per rate (about 0.5 s each).

Upsampled or 16 kHz sources need no equaliser (nothing the source holds is filtered).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.fft

from helpers.paths import data_dir

#: resampy 0.2.2's ``kaiser_best`` filter (resampy/filters.py; its shipped table equals
#: ``ROLLOFF * sinc(ROLLOFF * z) * kaiser(...)`` to the last bit).
ROLLOFF = 0.9475937167399596
KAISER_BETA = 14.769656459379492
ZERO_CROSSINGS = 64
TABLE_PRECISION = 2 ** 9

#: Frequency grid of the design (Hz spacing 8000 / DESIGN_BINS) and half length of the FIR.
DESIGN_BINS = 2048
HALF_TAPS = 1024
#: Above this frequency the equaliser's gain is designed bin by bin (it is 1 below).
DENSE_FROM_HZ = 6000.0
#: Largest boost applied (where soxr's output holds next to nothing, more would only raise
#: its noise floor).
MAX_GAIN_DB = 50.0


def _resampy_table() -> np.ndarray:
    n = TABLE_PRECISION * ZERO_CROSSINGS
    return (ROLLOFF * np.sinc(ROLLOFF * np.linspace(0, ZERO_CROSSINGS, n + 1))
            * np.kaiser(2 * n + 1, KAISER_BETA)[n:])


def _output_phases(sr_in: int, sr_out: int, limit: int) -> np.ndarray:
    """Fractional input positions ``frac(t * sr_in / sr_out)`` of resampy's output samples:
    all of them when they repeat within *limit* outputs, else *limit* evenly spread ones."""
    period = sr_out // math.gcd(int(sr_in), int(sr_out))
    if period <= limit:
        return (np.arange(period) * int(sr_in) % int(sr_out)) / sr_out
    return np.arange(limit) / limit


def _resampy_taps(sr_in: int, sr_out: int, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (input samples, tap minus output instant) and weights of the taps resampy
    0.2.2's loop (``resampy.interpn.resample_f``) reads for outputs at fractional *phases*:
    left and right wings, table step ``int(scale * 512)`` (truncated), linear interpolation
    between table entries; shape ``(len(phases), taps)``."""
    ratio = sr_out / sr_in
    scale = min(1.0, ratio)
    window = _resampy_table() * (ratio if ratio < 1 else 1.0)
    delta = np.zeros_like(window)
    delta[:-1] = np.diff(window)
    step = int(scale * TABLE_PRECISION)
    n_window = len(window)
    taps = np.arange(n_window // step + 1)

    def wing(frac):
        index = frac * TABLE_PRECISION
        offset = index.astype(np.int64)
        eta = index - offset
        pos = offset[:, None] + taps[None, :] * step
        valid = pos < n_window
        pos = np.minimum(pos, n_window - 1)
        return np.where(valid, window[pos] + eta[:, None] * delta[pos], 0.0)

    phases = np.asarray(phases, dtype=np.float64)
    offsets = np.concatenate([-taps[None, :] - phases[:, None],
                              taps[None, :] + 1 - phases[:, None]], axis=1)
    weights = np.concatenate([wing(scale * phases), wing(scale - scale * phases)], axis=1)
    return offsets, weights


def _tone_gains(offsets: np.ndarray, weights: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Complex gain of the taps on tones ``exp(i omega n)``: ``(len(omega), phases)``."""
    gains = np.empty((len(omega), len(offsets)), dtype=np.complex128)
    for start in range(0, len(omega), 16):
        phase = omega[start:start + 16, None, None] * offsets[None]
        gains[start:start + 16] = ((np.cos(phase) * weights).sum(-1)
                                   + 1j * (np.sin(phase) * weights).sum(-1))
    return gains


def resampy_response(freqs: np.ndarray, sr_in: int, sr_out: int = 16000,
                     phases: int = 32) -> np.ndarray:
    """Gain of resampy 0.2.2 ``kaiser_best`` from *sr_in* to *sr_out* at *freqs* (Hz).

    resampy's loop evaluated in closed form on complex tones (:func:`_resampy_taps`), the
    complex gains averaged over its output phases (*phases* of them at most; 32 give the
    gain within 0.001 dB of resampy's measured one).

    Returns
    -------
    np.ndarray
        ``|H(f)|``, 1 in the passband.
    """
    offsets, weights = _resampy_taps(sr_in, sr_out, _output_phases(sr_in, sr_out, phases))
    omega = 2 * np.pi * np.asarray(freqs, dtype=np.float64) / sr_in
    return np.abs(_tone_gains(offsets, weights, omega).mean(axis=1))


def resampy_phase_terms(sr_in: int, sr_out: int = 16000, n_phases: int = 512,
                        reference_hz: float = 2000.0) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """How resampy's output departs from a time-invariant filter, per output phase.

    Its table step is truncated (``int(scale * 512)``) while the fractional position is not,
    so the kernel it applies depends on where an output falls between input samples: the
    output is the ideally filtered signal read about ``0.0015 * (phase - 1/2)`` input samples
    off, and scaled by ``1 + O(2e-4)``. Both are nearly independent of frequency and are
    measured here on a tone at *reference_hz*.

    Returns
    -------
    phases : np.ndarray
        Fractional positions in [0, 1), increasing.
    gain : np.ndarray
        Relative gain minus 1 at each phase.
    delay : np.ndarray
        Time offset at each phase, in *output* samples.
    """
    phases = np.sort(_output_phases(sr_in, sr_out, n_phases))
    offsets, weights = _resampy_taps(sr_in, sr_out, phases)
    omega = 2 * np.pi * reference_hz / sr_in
    gains = _tone_gains(offsets, weights, np.array([omega]))[0]
    magnitude = np.abs(gains)
    delay = np.angle(gains) / omega * (sr_out / sr_in)
    return phases, magnitude / magnitude.mean() - 1, delay


def soxr_response(freqs: np.ndarray, sr_in: int, sr_out: int = 16000) -> np.ndarray:
    """Gain of the installed soxr "HQ" stream (as :mod:`helpers.audio` runs it) at *freqs*.

    One tone per channel, 0.5 s long; the amplitude is fitted on the middle of the output.
    """
    import soxr

    freqs = np.asarray(freqs, dtype=np.float64)
    n_in = int(sr_in * 0.5)
    t_in = np.arange(n_in) / sr_in
    gains = np.empty(len(freqs))
    for start in range(0, len(freqs), 128):
        f = freqs[start:start + 128]
        tones = np.cos(2 * np.pi * np.outer(t_in, f)).astype(np.float32)
        stream = soxr.ResampleStream(sr_in, sr_out, len(f), dtype="float32", quality="HQ")
        out = np.concatenate([stream.resample_chunk(tones, last=False),
                              stream.resample_chunk(np.zeros((0, len(f)), np.float32),
                                                    last=True)])
        middle = slice(len(out) // 4, 3 * len(out) // 4)
        t_out = np.arange(len(out))[middle] / sr_out
        seg = out[middle].astype(np.float64)
        cos = np.cos(2 * np.pi * np.outer(t_out, f))
        sin = np.sin(2 * np.pi * np.outer(t_out, f))
        # least squares on (cos, sin) per tone; the two are near orthogonal over 0.25 s
        a = (cos * seg).sum(0) / (cos * cos).sum(0)
        sin_norm = (sin * sin).sum(0)
        b = np.divide((sin * seg).sum(0), sin_norm, out=np.zeros_like(sin_norm),
                      where=sin_norm > 0)
        gains[start:start + 128] = np.hypot(a, b)
    return gains


@dataclass(frozen=True, eq=False)
class Equalizer:
    """The design for one source rate: zero-phase FIR taps (float64, ``2 * HALF_TAPS + 1``),
    the same filter times a differentiator (per output sample), and resampy's per-phase
    gain and delay (:func:`resampy_phase_terms`)."""

    sr_in: int
    sr_out: int
    taps: np.ndarray
    derivative_taps: np.ndarray
    phases: np.ndarray
    gain: np.ndarray
    delay: np.ndarray

    def phase_terms(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Gain - 1 and delay of output samples ``first .. first + n - 1``."""
        period = self.sr_out // math.gcd(self.sr_in, self.sr_out)
        if len(self.phases) == period:  # every phase tabulated; they repeat every period
            gain, delay = self._tables
            index = np.arange(first % period, first % period + n) % period
            return gain[index], delay[index]
        t = np.arange(first, first + n, dtype=np.int64)
        phase = (t * self.sr_in % self.sr_out) / self.sr_out
        return (np.interp(phase, self.phases, self.gain, period=1.0),
                np.interp(phase, self.phases, self.delay, period=1.0))

    @functools.cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Gain and delay of output sample ``t`` at index ``t % period``."""
        period = self.sr_out // math.gcd(self.sr_in, self.sr_out)
        residue = np.arange(period, dtype=np.int64) * self.sr_in % self.sr_out
        index = np.searchsorted(self.phases * self.sr_out, residue - 0.5)
        return self.gain[index], self.delay[index]


def design_path(sr_in: int, sr_out: int = 16000) -> Path:
    """Where the design for *sr_in* -> *sr_out* is kept: ``data/cache/musicnn/``, named by
    the rates and every constant the design depends on (a change makes a new file)."""
    constants = [ROLLOFF, KAISER_BETA, ZERO_CROSSINGS, TABLE_PRECISION, DESIGN_BINS,
                 HALF_TAPS, DENSE_FROM_HZ, MAX_GAIN_DB, EQUALIZER_DESIGN_VERSION]
    digest = hashlib.md5(json.dumps(constants).encode()).hexdigest()[:12]
    return data_dir() / "cache" / "musicnn" / f"equalizer-{sr_in}-{sr_out}-{digest}.npz"


#: Bumped when :func:`design_equalizer` changes in a way its constants do not show.
EQUALIZER_DESIGN_VERSION = 1


def _read_design(path: Path, sr_in: int, sr_out: int) -> Equalizer | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {f.name: archive[f.name] for f in fields(Equalizer)
                      if f.name not in ("sr_in", "sr_out")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: designed again
    if arrays["taps"].shape != (2 * HALF_TAPS + 1,) or arrays["derivative_taps"].shape != (
            2 * HALF_TAPS + 1,):
        return None
    for name in ("taps", "derivative_taps"):
        arrays[name].flags.writeable = False
    return Equalizer(int(sr_in), int(sr_out), **arrays)


def _write_design(path: Path, design: Equalizer) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **{f.name: getattr(design, f.name) for f in fields(Equalizer)
                                if f.name not in ("sr_in", "sr_out")})
        os.replace(temp, path)
    except OSError:  # a read-only data folder only costs the design time next run
        try:
            os.unlink(temp)
        except (OSError, UnboundLocalError):
            pass


@functools.lru_cache(maxsize=8)
def equalizer(sr_in: int, sr_out: int = 16000) -> Equalizer | None:
    """The :class:`Equalizer` for a source at *sr_in* Hz (cached in the process and on disk).

    ``None`` when no equalising is needed (the source is not downsampled). The design takes
    about half a second, most of a fresh ``music-study tags`` run's fixed cost, so it is kept
    in :func:`design_path` (the same float64 arrays; a damaged file is designed again).
    """
    if sr_in <= sr_out:
        return None
    path = design_path(int(sr_in), int(sr_out))
    design = _read_design(path, sr_in, sr_out)
    if design is None:
        design = design_equalizer(sr_in, sr_out)
        _write_design(path, design)
    return design


def design_equalizer(sr_in: int, sr_out: int = 16000) -> Equalizer:
    """Design the :class:`Equalizer` for a source at *sr_in* > *sr_out* Hz (not cached)."""
    freqs = np.arange(DESIGN_BINS + 1) * (sr_out / 2) / DESIGN_BINS
    # both responses are flat to 1e-3 dB below 6 kHz: computed there on a coarse grid only
    dense = freqs >= DENSE_FROM_HZ
    coarse = np.flatnonzero(~dense)[::32]
    chosen = np.concatenate([coarse, np.flatnonzero(dense)])
    ratio = (resampy_response(freqs[chosen], sr_in, sr_out)
             / np.maximum(soxr_response(freqs[chosen], sr_in, sr_out), 1e-12))
    gain = np.interp(freqs, freqs[chosen], ratio)
    gain = np.minimum(gain, 10 ** (MAX_GAIN_DB / 20))
    # Nyquist itself: neither resampler passes it; keep the curve smooth there
    gain[-1] = gain[-2]
    window = np.kaiser(2 * HALF_TAPS + 1, 8.0)
    designed = []
    for response in (gain, gain * 2j * np.pi * freqs / sr_out):  # d/dt in output samples
        impulse = scipy.fft.irfft(response, n=2 * DESIGN_BINS)
        taps = np.concatenate([impulse[-HALF_TAPS:], impulse[:HALF_TAPS + 1]]) * window
        taps.flags.writeable = False
        designed.append(taps)
    phases, phase_gain, delay = resampy_phase_terms(sr_in, sr_out)
    return Equalizer(int(sr_in), int(sr_out), designed[0], designed[1], phases, phase_gain,
                     delay)


class EqualizerStream:
    """Apply :func:`equalizer` to a signal fed in blocks; output has the input's length.

    The resampled signal starts and ends abruptly, and a +40 dB boost near 8 kHz would turn
    those steps into loud clicks (soxr and resampy both cut their output at the ends, so
    neither signal holds the filter's ramp-in). The filter therefore sees the signal
    continued by point reflection (``2 y[0] - y[k]`` before the start, likewise after the end),
    which is smooth across the ends: measured against resampy's own output, the first and
    last 512 samples then agree as well as the rest.

    Examples
    --------
    >>> eq = EqualizerStream(22050)
    >>> y = np.random.default_rng(0).standard_normal(40000).astype(np.float32)
    >>> out = np.concatenate([eq.push(y[:15000]), eq.push(y[15000:]), eq.finish()])
    >>> out.shape
    (40000,)
    """

    def __init__(self, sr_in: int, sr_out: int = 16000):
        self.design = equalizer(int(sr_in), int(sr_out))
        self.taps = None if self.design is None else self.design.taps
        self._emitted = 0  # output samples returned so far (their phase index)
        self._history: np.ndarray | None = None  # the 2 * HALF_TAPS samples before the next
        self._head = np.zeros(0, dtype=np.float64)  # first samples, until the start is known
        self._tail = np.zeros(0, dtype=np.float64)  # last samples, for the end's reflection
        self._skip = HALF_TAPS  # the first outputs belong to times before the signal
        self._kernels: dict[int, np.ndarray] = {}

    def _convolve(self, block: np.ndarray) -> np.ndarray:
        extended = np.concatenate([self._history, block])
        self._history = extended[-2 * HALF_TAPS:]
        n_fft = scipy.fft.next_fast_len(len(extended), real=True)
        kernels = self._kernels.get(n_fft)
        if kernels is None:
            kernels = self._kernels[n_fft] = (
                scipy.fft.rfft(self.design.taps, n_fft),
                scipy.fft.rfft(self.design.derivative_taps, n_fft))
        spectrum = scipy.fft.rfft(extended, n_fft)
        keep = slice(len(self.taps) - 1, len(extended))  # one output per new input sample
        level = scipy.fft.irfft(spectrum * kernels[0], n_fft)[keep]
        slope = scipy.fft.irfft(spectrum * kernels[1], n_fft)[keep]
        if self._skip:
            drop = min(self._skip, len(level))
            level, slope = level[drop:], slope[drop:]
            self._skip -= drop
        # resampy reads each output a little off its instant and scales it a little,
        # depending on its phase: first-order correction
        gain, delay = self.design.phase_terms(self._emitted, len(level))
        self._emitted += len(level)
        return ((level + delay * slope) * (1 + gain)).astype(np.float32)

    def _start(self) -> np.ndarray:
        head = self._head
        reflected = 2 * head[0] - head[1:HALF_TAPS + 1][::-1]
        before = np.zeros(2 * HALF_TAPS, dtype=np.float64)
        before[len(before) - len(reflected):] = reflected
        self._history = before
        self._head = np.zeros(0, dtype=np.float64)
        return self._convolve(head)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Filter the next samples; returns as many, later (the filter's half length, and
        at first until ``HALF_TAPS + 1`` samples have come)."""
        block = np.asarray(block, dtype=np.float32).ravel()
        if self.taps is None:
            return block
        if not len(block):
            return np.zeros(0, dtype=np.float32)
        samples = block.astype(np.float64)
        self._tail = np.concatenate([self._tail, samples])[-(HALF_TAPS + 1):]
        if self._history is None:
            self._head = np.concatenate([self._head, samples])
            if len(self._head) <= HALF_TAPS:
                return np.zeros(0, dtype=np.float32)
            return self._start()
        return self._convolve(samples)

    def finish(self) -> np.ndarray:
        """Flush the filter: the last samples of the signal."""
        if self.taps is None:
            return np.zeros(0, dtype=np.float32)
        out = []
        if self._history is None:
            if not len(self._head):
                return np.zeros(0, dtype=np.float32)
            out.append(self._start())
        tail = self._tail
        after = np.zeros(HALF_TAPS, dtype=np.float64)
        reflected = 2 * tail[-1] - tail[-2::-1][:HALF_TAPS]
        after[:len(reflected)] = reflected
        out.append(self._convolve(after))
        return np.concatenate(out)

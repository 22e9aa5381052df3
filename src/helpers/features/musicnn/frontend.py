"""musicnn's input: the log-compressed mel spectrogram of 16 kHz mono audio, cut into patches.

What the original computes (``musicnn.extractor.batch_data`` with librosa 0.7.2):

* ``librosa.load(path, sr=16000)``: mono, resampled with resampy. Here the package's decoder
  (:func:`helpers.audio.iter_decoded_blocks`, soxr "HQ") is used instead; the two resamplers
  differ by about -90 dB, which moves no top tag (see the tests).
* ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)``:
  periodic Hann window, ``center=True`` with *reflect* padding of 256 samples on each side
  (librosa 0.7's default; 0.10+ pads with zeros), float64 FFT stored as complex64, power 2 in
  float32, Slaney mel filters with ``norm=1`` (equal area) in float32.
* ``.astype(np.float16)`` and then ``np.log10(10000 * mel + 1)``. numpy < 1.19 evaluates
  ``10000 * float16_array`` in float32 (value-based casting), so only the *mel* values are
  rounded to float16 (11 significant bits), not the logarithm; that is reproduced exactly.
* Patches of 187 frames (``librosa.time_to_frames(3) + 1``, 2.992 s) starting every 187 frames;
  a trailing partial patch is dropped (``range(0, n_frames - 187 + 1, 187)``).

The spectrogram is computed block by block as the decoder yields audio, so a song of any length
costs the memory of a few patches (:class:`LogMelStream`).

Examples
--------
>>> import numpy as np
>>> y = np.random.default_rng(0).standard_normal(16000 * 10).astype(np.float32) * 0.1
>>> logmel_patches(y).shape
(3, 187, 96)
>>> logmel_patches(y, hop=94).shape
(5, 187, 96)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import numpy as np
import scipy.fft

from helpers.features.spectral import mel_filters as mel_filter_bank

#: The network's input format (musicnn's ``configuration.py``).
SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: Frames per patch: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``.
PATCH_FRAMES = 187
#: Seconds one frame hop lasts, and one patch lasts.
FRAME_SECONDS = HOP / SR
PATCH_SECONDS = PATCH_FRAMES * FRAME_SECONDS
#: Fewest samples that give one patch (``1 + n // HOP >= PATCH_FRAMES``), about 2.98 s.
MIN_SAMPLES = (PATCH_FRAMES - 1) * HOP

_PAD = N_FFT // 2


# --------------------------------------------------------------------------- filters


def mel_filters() -> np.ndarray:
    """musicnn's mel filter bank: ``librosa.filters.mel(16000, 512, n_mels=96)`` of librosa 0.7.2.

    Slaney mel scale from 0 Hz to 8 kHz, triangles scaled to equal area (``norm=1``), float32:
    :func:`helpers.features.spectral.mel_filters` at musicnn's rate, FFT size and band count,
    which computes it operation for operation as librosa 0.7.2 did (bit-identical). Read-only,
    cached.

    Returns
    -------
    np.ndarray
        Shape ``(96, 257)``, float32.
    """
    return mel_filter_bank(SR, N_FFT, N_MELS)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # scipy.signal.get_window("hann", 512, fftbins=True): periodic, float64
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    window.flags.writeable = False
    return window


def _logmel_of_frames(frames: np.ndarray) -> np.ndarray:
    """Log-mel rows ``(n, 96)`` float32 of windows ``(n, 512)`` of the padded signal."""
    spectrum = scipy.fft.rfft(frames * _window(), axis=1).astype(np.complex64)
    power = np.abs(spectrum) ** 2  # float32, as librosa's np.abs(stft) ** 2
    mel = power @ mel_filters().T
    # the original rounds the mel power to float16, then takes the log in float32
    return np.log10(np.float32(10000) * mel.astype(np.float16).astype(np.float32)
                    + np.float32(1))


# --------------------------------------------------------------------------- streaming


class LogMelStream:
    """Log-mel frames of a signal fed in blocks, equal to the frames of the whole signal.

    librosa's ``center=True`` pads the signal by reflecting 256 samples at each end; the left
    pad is built from the first block, the right one when :meth:`finish` is called, so the
    frames are those of ``librosa.feature.melspectrogram`` of the concatenated blocks.

    Examples
    --------
    >>> y = np.random.default_rng(1).standard_normal(50000).astype(np.float32)
    >>> stream = LogMelStream()
    >>> parts = [stream.push(y[:20000]), stream.push(y[20000:]), stream.finish()]
    >>> bool(np.array_equal(np.concatenate(parts), logmel(y)))
    True
    """

    def __init__(self, source_rate: int | None = None, source_frames: int | None = None):
        from .resampler import EqualizerStream

        # soxr -> resampy response match for downsampled sources (see helpers.features.musicnn.resampler)
        resampled = source_rate is not None and source_rate != SR
        self._equalizer = EqualizerStream(source_rate, SR) if resampled and source_rate > SR \
            else None
        # librosa 0.7.2 pads resampy's int(n * ratio) samples with a zero up to ceil(n * ratio)
        # (fix_length) where the decoder gives ceil(n * ratio) real samples: the last sample
        # is held back until finish() knows whether the stated length fits the decoded one
        self._source = (source_rate, source_frames) if resampled and source_frames else None
        self._held = np.zeros(0, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # padded signal from the next frame on
        self._head = np.zeros(0, dtype=np.float32)  # raw samples held until the left pad exists
        self._tail = np.zeros(0, dtype=np.float32)  # last raw samples, for the right pad
        self._started = False
        self.n_samples = 0  # samples framed so far (behind n_input while equalising)
        self.n_input = 0  # samples pushed
        self.n_frames = 0

    def _frames(self) -> np.ndarray:
        n = (len(self._pending) - N_FFT) // HOP + 1 if len(self._pending) >= N_FFT else 0
        if n <= 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._pending, N_FFT)[::HOP][:n]
        out = _logmel_of_frames(windows)
        self._pending = self._pending[n * HOP:]
        self.n_frames += n
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add samples; return the log-mel frames ``(k, 96)`` that are now complete."""
        block = np.asarray(block, dtype=np.float32).ravel()
        self.n_input += len(block)
        if self._source is not None and len(block):
            block, self._held = np.concatenate([self._held, block[:-1]]), block[-1:]
        if self._equalizer is not None:
            block = self._equalizer.push(block)
        return self._push(block)

    def _push(self, block: np.ndarray) -> np.ndarray:
        if not len(block):
            return np.zeros((0, N_MELS), dtype=np.float32)
        self.n_samples += len(block)
        self._tail = np.concatenate([self._tail, block])[-(_PAD + 1):]
        if not self._started:
            self._head = np.concatenate([self._head, block])
            if len(self._head) <= _PAD:
                return np.zeros((0, N_MELS), dtype=np.float32)
            # np.pad(y, 256, mode="reflect") starts with y[256], y[255], ..., y[1]
            self._pending = np.concatenate([self._head[_PAD:0:-1], self._head])
            self._head = np.zeros(0, dtype=np.float32)
            self._started = True
        else:
            self._pending = np.concatenate([self._pending, block])
        return self._frames()

    def finish(self) -> np.ndarray:
        """Close the signal (right reflect pad); return the last frames.

        Raises
        ------
        ValueError
            Fewer than 257 samples were pushed (the reflect pad needs them).
        """
        parts = []
        last = self._held
        if self._source is not None and len(last):
            rate, frames = self._source
            ratio = float(SR) / rate
            # resampy made int(n * ratio) samples (its own float arithmetic), librosa ceil()
            if (int(np.ceil(frames * ratio)) == self.n_input
                    and int(frames * ratio) == self.n_input - 1):
                last = np.zeros(1, dtype=np.float32)
            self._held = np.zeros(0, dtype=np.float32)
        if self._equalizer is not None:
            parts.append(self._push(self._equalizer.push(last)))
            parts.append(self._push(self._equalizer.finish()))
            self._equalizer = None
        else:
            parts.append(self._push(last))
        head = np.concatenate(parts) if parts else np.zeros((0, N_MELS), dtype=np.float32)
        if not self._started:
            raise ValueError(f"{self.n_samples} samples are too few for a centred 512-point "
                             "frame with reflect padding")
        # np.pad reflect ends with y[-2], y[-3], ..., y[-257]
        self._pending = np.concatenate([self._pending, self._tail[-2::-1][:_PAD]])
        frames = self._frames()
        self._pending = np.zeros(0, dtype=np.float32)
        return np.concatenate([head, frames]) if len(head) else frames


def logmel(signal: np.ndarray, source_rate: int | None = None,
           source_frames: int | None = None) -> np.ndarray:
    """The whole log-mel spectrogram musicnn sees, ``(1 + len // 256, 96)`` float32.

    Parameters
    ----------
    signal : np.ndarray
        Mono float32 signal at 16 kHz, more than 256 samples.
    source_rate : int, optional
        The rate the signal was resampled from by soxr (:func:`helpers.audio.load_audio`);
        when above 16 kHz, the signal is first equalised to what resampy, the original's
        resampler, would have given (:mod:`helpers.features.musicnn.resampler`). Default: none.
    source_frames : int, optional
        The file's length in samples at *source_rate*: the original's signal ends with
        ``ceil(n * ratio) - int(n * ratio)`` zero samples (resampy's length, padded by
        librosa), which is reproduced when it is given.

    Returns
    -------
    np.ndarray
        ``log10(10000 * float16(mel) + 1)``, frames in rows.
    """
    stream = LogMelStream(source_rate, source_frames)
    head = stream.push(signal)
    return np.concatenate([head, stream.finish()])


def patch_hop(hop: int | None = None, overlap: float | None = None) -> int:
    """Frames between the starts of consecutive patches.

    Parameters
    ----------
    hop : int, optional
        The step in frames (1 to 187). Default: 187, no overlap (the original's default).
    overlap : float, optional
        Instead of *hop*: seconds consecutive patches share (``0 <= overlap < 2.992``); the
        step is ``187 - round(overlap / 0.016)`` frames. Note that the original's
        ``input_overlap`` argument is, despite its name, the *step* (``input_overlap=1`` gives
        patches every 61 frames); pass ``hop=61`` to reproduce it.

    Raises
    ------
    ValueError
        Both given, or a value out of range.
    """
    if hop is not None and overlap is not None:
        raise ValueError("give either hop (frames) or overlap (seconds), not both")
    if overlap is not None:
        if not 0 <= overlap < PATCH_SECONDS:
            raise ValueError(f"overlap must be in [0, {PATCH_SECONDS:.3f}) s, got {overlap}")
        hop = PATCH_FRAMES - int(round(overlap / FRAME_SECONDS))
    hop = PATCH_FRAMES if hop is None else int(hop)
    if not 1 <= hop <= PATCH_FRAMES:
        raise ValueError(f"hop must be 1..{PATCH_FRAMES} frames, got {hop}")
    return hop


def iter_patches(frame_blocks: Iterable[np.ndarray], hop: int = PATCH_FRAMES,
                 max_patches: int = 16) -> Iterator[np.ndarray]:
    """Cut a stream of log-mel frame blocks into patches, yielded in batches.

    Parameters
    ----------
    frame_blocks : iterable of np.ndarray
        Consecutive ``(k, 96)`` frame blocks (e.g. from :class:`LogMelStream`).
    hop : int
        Frames between patch starts.
    max_patches : int
        Largest batch yielded.

    Yields
    ------
    np.ndarray
        ``(b, 187, 96)`` float32 batches; patch *i* starts at frame ``i * hop``. The frames
        after the last whole patch are dropped, as the original does.
    """
    buffer = np.zeros((0, N_MELS), dtype=np.float32)
    for block in frame_blocks:
        buffer = np.concatenate([buffer, block]) if len(buffer) else block
        while _n_patches(len(buffer), hop) >= max_patches:
            yield _cut(buffer, max_patches, hop)
            buffer = buffer[max_patches * hop:]
    n = _n_patches(len(buffer), hop)
    if n:
        yield _cut(buffer, n, hop)


def _n_patches(n_frames: int, hop: int) -> int:
    return (n_frames - PATCH_FRAMES) // hop + 1 if n_frames >= PATCH_FRAMES else 0


def _cut(frames: np.ndarray, n: int, hop: int) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(frames, PATCH_FRAMES, axis=0)
    # (frames - 186, 96, 187) view -> (n, 187, 96) copy
    return np.ascontiguousarray(windows[: (n - 1) * hop + 1: hop].transpose(0, 2, 1))


def logmel_patches(signal: np.ndarray, hop: int | None = None,
                   overlap: float | None = None, source_rate: int | None = None,
                   source_frames: int | None = None) -> np.ndarray:
    """The network input for a 16 kHz signal: log-mel patches ``(n, 187, 96)``.

    Parameters
    ----------
    signal : np.ndarray
        Mono float32 signal at 16 kHz (e.g. ``helpers.audio.load_audio(path, sr=16000)``).
    hop, overlap :
        Patch step, see :func:`patch_hop`; default 187 frames (no overlap).
    source_rate, source_frames : int, optional
        The file's own sample rate and length, when *signal* was resampled by soxr: see
        :func:`logmel`. Give them for results that match the original's
        (:func:`helpers.audio.probe_audio`: ``samplerate``, ``duration * samplerate``).

    Returns
    -------
    np.ndarray
        float32 patches; ``n = (frames - 187) // hop + 1`` with ``frames = 1 + len // 256``
        (a trailing partial patch is dropped, as in the original).

    Raises
    ------
    ValueError
        The signal is too short for one patch (under 47 616 samples, 2.976 s).

    Examples
    --------
    >>> logmel_patches(np.zeros(16000 * 6, np.float32)).shape
    (2, 187, 96)
    >>> from helpers.audio import load_audio, probe_audio  # doctest: +SKIP
    >>> info = probe_audio(path)  # doctest: +SKIP
    >>> patches = logmel_patches(load_audio(path, sr=16000),  # doctest: +SKIP
    ...                          source_rate=info.samplerate,
    ...                          source_frames=round(info.duration * info.samplerate))
    """
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"expected a mono 1-D signal, got shape {signal.shape}")
    if len(signal) < MIN_SAMPLES:
        raise ValueError(f"{len(signal) / SR:.2f} s of audio is shorter than one "
                         f"{PATCH_SECONDS:.3f}-s patch")
    step = patch_hop(hop, overlap)
    frames = logmel(signal, source_rate, source_frames)
    return _cut(frames, _n_patches(len(frames), step), step)

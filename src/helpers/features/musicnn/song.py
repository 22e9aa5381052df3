"""Tags and embeddings of a whole song: decode, log-mel patches, both networks.

Examples
--------
>>> from helpers.features.musicnn import song_tags
>>> result = song_tags("song.ogg")  # doctest: +SKIP
>>> result.top_tags("MTT_musicnn", 3)  # doctest: +SKIP
[('techno', 0.61), ('electronic', 0.55), ('synth', 0.41)]
>>> result.embedding("MSD_musicnn").shape  # song-mean penultimate layer  # doctest: +SKIP
(200,)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.audio import decode  # via the module: tests patch where every decoding goes
from helpers.audio.checks import (
    NON_FINITE_REASON,
    SILENCE_THRESHOLD_DB,
    check_audio_info,
    check_decoded_length,
    silent_reason,
    too_short_reason,
)
from helpers.errors import AudioError

from .frontend import (
    FRAME_SECONDS,
    MIN_SAMPLES,
    N_FFT,
    PATCH_FRAMES,
    PATCH_SECONDS,
    SR,
    LogMelStream,
    iter_patches,
    patch_hop,
)
from .network import (
    DEFAULT_OUTPUTS,
    MusicnnNetwork,
    default_threads,
    single_threaded_blas,
)
from .weights import MODELS, read_weights

#: Model -> the vocabulary name the command line and JSON documents use.
_VOCABULARY = {"MTT_musicnn": "mtt", "MSD_musicnn": "msd"}

#: The seconds of audio a tag needs, as the error message states it (one 3-s patch; exactly
#: 2.976 s give the first 187-frame patch).
MIN_TAG_SECONDS = 3.0


@functools.cache
def load_model(name: str = "MTT_musicnn") -> MusicnnNetwork:
    """Return a musicnn network with its shipped weights, loaded once per process.

    Parameters
    ----------
    name : str
        ``"MTT_musicnn"`` (MagnaTagATune, 50 tags such as ``techno`` or ``no vocals``) or
        ``"MSD_musicnn"`` (Million Song Dataset, 50 last.fm tags such as ``rock`` or ``80s``).

    Returns
    -------
    MusicnnNetwork
        Its :meth:`~MusicnnNetwork.forward` maps log-mel patches to taggram and features.

    Raises
    ------
    helpers.errors.InputError
        Unknown name, or the shipped weights are missing or damaged (the message names the
        file and the remedy).

    Examples
    --------
    >>> model = load_model("MSD_musicnn")
    >>> model.tags[:3]
    ('rock', 'pop', 'alternative')
    """
    arrays, tags = read_weights(name)
    return MusicnnNetwork(name, arrays, tags)


@dataclass
class SongTags:
    """What :func:`song_tags` found in one file.

    Attributes
    ----------
    path : Path
        The file.
    seconds : float
        Decoded length at 16 kHz.
    patch_times : np.ndarray
        ``(n, 2)`` start and end of each patch in seconds.
    tags : dict of str to tuple of str
        Per model, its 50 tags in output order.
    taggram : dict of str to np.ndarray
        Per model, ``(n, 50)`` tag probabilities of each patch.
    penultimate : dict of str to np.ndarray
        Per model, ``(n, 200)`` penultimate-layer features of each patch.
    features : dict of str to dict of str to np.ndarray
        Per model, any other outputs asked for (``mean_pool``, ``timbral``, ...).
    stride : int
        Every *stride*-th patch was computed (1: all).
    """

    path: Path
    seconds: float
    patch_times: np.ndarray
    tags: dict[str, tuple[str, ...]]
    taggram: dict[str, np.ndarray]
    penultimate: dict[str, np.ndarray]
    features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    stride: int = 1

    @property
    def models(self) -> tuple[str, ...]:
        """The models run, in the order asked."""
        return tuple(self.taggram)

    def mean_tags(self, model: str) -> np.ndarray:
        """Song-level tag scores: the mean of the taggram over patches, ``(50,)``."""
        return self.taggram[model].mean(axis=0)

    def top_tags(self, model: str, k: int = 10) -> list[tuple[str, float]]:
        """The *k* tags with the highest song-level score, best first, with their scores.

        Examples
        --------
        >>> song_tags("song.ogg").top_tags("MTT_musicnn", 2)  # doctest: +SKIP
        [('techno', 0.61), ('electronic', 0.55)]
        """
        scores = self.mean_tags(model)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.tags[model][i], float(scores[i])) for i in order]

    def tag_document(self, top: int = 10) -> dict[str, list[dict]]:
        """The song's *top* tags per vocabulary, JSON-ready: ``{"mtt": [{"tag", "score"}, ...]}``.

        Vocabulary names as :data:`helpers.features.musicnn.VOCABULARIES` gives them (``mtt``,
        ``msd``); scores are song-level (mean over patches), rounded to 4 digits.
        """
        return {_VOCABULARY[model]: [{"tag": tag, "score": round(score, 4)}
                                     for tag, score in self.top_tags(model, top)]
                for model in self.models}

    def timeline_document(self, top: int = 10) -> list[dict]:
        """The tags over time, JSON-ready: per patch ``start``, ``end`` (s) and its *top* tags
        per vocabulary (as :meth:`tag_document`)."""
        order = {model: np.argsort(-self.taggram[model], axis=1, kind="stable")[:, :top]
                 for model in self.models}
        timeline = []
        for index, (start, end) in enumerate(self.patch_times.tolist()):
            entry = {"start": round(start, 3), "end": round(end, 3)}
            for model in self.models:
                scores = self.taggram[model][index]
                entry[_VOCABULARY[model]] = [
                    {"tag": self.tags[model][i], "score": round(float(scores[i]), 4)}
                    for i in order[model][index]]
            timeline.append(entry)
        return timeline

    def embedding(self, model: str) -> np.ndarray:
        """Song-level embedding: the mean ``penultimate`` vector over patches, ``(200,)``."""
        return self.penultimate[model].mean(axis=0)


def _checked_blocks(path: Path, info, source, energy: list) -> Iterator[np.ndarray]:
    """The decoded blocks, refused at the first non-finite sample; *energy* collects the sum of
    squares and the sample count (the silence check of every entry point)."""
    try:
        for block in decode.iter_decoded_blocks(path, sr=SR, info=info):
            if not np.all(np.isfinite(block)):
                raise AudioError(source, NON_FINITE_REASON)
            energy[0] += float(np.dot(block, block))
            energy[1] += len(block)
            yield block
    except AudioError as exc:
        if exc.source == str(source):
            raise
        raise AudioError(source, exc.reason) from None


def song_tags(path: str | os.PathLike, models: Sequence[str] = MODELS, *,
              hop: int | None = None, overlap: float | None = None, stride: int = 1,
              outputs: Sequence[str] = DEFAULT_OUTPUTS, threads: int | None = None,
              batch_patches: int = 32, source=None, info=None) -> SongTags:
    """Tag a whole audio file with musicnn: taggram and embeddings of every 3-s patch.

    The file is decoded to mono 16 kHz by :func:`helpers.audio.iter_decoded_blocks` (soxr),
    and its log-mel spectrogram is computed and cut into patches block by block, so memory
    stays bounded whatever the length; the spectrogram is computed once for all *models*.

    Parameters
    ----------
    path : path-like
        Any audio file :mod:`helpers.audio` decodes.
    models : sequence of str
        Which networks to run (default both, ``MTT_musicnn`` and ``MSD_musicnn``).
    hop, overlap :
        Patch step, see :func:`helpers.features.musicnn.frontend.patch_hop`; default: consecutive
        patches without overlap, as the original.
    stride : int
        Run the networks on every *stride*-th patch only: the network time (most of the
        cost) divided by *stride*, at a price measured by ``benchmarks/bench_musicnn.py`` on
        four songs and both models: the song-mean penultimate vector keeps a cosine of 0.998
        (stride 2) or 0.989 (stride 3) with the one of every patch, but one of the top-3 tags
        may change already at stride 2. Default 1: every patch.
    outputs : sequence of str
        Network outputs to keep (see :data:`helpers.features.musicnn.network.OUTPUTS`); ``taggram``
        and ``penultimate`` are always kept.
    threads : int, optional
        Threads for the networks, see :meth:`MusicnnNetwork.forward`.
    batch_patches : int
        Patches sent to the networks at a time (bounds memory).
    source : str, optional
        What errors name (the URL a downloaded file came from); default *path*.
    info : helpers.audio.AudioInfo, optional
        What :func:`helpers.audio.check_audio_info` returned for *path*, when the caller
        checked it (the file is then not probed again); default: checked here.

    Returns
    -------
    SongTags
        Taggram, penultimate features and patch times per model.

    Raises
    ------
    helpers.errors.AudioError
        The file is missing, not audio, corrupt or cut off, holds NaN samples, gives no whole patch
        (``"too short: 2.10 s of audio; tags need at least 3 s"``), or is silent (its RMS
        level below :data:`helpers.audio.SILENCE_THRESHOLD_DB`, as on every other path).
    helpers.errors.InputError
        An unknown model, or damaged weights.

    Examples
    --------
    >>> result = song_tags("song.mp3", models=("MTT_musicnn",))  # doctest: +SKIP
    >>> [tag for tag, _ in result.top_tags("MTT_musicnn", 3)]  # doctest: +SKIP
    ['techno', 'electronic', 'synth']
    """
    path = Path(path)
    networks = [load_model(name) for name in models]
    step = patch_hop(hop, overlap)
    stride = max(1, int(stride))
    extra = tuple(name for name in outputs if name not in ("taggram", "penultimate"))
    wanted = ("taggram", "penultimate") + extra
    source = path if source is None else source
    if info is None:
        info = check_audio_info(path, source=source, needs="tags")
    if info.duration is not None and info.duration * SR < MIN_SAMPLES - SR * 0.05:
        raise AudioError(source, too_short_reason(info.duration, MIN_TAG_SECONDS, "tags"))
    frames = round(info.duration * info.samplerate) if info.duration else None
    stream = LogMelStream(info.samplerate, frames)

    energy = [0.0, 0]

    def frame_blocks():
        for block in _checked_blocks(path, info, source, energy):
            yield stream.push(block)
        if stream.n_input > N_FFT // 2:  # else too short for the reflect padding (and a tag)
            yield stream.finish()

    results = {name: {key: [] for key in wanted} for name in models}
    n_seen = 0
    kept = []
    threads = default_threads() if threads is None else threads
    with single_threaded_blas():  # the front end's products are small; see forward for the net
        for batch in iter_patches(frame_blocks(), hop=step, max_patches=batch_patches):
            index = np.arange(n_seen, n_seen + len(batch))
            n_seen += len(batch)
            chosen = index % stride == 0
            if not chosen.any():
                continue
            kept.append(index[chosen])
            batch = batch[chosen]
            for name, network in zip(models, networks, strict=True):
                out = network.forward(batch, wanted, threads=threads)
                for key in wanted:
                    results[name][key].append(out[key])
    seconds = stream.n_input / SR
    check_decoded_length(path, info.duration, seconds, source=source)  # an mp3 or m4a cut off
    if n_seen == 0:
        raise AudioError(source, too_short_reason(seconds, MIN_TAG_SECONDS, "tags"))
    # the song as a whole, as the other entry points judge a file none of whose windows is heard
    if 10 * np.log10(max(energy[0] / max(energy[1], 1), 1e-30)) < SILENCE_THRESHOLD_DB:
        raise AudioError(source, silent_reason())
    starts = np.concatenate(kept) * step * FRAME_SECONDS
    merged = {name: {key: np.concatenate(parts) for key, parts in per.items()}
              for name, per in results.items()}
    return SongTags(
        path=path, seconds=seconds,
        patch_times=np.stack([starts, starts + PATCH_SECONDS], axis=1),
        tags={name: network.tags for name, network in zip(models, networks, strict=True)},
        taggram={name: merged[name].pop("taggram") for name in models},
        penultimate={name: merged[name].pop("penultimate") for name in models},
        features={name: merged[name] for name in models if merged[name]},
        stride=stride)


__all__ = ["MIN_TAG_SECONDS", "PATCH_FRAMES", "SongTags", "load_model", "song_tags"]

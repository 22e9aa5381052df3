"""Damaged audio in every container the decoders read, generated at test time.

:func:`make_damaged_corpus` encodes one short piece of music into each container (libsndfile's
and ffmpeg's), then writes at least 20 damaged variants of each: truncations, middle overwrites,
bit flips, lying headers, files that reference other files (DASH and HLS manifests, concat
lists) and broken structure. Unlike :mod:`bad_audio_corpus`, a variant has no single expected
reason: a bit flip in the samples of a WAV is still a song. What every entry point must do with
every variant is end within the decode deadline, with a result or with one of the known
sentences of :data:`KNOWN_REASONS` — never a hang, a traceback or a decoder's own words — and a
file that references another file must never be decoded (:data:`NOT_AUDIO`).

``tests/decode_fuzz.py`` runs the whole corpus through every entry point in fresh processes and
a hypothesis fuzzing run over the decode entry point; the suite runs a short version
(``tests/test_damaged_audio.py``).
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

SR = 22050
#: Long enough for a prediction (10 s) and a few 3-s segments.
SECONDS = 12.0

#: The one reason a container that is not audio (or names other files) gets.
NOT_AUDIO = "cannot decode audio: not a recognised audio format"

#: Every sentence an audio entry point may end with (after ``<the input>: ``). A reason not
#: matched here is a decoder's own words leaking out, or a new sentence to add on purpose.
KNOWN_REASONS = [re.compile(p) for p in (
    r"file not found.*", r"file is empty", r"no audio samples( after .*)?",
    r"cannot decode audio: not a recognised audio format",
    r"cannot decode audio: the file holds no audio stream",
    r"cannot decode audio: the audio data is damaged",
    r"cannot decode audio: the decoder could not be started",
    r"cannot decode audio: the decoder did not finish within [\d.]+ s",
    r"cannot decode audio: the file states a sample rate of -?\d+ Hz, outside \d+-\d+ Hz",
    r"truncated: the Ogg stream has no end \(file cut off\?\)",
    r"truncated: the WAV header promises \d+ bytes of audio but the file holds \d+",
    r"truncated or corrupt: the file states [\d.]+ s but only [\d.]+ s could be decoded",
    r"too short: [\d.]+ s of audio; \w[\w ]* needs? at least [\d.]+ s",
    r"the audio is silent \(RMS level below -?\d+ dBFS\)",
    r"holds NaN or infinite samples",
    r"no usable window of at least [\d.]+ s \(.*\)",
    r"shorter than one [\d.]+-s segment: too short.*",
    r"[\d.]+ minutes is too long to decode at once .*",
    r"longer than \d+ minutes; read it window by window .*",
)]


def known_reason(reason: str) -> bool:
    """True when *reason* is one of :data:`KNOWN_REASONS` (the whole text)."""
    return any(p.fullmatch(reason) for p in KNOWN_REASONS)


def reason_for(message: str, file_name: str) -> str | None:
    """The reason a one-line *message* gives for the file called *file_name*: the text after
    ``<...file_name>: `` (a message may name the file through a longer path, or after the name
    of what refused it, as the labeler's ``pool: ...`` does); None when the file is not named."""
    named = message.find(file_name + ": ")
    return None if named < 0 else message[named + len(file_name) + 2:]


class Variant(NamedTuple):
    """One damaged file: ``container`` (e.g. ``"m4a"``), ``kind`` (e.g. ``"bitflip_16"``),
    ``path``, and ``reference``: True when the file points at another file (it must be
    refused with :data:`NOT_AUDIO`, whatever that file holds)."""

    container: str
    kind: str
    path: Path
    reference: bool = False


def _music(seconds: float = SECONDS, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    y = y * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.02 * rng.standard_normal(len(t))
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95) * 0.3 * rng.standard_normal(len(t))
    return np.stack([y + beat, y - beat], axis=1).astype(np.float32)


def _ffmpeg(*args) -> bool:
    from helpers.audio import ffmpeg_executable

    try:
        run = subprocess.run([ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error",
                              "-y", *map(str, args)], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return run.returncode == 0


#: container -> (suffix, how to write it): ("sf", format, subtype) for libsndfile, else
#: ("ffmpeg", ffmpeg output arguments).
CONTAINERS = {
    "wav": ("wav", ("sf", "WAV", "PCM_16")),
    "flac": ("flac", ("sf", "FLAC", "PCM_16")),
    "ogg": ("ogg", ("sf", "OGG", "VORBIS")),
    "opus": ("opus", ("ffmpeg", ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"])),
    "mp3": ("mp3", ("sf", "MP3", "MPEG_LAYER_III")),
    "aiff": ("aiff", ("sf", "AIFF", "PCM_16")),
    "au": ("au", ("sf", "AU", "PCM_16")),
    "caf": ("caf", ("sf", "CAF", "PCM_16")),
    "w64": ("w64", ("sf", "W64", "PCM_16")),
    "m4a": ("m4a", ("ffmpeg", ["-c:a", "aac", "-b:a", "96k", "-f", "mp4"])),
    "aac": ("aac", ("ffmpeg", ["-c:a", "aac", "-b:a", "96k", "-f", "adts"])),
    "webm": ("webm", ("ffmpeg", ["-c:a", "libopus", "-b:a", "64k", "-f", "webm"])),
    "mka": ("mka", ("ffmpeg", ["-c:a", "libvorbis", "-f", "matroska"])),
    "wma": ("wma", ("ffmpeg", ["-c:a", "wmav2", "-b:a", "96k", "-f", "asf"])),
    "wv": ("wv", ("ffmpeg", ["-c:a", "wavpack", "-f", "wv"])),
    "alac": ("m4a", ("ffmpeg", ["-c:a", "alac", "-f", "mp4"])),
}


def encode_song(folder: Path) -> dict[str, Path]:
    """Encode the corpus' song into every container this machine can write."""
    folder.mkdir(parents=True, exist_ok=True)
    music = _music()
    source = folder / "song.source.wav"
    sf.write(source, music, SR, subtype="PCM_16")
    songs = {}
    for container, (suffix, (tool, *how)) in CONTAINERS.items():
        path = folder / f"song_{container}.{suffix}"
        if tool == "sf":
            try:
                sf.write(path, music, SR, format=how[0], subtype=how[1])
            except (sf.LibsndfileError, TypeError, ValueError, RuntimeError):
                continue  # this libsndfile cannot write it
        elif not _ffmpeg("-i", source, *how[0], path):
            path.unlink(missing_ok=True)
            continue
        songs[container] = path
    return songs


# --------------------------------------------------------------------------- damage

def _flip_bits(data: bytes, n: int, rng) -> bytes:
    out = bytearray(data)
    for position in rng.integers(0, len(out) * 8, n):
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def _overwrite(data: bytes, start: int, stop: int, fill) -> bytes:
    out = bytearray(data)
    out[start:stop] = fill(stop - start)
    return bytes(out)


def _middle(data: bytes, share: float) -> tuple[int, int]:
    half = int(len(data) * share / 2)
    return len(data) // 2 - half, len(data) // 2 + half


def _size_words(data: bytes, value) -> bytes:
    """Rewrite every 32-bit word of the first 64 bytes that looks like a size or a rate (little
    or big endian, between 1 000 and 10x the file's size) as *value*."""
    out = bytearray(data)
    limit = max(10 * len(data), 100_000)
    for offset in range(0, min(64, len(out) - 3)):
        for order in ("<", ">"):
            word = struct.unpack_from(order + "I", out, offset)[0]
            if 1000 <= word <= limit:
                struct.pack_into(order + "I", out, offset, value)
    return bytes(out)


def _specific_lies(container: str, data: bytes) -> dict[str, bytes]:
    """Header fields of one container set to values that lie about the audio."""
    lies = {}
    out = bytearray(data)
    if container == "wav" and data[:4] == b"RIFF":
        rate_1 = bytearray(out)
        struct.pack_into("<I", rate_1, 24, 1)  # 1 Hz: a 500 kB file would be days long
        lies["lie_rate_1hz"] = bytes(rate_1)
        channels_0 = bytearray(out)
        struct.pack_into("<H", channels_0, 22, 0)
        lies["lie_channels_0"] = bytes(channels_0)
    elif container == "flac" and data[:4] == b"fLaC":
        # STREAMINFO: sample rate (20 bits), channels, bits, total samples (36 bits) at 18..26
        total = bytearray(out)
        total[21] |= 0x0F
        total[22:26] = b"\xff\xff\xff\xff"  # 2^36 - 1 samples stated
        lies["lie_total_samples"] = bytes(total)
        rate = bytearray(out)
        rate[18], rate[19], rate[20] = 0x00, 0x00, (rate[20] & 0x0F) | 0x10  # 1 Hz
        lies["lie_rate_1hz"] = bytes(rate)
    elif container in ("m4a", "alac") and b"mvhd" in data:
        at = data.index(b"mvhd") + 4  # version(1) flags(3) created(4) modified(4) scale(4) dur(4)
        duration = bytearray(out)
        struct.pack_into(">I", duration, at + 16, 0xFFFFFFF0)
        lies["lie_duration"] = bytes(duration)
        scale = bytearray(out)
        struct.pack_into(">I", scale, at + 12, 1)
        lies["lie_timescale"] = bytes(scale)
    elif container in ("ogg", "opus") and data[:4] == b"OggS":
        last = data.rfind(b"OggS")  # the last page's granule position: the stated length
        granule = bytearray(out)
        struct.pack_into("<q", granule, last + 6, 2**60)
        lies["lie_granule"] = bytes(granule)
    elif container == "au" and data[:4] == b".snd":
        offset = bytearray(out)
        struct.pack_into(">I", offset, 4, 0x7FFFFFF0)  # data offset past the end of the file
        lies["lie_data_offset"] = bytes(offset)
        rate = bytearray(out)
        struct.pack_into(">I", rate, 16, 1)
        lies["lie_rate_1hz"] = bytes(rate)
    return lies


def _references(folder: Path, suffix: str, target: Path) -> dict[str, str]:
    """Small text files that make a demuxer open *target* (an existing audio file)."""
    absolute = target.resolve()
    return {
        "ref_dash_manifest": (
            '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'mediaPresentationDuration="PT12S" minBufferTime="PT1S" '
            'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n<Period><AdaptationSet '
            'mimeType="audio/mp4"><Representation id="a" bandwidth="96000">\n'
            f"<BaseURL>{absolute}</BaseURL>\n</Representation></AdaptationSet></Period></MPD>\n"),
        "ref_hls_playlist": (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:12\n#EXTINF:12.0,\n"
            f"{absolute}\n#EXT-X-ENDLIST\n"),
        "ref_ffconcat": f"ffconcat version 1.0\nfile '{target.name}'\nfile '{target.name}'\n",
    }


def damage(container: str, song: Path, folder: Path, reference_target: Path,
           seed: int = 0) -> list[Variant]:
    """Write the damaged variants of *song* (a file of *container*) into *folder*."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = song.read_bytes()
    suffix = song.suffix
    n = len(data)
    random = lambda k: rng.integers(0, 256, k, dtype=np.uint8).tobytes()  # noqa: E731
    variants: dict[str, bytes] = {
        # truncations
        "cut_header": data[:100],
        "cut_1pct": data[: max(1, n // 100)],
        "cut_10pct": data[: n // 10],
        "cut_50pct": data[: n // 2],
        "cut_90pct": data[: n * 9 // 10],
        # middle overwrites
        "middle_random_10pct": _overwrite(data, *_middle(data, 0.10), random),
        "middle_random_33pct": _overwrite(data, *_middle(data, 0.33), random),
        "middle_zeros_33pct": _overwrite(data, *_middle(data, 0.33), lambda k: bytes(k)),
        "after_header_random": _overwrite(data, min(200, n // 4), min(2200, n // 2), random),
        # bit flips
        "bitflip_1": _flip_bits(data, 1, rng),
        "bitflip_16": _flip_bits(data, 16, rng),
        "bitflip_256": _flip_bits(data, 256, rng),
        "bitflip_4096": _flip_bits(data, 4096, rng),
        # lying headers
        "header_random_16": _overwrite(data, 4, min(20, n), random),
        "header_random_64": _overwrite(data, 8, min(72, n), random),
        "lie_sizes_huge": _size_words(data, 0x7FFFFFF0),
        "lie_sizes_zero": _size_words(data, 0),
        **_specific_lies(container, data),
        # broken structure
        "doubled": data + data,
        "junk_prefix": random(1024) + data,
        "middle_removed": data[: int(n * 0.4)] + data[int(n * 0.6):],
        "foreign_header": reference_target.read_bytes()[:64] + data[64:],
    }
    out = []
    for kind, content in variants.items():
        path = folder / f"{container}_{kind}{suffix}"
        path.write_bytes(content)
        out.append(Variant(container, kind, path))
    for kind, text in _references(folder, suffix, reference_target).items():
        path = folder / f"{container}_{kind}{suffix}"
        path.write_text(text)
        out.append(Variant(container, kind, path, reference=True))
    return out


def make_damaged_corpus(folder, containers=None, seed: int = 0) -> list[Variant]:
    """Encode the song into every container and write its damaged variants under *folder*.

    Parameters
    ----------
    folder : path-like
        An empty folder; ``folder/songs`` holds the intact files, ``folder/damaged`` the rest.
    containers : iterable of str, optional
        Only these (default: every container this machine can write, see :data:`CONTAINERS`).
    seed : int
        Seed of the random damage.

    Returns
    -------
    list of Variant
    """
    folder = Path(folder)
    songs = encode_song(folder / "songs")
    # what a reference points at: an intact song in a format the DASH/HLS demuxers would open
    target = songs.get("m4a") or songs["wav"]
    reference_target = folder / "damaged" / f"target{target.suffix}"
    reference_target.parent.mkdir(parents=True, exist_ok=True)
    reference_target.write_bytes(target.read_bytes())
    variants = []
    for index, (container, song) in enumerate(sorted(songs.items())):
        if containers is not None and container not in containers:
            continue
        variants += damage(container, song, folder / "damaged", reference_target,
                           seed=seed * 1000 + index)
    return variants

"""A small corpus of bad and odd audio inputs, generated at test time.

Every entry point that reads audio (extract, the batch API, predict, recommend with an audio path,
the labeler, ``features.extract_file``, the web page) is run against the same cases and must give
the same verdict and reason: :func:`make_corpus` writes the files and says what each must give.

Example
-------
>>> from bad_audio_corpus import make_corpus          # tests/ is on pytest's path
>>> for case in make_corpus(tmp_path):                 # doctest: +SKIP
...     name, path, reason = case                      # reason None: the file is accepted
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

#: Rate the generated songs are written at (the features' rate, so nothing is resampled).
SR = 22050
#: Length of the generated "songs": over the 10-s minimum a prediction needs, one 30-s window.
SONG_SECONDS = 12.0


class Case(NamedTuple):
    """One corpus entry: unpacks as ``name, path, reason``.

    ``reason`` is a substring every entry point's one-line error must contain, or ``None`` when
    the file is fine and every entry point must accept it.
    """

    name: str
    path: Path
    reason: str | None


def _music(seconds: float = SONG_SECONDS, sr: int = SR, channels: int = 1,
           seed: int = 0) -> np.ndarray:
    """A few tones and a little noise: something the features describe and a model predicts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    y = y * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.02 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return y if channels == 1 else np.stack([y] * channels, axis=1)


def _wav_header(n_bytes_promised: int, sr: int = SR) -> bytes:
    """A 16-bit mono PCM WAV header whose data chunk promises *n_bytes_promised* bytes."""
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + n_bytes_promised) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", n_bytes_promised))


def _ffmpeg(*args) -> bool:
    from helpers.audio import ffmpeg_executable

    try:
        run = subprocess.run([ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error",
                              "-y", *map(str, args)], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return run.returncode == 0


def _cut(source: Path, target: Path, share: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * share)])
    return target


def make_corpus(folder) -> list[Case]:
    """Write the bad-input corpus into *folder* and return its cases.

    Parameters
    ----------
    folder : path-like
        An empty folder (e.g. pytest's ``tmp_path``); created if missing.

    Returns
    -------
    list of Case
        ``(name, path, reason)``: *reason* is the substring every entry point's error must hold,
        or ``None`` for odd-but-fine files that every entry point must accept. Cases the
        machine cannot produce (no FIFOs, running as root for "permission denied", no encoder)
        are left out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name, path, reason):
        cases.append(Case(name, Path(path), reason))

    # --- not a regular, readable, non-empty file
    add("missing", folder / "missing.wav", "file not found")
    (folder / "empty.wav").write_bytes(b"")
    add("empty", folder / "empty.wav", "file is empty")
    (folder / "a_folder.wav").mkdir()
    add("folder", folder / "a_folder.wav", "is a folder")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.wav")
        add("fifo", folder / "fifo.wav", "is a FIFO")
    if os.path.exists(os.devnull):
        os.symlink(os.devnull, folder / "device.wav")
        add("device", folder / "device.wav", "is a device")
    os.symlink(folder / "loop_b.wav", folder / "loop_a.wav")
    os.symlink(folder / "loop_a.wav", folder / "loop_b.wav")
    add("symlink loop", folder / "loop_a.wav", "symlink loop")
    unix_socket = socket.socket(socket.AF_UNIX)
    try:
        unix_socket.bind(str(folder / "socket.wav"))
        add("socket", folder / "socket.wav", "is a socket")
    except OSError:
        pass
    finally:
        unix_socket.close()
    locked = folder / "locked.wav"
    sf.write(locked, _music(), SR)
    locked.chmod(0)
    try:
        with open(locked, "rb"):
            pass  # root reads anything: no permission case on this machine
    except PermissionError:
        add("permission denied", locked, "permission denied")

    # --- not audio
    rng = np.random.default_rng(7)
    (folder / "random_bytes.wav").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    add("random bytes", folder / "random_bytes.wav", "not a recognised audio format")
    (folder / "text.mp3").write_text("these are not the droids you are looking for\n" * 20)
    add("text named mp3", folder / "text.mp3", "not a recognised audio format")
    png = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 4, 4)
           + b"\x08\x02\x00\x00\x00" + b"\x00" * 4 + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    (folder / "image.ogg").write_bytes(png)
    add("PNG named ogg", folder / "image.ogg", "not a recognised audio format")
    (folder / "header_only.wav").write_bytes(_wav_header(0))
    add("WAV header without samples", folder / "header_only.wav", "no audio samples")

    # --- truncated
    two_seconds = (_music(2.0) * 32767).astype("<i2").tobytes()
    (folder / "promises_3_min.wav").write_bytes(_wav_header(180 * SR * 2) + two_seconds)
    add("WAV promising 3 min over 2 s", folder / "promises_3_min.wav", "truncated")
    whole_ogg = folder / "whole.ogg.src"
    sf.write(whole_ogg, _music(30.0), SR, format="OGG", subtype="VORBIS")
    add("first 30 % of an ogg", _cut(whole_ogg, folder / "cut.ogg", 0.3), "truncated")
    whole_mp3 = folder / "whole.mp3.src"
    try:
        sf.write(whole_mp3, _music(30.0), SR, format="MP3", subtype="MPEG_LAYER_III")
    except (sf.LibsndfileError, TypeError, ValueError):
        pass  # libsndfile without mp3 encoding
    else:
        add("first 30 % of an mp3", _cut(whole_mp3, folder / "cut.mp3", 0.3), "truncated")
    wav_source = folder / "music.wav.src"
    sf.write(wav_source, _music(30.0), SR, format="WAV")
    whole_m4a = folder / "whole.m4a.src"
    if _ffmpeg("-i", wav_source, "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
               "-f", "mp4", whole_m4a):
        add("first 30 % of an m4a", _cut(whole_m4a, folder / "cut.m4a", 0.3), "truncated")

    # --- content the features cannot describe
    sf.write(folder / "short.wav", _music(0.3), SR)
    add("0.3 s", folder / "short.wav", "too short")
    sf.write(folder / "silence.wav", np.zeros(int(SONG_SECONDS * SR), np.float32), SR)
    add("digital silence", folder / "silence.wav", "silent")
    quiet = (10 ** (-70 / 20)) * rng.standard_normal(int(SONG_SECONDS * SR))
    sf.write(folder / "minus_70_dbfs.wav", quiet.astype(np.float32), SR, subtype="FLOAT")
    add("noise at -70 dBFS", folder / "minus_70_dbfs.wav", "silent")
    nan = _music()
    nan[::997] = np.nan
    nan[500::1009] = np.inf
    sf.write(folder / "nan.wav", nan, SR, subtype="FLOAT")
    add("NaN and infinite samples", folder / "nan.wav", "NaN or infinite samples")

    # --- odd but fine: every entry point accepts these
    sf.write(folder / "pcm24.wav", _music(), SR, subtype="PCM_24")
    add("24-bit", folder / "pcm24.wav", None)
    sf.write(folder / "six_channels_96k.wav", _music(sr=96000, channels=6), 96000,
             subtype="PCM_16")
    add("6 channels at 96 kHz", folder / "six_channels_96k.wav", None)
    odd = folder / "ünïcödé name; with 'quotes' & spaces.wav"
    sf.write(odd, _music(seed=3), SR, subtype="PCM_U8")
    add("odd file name, 8-bit", odd, None)
    return cases

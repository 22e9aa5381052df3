"""Decode audio files into the mono signal the features are defined on, block by block.

libsndfile (through :mod:`soundfile`) reads wav, flac, ogg/vorbis, opus and mp3; anything it
refuses (m4a/aac, webm, wma, ...) goes through an ``ffmpeg`` binary shipped by the PyPI package
``imageio-ffmpeg``, so nothing has to be installed by hand. Either way the decoder yields blocks
at the file's own rate; channels are averaged (as :func:`librosa.to_mono` does) and the signal is
resampled with soxr "HQ" in streaming mode, which gives bit for bit the samples of
``librosa.load(path, sr=22050)``: features computed on it reproduce the GTZAN table.

The decoders read only the file they are given and always end:

* ffmpeg opens that one file through the ``file`` protocol, with the demuxers of
  :data:`FFMPEG_INPUT_FORMATS` only; containers that name other resources (DASH and HLS
  manifests, concat lists, image sequences, ...) get :data:`NOT_AUDIO_REASON`, as any other
  file that is not audio does;
* every ffmpeg run (probe, decode, :func:`convert_to_ogg`) goes through
  :class:`DecoderProcess`: its own process group, its error output drained into a bounded
  buffer while it runs, and a deadline that follows the stated length
  (:func:`decode_deadline`, at most :data:`DECODE_DEADLINE_CAP`), past which the group is
  killed and the user reads :func:`deadline_reason`; libsndfile's time is bounded the same way
  between blocks;
* a user reads one of the module's sentences (:data:`DAMAGED_REASON`, ...), never the decoder's
  own words, which go to the log at INFO level (escaped, shortened: :func:`loggable`).

Memory stays bounded: :func:`iter_file_windows` decodes block by block and holds one window (plus
one block) at a time, so a one-hour file costs no more than a 30-s one. :func:`load_audio` returns
one array and therefore refuses requests longer than :data:`MAX_LOAD_SECONDS`.

Native decoder chatter (libmpg123's "Note: ..." lines on a damaged mp3) is kept off the
terminal by :func:`decoder_stderr_captured`.
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile as sf
import soxr

from helpers.audio.files import check_audio_path
from helpers.constants import SAMPLE_RATE
from helpers.errors import AudioError

#: The longest stretch :func:`load_audio` decodes into one array (15 minutes); longer files are
#: read window by window with :func:`iter_file_windows`.
MAX_LOAD_SECONDS = 15 * 60.0


#: Native-rate samples decoded per block while streaming (about 3 s at 44.1 kHz).
_BLOCK_FRAMES = 1 << 17


_FFMPEG_CHANNELS = {"mono": 1, "stereo": 2}


@dataclass(frozen=True)
class AudioInfo:
    """What a decoder reports about a file before decoding it.

    Attributes
    ----------
    samplerate : int
        The file's own sample rate.
    channels : int
        Number of channels (0 when ffmpeg downmixes an unusual layout itself).
    duration : float or None
        Length in seconds, when the container states it.
    decoder : str
        ``"soundfile"`` or ``"ffmpeg"``.
    """

    samplerate: int
    channels: int
    duration: float | None
    decoder: str


def ffmpeg_executable() -> str:
    """Return the path of the ffmpeg binary shipped by ``imageio-ffmpeg``."""
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # none found: starting "ffmpeg" fails, and says so in one sentence
        return "ffmpeg"


def probe_duration(path) -> float | None:
    """Return a file's duration in seconds from its header (libsndfile, else ffmpeg's probe).

    Nothing is decoded. ``None`` when the header states no duration.

    Raises
    ------
    AudioError
        The path is not a readable file, or not audio.
    """
    return probe_audio(path).duration


#: Lines native decoders print on their own (libmpg123: "Note: Illegal Audio-MPEG-Header ...",
#: "Warning: ...", "[src/libmpg123/layer3.c:...] error: ...").
_DECODER_CHATTER = re.compile(r"^(?:\[[^\]]*\]\s*)?(?:Note|Warning|error|Error)\b|mpg123")


_capture_lock = threading.Lock()


_capture_state: dict = {"depth": 0, "saved": None, "file": None}


@contextmanager
def decoder_stderr_captured():
    """Keep what C decoders write to file descriptor 2 off the user's terminal.

    While the block runs, descriptor 2 points at a temporary file; afterwards the lines that
    look like decoder notes are dropped and anything else (another thread's log line) is
    written on. Re-entrant and shared between threads: the first to enter redirects, the last
    to leave restores. Where descriptor 2 cannot be redirected, the block runs as is.
    """
    with _capture_lock:
        state = _capture_state
        if state["depth"] == 0:
            saved = capture = None
            try:
                for stream in (sys.stderr, sys.__stderr__):
                    if stream is not None:
                        stream.flush()
                saved = os.dup(2)
                capture = tempfile.TemporaryFile()
                os.dup2(capture.fileno(), 2)
            except (AttributeError, OSError, ValueError):  # no descriptor 2 to redirect
                if saved is not None:
                    os.close(saved)
                    saved = None
                if capture is not None:
                    capture.close()
            else:
                state["saved"], state["file"] = saved, capture
        state["depth"] += 1
    try:
        yield
    finally:
        with _capture_lock:
            state["depth"] -= 1
            if state["depth"] == 0 and state["saved"] is not None:
                saved, capture = state["saved"], state["file"]
                state["saved"] = state["file"] = None
                for stream in (sys.stderr, sys.__stderr__):
                    try:
                        if stream is not None:
                            stream.flush()
                    except (OSError, ValueError):
                        pass
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
                capture.close()
                kept = [line for line in text.splitlines(keepends=True)
                        if line.strip() and not _DECODER_CHATTER.search(line)]
                if kept:
                    os.write(2, "".join(kept).encode("utf-8", "replace"))


#: What a user reads when a file cannot be decoded: one sentence per cause, never the decoder's
#: own words (those go to the log, at INFO level, escaped and shortened).
NOT_AUDIO_REASON = "cannot decode audio: not a recognised audio format"


NO_AUDIO_STREAM_REASON = "cannot decode audio: the file holds no audio stream"


DAMAGED_REASON = "cannot decode audio: the audio data is damaged"


NO_DECODER_REASON = "cannot decode audio: the decoder could not be started"


#: Sample rates a file may state (a header claiming 1 Hz would make a 1-MB file weeks long).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000


#: Containers ffmpeg may open (its demuxer names). Each holds its audio itself; formats that
#: name other resources (dash, hls, concat, playlists, image sequences, ...) are not listed, so
#: a file cannot make the decoder read anything but itself.
FFMPEG_INPUT_FORMATS = ("wav", "w64", "au", "aiff", "caf", "flac", "ogg", "mp3", "mov",
                        "matroska", "aac", "asf", "wv")


#: Protocols ffmpeg may use: the one file it is given, and the pipe it writes samples to.
FFMPEG_PROTOCOLS = ("file", "pipe")


#: Every decode may take this many seconds ...
DECODE_DEADLINE_BASE = 15.0


#: ... plus this many per second of audio the header states (decoders run at hundreds of times
#: real time; this leaves room for a loaded machine) ...
DECODE_SECONDS_PER_AUDIO_SECOND = 0.25


#: ... and never more than this, which is also the deadline of a file that states no length.
DECODE_DEADLINE_CAP = 300.0


#: Deadline for reading a file's header with ffmpeg.
PROBE_DEADLINE = 15.0


#: Bytes of a decoder's error output kept (its start and its end, each up to this much).
_ERROR_TEXT_LIMIT = 32 * 1024


_log = logging.getLogger(__name__)


def deadline_reason(seconds: float) -> str:
    """The one reason given for a decoder stopped at its deadline.

    Examples
    --------
    >>> deadline_reason(15)
    'cannot decode audio: the decoder did not finish within 15 s'
    """
    return f"cannot decode audio: the decoder did not finish within {seconds:g} s"


def decode_deadline(seconds: float | None) -> float:
    """Return how long decoding *seconds* of audio may take (see :data:`DECODE_DEADLINE_CAP`).

    Examples
    --------
    >>> decode_deadline(240.0), decode_deadline(None)
    (75.0, 300.0)
    """
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return DECODE_DEADLINE_CAP
    return min(DECODE_DEADLINE_CAP, DECODE_DEADLINE_BASE + DECODE_SECONDS_PER_AUDIO_SECOND * seconds)


def loggable(text, limit: int = 300) -> str:
    """Return *text* fit for one log line: control characters escaped, at most *limit* characters.

    Examples
    --------
    >>> loggable("ok\nforged line\x1b[31m")
    'ok\\nforged line\\x1b[31m'
    """
    text = str(text)
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in text[: limit + 1])
    return escaped[:limit] + ("..." if len(escaped) > limit or len(text) > limit else "")


def _last_lines(text: str, n: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


class _BoundedText:
    """The start and the end of a stream of bytes, at most *limit* bytes of each."""

    def __init__(self, limit: int = _ERROR_TEXT_LIMIT):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]
                self.dropped = True

    def text(self) -> str:
        middle = "\n[...]\n" if self.dropped else ""
        return (bytes(self.head) + middle.encode() + bytes(self.tail)).decode("utf-8", "replace")


def _drain_into(stream, sink: _BoundedText) -> None:
    try:
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.add(chunk)
    except (OSError, ValueError):  # the pipe was closed under us: the process is gone
        pass


class DecoderProcess:
    """An external decoder run with a deadline, which never blocks on its own error output.

    The process runs in its own process group. Its error output is drained by a thread into a
    bounded buffer while it runs (a pipe nobody reads fills up and stops the process, which
    then never finishes its audio output). :meth:`read` waits for standard output at most what
    is left of *deadline* seconds, summed over every wait, so a consumer that takes its time
    between reads is not charged for it. Past the deadline the process group is killed and
    :class:`~helpers.errors.AudioError` says :func:`deadline_reason`.

    Parameters
    ----------
    command : list of str
        The program and its arguments.
    deadline : float
        Seconds the process may keep the caller waiting, in all.
    source : str or path-like
        What errors name.
    output : bool
        Read standard output (a decoder); ``False`` discards it (a probe, a conversion).
    """

    def __init__(self, command: list[str], deadline: float, source, *, output: bool = True):
        self.deadline = float(deadline)
        self.source = source
        self._waited = 0.0
        self._errors = _BoundedText()
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if output else subprocess.DEVNULL,
                stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        except OSError as exc:
            _log.info("cannot start %s: %s", loggable(command[0]), loggable(exc))
            raise AudioError(source, NO_DECODER_REASON) from None
        self._drain = threading.Thread(target=_drain_into, args=(self._process.stderr, self._errors),
                                       name="decoder-errors", daemon=True)
        self._drain.start()
        self._poll = None
        if output:
            self._poll = select.poll()
            self._poll.register(self._process.stdout.fileno(), select.POLLIN | select.POLLHUP)

    @property
    def pid(self) -> int:
        """The decoder's process id (also its process group's)."""
        return self._process.pid

    def _overdue(self):
        self.kill()
        _log.info("decoder stopped at its %g-s deadline on %s", self.deadline,
                  loggable(self.source))
        raise AudioError(self.source, deadline_reason(self.deadline))

    def read(self, n: int) -> bytes:
        """Return up to *n* bytes of standard output; fewer only where the output ends."""
        fd = self._process.stdout.fileno()
        parts, have = [], 0
        while have < n:
            left = self.deadline - self._waited
            if left <= 0:
                self._overdue()
            started = time.monotonic()
            ready = self._poll.poll(max(1, int(left * 1000)))
            self._waited += time.monotonic() - started
            if not ready:
                continue
            chunk = os.read(fd, n - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def wait(self) -> int:
        """Wait for the process to end (within what is left of the deadline); its exit status."""
        try:
            return self._process.wait(timeout=max(0.0, self.deadline - self._waited))
        except subprocess.TimeoutExpired:
            self._overdue()

    def kill(self) -> None:
        """Kill the decoder's whole process group (anything it started goes too) and reap it."""
        if self._process.returncode is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._process.wait()
        self.close()

    def close(self) -> None:
        """Release the pipes (after :meth:`wait` or :meth:`kill`)."""
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._drain.join(timeout=5)
        self._process.stderr.close()

    def errors(self) -> str:
        """What the process wrote to its error output (its start and end, bounded)."""
        return self._errors.text()


def ffmpeg_input(path) -> list[str]:
    """ffmpeg's input arguments for *path*: that one file, read by a listed demuxer only.

    The path goes through the ``file:`` protocol (a name such as ``concat:a|b`` or
    ``subfile,,...`` stays a file name), only :data:`FFMPEG_PROTOCOLS` may be opened and only
    :data:`FFMPEG_INPUT_FORMATS` may demux it.
    """
    return ["-protocol_whitelist", ",".join(FFMPEG_PROTOCOLS),
            "-format_whitelist", ",".join(FFMPEG_INPUT_FORMATS),
            "-i", "file:" + os.fspath(Path(path).absolute())]


def _soundfile_info(path: Path) -> AudioInfo | None:
    try:
        with decoder_stderr_captured(), sf.SoundFile(str(path)) as handle:
            frames, rate, channels = handle.frames, handle.samplerate, handle.channels
            container = handle.format
    except Exception:  # libsndfile does not know the format: let ffmpeg try
        return None
    if container == "RAW":
        # no header at all: libsndfile guessed from the name (".au" read as headerless u-law),
        # so any text or noise file would "decode"; ffmpeg judges it instead
        return None
    # Some formats (mp3 streams without a header) report no frame count.
    duration = frames / rate if 0 < frames < 2**62 and rate > 0 else None
    return AudioInfo(int(rate), int(channels), duration, "soundfile")


def _ffmpeg_info(path: Path, source=None) -> AudioInfo:
    source = source or path
    probe = DecoderProcess([ffmpeg_executable(), "-hide_banner", "-nostdin", *ffmpeg_input(path)],
                           PROBE_DEADLINE, source, output=False)
    try:
        probe.wait()
    finally:
        probe.kill()
    text = probe.errors()
    stream = re.search(r"Stream #\S+.*?: Audio: [^\n]*?(\d+) Hz(?:, ([^,\n]+))?", text)
    if stream is None:
        _log.info("ffmpeg finds no audio in %s: %s", loggable(source), loggable(_last_lines(text)))
        # a real container whose streams are all something else (a video without sound);
        # an audio stream ffmpeg cannot describe (no rate) means it is not audio after all
        no_stream = (re.search(r"Stream #\S+.*?: (?:Video|Subtitle|Data|Attachment):", text)
                     is not None and ": Audio:" not in text)
        raise AudioError(source, NO_AUDIO_STREAM_REASON if no_stream else NOT_AUDIO_REASON)
    layout = (stream.group(2) or "").strip()
    channels = _FFMPEG_CHANNELS.get(layout.split("(")[0].strip(), 0)
    match = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    duration = None
    if match:
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    return AudioInfo(int(stream.group(1)), channels, duration, "ffmpeg")


def probe_audio(path, source=None, *, path_checked: bool = False) -> AudioInfo:
    """Return the sample rate, channels, duration and decoder of an audio file.

    Parameters
    ----------
    path : path-like
        The file.
    source : str, optional
        The name errors report; default *path*.
    path_checked : bool
        The caller has just run :func:`check_audio_path` on *path*: do not repeat it.

    Raises
    ------
    AudioError
        The path fails :func:`check_audio_path`, neither libsndfile nor ffmpeg (limited to
        :data:`FFMPEG_INPUT_FORMATS`, within :data:`PROBE_DEADLINE`) can read it, or it states
        a sample rate outside :data:`MIN_SAMPLE_RATE`-:data:`MAX_SAMPLE_RATE`.
    """
    path = Path(path)
    if not path_checked:  # never hand a FIFO or a device to a decoder
        check_audio_path(path, source)
    info = _soundfile_info(path) or _ffmpeg_info(path, source)
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(source or path, f"cannot decode audio: the file states a sample rate of "
                                         f"{info.samplerate} Hz, outside {MIN_SAMPLE_RATE}-"
                                         f"{MAX_SAMPLE_RATE} Hz")
    return info


#: Tags :func:`probe_tags` returns (when the file carries them).
TAG_NAMES = ("title", "artist", "album", "genre")

_FFMPEG_TAG = re.compile(r"^\s+(" + "|".join(TAG_NAMES) + r")\s*: (.+)$", re.MULTILINE | re.IGNORECASE)


def probe_tags(path, source=None) -> dict[str, str]:
    """Return a file's title, artist, album and genre tags (those it has), nothing decoded.

    libsndfile's metadata (WAV, FLAC, Ogg Vorbis/Opus, AIFF) when it reads the file, else the
    ``Metadata`` that ffmpeg's probe prints (MP3 ID3, MP4 atoms ...), within
    :data:`PROBE_DEADLINE`.

    Raises
    ------
    AudioError
        The path fails :func:`check_audio_path`, or the ffmpeg probe fails or times out.
    """
    path = Path(path)
    check_audio_path(path, source)
    try:
        with decoder_stderr_captured(), sf.SoundFile(str(path)) as handle:
            tags = handle.copy_metadata() if handle.format != "RAW" else None
    except Exception:  # libsndfile does not know the format: ffmpeg's probe reads the tags
        tags = None
    if tags is None:
        probe = DecoderProcess([ffmpeg_executable(), "-hide_banner", "-nostdin", *ffmpeg_input(path)],
                               PROBE_DEADLINE, source or path, output=False)
        try:
            probe.wait()
        finally:
            probe.kill()
        tags = {}
        for name, value in _FFMPEG_TAG.findall(probe.errors()):
            tags.setdefault(name.lower(), value)  # the first block is the file's own
    return {name: str(tags[name]).strip() for name in TAG_NAMES
            if isinstance(tags.get(name), str) and str(tags[name]).strip()}


def convert_to_ogg(path, target, *, info: AudioInfo | None = None, source=None) -> Path:
    """Write *path* as an Ogg Vorbis file *target* (which libsndfile decodes in-process).

    An Ogg Vorbis file is copied as is; anything else is re-encoded by the shipped ffmpeg under
    the decoders' rules: that one file, a demuxer of :data:`FFMPEG_INPUT_FORMATS`, error output
    drained, and :func:`decode_deadline` of its stated length, past which ffmpeg is killed.

    Parameters
    ----------
    path : path-like
        The audio file.
    target : path-like
        The Ogg file to write (replaced if it exists).
    info : AudioInfo, optional
        The file's :func:`probe_audio` result, when the caller has it.
    source : str, optional
        What errors name; default *path*.

    Raises
    ------
    AudioError
        Not audio, damaged, or the conversion passed its deadline (*target* is then removed).
    """

    path, target = Path(path), Path(target)
    source = path if source is None else source
    if info is None:
        info = probe_audio(path, source)
    if info.decoder == "soundfile":
        with decoder_stderr_captured():
            known = sf.info(str(path))
        if (known.format, known.subtype) == ("OGG", "VORBIS"):
            shutil.copyfile(path, target)
            return target
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error", "-y",
               *ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
               "-acodec", "libvorbis", "-f", "ogg", "file:" + os.fspath(target.absolute())]
    converter = DecoderProcess(command, decode_deadline(info.duration), source, output=False)
    try:
        status = converter.wait()
    except AudioError:
        target.unlink(missing_ok=True)
        raise
    finally:
        converter.kill()
    if status != 0 or not target.is_file() or target.stat().st_size == 0:
        _log.info("ffmpeg could not convert %s (exit status %s): %s", loggable(source), status,
                  loggable(_last_lines(converter.errors())))
        target.unlink(missing_ok=True)
        raise AudioError(source, DAMAGED_REASON)
    return target


def mix_to_mono(block: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` float32 block into a new 1-D array.

    Adds the channel columns in order, then divides: the same float32 result as
    ``block.mean(axis=1)`` (and so as ``librosa.to_mono``) at a tenth of its cost, since numpy's
    reduction over a 2-wide axis is slow.
    """
    mono = block[:, 0].astype(np.float32, copy=True)
    for channel in range(1, block.shape[1]):
        mono += block[:, channel]
    if block.shape[1] > 1:
        mono /= np.float32(block.shape[1])
    return mono


def _seconds_asked(info: AudioInfo, offset: float, frames: int | None) -> float | None:
    """Seconds of audio a decode is asked for (what its deadline follows)."""
    if frames is not None:
        return frames / info.samplerate
    return None if info.duration is None else max(0.0, info.duration - offset)


def _soundfile_blocks(path: Path, info: AudioInfo, offset: float,
                      frames: int | None) -> Iterator[np.ndarray]:
    # libsndfile runs in this process and cannot be killed; its time is still bounded between
    # blocks, so a decoder crawling through a hostile file is stopped all the same
    deadline = decode_deadline(_seconds_asked(info, offset, frames))
    spent = 0.0
    with decoder_stderr_captured():
        handle = sf.SoundFile(str(path))
    with handle:
        if offset:
            # librosa.load seeks to int(offset * sr): same first sample.
            with decoder_stderr_captured():
                handle.seek(int(offset * info.samplerate))
        remaining = -1 if frames is None else frames
        while remaining != 0:
            want = _BLOCK_FRAMES if remaining < 0 else min(_BLOCK_FRAMES, remaining)
            started = time.monotonic()
            with decoder_stderr_captured():
                block = handle.read(frames=want, dtype="float32", always_2d=True)
            spent += time.monotonic() - started
            if spent > deadline:
                _log.info("libsndfile stopped at its %g-s deadline on %s", deadline,
                          loggable(path))
                raise AudioError(path, deadline_reason(deadline))
            if len(block) == 0:
                return
            if remaining > 0:
                remaining -= len(block)
            yield mix_to_mono(block)


def _ffmpeg_blocks(path: Path, info: AudioInfo, offset: float,
                   frames: int | None) -> Iterator[np.ndarray]:
    channels = info.channels or 1
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-v", "error"]
    if offset:
        command += ["-ss", f"{offset:.6f}"]
    command += [*ffmpeg_input(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if frames is not None:
        # A little more than needed; the exact length is enforced below, in samples.
        command += ["-t", f"{frames / info.samplerate + 1.0:.6f}"]
    if info.channels == 0:
        command += ["-ac", "1"]  # unusual layouts: let ffmpeg apply its weighted downmix
    command += ["-ar", str(info.samplerate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    decoder = DecoderProcess(command, decode_deadline(_seconds_asked(info, offset, frames)), path)
    bytes_per_frame = 4 * channels
    remaining = -1 if frames is None else frames
    leftover = b""
    status = None
    try:
        while remaining != 0:
            want = _BLOCK_FRAMES if remaining < 0 else min(_BLOCK_FRAMES, remaining)
            chunk = leftover + decoder.read(want * bytes_per_frame - len(leftover))
            usable = len(chunk) - len(chunk) % bytes_per_frame
            leftover = chunk[usable:]
            if usable == 0:
                status = decoder.wait()  # the output ended: so should the process
                break
            block = np.frombuffer(chunk[:usable], dtype=np.float32).reshape(-1, channels)
            if remaining > 0:
                remaining -= len(block)
            yield mix_to_mono(block)
    finally:
        decoder.kill()  # enough samples, the consumer stopped early, or the deadline passed
    if status:
        _log.info("ffmpeg failed on %s (exit status %s): %s", loggable(path), status,
                  loggable(_last_lines(decoder.errors())))
        raise AudioError(path, DAMAGED_REASON)


def _blocks_with_fallback(path: Path, info: AudioInfo, offset: float,
                          frames: int | None) -> Iterator[np.ndarray]:
    """Blocks from the probed decoder; if libsndfile opens a file but fails on its first block
    (some mp3 variants), ffmpeg gets a try before the file is called undecodable."""
    if info.decoder == "ffmpeg":
        yield from _ffmpeg_blocks(path, info, offset, frames)
        return
    blocks = _soundfile_blocks(path, info, offset, frames)
    try:
        first = next(blocks, None)
    except AudioError:
        raise
    except Exception as exc:
        _log.info("libsndfile failed on the first block of %s (%s); trying ffmpeg",
                  loggable(path), loggable(exc))
        # keep the rate the caller resamples from; ffmpeg converts to it if needed
        fallback = AudioInfo(info.samplerate, _ffmpeg_info(path).channels, info.duration, "ffmpeg")
        yield from _ffmpeg_blocks(path, fallback, offset, frames)
        return
    if first is not None:
        yield first
        yield from blocks


def iter_decoded_blocks(path, offset: float = 0.0, duration: float | None = None,
                        sr: int = SAMPLE_RATE, *,
                        info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the mono signal at *sr* block by block (memory bounded by one block).

    Parameters
    ----------
    path : path-like
        Audio file.
    offset, duration : float
        Seconds to skip, and seconds to read (``None``: to the end).
    sr : int
        Output rate.
    info : AudioInfo, optional
        The file's :func:`probe_audio` (or :func:`check_audio_info`) result, when the caller
        has it; default: probe the file here.

    Yields
    ------
    np.ndarray
        Consecutive float32 blocks whose concatenation equals ``librosa.load(path, sr=sr,
        offset=offset, duration=duration)[0]``.

    Raises
    ------
    AudioError
        The file cannot be decoded: one of the module's sentences (:data:`DAMAGED_REASON`,
        :func:`deadline_reason`, ...), never the decoder's own words.
    """
    path = Path(path)
    if info is None:
        info = probe_audio(path)
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, f"invalid window: offset {offset} s, duration {duration} s")
    frames = None if duration is None else int(duration * info.samplerate)
    blocks = _blocks_with_fallback(path, info, offset, frames)
    n_in = 0
    n_out = 0
    try:
        if info.samplerate == sr:
            for block in blocks:
                n_in += len(block)
                yield block
            return
        stream = soxr.ResampleStream(info.samplerate, sr, 1, dtype="float32", quality="HQ")
        for block in blocks:
            n_in += len(block)
            out = stream.resample_chunk(np.ascontiguousarray(block), last=False)
            n_out += len(out)
            if len(out):
                yield out
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # librosa.resample fixes the length to ceil(n * ratio); do the same.
        expected = int(np.ceil(n_in * sr / info.samplerate))
        tail = tail[: max(0, expected - n_out)]
        if expected > n_out + len(tail):
            tail = np.concatenate([tail, np.zeros(expected - n_out - len(tail), np.float32)])
        if len(tail):
            yield tail
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises on a file that breaks off mid-stream
        _log.info("decoding %s failed: %s: %s", loggable(path), type(exc).__name__, loggable(exc))
        raise AudioError(path, DAMAGED_REASON) from exc
    finally:
        blocks.close()  # a consumer that stops early stops the decoder process now, not at GC


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a decoded mono signal with the resampler decoding uses (soxr ``"HQ"``).

    The length is fixed to ``ceil(len(y) * sr_out / sr_in)``, as decoding at *sr_out* gives;
    a feature set defined at another rate than the one a signal was decoded at reads it so
    (:func:`helpers.features.sets.combine_feature_sets`).

    Examples
    --------
    >>> resample(np.zeros(22050, np.float32), 22050, 16000).shape
    (16000,)
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr_in == sr_out:
        return y
    out = soxr.resample(y, sr_in, sr_out, quality="HQ")
    expected = int(np.ceil(len(y) * sr_out / sr_in))
    if len(out) < expected:
        out = np.concatenate([out, np.zeros(expected - len(out), np.float32)])
    return out[:expected].astype(np.float32, copy=False)


def load_audio(path, offset: float = 0.0, duration: float | None = None,
               sr: int = SAMPLE_RATE, *, info: AudioInfo | None = None) -> np.ndarray:
    """Decode one window of an audio file to mono float32 at *sr*.

    Parameters
    ----------
    path : path-like
        wav, flac, ogg, mp3, m4a/aac or anything else ffmpeg reads.
    offset : float
        Start in seconds.
    duration : float, optional
        Seconds to read; ``None`` reads to the end (at most :data:`MAX_LOAD_SECONDS`).
    sr : int
        Output sample rate.
    info : AudioInfo, optional
        The file's :func:`probe_audio` (or :func:`check_audio_info`) result, when the caller
        has it; default: probe the file here (once, for the length check and the decoder).

    Returns
    -------
    np.ndarray
        The same samples as ``librosa.load(path, sr=sr, mono=True, offset=offset,
        duration=duration)[0]``.

    Raises
    ------
    AudioError
        The file is missing, empty, not audio, corrupt, longer than :data:`MAX_LOAD_SECONDS`
        for one array, or holds no samples in the requested window.
    """
    path = Path(path)
    if info is None:
        info = probe_audio(path)
    wanted = duration
    if wanted is None and info.duration is not None:
        wanted = max(0.0, info.duration - offset)
    if wanted is not None and wanted > MAX_LOAD_SECONDS:
        raise AudioError(
            path, f"{wanted / 60:.0f} minutes is too long to decode at once (limit "
                  f"{MAX_LOAD_SECONDS / 60:.0f}); read it window by window (iter_file_windows)")
    blocks = []
    total = 0
    limit = int(MAX_LOAD_SECONDS * sr) + sr
    for block in iter_decoded_blocks(path, offset=offset, duration=duration, sr=sr, info=info):
        blocks.append(block)
        total += len(block)
        if total > limit:  # the container did not state its length
            raise AudioError(path, f"longer than {MAX_LOAD_SECONDS / 60:.0f} minutes; read it "
                                   "window by window (iter_file_windows)")
    if total == 0:
        where = f" after {offset} s" if offset else ""
        raise AudioError(path, f"no audio samples{where}")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]

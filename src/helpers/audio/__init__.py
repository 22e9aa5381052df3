"""Audio: reading files safely, decoding them, checking them, and cutting them into windows.

Every entry point that reads audio goes through these modules, so one file gets one verdict and
one reason wherever it is given. Lower first: ``files`` (paths, suffixes), ``decode``
(libsndfile and a bounded ffmpeg), ``checks`` (the rule set), ``windows`` (the one windowing
policy), ``netsafe`` (which URLs may be fetched), ``ingest`` (URLs to local files).
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "checks", "decode", "files", "ingest", "netsafe", "windows",
], submod_attrs={
    "files": ["AUDIO_SUFFIXES", "check_audio_path", "names_a_file"],
    "decode": ["DAMAGED_REASON", "DECODE_DEADLINE_CAP", "FFMPEG_INPUT_FORMATS", "MAX_LOAD_SECONDS",
               "NOT_AUDIO_REASON", "AudioInfo", "DecoderProcess", "convert_to_ogg",
               "decode_deadline", "deadline_reason", "decoder_stderr_captured",
               "ffmpeg_executable", "iter_decoded_blocks", "load_audio", "loggable",
               "probe_audio", "probe_duration", "resample"],
    "checks": ["NON_FINITE_REASON", "SILENCE_THRESHOLD_DB", "WINDOW_NOTES", "check_audio",
               "check_audio_info", "check_decoded_length", "check_not_truncated", "is_silent",
               "no_usable_window_reason", "signal_note", "signal_problem", "signal_reason",
               "silent_reason", "too_short_reason"],
    "windows": ["MIN_WINDOW_SECONDS", "WINDOW_SECONDS_RANGE", "Window", "check_window_seconds",
                "iter_checked_windows", "iter_file_windows", "iter_windows",
                "min_window_seconds", "window_note"],
})

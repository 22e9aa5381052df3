"""Text that people type or send, made safe to store, show and log.

Two rules, used everywhere the workspace keeps or prints such text:

* :func:`clean_text` — for what is **stored and shown** (genre names, file names, who gave an
  answer, song titles from a site): no control characters (Unicode category C*: ``\\x00``-``\\x1f``,
  ``\\x7f``, ``\\x85``, ...) and no bidirectional overrides, isolates or marks (U+202A-202E,
  U+2066-2069, U+200E/F, U+061C), which would make a name display reversed or hide part of it;
  white space of any kind becomes one plain space.
* :func:`log_safe` / :class:`SafeLogFilter` — for what goes to a **log**: control characters
  are written as escapes (``\\n``, ``\\x1b``, ``\\u202e``), so a value can never start a forged log
  line or recolour a terminal, and each value is capped in length, so one request cannot write
  megabytes of log.

Examples
--------
>>> clean_text("\\u202eevil-rtl  \\x85 rock\\x7f")
'evil-rtl rock'
>>> log_safe("http://x/\\nmusic-study serve: model ready")
'http://x/\\\\nmusic-study serve: model ready'
>>> log_safe("a" * 300)[-4:]
'aaa…'
"""

from __future__ import annotations

import logging
import traceback
import unicodedata
from collections.abc import Mapping

#: Longest value written into one log field (characters; the rest becomes "…").
LOG_FIELD_CHARACTERS = 200
#: Longest log message without arguments, and longest line of a logged traceback.
LOG_LINE_CHARACTERS = 500
#: Most lines of one logged traceback.
LOG_TRACEBACK_LINES = 80
# Bidirectional formatting characters (all are category Cf, listed to say what is meant).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def clean_text(text, max_characters: int | None = None) -> str:
    """Return *text* (NFC) without control or bidi-formatting characters, with white space
    collapsed to single spaces and trimmed; cut to *max_characters* when given.

    Every character of Unicode category C* (control, format, private use, unassigned,
    surrogate) is dropped, except white space, which becomes a space (so ``"a\\tb"`` is
    ``"a b"``, not ``"ab"``).
    """
    text = unicodedata.normalize("NFC", str(text))
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif ch in _BIDI or unicodedata.category(ch)[0] == "C":
            continue
        else:
            kept.append(ch)
    cleaned = " ".join("".join(kept).split())
    if max_characters is not None:
        cleaned = cleaned[:max_characters].rstrip()
    return cleaned


def _escape(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000
                                                    else f"\\U{code:08x}")


def log_safe(value, max_characters: int = LOG_FIELD_CHARACTERS) -> str:
    """Return ``str(value)`` fit for one log field: control, format and line-separator
    characters escaped, at most *max_characters* characters (then "…")."""
    text = str(value)
    if len(text) > max_characters:
        text = text[:max_characters] + "…"
    return "".join(_escape(ch) if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch
                   for ch in text)


def _safe_argument(value):
    # numbers keep their type so "%d" and "%.1f" still work; everything else becomes text
    if isinstance(value, bool | int | float) or value is None:
        return value
    return log_safe(value)


class SafeLogFilter(logging.Filter):
    """Escape and cap every argument of a log record, its message when it has no arguments,
    and each line of its traceback (indented, so no traceback line reads as a log line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_music_study_safe", False):
            return True  # one record can pass a logger's and a handler's filter
        record._music_study_safe = True
        if record.args:
            if isinstance(record.args, Mapping):
                record.args = {k: _safe_argument(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_safe_argument(v) for v in record.args)
        else:
            record.msg = log_safe(record.msg, LOG_LINE_CHARACTERS)
        if record.exc_info and not record.exc_text:
            lines = "".join(traceback.format_exception(*record.exc_info)).splitlines()
            if len(lines) > LOG_TRACEBACK_LINES:
                lines = lines[:10] + ["…"] + lines[-(LOG_TRACEBACK_LINES - 11):]
            record.exc_text = "\n".join("    | " + log_safe(line, LOG_LINE_CHARACTERS)
                                        for line in lines)
        if record.stack_info:
            record.stack_info = "\n".join("    | " + log_safe(line, LOG_LINE_CHARACTERS)
                                          for line in record.stack_info.splitlines())
        return True


_FILTER = SafeLogFilter()


def safe_logger(name: str) -> logging.Logger:
    """Return ``logging.getLogger(name)`` with :class:`SafeLogFilter` on it (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, SafeLogFilter) for f in logger.filters):
        logger.addFilter(_FILTER)
    return logger


def make_handler_safe(handler: logging.Handler) -> logging.Handler:
    """Put :class:`SafeLogFilter` on *handler*, so records of every library it prints
    (the web server's own included) are escaped too; return *handler*."""
    if not any(isinstance(f, SafeLogFilter) for f in handler.filters):
        handler.addFilter(_FILTER)
    return handler


__all__ = ["LOG_FIELD_CHARACTERS", "SafeLogFilter", "clean_text", "log_safe", "make_handler_safe",
           "safe_logger"]

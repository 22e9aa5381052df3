"""Which URLs the workspace may fetch: http(s) only, and only from public internet addresses.

A URL typed into the web page must never make the server read its own files or talk to
machines on its own network (loopback, the home or lab LAN, cloud metadata services, ...).
:func:`check_url` checks a URL before anything is fetched: the scheme, then every address its
host resolves to. :func:`guard` applies the same address rule to *every* connection made in the
current thread while it is active, so redirect hops and whatever yt-dlp resolves on a page are
refused too, and a host that resolves differently the second time (DNS rebinding) gains nothing:
the check runs on the very addresses the socket connects to.

Environment variables
---------------------
MUSIC_STUDY_ALLOW_HOSTS
    Comma-separated ``host:port`` pairs that are fetched even though they are not public (e.g.
    ``127.0.0.1:8765`` for a test server). Empty by default: nothing but public addresses.

Examples
--------
>>> check_url("ftp://example.org/song.ogg")  # doctest: +SKIP
InputError: ftp://example.org/song.ogg: not an http(s) URL
>>> with guard():  # doctest: +SKIP
...     fetch_with_yt_dlp(url)   # any connection to a private address raises UnsafeAddressError
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from urllib.parse import urlsplit

from helpers.errors import InputError

#: Environment variable holding the ``host:port`` pairs allowed although not public.
ALLOW_HOSTS_ENV = "MUSIC_STUDY_ALLOW_HOSTS"
#: The only URL schemes fetched.
SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeAddressError(OSError):
    """A connection to a non-public address was refused (an ``OSError``, so HTTP libraries
    treat it as a failed connection and stop)."""


def allowed_hosts() -> set[tuple[str, int]]:
    """Return the ``(host, port)`` pairs of ``$MUSIC_STUDY_ALLOW_HOSTS`` (lower-case hosts)."""
    pairs = set()
    for item in os.environ.get(ALLOW_HOSTS_ENV, "").split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            pairs.add((host.strip("[]").lower(), int(port)))
    return pairs


def address_problem(address: str) -> str | None:
    """Return why *address* (an IP literal) may not be fetched from, or ``None`` when public.

    Loopback, private, link-local, multicast, reserved, unspecified and every other non-global
    range (carrier-grade NAT, documentation, ...) are refused, for IPv4 and IPv6 alike; an
    IPv4 address wrapped in IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo) is judged as the IPv4 one.

    Examples
    --------
    >>> address_problem("127.0.0.1")
    'a loopback address'
    >>> address_problem("::ffff:10.0.0.1")
    'a private address'
    >>> address_problem("93.184.215.14") is None
    True
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return address_problem(str(inner))
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return "not a public address"
    return None


def host_problem(host: str, port: int) -> str | None:
    """Resolve *host* and return why it may not be fetched from, or ``None`` when every
    address it resolves to is public (or ``host:port`` is on the allow-list)."""
    if (host.strip("[]").lower(), int(port)) in allowed_hosts():
        return None
    try:
        infos = _REAL_GETADDRINFO(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return f"its host does not resolve ({exc})"
    for info in infos:
        problem = address_problem(info[4][0])
        if problem:
            return f"{host} is {problem}"
    return None if infos else "its host does not resolve"


def check_url(url) -> str:
    """Return *url* stripped when it is an http(s) URL of a public host; raise otherwise.

    Raises
    ------
    InputError
        Not a text, not http(s) (a local path, ``file:``, ``ftp:`` ...), no host, user
        credentials in the URL, or a host that resolves to a non-public address. The message
        names the URL and the reason (meant for a log or the command line; a web page shows
        one generic sentence instead).
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(repr(url), "not an http(s) URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(url, f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        reason = (f"unsupported URL scheme {scheme!r} (use http or https)" if "://" in url
                  else "not an http(s) URL")
        raise InputError(url, reason)
    if not parts.hostname:
        raise InputError(url, "URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InputError(url, "URL carries a user name or password")
    problem = host_problem(parts.hostname, port or _DEFAULT_PORTS[scheme])
    if problem:
        raise InputError(url, f"refused: {problem} (only public internet addresses are fetched)")
    return url


# --------------------------------------------------------------------------- connection guard

_REAL_GETADDRINFO = socket.getaddrinfo
_state = threading.local()
_install_lock = threading.Lock()


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    infos = _REAL_GETADDRINFO(host, port, *args, **kwargs)
    if not getattr(_state, "depth", 0) or host is None:
        return infos
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = socket.getservbyname(str(port)) if port else 0
    if (name.strip("[]").lower(), number) in allowed_hosts():
        return infos
    for info in infos:
        problem = address_problem(info[4][0])
        if problem:
            _state.refused = f"{name} is {problem}"
            raise UnsafeAddressError(f"refused to connect to {name}: {problem}")
    return infos


@contextlib.contextmanager
def guard():
    """Refuse, in this thread, every connection to a non-public address while active.

    Every HTTP library resolves a host through :func:`socket.getaddrinfo` before connecting;
    inside the ``with`` block that call raises :class:`UnsafeAddressError` when any address
    is not public (unless ``host:port`` is allow-listed). Other threads are not affected.

    Yields
    ------
    types.SimpleNamespace-like
        An object whose ``refused`` attribute holds the last refusal's reason (or ``None``),
        so a caller can tell a refusal from an ordinary network failure.
    """
    with _install_lock:
        if socket.getaddrinfo is not _guarded_getaddrinfo:
            socket.getaddrinfo = _guarded_getaddrinfo
    _state.depth = getattr(_state, "depth", 0) + 1
    if _state.depth == 1:
        _state.refused = None
    try:
        yield _state
    finally:
        _state.depth -= 1

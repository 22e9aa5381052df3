"""Who may use the web page, and what a request may cost before that is known.

The pieces :mod:`helpers.web.app` puts together:

* :class:`HostRule` — the names the server answers to (its address, ``localhost``,
  ``--public-name``); any other ``Host`` is refused, so a page on another name that
  re-points its DNS to this machine (DNS rebinding) cannot read or use the page.
* :class:`AttemptLimiter` — wrong keys are slowed down per client address (a few free tries,
  then waits that double), with bounded memory.
* :class:`SessionBook` — the session cookie holds a random session id that the server knows
  (stored hashed in the label store's file, so friends stay signed in across a restart with the
  same key); nothing derived from the key ever leaves the server. The cookie's signing secret
  is random too, kept in the same file.
* :class:`Access` — the checks shared by the page and the HTTP server: host, key, session,
  client address behind a trusted proxy, https.
* :func:`build_server` — waitress, with limits (request body just above the upload limit,
  header size, connections, idle time, buffers) and a request parser that decides as soon as
  a request's headers are in: a request that may not send a body (no valid key or session, a
  foreign ``Host`` or ``Origin``, a body larger than the upload limit or the disk quota) is
  answered at once and its body is never read, so a stranger costs no disk at all. When all
  connections are taken, the longest-idle connection that is not doing any work makes room for
  the new one, so idle or slow connections cannot lock anyone out.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http
import ipaddress
import json
import math
import secrets
import socket
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from helpers.text import safe_logger

#: Wrong keys one client may try before it has to wait.
FREE_ATTEMPTS = 5
#: The first wait after the free tries, in seconds; each further wrong key doubles it.
FIRST_WAIT_SECONDS = 2.0
#: The longest wait, in seconds.
LONGEST_WAIT_SECONDS = 15 * 60
#: Client addresses remembered by the limiter (the oldest are forgotten first).
LIMITER_CLIENTS = 10_000
#: Live sessions kept (the oldest are dropped first).
MAX_SESSIONS = 10_000
#: Largest body a request without a key may send (only the sign-in form: key + CSRF token).
SIGN_IN_BODY_BYTES = 4096
#: Largest request head (request line + headers) the server reads.
MAX_HEADER_BYTES = 64 * 1024
#: Open connections at once; beyond it the longest-idle connection is closed.
CONNECTION_LIMIT = 100
#: An idle connection (no request in progress) is closed after this many seconds.
IDLE_SECONDS = 60
#: A request whose headers are not complete after this many seconds is dropped.
HEADER_SECONDS = 20

WRONG_HOST = ("This page is not served under that name; please open the link you were "
              "given.")
NEEDS_KEY_PAGE = ("This page needs its key: open the full link you were given (it ends in "
                  "#key=...).")
NEEDS_KEY_API = "this API needs the key: send 'Authorization: Bearer <key>'"
WRONG_KEY_PAGE = "This link's key is not right. Please ask for the link again."
WRONG_KEY_API = "the key is not right"
CROSS_SITE = "This form did not come from this page, so nothing was done."
SIGN_IN_ONLY = "Only the sign-in form may be sent without the key."
MALFORMED = "The request was incomplete or malformed."
HEADERS_TOO_LARGE = "The request's headers are too large."
SERVER_FAULT = ("Something went wrong on our side; nothing was stored. Please try again or tell "
                "the person running this page.")

_log = safe_logger(__name__)


def too_many_attempts(seconds: float) -> str:
    """The sentence for a client that must wait *seconds* before its next key."""
    wait = math.ceil(seconds)
    shown = f"{wait} seconds" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
    return f"Too many wrong keys from your address; please wait {shown} and try again."


# --------------------------------------------------------------------------- host names

def host_name(host_header) -> str | None:
    """Return the name part of a ``Host`` header (lower case, no port, no brackets, no final
    dot), or None when it is missing or malformed."""
    if not isinstance(host_header, str):
        return None
    text = host_header.strip().lower()
    if not text or any(ch in text for ch in " /\\@?#\t"):
        return None
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1:] if end > 0 else None
        if rest is None or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        return text[1:end]
    name, colon, port = text.rpartition(":")
    if colon:
        if not port.isdigit() or ":" in name:
            return None
        text = name
    return text.rstrip(".") or None


class HostRule:
    """The names a server answers to.

    Parameters
    ----------
    names : iterable of str
        Host names or addresses (``localhost``, ``192.168.1.23``, ``music.example.org``).
    any_address : bool
        Also answer to any IP-address literal (a server listening on every interface cannot
        know all of its addresses; an address in ``Host`` cannot come from DNS rebinding,
        which needs a name).
    """

    def __init__(self, names: Iterable[str] = ("localhost", "127.0.0.1", "::1"),
                 any_address: bool = False):
        self.names = frozenset(filter(None, (host_name(n) or host_name(f"[{n}]") for n in names)))
        self.any_address = bool(any_address)

    @classmethod
    def for_server(cls, host: str, public_names: Iterable[str] = ()) -> HostRule:
        """The rule of a server listening on *host*: that address, ``localhost`` and
        *public_names*; any address literal when *host* is ``0.0.0.0`` or ``::``."""
        bare = host.strip("[]")
        try:
            unspecified = ipaddress.ip_address(bare).is_unspecified
        except ValueError:
            unspecified = False
        names = ["localhost", *public_names]
        if not unspecified:
            names.append(bare)
        if bare.lower() == "localhost":
            names += ["127.0.0.1", "::1"]
        return cls(names, any_address=unspecified)

    def allows(self, host_header) -> bool:
        """True when *host_header* names this server."""
        name = host_name(host_header)
        if name is None:
            return False
        if name in self.names:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


# --------------------------------------------------------------------------- wrong keys

def client_id(address) -> str:
    """The limiter's name for a client address: an IPv6 address counts by its /64 network
    (one home or phone holds a whole /64), an IPv4 address by itself."""
    text = str(address or "unknown")
    try:
        parsed = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text[:64]
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


class AttemptLimiter:
    """Wrong keys per client: :data:`FREE_ATTEMPTS` free, then a wait that starts at
    :data:`FIRST_WAIT_SECONDS` and doubles with each further wrong key (at most
    :data:`LONGEST_WAIT_SECONDS`). While a client waits its keys are not even compared, so it
    learns nothing; other clients are not affected, and a right key costs nothing.

    Memory is bounded: at most *max_clients* records, the least recently failed forgotten
    first; a record is forgotten once its longest wait has passed without a wrong key.
    """

    def __init__(self, free: int = FREE_ATTEMPTS, first_wait: float = FIRST_WAIT_SECONDS,
                 longest_wait: float = LONGEST_WAIT_SECONDS, max_clients: int = LIMITER_CLIENTS,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.first_wait, self.longest_wait = free, first_wait, longest_wait
        self.max_clients = max_clients
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def wait_for(self, client: str) -> float:
        """Seconds *client* must still wait before its next key is looked at (0: none)."""
        with self._lock:
            record = self._records.get(client)
            if record is None:
                return 0.0
            return max(0.0, record.blocked_until - self.clock())

    def failed(self, client: str) -> float:
        """Record a wrong key from *client*; return the wait it now has (0: none yet)."""
        now = self.clock()
        with self._lock:
            record = self._records.pop(client, None)
            if record is None or (record.blocked_until and
                                  now > record.blocked_until + self.longest_wait):
                record = _Record()
            record.failures += 1
            extra = record.failures - self.free
            if extra > 0:
                wait = min(self.first_wait * 2 ** (extra - 1), self.longest_wait)
                record.blocked_until = now + wait
            self._records[client] = record
            while len(self._records) > self.max_clients:
                self._records.popitem(last=False)
            return max(0.0, record.blocked_until - now)

    def succeeded(self, client: str) -> None:
        """A right key from *client*: its count starts again."""
        with self._lock:
            self._records.pop(client, None)

    def __len__(self) -> int:
        return len(self._records)


# --------------------------------------------------------------------------- sessions

def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SessionBook:
    """Live session ids, kept hashed in memory and in the label store's file.

    Parameters
    ----------
    path : path-like or ``":memory:"``
        The SQLite file (the label store's); ``":memory:"`` keeps everything in memory.
    access_key : str or None
        The server's key. Sessions remember a salted, slow hash of the key they were opened
        with (scrypt), so a restart with another key signs everyone out, and the file does not
        give the key away cheaply.
    lifetime_seconds : float
        A session ends this long after it was opened.
    """

    def __init__(self, path, access_key: str | None, lifetime_seconds: float,
                 max_sessions: int = MAX_SESSIONS, clock: Callable[[], float] = time.time):
        self.lifetime = float(lifetime_seconds)
        self.max_sessions = max_sessions
        self.clock = clock
        self._lock = threading.Lock()
        self._live: OrderedDict[str, float] = OrderedDict()  # id hash -> end (epoch seconds)
        self._db = None
        try:
            self._db = self._open(str(path))
            settings = dict(self._db.execute("SELECT name, value FROM web_settings").fetchall())
        except sqlite3.Error as exc:  # read-only or busy file: sessions live in memory
            _log.warning("sessions are kept in memory until the server stops (%s)", exc)
            self._db, settings = self._open(":memory:"), {}
        self.secret = self._setting(settings, "cookie_secret", lambda: secrets.token_hex(32))
        salt = bytes.fromhex(self._setting(settings, "key_salt", lambda: secrets.token_hex(16)))
        self._tag = (hashlib.scrypt(access_key.encode("utf-8"), salt=salt, n=2**14, r=8, p=1,
                                    dklen=32).hex() if access_key is not None else "no key")
        now = self.clock()
        with self._lock:
            self._write("DELETE FROM web_sessions WHERE key_tag != ? OR ends < ?", (self._tag, now))
            rows = self._db.execute("SELECT id_hash, ends FROM web_sessions ORDER BY ends").fetchall()
        self._live.update(rows[-self.max_sessions:])

    @staticmethod
    def _open(path: str):
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        db.execute("CREATE TABLE IF NOT EXISTS web_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS web_sessions (id_hash TEXT PRIMARY KEY,"
                   " key_tag TEXT NOT NULL, ends REAL NOT NULL)")
        return db

    def _setting(self, settings: dict, name: str, make: Callable[[], str]) -> str:
        if name in settings:
            return settings[name]
        value = make()
        with self._lock:
            self._write("INSERT OR IGNORE INTO web_settings VALUES (?, ?)", (name, value))
            row = self._db.execute("SELECT value FROM web_settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else value  # another server process may have written it first

    def _write(self, sql: str, params=()) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:  # the session still works for this run
            _log.warning("could not save sessions: %s", exc)

    def open(self) -> str:
        """Start a session; return its id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        hashed, ends = _digest(session_id), self.clock() + self.lifetime
        with self._lock:
            self._live[hashed] = ends
            self._write("INSERT OR REPLACE INTO web_sessions VALUES (?, ?, ?)",
                        (hashed, self._tag, ends))
            while len(self._live) > self.max_sessions:
                oldest, _ = self._live.popitem(last=False)
                self._write("DELETE FROM web_sessions WHERE id_hash = ?", (oldest,))
        return session_id

    def valid(self, session_id) -> bool:
        """True when *session_id* is a live session (memory only: no disk, no wait)."""
        if not isinstance(session_id, str) or not session_id:
            return False
        ends = self._live.get(_digest(session_id))
        return ends is not None and ends > self.clock()

    def close(self, session_id) -> None:
        """End a session."""
        if isinstance(session_id, str):
            hashed = _digest(session_id)
            with self._lock:
                self._live.pop(hashed, None)
                self._write("DELETE FROM web_sessions WHERE id_hash = ?", (hashed,))

    def __len__(self) -> int:
        return len(self._live)


# --------------------------------------------------------------------------- access

@dataclass
class Refusal:
    """An answer given instead of serving a request."""

    status: int
    message: str
    json: bool = False
    headers: tuple = ()


@dataclass
class KeyCheck:
    ok: bool
    wait: float = 0.0


def bearer_token(header) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = str(header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _key_digest(key: str) -> bytes:
    # equal-length inputs for compare_digest, whatever was sent
    return hashlib.sha256(("music-study web key:" + key).encode("utf-8", "surrogatepass")).digest()


def origin_matches(claimed, host_header) -> bool:
    """True when an ``Origin``/``Referer`` value names the same host and port as *host_header*
    (the scheme may differ: an https proxy in front of plain http)."""

    try:
        parts = urlsplit(str(claimed))
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.netloc)
            and parts.netloc.lower() == str(host_header or "").strip().lower())


@dataclass
class Access:
    """The checks shared by the page (Flask) and the HTTP server's early decision.

    Parameters
    ----------
    key : str or None
        The access key (None: served without one, loopback only).
    hosts : HostRule
    sessions : SessionBook
    limiter : AttemptLimiter
    trusted_proxies : iterable of str
        Addresses of reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are
        believed.
    behind_https : bool
        The page is reached through https whatever the request says: cookies are ``Secure``.
    """

    key: str | None
    hosts: HostRule
    sessions: SessionBook
    limiter: AttemptLimiter = field(default_factory=AttemptLimiter)
    trusted_proxies: frozenset = frozenset()
    behind_https: bool = False
    #: ``read_session_id(cookie_header) -> session id or None`` (the page's cookie format)
    read_session_id: Callable[[str | None], str | None] | None = None

    def __post_init__(self):
        self.trusted_proxies = frozenset(str(ipaddress.ip_address(p)) for p in self.trusted_proxies)

    def from_proxy(self, peer) -> bool:
        try:
            return str(ipaddress.ip_address(str(peer))) in self.trusted_proxies
        except ValueError:
            return False

    def client(self, peer, forwarded_for=None) -> str:
        """The limiter's id of the client: the connection's address, or, from a trusted
        proxy, the last address the proxy added to ``X-Forwarded-For``."""
        if forwarded_for and self.from_proxy(peer):
            last = str(forwarded_for).split(",")[-1].strip()
            if last:
                return client_id(last)
        return client_id(peer)

    def is_https(self, scheme, peer, forwarded_proto=None) -> bool:
        """True when the visitor's browser talks https to the page."""
        if self.behind_https or scheme == "https":
            return True
        return (self.from_proxy(peer) and
                str(forwarded_proto or "").split(",")[0].strip().lower() == "https")

    def key_matches(self, candidate) -> bool:
        return (isinstance(candidate, str) and self.key is not None
                and hmac.compare_digest(_key_digest(candidate), _key_digest(self.key)))

    def try_key(self, candidate, client: str) -> KeyCheck:
        """Compare *candidate* with the key, unless *client* must wait; count a wrong one."""
        wait = self.limiter.wait_for(client)
        if wait > 0:
            return KeyCheck(False, wait)
        if self.key_matches(candidate):
            self.limiter.succeeded(client)
            return KeyCheck(True)
        self.limiter.failed(client)  # this key was compared: the wait starts with the next
        _log.info("wrong key from %s", client)
        return KeyCheck(False)

    def refuse_key(self, check: KeyCheck, api: bool) -> Refusal:
        """The answer to a key that was not accepted."""
        if check.wait > 0:
            return Refusal(429, too_many_attempts(check.wait), api,
                           (("Retry-After", str(math.ceil(check.wait))),))
        if api:
            return Refusal(403, WRONG_KEY_API, True,
                           (("WWW-Authenticate", 'Bearer realm="music-study"'),))
        return Refusal(403, WRONG_KEY_PAGE)

    def early(self, request: ParsedHead, max_body: int, quota_bytes: int | None,
              too_large: str, no_room: str) -> Refusal | None:
        """Decide from a request's head alone whether its body may be read.

        Returns None to go on (the page then makes every other check), or the answer to give
        at once, before a byte of the body is read.
        """
        api = request.path.startswith("/api/")
        if not self.hosts.allows(request.header("HOST")):
            return Refusal(400, WRONG_HOST, api)
        has_body = request.chunked or request.content_length > 0
        client = self.client(request.peer, request.header("X_FORWARDED_FOR"))
        if self.key is None:
            allowed = True
        elif api:
            token = bearer_token(request.header("AUTHORIZATION"))
            if token is None:
                allowed = False
            else:
                check = self.try_key(token, client)
                if not check.ok:  # decided here, so the page does not count this key twice
                    return self.refuse_key(check, True)
                allowed = True
        else:
            cookie = request.header("COOKIE")
            allowed = bool(cookie and self.read_session_id
                           and self.sessions.valid(self.read_session_id(cookie)))
        if not has_body:
            return None
        if not allowed:
            if request.method == "POST" and request.path == "/session":
                if request.chunked:
                    return Refusal(411, MALFORMED)
                if request.content_length > SIGN_IN_BODY_BYTES:
                    return Refusal(413, MALFORMED)
                return None
            return Refusal(401, NEEDS_KEY_API if api else NEEDS_KEY_PAGE, api,
                           (("WWW-Authenticate", 'Bearer realm="music-study"'),) if api else ())
        if not api and request.method not in ("GET", "HEAD", "OPTIONS"):
            claimed = request.header("ORIGIN") or request.header("REFERER")
            if claimed is not None and not origin_matches(claimed, request.header("HOST")):
                return Refusal(403, CROSS_SITE)
        if request.content_length > max_body:
            return Refusal(413, too_large, api)
        if quota_bytes is not None and request.content_length > quota_bytes:
            return Refusal(413, no_room, api)
        return None


# --------------------------------------------------------------------------- waitress

@dataclass
class ParsedHead:
    """What the early decision sees of a request: its head, and who sent it."""

    method: str
    path: str
    headers: dict
    peer: str
    content_length: int = 0
    chunked: bool = False

    def header(self, name: str):
        """A header by waitress' name (``HOST``, ``X_FORWARDED_FOR``), or None."""
        return self.headers.get(name)


def _response(refusal: Refusal) -> tuple[str, list, bytes]:
    reason = http.HTTPStatus(refusal.status).phrase
    if refusal.json:
        body = json.dumps({"error": refusal.message}).encode("utf-8")
        kind = "application/json"
    else:
        body = (refusal.message + "\n").encode("utf-8")
        kind = "text/plain; charset=utf-8"
    headers = [("Content-Type", kind), ("X-Content-Type-Options", "nosniff"),
               ("Cache-Control", "no-store"), ("Content-Security-Policy", "default-src 'none'"),
               *refusal.headers]
    return f"{refusal.status} {reason}", headers, body


class EarlyAnswer:
    """A waitress request error that answers with one of the page's sentences."""

    def __init__(self, refusal: Refusal):
        self.refusal = refusal
        self.code = refusal.status
        self.body = refusal.message

    def to_response(self, ident=None):
        return _response(self.refusal)


def _build_waitress_classes():
    """The parser, channel, error task and server classes (waitress imported only when
    serving)."""

    class GatedParser(HTTPRequestParser):
        """Waitress' parser with one more step once the headers are in: the early decision.

        A refused request is completed on the spot with its answer: waitress then sends it and
        closes the connection, and the body — which would otherwise be spooled to a temporary
        file before the application runs — is never read.
        """

        def __init__(self, adj, gate=None, peer=""):
            super().__init__(adj)
            self.gate, self.peer = gate, peer
            self.started = time.monotonic()

        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            if self.gate is None:
                return
            head = ParsedHead(method=self.command, path=self.path, headers=self.headers,
                              peer=self.peer, content_length=self.content_length,
                              chunked=self.chunked)
            try:
                refusal = self.gate(head)
            except Exception:  # noqa: BLE001 - a fault here must not open the door
                _log.exception("while checking a request's headers")
                refusal = Refusal(500, SERVER_FAULT, head.path.startswith("/api/"))
            if refusal is not None:
                self.error = EarlyAnswer(refusal)
                self.completed = True
                self.expect_continue = False  # never invite the body
                self.body_rcv = None
                self.content_length = 0  # else waitress' own size check replaces the answer
                self.connection_close = True

    class GatedErrorTask(ErrorTask):
        """Every error waitress itself would answer, in the page's words (no server name,
        no parser detail)."""

        def execute(self):
            error = self.request.error
            if not isinstance(error, EarlyAnswer):
                code = getattr(error, "code", 500)
                message = {400: MALFORMED, 431: HEADERS_TOO_LARGE, 501: MALFORMED}.get(
                    code, SERVER_FAULT)
                if code == 413:
                    message = self.channel.server.too_large
                _log.info("waitress refused a request: %s %s", code, getattr(error, "body", ""))
                self.request.error = EarlyAnswer(Refusal(code if code in (400, 413, 431, 501)
                                                         else 500, message))
            super().execute()

    class GatedChannel(HTTPChannel):
        error_task_class = GatedErrorTask

        def __init__(self, server, sock, addr, adj, map=None):
            super().__init__(server, sock, addr, adj, map=map)
            peer = addr[0] if isinstance(addr, tuple) and addr else str(addr)
            # waitress makes each request's parser with self.parser_class(adj)
            self.parser_class = functools.partial(GatedParser, gate=server.gate, peer=peer)
            self.requests_served = 0

        def service(self):
            self.requests_served += 1
            super().service()

        def idle(self) -> bool:
            """True when closing this connection loses no work: no request being served or
            waiting, and none whose body is being received."""
            receiving = self.request is not None and self.request.headers_finished
            return not (self.requests or receiving or self.will_close or self.total_outbufs_len)

    class GatedServer(TcpWSGIServer):
        channel_class = GatedChannel

        def __init__(self, application, gate, too_large: str, **kw):
            self.gate = gate
            self.too_large = too_large
            super().__init__(application, **kw)

        def readable(self):
            # waitress stops accepting at the connection limit, so a crowd of idle sockets
            # locks everyone out; here accepting goes on and handle_accept makes room
            now = time.time()
            if now >= self.next_channel_cleanup:
                self.next_channel_cleanup = now + self.adj.cleanup_interval
                self.maintenance(now)
            return self.accepting

        def maintenance(self, now):
            super().maintenance(now)
            started_before = time.monotonic() - HEADER_SECONDS
            for channel in list(self.active_channels.values()):
                request = channel.request
                if (request is not None and not request.headers_finished and not channel.requests
                        and getattr(request, "started", started_before + 1) < started_before):
                    channel.will_close = True  # headers dribbled in too slowly

        def make_room(self) -> bool:
            """Close the longest-idle connection that is doing no work — one that never
            finished a request first; return False when every connection is at work."""
            idle = [c for c in self.active_channels.values() if c.idle()]
            if not idle:
                return False
            victim = min(idle, key=lambda c: (c.requests_served > 0, c.last_activity))
            victim.handle_close()
            return True

        def handle_accept(self):
            if len(self.active_channels) >= self.adj.connection_limit and not self.make_room():
                try:
                    accepted = self.accept()
                except OSError:
                    return
                if accepted is not None:  # every connection is at work: say so and close
                    conn = accepted[0]
                    try:
                        conn.setblocking(False)
                        status, headers, body = _response(Refusal(503, "The server is busy; "
                                                                        "please try again in a minute."))
                        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
                        conn.send(f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n"
                                  f"Connection: close\r\nRetry-After: 30\r\n\r\n".encode() + body)
                    except OSError:
                        pass
                    finally:
                        conn.close()
                return
            super().handle_accept()

    return GatedServer


def build_server(app, host: str, port: int, gate: Callable[[ParsedHead], Refusal | None],
                 max_body: int, too_large: str, threads: int = 8,
                 connection_limit: int = CONNECTION_LIMIT, idle_seconds: float = IDLE_SECONDS):
    """Return a waitress server for *app* on *host*:*port* (0: a free port) whose requests
    pass *gate* once their headers are in.

    Limits: request head :data:`MAX_HEADER_BYTES`; body *max_body* (waitress' own limit, one
    byte above, is a second fence for chunked bodies); *connection_limit* connections, the
    longest-idle one closed for a new one; idle connections closed after *idle_seconds*;
    request bodies over 512 KiB and responses over 1 MiB are buffered in temporary files,
    and a response writer waits once 4 MiB are unsent.
    """
    server_class = _build_waitress_classes()
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    return server_class(
        app, gate, too_large, host=host.strip("[]"), port=port, threads=threads,
        ident="music-study", max_request_body_size=max_body + 1,
        max_request_header_size=MAX_HEADER_BYTES, connection_limit=connection_limit,
        channel_timeout=idle_seconds, cleanup_interval=max(1, min(10, idle_seconds / 2)),
        inbuf_overflow=512 * 1024, outbuf_overflow=1024 * 1024,
        outbuf_high_watermark=4 * 1024 * 1024, asyncore_use_poll=True,
        ipv4=family == socket.AF_INET, ipv6=family == socket.AF_INET6)


__all__ = ["Access", "AttemptLimiter", "HostRule", "ParsedHead", "Refusal", "SessionBook",
           "bearer_token", "build_server", "client_id", "host_name", "origin_matches",
           "too_many_attempts"]

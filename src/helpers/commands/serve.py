"""``music-study serve``: the web page, served by waitress, and the link to share.

Examples
--------
>>> from helpers.cli import main
>>> main(["serve", "--port", "0"])  # doctest: +SKIP
http://127.0.0.1:40123/#key=...
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import socket
import sys

from helpers.errors import InputError
from helpers.text import make_handler_safe
from helpers.web.app import (
    DISK_QUOTA_BYTES,
    FORM_ROOM_BYTES,
    WEB_KEY_ENV,
    create_app,
    too_large_message,
)
from helpers.web.security import HostRule, build_server, host_name


def is_loopback_host(host: str) -> bool:
    """Return True when *host* is a loopback address or ``localhost``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def share_link(host: str, port: int, key: str | None) -> str:
    """Return the link to share: ``http://HOST:PORT/#key=KEY`` (a LAN address for 0.0.0.0).

    The key is after ``#``: a browser never sends that part to the server (so it is in no
    server or proxy log and no ``Referer``), and the page removes it from the address bar and
    the history entry once it has signed in.
    """
    shown = host.strip("[]")
    try:
        if ipaddress.ip_address(shown).is_unspecified:
            shown = _lan_address(ipaddress.ip_address(shown).version)
    except ValueError:
        pass
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"#key={key}" if key else "")


def _lan_address(version: int = 4) -> str:
    """This machine's address on its local network (no packet is sent)."""
    family, probe = (socket.AF_INET, "192.0.2.1") if version == 4 else (socket.AF_INET6, "2001:db8::1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((probe, 9))
            return udp.getsockname()[0]
    except OSError:
        return socket.gethostname()


def _check_serve_options(args) -> None:
    if not 0 <= args.port < 65536:
        raise InputError(args.port, "port must be between 1 and 65535 (0: any free port)")
    if args.workers < 1:
        raise InputError(args.workers, "--workers must be at least 1")
    for name in getattr(args, "public_name", None) or ():
        if host_name(name) is None and host_name(f"[{name}]") is None:
            raise InputError(name, "--public-name must be a host name or address, without "
                                   "scheme or path (e.g. music.example.org)")
    for address in getattr(args, "trusted_proxy", None) or ():
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise InputError(address, "--trusted-proxy must be an IP address (e.g. "
                                      "127.0.0.1)") from None


def run(args) -> int:
    """``music-study serve [--host H] [--port N] [--key K | --no-key] [--workers N]
    [--disk-quota-mb MB] [--public-name NAME]... [--behind-https] [--trusted-proxy ADDR]...``.

    Builds the model, then serves the page with waitress (:func:`helpers.web.security.build_server`)
    until Ctrl-C. Prints one line on stdout: the link to share (with ``key=``); everything else
    goes to stderr.
    """
    _check_serve_options(args)
    if args.no_key:
        if not is_loopback_host(args.host):
            raise InputError(args.host, "--no-key is allowed only with a loopback --host "
                                        "(127.0.0.1, ::1 or localhost)")
        key = None
    else:
        key = args.key or os.environ.get(WEB_KEY_ENV) or secrets.token_urlsafe(24)
        if len(key) < 8 or not re.fullmatch(r"[A-Za-z0-9._~-]+", key):
            raise InputError("--key", "use at least 8 characters from A-Z a-z 0-9 . _ ~ -")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="music-study serve: %(message)s")
    for handler in logging.getLogger().handlers:  # every library's lines, waitress' included
        make_handler_safe(handler)
    quota = int(args.disk_quota_mb * 2**20) if args.disk_quota_mb else DISK_QUOTA_BYTES
    public_names = list(getattr(args, "public_name", None) or ())
    app = create_app(access_key=key, require_key=key is not None, workers=args.workers,
                     disk_quota_bytes=quota,
                     allowed_hosts=HostRule.for_server(args.host, public_names),
                     trusted_proxies=getattr(args, "trusted_proxy", None) or (),
                     behind_https=bool(getattr(args, "behind_https", False)))
    server = build_server(app, args.host, args.port, gate=app.extensions["music_study"]["gate"],
                          max_body=app.config["MAX_CONTENT_LENGTH"],
                          too_large=too_large_message(app.config["MAX_CONTENT_LENGTH"]
                                                      - FORM_ROOM_BYTES))
    port = getattr(server, "effective_port", args.port)
    print(share_link(args.host, port, key), flush=True)
    print(f"music-study serve: serving on {args.host}:{port} with waitress; share the link "
          "above (it holds the key); Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        server.run()  # waitress ends its worker threads on Ctrl-C
    finally:
        server.close()
        app.extensions["music_study"]["jobs"].shutdown(wait=False)
    return 0

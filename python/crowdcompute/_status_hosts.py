"""Whom the worker's status server answers. A web page can point a DNS name of its own at
127.0.0.1 (DNS rebinding): the browser then sends the page's requests to the status server as
same-origin ones, able to read the answers, with that name in `Host`. Answering only to names
of this machine closes that door. An IP address can never be such a name (the page would have
to be served from that address), so any is answered. The same rules as the Node worker's
(src/worker/status/host-names.ts, accept.ts).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import urlsplit

#: Addresses that mean "every interface": not a name anyone asks for.
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def _normal(name: str) -> str:
    """A host name as compared: lower case, without a trailing dot or IPv6 brackets."""
    n = name.strip().lower()
    if n.endswith("."):
        n = n[:-1]
    if n.startswith("[") and n.endswith("]"):
        n = n[1:-1]
    return n


def status_host_names(bound_host: str, extra: Iterable[str] = ()) -> set[str]:
    """localhost, the machine's hostname and its first label, the interface the server is bound
    to when that is a name, and the operator's `extra` names (--status-host-name)."""
    host = _normal(socket.gethostname())
    names = {"localhost", host, host.split(".")[0]}
    if bound_host not in _WILDCARDS:
        names.add(_normal(bound_host))
    names.update(_normal(n) for n in extra)
    names.discard("")
    return names


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _hostname_of(host: str) -> str | None:
    """The name in a Host header (`Example.com:8001` -> `example.com`), None when it is not one."""
    if any(c in host for c in "/?#@ \t\\"):
        return None
    try:
        parts = urlsplit(f"http://{host}/")
        parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    return _normal(parts.hostname) if parts.hostname else None


def host_refusal(host: str | None, names: set[str]) -> str | None:
    """None when a request with this Host header may be answered, else why not, in words for the
    person who sent it. No Host (HTTP/1.0 tools) is answered: browsers always send one."""
    if not host:
        return None
    name = _hostname_of(host)
    if name is not None and (_is_ip(name) or name in names or name.endswith(".localhost")):
        return None
    return (f'CC_ERR_FORBIDDEN: this worker\'s status server does not answer to the host name in "Host: {host}": '
            "it answers to localhost, IP addresses, this machine's hostname and the names given with "
            "--status-host-name <name>. Open it by one of those, or add this name if it is yours.")


def _url_host(url: str) -> str | None:
    """`host[:port]` of a URL as browsers spell it: lower case, the scheme's default port dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    name = parts.hostname.lower()
    if ":" in name:
        name = f"[{name}]"
    default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(parts.scheme.lower())
    return name if port is None or port == default else f"{name}:{port}"


def same_origin(origin: str | None, host: str | None) -> bool:
    """True when a WebSocket upgrade has no Origin (not a browser) or one whose host is the host
    it asked for: browsers let any web site open a WebSocket to 127.0.0.1, and only the page this
    server served may read the worker's status through it."""
    if not origin:
        return True
    mine = _url_host(origin)
    return mine is not None and mine == _url_host(f"http://{host or ''}")


def _quality(ranges: list[tuple[str, str, float]], type_: str) -> float:
    t, s = type_.split("/")
    best, q = -1, 0.0
    for rt, rs, rq in ranges:
        specificity = 2 if rt == t and rs == s else 1 if rt == t and rs == "*" else 0 if rt == "*" and rs == "*" else -1
        if specificity > best:
            best, q = specificity, rq
    return q


def prefers_html(accept: str | None) -> bool:
    """True when an Accept header prefers text/html to application/json strictly (a browser). A
    tie (a bare wildcard, no header, both listed alike) keeps JSON."""
    if not accept:
        return False
    ranges: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        range_, *params = part.strip().lower().split(";")
        type_, _, sub = range_.strip().partition("/")
        q = 1.0
        for p in params:
            p = p.strip()
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
                if q != q or q in (float("inf"), float("-inf")):
                    q = 0.0
                break
        if type_ and sub:
            ranges.append((type_, sub, q))
    return _quality(ranges, "text/html") > _quality(ranges, "application/json")

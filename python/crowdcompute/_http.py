"""The REST half of the client: one JSON request to the foreman, with the standard library only.

Blocking (urllib); the async client runs it in a thread (`asyncio.to_thread`). Every answer
that is not 2xx becomes the error class of its `CC_ERR_*` code; a server that answers without
a foreman's error body, or nothing answering at all, becomes ConnectionFailedError naming the URL.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import ConnectionFailedError, CrowdComputeError


def http_base(url: str) -> str:
    """`ws://host:8000/ws`, `http://host:8000/` -> `http://host:8000` (the REST base)."""
    u = url.strip()
    if u.startswith("ws://") or u.startswith("wss://"):
        u = "http" + u[2:]
    u = u.rstrip("/")
    if u.endswith("/ws"):
        u = u[: -len("/ws")]
    scheme = urlsplit(u).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{url} needs http:// or https:// (or ws://, wss://), e.g. http://localhost:8000")
    return u


def ws_url(base: str) -> str:
    """`http://host:8000` -> `ws://host:8000/ws`."""
    return "ws" + base[len("http"):] + "/ws"


def _why_unreachable(base: str, err: BaseException) -> str:
    reason: Any = getattr(err, "reason", err)
    host = urlsplit(base).hostname or base
    if isinstance(reason, (socket.timeout, TimeoutError)):
        why = "no answer in time"
    elif isinstance(reason, ConnectionRefusedError):
        why = "nothing answers there (connection refused)"
    elif isinstance(reason, socket.gaierror):
        why = f"the host name {host} does not resolve"
    elif isinstance(reason, ssl.SSLCertVerificationError):
        why = f"its TLS certificate is not trusted ({reason.verify_message or reason})"
    elif isinstance(reason, ssl.SSLError):
        why = f"the TLS handshake failed ({reason}); is it an http:// server?"
    elif isinstance(reason, ConnectionResetError):
        why = "the connection was closed without an answer" + (" (is it an https:// server?)" if base.startswith("http:") else "")
    else:
        why = str(reason) or type(reason).__name__
    return f"at {base}: {why}"


class HttpTransport:
    """JSON requests to one foreman with its API key; store outages (503) are waited out briefly."""

    def __init__(self, base: str, headers: Mapping[str, str], *, timeout: float, outage_wait: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self.base = base
        self.headers = dict(headers)
        self.timeout = timeout
        #: How long a request keeps trying while the foreman says its store is out (CC_ERR_STORE_UNAVAILABLE).
        self.outage_wait = outage_wait
        self.ssl_context = ssl_context

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """The parsed JSON answer to `method path` (with `body` as JSON)."""
        started = time.monotonic()
        outages = 0
        while True:
            try:
                return self.request_once(method, path, body)
            except CrowdComputeError as err:
                if err.code != "CC_ERR_STORE_UNAVAILABLE" or time.monotonic() - started >= self.outage_wait:
                    raise
                outages += 1
                # The same backoff as the TypeScript SDK: 250 ms doubling to 2 s, with jitter.
                time.sleep(min(2.0, 0.25 * 2 ** (outages - 1)) * (0.5 + random.random() / 2))

    def request_once(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, content_type: str | None = None, want_bytes: bool = False,
                     accept: frozenset[int] | set[int] = frozenset()) -> Any:
        """One request; `accept` lists error statuses whose JSON body is an answer (GET /health's 503)."""
        headers = dict(self.headers)
        data: bytes | None = None
        if raw is not None:
            data = raw
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ssl_context) as res:
                status, ctype, text = res.status, res.headers.get("Content-Type", ""), res.read()
        except urllib.error.HTTPError as res:
            status, ctype = res.code, res.headers.get("Content-Type", "") if res.headers else ""
            try:
                text = res.read()
            except OSError:
                text = b""
            finally:
                res.close()
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionFailedError("CC_ERR_CONNECTION", f"cannot reach the foreman {_why_unreachable(self.base, err)}") from None
        ok = 200 <= status < 300 or status in accept
        if ok and want_bytes:
            return text
        try:
            parsed: Any = json.loads(text) if text else None
            is_json = True
        except ValueError:
            parsed, is_json = None, False
        # A foreman answers in JSON and its errors carry a code: anything else is another server
        # (a wrong port, a web server, a proxy's error page), and is said to be one.
        is_wire_error = isinstance(parsed, dict) and isinstance(parsed.get("code"), str) and isinstance(parsed.get("message"), str)
        if not is_json or (not ok and not is_wire_error):
            shape = (", an HTML page instead of JSON" if "html" in ctype else ", not JSON") if not is_json else ""
            raise ConnectionFailedError(
                "CC_ERR_CONNECTION",
                f"{self.base} answered but is not a CrowdCompute foreman ({method} {path.split('?')[0]}: {status}{shape})",
                status=status,
            )
        if not ok:
            raise CrowdComputeError.from_wire(parsed, status=status)
        return parsed

"""The WebSocket client, over the `websockets` package from 10.4 (Debian 12's) to the newest.

Before 13 only the "legacy" client exists (`extra_headers=`); from 13 on the new asyncio client
(`additional_headers=`) is the maintained one. Both give `send`, `recv`, async iteration,
`close`, `close_code` and `close_reason`, which is all the SDK uses.
"""

from __future__ import annotations

import importlib
import ssl
from typing import Any, Mapping

import websockets

_MAJOR = int(str(getattr(websockets, "__version__", "10")).split(".")[0])

# Imported by name so that a type checker reading either release's stubs sees no missing module.
_connect: Any = importlib.import_module("websockets.asyncio.client" if _MAJOR >= 13 else "websockets.legacy.client").connect

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

#: What a closed connection raises.
__all__ = ["ConnectionClosed", "InvalidHandshake", "InvalidURI", "connect", "handshake_status"]


async def connect(url: str, *, headers: Mapping[str, str] | None = None, max_size: int | None = None, open_timeout: float = 10,
                  ssl_context: ssl.SSLContext | None = None) -> Any:
    """Open a WebSocket. No client pings (the foreman pings, and every heartbeat is answered),
    no compression (the foreman offers none), frames up to `max_size` bytes (None: any)."""
    kwargs: dict[str, Any] = {"max_size": max_size, "open_timeout": open_timeout, "ping_interval": None, "compression": None}
    if ssl_context is not None and url.startswith("wss:"):
        kwargs["ssl"] = ssl_context
    if headers:
        kwargs["additional_headers" if _MAJOR >= 13 else "extra_headers"] = dict(headers)
    return await _connect(url, **kwargs)


def handshake_status(err: BaseException) -> int | None:
    """The HTTP status of a refused upgrade, if that is what `err` is."""
    status = getattr(err, "status_code", None)
    if status is None:
        response = getattr(err, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None

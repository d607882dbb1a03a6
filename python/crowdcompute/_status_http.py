"""A small HTTP/1.1 server on asyncio streams for the worker's status server, and its live
feed: WebSocket connections on `/ws`, each sent `{"type": "status", "data": ...}` at once and
then about once a second. The WebSocket protocol itself is the `websockets` package's sans-I/O
server (10.4 and later), fed the bytes this server reads. Standard library otherwise: the
routes need only small GET and POST requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

import websockets.server

# Renamed ServerProtocol in websockets 11; ServerConnection is its name in 10.
_ServerProtocol: Any = getattr(websockets.server, "ServerProtocol", None) or getattr(websockets.server, "ServerConnection")

#: The most a request's head or body may be: the routes take nothing bigger.
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
#: A keep-alive connection with no request for this long is closed.
IDLE_SECONDS = 30.0
#: A watcher whose socket has this much unsent is skipped until it catches up.
MAX_BUFFERED = 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def json(status: int, value: Any, headers: dict[str, str] | None = None) -> "Response":
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


RequestHandler = Callable[[Request], Awaitable[Response]]
#: Takes over an upgrade request's connection; the server no longer reads it.
UpgradeHandler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _parse_head(head: bytes) -> Request | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    headers[":version"] = parts[2]
    return Request(parts[0].upper(), unquote(urlsplit(parts[1]).path) or "/", headers, raw_head=head)


def write_response(writer: asyncio.StreamWriter, response: Response, *, head_only: bool = False, keep_alive: bool = False) -> None:
    reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
    headers = {**response.headers, "Content-Length": str(len(response.body)), "Date": formatdate(usegmt=True),
               "Connection": "keep-alive" if keep_alive else "close"}
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + (b"" if head_only else response.body))


class HttpServer:
    """Answers requests with `handle` and hands WebSocket upgrades to `upgrade`."""

    def __init__(self, handle: RequestHandler, upgrade: UpgradeHandler, log: logging.Logger) -> None:
        self._handle = handle
        self._upgrade = upgrade
        self._log = log
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def listen(self, host: str, port: int) -> int:
        """Listen on `port` (0: any free one); the port taken. OSError when it cannot."""
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except Exception:
            self._log.exception("status server: a request failed")
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the connection stays open for another."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
        except asyncio.LimitOverrunError:
            write_response(writer, Response.json(431, {"message": f"request head larger than {MAX_HEAD} bytes"}))
            return False
        req = _parse_head(head)
        if req is None:
            write_response(writer, Response.json(400, {"message": "not an HTTP/1.x request"}))
            return False
        if "websocket" in (req.header("upgrade") or "").lower():
            self._connections.discard(writer)
            await self._upgrade(req, reader, writer)
            return False
        if req.header("transfer-encoding"):
            write_response(writer, Response.json(411, {"message": "send a request body with Content-Length"}))
            return False
        try:
            length = int(req.header("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            write_response(writer, Response.json(413, {"message": f"request body must be 0 to {MAX_BODY} bytes"}))
            return False
        if length:
            req.body = await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
        response = await self._handle(req)
        keep = req.headers[":version"] == "HTTP/1.1" and "close" not in (req.header("connection") or "").lower()
        write_response(writer, response, head_only=req.method == "HEAD", keep_alive=keep)
        await writer.drain()
        return keep


class LiveFeed:
    """Pushes `snapshot()` to every watcher of /ws, at once and then every `interval` seconds.
    The snapshot is made once per tick for all of them, and not at all while nobody watches."""

    def __init__(self, snapshot: Callable[[], Any], log: logging.Logger, interval: float = 1.0) -> None:
        self._snapshot = snapshot
        self._log = log
        self._interval = interval
        self._clients: dict[Any, asyncio.StreamWriter] = {}
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def watchers(self) -> int:
        return len(self._clients)

    async def serve(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Take over an accepted /ws upgrade: finish the handshake, then feed the watcher."""
        proto = _ServerProtocol(max_size=64 * 1024)
        proto.receive_data(req.raw_head)
        events = proto.events_received()
        if not events or self._closed:
            self._flush(proto, writer)
            writer.close()
            return
        response = proto.accept(events[0])
        proto.send_response(response)
        self._flush(proto, writer)
        if response.status_code != 101:
            writer.close()
            return
        self._clients[proto] = writer
        self._send([proto])
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._tick())
        try:
            # Watchers only listen: what they send is read for pings and the closing handshake.
            while getattr(proto.state, "name", "") != "CLOSED":
                data = await reader.read(65536)
                if data:
                    proto.receive_data(data)
                else:
                    proto.receive_eof()
                proto.events_received()
                self._flush(proto, writer)
                if not data:
                    break
        except ConnectionError:
            pass
        finally:
            self._clients.pop(proto, None)
            writer.close()

    def close(self) -> None:
        self._closed = True
        if self._timer:
            self._timer.cancel()
        for writer in self._clients.values():
            writer.close()
        self._clients.clear()

    async def _tick(self) -> None:
        while self._clients:
            await asyncio.sleep(self._interval)
            self._send(list(self._clients))

    def _send(self, protos: list[Any]) -> None:
        frame: bytes | None = None
        for proto in protos:
            writer = self._clients.get(proto)
            if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_BUFFERED:
                continue
            if frame is None:
                try:
                    frame = json.dumps({"type": "status", "data": self._snapshot()}, ensure_ascii=False, separators=(",", ":")).encode()
                except Exception:
                    self._log.exception("status server: the page's snapshot failed")
                    return
            proto.send_text(frame)
            self._flush(proto, writer)

    @staticmethod
    def _flush(proto: Any, writer: asyncio.StreamWriter) -> None:
        for chunk in proto.data_to_send():
            if chunk:
                writer.write(chunk)
            elif writer.can_write_eof():
                writer.write_eof()

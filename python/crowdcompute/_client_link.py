"""The client's WebSocket to its foreman: opened on first use, reopened when it drops.

The WebSocket comes from `_ws`, which speaks to every websockets release from 10.4 on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any, Awaitable, Callable, Mapping

from .errors import ConnectionFailedError, CrowdComputeError, ForbiddenError, UnauthorizedError

log = logging.getLogger("crowdcompute.client")

from . import _ws
from ._link import retry_delay
from ._ws import ConnectionClosed, InvalidHandshake, InvalidURI


class Link:
    """One WebSocket, kept open while the client lives: `on_open` runs after every (re)connect."""

    def __init__(self, url: str, headers: Mapping[str, str], *, connect_timeout: float, reconnect_interval: float,
                 ssl_context: ssl.SSLContext | None, on_open: Callable[[], Awaitable[None]],
                 on_message: Callable[[dict[str, Any]], None], on_close: Callable[[int | None], None]) -> None:
        self.url = url
        self._headers = dict(headers)
        self._connect_timeout = connect_timeout
        self._reconnect_interval = reconnect_interval
        self._ssl = ssl_context
        self._on_open = on_open
        self._on_message = on_message
        self._on_close = on_close
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Why the last attempt to connect failed.
        self._last_error: CrowdComputeError | None = None
        #: Set (and replaced) whenever the connection opens or an attempt fails, to wake waiters.
        self._changed: asyncio.Event | None = None

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def ensure_open(self) -> None:
        """Wait until the WebSocket is open (starting it on first use).

        A refused API key (401) or scope (403) fails at once; anything else is tried again
        until the connect timeout, then fails with why the last attempt did."""
        if self._closed:
            raise CrowdComputeError("CC_ERR_SHUTTING_DOWN", "client is closed")
        if self._ws is not None:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        while self._ws is None:
            if self._closed:
                raise CrowdComputeError("CC_ERR_SHUTTING_DOWN", "client is closed")
            err = self._last_error
            if isinstance(err, (UnauthorizedError, ForbiddenError)):
                raise err
            remaining = deadline - loop.time()
            if remaining <= 0:
                if err is not None:
                    raise err
                raise ConnectionFailedError("CC_ERR_CONNECTION", f"no connection to the foreman at {self.url} within {self._connect_timeout:g} s")
            assert self._changed is not None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def send(self, message: Mapping[str, Any]) -> bool:
        """Send one message; False when the connection is down (the caller's on_open sends it again)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(message))
            return True
        except ConnectionClosed:
            return False

    async def _run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                # No frame size limit on what the foreman sends: a job_completed may carry results up
                # to half of the foreman's own frame limit, which is its setting, not ours.
                ws = await _ws.connect(self.url, headers=self._headers, max_size=None, open_timeout=self._connect_timeout, ssl_context=self._ssl)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - every way of not connecting is said in words
                self._last_error = self._describe(err)
                log.debug("connecting to %s failed: %s", self.url, self._last_error)
                self._notify()
                failures += 1
                await asyncio.sleep(self._delay(failures))
                continue
            failures = 0
            self._ws, self._last_error = ws, None
            self._notify()
            code: int | None = None
            try:
                await self._on_open()
                async for frame in ws:
                    self._dispatch(frame)
            except ConnectionClosed:
                pass
            finally:
                code = getattr(ws, "close_code", None)
                self._ws = None
                if not self._closed:
                    self._on_close(code)
            if code == 1001:  # the foreman is shutting down: give it a moment before knocking again
                failures = 1
            if not self._closed:
                await asyncio.sleep(self._delay(max(failures, 1)))

    def _delay(self, failures: int) -> float:
        """The reconnect interval, doubling per failure up to 10 s, with jitter."""
        return retry_delay(failures, self._reconnect_interval, max(self._reconnect_interval, 10.0))

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            data = json.loads(frame)
        except ValueError:
            log.warning("unreadable message from the foreman at %s", self.url)
            return
        # A frame holds one message or an array of them.
        for message in data if isinstance(data, list) else [data]:
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                try:
                    self._on_message(message)
                except Exception:  # noqa: BLE001 - one bad message must not close the connection
                    log.exception("handling a %s message failed", message.get("type"))

    def _describe(self, err: BaseException) -> CrowdComputeError:
        status = _ws.handshake_status(err)
        if status == 401:
            return UnauthorizedError("CC_ERR_UNAUTHORIZED", f"the foreman at {self.url} refused the API key (HTTP 401): give a valid key (api_key=, CROWDCOMPUTE_API_KEY)", status=401)
        if status == 403:
            return ForbiddenError("CC_ERR_FORBIDDEN", f"the foreman at {self.url} refused the connection (HTTP 403)", status=403)
        if status is not None:
            return ConnectionFailedError("CC_ERR_CONNECTION", f"{self.url} answered HTTP {status} to the WebSocket upgrade: is it a CrowdCompute foreman?", status=status)
        if isinstance(err, ConnectionRefusedError):
            why = "nothing answers there (connection refused)"
        elif isinstance(err, asyncio.TimeoutError):
            why = "no answer in time"
        elif isinstance(err, (InvalidHandshake, InvalidURI)):
            why = f"the WebSocket handshake failed ({err})"
        else:
            why = str(err) or type(err).__name__
        return ConnectionFailedError("CC_ERR_CONNECTION", f"cannot reach the foreman at {self.url}: {why}")

    async def close(self) -> None:
        self._closed = True
        ws, task = self._ws, self._task
        if ws is not None:
            try:
                await ws.close()
            except Exception:  # noqa: BLE001 - closing what may already be gone
                pass
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._notify()

"""A worker's connection to a foreman: one WebSocket at a time, reconnected with exponential
backoff and jitter when it drops, rotating through the given URLs.

Sends while disconnected are dropped on purpose: what must survive a reconnect (outcomes not
yet acknowledged, unanswered records) is kept by the worker and sent again after the next
hello. Messages sent in one turn of the event loop leave as one frame (a JSON array when
there are several), as the TypeScript worker's do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import _ws

OPEN_TIMEOUT = 10.0
#: The largest frame the foreman may be configured to send (its --max-payload is at most 512 MiB).
MAX_FRAME = 512 * 1024 * 1024 + 1024 * 1024
#: One encoder for every message (json.dumps with options makes a new one per call).
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: within [ceiling/2, ceiling], ceiling doubling from `base` up to `cap`."""
    ceiling = min(cap, base * 2.0 ** max(0, failures - 1))
    return ceiling / 2 + random.random() * (ceiling / 2)


@dataclass
class CloseInfo:
    code: int
    reason: str
    will_reconnect: bool
    #: True when the connection had opened (False: it could not be made).
    opened: bool


class ForemanLink:
    def __init__(
        self,
        urls: list[str],
        *,
        reconnect_interval: float,
        max_reconnect_attempts: int,
        auto_restart: bool,
        log: logging.Logger,
        on_open: Callable[[], None],
        on_message: Callable[[dict[str, Any]], None],
        on_close: Callable[[CloseInfo], None],
        on_give_up: Callable[[str], None],
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.urls = urls
        self.reconnect_interval = reconnect_interval
        self.max_reconnect_attempts = max_reconnect_attempts
        self.auto_restart = auto_restart
        self.log = log
        self.on_open = on_open
        self.on_message = on_message
        self.on_close = on_close
        self.on_give_up = on_give_up
        self._cap = max_reconnect_delay
        self._max_delay = max_reconnect_delay
        self._url_index = 0
        self._attempts = 0
        self._ws: Any = None
        self._stopped = True
        self._task: asyncio.Task[None] | None = None
        #: This turn's messages: dicts, or JSON text for those encoded ahead (`send_encoded`).
        self._frame: list[dict[str, Any] | str] = []
        self._flush_scheduled = False
        self._before_flush: Callable[[], None] | None = None
        self._writes: asyncio.Queue[str | None] | None = None
        self._silence = 0.0
        self._last_heard = 0.0
        self._last_error = ""
        self._restart_requested = False

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def current_url(self) -> str:
        return self.urls[self._url_index % len(self.urls)]

    def start(self) -> None:
        if not self._stopped:
            return
        self._stopped = False
        self._attempts = 0
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crowdcompute-link")

    def set_max_reconnect_delay(self, seconds: float) -> None:
        """Cap the reconnection delay: a worker holding leases must come back before they expire."""
        self._max_delay = max(self.reconnect_interval, min(self._cap, seconds))

    def set_silence_timeout(self, seconds: float) -> None:
        """Treat the connection as dead when nothing came from the foreman for `seconds`
        (a network that drops without closing would otherwise hang the worker)."""
        self._silence = seconds
        self._last_heard = time.monotonic()

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message for this turn's frame; False when there is no connection (it is dropped)."""
        return self._queue(message)

    def send_encoded(self, text: str) -> bool:
        """`send` for a message already encoded as a JSON object's text."""
        return self._queue(text)

    def flush_with(self, fn: Callable[[], None]) -> None:
        """Call `fn` (one caller's own batching) when this turn's frame is made, just before it
        leaves: what it sends goes in that frame, a turn of the loop sooner than its own flush."""
        self._before_flush = fn
        self._schedule_flush()

    def _queue(self, item: dict[str, Any] | str) -> bool:
        if self._ws is None:
            return False
        self._frame.append(item)
        self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        before, self._before_flush = self._before_flush, None
        if before is not None:
            before()
        self._flush_scheduled = False
        if not self._frame or self._writes is None:
            self._frame.clear()
            return
        frame, self._frame = self._frame, []
        parts = [m if isinstance(m, str) else encode_json(m) for m in frame]
        self._writes.put_nowait(parts[0] if len(parts) == 1 else "[" + ",".join(parts) + "]")

    def restart(self) -> None:
        """Drop the connection now and reconnect."""
        if not self._stopped and self._ws is not None:
            self._restart_requested = True
            asyncio.get_running_loop().create_task(self._ws.close(4000, "restart"))

    async def stop(self) -> None:
        """Send what is queued, close the socket (1000) and stop reconnecting."""
        self._stopped = True
        self.flush()
        ws = self._ws
        if ws is not None and self._writes is not None:
            self._writes.put_nowait(None)
            try:
                await asyncio.wait_for(self._drained.wait(), 2)
            except asyncio.TimeoutError:
                pass
            try:
                await asyncio.wait_for(ws.close(1000, "stopping"), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        while not self._stopped:
            url = self.current_url
            opened = False
            code, reason = 1006, ""
            try:
                ws = await _ws.connect(url, max_size=MAX_FRAME, open_timeout=OPEN_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # refused, unreachable, handshake failed or timed out
                status = _ws.handshake_status(err)
                self._last_error = f"HTTP {status} at the upgrade" if status else (str(err) or type(err).__name__)
                reason = self._last_error
            else:
                opened = True
                self._attempts = 0
                code, reason = await self._serve(ws, url)
            will_reconnect = not self._stopped and (self.auto_restart or not opened or self._restart_requested)
            self._restart_requested = False
            if opened and not self._stopped:
                level = logging.INFO if code == 1001 else logging.WARNING
                self.log.log(level, "connection to foreman closed", extra={"url": url, "code": code, "reason": reason})
            self.on_close(CloseInfo(code, reason, will_reconnect and not self._stopped, opened))
            if self._stopped or not will_reconnect:
                return
            self._attempts += 1
            if 0 <= self.max_reconnect_attempts < self._attempts:
                self._stopped = True
                self.on_give_up(
                    f"CC_ERR_CONNECTION: gave up after {self.max_reconnect_attempts} reconnection attempts to "
                    f"{', '.join(self.urls)}: {self._last_error or 'connection closed'}"
                )
                return
            self._url_index += 1
            await asyncio.sleep(retry_delay(self._attempts, self.reconnect_interval, self._max_delay))

    async def _serve(self, ws: Any, url: str) -> tuple[int, str]:
        self._ws = ws
        self._writes = asyncio.Queue()
        self._drained = asyncio.Event()
        self._last_heard = time.monotonic()
        writer = asyncio.get_running_loop().create_task(self._write(ws, self._writes))
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws))
        self.log.info("connected to foreman", extra={"url": url})
        try:
            self.on_open()
            async for frame in ws:
                self._last_heard = time.monotonic()
                self._dispatch(frame)
        except _ws.ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._last_error = str(err) or type(err).__name__
            self.log.exception("the connection to %s failed", url)
        finally:
            if ws.close_code is None:
                # Left by an error of ours, not by the foreman: close it rather than leak it.
                transport = getattr(ws, "transport", None)
                if transport is not None:
                    transport.abort()
            self._ws = None
            self._writes = None
            self._frame.clear()
            writer.cancel()
            watchdog.cancel()
        code = ws.close_code if ws.close_code is not None else 1006
        reason = ws.close_reason or ""
        if code == 1006 and not reason:
            reason = self._last_error
        return code, reason

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            data = json.loads(frame)
        except ValueError as err:
            self.log.warning("foreman sent a frame that is not JSON", extra={"error": str(err)})
            return
        for message in data if isinstance(data, list) else [data]:
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                self.log.warning("foreman sent a message without a type")
                continue
            try:
                self.on_message(message)
            except Exception:
                self.log.exception("a message from the foreman could not be handled", extra={"type": message.get("type")})

    async def _write(self, ws: Any, queue: "asyncio.Queue[str | None]") -> None:
        try:
            while True:
                frame = await queue.get()
                if frame is None:
                    break
                await ws.send(frame)
        except (_ws.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            self._drained.set()

    async def _watch(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(max(0.02, self._silence / 4) if self._silence > 0 else 1.0)
            if self._silence > 0 and time.monotonic() - self._last_heard > self._silence:
                silent = time.monotonic() - self._last_heard
                self.log.warning("foreman silent for too long; reconnecting", extra={"url": self.current_url, "silent_seconds": round(silent, 1)})
                self._last_error = f"foreman silent for {silent:.1f} s"
                # Do not wait for a closing handshake a frozen network will never carry.
                transport = getattr(ws, "transport", None)
                if transport is not None:
                    transport.abort()
                else:
                    await ws.close(4000, "foreman silent")
                return

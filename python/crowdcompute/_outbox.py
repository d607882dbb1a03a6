"""Outcomes on their way to the foreman, kept until it acknowledges them (after its commit)
and sent again after a reconnect, so a result is never lost to a dropped socket; the
foreman's guarded update records each at most once."""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class ResultOutbox:
    def __init__(self, send: Callable[[list[str]], bool], loop: asyncio.AbstractEventLoop,
                 schedule: Callable[[Callable[[], None]], None] | None = None) -> None:
        #: Sends a batch of outcomes, each as its JSON text; False when there is no connection.
        self._send = send
        self._loop = loop
        #: Has `flush` called later in this turn (by default at the start of the next).
        self._schedule = schedule or loop.call_soon
        #: By task id: the outcome, its JSON text (encoded once, sent as often as needed) and its result's size.
        self._unacked: dict[str, tuple[dict[str, Any], str, int]] = {}
        self._pending: list[tuple[dict[str, Any], str, int]] = []
        self._scheduled = False
        self._ack_waiters: list[asyncio.Future[None]] = []
        #: Half the foreman's frame limit: large results travel a few per message.
        self.max_batch_bytes = 4 * 1024 * 1024

    @property
    def size(self) -> int:
        """Outcomes not yet acknowledged."""
        return len(self._unacked)

    def refs(self) -> list[dict[str, Any]]:
        """Tasks whose outcome is unacknowledged: still this worker's, as far as a hello says."""
        return [{"taskId": o["taskId"], "attempt": o["attempt"]} for o, _, _ in self._unacked.values()]

    def add(self, outcome: dict[str, Any], text: str, result_bytes: int) -> None:
        """`text` is `outcome` as JSON."""
        item = (outcome, text, result_bytes)
        self._unacked[outcome["taskId"]] = item
        self._pending.append(item)
        if not self._scheduled:
            # Outcomes of one turn of the loop leave together.
            self._scheduled = True
            self._schedule(self.flush)

    def resend_all(self) -> None:
        self._pending = list(self._unacked.values())
        self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        batch: list[str] = []
        size = 0
        for _, text, nbytes in pending:
            cost = nbytes + 200
            if batch and size + cost > self.max_batch_bytes:
                if not self._send(batch):
                    return  # no connection: everything waits for resend_all
                batch, size = [], 0
            batch.append(text)
            size += cost
        if batch:
            self._send(batch)

    def acknowledged(self, refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            item = self._unacked.get(ref.get("taskId", ""))
            if item and item[0]["attempt"] == ref.get("attempt"):
                del self._unacked[ref["taskId"]]
        if not self._unacked:
            for w in self._ack_waiters:
                if not w.done():
                    w.set_result(None)
            self._ack_waiters.clear()

    async def wait_acknowledged(self, timeout: float) -> None:
        if not self._unacked:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._ack_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass

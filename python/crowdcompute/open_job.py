"""A job submitted open: its tasks (or a map job's arguments) sent in parts as they come, the
first ones running while the rest are still on their way; `seal` says no more will come."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Literal
from urllib.parse import quote

from ._spec import rest_keys

if TYPE_CHECKING:
    from .client import AsyncClient
    from .job import JobHandle

#: A part holds at most this many items, and about this many bytes of them.
PART_MAX_ITEMS = 10_000
PART_MAX_BYTES = 2 * 1024 * 1024


class OpenJob:
    """Append with `await job.append(items)` as often as needed, then `handle = await job.seal()`.

    Each part says where it starts (`at`), so a part sent again after a lost answer is appended
    once. A map job's parts hold whole chunks (`chunk_size` arguments each): a remainder waits
    for the next `append`, or for `seal`, which sends it last."""

    def __init__(self, client: "AsyncClient", handle: "JobHandle", field: Literal["tasks", "args"], unit: int) -> None:
        self._client = client
        self.handle = handle
        self._field = field
        self._unit = max(1, unit)
        self._sent = 0
        self._waiting: list[Any] = []
        self._sealed = False

    @property
    def id(self) -> str:
        return self.handle.id

    @property
    def appended(self) -> int:
        """Items the foreman has taken so far (a remainder still waiting is not counted)."""
        return self._sent

    async def append(self, items: Iterable[Any]) -> None:
        if self._sealed:
            raise ValueError(f"job {self.id} was sealed: it takes no more parts")
        self._waiting.extend(rest_keys(t) if self._field == "tasks" else t for t in items)
        whole = len(self._waiting) - len(self._waiting) % self._unit
        if whole > 0:
            part, self._waiting = self._waiting[:whole], self._waiting[whole:]
            await self._send(part, seal=False)

    async def seal(self) -> "JobHandle":
        """Send what waits, and say the job takes no more: it ends once its tasks have."""
        if not self._sealed:
            waiting, self._waiting = self._waiting, []
            await self._send(waiting, seal=True)
            self._sealed = True
        return self.handle

    async def _send(self, items: list[Any], *, seal: bool) -> None:
        path = f"/api/jobs/{quote(self.id, safe='')}/tasks"
        start = 0
        while True:
            end, size = start, 0
            while end < len(items) and end - start < PART_MAX_ITEMS and size < PART_MAX_BYTES:
                size += len(json.dumps(items[end])) + 1
                end += 1
            if end < len(items) and end - start >= self._unit:
                end -= (end - start) % self._unit
            last = end >= len(items)
            if end > start or (seal and last):
                body: dict[str, Any] = {self._field: items[start:end], "at": self._sent}
                if seal and last:
                    body["seal"] = True
                await self._client._rest("POST", path, body)
                self._sent += end - start
            if last:
                return
            start = end

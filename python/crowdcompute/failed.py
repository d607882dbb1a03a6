"""The dead letters: tasks that failed for good (no attempt left, or a permanent error).
`AsyncClient` and `Client` have `list_failed`, which groups them by task type and error
(the error's code, or its name when it has none, and its message's first line), and
`retry_failed`, which runs them again in bulk by the same filters or by task id. A key sees
and retries its own jobs' tasks; an admin key every owner's. Answers are the REST API's
(dicts, snake_case keys).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlencode

from ._spec import wire_time

#: Most tasks one `retry_failed` call requeues; its answer's `more` says whether others matched.
FAILED_RETRY_MAX = 10_000


def _filter(type: str | None, error_code: str | None, message: str | None, job_id: str | None, since: datetime | int | str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type, "error_code": error_code, "message": message, "job_id": job_id}
    if since is not None:
        out["since"] = wire_time(since)
    return {k: v for k, v in out.items() if v is not None}


class AsyncFailedTasks:
    """The failed-task methods of `AsyncClient`."""

    if TYPE_CHECKING:
        async def _rest(self, method: str, path: str, body: Any = None) -> Any: ...

    async def list_failed(self, *, type: str | None = None, error_code: str | None = None, message: str | None = None,
                          job_id: str | None = None, since: datetime | int | str | None = None,
                          limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """Failed-for-good tasks grouped by type and error, largest group first:
        `{"groups": [{"type", "error_code", "message", "count", "jobs", "first_failed_at",
        "last_failed_at", "task_ids", "job_ids"}], "offset", "next_offset"}` (page with `offset`
        until `next_offset` is None). `since` is a datetime, epoch ms or RFC 3339 text."""
        q = {**_filter(type, error_code, message, job_id, since), **{k: v for k, v in {"limit": limit, "offset": offset}.items() if v is not None}}
        result: dict[str, Any] = await self._rest("GET", f"/api/failed{'?' + urlencode(q) if q else ''}")
        return result

    async def retry_failed(self, *, type: str | None = None, error_code: str | None = None, message: str | None = None,
                           job_id: str | None = None, since: datetime | int | str | None = None,
                           task_ids: Sequence[str] | None = None, limit: int | None = None) -> dict[str, Any]:
        """Run failed tasks again with fresh attempts: those the filters match (all this key's
        without one), or the `task_ids` listed; at most `limit` (10,000 at most) a call. Answers
        `{"requeued", "jobs", "job_ids", "more"}`; `more` is True when others matched (call
        again). Their jobs run again; results already recorded stay."""
        body = _filter(type, error_code, message, job_id, since)
        if task_ids is not None:
            body["task_ids"] = list(task_ids)
        if limit is not None:
            body["limit"] = limit
        result: dict[str, Any] = await self._rest("POST", "/api/failed/retry", body)
        return result

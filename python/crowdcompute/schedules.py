"""Recurring schedules: a job the foreman fires at each tick of a cron expression or a fixed
interval, once per tick across every foreman. `AsyncClient` and `Client` have these methods
(`create_schedule`, `get_schedule`, `list_schedules`, `update_schedule`, `pause_schedule`,
`resume_schedule`, `delete_schedule`, `trigger_schedule`, `backfill_schedule`); schedules come
back as the REST API shows them (dicts, snake_case keys).

Durations (`every`, `jitter`, a catch-up `window`) are a `timedelta`, milliseconds (an int, as
`timeout_ms` and the other job options count) or text such as `"10m"`; times are a `datetime`,
epoch milliseconds or RFC 3339 text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Mapping
from urllib.parse import quote

from ._spec import rest_keys, wire_duration, wire_time

if TYPE_CHECKING:
    from .job import JobHandle

#: While the previous run's job is unfinished: skip this tick (default), allow it, cancel the previous job, or hold one tick for later.
Overlap = Literal["skip", "allow", "cancel_previous", "buffer_one"]
#: Which ticks missed while no foreman could fire them fire late: the latest (default), all, or none.
CatchUpPolicy = Literal["none", "latest", "all"]
Duration = timedelta | int | str
Time = datetime | int | str


def _path(schedule_id: str) -> str:
    return f"/api/schedules/{quote(schedule_id, safe='')}"


def _catch_up(value: CatchUpPolicy | Mapping[str, Any]) -> dict[str, Any]:
    """`"all"`, or `{"window": timedelta | ms | "2h", "policy": "all"}`, as the REST API takes it."""
    if isinstance(value, str):
        return {"policy": value}
    out = dict(value)
    if out.get("window") is not None:
        out["window"] = wire_duration(out["window"], "catch_up window")
    return {k: v for k, v in out.items() if v is not None}


def schedule_fields(*, cron: str | None = None, every: Duration | None = None, timezone: str | None = None, job: Mapping[str, Any] | None = None,
                    overlap: Overlap | None = None, catch_up: CatchUpPolicy | Mapping[str, Any] | None = None, jitter: Duration | None = None,
                    paused: bool | None = None, name: str | None = None) -> dict[str, Any]:
    """The fields given, as POST and PATCH /api/schedules take them (snake_case; the job's keys too)."""
    body: dict[str, Any] = {"cron": cron, "timezone": timezone, "overlap": overlap, "paused": paused, "name": name}
    if every is not None:
        body["every"] = wire_duration(every, "every")
    if jitter is not None:
        body["jitter"] = wire_duration(jitter, "jitter")
    if catch_up is not None:
        body["catch_up"] = _catch_up(catch_up)
    if job is not None:
        body["job"] = rest_keys(job)
    return {k: v for k, v in body.items() if v is not None}


class AsyncSchedules:
    """The schedule methods of `AsyncClient`."""

    if TYPE_CHECKING:
        async def _rest(self, method: str, path: str, body: Any = None) -> Any: ...
        async def watch(self, job_id: str) -> JobHandle: ...

    async def create_schedule(self, id: str, *, job: Mapping[str, Any], cron: str | None = None, every: Duration | None = None,
                              timezone: str | None = None, overlap: Overlap | None = None, catch_up: CatchUpPolicy | Mapping[str, Any] | None = None,
                              jitter: Duration | None = None, paused: bool | None = None, name: str | None = None) -> dict[str, Any]:
        """Create a schedule: its `id` (1 to 200 letters, digits, `_ . : -`, unique), exactly one of
        `cron` (5 fields, or 6 with seconds; in `timezone`, default UTC) and `every` (at least 1 s;
        ticks aligned to the Unix epoch), and the `job` each tick fires: a job spec as `submit_job`
        takes it (`{"kind": "tasks", "tasks": [{"type": ..., "input": ...}]}`), without
        `idempotency_key`, `open`, `run_at` or `delay`.

        `catch_up` is a policy (`"latest"`, `"all"`, `"none"`) or `{"window": ..., "policy": ...}`.
        Raises CrowdComputeError CC_ERR_SCHEDULE_EXISTS if the id is taken, CC_ERR_INVALID_SCHEDULE
        naming the field otherwise."""
        body = {"id": id, **schedule_fields(cron=cron, every=every, timezone=timezone, job=job, overlap=overlap, catch_up=catch_up,
                                            jitter=jitter, paused=paused, name=name)}
        result: dict[str, Any] = await self._rest("POST", "/api/schedules", body)
        return result

    async def get_schedule(self, id: str) -> dict[str, Any]:
        """One schedule: its spec, `next_fire_at`, `next_fires` (the next five ticks) and `recent_runs`
        (newest first: `tick_at`, `reason`, `outcome`, `job_id`, `job_state`)."""
        result: dict[str, Any] = await self._rest("GET", _path(id))
        return result

    async def list_schedules(self) -> list[dict[str, Any]]:
        """The schedules this key may see (its own; every owner's for an admin key), by id."""
        result: list[dict[str, Any]] = await self._rest("GET", "/api/schedules")
        return result

    async def update_schedule(self, id: str, *, cron: str | None = None, every: Duration | None = None, timezone: str | None = None,
                              job: Mapping[str, Any] | None = None, overlap: Overlap | None = None, catch_up: CatchUpPolicy | Mapping[str, Any] | None = None,
                              jitter: Duration | None = None, paused: bool | None = None, name: str | None = None) -> dict[str, Any]:
        """Change the fields given (`cron` replaces `every` and the other way round); its next tick is worked out again."""
        body = schedule_fields(cron=cron, every=every, timezone=timezone, job=job, overlap=overlap, catch_up=catch_up,
                               jitter=jitter, paused=paused, name=name)
        result: dict[str, Any] = await self._rest("PATCH", _path(id), body)
        return result

    async def pause_schedule(self, id: str, note: str | None = None) -> dict[str, Any]:
        """Pause it: no tick fires until it is resumed (jobs already fired go on). `note` says why."""
        result: dict[str, Any] = await self._rest("POST", f"{_path(id)}/pause", {"note": note} if note is not None else {})
        return result

    async def resume_schedule(self, id: str) -> dict[str, Any]:
        """Resume it: it fires from its next tick on."""
        result: dict[str, Any] = await self._rest("POST", f"{_path(id)}/resume")
        return result

    async def delete_schedule(self, id: str) -> dict[str, Any]:
        """Delete it (`{"deleted": True, "id": ...}`); the jobs it fired are kept."""
        result: dict[str, Any] = await self._rest("DELETE", _path(id))
        return result

    async def trigger_schedule(self, id: str) -> JobHandle:
        """Fire its job once now, outside its ticks (its next tick is unchanged); a handle on that job."""
        r = await self._rest("POST", f"{_path(id)}/trigger")
        return await self.watch(str(r["job_id"]))

    async def backfill_schedule(self, id: str, start: Time, end: Time) -> dict[str, Any]:
        """Fire every tick t with start <= t < end, each as its own job (at most 1,000 ticks; a tick
        that fired already is not fired again): `{"fired": n, "skipped": m, "job_ids": [...]}`."""
        result: dict[str, Any] = await self._rest("POST", f"{_path(id)}/backfill", {"from": wire_time(start), "to": wire_time(end)})
        return result

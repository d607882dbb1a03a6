"""What the worker's status server reports: the page's snapshot (what `/ws` pushes as
`{"type": "status", "data": ...}`), the task counts of `/stats`, the machine's CPU and memory,
and tasks finished per 10-second slot. Field names and units are the Node worker's
(src/worker/status/status-snapshot.ts), so that the same page renders either: snake_case,
times as ISO strings, durations in seconds. What Python cannot tell (a JavaScript heap) is null.
"""

from __future__ import annotations

import math
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .worker import Worker


def seconds(value: float) -> float:
    """Seconds to the millisecond, as the Node worker rounds them."""
    return round(value * 1000) / 1000


def iso(epoch: float) -> str:
    """`2024-05-01T12:00:00.000Z`, as JavaScript's toISOString writes it."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                fields = rest.split()
                if fields:
                    out[key] = int(fields[0]) * 1024
    except OSError:
        pass
    return out


def memory_total_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return _meminfo().get("MemTotal")


def memory_free_bytes() -> int | None:
    """Memory available to new programs (what Node's os.freemem() reports on Linux)."""
    info = _meminfo()
    return info.get("MemAvailable", info.get("MemFree"))


def process_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class HostUsage:
    """CPU and memory of the machine, as the foreman's and the Node worker's /health report
    them. CPU percent is measured between two calls, so the first reports the average since boot."""

    def __init__(self) -> None:
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq ...: idle counts idle and iowait.
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields[:8])

    def cpu_percent(self) -> float | None:
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None:
            return None
        d_idle, d_total = now[0] - last[0], now[1] - last[1]
        if d_total <= 0:
            return 0.0
        return round(1000 * (1 - d_idle / d_total)) / 10

    @staticmethod
    def memory_percent() -> float | None:
        total, free = memory_total_bytes(), memory_free_bytes()
        if not total or free is None:
            return None
        return round(1000 * (1 - free / total)) / 10


class Throughput:
    """Tasks finished per fixed slot (10 s) over a recent window (90 slots: 15 minutes). Fixed
    in size: a worker that runs for months holds no more than one that just started."""

    def __init__(self, bucket_seconds: float = 10, buckets: int = 90) -> None:
        self.bucket_seconds = bucket_seconds
        self._slots = [[-1, 0, 0, 0] for _ in range(buckets)]  # index, completed, failed, cancelled

    def record(self, status: str, at: float | None = None) -> None:
        index = math.floor((time.time() if at is None else at) / self.bucket_seconds)
        slot = self._slots[index % len(self._slots)]
        if slot[0] != index:
            slot[:] = [index, 0, 0, 0]
        slot[{"completed": 1, "failed": 2}.get(status, 3)] += 1

    def series(self, now: float) -> dict[str, Any]:
        n = len(self._slots)
        last = math.floor(now / self.bucket_seconds)
        out: dict[str, Any] = {"bucket_seconds": self.bucket_seconds, "times": [], "completed": [], "failed": []}
        for index in range(last - n + 1, last + 1):
            slot = self._slots[index % n]
            live = slot[0] == index
            out["times"].append(index * self.bucket_seconds)
            out["completed"].append(slot[1] if live else 0)
            out["failed"].append(slot[2] if live else 0)
        return out


def task_stats(w: "Worker") -> dict[str, Any]:
    """Task counts and times, as GET /stats and the page show them."""
    s = w.stats
    finished = s.tasks_completed + s.tasks_failed + s.tasks_cancelled
    return {
        "tasks_completed": s.tasks_completed,
        "tasks_failed": s.tasks_failed,
        "tasks_cancelled": s.tasks_cancelled,
        "total_execution_time": seconds(s.total_execution_time),
        "average_execution_time": 0 if finished == 0 else seconds(s.total_execution_time / finished),
    }


def running_tasks(w: "Worker") -> list[dict[str, Any]]:
    return [{
        "task_id": r["task_id"], "job_id": r["job_id"], "type": r["type"], "attempt": r["attempt"],
        "started_at": iso(r["started_at"]), "progress": r.get("progress"), "progress_message": r.get("progress_message"),
    } for r in w.running_tasks]


def connection_history(w: "Worker") -> list[dict[str, Any]]:
    """The worker's last connection changes, newest first; a run of identical failures is one
    entry with its count (a foreman down for an hour is one line, not hundreds)."""
    folded: list[dict[str, Any]] = []
    for e in w.connection_history:
        last = folded[-1] if folded else None
        if last and e["kind"] == "failed" and last["kind"] == "failed" and last["url"] == e["url"] and last["reason"] == e.get("reason"):
            last["count"] += 1
            last["at"] = iso(e["at"])
            continue
        folded.append({
            "at": iso(e["at"]), "kind": e["kind"], "url": e["url"], "reason": e.get("reason"), "code": e.get("code"),
            "foreman_id": e.get("foreman_id"), "count": 1,
        })
    return folded[::-1]


def config(w: "Worker") -> dict[str, Any]:
    return {"max_concurrent_tasks": w.max_concurrent_tasks, "allow_code": w.allow_code, "patterns": list(w.patterns)}


def status_snapshot(w: "Worker", usage: HostUsage, throughput: Throughput, now: float | None = None) -> dict[str, Any]:
    """The page's data for `w` now; `usage` measures CPU since its previous call."""
    now = time.time() if now is None else now
    s = w.stats
    history = connection_history(w)
    return {
        "worker_id": w.worker_id,
        "status": w.status,
        "now": iso(now),
        "connection": {
            "connected": w.connected,
            "foreman_url": w.foreman_url,
            "foreman_id": next((e["foreman_id"] for e in history if e["kind"] == "connected"), None),
            "connects": s.connects,
            "reconnects": max(0, s.connects - 1),
            "history": history,
        },
        "config": config(w),
        "running_tasks": running_tasks(w),
        "stats": {**task_stats(w), "started_at": iso(s.started_at), "uptime_seconds": seconds(now - s.started_at)},
        "throughput": throughput.series(now),
        "host": {
            "cpu_percent": usage.cpu_percent(),
            "memory_percent": usage.memory_percent(),
            "cpu_cores": os.cpu_count(),
            "memory_total_bytes": memory_total_bytes(),
            "memory_free_bytes": memory_free_bytes(),
            "process_rss_bytes": process_rss_bytes(),
            # A JavaScript heap: a Python worker has none to report.
            "process_heap_used_bytes": None,
        },
    }

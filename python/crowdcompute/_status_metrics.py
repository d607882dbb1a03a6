"""The worker's Prometheus metrics (`GET /metrics/prometheus`), in the text exposition format,
with the Node worker's names (docs/operations.md). Counts the worker already keeps are read
from its stats at scrape time, so they always agree with `GET /stats`; execution times are
observed as tasks finish.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from ._status_snapshot import process_rss_bytes

if TYPE_CHECKING:
    from .task import Task
    from .worker import Worker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Distinct task types the execution-time histogram labels by name; later ones count as `other`.
MAX_TYPE_LABELS = 50

#: Execution time buckets, seconds: from quick handlers to long tasks.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(DURATION_BUCKETS)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value


class WorkerMetrics:
    """A worker's metrics; they follow the worker's `task_finished` events from construction on."""

    def __init__(self, worker: "Worker") -> None:
        self.worker = worker
        self._durations: dict[str, _Histogram] = {}
        worker.on("task_finished", self._finished)

    def _finished(self, outcome: dict[str, Any], task: "Task") -> None:
        self.observe(str(getattr(task, "type", None) or "unknown"), float(outcome.get("durationMs") or 0) / 1000)

    def observe(self, type_: str, duration_seconds: float) -> None:
        # Task types come from submitters; a label per type without a cap would let them grow the
        # worker's memory and every scrape without bound.
        if type_ not in self._durations and len(self._durations) >= MAX_TYPE_LABELS:
            type_ = "other"
        self._durations.setdefault(type_, _Histogram()).observe(duration_seconds)

    def text(self) -> str:
        w = self.worker
        s = w.stats
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {_num(v)}" for labels, v in samples)

        metric("crowdcompute_worker_tasks_completed_total", "counter", "Tasks this worker completed", [("", s.tasks_completed)])
        metric("crowdcompute_worker_tasks_failed_total", "counter", "Tasks this worker finished as failed (errors, timeouts)", [("", s.tasks_failed)])
        metric("crowdcompute_worker_tasks_cancelled_total", "counter", "Tasks this worker stopped because they were cancelled", [("", s.tasks_cancelled)])
        metric("crowdcompute_worker_reconnects_total", "counter", "Times the foreman accepted this worker again after its first connection", [("", max(0, s.connects - 1))])
        metric("crowdcompute_worker_running_tasks", "gauge", "Tasks running on this worker now", [("", len(w.running_tasks))])
        metric("crowdcompute_worker_capacity", "gauge", "Tasks this worker runs at once at most", [("", w.max_concurrent_tasks)])
        metric("crowdcompute_worker_connected", "gauge", "1 while a foreman has accepted this worker, else 0", [("", 1 if w.connected else 0)])
        metric("crowdcompute_worker_info", "gauge", "Always 1; its label names the worker", [(f'{{worker_id="{_label(w.worker_id)}"}}', 1)])
        samples: list[tuple[str, float]] = []
        for type_, h in self._durations.items():
            t = _label(type_)
            for bound, count in zip(DURATION_BUCKETS, h.counts):
                samples.append((f'_bucket{{le="{_num(bound)}",type="{t}"}}', count))
            samples.append((f'_bucket{{le="+Inf",type="{t}"}}', h.total))
            samples.append((f'_sum{{type="{t}"}}', h.sum))
            samples.append((f'_count{{type="{t}"}}', h.total))
        metric("crowdcompute_worker_task_duration_seconds", "histogram",
               f'Execution time of finished tasks by task type (after {MAX_TYPE_LABELS} distinct types, further ones count as "other")', samples)
        # The standard process metrics, under the names every Prometheus client library gives them.
        times = os.times()
        metric("process_cpu_user_seconds_total", "counter", "Total user CPU time spent in seconds.", [("", times.user)])
        metric("process_cpu_system_seconds_total", "counter", "Total system CPU time spent in seconds.", [("", times.system)])
        metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [("", times.user + times.system)])
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [("", round(time.time() - time.monotonic() + _process_started))])
        rss = process_rss_bytes()
        if rss is not None:
            metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", rss)])
        return "\n".join(lines) + "\n"


#: When this module was loaded (monotonic): close enough to the process's start for the metric.
_process_started = time.monotonic()

"""Helpers for tests that run a Python worker in the test's event loop: REST calls go through a
thread, so the worker keeps running while a test waits."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")

TERMINAL = {"completed", "failed", "cancelled"}


async def wait_for(check: Callable[[], Any], timeout: float = 60, interval: float = 0.05, message: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")
        await asyncio.sleep(interval)


async def api(foreman: Any, method: str, path: str, body: Any = None) -> Any:
    return await asyncio.to_thread(foreman.api, method, path, body)


async def submit(foreman: Any, tasks: list[dict[str, Any]], **options: Any) -> str:
    """Submit a job of named tasks over REST; its id."""
    job = await api(foreman, "POST", "/api/jobs", {"kind": "tasks", "tasks": tasks, **options})
    return str(job["id"])


async def finished(foreman: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for a job to end; the job."""

    async def check() -> Any:
        job = await api(foreman, "GET", f"/api/jobs/{job_id}")
        return job if job["status"] in TERMINAL else None

    return await wait_for(check, timeout, 0.05, f"job {job_id} to finish")


async def tasks_of(foreman: Any, job_id: str) -> list[dict[str, Any]]:
    return await api(foreman, "GET", f"/api/jobs/{job_id}/tasks")


async def results_of(foreman: Any, job_id: str) -> list[Any]:
    return (await api(foreman, "GET", f"/api/jobs/{job_id}/results"))["results"]


def wait_until(check: Callable[[], Any], timeout: float = 60, message: str = "condition", interval: float = 0.05) -> Any:
    """`wait_for` for tests without an event loop: poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)

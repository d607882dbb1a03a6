"""The scenarios the TypeScript worker is tested on, run against the Python worker through a
real foreman: a dropped connection with outcomes unacknowledged, a foreman killed mid-job
(on both stores), a revoked token, a refused credential, and the DistWorker quick-start."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crowdcompute import ConnectionFailedError, Task, UnauthorizedError, Worker
from proxy import CuttableProxy
from support import finished, results_of, submit, tasks_of, wait_for, wait_until

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_outcomes_finished_while_the_foreman_was_down_are_adopted(start_foreman: Any, store: str) -> None:
    foreman = start_foreman("--heartbeat-interval", "500ms", "--lease-ttl", "10s", store=store)
    gate = asyncio.Event()
    runs: list[str] = []

    async def gated(task: Task) -> int:
        runs.append(f"{task.task_id}#{task.attempt}")
        await gate.wait()
        return task.get_input("n") * 2

    worker = Worker(foreman.ws_url, f"py-adopt-{store}", foreman.worker_token, reconnect_interval=0.05, max_concurrent_tasks=10)
    worker.register_handler("gated", gated)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "gated", "input": {"n": i}} for i in range(5)])
        await wait_for(lambda: len(worker.running_tasks) == 5, message="five tasks running")
        await asyncio.to_thread(foreman.kill, signal.SIGKILL)
        await wait_for(lambda: not worker.connected, message="the worker to notice the foreman is gone")
        gate.set()  # they finish while no foreman can hear of it
        await wait_for(lambda: worker.unacked_count == 5, message="five outcomes kept")
        await asyncio.to_thread(foreman.start)  # same port, same database
        assert (await finished(foreman, job))["status"] == "completed"
        assert await results_of(foreman, job) == [0, 2, 4, 6, 8]
        # Listed in the next hello, the tasks stayed this worker's: each ran once, on its first attempt.
        assert len(runs) == 5, runs
        assert {t["attempt"] for t in await tasks_of(foreman, job)} == {1}
        await wait_for(lambda: worker.unacked_count == 0, message="the outcomes acknowledged")
    finally:
        await worker.stop()


async def test_a_dropped_connection_requeues_and_late_outcomes_are_not_recorded_twice(foreman: Any) -> None:
    proxy = await CuttableProxy(foreman.port).start()
    first = asyncio.Event()
    runs: list[str] = []

    async def gated(task: Task) -> str:
        runs.append(f"{task.task_id}#{task.attempt}")
        if task.attempt == 1:
            await first.wait()
        return f"attempt {task.attempt}"

    worker = Worker(proxy.ws_url, "py-cut", foreman.worker_token, reconnect_interval=0.05, max_concurrent_tasks=10)
    worker.register_handler("gated", gated)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "gated", "input": {"n": i}} for i in range(3)])
        await wait_for(lambda: len(worker.running_tasks) == 3, message="three tasks running")
        proxy.cut_all()
        await wait_for(lambda: not worker.connected, message="the worker to notice the cut")
        first.set()  # the first attempts end while the worker is away
        await wait_for(lambda: worker.unacked_count == 3, message="three outcomes kept")
        proxy.restore()
        # The foreman saw the connection close and put the tasks back: the second attempts count.
        assert (await finished(foreman, job))["status"] == "completed"
        assert await results_of(foreman, job) == ["attempt 2"] * 3
        await wait_for(lambda: worker.unacked_count == 0, message="the late outcomes acknowledged (refused as stale)")
    finally:
        await worker.stop()
        await proxy.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_job_finishes_across_a_foreman_sigkill(start_foreman: Any, store: str) -> None:
    foreman = start_foreman("--heartbeat-interval", "500ms", "--lease-ttl", "5s", store=store)
    done: dict[str, int] = {}

    async def work(task: Task) -> int:
        await asyncio.sleep(0.01)
        done[task.task_id] = done.get(task.task_id, 0) + 1
        return int(task.get_input("n")) + 1

    worker = Worker(foreman.ws_url, f"py-kill-{store}", foreman.worker_token, reconnect_interval=0.05, max_concurrent_tasks=8)
    worker.register_handler("inc", work)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "inc", "input": {"n": i}} for i in range(300)])
        await wait_for(lambda: len(done) >= 40, message="some tasks done")
        await asyncio.to_thread(foreman.kill, signal.SIGKILL)
        await asyncio.to_thread(foreman.start)  # same port, same database
        assert (await finished(foreman, job, timeout=120))["status"] == "completed"
        assert await results_of(foreman, job) == [i + 1 for i in range(300)]
        assert worker.stats.connects >= 2
    finally:
        await worker.stop()


async def test_a_revoked_token_stops_the_worker_saying_why(foreman: Any) -> None:
    out = await asyncio.to_thread(foreman.cli, "token", "create", "--worker", "py-revoked")
    token = re.search(r"cct_[A-Za-z0-9]+_[A-Za-z0-9_-]+", out)
    assert token, out
    errors: list[BaseException] = []
    worker = Worker(foreman.ws_url, "py-revoked", token.group(0), reconnect_interval=0.05)
    worker.register_handler("x", lambda task: None)
    worker.on("error", errors.append)
    await worker.start()
    token_id = token.group(0).split("_")[1]
    await asyncio.to_thread(foreman.cli, "token", "revoke", token_id)
    await asyncio.wait_for(worker.wait_stopped(), 30)
    assert worker.status == "stopped"
    assert errors and isinstance(errors[0], UnauthorizedError) and errors[0].code == "CC_ERR_UNAUTHORIZED"
    assert worker.connection_history[-1]["kind"] == "gave_up"


async def test_a_token_for_another_worker_is_refused_at_start(foreman: Any) -> None:
    out = await asyncio.to_thread(foreman.cli, "token", "create", "--worker", "someone-else")
    token = re.search(r"cct_[A-Za-z0-9]+_[A-Za-z0-9_-]+", out)
    assert token
    worker = Worker(foreman.ws_url, "py-impostor", token.group(0))
    worker.register_handler("x", lambda task: None)
    with pytest.raises(UnauthorizedError, match="CC_ERR_UNAUTHORIZED"):
        await asyncio.wait_for(worker.start(), 30)
    await asyncio.wait_for(worker.wait_stopped(), 30)
    assert worker.status == "stopped"
    assert "the worker token is for worker someone-else" in worker.connection_history[-1]["reason"]


async def test_reconnection_gives_up_after_max_attempts() -> None:
    worker = Worker("ws://127.0.0.1:9/ws", "py-nowhere", None, reconnect_interval=0.01, max_reconnect_attempts=2)
    worker.register_handler("x", lambda task: None)
    with pytest.raises(ConnectionFailedError, match="gave up after 2 reconnection attempts"):
        await asyncio.wait_for(worker.start(), 30)


def test_the_distworker_quick_start_runs_with_only_its_import_changed(foreman: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "CROWDCOMPUTE_FOREMAN": foreman.ws_url, "CROWDCOMPUTE_WORKER_TOKEN": foreman.worker_token}
    proc = subprocess.Popen([sys.executable, str(HERE.parent / "examples" / "distworker_quickstart.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def connected() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            return any(w["worker_id"] == "math-worker-001" and w["status"] != "offline" for w in foreman.api("GET", "/api/workers"))

        wait_until(connected, 30, "the quick-start worker to connect")
        job = foreman.api("POST", "/api/jobs", {"kind": "tasks", "tasks": [
            {"type": "math.add", "input": {"operation": "add", "a": 2, "b": 3}},
            {"type": "math.mul", "input": {"operation": "multiply", "a": 4, "b": 5}},
            {"type": "math.pow", "input": {"operation": "pow", "a": 1, "b": 1}, "max_attempts": 1},
        ]})
        wait_until(lambda: foreman.api("GET", f"/api/jobs/{job['id']}")["status"] in ("completed", "failed"), 60, "the job to end")
        tasks = foreman.api("GET", f"/api/jobs/{job['id']}/tasks")
        assert [t["result"] for t in tasks[:2]] == [{"result": 5}, {"result": 20}]
        assert tasks[2]["error"]["name"] == "ValueError" and tasks[2]["error"]["message"] == "Unknown operation: pow"
        # SIGTERM drains the worker and ends the process.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

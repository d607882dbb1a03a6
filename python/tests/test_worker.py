"""The Python worker through its public API, against a real foreman."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from crowdcompute import NonRetryableError, Task, Worker
from support import api, finished, results_of, submit, tasks_of, wait_for


async def test_runs_named_tasks_and_returns_results_in_order(foreman: Any) -> None:
    async def add(task: Task) -> dict[str, Any]:
        return {"sum": task.get_input("a") + task.get_input("b"), "queue": task.queue, "priority": task.get_metadata("p")}

    worker = Worker(foreman.ws_url, "py-math", foreman.worker_token, max_concurrent_tasks=8)
    worker.register_handler("math.*", add)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "math.add", "input": {"a": i, "b": 1}} for i in range(50)], metadata={"p": "x"})
        assert (await finished(foreman, job))["status"] == "completed"
        results = await results_of(foreman, job)
        assert [r["sum"] for r in results] == [i + 1 for i in range(50)]
        assert results[0]["queue"] == "math.add" and results[0]["priority"] == "x"
        workers = await api(foreman, "GET", "/api/workers")
        mine = next(w for w in workers if w["worker_id"] == "py-math")
        assert mine["resources"]["runtime"].startswith("python 3.")
        assert mine["patterns"] == ["math.*"]
    finally:
        await worker.stop()
    assert worker.status == "stopped"


async def test_a_traced_jobs_context_reaches_the_handler(foreman: Any) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    async def show(task: Task) -> Any:
        return task.trace_context

    worker = Worker(foreman.ws_url, "py-traced", foreman.worker_token)
    worker.register_handler("trace.show", show)
    await worker.start()
    try:
        traced = await submit(foreman, [{"type": "trace.show"}], trace_context={"traceparent": traceparent, "tracestate": "vendor=a1"})
        plain = await submit(foreman, [{"type": "trace.show"}])
        for job in (traced, plain):
            assert (await finished(foreman, job))["status"] == "completed"
        (context,) = await results_of(foreman, traced)
        # Under the same trace; the span is the foreman's dispatch (or the submitter's, on a foreman that does not trace).
        assert context["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert context["tracestate"] == "vendor=a1"
        assert await results_of(foreman, plain) == [None]
    finally:
        await worker.stop()


async def test_an_exception_fails_the_task_with_its_message_and_traceback(foreman: Any) -> None:
    def broken(task: Task) -> None:  # a plain def: runs in the thread pool
        raise ValueError(f"cannot handle {task.get_input('x')}")

    async def permanent(task: Task) -> None:
        raise NonRetryableError("bad input, do not retry")

    worker = Worker(foreman.ws_url, "py-fail", foreman.worker_token)
    worker.register_handler("fail.retry", broken).register_handler("fail.now", permanent)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "fail.retry", "input": {"x": 7}, "max_attempts": 2}, {"type": "fail.now", "input": {}, "max_attempts": 3}])
        assert (await finished(foreman, job))["status"] == "failed"
        retried, once = await tasks_of(foreman, job)
        assert retried["attempt"] == 2 and retried["error"]["message"] == "cannot handle 7"
        assert retried["error"]["name"] == "ValueError"
        assert 'raise ValueError(f"cannot handle' in retried["error"]["stack"] and "Traceback" in retried["error"]["stack"]
        assert once["attempt"] == 1 and once["error"]["retryable"] is False
    finally:
        await worker.stop()


async def test_progress_from_inside_handlers_async_and_threaded(foreman: Any) -> None:
    release = asyncio.Event()
    worker = Worker(foreman.ws_url, "py-progress", foreman.worker_token)

    async def slow(task: Task) -> str:
        await worker.send_task_progress(40.0, "x" * 1500, {"step": 1})
        await release.wait()
        return "done"

    gate = threading.Event()

    def threaded(task: Task) -> str:
        worker.send_task_progress(250, "threaded")  # clamped to 100
        gate.wait(30)
        return "ok"

    worker.register_handler("p.async", slow).register_handler("p.thread", threaded)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "p.async", "input": None}, {"type": "p.thread", "input": None}])

        async def reported() -> Any:
            tasks = await tasks_of(foreman, job)
            return tasks if all(t.get("progress") is not None for t in tasks) else None

        tasks = await wait_for(reported, message="both tasks' progress")
        assert tasks[0]["progress"] == 40 and tasks[0]["progress_message"] == "x" * 1000
        assert tasks[1]["progress"] == 100 and tasks[1]["progress_message"] == "threaded"
        running = {t["type"]: t for t in worker.running_tasks}
        assert running["p.async"]["progress"] == 40
        release.set()
        gate.set()
        assert (await finished(foreman, job))["status"] == "completed"
    finally:
        gate.set()
        await worker.stop()
    with pytest.raises(RuntimeError, match="from inside a handler"):
        worker.send_task_progress(1)


async def test_timeout_and_cancellation_reach_the_handler(foreman: Any) -> None:
    seen: dict[str, str] = {}
    started = asyncio.Event()

    async def sleepy(task: Task) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen[task.get_input("name")] = task.cancel_reason or "?"
            raise

    worker = Worker(foreman.ws_url, "py-cancel", foreman.worker_token)
    worker.register_handler("sleep", sleepy)
    await worker.start()
    try:
        timed = await submit(foreman, [{"type": "sleep", "input": {"name": "timed"}, "timeout_ms": 300, "max_attempts": 1}])
        job = await finished(foreman, timed)
        assert job["status"] == "failed"
        [t] = await tasks_of(foreman, timed)
        assert t["error"]["code"] == "CC_ERR_TIMEOUT"
        await wait_for(lambda: "timed" in seen, message="the handler to see its timeout")
        assert seen["timed"] == "timeout"

        started.clear()
        cancelled = await submit(foreman, [{"type": "sleep", "input": {"name": "cancelled"}}])
        await asyncio.wait_for(started.wait(), 30)
        await api(foreman, "POST", f"/api/jobs/{cancelled}/cancel")
        assert (await finished(foreman, cancelled))["status"] == "cancelled"
        await wait_for(lambda: "cancelled" in seen, message="the handler to see its cancellation")
        assert seen["cancelled"] == "coordinator"
    finally:
        await worker.stop()


async def test_graceful_stop_hands_back_what_does_not_finish(foreman: Any) -> None:
    async def forever(task: Task) -> None:
        await asyncio.sleep(3600)

    worker = Worker(foreman.ws_url, "py-drain", foreman.worker_token)
    worker.register_handler("forever", forever)
    await worker.start()
    job = await submit(foreman, [{"type": "forever", "input": None}])
    await wait_for(lambda: worker.running_tasks, message="the task to start")
    await worker.stop(drain_timeout=0.2)
    [t] = await tasks_of(foreman, job)
    # Handed back: queued again at once, the attempt recorded as released (not a failure).
    assert t["status"] == "queued"
    assert [e["error"]["reason"] for e in t["attempt_errors"]] == ["released"]


async def test_files_a_task_carries_are_listed_and_read(foreman: Any) -> None:
    from crowdcompute import AsyncClient

    async def read(task: Task) -> dict[str, Any]:
        [listed] = task.get_files_by_name("hello.txt")
        assert task.get_file_by_id(listed["file_id"]) is listed and listed["storage_url"] == listed["url"]
        data = await task.read_file(listed)
        return {"text": data.decode(), "size": listed["size"], "type": listed["content_type"]}

    worker = Worker(foreman.ws_url, "py-files", foreman.worker_token)
    worker.register_handler("files.read", read)
    await worker.start()
    try:
        async with AsyncClient(foreman.url) as client:
            uploaded = await client.upload_file(b"hello, file", "hello.txt", "text/plain")
            job = await client.submit("files.read", None, files=[uploaded["file_id"]])
            assert await job.result() == {"text": "hello, file", "size": 11, "type": "text/plain"}
    finally:
        await worker.stop()


def test_the_distworker_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTWORKER_CONTROLLER_URL", "ws://example.test:9000/ws")
    monkeypatch.setenv("DISTWORKER_WORKER_ID", "dw-1")
    monkeypatch.setenv("DISTWORKER_WORKER_TOKEN", "cct_abcdEFGH1234_secretSECRETsecret0123456789")
    worker = Worker()
    assert (worker.foreman_url, worker.worker_id) == ("ws://example.test:9000/ws", "dw-1")
    monkeypatch.setenv("CROWDCOMPUTE_WORKER_ID", "cc-1")  # the CrowdCompute name wins
    assert Worker().worker_id == "cc-1"
    monkeypatch.setenv("DISTWORKER_WORKER_TOKEN", "not-a-token")
    with pytest.raises(Exception, match="cct_<id>_<secret>"):
        Worker()


def test_options_out_of_range_are_refused_naming_the_limit() -> None:
    with pytest.raises(ValueError, match="max_concurrent_tasks must be between 1 and 10000"):
        Worker("ws://localhost:8000/ws", "w", None, max_concurrent_tasks=0)
    with pytest.raises(ValueError, match="must be ws:// or wss://"):
        Worker("http://localhost:8000", "w", None)

"""The Python client against a real foreman, with a Node worker running tests/fixtures/client_handlers.mjs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support import wait_until

from conftest import BIN, SESSION_DIR, Foreman, free_port, node
from crowdcompute import AsyncClient, Client
from crowdcompute.errors import (
    ConflictError, ConnectionFailedError, InvalidRequestError, JobFailedError, NotFoundError, UnauthorizedError,
)

HANDLERS = Path(__file__).parent / "fixtures" / "client_handlers.mjs"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    return wait_until(check, timeout, what)


class Worker:
    """A Node worker process running the test handlers, connected to `foreman`."""

    def __init__(self, foreman: Foreman, worker_id: str, *args: str) -> None:
        self.id = worker_id
        self.log = SESSION_DIR / f"worker-{worker_id}-{foreman.port}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [node(), str(BIN), "worker", "--foreman", foreman.ws_url, "--id", worker_id,
                 "--handlers", str(HANDLERS), "--concurrency", "8", "--no-status", "--log-level", "warn", *args],
                stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
            )

        def online() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}: {self.log.read_text('utf-8', 'replace')[-2000:]}")
            return any(w["worker_id"] == worker_id and w["status"] == "online" for w in foreman.api("GET", "/api/workers"))

        wait_for(f"worker {worker_id} is online", online)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def worker(foreman: Foreman) -> Iterator[Worker]:
    w = Worker(foreman, "py-client-worker")
    yield w
    w.kill()


@pytest.fixture
def code_worker(foreman: Foreman) -> Iterator[Worker]:
    """A worker that also runs map jobs (shipped JavaScript functions)."""
    w = Worker(foreman, "py-client-code-worker", "--allow-code")
    yield w
    w.kill()


@pytest.fixture
async def client(foreman: Foreman) -> Any:
    c = AsyncClient(foreman.url)
    yield c
    await c.aclose()


# ---------------------------------------------------------------- submitting and results

async def test_submit_returns_the_single_result(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit("py.echo", {"greeting": "hello", "n": [1, 2]})
    assert job.task_id == f"{job.id}.0"
    assert await job.result() == {"greeting": "hello", "n": [1, 2]}
    assert job.finished


async def test_submit_many_gives_results_in_task_order(client: AsyncClient, worker: Worker) -> None:
    # The early tasks sleep longest, so they finish last: the order is the tasks', not the finishing one.
    tasks = [{"type": "py.sleep", "input": {"ms": (5 - i) * 60, "steps": 1}} for i in range(5)]
    tasks += [{"type": "py.echo", "input": i, "task_id": f"named-{i}"} for i in range(20)]
    job = await client.submit_many(tasks, name="ordered")
    results = await job.result()
    assert results[:5] == [{"slept": (5 - i) * 60} for i in range(5)]
    assert results[5:] == list(range(20))
    assert [t["task_id"] for t in await client.tasks(job.id, offset=5, limit=3)] == ["named-0", "named-1", "named-2"]


async def test_a_failing_task_raises_job_failed_with_its_code(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit("py.fail", {"code": "E_BROKEN", "message": "the input is broken"}, max_attempts=1)
    with pytest.raises(JobFailedError) as caught:
        await job.result()
    err = caught.value
    assert err.code == "CC_ERR_JOB_FAILED"
    assert err.state == "failed" and err.job_id == job.id
    assert err.failures[0]["task_id"] == job.task_id
    assert err.failures[0]["error"]["code"] == "E_BROKEN"
    assert "E_BROKEN" in str(err) and "the input is broken" in str(err)

    # Several tasks, one failing: result() raises with what did finish; outcome() does not raise.
    many = await client.submit_many([
        {"type": "py.echo", "input": "a"},
        {"type": "py.fail", "input": {"code": "E_TWO", "message": "second"}},
        {"type": "py.echo", "input": "c"},
    ], max_attempts=1)
    with pytest.raises(JobFailedError) as caught:
        await many.result()
    assert caught.value.results == ["a", None, "c"]
    assert [(f["index"], f["error"]["code"]) for f in caught.value.failures] == [(1, "E_TWO")]
    outcome = await many.outcome()
    assert outcome["state"] == "failed"
    assert outcome["counts"] == {"total": 3, "completed": 2, "failed": 1, "cancelled": 0}


async def test_cancel_ends_the_job_cancelled(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit("py.sleep", {"ms": 120_000, "steps": 1200})
    # Cancelled while it runs: wait until its handler has reported a step.
    async for event in job.progress():
        if event["type"] == "task_progress":
            break
    view = await job.cancel()
    assert view["id"] == job.id
    with pytest.raises(JobFailedError) as caught:
        await job.result()
    assert caught.value.code == "CC_ERR_CANCELLED"
    assert caught.value.state == "cancelled"
    assert (await job.get())["status"] == "cancelled"


async def test_retry_runs_failed_tasks_again(client: AsyncClient, worker: Worker, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    job = await client.submit("py.flaky", {"flag": str(flag), "value": 42}, max_attempts=1)
    with pytest.raises(JobFailedError):
        await job.result()
    flag.write_text("now")
    again = await job.retry()
    assert again.id == job.id and again is not job
    assert await again.result() == 42
    with pytest.raises(ConflictError) as caught:
        await client.retry_job(job.id)
    assert caught.value.code == "CC_ERR_NOTHING_TO_RETRY"


async def test_progress_yields_events_and_ends_with_the_job(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit("py.sleep", {"ms": 800, "steps": 4})
    events = [e async for e in job.progress()]
    steps = [e for e in events if e["type"] == "task_progress"]
    assert [e["task_id"] for e in steps] == [job.task_id] * len(steps)
    assert steps and steps[-1]["progress"] == 100 and steps[-1]["message"] == "step 4 of 4"
    last = events[-1]
    assert last["type"] == "job_progress" and last["state"] == "completed" and last["fraction"] == 1.0
    # A job that has ended gives its last state and ends at once.
    assert [e["state"] for e in [e async for e in job.progress()]] == ["completed"]


async def test_graph_result_is_the_output_nodes(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit_graph([
        {"id": "a", "type": "py.echo", "input": "first"},
        {"id": "b", "type": "py.echo", "input": "second", "depends_on": ["a"]},
    ])
    assert job.output == "b"
    assert await job.result() == "second"
    assert await job.node_results() == {"a": "first", "b": "second"}


async def test_map_runs_a_javascript_function_over_its_arguments(client: AsyncClient, code_worker: Worker) -> None:
    assert await client.map("(x) => x + 1", [1, 2, 3]) == [2, 3, 4]


async def test_large_jobs_are_sent_open_in_parts(client: AsyncClient, code_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    import crowdcompute.client as module
    import crowdcompute.open_job as parts

    # Small limits, so that a small job takes the path a job of over 20,000 tasks takes.
    monkeypatch.setattr(module, "STREAM_ABOVE_ITEMS", 10)
    monkeypatch.setattr(parts, "PART_MAX_ITEMS", 4)
    job = await client.submit_many([{"type": "py.echo", "input": i, "task_id": f"part-{i}", "max_attempts": 2} for i in range(11)], name="in-parts")
    assert await job.result() == list(range(11))
    view = await job.get()
    assert view["total_tasks"] == 11 and view["open"] is False and view["name"] == "in-parts"
    assert [t["task_id"] for t in await client.tasks(job.id)] == [f"part-{i}" for i in range(11)]
    # A map job's parts hold whole chunks (of 3: parts of 3, 3, 3 and the last 2).
    squares = await client.submit_map("(x) => x * x", list(range(11)), chunk_size=3)
    assert await squares.result() == [i * i for i in range(11)]
    assert [len(t["input"]) for t in await client.tasks(squares.id)] == [3, 3, 3, 2]


# ---------------------------------------------------------------- queries

async def test_jobs_tasks_workers_stats_and_health(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit_many([{"type": "py.echo", "input": i} for i in range(3)], name="queried-job")
    await job.result()
    listed = await client.list_jobs(search="queried-job")
    assert [j["id"] for j in listed] == [job.id]
    assert (await client.list_jobs(status="completed", limit=100))[0]["status"] == "completed"
    view = await client.get_job(job.id)
    assert view["name"] == "queried-job" and view["completed_tasks"] == 3
    tasks = await client.tasks(job.id)
    assert [t["result"] for t in tasks] == [0, 1, 2]
    stats = await client.stats()
    assert stats["total_jobs"] >= 1 and stats["connected_workers"] == 1
    assert [w["worker_id"] for w in await client.workers()] == [worker.id]
    assert (await client.worker(worker.id))["worker_id"] == worker.id
    assert (await client.health())["status"] == "healthy"


async def test_result_pages_follow_next_offset(client: AsyncClient, worker: Worker) -> None:
    job = await client.submit_many([{"type": "py.echo", "input": i * i} for i in range(25)])
    await job.ended()
    pages = [p async for p in client.result_pages(job.id, limit=10)]
    assert [(p["offset"], len(p["results"]), p["next_offset"]) for p in pages] == [(0, 10, 10), (10, 10, 20), (20, 5, None)]
    assert [r for p in pages for r in p["results"]] == [i * i for i in range(25)]
    assert all(p["total"] == 25 for p in pages)


# ---------------------------------------------------------------- errors

async def test_rest_errors_come_as_their_classes(client: AsyncClient, foreman: Foreman) -> None:
    with pytest.raises(NotFoundError) as caught:
        await client.get_job("no-such-job")
    assert caught.value.code == "CC_ERR_JOB_NOT_FOUND" and caught.value.status == 404
    with pytest.raises(NotFoundError) as caught_worker:
        await client.worker("no-such-worker")
    assert caught_worker.value.code == "CC_ERR_WORKER_NOT_FOUND"

    bad = AsyncClient(foreman.url, api_key="cck_abcdefgh12345678_" + "x" * 30, connect_timeout=5)
    try:
        with pytest.raises(UnauthorizedError) as refused:
            await bad.stats()
        assert refused.value.status == 401
        # The WebSocket is refused the same way, at once rather than after the connect timeout.
        with pytest.raises(UnauthorizedError):
            await bad.submit("py.echo", 1)
    finally:
        await bad.aclose()


async def test_a_refused_submission_rejects_with_the_class_of_its_code(client: AsyncClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.submit("py.echo", 1, max_attempts=1000)
    assert caught.value.code == "CC_ERR_BAD_MESSAGE"
    assert "maxAttempts" in str(caught.value) and "100" in str(caught.value)


async def test_nothing_listening_is_a_connection_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    c = AsyncClient(url, api_key="", connect_timeout=1)
    try:
        with pytest.raises(ConnectionFailedError) as caught:
            await c.stats()
        assert f"cannot reach the foreman at {url}: nothing answers there (connection refused)" in str(caught.value)
        with pytest.raises(ConnectionFailedError) as caught_ws:
            await c.submit("py.echo", 1)
        assert f"127.0.0.1:{url.rsplit(':', 1)[1]}" in str(caught_ws.value)
    finally:
        await c.aclose()


# ---------------------------------------------------------------- credentials

def test_credentials_are_found_as_the_typescript_sdk_finds_them(foreman: Foreman, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Nothing given: the local credentials file's key for this foreman's URL (ws:// written too).
    with Client(foreman.ws_url) as c:
        assert c.stats()["total_jobs"] == 0
    # CROWDCOMPUTE_API_KEY comes before the file, as in the TypeScript SDK: a wrong one is refused.
    monkeypatch.setenv("CROWDCOMPUTE_API_KEY", "cck_abcdefgh12345678_" + "y" * 30)
    with Client(foreman.url) as c, pytest.raises(UnauthorizedError):
        c.stats()
    # A key given outright comes before both.
    with Client(foreman.url, api_key=foreman.api_key) as c:
        assert c.stats()["total_jobs"] == 0
    # The variable alone, with no credentials file to fall back on.
    reader = foreman.cli("key", "create", "--scopes", "read", "--name", "py-client-test").strip()
    monkeypatch.setenv("CROWDCOMPUTE_API_KEY", reader)
    monkeypatch.setenv("CROWDCOMPUTE_CONFIG_DIR", str(tmp_path / "empty-config"))
    monkeypatch.setenv("CROWDCOMPUTE_FOREMAN", foreman.url)
    with Client() as c:
        assert c.url == foreman.url
        assert c.list_jobs() == []
    monkeypatch.delenv("CROWDCOMPUTE_API_KEY")
    with Client() as c, pytest.raises(UnauthorizedError):
        c.stats()


# ---------------------------------------------------------------- the synchronous client

def test_the_sync_client(foreman: Foreman, worker: Worker) -> None:
    with Client(foreman.url) as c:
        job = c.submit("py.echo", "sync")
        assert job.result(timeout=30) == "sync"
        slow = c.submit("py.sleep", {"ms": 400, "steps": 2})
        events = list(slow.progress())
        assert events[-1]["state"] == "completed"
        assert any(e["type"] == "task_progress" for e in events)
        many = c.submit_many([{"type": "py.echo", "input": i} for i in range(5)])
        assert many.result() == [0, 1, 2, 3, 4]
        assert [r for p in c.result_pages(many.id, limit=2) for r in p["results"]] == [0, 1, 2, 3, 4]
        assert {j["id"] for j in c.list_jobs()} >= {job.id, slow.id, many.id}
        with pytest.raises(NotFoundError):
            c.get_job("missing")
        failing = c.submit("py.fail", {"code": "E_SYNC", "message": "no"}, max_attempts=1)
        with pytest.raises(JobFailedError) as caught:
            failing.result()
        assert caught.value.failures[0]["error"]["code"] == "E_SYNC"
        f = c.upload_file(b"some bytes", "data.bin")
        assert c.download_file(f["file_id"]) == b"some bytes"
    with pytest.raises(Exception, match="client is closed"):
        c.stats()


def test_work_nobody_serves_is_said_at_submission_and_to_a_watcher(foreman: Foreman, worker: Worker) -> None:
    with Client(foreman.url) as c:
        job = c.submit("py.nobody.serves", {})
        said = 'no connected worker handles task type "py.nobody.serves"'
        assert any(said in w for w in job.warnings), job.warnings
        watched = c.watch(job.id)
        assert any(said in w for w in watched.warnings), watched.warnings
        assert any(said in w for w in c.get_job(job.id)["warnings"])
        c.cancel_job(job.id)
        assert c.watch(job.id).warnings == [], "an ended job waits for nothing"


def test_the_sync_client_times_out_a_wait_without_ending_the_job(foreman: Foreman, worker: Worker) -> None:
    with Client(foreman.url) as c:
        job = c.submit("py.sleep", {"ms": 60_000, "steps": 600})
        with pytest.raises(TimeoutError):
            job.result(timeout=0.2)
        assert not job.finished
        c.cancel_job(job.id)
        assert job.ended(timeout=30)["state"] == "cancelled"


# ---------------------------------------------------------------- reconnecting

async def test_a_job_in_flight_survives_a_foreman_restart(client: AsyncClient, foreman: Foreman, worker: Worker) -> None:
    job = await client.submit("py.sleep", {"ms": 3000, "steps": 30})
    async for event in job.progress():
        if event["type"] == "task_progress":
            break
    # The client reconnects and subscribes again; the worker reconnects and reports its result.
    await asyncio.to_thread(foreman.restart)
    assert await asyncio.wait_for(job.result(), 60) == {"slept": 3000}
    # And new submissions go over the new connection.
    assert await (await client.submit("py.echo", "after")).result() == "after"


async def test_open_jobs_take_their_tasks_and_arguments_as_they_come(client: AsyncClient, code_worker: Worker) -> None:
    tasks = await client.open_tasks(name="as-they-come")
    await tasks.append([{"type": "py.echo", "input": i} for i in range(3)])
    # The first part is there, and runs, while the job is still open.
    assert len(await client.tasks(tasks.id)) == 3 and (await tasks.handle.get())["open"] is True
    await tasks.append([{"type": "py.echo", "input": i} for i in range(3, 5)])
    handle = await tasks.seal()
    assert await handle.result() == [0, 1, 2, 3, 4]
    assert (await handle.get())["open"] is False
    with pytest.raises(ValueError, match="sealed"):
        await tasks.append([{"type": "py.echo", "input": 9}])

    squares = await client.open_map("(x) => x * x", chunk_size=2)
    await squares.append([1, 2, 3])          # one whole chunk goes; the third argument waits
    assert squares.appended == 2
    await squares.append([4, 5])             # 3 and 4 go; 5 waits for the seal
    assert squares.appended == 4
    assert await (await squares.seal()).result() == [1, 4, 9, 16, 25]


def test_the_sync_client_appends_to_an_open_job(foreman: Any, code_worker: Worker) -> None:
    with Client(foreman.url) as sync:
        job = sync.open_map("(x) => x + 1", chunk_size=2)
        job.append(range(3))
        job.append([3])
        assert job.seal().result(timeout=60) == [1, 2, 3, 4]

"""FlowKit batch handlers through `crowdcompute.flowkit`, against a real foreman: batches
recorded with their metrics, artifacts and checkpoint; resuming after a worker is SIGKILLed;
errors classified permanent or transient; cancellation reaching the run context; and a graph
whose Python node reads a TypeScript node's artifacts, re-chunked."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from conftest import BIN, SESSION_DIR, node
from crowdcompute.flowkit import Batch, BatchResult, FinalizationResult, Handler, RunContext, Worker, WorkerConfig
from support import api, finished, submit, tasks_of, wait_for

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


counter = load_fixture("flowkit_counter")


def write_config(path: Path, foreman: Any, worker_id: str, **extra: Any) -> Path:
    path.write_text(json.dumps({
        "roles": ["fk.count"], "worker_id": worker_id, "foreman_url": foreman.ws_url, "worker_token": foreman.worker_token, **extra,
    }))
    return path


def exec_log(path: Path) -> list[list[str]]:
    return [line.split(" ") for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_handler_from_a_json_config_records_batches_artifacts_and_checkpoint(foreman: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path / "worker.json", foreman, "fk-config", worker_version="etl 2.0.0", kafka_bootstrap="localhost:9092",
                          kafka_group="etl", lease_ttl_sec=60, hb_interval_sec=0.5, pull_poll_ms_default=50)
    with caplog.at_level(logging.WARNING, "crowdcompute.flowkit"):
        cfg = WorkerConfig.load(config, overrides={"max_concurrent_tasks": 2})
    assert "kafka_group" in caplog.text  # a FlowKit-only key: ignored, said so
    assert cfg.roles == ["fk.count"] and cfg.max_concurrent_tasks == 2 and cfg.hb_interval_sec == 0.5

    log = tmp_path / "exec.log"
    worker = Worker(cfg=cfg, handlers={"fk.count": counter.Counter(str(log)), "fk.other": counter.Counter(str(log))})
    assert worker.patterns == ["fk.count"]  # a handler that is not one of its roles is not served
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "fk.count", "input": {"n": 6}}])
        assert (await finished(foreman, job))["status"] == "completed"
        [t] = await tasks_of(foreman, job)
        assert t["result"] == {"sum": 15}  # finalize's result is the task's result

        batches = await api(foreman, "GET", f"/api/tasks/{t['task_id']}/batches")
        assert sorted(b["batch_uid"] for b in batches["batches"]) == sorted([f"b{i}" for i in range(6)] + ["#finalize"])
        assert batches["metrics"] == {"items": 6, "value": 15, "finalized": 1}
        assert batches["checkpoint"] == {"sum": 15, "next": 6}
        b3 = next(b for b in batches["batches"] if b["batch_uid"] == "b3")
        assert b3["metrics"] == {"items": 1, "value": 3}

        artifacts = await api(foreman, "GET", f"/api/tasks/{t['task_id']}/artifacts")
        assert artifacts["complete"] is True
        assert [(a["batch_uid"], a["data"]) for a in artifacts["artifacts"]] == [(f"b{i}", {"i": i}) for i in range(6)]

        workers = await api(foreman, "GET", "/api/workers")
        assert next(w for w in workers if w["worker_id"] == "fk-config")["version"] == "etl 2.0.0"
    finally:
        await worker.stop()


def test_config_refuses_unknown_settings_and_roles_without_handlers(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"roles": ["a"], "hb_intervall_sec": 5}))
    with pytest.raises(ValueError, match="unknown setting.*hb_intervall_sec"):
        WorkerConfig.load(path)
    path.write_text(json.dumps({"roles": "a"}))
    with pytest.raises(TypeError, match="roles must be a list"):
        WorkerConfig.load(path)
    with pytest.raises(ValueError, match="pull_poll_ms_default must be between 1 and 60000"):
        WorkerConfig(pull_poll_ms_default=0)
    with pytest.raises(ValueError, match="role.* b have no handler"):
        Worker(cfg=WorkerConfig(roles=["a", "b"], foreman_url="ws://127.0.0.1:9/ws"), handlers={"a": counter.Counter("x")})
    with pytest.raises(TypeError, match=r"pass an instance \(Counter\(\)\)"):
        Worker(cfg=WorkerConfig(roles=["a"], foreman_url="ws://127.0.0.1:9/ws"), handlers={"a": counter.Counter})


async def test_a_task_resumes_from_its_checkpoint_after_its_worker_is_killed(any_store_foreman: Any, tmp_path: Path) -> None:
    foreman = any_store_foreman
    log = tmp_path / "exec.log"
    out = open(SESSION_DIR / f"fk-first-{foreman.port}.log", "ab")
    first = subprocess.Popen([sys.executable, str(FIXTURES / "flowkit_counter.py"), str(write_config(tmp_path / "first.json", foreman, "fk-first")), str(log)],
                             stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    out.close()
    second: Worker | None = None
    try:
        job = await submit(foreman, [{"type": "fk.count", "input": {"n": 20, "delay": 0.1}, "max_attempts": 3}])
        [t] = await tasks_of(foreman, job)
        task_id = t["task_id"]

        async def some_recorded() -> Any:
            assert first.poll() is None, f"the first worker exited {first.returncode}"
            return len((await api(foreman, "GET", f"/api/tasks/{task_id}/batches"))["batches"]) >= 4

        await wait_for(some_recorded, message="the first worker to record 4 batches")
        first.send_signal(signal.SIGKILL)
        first.wait()

        async def requeued() -> Any:
            [t] = await tasks_of(foreman, job)
            return t if t["status"] == "queued" else None

        await wait_for(requeued, message="the task to go back to the queue")
        before = await api(foreman, "GET", f"/api/tasks/{task_id}/batches")
        done_before = {b["batch_uid"] for b in before["batches"]}
        assert 4 <= len(done_before) < 20

        second = Worker(cfg=WorkerConfig.load(write_config(tmp_path / "second.json", foreman, "fk-second")), handlers={"fk.count": counter.Counter(str(log))})
        await second.start()
        assert (await finished(foreman, job))["status"] == "completed"
        [t] = await tasks_of(foreman, job)
        assert t["attempt"] == 2
        assert t["result"] == {"sum": sum(range(20))}  # the checkpoint carried the running sum across

        lines = exec_log(log)
        [init2] = [line for line in lines if line[0] == "init" and line[1] == "2"]
        assert init2[2] == "True" and json.loads(init2[3]) == before["checkpoint"]
        again = [line[2] for line in lines if line[0] == "batch" and line[1] == "2"]
        assert not done_before & set(again)  # nothing recorded before the kill was done again
        assert sorted(done_before | set(again), key=lambda u: int(u[1:])) == [f"b{i}" for i in range(20)]

        artifacts = await api(foreman, "GET", f"/api/tasks/{task_id}/artifacts")
        assert sorted(a["data"]["i"] for a in artifacts["artifacts"]) == list(range(20))  # each once
        batches = await api(foreman, "GET", f"/api/tasks/{task_id}/batches")
        assert batches["metrics"] == {"items": 20, "value": sum(range(20)), "finalized": 1}
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        if second:
            await second.stop()


class Fragile(Handler):
    """Fails in its second batch: permanently for input {"fail": "permanent"}, transiently
    (once, on the first attempt) for {"fail": "transient"}."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, list[str], Any]] = []

    async def iter_batches(self, input_data: Any) -> AsyncIterator[Batch]:
        for i in range(3):
            yield Batch(f"b{i}", i)

    async def process_batch(self, batch: Batch, ctx: RunContext) -> BatchResult:
        self.runs.append((ctx.attempt, [batch.batch_uid], ctx.checkpoint))
        if batch.payload == 1:
            kind = ctx.task.get_input("fail")
            if kind == "permanent":
                raise ValueError("the input cannot be read")
            if kind == "transient" and ctx.attempt == 1:
                raise ConnectionError("the source went away")
        await ctx.save_checkpoint({"last": batch.batch_uid})
        return BatchResult(success=True, metrics={"n": 1})

    async def finalize(self, ctx: RunContext) -> FinalizationResult:
        return FinalizationResult(result={"checkpoint": ctx.checkpoint, "done": sorted(ctx.batches_done), "metrics": ctx.metrics})

    def classify_error(self, error: BaseException) -> tuple[str, bool]:
        if isinstance(error, ValueError):
            return "validation_error", True
        return "connection_error", False


async def test_classify_error_decides_permanent_or_transient(foreman: Any) -> None:
    h = Fragile()
    worker = Worker(cfg=WorkerConfig(roles=["fk.fragile"], foreman_url=foreman.ws_url, worker_token=foreman.worker_token), handlers={"fk.fragile": h})
    await worker.start()
    try:
        permanent = await submit(foreman, [{"type": "fk.fragile", "input": {"fail": "permanent"}, "max_attempts": 3}])
        assert (await finished(foreman, permanent))["status"] == "failed"
        [t] = await tasks_of(foreman, permanent)
        assert t["attempt"] == 1 and t["error"]["code"] == "validation_error" and t["error"]["retryable"] is False
        assert t["error"]["message"] == "the input cannot be read"

        transient = await submit(foreman, [{"type": "fk.fragile", "input": {"fail": "transient"}, "max_attempts": 3}])
        assert (await finished(foreman, transient))["status"] == "completed"
        [t] = await tasks_of(foreman, transient)
        assert t["attempt"] == 2
        assert [e["error"]["code"] for e in t["attempt_errors"]] == ["connection_error"]
        # The retry skipped b0 (done by attempt 1) and started from its checkpoint.
        assert [(a, uid, cp) for a, [uid], cp in h.runs if a == 2] == [(2, "b1", {"last": "b0"}), (2, "b2", {"last": "b1"})]
        assert t["result"] == {"checkpoint": {"last": "b2"}, "done": ["b0", "b1", "b2"], "metrics": {"n": 2}}
    finally:
        await worker.stop()


async def test_cancellation_and_timeout_reach_cancel_flag_with_their_reason(foreman: Any) -> None:
    seen: dict[str, tuple[bool, str | None]] = {}
    started = asyncio.Event()

    class Waits(Handler):
        async def iter_batches(self, input_data: Any) -> AsyncIterator[Batch]:
            yield Batch("only", input_data["name"])

        async def process_batch(self, batch: Batch, ctx: RunContext) -> BatchResult:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen[batch.payload] = (ctx.cancel_flag.is_set(), ctx.cancel_meta.get("reason"))
                raise
            return BatchResult(success=True)

    worker = Worker(cfg=WorkerConfig(roles=["fk.wait"], foreman_url=foreman.ws_url, worker_token=foreman.worker_token), handlers={"fk.wait": Waits()})
    await worker.start()
    try:
        timed = await submit(foreman, [{"type": "fk.wait", "input": {"name": "timed"}, "timeout_ms": 300, "max_attempts": 1}])
        assert (await finished(foreman, timed))["status"] == "failed"
        await wait_for(lambda: "timed" in seen, message="the handler to see its timeout")
        assert seen["timed"] == (True, "timeout")

        started.clear()
        cancelled = await submit(foreman, [{"type": "fk.wait", "input": {"name": "cancelled"}}])
        await asyncio.wait_for(started.wait(), 30)
        await api(foreman, "POST", f"/api/jobs/{cancelled}/cancel")
        assert (await finished(foreman, cancelled))["status"] == "cancelled"
        await wait_for(lambda: "cancelled" in seen, message="the handler to see its cancellation")
        assert seen["cancelled"] == (True, "coordinator")
        [t] = await tasks_of(foreman, cancelled)
        assert (await api(foreman, "GET", f"/api/tasks/{t['task_id']}/batches"))["batches"] == []  # nothing recorded
    finally:
        await worker.stop()


class Sums(Handler):
    """A graph node: sums the squares it reads from upstream, re-chunked."""

    async def iter_batches(self, input_data: Any) -> AsyncIterator[Batch]:
        raise AssertionError("a node with an input adapter reads through it, not iter_batches")
        yield  # pragma: no cover

    async def process_batch(self, batch: Batch, ctx: RunContext) -> BatchResult:
        items = batch.payload["items"]
        await ctx.artifacts_writer.upsert_partial(batch.batch_uid, {"sum": sum(items), "count": len(items)})
        return BatchResult(success=True, metrics={"numbers": len(items)})

    async def finalize(self, ctx: RunContext) -> None:
        await ctx.artifacts_writer.complete()


async def test_a_graph_mixing_typescript_and_python_nodes(foreman: Any) -> None:
    log = SESSION_DIR / f"fk-ts-worker-{foreman.port}.log"
    with open(log, "ab") as out:
        ts = subprocess.Popen([node(), str(BIN), "worker", "--foreman", foreman.ws_url, "--id", "fk-ts",
                               "--handlers", str(FIXTURES / "flowkit_ts_handlers.mjs"), "--no-status", "--log-level", "warn"],
                              stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    worker = Worker(cfg=WorkerConfig(roles=["mix.sums"], foreman_url=foreman.ws_url, worker_token=foreman.worker_token, pull_poll_ms_default=50),
                    handlers={"mix.sums": Sums()})
    await worker.start()
    try:
        job = await api(foreman, "POST", "/api/jobs", {"kind": "graph", "output": "total", "nodes": [
            {"id": "numbers", "type": "mix.numbers", "input": {"from": 1, "to": 100, "batchSize": 10}},
            {"id": "sums", "type": "mix.sums", "input_adapter": "pull.from_artifacts.rechunk:size",
             "input_args": {"from_nodes": ["numbers"], "size": 7, "meta_list_key": "items"}},  # polls at pull_poll_ms_default
            {"id": "total", "type": "mix.total", "input_adapter": "pull.from_artifacts", "input_args": {"from_nodes": ["sums"], "poll_ms": 50}},
        ]})
        assert (await finished(foreman, job["id"]))["status"] == "completed", log.read_text()
        graph = await api(foreman, "GET", f"/api/jobs/{job['id']}/graph")
        by_task = {t["task_id"]: t for t in await tasks_of(foreman, job["id"])}
        nodes = {n["node_id"]: n for n in graph["nodes"]}
        assert nodes["sums"]["worker_id"] == worker.worker_id and nodes["numbers"]["worker_id"] == "fk-ts"
        tasks = {node_id: by_task[n["task_id"]] for node_id, n in nodes.items()}
        sums = tasks["sums"]
        artifacts = (await api(foreman, "GET", f"/api/tasks/{sums['task_id']}/artifacts"))["artifacts"]
        # 100 squares from ten artifacts of 10, handed on 7 at a time: chunks by the index of their first item.
        assert [a["batch_uid"] for a in artifacts] == [f"rechunk/{i}" for i in range(0, 100, 7)]
        assert [a["data"]["count"] for a in artifacts] == [7] * 14 + [2]
        total = tasks["total"]["result"]
        assert total["total"] == sum(i * i for i in range(1, 101))
        assert total["uids"] == [f"sums/rechunk/{i}" for i in range(0, 100, 7)]
    finally:
        await worker.stop()
        ts.kill()
        ts.wait()


async def test_a_run_taken_back_while_its_worker_was_away_stops_with_lease_lost(foreman: Any) -> None:
    seen: list[tuple[int, bool, str | None]] = []
    waiting = asyncio.Event()

    class Slow(Handler):
        async def iter_batches(self, input_data: Any) -> AsyncIterator[Batch]:
            yield Batch("only", None)

        async def process_batch(self, batch: Batch, ctx: RunContext) -> BatchResult:
            if ctx.attempt == 1:
                waiting.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    seen.append((ctx.attempt, ctx.cancel_flag.is_set(), ctx.cancel_meta.get("reason")))
                    raise
            return BatchResult(success=True, metrics={"attempt": ctx.attempt})

    worker = Worker(cfg=WorkerConfig(roles=["fk.slow"], foreman_url=foreman.ws_url, worker_token=foreman.worker_token, reconnect_interval_sec=0.2),
                    handlers={"fk.slow": Slow()})
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "fk.slow", "input": None, "max_attempts": 3}])
        await asyncio.wait_for(waiting.wait(), 30)
        # The network drops: the foreman takes the task back and tells the worker, once it is
        # back, to stop the attempt it still runs.
        worker._link.restart()
        assert (await finished(foreman, job))["status"] == "completed"
        await wait_for(lambda: seen, message="the first attempt to be stopped")
        assert seen == [(1, True, "lease_lost")]
        [t] = await tasks_of(foreman, job)
        batches = await api(foreman, "GET", f"/api/tasks/{t['task_id']}/batches")
        assert [(b["batch_uid"], b["attempt"]) for b in batches["batches"]] == [("only", t["attempt"])] and t["attempt"] >= 2
    finally:
        await worker.stop()

"""Every message the Python worker and client send, and every one they receive, in a session
that exercises tasks, progress, failures, a batch handler's records, a drain and a client's
submissions, is valid against the JSON Schema generated from the foreman's own schemas
(`crowdcompute/protocol.schema.json`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from crowdcompute import AsyncClient, NonRetryableError, Task, Worker
from crowdcompute import _link
from crowdcompute.flowkit import Batch, BatchResult, FinalizationResult, Handler
from support import wait_for

jsonschema = pytest.importorskip("jsonschema", reason="Debian's python3-jsonschema validates the messages")
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "crowdcompute" / "protocol.schema.json").read_text())


def validator_for(message_type: str) -> Any:
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{message_type}", "$defs": SCHEMA["$defs"]})


class Counted(Handler):
    async def iter_batches(self, input_data: Any) -> Any:
        for i in range(3):
            yield Batch(batch_uid=f"b{i}", payload=i)

    async def process_batch(self, batch: Batch, ctx: Any) -> BatchResult:
        await ctx.artifacts_writer.upsert_partial(batch.batch_uid, {"i": batch.payload})
        await ctx.save_checkpoint({"after": batch.batch_uid})
        return BatchResult(success=True, metrics={"n": 1})

    async def finalize(self, ctx: Any) -> FinalizationResult:
        await ctx.artifacts_writer.complete()
        return FinalizationResult(metrics={"finalized": 1}, result="ok")


async def test_what_the_python_sdk_sends_and_receives_matches_the_schema(foreman: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    worker_connect, worker_dispatch = _link._ws.connect, _link.ForemanLink._dispatch

    def record_frame(frame: str | bytes) -> None:
        data = json.loads(frame)
        sent.extend(data if isinstance(data, list) else [data])

    async def capture_connect(*args: Any, **kwargs: Any) -> Any:
        # What the worker and the client write to their sockets, frame by frame, as the foreman reads it.
        ws = await worker_connect(*args, **kwargs)
        send = ws.send

        async def capture(frame: str | bytes) -> None:
            record_frame(frame)
            await send(frame)

        ws.send = capture
        return ws

    def capture_dispatch(self: Any, frame: Any) -> None:
        data = json.loads(frame)
        received.extend(data if isinstance(data, list) else [data])
        worker_dispatch(self, frame)

    client_receive = AsyncClient._on_message

    def capture_client_receive(self: Any, message: dict[str, Any]) -> None:
        received.append(json.loads(json.dumps(message)))
        client_receive(self, message)

    monkeypatch.setattr(AsyncClient, "_on_message", capture_client_receive)
    monkeypatch.setattr(_link._ws, "connect", capture_connect)
    monkeypatch.setattr(_link.ForemanLink, "_dispatch", capture_dispatch)

    worker = Worker(foreman.ws_url, "py-schema", foreman.worker_token, resource_info={"cpu_cores": 2, "labels": {"zone": "a"}})

    async def add(task: Task) -> Any:
        await worker.send_task_progress(150, "m" * 2000, {"k": [1, 2]})
        if task.get_input("fail"):
            raise NonRetryableError("asked to fail")
        return {"sum": task.get_input("a") + task.get_input("b")}

    async def forever(task: Task) -> None:
        await asyncio.sleep(3600)

    worker.register_handler("math.*", add).register_handler("batch.count", Counted()).register_handler("hold", forever)
    await worker.start()
    try:
        async with AsyncClient(foreman.url) as client:
            ok = await client.submit_many([{"type": "math.add", "input": {"a": 1, "b": 2}}, {"type": "math.add", "input": {"fail": True}}])
            await ok.outcome()
            assert await (await client.submit("batch.count", {})).result() == "ok"
            await client.submit("hold", None)
            await wait_for(lambda: worker.running_tasks, message="the held task to start")
            await wait_for(lambda: any(m["type"] == "heartbeat" for m in sent), message="a heartbeat")
    finally:
        await worker.stop(drain_timeout=0)

    types = {m["type"] for m in sent} | {m["type"] for m in received}
    for expected in ("hello", "welcome", "assign_tasks", "task_progress", "task_results", "result_ack", "task_record", "task_record_ack",
                     "heartbeat", "worker_draining", "release_tasks", "submit_job", "job_accepted", "job_completed"):
        assert expected in types, f"the session never carried a {expected}"
    problems = []
    for direction, messages in (("sent", sent), ("received", received)):
        for m in messages:
            errors = sorted(validator_for(m["type"]).iter_errors(m), key=lambda e: list(e.path))
            problems += [f"{direction} {m['type']}: {'/'.join(map(str, e.path))}: {e.message}" for e in errors[:3]]
    assert problems == []

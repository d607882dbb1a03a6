"""Failed-for-good tasks from Python, against a real foreman with a Node worker
(tests/fixtures/client_handlers.mjs): `list_failed` groups them by type and error, a key sees
only its own, `retry_failed` is bounded and, once the cause is fixed, reruns them in bulk so
the finished job completes with its results in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Foreman
from crowdcompute import AsyncClient, Client
from crowdcompute.errors import InvalidRequestError
from test_client import Worker


@pytest.fixture
def flaky_worker(foreman: Foreman) -> Iterator[Worker]:
    w = Worker(foreman, "py-failed-worker")
    yield w
    w.kill()


def test_failed_tasks_listed_by_type_and_error_and_retried_in_bulk(foreman: Foreman, flaky_worker: Worker, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    other_key = foreman.cli("key", "create", "--scopes", "read,submit", "--name", "another owner").strip()
    with Client(foreman.url) as client, Client(foreman.url, api_key=other_key) as other:
        tasks = [{"type": "py.flaky", "input": {"flag": str(flag), "value": i}} for i in range(3)]
        tasks.insert(1, {"type": "py.echo", "input": "kept"})
        handle = client.submit_many(tasks, max_attempts=1)
        assert handle.outcome(timeout=60)["state"] == "failed"
        theirs = other.submit_many([{"type": "py.fail", "input": {"message": "bad row\nat line 2", "code": "E_ROW"}}], max_attempts=1)
        assert theirs.outcome(timeout=60)["state"] == "failed"

        mine = client.list_failed(type="py.flaky")
        assert mine["next_offset"] is None
        [group] = mine["groups"]
        assert group["count"] == 3 and group["jobs"] == 1
        assert group["message"] == f"{flag} does not exist yet"
        assert set(group["job_ids"]) == {handle.id}
        assert len(group["task_ids"]) == 3

        assert [(g["type"], g["error_code"], g["message"], g["count"]) for g in other.list_failed()["groups"]] == [("py.fail", "E_ROW", "bad row", 1)]
        assert other.retry_failed(job_id=handle.id) == {"requeued": 0, "jobs": 0, "job_ids": [], "more": False}, "another key's tasks are out of reach"
        with pytest.raises(InvalidRequestError, match=r"at most 10,000 tasks a call"):
            client.retry_failed(limit=10_001)

        flag.write_text("fixed")
        first = client.retry_failed(type="py.flaky", error_code=group["error_code"], limit=2)
        assert first == {"requeued": 2, "jobs": 1, "job_ids": [handle.id], "more": True}
        assert client.retry_failed(task_ids=group["task_ids"])["requeued"] == 1, "the one left, by id"
        assert client.watch(handle.id).result(timeout=60) == [0, "kept", 1, 2]
        assert client.list_failed(type="py.flaky")["groups"] == []


def test_the_async_client_lists_and_retries_too(foreman: Foreman, flaky_worker: Worker, tmp_path: Path) -> None:
    flag = tmp_path / "later"

    async def main() -> None:
        async with AsyncClient(foreman.url) as client:
            handle = await client.submit_many([{"type": "py.flaky", "input": {"flag": str(flag), "value": "v"}}], max_attempts=1)
            await handle.outcome()
            page = await client.list_failed(job_id=handle.id, limit=1)
            assert [g["count"] for g in page["groups"]] == [1]
            flag.write_text("ok")
            assert (await client.retry_failed(job_id=handle.id))["requeued"] == 1
            assert await (await client.watch(handle.id)).result() == ["v"]

    asyncio.run(main())

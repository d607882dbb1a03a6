"""Schedules and delayed jobs from Python, against a real foreman with a Node worker
(tests/fixtures/client_handlers.mjs): create, list, get, update, pause, resume, trigger (its
job runs), backfill (each tick once), delete, the errors; `run_at` and `delay` on submissions."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from conftest import Foreman
from crowdcompute import AsyncClient, Client
from crowdcompute.errors import ConflictError, InvalidRequestError, NotFoundError
from test_client import Worker

ECHO_JOB = {"kind": "tasks", "tasks": [{"type": "py.echo", "input": {"from": "schedule"}}], "max_attempts": 2}
HOUR_MS = 3_600_000


@pytest.fixture
def echo_worker(foreman: Foreman) -> Iterator[Worker]:
    w = Worker(foreman, "py-schedules-worker")
    yield w
    w.kill()


def test_a_schedule_from_create_to_delete(foreman: Foreman, echo_worker: Worker) -> None:
    with Client(foreman.url) as client:
        created = client.create_schedule("py-hourly", every=timedelta(hours=1), job=ECHO_JOB, name="hourly echo", catch_up={"window": timedelta(minutes=30), "policy": "all"})
        assert created["id"] == "py-hourly"
        assert created["name"] == "hourly echo"
        assert created["every_ms"] == HOUR_MS
        assert created["cron"] is None
        assert created["catch_up"] == {"window_ms": 1_800_000, "policy": "all"}
        assert created["job"]["max_attempts"] == 2, "the job's keys are the REST API's"
        assert created["paused"] is False
        # every 1h ticks on the UTC hour: the next fire is the next whole hour, the five after it an hour apart.
        next_fire = datetime.fromisoformat(created["next_fire_at"].replace("Z", "+00:00"))
        assert next_fire.minute == 0 and next_fire.second == 0 and next_fire > datetime.now(timezone.utc)
        fires = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in created["next_fires"]]
        assert len(fires) == 5
        assert all(b - a == timedelta(hours=1) for a, b in zip(fires, fires[1:]))

        assert [s["id"] for s in client.list_schedules()].count("py-hourly") == 1

        # Run now: a normal job, with the schedule's task, that a worker runs.
        handle = client.trigger_schedule("py-hourly")
        assert handle.result(timeout=60) == [{"from": "schedule"}]
        runs = client.get_schedule("py-hourly")["recent_runs"]
        assert runs[0]["reason"] == "trigger" and runs[0]["outcome"] == "fired" and runs[0]["job_id"] == handle.id
        assert runs[0]["job_state"] == "completed"

        paused = client.pause_schedule("py-hourly", "maintenance")
        assert paused["paused"] is True and paused["pause_note"] == "maintenance" and paused["next_fire_at"] is None
        assert len(paused["next_fires"]) == 5, "the next ticks are shown while paused too"
        resumed = client.resume_schedule("py-hourly")
        assert resumed["paused"] is False and resumed["next_fire_at"] is not None

        updated = client.update_schedule("py-hourly", cron="30 6 * * *", timezone="Europe/Paris")
        assert updated["cron"] == "30 6 * * *" and updated["every_ms"] is None and updated["timezone"] == "Europe/Paris"
        assert updated["name"] == "hourly echo", "fields not given stay as they were"

        assert client.delete_schedule("py-hourly") == {"deleted": True, "id": "py-hourly"}
        with pytest.raises(NotFoundError):
            client.get_schedule("py-hourly")
        assert client.get_job(handle.id)["status"] == "completed", "jobs a schedule fired are kept"


def test_backfill_fires_each_tick_once(foreman: Foreman, echo_worker: Worker) -> None:
    async def main() -> None:
        async with AsyncClient(foreman.url) as client:
            await client.create_schedule("py-backfill", every="1h", job=ECHO_JOB, paused=True)
            hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
            start, end = hour - timedelta(hours=6), hour - timedelta(hours=3)
            first = await client.backfill_schedule("py-backfill", start, end)
            assert first["fired"] == 3 and first["skipped"] == 0 and len(first["job_ids"]) == 3
            # The same range again, as epoch ms and as RFC 3339 text: nothing fires twice.
            again = await client.backfill_schedule("py-backfill", round(start.timestamp() * 1000), end.isoformat())
            assert again["fired"] == 0 and again["skipped"] == 3
            assert sorted(again["job_ids"]) == sorted(first["job_ids"])
            for job_id in first["job_ids"]:
                handle = await client.watch(job_id)
                assert await handle.result() == [{"from": "schedule"}]
            runs = (await client.get_schedule("py-backfill"))["recent_runs"]
            assert {r["job_id"] for r in runs if r["reason"] == "backfill"} == set(first["job_ids"])

    asyncio.run(main())


def test_errors_name_the_problem(foreman: Foreman) -> None:
    with Client(foreman.url) as client:
        client.create_schedule("py-dup", cron="0 3 * * *", job=ECHO_JOB, paused=True)
        with pytest.raises(ConflictError) as exists:
            client.create_schedule("py-dup", cron="0 3 * * *", job=ECHO_JOB)
        assert exists.value.code == "CC_ERR_SCHEDULE_EXISTS"
        with pytest.raises(InvalidRequestError) as bad:
            client.create_schedule("py-bad", cron="not a cron", job=ECHO_JOB)
        assert bad.value.code == "CC_ERR_INVALID_SCHEDULE" and "cron" in str(bad.value)
        with pytest.raises(InvalidRequestError) as neither:
            client.create_schedule("py-neither", job=ECHO_JOB)
        assert "every" in str(neither.value) and "cron" in str(neither.value)
        with pytest.raises(NotFoundError) as missing:
            client.trigger_schedule("py-no-such")
        assert missing.value.code == "CC_ERR_SCHEDULE_NOT_FOUND"
        with pytest.raises(TypeError, match="every must be"):
            client.create_schedule("py-float", every=1.5, job=ECHO_JOB)  # type: ignore[arg-type]


def test_run_at_and_delay(foreman: Foreman, echo_worker: Worker) -> None:
    with Client(foreman.url) as client:
        later = client.submit("py.echo", "later", run_at=datetime.now(timezone.utc) + timedelta(hours=1))
        job: dict[str, Any] = client.get_job(later.id)
        assert job["status"] == "scheduled"
        assert client.tasks(later.id)[0]["status"] == "scheduled"
        client.cancel_job(later.id)

        soon = client.submit("py.echo", "soon", delay=timedelta(milliseconds=1500))
        assert soon.result(timeout=60) == "soon"
        done = client.get_job(soon.id)
        created = datetime.fromisoformat(done["created_at"].replace("Z", "+00:00"))
        started = datetime.fromisoformat(done["started_at"].replace("Z", "+00:00"))
        assert started - created >= timedelta(milliseconds=1400), f"it waited its delay: created {created}, started {started}"

        many = client.submit_many([{"type": "py.echo", "input": i} for i in range(3)], delay="1h")
        assert client.get_job(many.id)["status"] == "scheduled"
        client.cancel_job(many.id)
        with pytest.raises(TypeError, match="run_at takes a datetime"):
            client.submit("py.echo", 1, run_at=1.5)  # type: ignore[typeddict-item]

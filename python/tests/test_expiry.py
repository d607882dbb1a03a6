"""Open timeouts and deadlines from Python: `open_timeout` as a timedelta, milliseconds or text,
`on_open_timeout`, `deadline` as a datetime, epoch milliseconds or RFC 3339 text; what the
foreman makes of them, on a real foreman."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Foreman
from crowdcompute import AsyncClient, Client
from crowdcompute._spec import job_options
from crowdcompute.errors import InvalidRequestError, JobFailedError
from support import wait_until


def test_options_are_sent_in_the_protocols_units() -> None:
    at = datetime(2026, 12, 6, 20, 0, tzinfo=timezone.utc)
    assert job_options(open_timeout=timedelta(minutes=5), on_open_timeout="seal", deadline=at) == {
        "openTimeout": 300_000, "onOpenTimeout": "seal", "deadline": 1_796_587_200_000,
    }
    assert job_options(open_timeout=1500, deadline="2026-12-06T20:00:00Z") == {"openTimeout": 1500, "deadline": "2026-12-06T20:00:00Z"}
    assert job_options(open_timeout=0, deadline=1_796_587_200_000) == {"openTimeout": 0, "deadline": 1_796_587_200_000}
    assert job_options(open_timeout="5m", delay=timedelta(seconds=2)) == {"openTimeout": "5m", "delay": 2000}
    with pytest.raises(TypeError, match="open_timeout must be a timedelta, milliseconds"):
        job_options(open_timeout=1.5)
    with pytest.raises(TypeError, match="deadline takes a datetime"):
        job_options(deadline=1.5)


async def test_an_open_job_that_gets_nothing_more_is_sealed_by_its_open_timeout(foreman: Foreman) -> None:
    async with AsyncClient(foreman.url) as client:
        deadline = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=250_000)
        job = await client.open_tasks(open_timeout=timedelta(milliseconds=300), on_open_timeout="seal", deadline=deadline)
        info = await client.get_job(job.id)
        assert (info["open_timeout_ms"], info["on_open_timeout"]) == (300, "seal")
        assert datetime.fromisoformat(info["deadline"].replace("Z", "+00:00")) == deadline

        def closed() -> dict[str, Any] | None:
            v: dict[str, Any] = foreman.api("GET", f"/api/jobs/{job.id}")
            return v if v["closed_by"] else None

        v = wait_until(closed, 20, "the open timeout closes the job")
        assert (v["closed_by"], v["open"], v["status"]) == ("open_timeout", False, "completed")


def test_a_deadline_fails_what_no_worker_ran_with_cc_err_deadline(foreman: Foreman) -> None:
    with Client(foreman.url) as client:
        job = client.submit("nobody.runs.this", {}, deadline=int(time.time() * 1000) + 500)
        with pytest.raises(JobFailedError) as caught:
            job.result(timeout=30)
        assert caught.value.failures[0]["error"]["code"] == "CC_ERR_DEADLINE"
        assert f"job {job.id} passed its deadline" in caught.value.failures[0]["error"]["message"]
        with pytest.raises(InvalidRequestError, match="has passed"):
            client.submit("nobody.runs.this", {}, deadline=datetime(2020, 1, 1, tzinfo=timezone.utc))

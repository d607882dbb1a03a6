"""The synchronous client: the same methods as AsyncClient, blocking.

It runs an AsyncClient on a private event loop in a background thread rather than calling
urllib directly: completions are pushed over the WebSocket (no polling), the connection and
its resubmissions after a drop live on between calls, and progress can be followed while the
caller's thread blocks. One implementation of the protocol serves both clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import ssl
import threading
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Literal, Mapping, Sequence, TypeVar, Unpack

from ._pyfunc import Language
from .client import AsyncClient, JobOptions
from .schedules import CatchUpPolicy, Duration, Overlap, Time
from .errors import CrowdComputeError
from .job import JobEnd, JobHandle, JobOutcome
from .open_job import OpenJob

T = TypeVar("T")


class SyncOpenJob:
    """A job submitted open, for the synchronous client: `append(items)` as often as needed,
    then `seal()`, which returns its job handle."""

    def __init__(self, client: "Client", job: OpenJob) -> None:
        self._client = client
        self._job = job

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def appended(self) -> int:
        return self._job.appended

    def append(self, items: Iterable[Any]) -> None:
        self._client._run(self._job.append(list(items)))

    def seal(self) -> "SyncJobHandle":
        return SyncJobHandle(self._client, self._client._run(self._job.seal()))


class SyncJobHandle:
    """A submitted job, for the synchronous client: the methods of JobHandle, blocking.

    `timeout` (seconds) bounds a wait; past it, TimeoutError (the job goes on)."""

    def __init__(self, client: Client, handle: JobHandle) -> None:
        self._client = client
        self._handle = handle

    def __repr__(self) -> str:
        return f"<SyncJobHandle {self.id} {'ended' if self.finished else 'running'}>"

    @property
    def id(self) -> str:
        return self._handle.id

    @property
    def total_tasks(self) -> int:
        return self._handle.total_tasks

    @property
    def position(self) -> int:
        return self._handle.position

    @property
    def deduplicated(self) -> bool:
        return self._handle.deduplicated

    @property
    def warnings(self) -> list[str]:
        return self._handle.warnings

    @property
    def task_id(self) -> str | None:
        return self._handle.task_id

    @property
    def node_ids(self) -> list[str] | None:
        return self._handle.node_ids

    @property
    def output(self) -> str | None:
        return self._handle.output

    @property
    def finished(self) -> bool:
        return self._handle.finished

    def result(self, timeout: float | None = None) -> Any:
        """The results in order (the single result for `submit()`, the output node's for a graph); JobFailedError when tasks failed."""
        return self._client._run(self._handle.result(), timeout)

    def outcome(self, timeout: float | None = None) -> JobOutcome:
        """State, counts, results and failures once the job has ended; never raises for failed tasks."""
        return self._client._run(self._handle.outcome(), timeout)

    def ended(self, timeout: float | None = None) -> JobEnd:
        """Wait for the job to end: `{state, counts}`, without reading its results."""
        return self._client._run(self._handle.ended(), timeout)

    def node_results(self, timeout: float | None = None) -> dict[str, Any]:
        """A graph's results by node id (None where a node did not complete)."""
        return self._client._run(self._handle.node_results(), timeout)

    def get(self) -> dict[str, Any]:
        return self._client._run(self._handle.get())

    def cancel(self) -> dict[str, Any]:
        return self._client._run(self._handle.cancel())

    def retry(self, task_id: str | None = None) -> SyncJobHandle:
        return SyncJobHandle(self._client, self._client._run(self._handle.retry(task_id)))

    def progress(self) -> Iterator[dict[str, Any]]:
        """Progress events as they come (see JobHandle.progress), ending when the job ends."""
        return self._client._iterate(self._handle.progress())


class Client:
    """A blocking client of one foreman; `with Client(url) as client:` or call `close()`.

    Arguments as for AsyncClient. Its methods are AsyncClient's, returning what they return
    (plain dicts), with SyncJobHandle for job handles."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, connect_timeout: float = 10.0,
                 request_timeout: float = 60.0, reconnect_interval: float = 0.5, ssl_context: ssl.SSLContext | None = None) -> None:
        self._async = AsyncClient(url, api_key, connect_timeout=connect_timeout, request_timeout=request_timeout,
                                  reconnect_interval=reconnect_interval, ssl_context=ssl_context)
        self.url = self._async.url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crowdcompute-client", daemon=True)
        self._thread.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Client {self.url}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise CrowdComputeError("CC_ERR_SHUTTING_DOWN", "client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s (the job goes on; wait again, or cancel it)") from None
        except BaseException:
            future.cancel()  # interrupted (Ctrl-C): stop waiting on the loop too
            raise

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        done = object()

        async def step() -> Any:
            try:
                return await agen.__anext__()
            except StopAsyncIteration:
                return done  # said with a value: an exception of that kind does not cross threads well

        async def close() -> None:
            aclose: Any = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                item = self._run(step())
                if item is done:
                    return
                yield item
        finally:
            if not self._closed:
                self._run(close())

    def _wrap(self, awaitable: Awaitable[JobHandle]) -> SyncJobHandle:
        async def run() -> JobHandle:
            return await awaitable

        return SyncJobHandle(self, self._run(run()))

    # ------------------------------------------------------------------ submitting

    def submit(self, type: str, input: Any = None, *, task_id: str | None = None, requires: Mapping[str, Any] | None = None,
               files: Sequence[str] | None = None, **options: Unpack[JobOptions]) -> SyncJobHandle:
        return self._wrap(self._async.submit(type, input, task_id=task_id, requires=requires, files=files, **options))

    def open_tasks(self, **options: Unpack[JobOptions]) -> SyncOpenJob:
        """Submit a job of named tasks open, to append its tasks as they are produced."""
        return SyncOpenJob(self, self._run(self._async.open_tasks(**options)))

    def open_map(self, code: str | Callable[[Any], Any], *, chunk_size: int | None = None, language: Language | None = None,
                 **options: Unpack[JobOptions]) -> SyncOpenJob:
        """Submit a map job open, to append its arguments as they come."""
        return SyncOpenJob(self, self._run(self._async.open_map(code, chunk_size=chunk_size, language=language, **options)))

    def submit_many(self, tasks: Iterable[Mapping[str, Any]], **options: Unpack[JobOptions]) -> SyncJobHandle:
        return self._wrap(self._async.submit_many(list(tasks), **options))

    def submit_graph(self, nodes: Sequence[Mapping[str, Any]], output: str | None = None, **options: Unpack[JobOptions]) -> SyncJobHandle:
        return self._wrap(self._async.submit_graph(nodes, output, **options))

    def submit_map(self, code: str | Callable[[Any], Any], args: Iterable[Any], *, chunk_size: int | None = None,
                   run_on: Literal["any", "node", "browser"] | None = None, function_name: str | None = None,
                   language: Language | None = None, **options: Unpack[JobOptions]) -> SyncJobHandle:
        """Submit a map job: a Python function (its `def` is shipped) or source text (JavaScript unless `language='python'`)."""
        return self._wrap(self._async.submit_map(code, args, chunk_size=chunk_size, run_on=run_on, function_name=function_name,
                                                 language=language, **options))

    def map(self, code: str | Callable[[Any], Any], args: Iterable[Any], *, chunk_size: int | None = None,
            language: Language | None = None, **options: Unpack[JobOptions]) -> list[Any]:
        """Run a function over every argument on the workers; the results in argument order (see AsyncClient.map)."""
        return self._run(self._async.map(code, args, chunk_size=chunk_size, language=language, **options))

    def submit_job(self, spec: Mapping[str, Any]) -> SyncJobHandle:
        return self._wrap(self._async.submit_job(spec))

    def watch(self, job_id: str) -> SyncJobHandle:
        return self._wrap(self._async.watch(job_id))

    # ------------------------------------------------------------------ REST

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._run(self._async.get_job(job_id))

    def list_jobs(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int | None = None,
                  since: str | int | None = None, until: str | int | None = None) -> list[dict[str, Any]]:
        return self._run(self._async.list_jobs(status, search, limit, offset, since, until))

    def tasks(self, job_id: str, limit: int | None = None, offset: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return self._run(self._async.tasks(job_id, limit, offset, status))

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._run(self._async.get_task(task_id))

    def job_results(self, job_id: str, offset: int = 0, limit: int | None = 10_000) -> dict[str, Any]:
        return self._run(self._async.job_results(job_id, offset, limit))

    def result_pages(self, job_id: str, limit: int = 10_000) -> Iterator[dict[str, Any]]:
        return self._iterate(self._async.result_pages(job_id, limit))

    def job_outcome(self, job_id: str) -> JobOutcome:
        return self._run(self._async.job_outcome(job_id))

    def graph(self, job_id: str) -> dict[str, Any]:
        return self._run(self._async.graph(job_id))

    def artifacts(self, task_id: str, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        return self._run(self._async.artifacts(task_id, after, limit))

    def task_batches(self, task_id: str) -> dict[str, Any]:
        return self._run(self._async.task_batches(task_id))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._run(self._async.cancel_job(job_id))

    def retry_job(self, job_id: str, task_id: str | None = None) -> tuple[int, SyncJobHandle]:
        """`(retried, handle)`: how many tasks went back to the queue, and a handle following the job."""
        r = self._run(self._async.retry_job(job_id, task_id))
        return r.retried, SyncJobHandle(self, r.job)

    def retry_task(self, task_id: str) -> tuple[int, SyncJobHandle]:
        r = self._run(self._async.retry_task(task_id))
        return r.retried, SyncJobHandle(self, r.job)

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        return self._run(self._async.cancel_task(task_id))

    def workers(self) -> list[dict[str, Any]]:
        return self._run(self._async.workers())

    def worker(self, worker_id: str) -> dict[str, Any]:
        return self._run(self._async.worker(worker_id))

    def stats(self) -> dict[str, Any]:
        return self._run(self._async.stats())

    def health(self) -> dict[str, Any]:
        return self._run(self._async.health())

    def rate_limits(self) -> list[dict[str, Any]]:
        return self._run(self._async.rate_limits())

    def set_rate_limit(self, pattern: str, limit: str) -> dict[str, Any]:
        return self._run(self._async.set_rate_limit(pattern, limit))

    def remove_rate_limit(self, pattern: str) -> None:
        self._run(self._async.remove_rate_limit(pattern))

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self._run(self._async.get_key(key_id))

    def set_key_webhook(self, key_id: str, url: str) -> dict[str, Any]:
        return self._run(self._async.set_key_webhook(key_id, url))

    def remove_key_webhook(self, key_id: str) -> dict[str, Any]:
        return self._run(self._async.remove_key_webhook(key_id))

    def upload_file(self, data: bytes | str | os.PathLike[str], filename: str | None = None, content_type: str | None = None) -> dict[str, Any]:
        return self._run(self._async.upload_file(data, filename, content_type))

    def download_file(self, file_id: str) -> bytes:
        return self._run(self._async.download_file(file_id))

    # ------------------------------------------------------------------ failed tasks (see crowdcompute.failed)

    def list_failed(self, *, type: str | None = None, error_code: str | None = None, message: str | None = None,
                    job_id: str | None = None, since: datetime | int | str | None = None,
                    limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """Failed-for-good tasks grouped by type and error (see `AsyncClient.list_failed`)."""
        return self._run(self._async.list_failed(type=type, error_code=error_code, message=message, job_id=job_id, since=since, limit=limit, offset=offset))

    def retry_failed(self, *, type: str | None = None, error_code: str | None = None, message: str | None = None,
                     job_id: str | None = None, since: datetime | int | str | None = None,
                     task_ids: Sequence[str] | None = None, limit: int | None = None) -> dict[str, Any]:
        """Run failed tasks again in bulk (see `AsyncClient.retry_failed`): `{"requeued", "jobs", "job_ids", "more"}`."""
        return self._run(self._async.retry_failed(type=type, error_code=error_code, message=message, job_id=job_id, since=since, task_ids=task_ids, limit=limit))

    # ------------------------------------------------------------------ schedules (see crowdcompute.schedules)

    def create_schedule(self, id: str, *, job: Mapping[str, Any], cron: str | None = None, every: Duration | None = None,
                        timezone: str | None = None, overlap: Overlap | None = None, catch_up: CatchUpPolicy | Mapping[str, Any] | None = None,
                        jitter: Duration | None = None, paused: bool | None = None, name: str | None = None) -> dict[str, Any]:
        """Create a schedule (see `AsyncClient.create_schedule`); the schedule as the REST API shows it."""
        return self._run(self._async.create_schedule(id, job=job, cron=cron, every=every, timezone=timezone, overlap=overlap,
                                                     catch_up=catch_up, jitter=jitter, paused=paused, name=name))

    def get_schedule(self, id: str) -> dict[str, Any]:
        """One schedule, with `next_fires` and `recent_runs`."""
        return self._run(self._async.get_schedule(id))

    def list_schedules(self) -> list[dict[str, Any]]:
        """The schedules this key may see, by id."""
        return self._run(self._async.list_schedules())

    def update_schedule(self, id: str, *, cron: str | None = None, every: Duration | None = None, timezone: str | None = None,
                        job: Mapping[str, Any] | None = None, overlap: Overlap | None = None, catch_up: CatchUpPolicy | Mapping[str, Any] | None = None,
                        jitter: Duration | None = None, paused: bool | None = None, name: str | None = None) -> dict[str, Any]:
        """Change the fields given; its next tick is worked out again."""
        return self._run(self._async.update_schedule(id, cron=cron, every=every, timezone=timezone, job=job, overlap=overlap,
                                                     catch_up=catch_up, jitter=jitter, paused=paused, name=name))

    def pause_schedule(self, id: str, note: str | None = None) -> dict[str, Any]:
        """Pause it: no tick fires until it is resumed."""
        return self._run(self._async.pause_schedule(id, note))

    def resume_schedule(self, id: str) -> dict[str, Any]:
        """Resume it: it fires from its next tick on."""
        return self._run(self._async.resume_schedule(id))

    def delete_schedule(self, id: str) -> dict[str, Any]:
        """Delete it; the jobs it fired are kept."""
        return self._run(self._async.delete_schedule(id))

    def trigger_schedule(self, id: str) -> SyncJobHandle:
        """Fire its job once now, outside its ticks; a handle on that job."""
        return self._wrap(self._async.trigger_schedule(id))

    def backfill_schedule(self, id: str, start: Time, end: Time) -> dict[str, Any]:
        """Fire every tick t with start <= t < end, each as its own job: `{"fired", "skipped", "job_ids"}`."""
        return self._run(self._async.backfill_schedule(id, start, end))

    def close(self) -> None:
        """Close the connection and stop the client's thread. Safe to call twice."""
        if self._closed:
            return
        try:
            self._run(self._async.aclose(), 30)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            if not self._thread.is_alive():
                self._loop.close()

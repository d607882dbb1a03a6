"""The async client: submit jobs, await their results, follow progress, query and cancel.

Submissions and completions travel over one WebSocket (pushed, no polling); queries use the
REST API (urllib, in a thread). Every submission carries an idempotency key (the caller's, or
a random one), so that one in flight when the connection drops is sent again after the
reconnect without creating a second job. The synchronous `Client` (sync_client.py) runs this
one on a private event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Literal, Mapping, NamedTuple, Sequence, TypedDict, Unpack
from urllib.parse import quote, urlencode

from ._http import HttpTransport, http_base, ws_url
from ._client_link import Link
from ._spec import graph_output, job_options, wire_keys
from ._pyfunc import Language, map_args, map_code
from .credentials import local_api_key_at
from .failed import AsyncFailedTasks
from .errors import CrowdComputeError, PayloadTooLargeError
from .job import JobCounts, JobHandle, JobOutcome
from .open_job import OpenJob
from .schedules import AsyncSchedules

log = logging.getLogger("crowdcompute.client")

DEFAULT_URL = "http://localhost:8000"
#: Results per page when reading a job's results over REST.
RESULTS_PAGE = 10_000
#: Jobs of more tasks or arguments than this are sent open, in parts (one message would exceed the foreman's limits).
STREAM_ABOVE_ITEMS = 20_000
#: Tasks a large map job is split into when the caller gives no chunk size (the foreman's choice too).
TARGET_TASKS_PER_JOB = 256
#: Completions kept for jobs whose acceptance has not arrived yet.
EARLY_COMPLETIONS = 1_000

Priority = Literal["low", "normal", "high", "critical"]


class JobOptions(TypedDict, total=False):
    """Options every job takes (docs/protocol.md, "Clients")."""

    #: A name for people (lists, the dashboard).
    name: str
    #: Tasks of a higher priority run first. Default normal.
    priority: Priority
    #: Per-task deadline from the moment a task starts, ms (at most 24 days).
    timeout_ms: int
    #: Attempts per task before it fails for good (1 = no retry; at most 100).
    max_attempts: int
    #: Submitting again with the same key returns the same job. Default: a random key.
    idempotency_key: str
    #: Anything to keep with the job (handlers read it too).
    metadata: dict[str, Any]
    #: How long the finished job and its results are kept, ms.
    retention_ms: int
    #: How long a task may wait for a worker before failing with CC_ERR_NO_WORKER, ms.
    queue_timeout_ms: int
    #: Its share of the workers against the same owner's other jobs of its priority (default 1).
    weight: float
    #: At most this many of its tasks run at once.
    max_concurrency: int
    #: Not to start before this time: a `datetime` (a naive one is local time, as
    #: `datetime.timestamp()` reads it), epoch milliseconds, or RFC 3339 text. Its tasks wait in
    #: state `scheduled` until then; at most a year ahead. Not with `delay`.
    run_at: datetime | int | str
    #: Not to start until this long after submission: a `timedelta`, milliseconds (as
    #: `timeout_ms` and the other options count), or text such as `"10m"`. Not with `run_at`.
    delay: timedelta | int | str
    #: Open jobs: closed when no part and no seal comes for this long: a `timedelta`, milliseconds,
    #: or text such as `"1h"` (default the foreman's --open-timeout, 1 h; 0 = never).
    open_timeout: timedelta | int | str
    #: What the open timeout does: "cancel" (default: unfinished tasks are cancelled) or "seal" (its tasks run to the end).
    on_open_timeout: Literal["seal", "cancel"]
    #: Past this time its unfinished tasks fail with CC_ERR_DEADLINE: a datetime (naive = local time),
    #: epoch milliseconds, or an RFC 3339 string.
    deadline: datetime | int | str
    #: An http(s) URL the job's end is posted to, signed (Standard Webhooks) and retried until it
    #: answers 2xx; default the API key's webhook, if it has one (docs/operations.md, "Webhooks").
    webhook: str


_ARGUMENT_MESSAGE = re.compile(r"argument (\d+): ([A-Za-z_][\w.]*): (.*)", re.S)


def argument_failure(failure: dict[str, Any]) -> dict[str, Any]:
    """A failure as the REST API lists it, with a map argument's own failure spelled out:
    `argument_index`, `error_type` (the exception's class, `ZeroDivisionError`), `error_message`
    (its text) and `traceback` (the worker's, when it sent one for that argument)."""
    error = failure.get("error") or {}
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, dict) or not isinstance(details.get("argumentIndex"), int):
        return failure
    m = _ARGUMENT_MESSAGE.fullmatch(str(error.get("message") or ""))
    out = {**failure, "argument_index": details["argumentIndex"]}
    if m:
        out["error_type"], out["error_message"] = m.group(2), m.group(3)
    stack = details.get("stack") or error.get("stack")
    # A failed chunk's traceback is its first failed argument's; the foreman repeats it on
    # each argument's failure, so it is kept where it ends with this argument's own error.
    if isinstance(stack, str) and stack and (details.get("stack") or (m and stack.rstrip().endswith(f"{m.group(2)}: {m.group(3)}".rstrip()))):
        out["traceback"] = stack
    return out


class Retried(NamedTuple):
    """What `retry_job` did: how many tasks went back to the queue, and a handle following the job."""

    retried: int
    job: JobHandle


def resolve_url(url: str | None) -> str:
    """The foreman's REST base: `url`, else `CROWDCOMPUTE_FOREMAN`, else `CROWDCOMPUTE_URL` (the CLI's), else localhost:8000."""
    return http_base(url or os.environ.get("CROWDCOMPUTE_FOREMAN") or os.environ.get("CROWDCOMPUTE_URL") or DEFAULT_URL)


def resolve_api_key(api_key: str | None, base: str) -> str | None:
    """The key to send, found as the TypeScript SDK finds it: the one given, else
    `CROWDCOMPUTE_API_KEY`, else the admin key a foreman on this machine left in the local
    credentials file for its URL."""
    if api_key is not None:
        return api_key or None
    return os.environ.get("CROWDCOMPUTE_API_KEY") or local_api_key_at(base)


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def _query(**params: Any) -> str:
    q = {k: v for k, v in params.items() if v is not None}
    return f"?{urlencode(q)}" if q else ""


class _Pending:
    __slots__ = ("message", "future", "first_sent", "outages", "shape")

    def __init__(self, message: dict[str, Any], future: asyncio.Future[JobHandle], shape: dict[str, Any]) -> None:
        self.message = message
        self.future = future
        self.first_sent = time.monotonic()
        self.outages = 0
        #: What the handle is (one task, a graph), applied when it is made.
        self.shape = shape


class AsyncClient(AsyncSchedules, AsyncFailedTasks):
    """A client of one foreman. Use it as `async with AsyncClient(url) as client:` or call `aclose()`.

    `url` is the foreman's address, `http://host:8000` (`ws://host:8000/ws` is accepted too);
    default `CROWDCOMPUTE_FOREMAN`, else `http://localhost:8000`. `api_key` default:
    `CROWDCOMPUTE_API_KEY`, else the key a foreman on this machine left for its URL in the
    local credentials file.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, connect_timeout: float = 10.0,
                 request_timeout: float = 60.0, reconnect_interval: float = 0.5, ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = resolve_url(url)
        self.ws_url = ws_url(self.url)
        key = resolve_api_key(api_key, self.url)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.connect_timeout = connect_timeout
        self._http = HttpTransport(self.url, headers, timeout=request_timeout, outage_wait=connect_timeout, ssl_context=ssl_context)
        self._link = Link(self.ws_url, headers, connect_timeout=connect_timeout, reconnect_interval=reconnect_interval,
                          ssl_context=ssl_context, on_open=self._on_open, on_message=self._on_message, on_close=self._on_close)
        self._pending: dict[str, _Pending] = {}
        #: Handles by job id; several submissions can land on one job (idempotency keys).
        self._handles: dict[str, list[JobHandle]] = {}
        #: Completions that arrived before their job_accepted (several foremen), handed over on acceptance.
        self._early: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncClient {self.url}>"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ submitting

    async def submit(self, type: str, input: Any = None, *, task_id: str | None = None, requires: Mapping[str, Any] | None = None,
                     files: Sequence[str] | None = None, **options: Unpack[JobOptions]) -> JobHandle:
        """Submit one named task (`image.resize`) with its input; the handle's `result()` is its result.

        `requires` (`{cpu, memory_mb, gpu, labels}`) is what its worker must have free; `files`
        are ids from `upload_file`."""
        task: dict[str, Any] = {"type": type, "input": input, "task_id": task_id, "requires": requires, "files": list(files) if files else None}
        spec = {"kind": "tasks", "tasks": [wire_keys(task)], **job_options(**options)}
        # Tasks of a job are named `<jobId>.<index>` unless the caller named them.
        return await self._submit(spec, {"task_id": task_id})

    async def submit_many(self, tasks: Iterable[Mapping[str, Any]], **options: Unpack[JobOptions]) -> JobHandle:
        """Submit named tasks as one job (`[{type, input, task_id?, priority?, timeout_ms?, max_attempts?, requires?, files?}]`):
        one commit, results in task order."""
        wire = [wire_keys(t) for t in tasks]
        if len(wire) > STREAM_ABOVE_ITEMS:
            return await self._submit_in_parts({"kind": "tasks", **job_options(**options)}, "tasks", wire)
        return await self._submit({"kind": "tasks", "tasks": wire, **job_options(**options)}, {})

    async def submit_graph(self, nodes: Sequence[Mapping[str, Any]], output: str | None = None, **options: Unpack[JobOptions]) -> JobHandle:
        """Submit a task graph as one job: `nodes` are `{id, type, input?, depends_on?, input_adapter?, input_args?, optional?, …}`.

        The handle's `result()` is the `output` node's result (default: the last node nothing
        depends on), `node_results()` every node's."""
        wire_nodes = [wire_keys(n) for n in nodes]
        spec = {"kind": "graph", "nodes": wire_nodes, **({"output": output} if output else {}), **job_options(**options)}
        shape = {"node_ids": [str(n.get("id")) for n in wire_nodes], "output": graph_output(wire_nodes, output)}
        return await self._submit(spec, shape)

    async def submit_map(self, code: str | Callable[[Any], Any], args: Iterable[Any], *, chunk_size: int | None = None,
                         run_on: Literal["any", "node", "browser"] | None = None, function_name: str | None = None,
                         language: Language | None = None, **options: Unpack[JobOptions]) -> JobHandle:
        """Submit a map job: a function called once per argument on workers that run shipped code
        (started with --allow-code); `result()` is the return values in argument order.

        `code` is a Python function (a plain top-level `def` that imports what it needs inside
        itself; its source is shipped, so names from outside it are refused here, each named), or
        source text: JavaScript, unless `language='python'`. `args` are JSON values (any
        iterable: a `range` is fine)."""
        language, source, name = map_code(code, language)
        values = map_args(args)
        if len(values) > STREAM_ABOVE_ITEMS and chunk_size is None:
            # The chunk size the whole would get in one message (the foreman aims at 256 tasks per
            # large job); an open job's own default (100) knows nothing of the total.
            chunk_size = -(-len(values) // TARGET_TASKS_PER_JOB)
        spec = {"kind": "map", "code": source, **job_options(chunk_size=chunk_size, run_on=run_on, function_name=function_name or name, **options)}
        if language == "python":
            spec["language"] = "python"
        if len(values) > STREAM_ABOVE_ITEMS:
            return await self._submit_in_parts(spec, "args", values)
        return await self._submit({**spec, "args": values}, {})

    async def map(self, code: str | Callable[[Any], Any], args: Iterable[Any], *, chunk_size: int | None = None,
                  language: Language | None = None, **options: Unpack[JobOptions]) -> list[Any]:
        """Run a function (a Python `def`, or source text) over every argument on the workers; the results in argument order.

        Raises JobFailedError when any argument failed: its `failures` name each (`argument_index`,
        `error_type`, `message`), its `results` keep the others' values (None where one failed)."""
        job = await self.submit_map(code, args, chunk_size=chunk_size, language=language, **options)
        result: list[Any] = await job.result()
        return result

    async def submit_job(self, spec: Mapping[str, Any]) -> JobHandle:
        """Submit a job spec as the protocol defines it (`{kind: map|tasks|graph, …}`; snake_case keys are converted)."""
        return await self._submit(wire_keys(spec), {})

    async def watch(self, job_id: str) -> JobHandle:
        """A handle on an existing job (submitted elsewhere, or earlier), to await or follow it. Its
        `warnings` say what keeps the job's queued tasks waiting among the workers connected now
        (say, that none handles their type), as a submission's do."""
        info = await self.get_job(job_id)
        handle = JobHandle(self, id=job_id, total_tasks=int(info.get("total_tasks") or 0), warnings=info.get("warnings"))
        self._track(handle)
        await self._link.ensure_open()
        await self._link.send({"type": "subscribe_job", "jobId": job_id})
        return handle

    async def _submit_in_parts(self, spec: dict[str, Any], field: Literal["tasks", "args"], items: list[Any]) -> JobHandle:
        """Submit a job open, send its tasks (or arguments) in parts over REST, and seal it."""
        job = await self._open(spec, field)
        await job.append(items)
        return await job.seal()

    async def _open(self, spec: dict[str, Any], field: Literal["tasks", "args"]) -> OpenJob:
        handle = await self._submit({**spec, field: [], "open": True}, {})
        unit = int((await self.get_job(handle.id)).get("chunk_size") or 1) if field == "args" else 1
        return OpenJob(self, handle, field, unit)

    async def open_tasks(self, **options: Unpack[JobOptions]) -> OpenJob:
        """Submit a job of named tasks open, to append its tasks as they are produced
        (`await job.append([{type, input, ...}])`, then `await job.seal()`); its first tasks run
        while the rest are still coming."""
        return await self._open({"kind": "tasks", **job_options(**options)}, "tasks")

    async def open_map(self, code: str | Callable[[Any], Any], *, chunk_size: int | None = None, language: Language | None = None,
                       function_name: str | None = None, **options: Unpack[JobOptions]) -> OpenJob:
        """Submit a map job open, to append its arguments as they come (`append`, then `seal`).
        Its chunk size is fixed now (`chunk_size`, default 100): the total is not known yet."""
        language, source, name = map_code(code, language)
        spec = {"kind": "map", "code": source, **job_options(chunk_size=chunk_size, function_name=function_name or name, **options)}
        if language == "python":
            spec["language"] = "python"
        return await self._open(spec, "args")

    async def _submit(self, spec: dict[str, Any], shape: dict[str, Any]) -> JobHandle:
        if self._closed:
            raise CrowdComputeError("CC_ERR_SHUTTING_DOWN", "client is closed")
        spec = {**spec, "idempotencyKey": spec.get("idempotencyKey") or f"auto-{uuid.uuid4()}"}
        await self._link.ensure_open()
        request_id = str(uuid.uuid4())
        future: asyncio.Future[JobHandle] = asyncio.get_running_loop().create_future()
        p = _Pending({"type": "submit_job", "requestId": request_id, "job": spec}, future, shape)
        self._pending[request_id] = p
        await self._link.send(p.message)  # a drop before the answer: sent again on reconnect, same key
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

    # ------------------------------------------------------------------ REST

    async def _rest(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._http.request, method, path, body)

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """One job, as the REST API shows it (snake_case)."""
        result: dict[str, Any] = await self._rest("GET", f"/api/jobs/{_path(job_id)}")
        return result

    async def list_jobs(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int | None = None,
                        since: str | int | None = None, until: str | int | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first: of one `status`, matching `search` (task types, function name, name or id), created `since`/`until`."""
        result: list[dict[str, Any]] = await self._rest("GET", f"/api/jobs{_query(status=status, search=search, since=since, until=until, limit=limit, offset=offset)}")
        return result

    async def tasks(self, job_id: str, limit: int | None = None, offset: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """A job's tasks in index order from index `offset` (the foreman's default page is 100)."""
        result: list[dict[str, Any]] = await self._rest("GET", f"/api/jobs/{_path(job_id)}/tasks{_query(limit=limit, offset=offset, status=status)}")
        return result

    async def get_task(self, task_id: str) -> dict[str, Any]:
        """One task, with every attempt's error."""
        result: dict[str, Any] = await self._rest("GET", f"/api/tasks/{_path(task_id)}")
        return result

    async def job_results(self, job_id: str, offset: int = 0, limit: int | None = RESULTS_PAGE) -> dict[str, Any]:
        """A page of a job's results: `{job_id, status, results, offset, total, next_offset, failures}`."""
        result: dict[str, Any] = await self._rest("GET", f"/api/jobs/{_path(job_id)}/results{_query(offset=offset, limit=limit)}")
        return result

    async def result_pages(self, job_id: str, limit: int = RESULTS_PAGE) -> AsyncIterator[dict[str, Any]]:
        """A job's results page after page, in order, following `next_offset`: a job of any size without holding it all."""
        offset: int | None = 0
        while offset is not None:
            page = await self.job_results(job_id, offset=offset, limit=limit)
            yield page
            offset = page.get("next_offset")

    async def job_outcome(self, job_id: str) -> JobOutcome:
        """A job's state, counts, results in order (None where a task failed) and failures, read over REST."""
        results: list[Any] = []
        failures: list[dict[str, Any]] = []
        state = "queued"
        async for page in self.result_pages(job_id):
            results.extend(page["results"])
            failures.extend(argument_failure(f) for f in page["failures"])
            state = page["status"]
        job = await self.get_job(job_id)
        counts: JobCounts = {"total": job["total_tasks"], "completed": job["completed_tasks"], "failed": job["failed_tasks"], "cancelled": job["cancelled_tasks"]}
        return {"job_id": job_id, "state": state, "counts": counts, "results": results, "failures": failures}

    async def graph(self, job_id: str) -> dict[str, Any]:
        """A task graph's nodes and where each stands."""
        result: dict[str, Any] = await self._rest("GET", f"/api/jobs/{_path(job_id)}/graph")
        return result

    async def artifacts(self, task_id: str, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """What a batch handler wrote, in recorded order: `{task_id, complete, artifacts}`."""
        result: dict[str, Any] = await self._rest("GET", f"/api/tasks/{_path(task_id)}/artifacts{_query(after=after, limit=limit)}")
        return result

    async def task_batches(self, task_id: str) -> dict[str, Any]:
        """A batch handler's batches done, their metrics summed, and its last checkpoint."""
        result: dict[str, Any] = await self._rest("GET", f"/api/tasks/{_path(task_id)}/batches")
        return result

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: queued tasks never start, running ones are stopped, finished results stay. Returns the job."""
        result: dict[str, Any] = await self._rest("POST", f"/api/jobs/{_path(job_id)}/cancel")
        return result

    async def retry_job(self, job_id: str, task_id: str | None = None) -> Retried:
        """Run a job's failed and cancelled tasks (or one, `task_id`) again with fresh attempts; recorded results stay.

        Raises ConflictError (CC_ERR_NOTHING_TO_RETRY) when nothing failed or was cancelled."""
        r = await self._rest("POST", f"/api/jobs/{_path(job_id)}/retry{_query(task_id=task_id)}")
        return Retried(int(r["retried"]), await self.watch(job_id))

    async def retry_task(self, task_id: str) -> Retried:
        """Run one failed or cancelled task again, by its id alone."""
        r = await self._rest("POST", f"/api/tasks/{_path(task_id)}/retry")
        return Retried(int(r["retried"]), await self.watch(str(r["id"])))

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        """Cancel one task: queued, it never starts; running, its worker is told to stop."""
        result: dict[str, Any] = await self._rest("POST", f"/api/tasks/{_path(task_id)}/cancel")
        return result

    async def workers(self) -> list[dict[str, Any]]:
        """The workers the foreman's store knows."""
        result: list[dict[str, Any]] = await self._rest("GET", "/api/workers")
        return result

    async def worker(self, worker_id: str) -> dict[str, Any]:
        """One worker, with what it runs now and its last connections (NotFoundError, CC_ERR_WORKER_NOT_FOUND, for an unknown id)."""
        result: dict[str, Any] = await self._rest("GET", f"/api/workers/{_path(worker_id)}")
        return result

    async def stats(self) -> dict[str, Any]:
        """The foreman's statistics."""
        result: dict[str, Any] = await self._rest("GET", "/api/stats")
        return result

    async def health(self) -> dict[str, Any]:
        """The foreman's health (`status`: healthy, degraded or stopping); answered, not raised, while degraded."""
        result: dict[str, Any] = await asyncio.to_thread(self._http.request_once, "GET", "/health", None, accept={503})
        return result

    async def rate_limits(self) -> list[dict[str, Any]]:
        """The rate limits per task type pattern."""
        r = await self._rest("GET", "/api/rate-limits")
        result: list[dict[str, Any]] = r["rate_limits"]
        return result

    async def set_rate_limit(self, pattern: str, limit: str) -> dict[str, Any]:
        """At most so many tasks of the types `pattern` matches start per window (`100/s`, `6000/10m`). Admin."""
        result: dict[str, Any] = await self._rest("PUT", "/api/rate-limits", {"pattern": pattern, "limit": limit})
        return result

    async def remove_rate_limit(self, pattern: str) -> None:
        """Remove a pattern's rate limit (NotFoundError, CC_ERR_RATE_LIMIT_NOT_FOUND, when it has none). Admin."""
        await self._rest("DELETE", f"/api/rate-limits{_query(pattern=pattern)}")

    async def get_key(self, key_id: str) -> dict[str, Any]:
        """An API key (`key_id`: the part of `cck_<id>_...` after `cck_`): scopes, cap, `webhook_url`, last use; never its secret.

        A key may read itself, an admin key any (ForbiddenError otherwise; NotFoundError, CC_ERR_KEY_NOT_FOUND, for an unknown id)."""
        result: dict[str, Any] = await self._rest("GET", f"/api/keys/{_path(key_id)}")
        return result

    async def set_key_webhook(self, key_id: str, url: str) -> dict[str, Any]:
        """Post the end of the key's jobs that name no webhook to `url` (jobs ending from now on); returns the key.

        An http(s) URL on a host the foreman calls (`--webhook-host`). A key may set its own, an admin key any."""
        result: dict[str, Any] = await self._rest("PUT", f"/api/keys/{_path(key_id)}/webhook", {"url": url})
        return result

    async def remove_key_webhook(self, key_id: str) -> dict[str, Any]:
        """Remove the key's webhook: its jobs that name none are announced nowhere; returns the key. Its own, or admin."""
        result: dict[str, Any] = await self._rest("DELETE", f"/api/keys/{_path(key_id)}/webhook")
        return result

    async def upload_file(self, data: bytes | str | os.PathLike[str], filename: str | None = None, content_type: str | None = None) -> dict[str, Any]:
        """Upload a file for tasks to carry (`submit(type, input, files=[f["file_id"]])`).

        `data` is the bytes, or a path to read them from (`filename` defaults to its name)."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
            if not filename:
                raise ValueError("upload_file: give a filename with bytes")
        else:
            path = Path(data)
            raw = await asyncio.to_thread(path.read_bytes)
            filename = filename or path.name
        result: dict[str, Any] = await asyncio.to_thread(self._http.request_once, "POST", f"/api/files{_query(filename=filename)}",
                                                         None, raw=raw, content_type=content_type or "application/octet-stream")
        return result

    async def download_file(self, file_id: str) -> bytes:
        """A file's bytes (one this key uploaded, or any with an admin key)."""
        result: bytes = await asyncio.to_thread(self._http.request_once, "GET", f"/api/files/{_path(file_id)}/download", None, want_bytes=True)
        return result

    # ------------------------------------------------------------------ the WebSocket

    def _track(self, handle: JobHandle) -> None:
        self._handles.setdefault(handle.id, []).append(handle)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_open(self) -> None:
        # After a reconnect: submissions not yet acknowledged go again (same idempotency key), and
        # every job still awaited is subscribed again (a finished one answers at once).
        for p in list(self._pending.values()):
            await self._link.send(p.message)
        for job_id, handles in list(self._handles.items()):
            if any(not h.finished for h in handles):
                await self._link.send({"type": "subscribe_job", "jobId": job_id})

    def _on_close(self, code: int | None) -> None:
        # 1009: a frame of ours was too big for the foreman; sent again it would fail the same way.
        if code == 1009:
            err = PayloadTooLargeError("CC_ERR_PAYLOAD_TOO_LARGE", "the foreman closed the connection: a submission was larger than its frame limit (--max-payload)")
            for p in list(self._pending.values()):
                if not p.future.done():
                    p.future.set_exception(err)
            self._pending.clear()

    def _on_message(self, m: dict[str, Any]) -> None:
        kind = m["type"]
        if kind == "job_accepted":
            p = self._pending.pop(str(m.get("requestId")), None)
            if p is None or p.future.done():
                return
            handle = JobHandle(self, id=m["jobId"], total_tasks=m["totalTasks"], position=m.get("position", 0),
                               deduplicated=bool(m.get("deduplicated")), warnings=m.get("warnings"))
            if "task_id" in p.shape:
                handle._as_single(p.shape.get("task_id") or f"{handle.id}.0")
            if "node_ids" in p.shape:
                handle._as_graph(p.shape["node_ids"], p.shape.get("output"))
            self._track(handle)
            p.future.set_result(handle)
            early = self._early.pop(handle.id, None)
            if early is not None:
                self._on_message(early)
        elif kind == "job_progress":
            for h in self._handles.get(m["jobId"], []):
                h._on_progress(m["state"], m["counts"])
        elif kind == "task_progress_event":
            for h in self._handles.get(m["jobId"], []):
                h._on_task_progress(m)
        elif kind == "job_completed":
            handles = self._handles.pop(m["jobId"], None)
            if handles is None:
                if self._pending:
                    if len(self._early) >= EARLY_COMPLETIONS:
                        self._early.pop(next(iter(self._early)))
                    self._early[m["jobId"]] = m
                return
            for h in handles:
                h._on_completed(m["state"], m["counts"], m.get("results"))
        elif kind == "error":
            self._on_error(m)

    def _on_error(self, m: dict[str, Any]) -> None:
        err = CrowdComputeError.from_wire(m)
        request_id = m.get("requestId")
        p = self._pending.get(request_id) if isinstance(request_id, str) else None
        if p is not None and err.code == "CC_ERR_STORE_UNAVAILABLE" and time.monotonic() - p.first_sent < self.connect_timeout:
            # The foreman's database is out for a moment: send it again shortly (same idempotency key).
            p.outages += 1
            delay = min(2.0, 0.25 * 2 ** (p.outages - 1))
            self._spawn(self._resend_later(p, request_id or "", delay))
            return
        if p is not None:
            self._pending.pop(request_id or "", None)
            if not p.future.done():
                p.future.set_exception(err)
            return
        details = m.get("details") or {}
        job_id = details.get("jobId") if isinstance(details, dict) else None
        handles = self._handles.pop(job_id, None) if isinstance(job_id, str) else None
        if handles:
            for h in handles:
                h._on_fail(err)
            return
        log.warning("the foreman reported an error: %s", err)

    async def _resend_later(self, p: _Pending, request_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._pending.get(request_id) is p:
            await self._link.send(p.message)

    async def aclose(self) -> None:
        """Close the connection. Pending submissions and unfinished handles fail with CC_ERR_SHUTTING_DOWN. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        err = CrowdComputeError("CC_ERR_SHUTTING_DOWN", "client closed")
        for p in self._pending.values():
            if not p.future.done():
                p.future.set_exception(err)
        self._pending.clear()
        for handles in self._handles.values():
            for h in handles:
                h._on_fail(err)
        self._handles.clear()
        for task in list(self._tasks):
            task.cancel()
        await self._link.close()

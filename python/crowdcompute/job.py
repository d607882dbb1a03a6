"""A submitted job as the async client hands it out: await its results, follow its progress, cancel it.

Completion arrives pushed over the client's WebSocket (`job_completed`); results that did not
come with it (a failed job's, or too many for one message) are read over REST, once, and only
when someone asks for them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, TypedDict

from .errors import JobFailedError

if TYPE_CHECKING:
    from .client import AsyncClient, Retried


class JobCounts(TypedDict):
    total: int
    completed: int
    failed: int
    cancelled: int


class JobEnd(TypedDict):
    state: str
    counts: JobCounts


class JobOutcome(TypedDict):
    """How a job ended: its state, counts, results in order (None where a task failed) and failures."""

    job_id: str
    state: str
    counts: JobCounts
    results: list[Any]
    #: `{task_id, index, status, error}` for each task that did not complete.
    failures: list[dict[str, Any]]


def job_failed(outcome: JobOutcome, *, task_id: str | None = None) -> JobFailedError:
    """The error `result()` raises for a job that did not complete, in the TypeScript SDK's words."""
    counts, failures, job_id = outcome["counts"], outcome["failures"], outcome["job_id"]
    cancelled = outcome["state"] == "cancelled"
    code = "CC_ERR_CANCELLED" if cancelled else "CC_ERR_JOB_FAILED"
    first = failures[0] if failures else None
    first_error = (first or {}).get("error") or {}
    if task_id is not None and first_error:
        # One task: its own error says what happened, its code first.
        task_code = first_error.get("code") or ("CC_ERR_CANCELLED" if cancelled else "CC_ERR_HANDLER_FAILED")
        what = f"{task_code}: task {task_id} {outcome['state']}: {first_error.get('message', '')}"
    elif cancelled:
        what = f"job {job_id} was cancelled ({counts['completed']} of {counts['total']} tasks had finished)"
    else:
        what = f"job {job_id} failed: {counts['failed']} of {counts['total']} tasks failed"
        if first:
            what += f"; first, task {first.get('task_id')} (index {first.get('index')}): {first_error.get('message') or first.get('status')}"
    return JobFailedError(code, what, {"jobId": job_id, "state": outcome["state"]}, job_id=job_id, state=outcome["state"],
                          results=outcome["results"], failures=failures)


class JobHandle:
    """A submitted job. `submit()` gives one whose `result()` is its single task's result;
    `submit_graph()` one whose `result()` is the output node's; otherwise `result()` is the list
    of results in task (or argument) order."""

    #: The job's id.
    id: str
    total_tasks: int
    #: Queued tasks ahead of the job's first task when it was accepted (counted up to 10,000).
    position: int
    #: True when an idempotency key matched an earlier job.
    deduplicated: bool
    #: What the foreman wants the submitter to know (e.g. no connected worker handles a task type).
    warnings: list[str]
    #: The task's id, for a handle from `submit()`.
    task_id: str | None
    #: The node ids in spec order, and the output node, for a handle from `submit_graph()`.
    node_ids: list[str] | None
    output: str | None

    def __init__(self, client: AsyncClient, *, id: str, total_tasks: int, position: int = 0, deduplicated: bool = False,
                 warnings: list[str] | None = None, task_id: str | None = None, node_ids: list[str] | None = None,
                 output: str | None = None) -> None:
        self._client = client
        self.id = id
        self.total_tasks = total_tasks
        self.position = position
        self.deduplicated = deduplicated
        self.warnings = list(warnings or [])
        self.task_id = task_id
        self.node_ids = node_ids
        self.output = output
        self._ended: asyncio.Future[JobEnd] = asyncio.get_running_loop().create_future()
        self._pushed_results: list[Any] | None = None
        self._outcome: asyncio.Task[JobOutcome] | None = None
        self._last_progress: dict[str, Any] | None = None
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {'ended' if self.finished else 'running'}>"

    @property
    def finished(self) -> bool:
        return self._ended.done()

    def _as_single(self, task_id: str) -> JobHandle:
        self.task_id = task_id
        return self

    def _as_graph(self, node_ids: list[str], output: str | None) -> JobHandle:
        self.node_ids, self.output = node_ids, output
        return self

    # ------------------------------------------------------------------ waiting

    async def ended(self) -> JobEnd:
        """Wait for the job to end, without reading its results: `{state, counts}`.

        For a large job, read the results in pages afterwards (`client.result_pages(id)`)."""
        return await asyncio.shield(self._ended)

    async def outcome(self) -> JobOutcome:
        """The job's outcome once it has ended, whatever its state; never raises for failed tasks."""
        end = await self.ended()
        if self._pushed_results is not None and end["state"] == "completed":
            return {"job_id": self.id, "state": end["state"], "counts": end["counts"], "results": self._pushed_results, "failures": []}
        # Failures, or results too many to push: read over REST, once, whoever asks.
        if self._outcome is None:
            self._outcome = asyncio.ensure_future(self._client.job_outcome(self.id))
        try:
            return await asyncio.shield(self._outcome)
        except BaseException:
            if self._outcome.done():
                self._outcome = None  # a failed read is tried again by the next caller
            raise

    async def result(self) -> Any:
        """The results in order (the single result for `submit()`, the output node's for a graph).

        Raises JobFailedError (code CC_ERR_JOB_FAILED, or CC_ERR_CANCELLED for a cancelled job)
        carrying `failures` and the `results` that did finish."""
        o = await self.outcome()
        if o["state"] != "completed":
            raise job_failed(o, task_id=self.task_id)
        if self.task_id is not None:
            return o["results"][0] if o["results"] else None
        if self.node_ids is not None and self.output is not None:
            return o["results"][self.node_ids.index(self.output)]
        return o["results"]

    async def node_results(self) -> dict[str, Any]:
        """A graph's results by node id (None where a node did not complete); never raises for node failures."""
        if self.node_ids is None:
            raise TypeError(f"job {self.id} is not a task graph: node_results() is for handles from submit_graph()")
        o = await self.outcome()
        return {node: (o["results"][i] if i < len(o["results"]) else None) for i, node in enumerate(self.node_ids)}

    # ------------------------------------------------------------------ acting on it

    async def get(self) -> dict[str, Any]:
        """The job as the REST API shows it now (`GET /api/jobs/{id}`)."""
        return await self._client.get_job(self.id)

    async def cancel(self) -> dict[str, Any]:
        """Cancel the job: queued tasks never start, running ones are stopped, finished results stay."""
        return await self._client.cancel_job(self.id)

    async def retry(self, task_id: str | None = None) -> JobHandle:
        """Run the job's failed and cancelled tasks (or one, `task_id`) again with fresh attempts.

        Returns a new handle that follows the job to its next ending (this one has ended).
        Raises ConflictError (CC_ERR_NOTHING_TO_RETRY) when nothing failed or was cancelled."""
        retried: Retried = await self._client.retry_job(self.id, task_id=task_id)
        handle = retried.job
        if self.task_id is not None:
            handle._as_single(self.task_id)
        if self.node_ids is not None:
            handle._as_graph(self.node_ids, self.output)
        return handle

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Progress events as they come, ending when the job ends.

        `{"type": "job_progress", job_id, state, counts, fraction}` (at most every 100 ms, and
        once more when the job ends; the latest is replayed first) and
        `{"type": "task_progress", job_id, task_id, progress, message, data}` (a handler's reports)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        if self._last_progress is not None:
            queue.put_nowait(self._last_progress)
        if self.finished:
            queue.put_nowait(None)
        else:
            self._listeners.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    err = self._ended.exception() if self._ended.done() else None
                    if err is not None:
                        raise err  # not an ending: the client closed, or the foreman refused the job
                    return
                yield event
        finally:
            self._listeners.discard(queue)

    # ------------------------------------------------------------------ fed by the client

    def _emit(self, event: dict[str, Any] | None) -> None:
        for q in self._listeners:
            q.put_nowait(event)

    def _on_progress(self, state: str, counts: JobCounts) -> None:
        done = counts["completed"] + counts["failed"] + counts["cancelled"]
        event = {"type": "job_progress", "job_id": self.id, "state": state, "counts": counts,
                 "fraction": 1.0 if counts["total"] == 0 else done / counts["total"]}
        self._last_progress = event
        self._emit(event)

    def _on_task_progress(self, message: dict[str, Any]) -> None:
        self._emit({"type": "task_progress", "job_id": self.id, "task_id": message.get("taskId"), "progress": message.get("progress"),
                    "message": message.get("message"), "data": message.get("data")})

    def _on_completed(self, state: str, counts: JobCounts, results: list[Any] | None) -> None:
        if self.finished:
            return
        self._on_progress(state, counts)
        self._pushed_results = results
        self._ended.set_result({"state": state, "counts": counts})
        self._emit(None)
        self._listeners.clear()

    def _on_fail(self, err: BaseException) -> None:
        if self.finished:
            return
        self._ended.set_exception(err)
        # Nobody may be waiting (fire and forget): do not let asyncio report it as never retrieved.
        self._ended.exception()
        self._emit(None)
        self._listeners.clear()

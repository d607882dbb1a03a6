"""Batch handlers: a task that works through its input in batches, records each batch as it
finishes (with its metrics, the artifacts it wrote and the latest checkpoint, in one
transaction on the foreman), and, when a worker dies mid-task, resumes on another worker from
the last checkpoint, skipping the batches already done.

`batch_task_handler` turns a batch handler (an object with `iter_batches` and
`process_batch`, FlowKit's interface) into an ordinary task handler; everything else (routing
by pattern, deadlines, cancellation, retries) is the same as for plain handlers.
"""

from __future__ import annotations

import dataclasses

import asyncio
import inspect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Mapping

from ._adapters import DEFAULT_POLL_MS, adapter_batches
from .errors import CrowdComputeError, PayloadTooLargeError
from .task import Task

if TYPE_CHECKING:
    from .worker import Worker

#: The batch uid under which `finalize`'s metrics are recorded.
FINALIZE_BATCH_UID = "#finalize"
#: The longest batch uid the foreman records, in characters.
MAX_BATCH_UID = 200
#: Errors the system raises that doing the task again would not cure (as the TypeScript worker).
_NEVER_RETRIED = {"CC_ERR_PAYLOAD_TOO_LARGE", "CC_ERR_TOO_DEEP", "CC_ERR_NO_HANDLER"}
_UNSET: Any = object()


@dataclass
class Batch:
    """One unit of work of a task: a uid stable across attempts, and what to process."""

    batch_uid: str
    payload: Any = None


@dataclass
class BatchResult:
    """What processing a batch gave: success, numbers summed per task over its batches
    (visible in the API), and whatever the handler wants to say about the artifacts it wrote
    (kept on the worker only). `error` says why, when `success` is false (the task fails)."""

    success: bool = True
    metrics: dict[str, float] | None = None
    artifacts_ref: Any = None
    error: str | None = None


@dataclass
class FinalizationResult:
    """What `finalize` may return: the task's `result`, and `metrics` added to the task's."""

    metrics: dict[str, float] | None = None
    result: Any = None


class Handler:
    """FlowKit's handler interface; subclass it and override what you need.

    One instance serves every task of its role: keep what belongs to one run on the
    `RunContext` (or key it by `run_info["task_id"]`) when a worker runs several tasks at once.
    """

    async def init(self, run_info: dict[str, Any]) -> None:
        """Before the first batch of a run. `run_info`: `task_id`, `job_id`, `node_id` (a graph
        node's id, else None), `type`, `attempt`, `input`, and `resumed` (an earlier attempt
        left a checkpoint or batches done)."""

    async def iter_batches(self, input_data: Any) -> AsyncIterator[Batch]:
        """The task's batches, in an order that is the same on every attempt (an async or a
        plain generator). Not called for a graph node that has an input adapter."""
        raise NotImplementedError(f"{type(self).__name__}.iter_batches(input_data) is not implemented")
        yield  # pragma: no cover  (makes this an async generator)

    async def process_batch(self, batch: Batch, ctx: "RunContext") -> BatchResult:
        raise NotImplementedError(f"{type(self).__name__}.process_batch(batch, ctx) is not implemented")

    async def finalize(self, ctx: "RunContext") -> FinalizationResult | None:
        """After the last batch: the `result` it returns is the task's result."""
        return None

    def classify_error(self, error: BaseException) -> tuple[str, bool]:
        """`(reason, permanent)`: a permanent error fails the task without retry; a transient
        one retries it from the checkpoint. The reason becomes the error's code. By default
        every error is transient, with its own code (or its class name) as the reason."""
        return str(getattr(error, "code", None) or type(error).__name__), False


def is_batch_handler(x: Any) -> bool:
    """True for an object that implements the batch handler interface."""
    return not isinstance(x, type) and callable(getattr(x, "iter_batches", None)) and callable(getattr(x, "process_batch", None))


class ArtifactsWriter:
    """Writes a task's artifacts. Within `process_batch` an artifact is recorded with the
    batch; elsewhere, at once. The first artifact recorded under a batch uid stands: a repeat
    (a batch done again after a crash) is not counted twice."""

    def __init__(self, run: "_Run") -> None:
        self._run = run

    async def upsert_partial(self, batch_uid: str, data: Any) -> dict[str, str]:
        """Write `data` (a JSON value) under `batch_uid`; returns `{task_id, batch_uid}`."""
        if not isinstance(batch_uid, str) or not batch_uid:
            raise TypeError(f"upsert_partial(batch_uid, data): batch_uid must be a non-empty string, got {batch_uid!r}")
        run = self._run
        if run.pending is not None:
            run.pending["artifacts"].append({"batchUid": batch_uid, "data": data})
        else:
            await run.send({"artifacts": [{"batchUid": batch_uid, "data": data}]})
        return {"task_id": run.task.task_id, "batch_uid": batch_uid}

    async def complete(self) -> None:
        """Say that this task will write no more artifacts."""
        await self._run.send({"artifactsComplete": True})


class RunContext:
    """A batch handler's tools, besides the task."""

    def __init__(self, run: "_Run") -> None:
        self._run = run
        #: The task being run.
        self.task: Task = run.task
        self.worker_id: str = run.worker.worker_id
        self.attempt: int = run.task.attempt
        #: Set when the run is asked to stop: cancelled, timed out, lease lost, worker shutting down.
        self.cancel_flag = asyncio.Event()
        #: Once `cancel_flag` is set: `{"reason": "coordinator" | "timeout" | "lease_lost" | "worker_shutdown"}`.
        self.cancel_meta: dict[str, Any] = {}
        self.artifacts_writer = ArtifactsWriter(run)

    @property
    def artifacts(self) -> ArtifactsWriter:
        """The same as `artifacts_writer` (the TypeScript name)."""
        return self.artifacts_writer

    @property
    def checkpoint(self) -> Any:
        """The last checkpoint saved, by this attempt or an earlier one; None when none."""
        return self._run.checkpoint

    async def save_checkpoint(self, state: Any) -> None:
        """Save the state to resume from (a JSON value). Within `process_batch` it is recorded
        with the batch, in the same transaction; elsewhere, at once. Returns once recorded."""
        run = self._run
        run.checkpoint = state
        if run.pending is not None:
            run.pending["checkpoint"] = state
        else:
            await run.send({"checkpoint": state})

    @property
    def cancel_reason(self) -> str | None:
        """The same as `cancel_meta.get("reason")`."""
        return self.cancel_meta.get("reason")

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics of the batches this attempt processed, summed."""
        return dict(self._run.metrics)

    @property
    def batches_done(self) -> frozenset[str]:
        """Batch uids done, by this attempt or an earlier one."""
        return frozenset(self._run.done)

    @property
    def total_processed(self) -> int:
        """Batches this attempt processed and recorded."""
        return self._run.processed

    def progress(self, percent: float, message: str | None = None, data: dict[str, Any] | None = None) -> Any:
        """Report the task's progress (0-100); awaitable, or call it without `await`."""
        return self._run.worker.send_task_progress(percent, message, data)

    def _stopped(self) -> None:
        """Raise if the run was asked to stop (the foreman's word may arrive on another thread)."""
        task = self.task
        if task.cancel_event.is_set() and not self.cancel_flag.is_set():
            self._cancel(task.cancel_reason)
        if self.cancel_flag.is_set():
            raise asyncio.CancelledError(f"task {task.task_id} was asked to stop ({self.cancel_meta.get('reason')})")

    def _cancel(self, reason: str | None) -> None:
        self.cancel_meta.setdefault("reason", reason or "coordinator")
        self.cancel_flag.set()


def _add_metrics(into: dict[str, float], m: Mapping[str, Any] | None) -> None:
    for k, v in (m or {}).items():
        into[k] = into.get(k, 0) + v


def _check_metrics(m: Any, what: str) -> dict[str, float] | None:
    if m is None:
        return None
    if not isinstance(m, Mapping):
        raise TypeError(f"{what}: metrics must be a dict of names to numbers, got {type(m).__name__}")
    for k, v in m.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            raise TypeError(f"{what}: metric {k!r} must be a finite number, got {v!r}")
    return dict(m)


def _as(kind: type, value: Any, what: str) -> Any:
    """A handler's return as `kind` (BatchResult, FinalizationResult): the dataclass, or a dict of its fields."""
    if isinstance(value, kind) or value is None:
        return value
    names = {f.name for f in dataclasses.fields(kind)}
    if isinstance(value, Mapping) and set(value) <= names:
        return kind(**value)
    raise TypeError(f"{what} must return a {kind.__name__} (or a dict of {', '.join(sorted(names))}), got {type(value).__name__}")


def _batch_of(item: Any, where: str) -> Batch:
    if isinstance(item, Batch):
        b = item
    elif isinstance(item, Mapping) and ("batch_uid" in item or "batchUid" in item):
        b = Batch(item.get("batch_uid", item.get("batchUid")), item.get("payload"))
    else:
        raise TypeError(f"{where}: iter_batches must yield Batch(batch_uid, payload), got {type(item).__name__}")
    if not isinstance(b.batch_uid, str) or not b.batch_uid or len(b.batch_uid) > MAX_BATCH_UID:
        raise ValueError(f"{where}: a batch uid must be a string of 1 to {MAX_BATCH_UID} characters, got {b.batch_uid!r}")
    return b


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    """True when `iter_batches` takes the run context too (`iter_batches(input_data, ctx)`)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _iterate(source: Any, where: str) -> AsyncIterator[Any]:
    """Items of what `iter_batches` returned: an async iterable, a plain one, or an awaitable of either."""
    if inspect.isawaitable(source) and not hasattr(source, "__aiter__"):
        source = await source
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
    elif hasattr(source, "__iter__"):
        for item in source:
            yield item
    else:
        raise TypeError(f"{where}: iter_batches must return an async or plain iterable of batches, got {type(source).__name__}")


@dataclass(eq=False)
class _Run:
    """One attempt of a batch handler's task: what it did, and how it tells the foreman."""

    worker: "Worker"
    task: Task
    checkpoint: Any = None
    done: set[str] = field(default_factory=set)
    metrics: dict[str, float] = field(default_factory=dict)
    processed: int = 0
    #: While `process_batch` runs, what it saves waits for the batch, to be recorded with it.
    pending: dict[str, Any] | None = None

    async def send(self, parts: dict[str, Any]) -> None:
        """Record `parts` on the foreman; raises CC_ERR_WORKER_LOST (and stops the run) when
        the foreman no longer counts this attempt as this worker's."""
        worker, task = self.worker, self.task
        message = {"type": "task_record", "taskId": task.task_id, "attempt": task.attempt, **parts}
        try:
            size = len(json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())
        except (TypeError, ValueError) as err:
            raise TypeError(f"task {task.task_id}: what it records (artifacts, checkpoint, metrics) must be JSON: {err}") from err
        limit = worker._max_payload
        if size > limit:
            raise PayloadTooLargeError("CC_ERR_PAYLOAD_TOO_LARGE", f"task {task.task_id}: a record of {size} bytes (its artifacts and checkpoint) is over the {limit} bytes the foreman accepts in a message (--max-payload)")
        ack = await worker._request(message)
        if ack.get("type") != "task_record_ack":
            raise CrowdComputeError("CC_ERR_BAD_MESSAGE", f"the foreman answered a task_record with {ack.get('type')}")
        if not ack.get("recorded"):
            if worker._runner is not None:
                worker._runner.cancel(task.task_id, task.attempt, f"the foreman no longer counts task {task.task_id} attempt {task.attempt} as worker {worker.worker_id}'s", "lease_lost")
            raise CrowdComputeError("CC_ERR_WORKER_LOST", f"task {task.task_id} attempt {task.attempt} is no longer this worker's ({worker.worker_id}); stopping", {"cancelReason": "lease_lost"})

    async def pull(self, query: dict[str, Any]) -> Mapping[str, Any]:
        answer = await self.worker._request({"type": "pull_artifacts", "taskId": self.task.task_id, "attempt": self.task.attempt, **query})
        if answer.get("type") != "artifacts_pulled":
            raise CrowdComputeError("CC_ERR_BAD_MESSAGE", f"the foreman answered pull_artifacts with {answer.get('type')}")
        return answer


def batch_classifier(h: Any) -> Callable[[BaseException], tuple[str, bool]]:
    """A batch handler's `classify_error`, as the worker's registry takes it. Errors the system
    raised (CrowdComputeError) keep their code, and are retried unless retrying cannot help."""
    classify = getattr(h, "classify_error", None)

    def classifier(error: BaseException) -> tuple[str, bool]:
        if isinstance(error, CrowdComputeError):
            return error.code, error.code in _NEVER_RETRIED
        if callable(classify):
            reason, permanent = classify(error)
            return str(reason), bool(permanent)
        return "", False  # unclassified: the error's own code stands, and it is retried

    return classifier


async def _run_batches(h: Any, run: _Run, ctx: RunContext) -> Any:
    task = run.task
    where = f"task {task.task_id} ({task.type})"
    graph = task.graph or {}
    if callable(getattr(h, "init", None)):
        await _maybe_await(h.init({
            "task_id": task.task_id, "job_id": task.job_id, "node_id": graph.get("nodeId"), "type": task.type,
            "attempt": task.attempt, "input": task.input_data, "resumed": task.resume is not None,
        }))
    # A graph node with an input adapter reads its upstream nodes' artifacts instead of iter_batches.
    if graph.get("inputAdapter") and graph.get("inputArgs"):
        default_poll = getattr(run.worker, "pull_poll_ms_default", None) or DEFAULT_POLL_MS
        source: Any = (Batch(uid, payload) async for uid, payload in adapter_batches(
            graph["inputAdapter"], graph["inputArgs"], run.pull, ctx._stopped, f'node "{graph.get("nodeId")}" ({where})', default_poll))
    else:
        source = h.iter_batches(task.input_data, ctx) if _takes_ctx(h.iter_batches) else h.iter_batches(task.input_data)
    async for item in _iterate(source, where):
        ctx._stopped()
        batch = _batch_of(item, where)
        if batch.batch_uid in run.done:
            continue
        run.pending = {"artifacts": [], "checkpoint": _UNSET}
        try:
            result = _as(BatchResult, await _maybe_await(h.process_batch(batch, ctx)), f"{type(h).__name__}.process_batch")
        finally:
            saved, run.pending = run.pending, None
        if result is None or result.success is False:
            raise BatchFailedError((result.error if result else None) or f"batch {batch.batch_uid} of task {task.task_id} did not succeed")
        metrics = _check_metrics(result.metrics, f"batch {batch.batch_uid} of task {task.task_id}")
        # A cancelled run records nothing more: its batch runs again on the next attempt, if any.
        ctx._stopped()
        parts: dict[str, Any] = {"batch": {"uid": batch.batch_uid, **({"metrics": metrics} if metrics else {})}}
        if saved["artifacts"]:
            parts["artifacts"] = saved["artifacts"]
        if saved["checkpoint"] is not _UNSET:
            parts["checkpoint"] = saved["checkpoint"]
        await run.send(parts)
        _add_metrics(run.metrics, metrics)
        run.done.add(batch.batch_uid)
        run.processed += 1
    fin = None
    if callable(getattr(h, "finalize", None)):
        fin = _as(FinalizationResult, await _maybe_await(h.finalize(ctx)), f"{type(h).__name__}.finalize")
    fin_metrics = _check_metrics(fin.metrics, f"finalize of task {task.task_id}") if fin else None
    if fin_metrics:
        await run.send({"batch": {"uid": FINALIZE_BATCH_UID, "metrics": fin_metrics}})
        _add_metrics(run.metrics, fin_metrics)
    # As the TypeScript runtime: the task's result is what finalize gives as `result`, else None.
    return fin.result if fin else None


class BatchFailedError(Exception):
    """A batch whose `process_batch` returned `success=False`."""


def batch_task_handler(worker: "Worker", h: Any) -> tuple[Callable[[Task], Any], Callable[[BaseException], tuple[str, bool]]]:
    """Turn a batch handler into a task handler that records as it goes and resumes where the
    last attempt stopped; and the classifier for its errors."""

    async def run_task(task: Task) -> Any:
        resume = task.resume or {}
        run = _Run(worker, task, checkpoint=resume.get("checkpoint"), done=set(resume.get("batches") or []))
        ctx = RunContext(run)
        inner = asyncio.get_running_loop().create_task(_run_batches(h, run, ctx))
        try:
            # Shielded: a cancellation (cancel, timeout, lease lost, shutdown) first sets the
            # context's cancel_flag and cancel_meta, and only then interrupts the handler, so
            # that a handler catching CancelledError can read why.
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if not inner.done():
                ctx._cancel(task.cancel_reason)
                inner.cancel()
                await asyncio.wait([inner])
            raise

    return run_task, batch_classifier(h)

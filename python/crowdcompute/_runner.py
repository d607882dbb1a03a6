"""Runs the tasks a worker was given: each with its handler, under its deadline; cancellations
and timeouts reach the handler (an `async def` handler is cancelled, a plain `def` one, which
runs in a thread, sees `task.cancel_event`), and exactly one ending is reported per attempt."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
import traceback
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable

from ._code_pool import ChunkError, ChunkFailed, CodePool
from ._patterns import best_pattern
from .errors import CrowdComputeError, NonRetryableError
from .task import Task

#: A handler: takes the task, returns its result (any JSON value) or raises.
Handler = Callable[[Task], Any]
#: Decides whether an error is permanent: `(reason, permanent)`, as FlowKit's `classify_error`.
Classifier = Callable[[BaseException], "tuple[str, bool]"]


@dataclass
class HandlerEntry:
    pattern: str
    handler: Handler
    is_async: bool
    classify_error: Classifier | None = None


class HandlerRegistry:
    """Handlers by pattern (`image.*`); the most specific pattern matching a type wins."""

    def __init__(self) -> None:
        self._entries: dict[str, HandlerEntry] = {}
        self._cache: dict[str, HandlerEntry | None] = {}

    def add(self, pattern: str, handler: Handler, classify_error: Classifier | None = None) -> None:
        if not isinstance(pattern, str) or not pattern or not callable(handler):
            raise TypeError("register_handler(pattern, handler): pattern must be a non-empty string and handler callable")
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None))
        self._entries[pattern] = HandlerEntry(pattern, handler, is_async, classify_error)
        self._cache.clear()

    @property
    def patterns(self) -> list[str]:
        return list(self._entries)

    def find(self, task_type: str) -> HandlerEntry | None:
        try:
            return self._cache[task_type]
        except KeyError:
            pattern = best_pattern(self._entries, task_type)
            entry = self._entries[pattern] if pattern is not None else None
            if len(self._cache) < 10_000:
                self._cache[task_type] = entry
            return entry


def describe_error(error: BaseException, entry: HandlerEntry | None) -> dict[str, Any]:
    """What a handler raised, in the wire's form: message, class name, Python traceback, code, retryable."""
    if isinstance(error, CrowdComputeError):
        out: dict[str, Any] = {"message": error.message, "name": type(error).__name__, "code": error.code}
        if error.details:
            out["details"] = error.details
    else:
        out = {"message": str(error) or type(error).__name__, "name": type(error).__name__}
        code = getattr(error, "code", None)
        if isinstance(code, (str, int)) and not isinstance(code, bool):
            out["code"] = str(code)
    out["stack"] = "".join(traceback.format_exception(error))[-16_000:]
    if isinstance(error, NonRetryableError):
        out["retryable"] = False
    elif entry is not None and entry.classify_error is not None:
        try:
            reason, permanent = entry.classify_error(error)
            out["retryable"] = not permanent
            if reason:
                out["code"] = str(reason)
        except Exception:
            pass  # a broken classifier does not hide the original error
    return out


def task_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"message": f"{code}: {message}", "code": code, **extra}


class Running:
    """One attempt running on this worker (a plain class with slots: one is made per task)."""

    __slots__ = ("task", "started_at", "entry", "aio", "settled", "forced", "timer", "progress", "progress_message", "started_wall", "begun", "deadline", "kill")

    def __init__(self, task: Task, started_at: float, entry: HandlerEntry | None) -> None:
        self.task = task
        self.started_at = started_at
        self.entry = entry
        self.aio: "asyncio.Future[Any] | None" = None
        self.settled = False
        self.forced: dict[str, Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.progress: float | None = None
        self.progress_message: str | None = None
        self.started_wall = time.time()
        #: The handler's coroutine has started (a task cancelled before that never runs it).
        self.begun = False
        #: The shared timer its timeout is counted by, until it ends.
        self.deadline: _Deadline | None = None
        #: Stops a map chunk's process (timeout, cancellation), once it runs.
        self.kill: Callable[[str], None] | None = None


class _Deadline:
    """Tasks started in one turn of the loop with the same timeout share one timer (a timer
    per task costs as much as the rest of a no-op task), armed at the end of that turn: each
    task gets at least its whole timeout, and at most that turn's length more."""

    __slots__ = ("timeout_ms", "members", "handle")

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        #: The tasks still running (a dict as an ordered set).
        self.members: dict[Running, None] = {}
        self.handle: asyncio.TimerHandle | None = None


#: The task whose handler is running in this context (what `send_task_progress` reports on).
current: contextvars.ContextVar[Running | None] = contextvars.ContextVar("crowdcompute_current_task", default=None)


class TaskRunner:
    def __init__(
        self,
        *,
        worker_id: str,
        handlers: HandlerRegistry,
        executor: Executor | None,
        log: logging.Logger,
        timeout_grace: float,
        started: Callable[[Task], None],
        finished: Callable[[Running, dict[str, Any]], None],
        code: CodePool | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.handlers = handlers
        self.executor = executor
        self.log = log
        self.timeout_grace = timeout_grace
        self._started = started
        self._finished = finished
        #: Runs map jobs' functions; None when the worker refuses shipped code.
        self.code = code
        self.running: dict[str, Running] = {}
        self._idle: list[asyncio.Future[None]] = []
        #: This turn's deadlines by timeout, armed at the end of the turn.
        self._forming: dict[int, _Deadline] = {}

    @property
    def size(self) -> int:
        """Tasks running now."""
        return len(self.running)

    def refs(self) -> list[dict[str, Any]]:
        return [{"taskId": r.task.task_id, "attempt": r.task.attempt} for r in self.running.values()]

    def start(self, task: Task) -> None:
        existing = self.running.get(task.task_id)
        if existing is not None and existing.task.attempt >= task.attempt:
            return  # the same assignment again
        loop = asyncio.get_running_loop()
        is_map = task.kind == "map"
        entry = None if is_map else self.handlers.find(task.type)
        r = Running(task, time.monotonic(), entry)
        self.running[task.task_id] = r
        self._started(task)
        if is_map:
            if self.code is None:
                self._settle(r, {"status": "failed", "error": task_error(
                    "CC_ERR_CODE_NOT_ALLOWED", f"worker {self.worker_id} was started without allow_code and will not run shipped code (job {task.job_id})")})
                return
            self._time(r, loop)
            r.aio = loop.create_task(self._run_map(r, self.code))
            return
        if entry is None:
            patterns = ", ".join(self.handlers.patterns) or "none"
            self._settle(r, {"status": "failed", "error": task_error(
                "CC_ERR_NO_HANDLER", f'worker {self.worker_id} has no handler for task type "{task.type}" (patterns: {patterns})', retryable=False)})
            return
        self._time(r, loop)
        if entry.is_async:
            # The coroutine reports its own ending: no done callback, no extra turn of the loop.
            r.aio = loop.create_task(self._run_async(r, entry.handler))
        else:
            r.aio = asyncio.ensure_future(self._run_threaded(r, entry.handler, loop))
            r.aio.add_done_callback(partial(self._done, r))

    def _time(self, r: Running, loop: asyncio.AbstractEventLoop) -> None:
        """Put the task on the deadline of its timeout (shared with the tasks started in this turn)."""
        timeout_ms = r.task.timeout_ms
        if timeout_ms:
            d = self._forming.get(timeout_ms)
            if d is None:
                if not self._forming:
                    loop.call_soon(self._arm_deadlines)
                d = self._forming[timeout_ms] = _Deadline(timeout_ms)
            d.members[r] = None
            r.deadline = d

    async def _run_map(self, r: Running, pool: CodePool) -> None:
        task = r.task
        r.begun = True

        def on_start(kill: Callable[[str], None]) -> None:
            r.kill = kill
            if r.forced is not None:
                kill("cancelled")  # stopped while its process was starting

        try:
            if not isinstance(task.input_data, list):
                raise ChunkError("CC_ERR_BAD_MESSAGE", f"map task {task.task_id} has no argument list")
            results = await pool.run(task.job_id, task.input_data, task.arg_offset, on_start)
        except ChunkFailed as err:
            error: dict[str, Any] = {"message": err.message, "name": "ChunkFailedError", "code": err.code, "details": err.details}
            if err.stack:
                error["stack"] = err.stack
            self._settle(r, {"status": "failed", "error": error, "result": err.partial_results})
        except ChunkError as err:
            error = {"message": err.message, "name": err.name or "Error", "code": err.code}
            if err.stack:
                error["stack"] = err.stack
            if err.retryable is not None:
                error["retryable"] = err.retryable
            self._settle(r, {"status": "failed", "error": error})
        except asyncio.CancelledError:
            if r.kill:
                r.kill("cancelled")
            self._settle(r, r.forced or {"status": "cancelled", "error": task_error("CC_ERR_CANCELLED", f"task {task.task_id} was cancelled")})
            raise
        except Exception as err:
            self._settle(r, {"status": "failed", "error": describe_error(err, None)})
        else:
            self._settle(r, {"status": "completed", "result": results})

    async def _run_async(self, r: Running, handler: Handler) -> None:
        r.begun = True
        current.set(r)
        try:
            result = await handler(r.task)
        except asyncio.CancelledError:
            # By a timeout or cancel_task (forced ending) or by abandon_all (settled already).
            self._settle(r, r.forced or {"status": "cancelled", "error": task_error("CC_ERR_CANCELLED", f"task {r.task.task_id} was cancelled")})
            raise
        except BaseException as err:
            self._settle(r, {"status": "failed", "error": describe_error(err, r.entry)})
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            self._settle(r, {"status": "completed", "result": result})

    async def _run_threaded(self, r: Running, handler: Handler, loop: asyncio.AbstractEventLoop) -> Any:
        def call() -> Any:
            token = current.set(r)
            try:
                return handler(r.task)
            finally:
                current.reset(token)

        result = await loop.run_in_executor(self.executor, call)
        if inspect.isawaitable(result):
            current.set(r)
            result = await result
        return result

    def _done(self, r: Running, fut: "asyncio.Future[Any]") -> None:
        if fut.cancelled():
            # Cancelled by a timeout or cancel_task (forced ending) or by abandon_all (settled already).
            self._settle(r, r.forced or {"status": "cancelled", "error": task_error("CC_ERR_CANCELLED", f"task {r.task.task_id} was cancelled")})
            return
        err = fut.exception()
        if err is None:
            self._settle(r, {"status": "completed", "result": fut.result()})
        else:
            self._settle(r, {"status": "failed", "error": describe_error(err, r.entry)})

    def _arm_deadlines(self) -> None:
        loop = asyncio.get_running_loop()
        for d in self._forming.values():
            if d.members:
                d.handle = loop.call_later(d.timeout_ms / 1000, self._expire, d)
        self._forming.clear()

    def _expire(self, d: _Deadline) -> None:
        d.handle = None
        for r in list(d.members):
            self._interrupt(r, "timeout", f"task {r.task.task_id} exceeded its timeout of {r.task.timeout_ms} ms", "timeout")

    @staticmethod
    def _untime(r: Running) -> None:
        """Take an ending task off its deadline (whose timer goes once no task is left on it)."""
        d = r.deadline
        if d is not None:
            r.deadline = None
            d.members.pop(r, None)
            if not d.members and d.handle is not None:
                d.handle.cancel()
                d.handle = None

    def cancel(self, task_id: str, attempt: int, reason: str, cause: str = "coordinator") -> None:
        r = self.running.get(task_id)
        if r is not None and r.task.attempt == attempt:
            self._interrupt(r, "cancelled", reason, cause)

    def abandon_all(self, reason: str) -> list[dict[str, Any]]:
        """Stop every running task without reporting an ending (they are handed back unfinished)."""
        refs = self.refs()
        for r in self.running.values():
            r.settled = True
            self._untime(r)
            if r.timer:
                r.timer.cancel()
            r.task.cancel_reason = "worker_shutdown"
            r.task.cancel_event.set()
            if r.kill is not None:
                r.kill("cancelled")
            if r.aio is not None:
                r.aio.cancel()
        self.running.clear()
        self._wake_idle()
        return refs

    async def wait_idle(self, timeout: float) -> None:
        if not self.running:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass

    def _wake_idle(self) -> None:
        if not self.running:
            for f in self._idle:
                if not f.done():
                    f.set_result(None)
            self._idle.clear()

    def _interrupt(self, r: Running, kind: str, message: str, cause: str) -> None:
        """Stop a task (cancel, timeout): cancel its handler, then give it `timeout_grace` to
        return before its slot is freed regardless. The ending is decided here."""
        if r.settled or r.forced is not None:
            return
        if kind == "timeout":
            r.forced = {"status": "failed", "error": task_error("CC_ERR_TIMEOUT", message, name="TimeoutError", retryable=True)}
        else:
            r.forced = {"status": "cancelled", "error": task_error("CC_ERR_CANCELLED", message, name="CancelledError")}
        self.log.info(message, extra={"task_id": r.task.task_id, "job_id": r.task.job_id, "reason": kind})
        r.task.cancel_reason = "timeout" if kind == "timeout" else cause
        r.task.cancel_event.set()
        self._untime(r)
        if r.timer:
            r.timer.cancel()
        if r.kill is not None:
            r.kill(kind)
        if r.aio is not None and r.entry is not None and r.entry.is_async:
            r.aio.cancel()
            if not r.begun:
                # Cancelled before its handler started: the handler never runs, so nothing
                # else would report the ending.
                self._settle(r, r.forced)
                return
        forced = r.forced
        r.timer = asyncio.get_running_loop().call_later(self.timeout_grace, self._settle, r, forced)

    def _settle(self, r: Running, ending: dict[str, Any]) -> None:
        if r.settled:
            return
        r.settled = True
        self._untime(r)
        if r.timer:
            r.timer.cancel()
        if self.running.get(r.task.task_id) is r:
            del self.running[r.task.task_id]
        self._finished(r, r.forced or ending)
        self._wake_idle()


def awaitable_none() -> Awaitable[None]:
    """Something `await` accepts that is already done: lets a call work with and without `await`."""
    return _Done()


class _Done:
    __slots__ = ()

    def __await__(self):  # type: ignore[no-untyped-def]
        return iter(())

"""The Python worker: connects to a foreman, says a signed hello, heartbeats, runs the tasks it
is given with the handlers registered for their types, and reports every outcome, kept until
acknowledged and sent again after a reconnect. It behaves as the TypeScript worker does, with
the DistWorker SDK's names (`Worker`, `register_handler`, `send_task_progress`, `Task`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Iterable

from . import _runner
from ._batch import batch_task_handler, is_batch_handler
from ._code_pool import CodePool
from ._link import CloseInfo, ForemanLink, encode_json
from ._outbox import ResultOutbox
from ._runner import Classifier, Handler, HandlerRegistry, Running, TaskRunner, task_error
from ._version import PROTOCOL_VERSION, __version__
from .auth import check_worker_token, dialed_host, sign_hello
from .credentials import local_worker_token_at
from .errors import ConnectionFailedError, CrowdComputeError, InvalidRequestError, ShuttingDownError, UnauthorizedError
from .task import Task, wire_files

log = logging.getLogger("crowdcompute.worker")

DEFAULT_FOREMAN = "ws://localhost:8000/ws"
#: The deepest a result may nest JSON (the foreman refuses the whole frame past it).
MAX_VALUE_DEPTH = 64
MAX_CAPACITY = 10_000
#: A result's JSON: NaN and Infinity refused (they are not JSON), as the foreman would.
_encode_result = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
#: A string as JSON (ensure_ascii=False), as the encoders write one.
_encode_string: Callable[[str], str] = getattr(json.encoder, "encode_basestring")  # C-accelerated; not in typeshed
HOUR = 3600.0
#: The address space a map function's process may use, MiB (RLIMIT_AS; 0 = no limit).
DEFAULT_CODE_MEMORY_MB = 1024

#: DistWorker's `resource_info` keys, as the protocol names them.
_RESOURCE_KEYS = {"cpu_cores": "cpuCores", "memory_mb": "memoryMb", "gpus": "gpu"}


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _bound(name: str, value: float, low: float, high: float, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"Worker: {name} must be a number, got {value!r}")
    if value < low or value > high:
        raise ValueError(f"Worker: {name} must be between {low:g} and {high:g}{unit}, got {value:g}")
    return value


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests lists and dicts more than `limit` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, tuple)):
            if depth + 1 > limit:
                return True
            stack.extend((x, depth + 1) for x in v if isinstance(x, (list, tuple, dict)))
        elif isinstance(v, dict):
            if depth + 1 > limit:
                return True
            stack.extend((x, depth + 1) for x in v.values() if isinstance(x, (list, tuple, dict)))
    return False


def machine_resources() -> dict[str, Any]:
    """What the worker tells the foreman about its machine unless told otherwise."""
    out: dict[str, Any] = {
        "platform": f"{sys.platform}-{platform.machine().lower() or 'unknown'}",
        "runtime": f"python {platform.python_version()}",
    }
    if os.cpu_count():
        out["cpuCores"] = os.cpu_count()
    try:
        out["memoryMb"] = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024 * 1024))
    except (ValueError, OSError, AttributeError):
        pass
    return out


class WorkerStats:
    """What a worker has done since it started."""

    def __init__(self) -> None:
        self.tasks_completed = 0
        self.tasks_failed = 0
        self.tasks_cancelled = 0
        self.total_execution_time = 0.0
        self.started_at = time.time()
        #: Times the foreman accepted this worker's hello.
        self.connects = 0


class Worker:
    """A worker of a CrowdCompute foreman.

    Every parameter has a default: the foreman URL from `CROWDCOMPUTE_FOREMAN` (or
    `DISTWORKER_CONTROLLER_URL`), else ws://localhost:8000/ws; the id from
    `CROWDCOMPUTE_WORKER_ID` (or `DISTWORKER_WORKER_ID`), else host-pid-random; the token from
    `CROWDCOMPUTE_WORKER_TOKEN` (or `DISTWORKER_WORKER_TOKEN`), else the one a foreman on this
    machine left in the local credentials file for that URL (none is needed by a foreman
    started with --insecure).

    `allow_code=True` makes it run map jobs of Python functions: natively, in a pool of child
    processes, NOT sandboxed (a shipped function can do whatever this worker's user can), so
    only for foremen whose submitters are trusted. Each process may use `code_memory_mb` of
    address space (RLIMIT_AS; 0 = no limit) and `code_cpu_seconds` of CPU per chunk
    (RLIMIT_CPU; 0 = no limit, the task's timeout still applies).
    """

    def __init__(
        self,
        controller_url: str | list[str] | None = None,
        worker_id: str | None = None,
        worker_token: str | None = None,
        queue_patterns: list[str] | None = None,
        resource_info: dict[str, Any] | None = None,
        reconnect_interval: float = 1.0,
        heartbeat_interval: float | None = None,
        max_reconnect_attempts: int = -1,
        *,
        foreman_url: str | list[str] | None = None,
        max_concurrent_tasks: int = 4,
        auto_restart: bool = True,
        timeout_grace: float = 1.0,
        drain_timeout: float = 30.0,
        handle_signals: bool = True,
        version: str | None = None,
        logger: logging.Logger | None = None,
        allow_code: bool = False,
        code_memory_mb: int = DEFAULT_CODE_MEMORY_MB,
        code_cpu_seconds: int = 0,
    ) -> None:
        given = foreman_url if foreman_url is not None else controller_url
        if given is None:
            given = _env("CROWDCOMPUTE_FOREMAN", "DISTWORKER_CONTROLLER_URL") or DEFAULT_FOREMAN
        urls = [u.strip() for u in (given if isinstance(given, list) else str(given).split(",")) if u.strip()]
        if not urls:
            raise TypeError("Worker: controller_url is required (e.g. ws://localhost:8000/ws)")
        for u in urls:
            if not u.startswith(("ws://", "wss://")):
                raise ValueError(f"Worker: the foreman URL must be ws:// or wss:// (e.g. ws://localhost:8000/ws), got {u!r}")
        self.foreman_urls = urls
        self.worker_id: str = worker_id or _env("CROWDCOMPUTE_WORKER_ID", "DISTWORKER_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        token = worker_token or _env("CROWDCOMPUTE_WORKER_TOKEN", "DISTWORKER_WORKER_TOKEN")
        if token is None:
            token = next((t for t in (local_worker_token_at(u) for u in urls) if t), None)
        if token is not None:
            check_worker_token(token)
        self._token = token
        self.queue_patterns = list(queue_patterns) if queue_patterns else None
        self.max_concurrent_tasks = int(_bound("max_concurrent_tasks", max_concurrent_tasks, 1, MAX_CAPACITY))
        self.reconnect_interval = _bound("reconnect_interval", reconnect_interval, 0.001, HOUR, " s")
        self.heartbeat_interval = None if heartbeat_interval is None else _bound("heartbeat_interval", heartbeat_interval, 0.001, HOUR, " s")
        self.max_reconnect_attempts = int(_bound("max_reconnect_attempts", max_reconnect_attempts, -1, 1e9))
        self.timeout_grace = _bound("timeout_grace", timeout_grace, 0, HOUR, " s")
        self.drain_timeout = _bound("drain_timeout", drain_timeout, 0, 24 * HOUR, " s")
        self.auto_restart = auto_restart
        self.handle_signals = handle_signals
        self.version = version or f"crowdcompute-python {__version__}"
        #: Runs map jobs' Python functions (natively, in child processes: not sandboxed).
        self.allow_code = bool(allow_code)
        self.code_memory_mb = int(_bound("code_memory_mb", code_memory_mb, 0, 1e9, " MiB"))
        self.code_cpu_seconds = int(_bound("code_cpu_seconds", code_cpu_seconds, 0, 30 * 24 * HOUR, " s"))
        self.resources = machine_resources()
        if self.allow_code:
            # Shown by the dashboard: this worker runs shipped functions without a sandbox.
            self.resources["codeSandbox"] = "none"
        for key, value in (resource_info or {}).items():
            self.resources[_RESOURCE_KEYS.get(key, key)] = value
        self.log = logger or log
        self.stats = WorkerStats()
        #: The last 20 connections, disconnections and failed attempts, newest last.
        self.connection_history: deque[dict[str, Any]] = deque(maxlen=20)
        self._handlers = HandlerRegistry()
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._state = "idle"
        self._welcomed = False
        self._max_payload = 8 * 1024 * 1024
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: ForemanLink | None = None
        self._runner: TaskRunner | None = None
        self._outbox: ResultOutbox | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._code: CodePool | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # assign_tasks messages read on this connection, told in every heartbeat: the foreman
        # then expects in `running` only the tasks of messages this worker had read.
        self._assignments_read = 0
        self._start_waiters: list[asyncio.Future[None]] = []
        self._stop_task: asyncio.Task[None] | None = None
        self._stopped_event: asyncio.Event | None = None
        self._pending: dict[str, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._request_seq = 0
        self._last_refusal: str | None = None
        self._http_base = ""

    # ------------------------------------------------------------------ API

    def register_handler(self, pattern: str, handler: Handler | Any, *, classify_error: Classifier | None = None) -> "Worker":
        """Run tasks whose type matches `pattern` (`math.*`) with `handler`: an `async def`
        (run on the event loop, cancelled on cancel or timeout) or a plain `def` (run in a
        thread pool of `max_concurrent_tasks` threads), given the `Task`, returning its result;
        or a batch handler (`iter_batches`, `process_batch`, … as `crowdcompute.flowkit.Handler`),
        whose batches, artifacts and checkpoints are recorded as it goes. Chainable."""
        if is_batch_handler(handler):
            handler, classify = batch_task_handler(self, handler)
            classify_error = classify_error or classify
        if not callable(handler):
            raise TypeError(f"register_handler({pattern!r}, handler): the handler must be callable, got {type(handler).__name__}")
        self._handlers.add(pattern, handler, classify_error)
        return self

    def handle(self, pattern: str, handler: Handler | Any, **kwargs: Any) -> "Worker":
        """The same as `register_handler` (the TypeScript worker's name)."""
        return self.register_handler(pattern, handler, **kwargs)

    @property
    def patterns(self) -> list[str]:
        """What the worker asks the foreman for: `queue_patterns` if given, else the handlers' patterns."""
        return self.queue_patterns if self.queue_patterns is not None else self._handlers.patterns

    @property
    def status(self) -> str:
        """`idle`, `connecting`, `connected`, `draining` or `stopped`."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._welcomed and self._link is not None and self._link.connected

    @property
    def foreman_url(self) -> str:
        return self._link.current_url if self._link else self.foreman_urls[0]

    @property
    def running_tasks(self) -> list[dict[str, Any]]:
        """Tasks running now: id, job, type, attempt, start time, last progress."""
        if not self._runner:
            return []
        return [{
            "task_id": r.task.task_id, "job_id": r.task.job_id, "type": r.task.type, "attempt": r.task.attempt,
            "started_at": r.started_wall, "progress": r.progress, "progress_message": r.progress_message,
        } for r in self._runner.running.values()]

    @property
    def unacked_count(self) -> int:
        return self._outbox.size if self._outbox else 0

    def on(self, event: str, listener: Callable[..., Any]) -> "Worker":
        """Listen to `connected`, `disconnected`, `task_started`, `task_finished`, `acked`,
        `result_refused`, `foreman_error`, `error` (reconnection gave up) or `stopped`."""
        self._listeners.setdefault(event, []).append(listener)
        return self

    def _emit(self, event: str, *args: Any) -> None:
        for listener in self._listeners.get(event, ()):
            try:
                listener(*args)
            except Exception:
                self.log.exception("a %s listener raised", event)

    def send_task_progress(self, progress: float, message: str | None = None, data: dict[str, Any] | None = None) -> Awaitable[None]:
        """Report progress (0-100, clamped; the message is cut at 1,000 characters) of the task
        whose handler calls this, from an `async def` handler (awaitable) or a plain one."""
        r = _runner.current.get()
        if r is None:
            raise RuntimeError("send_task_progress() reports on the task whose handler calls it; call it from inside a handler")
        loop = self._loop
        if loop is None:
            return _runner.awaitable_none()
        try:
            running_here = asyncio.get_running_loop() is loop
        except RuntimeError:
            running_here = False
        if running_here:
            self._progress(r, progress, message, data)
        else:
            loop.call_soon_threadsafe(self._progress, r, progress, message, data)
        return _runner.awaitable_none()

    def _progress(self, r: Running, progress: float, message: str | None, data: dict[str, Any] | None) -> None:
        if r.settled or self._link is None:
            return
        try:
            p = max(0.0, min(100.0, float(progress)))
        except (TypeError, ValueError):
            p = 0.0
        if p != p:
            p = 0.0
        r.progress = p
        msg: dict[str, Any] = {"type": "task_progress", "taskId": r.task.task_id, "attempt": r.task.attempt, "progress": p}
        if message is not None:
            r.progress_message = msg["message"] = str(message)[:1000]
        if data:
            msg["data"] = data
        self._link.send(msg)

    async def start(self) -> None:
        """Connect; returns once the foreman accepted the hello. Raises when reconnection gives
        up first (`max_reconnect_attempts`) or the credential is refused. Safe to call twice."""
        if self._state == "stopped":
            raise ShuttingDownError("CC_ERR_SHUTTING_DOWN", f"worker {self.worker_id} was stopped; create a new one")
        loop = asyncio.get_running_loop()
        if self._state == "idle":
            if not self.patterns and not self.allow_code:
                self.log.warning("worker %s has no handlers and allow_code is off: it will receive no tasks", self.worker_id)
            self._loop = loop
            self._stopped_event = asyncio.Event()
            self._executor = ThreadPoolExecutor(max_workers=self.max_concurrent_tasks, thread_name_prefix=f"cc-{self.worker_id}")
            # Outcomes are batched as the link makes its frame: they leave in the turn they were made.
            def schedule(flush: Callable[[], None]) -> None:
                if self._link:
                    self._link.flush_with(flush)
                else:
                    loop.call_soon(flush)

            self._outbox = ResultOutbox(self._send_results, loop, schedule=schedule)
            if self.allow_code:
                self._code = CodePool(size=self.max_concurrent_tasks, memory_mb=self.code_memory_mb, cpu_seconds=self.code_cpu_seconds, log=self.log)
            self._runner = TaskRunner(
                worker_id=self.worker_id, handlers=self._handlers, executor=self._executor, log=self.log,
                timeout_grace=self.timeout_grace, started=self._task_started, finished=self._report, code=self._code,
            )
            self._link = ForemanLink(
                self.foreman_urls, reconnect_interval=self.reconnect_interval, max_reconnect_attempts=self.max_reconnect_attempts,
                auto_restart=self.auto_restart, log=self.log, on_open=self._on_open, on_message=self._on_message,
                on_close=self._on_close, on_give_up=self._on_give_up,
            )
            self._state = "connecting"
            if self.handle_signals:
                self._install_signal_handlers(loop)
            self._link.start()
        if self._welcomed:
            return
        fut: asyncio.Future[None] = loop.create_future()
        self._start_waiters.append(fut)
        await fut

    def restart(self) -> None:
        """Drop the connection and reconnect."""
        if self._link:
            self._link.restart()

    def stop(self, drain_timeout: float | None = None) -> "asyncio.Task[None]":
        """Graceful stop: take no new tasks, let running ones finish for up to `drain_timeout`
        seconds (default the worker's, 30), hand the rest back, send every outcome, close.
        Awaitable; safe to call twice and before `start`."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(self.drain_timeout if drain_timeout is None else drain_timeout))
        return self._stop_task

    async def wait_stopped(self) -> None:
        """Wait until the worker has stopped (by `stop`, a signal, or a refused credential)."""
        if self._stopped_event is not None:
            await self._stopped_event.wait()

    def run(self) -> None:
        """Start and serve until stopped (SIGTERM or Ctrl-C drain it): a program's main call."""

        async def main() -> None:
            await self.start()
            await self.wait_stopped()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

    # ------------------------------------------------------------------ lifecycle

    async def _stop(self, drain: float) -> None:
        was_idle = self._state == "idle"
        self._state = "draining"
        link, runner, outbox = self._link, self._runner, self._outbox
        if not was_idle and link and runner and outbox:
            link.send({"type": "worker_draining"})
            if runner.size:
                self.log.info("draining: waiting up to %.1f s for %d running tasks", drain, runner.size)
                await runner.wait_idle(drain)
            self._hand_back(f"worker {self.worker_id} stopped; its drain timeout of {drain:g} s passed")
            outbox.flush()
            if outbox.size and link.connected:
                await outbox.wait_acknowledged(2.0)
        self._stop_heartbeat()
        if self._welcomed:
            self._history("stopped", "worker stopped")
        if link:
            await link.stop()
        for message, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ShuttingDownError("CC_ERR_SHUTTING_DOWN", f"worker {self.worker_id} stopped before the foreman answered its {message['type']} for task {message.get('taskId')}"))
        self._pending.clear()
        if self._executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._code:
            await self._code.close()
        self._state = "stopped"
        self._welcomed = False
        for w in self._start_waiters:
            if not w.done():
                w.set_exception(ShuttingDownError("CC_ERR_SHUTTING_DOWN", f"worker {self.worker_id} stopped"))
        self._start_waiters.clear()
        if self._stopped_event:
            self._stopped_event.set()
        self._emit("stopped")

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGTERM drains the worker, then ends the process as SIGTERM would have; only when the
        program has not handled SIGTERM itself and runs its loop in the main thread."""
        if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_term() -> None:
            self.log.info("SIGTERM: worker %s draining", self.worker_id)

            async def drain_then_exit() -> None:
                await self.stop()
                loop.remove_signal_handler(signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)

            loop.create_task(drain_then_exit())

        try:
            loop.add_signal_handler(signal.SIGTERM, on_term)
        except (NotImplementedError, RuntimeError):
            pass  # Windows, or a loop that cannot take signal handlers

    def _hand_back(self, reason: str) -> None:
        if not self._runner or not self._link:
            return
        refs = self._runner.abandon_all(reason)
        if refs:
            self.log.warning("handing %d unfinished tasks back to the foreman", len(refs))
            self._link.send({"type": "release_tasks", "tasks": refs, "reason": reason})

    def _history(self, kind: str, reason: str | None = None, code: int | None = None, foreman_id: str | None = None) -> None:
        entry: dict[str, Any] = {"at": time.time(), "kind": kind, "url": self.foreman_url}
        if reason:
            entry["reason"] = reason
        if code is not None:
            entry["code"] = code
        if foreman_id:
            entry["foreman_id"] = foreman_id
        self.connection_history.append(entry)

    # ------------------------------------------------------------------ connection

    def _on_open(self) -> None:
        assert self._link and self._runner and self._outbox
        url = self._link.current_url
        self._http_base = ("https://" if url.startswith("wss://") else "http://") + url.split("://", 1)[1].split("/", 1)[0] + "/"
        hello: dict[str, Any] = {
            "type": "hello", "protocol": PROTOCOL_VERSION, "role": "worker", "workerId": self.worker_id,
            "capacity": self.max_concurrent_tasks, "patterns": self.patterns, "allowCode": self.allow_code,
            "resources": self.resources, "version": self.version,
            # Finished but unacknowledged tasks are still this worker's until the foreman records them.
            "running": self._runner.refs() + self._outbox.refs(),
        }
        if self.allow_code:
            # Only Python functions: the foreman keeps JavaScript map tasks from this worker.
            hello["codeLanguages"] = ["python"]
        if self._token:
            # Signed anew for every connection: a fresh timestamp and nonce, the host dialed.
            hello["auth"] = sign_hello(self._token, self.worker_id, dialed_host(url))
        self._link.send(hello)

    def _on_close(self, info: CloseInfo) -> None:
        reason = info.reason if self._welcomed else (self._last_refusal or info.reason)
        if not reason:
            reason = {1000: "closed", 1001: "foreman going away"}.get(info.code, "connection lost" if info.opened else "could not connect")
        self._history("disconnected" if self._welcomed else "failed", reason, info.code)
        was_welcomed = self._welcomed
        self._welcomed = False
        self._stop_heartbeat()
        if self._state == "connected":
            self._state = "connecting"
        if was_welcomed:
            self._emit("disconnected", {"will_reconnect": info.will_reconnect, "code": info.code})
        # Refused for its credential (4401) or its credential revoked (4403): the same token
        # cannot help, so the worker says why and stops.
        if info.code in (4401, 4403) and self._state != "stopped":
            message = self._last_refusal or info.reason or "the foreman refused this worker's credential"
            self._last_refusal = None
            self._on_give_up(message if message.startswith("CC_ERR_") else f"CC_ERR_UNAUTHORIZED: {message}")
            return
        if not info.will_reconnect and self._state not in ("draining", "stopped") and self._loop:
            self.log.warning("connection lost and auto_restart is off: stopping")
            self.stop(0)

    def _on_give_up(self, message: str) -> None:
        self.log.error(message)
        self._history("gave_up", message)
        code = "CC_ERR_UNAUTHORIZED" if message.startswith("CC_ERR_UNAUTHORIZED") else "CC_ERR_CONNECTION"
        kind = UnauthorizedError if code == "CC_ERR_UNAUTHORIZED" else ConnectionFailedError
        err = kind(code, message)
        for w in self._start_waiters:
            if not w.done():
                w.set_exception(err)
        self._start_waiters.clear()
        self._emit("error", err)
        if self._loop:
            self.stop(0)

    def _start_heartbeat(self, interval: float) -> None:
        self._stop_heartbeat()

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                if self._outbox and self._link and self._runner:
                    # Results go first: a task that just finished must be in its results or in
                    # this heartbeat's running list, never in neither (the foreman would take it back).
                    self._outbox.flush()
                    self._link.send({"type": "heartbeat", "running": self._runner.refs(), "assignments": self._assignments_read})

        assert self._loop
        self._heartbeat = self._loop.create_task(beat())

    def _stop_heartbeat(self) -> None:
        if self._heartbeat:
            self._heartbeat.cancel()
        self._heartbeat = None

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        link, runner, outbox = self._link, self._runner, self._outbox
        assert link and runner and outbox
        if kind == "assign_tasks":
            self._assignments_read += 1
            tasks = msg.get("tasks") or []
            if self._state in ("draining", "stopped"):
                # Sent before the foreman heard the worker is draining: give them straight back.
                link.send({"type": "release_tasks", "tasks": [{"taskId": t["taskId"], "attempt": t["attempt"]} for t in tasks],
                           "reason": f"worker {self.worker_id} is draining"})
                return
            code = msg.get("code")
            if code and self._code is not None:
                languages = msg.get("languages") or {}
                for job_id, source in code.items():
                    self._code.set_code(job_id, source, languages.get(job_id))
            for t in tasks:
                runner.start(Task(t, wire_files(t.get("files"), self._http_base) if t.get("files") else []))
        elif kind == "result_ack":
            outbox.acknowledged(msg.get("tasks") or [])
            for r in msg.get("refused") or []:
                self.log.warning("the foreman could not record the outcome of task %s as sent; it failed instead: %s",
                                 r.get("taskId"), (r.get("error") or {}).get("message"))
                self._emit("result_refused", r)
            self._emit("acked")
        elif kind == "cancel_task":
            runner.cancel(msg["taskId"], msg["attempt"], msg.get("reason") or f"task {msg['taskId']} was cancelled", msg.get("cause") or "coordinator")
        elif kind in ("task_record_ack", "artifacts_pulled"):
            pending = self._pending.pop(msg.get("requestId", ""), None)
            if pending and not pending[1].done():
                pending[1].set_result(msg)
        elif kind == "welcome":
            self._assignments_read = 0
            self._on_welcome(msg)
        elif kind == "error":
            pending = self._pending.pop(msg.get("requestId") or "", None)
            if pending:
                # A request the foreman refused (a record too large, say): the handler's call raises it.
                if not pending[1].done():
                    pending[1].set_exception(CrowdComputeError.from_wire(msg))
                return
            if msg.get("code") in ("CC_ERR_UNAUTHORIZED", "CC_ERR_RATE_LIMITED"):
                # Why a hello was refused, in full (a close reason is cut short).
                self._last_refusal = str(msg.get("message"))
            self.log.warning("foreman reported an error: %s", msg.get("message"))
            self._emit("foreman_error", msg)
        # heartbeat_ack only proves the foreman hears us (the link noted it).

    def _on_welcome(self, msg: dict[str, Any]) -> None:
        assert self._link and self._outbox and self._runner
        self._welcomed = True
        self.stats.connects += 1
        self._history("connected", foreman_id=msg.get("foremanId"))
        self._max_payload = int(msg.get("maxPayloadBytes") or self._max_payload)
        self._outbox.max_batch_bytes = self._max_payload // 2
        if self._state == "connecting":
            self._state = "connected"
        lease = float(msg.get("leaseTtlMs") or 30_000) / 1000
        interval = self.heartbeat_interval or float(msg.get("heartbeatIntervalMs") or 5_000) / 1000
        if interval >= lease:
            self.log.warning("heartbeat_interval %.1f s is not shorter than the foreman's lease of %.1f s: tasks will be taken back", interval, lease)
        self._start_heartbeat(interval)
        self._link.set_silence_timeout(lease)
        # Come back well before the foreman gives up on the leases, or the work runs twice.
        self._link.set_max_reconnect_delay(lease / 3)
        self.log.info("foreman %s accepted hello of worker %s (resending %d outcomes, %d running)",
                      msg.get("foremanId"), self.worker_id, self._outbox.size, self._runner.size)
        # Outcomes the previous connection did not see acknowledged go again; the foreman's
        # guarded update records each at most once.
        self._outbox.resend_all()
        for message, _ in self._pending.values():
            self._link.send(message)
        if self._state == "draining":
            self._link.send({"type": "worker_draining"})
        for w in self._start_waiters:
            if not w.done():
                w.set_result(None)
        self._start_waiters.clear()
        self._emit("connected", {"foreman_id": msg.get("foremanId")})

    def _send_results(self, results: list[str]) -> bool:
        return self._welcomed and self._link is not None and self._link.send_encoded('{"type":"task_results","results":[' + ",".join(results) + "]}")

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request (task_record, pull_artifacts) and wait for its answer. Unanswered
        requests go again after a reconnect: the foreman takes each twice without harm."""
        assert self._loop and self._link
        self._request_seq += 1
        message["requestId"] = f"{'rec' if message['type'] == 'task_record' else 'pull'}-{self._request_seq}"
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[message["requestId"]] = (message, fut)
        if self._welcomed:
            self._link.send(message)
        try:
            return await fut
        finally:
            self._pending.pop(message["requestId"], None)

    # ------------------------------------------------------------------ outcomes

    def _task_started(self, task: Task) -> None:
        self._emit("task_started", task)

    def _report(self, r: Running, ending: dict[str, Any]) -> None:
        assert self._outbox
        task = r.task
        duration_ms = (time.monotonic() - r.started_at) * 1000
        outcome: dict[str, Any] = {"taskId": task.task_id, "attempt": task.attempt, "status": ending["status"], "durationMs": round(duration_ms, 3)}
        traced = task.trace_context
        if traced:
            # This worker makes no spans (no OpenTelemetry here): the attempt's context, the
            # foreman's dispatch span, goes back as it came, so that the foreman's span for
            # committing the outcome still joins the job's trace, under the dispatch.
            outcome["traceContext"] = {k: traced[k] for k in ("traceparent", "tracestate") if isinstance(traced.get(k), str)}
        nbytes = 0
        text: str | None = None
        if ending["status"] == "completed":
            result = ending.get("result")
            problem = None
            try:
                text = "null" if result is None else _encode_result(result)
            except (TypeError, ValueError) as err:
                problem = task_error("CC_ERR_HANDLER_FAILED", f"task {task.task_id} returned a value that is not JSON ({type(result).__name__}: {err})", retryable=False)
            else:
                nbytes = len(text) if text.isascii() else len(text.encode())
                if nbytes > self._max_payload:
                    problem = task_error("CC_ERR_PAYLOAD_TOO_LARGE", f"task {task.task_id} result is {nbytes} bytes, the foreman accepts at most {self._max_payload} (--max-payload)", retryable=False)
                elif isinstance(result, (list, tuple, dict)) and json_depth_exceeds(result, MAX_VALUE_DEPTH):
                    problem = task_error("CC_ERR_TOO_DEEP", f"task {task.task_id} result nests JSON more than {MAX_VALUE_DEPTH} levels deep, the most a value may",
                                         retryable=False, details={"limit": MAX_VALUE_DEPTH})
            if problem:
                outcome["status"] = "failed"
                outcome["error"] = problem
                nbytes = 0
                text = None
            else:
                outcome["result"] = result
                # The outcome's JSON made once, the result's text spliced in as encoded above.
                if type(task.task_id) is str and type(task.attempt) is int and not traced:
                    text = '{"taskId":%s,"attempt":%d,"status":"completed","durationMs":%r,"result":%s}' % (
                        _encode_string(task.task_id), task.attempt, outcome["durationMs"], text)
                else:
                    text = encode_json({k: v for k, v in outcome.items() if k != "result"})[:-1] + ',"result":' + text + "}"  # type: ignore[operator]
        elif ending.get("error"):
            outcome["error"] = ending["error"]
            if isinstance(ending.get("result"), list):
                # A map chunk in which some arguments raised: the others' results are kept.
                outcome["result"] = ending["result"]
        if text is None:
            try:
                text = encode_json(outcome)
            except (TypeError, ValueError):
                # An error whose details are not all JSON: sent with those values as text.
                text = json.dumps(outcome, ensure_ascii=False, separators=(",", ":"), default=repr)
        status = outcome["status"]
        if status == "completed":
            self.stats.tasks_completed += 1
        elif status == "failed":
            self.stats.tasks_failed += 1
            self.log.warning("task %s (job %s, type %s, attempt %d) failed: %s", task.task_id, task.job_id, task.type, task.attempt, outcome["error"].get("message"))
        else:
            self.stats.tasks_cancelled += 1
        self.stats.total_execution_time += duration_ms / 1000
        self._outbox.add(outcome, text, nbytes)
        self._emit("task_finished", outcome, task)


def run_worker(handlers: Iterable[tuple[str, Handler]], **options: Any) -> None:
    """Start a worker with these `(pattern, handler)` pairs and serve until stopped."""
    worker = Worker(**options)
    for pattern, handler in handlers:
        worker.register_handler(pattern, handler)
    worker.run()


__all__ = ["Worker", "WorkerStats", "Task", "run_worker", "InvalidRequestError"]

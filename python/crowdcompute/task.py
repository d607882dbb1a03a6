"""A task as its handler sees it, with the DistWorker SDK's names."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from typing import Any

from .errors import ConnectionFailedError, NotFoundError

_NO_METADATA: dict[str, Any] = {}
#: Makes a task's cancel event once when two threads ask for it at the same time.
_EVENT_LOCK = threading.Lock()


class Task:
    """One attempt of a task, given to a handler.

    `input_data` is the task's input (any JSON value; `get_input` reads a field of an object
    input). `metadata` is the job's metadata given at submission. `files` lists the files the
    task carries, each a dict with `file_id`, `filename`, `size`, `content_type`, `url` and
    `storage_url` (the same link, the DistWorker name); `read_file` downloads one.
    """

    __slots__ = (
        "task_id", "job_id", "queue", "type", "input_data", "attempt", "priority", "timeout_ms", "metadata",
        "files", "index", "resume", "graph", "kind", "arg_offset", "_cancel_event", "cancel_reason", "_wire",
    )

    def __init__(self, wire: dict[str, Any], files: list[dict[str, Any]]) -> None:
        self._wire = wire
        self.task_id: str = wire["taskId"]
        self.job_id: str = wire.get("jobId", "")
        #: The task type (`math.add`): the "queue" the DistWorker SDK names, matched against handler patterns.
        self.type: str = wire.get("type", "")
        self.queue: str = self.type
        self.input_data: Any = wire.get("input")
        self.attempt: int = wire.get("attempt", 1)
        self.priority: str = wire.get("priority", "normal")
        #: The deadline counted from the start on this worker, in milliseconds; None = none.
        self.timeout_ms: int | None = wire.get("timeoutMs")
        self.metadata: dict[str, Any] = wire.get("metadata") or _NO_METADATA
        self.files: list[dict[str, Any]] = files
        self.index: int = wire.get("index", 0)
        #: `named` (run by a handler) or `map` (a chunk of a map job's arguments, run by its shipped function).
        self.kind: str = wire.get("kind") or "named"
        #: A map chunk's first argument's index in the whole job.
        self.arg_offset: int = wire.get("argOffset") or 0
        #: A retried task that recorded batches: `{checkpoint?, batches}`; None otherwise.
        self.resume: dict[str, Any] | None = wire.get("resume")
        #: A graph node's task: `{nodeId, inputAdapter?, inputArgs?}`; None otherwise.
        self.graph: dict[str, Any] | None = wire.get("graph")
        # Made when first asked for (`cancel_event`): most tasks end without anyone looking,
        # and an Event costs more to make than the rest of the task.
        self._cancel_event: threading.Event | None = None
        #: Why it was asked to stop once `cancel_event` is set: `coordinator`, `timeout`,
        #: `lease_lost` or `worker_shutdown`.
        self.cancel_reason: str | None = None

    @property
    def id(self) -> str:
        return self.task_id

    @property
    def trace_context(self) -> dict[str, str] | None:
        """The foreman's span that dispatched this attempt, when its job is traced: W3C
        `{"traceparent": ..., "tracestate"?: ...}`, for a handler that makes OpenTelemetry spans
        of its own to start them under (this SDK makes none). The attempt's outcome carries it
        back to the foreman, whose span for committing the outcome is then its child. None when
        the job is not traced."""
        value = self._wire.get("traceContext")
        return value if isinstance(value, dict) and isinstance(value.get("traceparent"), str) else None

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the task is cancelled, times out, or the worker hands it back; a handler
        running in a thread (a plain `def`) polls it, since a thread cannot be interrupted."""
        event = self._cancel_event
        if event is None:
            with _EVENT_LOCK:
                event = self._cancel_event
                if event is None:
                    event = self._cancel_event = threading.Event()
        return event

    @property
    def cancelled(self) -> bool:
        event = self._cancel_event
        return event is not None and event.is_set()

    def get_input(self, key: str, default: Any = None) -> Any:
        data = self.input_data
        return data.get(key, default) if isinstance(data, dict) else default

    def get_metadata(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def get_file_by_id(self, file_id: str) -> dict[str, Any] | None:
        return next((f for f in self.files if f.get("file_id") == file_id), None)

    def get_files_by_name(self, filename: str) -> list[dict[str, Any]]:
        return [f for f in self.files if f.get("filename") == filename]

    def read_file_sync(self, file: str | dict[str, Any]) -> bytes:
        """A file's bytes (by id, or as listed in `files`), downloaded from the foreman."""
        f = self.get_file_by_id(file) if isinstance(file, str) else file
        if not f:
            raise NotFoundError("CC_ERR_TASK_NOT_FOUND", f"task {self.task_id} carries no file {file}")
        try:
            with urllib.request.urlopen(f["url"], timeout=60) as response:
                return bytes(response.read())
        except OSError as err:
            raise ConnectionFailedError(
                "CC_ERR_CONNECTION", f"downloading file {f.get('file_id')} ({f.get('filename')}) for task {self.task_id} failed: {err}"
            ) from err

    async def read_file(self, file: str | dict[str, Any]) -> bytes:
        """The same, without blocking the event loop."""
        return await asyncio.to_thread(self.read_file_sync, file)

    def __repr__(self) -> str:
        return f"Task(task_id={self.task_id!r}, type={self.type!r}, attempt={self.attempt})"


def wire_files(files: list[dict[str, Any]] | None, http_base: str) -> list[dict[str, Any]]:
    """The wire's camelCase file entries as the DistWorker names them, links made absolute."""
    from urllib.parse import urljoin

    out = []
    for f in files or []:
        url = urljoin(http_base, str(f.get("url", "")))
        out.append({
            "file_id": f.get("fileId"), "filename": f.get("filename"), "size": f.get("size"),
            "content_type": f.get("contentType"), "url": url, "storage_url": url,
        })
    return out

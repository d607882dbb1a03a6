"""Runs map jobs' Python functions for a worker started with allow_code=True: natively, in a
pool of child processes (`_code_runner.py`), each under a memory limit (RLIMIT_AS) and a CPU
limit per chunk (RLIMIT_CPU). This is NOT a sandbox: the function can do anything the worker's
user can. It keeps a crash, a runaway allocation or an endless loop away from the worker, and a
timeout or cancellation kills the process running the chunk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections import OrderedDict, deque
from typing import Any

from .errors import CrowdComputeError

_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_code_runner.py")
#: Job sources kept (jobs whose tasks may still come), the oldest dropped past this many.
MAX_SOURCES = 1_000
#: What a child's stderr keeps, to say why it died.
STDERR_TAIL = 4_096
#: Indexes and messages of failed arguments sent, as the TypeScript executors send them.
MAX_FAILED_ARGUMENTS = 100


class ChunkFailed(CrowdComputeError):
    """Some arguments of a chunk raised: `partial_results` keeps the others' results (None where one raised)."""

    def __init__(self, message: str, details: dict[str, Any], partial_results: list[Any], stack: str | None) -> None:
        super().__init__("CC_ERR_HANDLER_FAILED", message, details)
        self.partial_results = partial_results
        self.stack = stack


class ChunkError(CrowdComputeError):
    """The chunk failed as a whole (compile error, memory, CPU, a crashed process)."""

    def __init__(self, code: str, message: str, *, name: str | None = None, stack: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(code, message)
        self.name = name
        self.stack = stack
        self.retryable = retryable


def chunk_failure(job_id: str, arg_offset: int, arg_count: int, results: list[Any], failures: list[dict[str, Any]]) -> ChunkFailed:
    """The error of a chunk in which `failures` raised, as the protocol has it: named after the
    first failed argument by its index in the whole job (`arg_offset` + its index in the chunk)."""
    first = failures[0]
    more = f" (and {len(failures) - 1} more of its {arg_count} arguments)" if len(failures) > 1 else ""
    index = arg_offset + first["index"]
    return ChunkFailed(
        f"job {job_id}: the function threw on argument {index}: {first['name']}: {first['message']}{more}",
        {"argumentIndex": index,
         "failedArguments": [{"index": arg_offset + f["index"], "name": f["name"], "message": str(f["message"])[:300]} for f in failures[:MAX_FAILED_ARGUMENTS]]},
        results, first.get("stack"))


class _Child:
    __slots__ = ("proc", "stderr_tail", "reader", "killed_for")

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr_tail = bytearray()
        self.reader: asyncio.Task[None] | None = None
        #: Why the pool killed it (`timeout`, `cancelled`), if it did.
        self.killed_for: str | None = None

    async def read_stderr(self, log: logging.Logger) -> None:
        assert self.proc.stderr
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self.stderr_tail += line
            del self.stderr_tail[:-STDERR_TAIL]
            log.debug("map function output: %s", line.decode(errors="replace").rstrip())

    def kill(self, reason: str) -> None:
        if self.proc.returncode is None:
            self.killed_for = reason
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


class CodePool:
    """Child processes running map chunks, one chunk each at a time, at most `size` of them."""

    def __init__(self, *, size: int, memory_mb: int, cpu_seconds: int, log: logging.Logger) -> None:
        self.size = size
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.log = log
        self._sources: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._idle: deque[_Child] = deque()
        self._busy: set[_Child] = set()
        self._closed = False

    def set_code(self, job_id: str, code: str, language: str | None) -> None:
        self._sources[job_id] = (code, language or "javascript")
        self._sources.move_to_end(job_id)
        while len(self._sources) > MAX_SOURCES:
            self._sources.popitem(last=False)

    def language(self, job_id: str) -> str | None:
        entry = self._sources.get(job_id)
        return entry[1] if entry else None

    async def _spawn(self) -> _Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-s", _RUNNER, str(self.memory_mb), str(self.cpu_seconds),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=1 << 30,  # a chunk's results are one line
            start_new_session=True)  # a Ctrl-C at the terminal goes to the worker, which stops its children itself
        child = _Child(proc)
        child.reader = asyncio.ensure_future(child.read_stderr(self.log))
        return child

    def _release(self, child: _Child) -> None:
        self._busy.discard(child)
        if child.proc.returncode is None and child.killed_for is None and not self._closed:
            self._idle.append(child)

    async def run(self, job_id: str, args: list[Any], arg_offset: int, on_start: Any = None) -> list[Any]:
        """Run the job's function over `args`; the results. Raises ChunkFailed (some arguments
        raised) or ChunkError. `on_start(kill)` is given the way to stop the call."""
        entry = self._sources.get(job_id)
        if entry is None:
            raise ChunkError("CC_ERR_BAD_MESSAGE", f"the foreman sent no source for map job {job_id}")
        code, language = entry
        if language != "python":
            raise ChunkError("CC_ERR_CODE_NOT_ALLOWED", f"job {job_id} is a {language} function and a Python worker runs only Python ones: "
                             "run it on a Node worker started with --allow-code")
        if self._closed:
            raise ChunkError("CC_ERR_SHUTTING_DOWN", "the worker is stopping")
        child = self._idle.popleft() if self._idle else await self._spawn()
        self._busy.add(child)
        if on_start is not None:
            on_start(child.kill)
        try:
            assert child.proc.stdin and child.proc.stdout
            child.proc.stdin.write((json.dumps({"jobId": job_id, "code": code, "args": args}, ensure_ascii=False) + "\n").encode())
            try:
                await child.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it died: said below
            line = await child.proc.stdout.readline()
            if not line:
                await self._died(child, job_id)
            answer = json.loads(line)
            if "error" in answer and answer["error"]["code"] in ("CC_ERR_MEMORY_LIMIT", "CC_ERR_TIMEOUT"):
                child.kill("limit")  # it ends itself after a limit: not used again
        finally:
            self._release(child)
        if "error" in answer:
            e = answer["error"]
            raise ChunkError(e["code"], e["message"], name=e.get("name"), stack=e.get("stack"),
                             retryable={"CC_ERR_TIMEOUT": True}.get(e["code"], False))
        results: list[Any] = answer["results"]
        if answer["failures"]:
            raise chunk_failure(job_id, arg_offset, len(args), results, answer["failures"])
        return results

    async def _died(self, child: _Child, job_id: str) -> None:
        """The child closed its stdout without answering: why, as an error."""
        code = await child.proc.wait()
        if child.reader is not None:
            await child.reader
        if child.killed_for in ("timeout", "cancelled"):
            raise ChunkError("CC_ERR_CANCELLED", f"the call of job {job_id}'s function was stopped ({child.killed_for})")
        tail = child.stderr_tail.decode(errors="replace").strip()
        if "MemoryError" in tail or "Cannot allocate memory" in tail or "out of memory" in tail.lower():
            raise ChunkError("CC_ERR_MEMORY_LIMIT", f"the function of job {job_id} ran out of memory (the limit is {self.memory_mb} MiB, code_memory_mb)"
                             f"{': ' + tail[-300:] if tail else ''}", retryable=False)
        how = f"signal {signal.Signals(-code).name}" if code < 0 and -code in signal.Signals._value2member_map_ else f"exit code {code}"
        raise ChunkError("CC_ERR_SANDBOX_CRASHED", f"the process running job {job_id}'s function died ({how})"
                         f"{': ' + tail[-300:] if tail else ''}", retryable=False)

    async def close(self) -> None:
        """Stop every child."""
        self._closed = True
        children = list(self._idle) + list(self._busy)
        self._idle.clear()
        for c in children:
            if c.proc.stdin and not c.proc.stdin.is_closing():
                c.proc.stdin.close()  # an idle child ends at the end of its input
            if c in self._busy:
                c.kill("cancelled")
        for c in children:
            try:
                await asyncio.wait_for(c.proc.wait(), 2.0)
            except asyncio.TimeoutError:
                c.kill("cancelled")
                await c.proc.wait()
            if c.reader is not None:
                await c.reader

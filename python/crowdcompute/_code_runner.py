"""The process a Python worker runs shipped map functions in (one of a pool), natively: NOT a
sandbox; it only keeps a function's crash, memory and CPU use away from the worker itself.

Run as a script (standard library only, so it starts fast and imports nothing of the worker):

    python _code_runner.py <memory MiB, 0 = no limit> <CPU seconds per chunk, 0 = no limit>

It reads one JSON request a line on its stdin, `{"jobId", "code", "args"}`, and answers each
with one JSON line: `{"results": [...], "failures": [{index, name, message, stack}]}` (null in
`results` where an argument failed; indexes within the chunk), or `{"error": {code, message}}`
when the chunk as a whole failed (the source does not compile, memory or CPU ran out). Each
job's source is exec'd once in this process and its function kept.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from typing import Any, Callable

#: Functions kept, by job id (the oldest dropped past this many).
MAX_JOBS = 64
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class CpuLimitExceeded(BaseException):
    """The chunk used its CPU seconds (SIGXCPU): not an argument's failure, the chunk's."""


def _on_xcpu(signum: int, frame: Any) -> None:
    raise CpuLimitExceeded()


def compile_function(code: str) -> Callable[[Any], Any]:
    """The one function the source defines, exec'd in a namespace of its own."""
    namespace: dict[str, Any] = {"__name__": "__crowdcompute_map__", "__builtins__": __builtins__}
    exec(compile(code, "<map function>", "exec"), namespace)
    fns = [v for k, v in namespace.items() if k not in ("__name__", "__builtins__") and callable(v)]
    if len(fns) != 1:
        raise SyntaxError(f"the source must define exactly one function, it defines {len(fns)}")
    return fns[0]  # type: ignore[no-any-return]


def run_chunk(fn: Callable[[Any], Any], args: list[Any]) -> dict[str, Any]:
    results: list[str] = []
    failures: list[dict[str, Any]] = []
    for i, arg in enumerate(args):
        try:
            value = fn(arg)
            try:
                results.append(_encode(value))
            except (TypeError, ValueError, RecursionError) as err:
                raise TypeError(f"the function returned a value that is not JSON ({type(value).__name__}: {err})") from None
        except MemoryError:
            raise
        except Exception as err:
            results.append("null")
            failures.append({"index": i, "name": type(err).__name__, "message": str(err) or type(err).__name__,
                             "stack": "".join(traceback.format_exception(err))[-16_000:]})
    return {"results": results, "failures": failures}


def main(argv: list[str]) -> int:
    memory_mb, cpu_seconds = int(argv[1]), int(argv[2])
    # The protocol has the pipes to itself: what the function prints goes to stderr.
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGXCPU, _on_xcpu)
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    functions: dict[str, Callable[[Any], Any]] = {}
    for line in proto_in:
        request = json.loads(line)
        job_id = request["jobId"]
        answer: dict[str, Any]
        try:
            fn = functions.get(job_id)
            if fn is None:
                try:
                    fn = compile_function(request["code"])
                except MemoryError:
                    raise
                except Exception as err:
                    answer = {"error": {"code": "CC_ERR_CODE_COMPILE", "name": type(err).__name__,
                                        "message": f"the function of job {job_id} does not run: {type(err).__name__}: {err}",
                                        "stack": "".join(traceback.format_exception(err))[-16_000:]}}
                    proto_out.write(_encode(answer) + "\n")
                    proto_out.flush()
                    continue
                if len(functions) >= MAX_JOBS:
                    functions.pop(next(iter(functions)))
                functions[job_id] = fn
            if cpu_seconds > 0:
                # RLIMIT_CPU counts the process's whole life: this chunk gets its seconds on top of what is used.
                used = resource.getrusage(resource.RUSAGE_SELF)
                spent = int(used.ru_utime + used.ru_stime)
                resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds if cpu_hard == resource.RLIM_INFINITY else min(spent + cpu_seconds, cpu_hard), cpu_hard))
            try:
                chunk = run_chunk(fn, request["args"])
            finally:
                if cpu_seconds > 0:
                    resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
            proto_out.write('{"results":[' + ",".join(chunk["results"]) + '],"failures":' + _encode(chunk["failures"]) + "}\n")
            proto_out.flush()
        except MemoryError:
            functions.pop(job_id, None)
            limit_text = f"{memory_mb} MiB" if memory_mb > 0 else "the machine's memory"
            proto_out.write(_encode({"error": {"code": "CC_ERR_MEMORY_LIMIT", "name": "MemoryError",
                                               "message": f"the function of job {job_id} ran out of memory (the limit is {limit_text}, code_memory_mb)"}}) + "\n")
            proto_out.flush()
            return 3  # the process may be in a bad state: the pool starts a fresh one
        except CpuLimitExceeded:
            proto_out.write(_encode({"error": {"code": "CC_ERR_TIMEOUT", "name": "TimeoutError",
                                               "message": f"the function of job {job_id} used more than {cpu_seconds} s of CPU on one chunk (code_cpu_seconds)"}}) + "\n")
            proto_out.flush()
            return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

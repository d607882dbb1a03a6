"""Map jobs of Python functions: the client ships a function's def (refusing names from outside
it), and a worker started with allow_code runs it natively in child processes."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
from typing import Any, Callable

import pytest

from crowdcompute import AsyncClient, Client, Worker
from crowdcompute.errors import CrowdComputeError, JobFailedError
from crowdcompute._code_pool import ChunkError, ChunkFailed, CodePool
from crowdcompute._pyfunc import FunctionSourceError, check_free_names, function_source, map_args, map_code
from crowdcompute.client import argument_failure

from conftest import ROOT
from support import wait_for

CONSTANT = 3


def helper(x: int) -> int:
    return x


def collatz_steps(n):  # type: ignore[no-untyped-def]
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def uses_globals(n):  # type: ignore[no-untyped-def]
    return helper(n) + CONSTANT + len([n])


def imports_inside(n):  # type: ignore[no-untyped-def]
    import math

    return [math.isqrt(i) for i in range(n)]


def uses_math_without_import(n):  # type: ignore[no-untyped-def]
    return math.sqrt(n)  # type: ignore[name-defined]  # noqa: F821


def fib(n):  # type: ignore[no-untyped-def]
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def passthrough(f: Callable[..., Any]) -> Callable[..., Any]:
    return f


@passthrough
def decorated(n):  # type: ignore[no-untyped-def]
    return n + 1


def two_args(a, b):  # type: ignore[no-untyped-def]
    return a + b


# ---------------------------------------------------------------------- what the client ships


def test_a_function_ships_as_its_own_def() -> None:
    name, source = function_source(collatz_steps)
    assert name == "collatz_steps" and source.startswith("def collatz_steps(n):") and source.rstrip().endswith("return steps")
    ns: dict[str, Any] = {}
    exec(source, ns)
    assert [ns["collatz_steps"](n) for n in range(1, 6)] == [0, 1, 7, 2, 5]


def test_decorators_are_stripped_and_imports_inside_and_recursion_allowed() -> None:
    assert function_source(decorated)[1].startswith("def decorated(n):")
    assert "import math" in function_source(imports_inside)[1]
    assert function_source(fib)[0] == "fib"


def test_names_from_outside_are_refused_each_named() -> None:
    with pytest.raises(FunctionSourceError, match=r"uses_globals uses names from outside itself: helper, CONSTANT;"):
        function_source(uses_globals)
    with pytest.raises(FunctionSourceError, match=r"uses names from outside itself: math;"):
        function_source(uses_math_without_import)


def test_a_closure_is_refused_naming_its_variable() -> None:
    def outer() -> Callable[[int], int]:
        offset = 1

        def inner(x: int) -> int:
            return x + offset
        return inner

    with pytest.raises(FunctionSourceError, match=r"inner uses names from outside itself: offset"):
        function_source(outer())


def test_lambdas_methods_partials_and_wrong_arity_are_refused() -> None:
    with pytest.raises(FunctionSourceError, match="a lambda cannot be shipped: define the function with def"):
        function_source(lambda x: x)
    with pytest.raises(FunctionSourceError, match="bound method"):
        function_source(CodePool(size=1, memory_mb=0, cpu_seconds=0, log=logging.getLogger()).set_code)
    with pytest.raises(FunctionSourceError, match="a function defined with def"):
        function_source(functools.partial(two_args, 1))
    with pytest.raises(FunctionSourceError, match=r"two_args\(a, b\) cannot be called with one argument"):
        function_source(two_args)


def test_source_text_is_javascript_unless_language_python() -> None:
    assert map_code("(x) => x * 2", None) == ("javascript", "(x) => x * 2", None)
    assert map_code("def double(x):\n    return 2 * x\n", "python") == ("python", "def double(x):\n    return 2 * x\n", "double")
    with pytest.raises(FunctionSourceError, match="uses names from outside itself: y"):
        map_code("def f(x):\n    return x + y\n", "python")
    with pytest.raises(FunctionSourceError, match="exactly one top-level def"):
        check_free_names("import os\ndef f(x):\n    return x\n")
    with pytest.raises(ValueError, match="language must be 'javascript' or 'python'"):
        map_code("x", "ruby")


def test_arguments_are_json_values_from_any_iterable() -> None:
    assert map_args(range(3)) == [0, 1, 2]
    assert map_args(x * x for x in range(3)) == [0, 1, 4]
    with pytest.raises(TypeError, match=r"map argument 1 is not a JSON value \(set"):
        map_args([1, {2}])
    with pytest.raises(TypeError, match="map arguments must be a list"):
        map_args("abc")


def test_each_failed_argument_is_spelled_out() -> None:
    stack = 'Traceback (most recent call last):\n  File "<map function>", line 2, in f\nZeroDivisionError: division by zero\n'
    f = {"task_id": "j.0", "index": 7, "status": "failed", "error": {
        "code": "CC_ERR_HANDLER_FAILED", "message": "argument 7: ZeroDivisionError: division by zero", "stack": stack, "details": {"argumentIndex": 7}}}
    out = argument_failure(f)
    assert (out["argument_index"], out["error_type"], out["error_message"], out["traceback"]) == (7, "ZeroDivisionError", "division by zero", stack)
    other = {**f, "error": {**f["error"], "message": "argument 9: KeyError: 'a'", "details": {"argumentIndex": 9}}}
    assert "traceback" not in argument_failure(other)  # the chunk's traceback is another argument's
    assert argument_failure({"task_id": "t", "index": 0, "status": "failed", "error": None}) == {"task_id": "t", "index": 0, "status": "failed", "error": None}


# ---------------------------------------------------------------------- the worker's native runner


@pytest.fixture
async def pool() -> Any:
    p = CodePool(size=2, memory_mb=256, cpu_seconds=2, log=logging.getLogger("test"))
    yield p
    await p.close()


async def test_the_pool_runs_a_chunk_and_reuses_its_process(pool: CodePool) -> None:
    pool.set_code("j", function_source(collatz_steps)[1], "python")
    assert await pool.run("j", [1, 2, 3, 4, 5], 0) == [0, 1, 7, 2, 5]
    assert await pool.run("j", [6, 7], 5) == [8, 16]


async def test_failed_arguments_keep_the_others_results(pool: CodePool) -> None:
    pool.set_code("j", "def f(x):\n    return 10 // x\n", "python")
    with pytest.raises(ChunkFailed) as info:
        await pool.run("j", [1, 0, 5, 0], 100)
    err = info.value
    assert err.partial_results == [10, None, 2, None]
    assert err.details["failedArguments"] == [
        {"index": 101, "name": "ZeroDivisionError", "message": "integer division or modulo by zero"},
        {"index": 103, "name": "ZeroDivisionError", "message": "integer division or modulo by zero"}]
    assert err.message.startswith("job j: the function threw on argument 101: ZeroDivisionError: integer division or modulo by zero (and 1 more of its 4 arguments)")
    assert err.stack and 'File "<map function>", line 2, in f' in err.stack


async def test_a_value_that_is_not_json_fails_its_argument(pool: CodePool) -> None:
    pool.set_code("j", "def f(x):\n    print('to stderr, not the protocol')\n    return {x} if x else x\n", "python")
    with pytest.raises(ChunkFailed, match=r"argument 1: TypeError: the function returned a value that is not JSON \(set"):
        await pool.run("j", [0, 1], 0)


async def test_memory_cpu_and_crash_are_the_chunks_errors(pool: CodePool) -> None:
    pool.set_code("mem", "def f(x):\n    return len(bytearray(x * 1024 * 1024))\n", "python")
    with pytest.raises(ChunkError, match="CC_ERR_MEMORY_LIMIT: the function of job mem ran out of memory \\(the limit is 256 MiB") as m:
        await pool.run("mem", [1000], 0)
    assert m.value.retryable is False
    pool.set_code("spin", "def f(x):\n    while True:\n        pass\n", "python")
    with pytest.raises(ChunkError, match=r"CC_ERR_TIMEOUT: the function of job spin used more than 2 s of CPU") as t:
        await pool.run("spin", [1], 0)
    assert t.value.retryable is True
    pool.set_code("exit", "def f(x):\n    import os\n    os._exit(7)\n", "python")
    with pytest.raises(ChunkError, match=r"CC_ERR_SANDBOX_CRASHED: the process running job exit's function died \(exit code 7\)") as c:
        await pool.run("exit", [1], 0)
    assert c.value.retryable is False
    # The pool goes on with fresh processes.
    assert await pool.run("mem", [1], 0) == [1024 * 1024]


async def test_javascript_and_broken_sources_are_refused(pool: CodePool) -> None:
    pool.set_code("js", "(x) => x", None)
    with pytest.raises(ChunkError, match="CC_ERR_CODE_NOT_ALLOWED: job js is a javascript function and a Python worker runs only Python ones"):
        await pool.run("js", [1], 0)
    pool.set_code("bad", "def f(x:\n", "python")
    with pytest.raises(ChunkError, match="CC_ERR_CODE_COMPILE: the function of job bad does not run: SyntaxError"):
        await pool.run("bad", [1], 0)


async def test_a_killed_call_ends_at_once(pool: CodePool) -> None:
    pool.set_code("spin", "def f(x):\n    import time\n    time.sleep(3600)\n", "python")
    kills: list[Callable[[str], None]] = []
    run = asyncio.ensure_future(pool.run("spin", [1], 0, kills.append))
    while not kills:
        await asyncio.sleep(0.01)
    kills[0]("timeout")
    with pytest.raises(ChunkError, match="CC_ERR_CANCELLED"):
        await run


# ---------------------------------------------------------------------- with a foreman


async def test_javascript_map_jobs_are_not_given_to_a_python_worker(foreman: Any) -> None:
    worker = Worker(foreman.ws_url, "py-code", foreman.worker_token, allow_code=True)
    await worker.start()
    try:
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            javascript = await client.submit_map("(x) => x * 2", [1, 2], max_attempts=1)
            # Submitted after it, a Python job is run at once by the idle worker, which was
            # never handed the JavaScript job's tasks: its hello says it runs Python only.
            assert await client.map(divide_ten, [1, 2]) == [10, 5]
            tasks = await client.tasks(javascript.id)
            assert [t["status"] for t in tasks] == ["queued", "queued"] and all(t["attempt"] in (0, None) for t in tasks)
            await javascript.cancel()
        workers = {w["worker_id"]: w for w in await client_workers(foreman)}
        assert workers["py-code"]["allow_code"] is True and workers["py-code"]["resources"]["codeSandbox"] == "none"
    finally:
        await worker.stop()


async def client_workers(foreman: Any) -> list[dict[str, Any]]:
    async with AsyncClient(foreman.url, foreman.api_key) as client:
        return await client.workers()


# ---------------------------------------------------------------------- end to end, Python workers


def divide_ten(x):  # type: ignore[no-untyped-def]
    return 10 // x


def sleepy(x):  # type: ignore[no-untyped-def]
    import time

    time.sleep(x)
    return x


def hog(mib):  # type: ignore[no-untyped-def]
    return len(bytearray(mib * 1024 * 1024))


def slow_square(x):  # type: ignore[no-untyped-def]
    import time

    time.sleep(0.02)
    return x * x


async def test_collatz_over_ten_thousand_arguments_on_a_python_worker(foreman: Any) -> None:
    worker = Worker(foreman.ws_url, "py-map", foreman.worker_token, allow_code=True, max_concurrent_tasks=4)
    await worker.start()
    try:
        # The synchronous client, as a script would use it (its own loop, in a thread here).
        def run() -> list[Any]:
            with Client(foreman.url, foreman.api_key) as client:
                return client.map(collatz_steps, range(1, 10001))

        results = await asyncio.to_thread(run)
        assert results[:5] == [0, 1, 7, 2, 5]
        assert results == [collatz_steps(n) for n in range(1, 10001)]
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            assert await client.map(collatz_steps, [27], chunk_size=1) == [111]
    finally:
        await worker.stop()


async def test_each_failed_argument_comes_back_with_its_type_message_and_traceback(foreman: Any) -> None:
    worker = Worker(foreman.ws_url, "py-map-fail", foreman.worker_token, allow_code=True)
    await worker.start()
    try:
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            with pytest.raises(JobFailedError) as info:
                await client.map(divide_ten, [1, 0, 5, 0, 2], chunk_size=5, max_attempts=1)
        err = info.value
        assert err.results == [10, None, 2, None, 5]
        assert [(f["argument_index"], f["error_type"], f["error_message"]) for f in err.failures] == [
            (1, "ZeroDivisionError", "integer division or modulo by zero"), (3, "ZeroDivisionError", "integer division or modulo by zero")]
        assert 'in divide_ten' in err.failures[0]["traceback"] and err.failures[0]["traceback"].rstrip().endswith("ZeroDivisionError: integer division or modulo by zero")
    finally:
        await worker.stop()


async def test_names_from_outside_are_refused_at_submission(foreman: Any) -> None:
    async with AsyncClient(foreman.url, foreman.api_key) as client:
        with pytest.raises(FunctionSourceError, match="uses_globals uses names from outside itself: helper, CONSTANT"):
            await client.submit_map(uses_globals, [1])
        # What the client does not check, the foreman does: one top-level def and nothing else.
        with pytest.raises(CrowdComputeError, match="CC_ERR_CODE_COMPILE") as refused:
            await client.submit_job({"kind": "map", "language": "python", "code": "import os\ndef f(x):\n    return x\n", "args": [1]})
        assert "exactly one top-level" in str(refused.value)


async def test_a_timeout_kills_the_call(foreman: Any) -> None:
    worker = Worker(foreman.ws_url, "py-map-timeout", foreman.worker_token, allow_code=True, timeout_grace=0.2)
    await worker.start()
    try:
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            job = await client.submit_map(sleepy, [3600], timeout_ms=300, max_attempts=1)
            outcome = await job.outcome()
        assert outcome["state"] == "failed"
        assert outcome["failures"][0]["error"]["code"] == "CC_ERR_TIMEOUT"
    finally:
        await worker.stop()


async def test_the_memory_limit_fails_the_chunk_without_retry(foreman: Any) -> None:
    worker = Worker(foreman.ws_url, "py-map-memory", foreman.worker_token, allow_code=True, code_memory_mb=256)
    await worker.start()
    try:
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            job = await client.submit_map(hog, [1, 2048], chunk_size=1, max_attempts=3)
            outcome = await job.outcome()
        assert outcome["results"][0] == 1024 * 1024
        error = outcome["failures"][0]["error"]
        assert error["code"] == "CC_ERR_MEMORY_LIMIT" and "256 MiB" in error["message"]
        task = await foreman_task(foreman, outcome["failures"][0]["task_id"])
        assert task["attempt"] == 1  # not retried: it would run out on the next worker too
    finally:
        await worker.stop()


async def foreman_task(foreman: Any, task_id: str) -> dict[str, Any]:
    async with AsyncClient(foreman.url, foreman.api_key) as client:
        return await client.get_task(task_id)


async def test_a_worker_killed_mid_job_still_gives_exact_results(foreman: Any, tmp_path: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    doomed = subprocess.Popen([sys.executable, "-m", "crowdcompute", "worker", "-f", foreman.ws_url, "--token", foreman.worker_token,
                               "--id", "py-doomed", "--allow-code", "--no-status", "--log-level", "warn"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    survivor: Worker | None = None
    try:
        async with AsyncClient(foreman.url, foreman.api_key) as client:
            job = await client.submit_map(slow_square, range(400), chunk_size=10)

            async def some_done() -> bool:
                j = await client.get_job(job.id)
                return 0 < j["completed_tasks"] < j["total_tasks"]

            await wait_for(some_done, 60, message="the doomed worker to finish some chunks, not all")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            survivor = Worker(foreman.ws_url, "py-survivor", foreman.worker_token, allow_code=True)
            await survivor.start()
            assert await job.result() == [x * x for x in range(400)]
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
        if survivor is not None:
            await survivor.stop()

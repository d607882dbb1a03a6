"""The benchmark's Python worker: one `Worker` with a no-op `async def` handler for
`bench.python.noop`, serving until SIGTERM (which drains it).

    PYTHONPATH=python /usr/bin/python3 bench/python-worker.py <foreman ws url> <worker id> <concurrency>

The token comes from the local credentials file the foreman left (CROWDCOMPUTE_CONFIG_DIR).
With CC_BENCH_PROFILE=<file> the worker runs under cProfile and writes its statistics there
when it stops (read them with `python3 -m pstats <file>`).
"""

from __future__ import annotations

import os
import sys

try:
    from crowdcompute import Worker
except ImportError as err:  # websockets missing, or PYTHONPATH not set to the SDK
    print(f"the Python worker cannot start: {err}", file=sys.stderr)
    sys.exit(3)


async def noop(task):  # type: ignore[no-untyped-def]
    return None


def main() -> None:
    url, worker_id, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    worker = Worker(url, worker_id, max_concurrent_tasks=concurrency)
    worker.register_handler("bench.python.noop", noop)
    profile_to = os.environ.get("CC_BENCH_PROFILE")
    if not profile_to:
        worker.run()
        return
    import asyncio
    import cProfile
    import signal

    async def serve() -> None:
        # SIGTERM stops the worker and lets this process end normally, so the profile is written.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
        await worker.start()
        await worker.wait_stopped()

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve())
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()

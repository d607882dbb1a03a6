"""A worker and a client in one program, against a running foreman (`crowdcompute foreman`, or
`bash scripts/start.sh`): the worker handles `math.*` and a batch handler, the client submits
to them and prints what comes back. On the foreman's machine no credential is typed: both find
the foreman's own in the local credentials file.

    python3 examples/sdk_example.py            # foreman at ws://localhost:8000/ws
    CROWDCOMPUTE_FOREMAN=ws://host:8000/ws python3 examples/sdk_example.py
"""

import asyncio
import os

from crowdcompute import AsyncClient, Task, Worker
from crowdcompute.flowkit import Batch, BatchResult, FinalizationResult, Handler

FOREMAN = os.environ.get("CROWDCOMPUTE_FOREMAN", "ws://localhost:8000/ws")


async def add(task: Task) -> dict:
    await worker.send_task_progress(50, "adding")
    return {"result": task.get_input("a") + task.get_input("b")}


class SumOfSquares(Handler):
    """Squares 0..n-1 in batches of 10, recording each batch; resumes where it stopped."""

    async def iter_batches(self, input_data):
        for start in range(0, input_data["n"], 10):
            yield Batch(batch_uid=f"from-{start}", payload={"start": start, "end": min(start + 10, input_data["n"])})

    async def process_batch(self, batch, ctx):
        total = sum(i * i for i in range(batch.payload["start"], batch.payload["end"]))
        await ctx.artifacts_writer.upsert_partial(batch.batch_uid, {"sum": total})
        return BatchResult(success=True, metrics={"sum": total, "items": batch.payload["end"] - batch.payload["start"]})

    async def finalize(self, ctx):
        return FinalizationResult(metrics={}, result=ctx.metrics["sum"])


worker = Worker(FOREMAN, worker_id=f"example-{os.getpid()}", max_concurrent_tasks=4)
worker.register_handler("math.*", add)
worker.register_handler("squares.sum", SumOfSquares())


async def main() -> None:
    await worker.start()
    async with AsyncClient(FOREMAN) as client:
        job = await client.submit("math.add", {"a": 1, "b": 2}, priority="high")
        print("math.add", await job.result())                       # math.add {'result': 3}
        many = await client.submit_many([{"type": "math.add", "input": {"a": i, "b": i}} for i in range(5)])
        print("many", [r["result"] for r in await many.result()])   # many [0, 2, 4, 6, 8]
        squares = await client.submit("squares.sum", {"n": 100})
        print("squares.sum", await squares.result())                # squares.sum 328350
    await worker.stop()


if __name__ == "__main__":
    asyncio.run(main())

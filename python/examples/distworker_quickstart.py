"""The DistWorker SDK's quick-start worker, ported by changing its import (and reading the
foreman's URL and token from the environment: CROWDCOMPUTE_FOREMAN, CROWDCOMPUTE_WORKER_TOKEN)."""

import asyncio
import os

from crowdcompute import Task, Worker


async def handle_math_task(task: Task):
    """Handle mathematical operations"""
    operation = task.get_input('operation')
    a = task.get_input('a')
    b = task.get_input('b')

    if operation == 'add':
        result = a + b
    elif operation == 'multiply':
        result = a * b
    else:
        raise ValueError(f"Unknown operation: {operation}")

    return {'result': result}


async def main():
    # Create worker
    worker = Worker(
        controller_url=os.environ.get('CROWDCOMPUTE_FOREMAN', 'ws://localhost:8000/ws'),
        worker_id='math-worker-001',
        worker_token=os.environ.get('CROWDCOMPUTE_WORKER_TOKEN'),
        resource_info={'cpu_cores': 4, 'memory_mb': 8192}
    )

    # Register task handler
    worker.register_handler('math.*', handle_math_task)

    # Start worker
    await worker.start()

    # Keep running
    try:
        while True:
            await asyncio.sleep(1)
    except KeyboardInterrupt:
        await worker.stop()

if __name__ == '__main__':
    asyncio.run(main())

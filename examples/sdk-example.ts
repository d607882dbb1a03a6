/**
 * The README's TypeScript example, runnable: `node --no-node-snapshot examples/sdk-example.ts`.
 * It starts a foreman on an in-memory SQLite store and an ephemeral port (pass a port and a
 * file to keep them), one worker, and a client; runs a map job and a named task; stops.
 */
import { startForeman } from '../src/foreman/index.ts';
import { Worker } from '../src/worker/index.ts';
import { Client } from '../src/client/index.ts';

const foreman = await startForeman({ port: Number(process.env.PORT ?? 0), database: process.env.DATABASE ?? 'sqlite::memory:', logLevel: 'warn' });

const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', maxConcurrentTasks: 4, allowCode: true, logLevel: 'warn' });
worker.handle('math.*', async (task) => ({ result: task.input.a + task.input.b }));
await worker.start();

const client = new Client({ url: foreman.url });
const squares = await client.map((x: number) => x * x, [1, 2, 3, 4, 5]);
console.log('squares', JSON.stringify(squares));                 // [1,4,9,16,25]

const job = await client.submit('math.add', { a: 1, b: 2 }, { priority: 'high' });
console.log('math.add', JSON.stringify(await job.result()));      // {"result":3}

await client.close();
await worker.stop();
await foreman.stop();

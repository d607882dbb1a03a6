import { startForeman } from 'crowdcompute/foreman';
import { Worker } from 'crowdcompute/worker';
import { Client } from 'crowdcompute/client';

const foreman = await startForeman({ port: 0, database: 'sqlite::memory:', logLevel: 'warn' });   // port 0: any free port

const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', maxConcurrentTasks: 4, allowCode: true });
worker.handle('math.*', async (task) => ({ result: task.input.a + task.input.b }));
await worker.start();

const client = new Client({ url: foreman.url });
const squares = await client.map((x: number) => x * x, [1, 2, 3, 4, 5]);
console.log('squares', JSON.stringify(squares));                 // squares [1,4,9,16,25]

const job = await client.submit('math.add', { a: 1, b: 2 }, { priority: 'high' });
console.log('math.add', JSON.stringify(await job.result()));      // math.add {"result":3}

await client.close();
await worker.stop();
await foreman.stop();

import { startForeman } from './src/foreman/index.ts';
import { Worker } from './src/worker/index.ts';
import { Client } from './src/client/index.ts';
import pg from 'pg';
const schema = 'cc_dbg_' + process.pid;
const database = `postgres://postgres@127.0.0.1:5432/test?schema=${schema}`;
const [f1, f2] = await Promise.all([1, 2].map((i) => startForeman({ port: 0, host: '127.0.0.1', database, foremanId: `f${i}`, logLevel: 'warn' })));
const w = new Worker({ foremanUrl: f1.wsUrl, workerId: 'w', logLevel: 'warn' }).handle('e', async (t) => t.input);
await w.start();
const c = new Client({ url: f2.url });
const lat: number[] = [];
for (let i = 0; i < 20; i++) { const t0 = performance.now(); await (await c.submit('e', i)).result(); lat.push(performance.now() - t0); }
console.log(lat.map((x) => x.toFixed(1)).join(' '));
await c.close(); await w.stop(); await f1.stop(); await f2.stop();
const k = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' }); await k.connect(); await k.query(`DROP SCHEMA ${schema} CASCADE`); await k.end();

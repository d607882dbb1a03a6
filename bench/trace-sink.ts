/**
 * An OTLP/HTTP endpoint for the `traces` benchmark: it takes every POST /v1/traces, answers at
 * once, and counts the requests, the bytes and the spans (by their `"spanId"` keys: no JSON
 * parse, so that the sink costs the machine little beside the processes being measured).
 * Loopback only.
 */
import { createServer, type Server } from 'node:http';

/** A running sink and what it received. */
export interface TraceSink {
  url: string;
  received(): { requests: number; bytes: number; spans: number };
  close(): Promise<void>;
}

/** Start a sink on a free port of 127.0.0.1. */
export async function startTraceSink(): Promise<TraceSink> {
  let requests = 0;
  let bytes = 0;
  let spans = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests++;
      bytes += body.length;
      const text = body.toString('latin1');
      for (let at = text.indexOf('"spanId"'); at !== -1; at = text.indexOf('"spanId"', at + 8)) spans++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    received: () => ({ requests, bytes, spans }),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

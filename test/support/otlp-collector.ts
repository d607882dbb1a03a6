/**
 * An OTLP/HTTP collector in the test's own process: foremen, workers and clients started with
 * OTEL_EXPORTER_OTLP_ENDPOINT at its URL send it their spans (OTLP/JSON, gzipped or not), and it
 * keeps every one, with its service's name, for the test to look up.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** A span as the collector received it, with its service's name. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type OtlpAttribute = { key: string; value: OtlpValue };

/** OTLP/JSON ids are hex; the protobuf-JSON mapping would give base64. Either way, hex. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
  }
  return out;
}

/** An OTLP/HTTP collector on 127.0.0.1 that keeps every span it is sent. */
export class Collector {
  readonly spans: ReceivedSpan[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: {
            traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[];
            events?: { name: string; attributes?: OtlpAttribute[] }[];
          }[] }[] }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(attributes(rs.resource?.attributes)['service.name']);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              this.spans.push({
                service, traceId: hexId(s.traceId), spanId: hexId(s.spanId), parentSpanId: hexId(s.parentSpanId), name: s.name, kind: s.kind,
                attributes: attributes(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The one span named so in that service and trace (that matches `where`, if given). */
  one(trace: string, service: string, name: string, where: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan {
    const found = this.spans.filter((s) => s.traceId === trace && s.service === service && s.name === name && where(s));
    assert.equal(found.length, 1, `one ${service} span "${name}" in trace ${trace}; got ${found.length} of ${JSON.stringify(this.spans.map((s) => [s.service, s.name, s.traceId]))}`);
    return found[0];
  }
}

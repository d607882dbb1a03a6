import { z } from 'zod';
import { CrowdComputeError } from './errors.ts';
import { TooDeepMessage, decodeFrame } from './framing.ts';
import { MAX_DOCUMENT_DEPTH, tooDeepError } from './json-limits.ts';
import { InboundSchema, OutboundSchema, INBOUND_TYPES, OUTBOUND_TYPES, type Inbound, type Outbound } from './messages.ts';

/** The first few problems of a failed parse, each with its path: `tasks.0.type: Required`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

function parseOne<T>(raw: unknown, schema: z.ZodType<T>, known: ReadonlySet<string>): T {
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  if (typeof type !== 'string') {
    throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', 'message must be a JSON object with a string "type"');
  }
  if (!known.has(type)) {
    throw new CrowdComputeError('CC_ERR_UNKNOWN_MESSAGE', `unknown message type "${type.slice(0, 60)}"`, { type: type.slice(0, 60) });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `invalid "${type}" message: ${describeIssues(parsed.error)}`, { type });
  }
  return parsed.data;
}

/** One parsed message, or the error that a bad one produced (so one bad message spoils nothing else). */
export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: CrowdComputeError; requestId?: string };

function parseFrame<T>(text: string, schema: z.ZodType<T>, known: ReadonlySet<string>): ParseResult<T>[] {
  let raws: unknown[];
  try {
    raws = decodeFrame(text);
  } catch (err) {
    return [{ ok: false, error: err as CrowdComputeError }];
  }
  return raws.map((raw) => {
    if (raw instanceof TooDeepMessage) {
      return { ok: false, error: tooDeepError(raw.type ? `the "${raw.type}" message` : 'the message', MAX_DOCUMENT_DEPTH), ...(raw.requestId ? { requestId: raw.requestId } : {}) };
    }
    try {
      return { ok: true, message: parseOne(raw, schema, known) };
    } catch (err) {
      const requestId = typeof raw === 'object' && raw !== null && typeof (raw as { requestId?: unknown }).requestId === 'string'
        ? (raw as { requestId: string }).requestId : undefined;
      return { ok: false, error: err as CrowdComputeError, ...(requestId ? { requestId } : {}) };
    }
  });
}

/** Parse a frame received by the foreman. */
export function parseInbound(text: string): ParseResult<Inbound>[] {
  return parseFrame(text, InboundSchema, INBOUND_TYPES);
}

/** Parse a frame received from the foreman (by a worker or client). */
export function parseOutbound(text: string): ParseResult<Outbound>[] {
  return parseFrame(text, OutboundSchema, OUTBOUND_TYPES);
}

/**
 * Input adapters: a graph node reads what its upstream nodes write, as they write it.
 *
 * `pull.from_artifacts` hands each upstream artifact to the node as one batch, in the order the
 * artifacts were recorded. `pull.from_artifacts.rechunk:size` flattens the artifacts' lists of
 * items and hands them on `size` at a time. Both poll every `pollMs` while the upstream nodes
 * run, and end once every upstream node has ended and everything it wrote has been read.
 *
 * Batch uids derive from what is read (the upstream node and batch uid, or the position of a
 * chunk's first item), and the artifacts' order is fixed once recorded, so every attempt of the
 * node sees the same batches under the same uids: a resumed attempt skips the ones it did.
 */
import { CrowdComputeError, type InputAdapter, type InputArgs } from '../../protocol/index.ts';

/** A batch as an adapter hands it to `processBatch` (the batch handler's `Batch`). */
export interface AdapterBatch {
  batchUid: string;
  payload: unknown;
}

/** What an adapter asks the foreman for. */
export interface PullQuery {
  fromNodes: string[];
  afterSeq: number;
  limit: number;
}

/** What the foreman answers: artifacts after the cursor, and whether the upstream nodes are done. */
export interface PulledArtifacts {
  artifacts: { seq: number; nodeId: string; batchUid: string; data: unknown }[];
  upstreamDone: boolean;
}

const PAGE = 100;
const DEFAULT_POLL_MS = 300;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(signal.reason); return; }
    const t = setTimeout(() => { signal.removeEventListener('abort', stop); resolve(); }, ms);
    const stop = () => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener('abort', stop, { once: true });
  });
}

/** Every upstream artifact in recorded order, waiting for more while the upstream nodes run. */
async function* artifactsOf(args: InputArgs, pull: (q: PullQuery) => Promise<PulledArtifacts>, signal: AbortSignal): AsyncGenerator<PulledArtifacts['artifacts'][number]> {
  let after = 0;
  for (;;) {
    signal.throwIfAborted();
    const page = await pull({ fromNodes: args.fromNodes, afterSeq: after, limit: PAGE });
    for (const a of page.artifacts) {
      after = a.seq;
      yield a;
    }
    // upstreamDone means the upstream nodes had ended before this page was read, and the page
    // held everything after the cursor: nothing more will come.
    if (page.upstreamDone) return;
    if (page.artifacts.length === 0) await sleep(args.pollMs ?? DEFAULT_POLL_MS, signal);
  }
}

/** The batches an input adapter gives a node's `processBatch`. */
export async function* adapterBatches(adapter: InputAdapter, args: InputArgs, pull: (q: PullQuery) => Promise<PulledArtifacts>, signal: AbortSignal, where: string): AsyncGenerator<AdapterBatch> {
  if (adapter === 'pull.from_artifacts') {
    for await (const a of artifactsOf(args, pull, signal)) yield { batchUid: `${a.nodeId}/${a.batchUid}`, payload: a.data };
    return;
  }
  const size = args.size!;
  const key = args.metaListKey;
  let items: unknown[] = [];
  let start = 0;
  const chunk = (list: unknown[]): AdapterBatch => ({ batchUid: `rechunk/${start}`, payload: key ? { [key]: list } : list });
  for await (const a of artifactsOf(args, pull, signal)) {
    const list = key ? (a.data as Record<string, unknown> | null)?.[key] : a.data;
    if (!Array.isArray(list)) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `${where}: the artifact of batch "${a.batchUid}" of node "${a.nodeId}" has no list ${key ? `under "${key}"` : '(it is not an array)'} to rechunk`, { retryable: false });
    }
    items = items.concat(list);
    while (items.length >= size) {
      yield chunk(items.slice(0, size));
      items = items.slice(size);
      start += size;
    }
  }
  if (items.length > 0) yield chunk(items);
}

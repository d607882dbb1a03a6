/**
 * Task graphs: checking a graph as submitted, and deciding when a node may start. Pure: the
 * store calls {@link releasable} inside the transaction that records an outcome or an artifact.
 *
 * A node waiting for its upstream nodes is stored as a queued task that is not available
 * before {@link BLOCKED_UNTIL}; releasing it makes it available now. So the claim needs no
 * notion of graphs at all.
 */
import { CrowdComputeError, type GraphJobSpec, type InputAdapter, type InputArgs, type TaskState } from '../protocol/index.ts';

/** A blocked node's availability time: later than any real time (the largest Date). */
export const BLOCKED_UNTIL = 8_640_000_000_000_000;

/** A node as the store and the dispatcher keep it. */
export interface GraphNodePlan {
  nodeId: string;
  taskId: string;
  index: number;
  type: string;
  dependsOn: string[];
  inputAdapter: InputAdapter | null;
  inputArgs: InputArgs | null;
  /** Its failure does not fail the graph. */
  optional?: boolean;
}

/** A graph as the store keeps it with its job. */
export interface GraphPlan {
  nodes: GraphNodePlan[];
  /** The node whose result is the graph's. */
  output: string;
}

/** True when a node starts as soon as its upstream nodes have written artifacts, rather than when they complete. */
export function streams(node: Pick<GraphNodePlan, 'inputAdapter' | 'inputArgs'>): boolean {
  return node.inputAdapter !== null && node.inputArgs?.eofOnTaskDone !== false;
}

/**
 * Check a graph and give each node its task id and dependencies: ids unique, dependencies and
 * adapters' `fromNodes` naming nodes of the graph (an adapter's nodes are dependencies too),
 * no cycles, `rechunk:size` given a size, the output a node. Errors name the node.
 */
export function planGraph(jobId: string, spec: Pick<GraphJobSpec, 'nodes' | 'output'>): GraphPlan {
  const bad = (message: string) => new CrowdComputeError('CC_ERR_BAD_MESSAGE', `graph: ${message}`);
  const ids = new Set<string>();
  for (const n of spec.nodes) {
    if (ids.has(n.id)) throw bad(`two nodes have the id "${n.id}"`);
    ids.add(n.id);
  }
  const nodes: GraphNodePlan[] = spec.nodes.map((n, index) => {
    const from = n.inputArgs?.fromNodes ?? [];
    if (n.inputAdapter && from.length === 0) throw bad(`node "${n.id}" has the input adapter ${n.inputAdapter} but no inputArgs.fromNodes`);
    if (!n.inputAdapter && n.inputArgs) throw bad(`node "${n.id}" has inputArgs but no inputAdapter`);
    if (n.inputAdapter === 'pull.from_artifacts.rechunk:size' && !n.inputArgs?.size) throw bad(`node "${n.id}": pull.from_artifacts.rechunk:size needs inputArgs.size`);
    const dependsOn = [...new Set([...(n.dependsOn ?? []), ...from])];
    for (const d of dependsOn) {
      if (!ids.has(d)) throw bad(`node "${n.id}" depends on "${d}", which is not a node of the graph`);
      if (d === n.id) throw bad(`node "${n.id}" depends on itself`);
    }
    return { nodeId: n.id, taskId: `${jobId}.${index}`, index, type: n.type, dependsOn, inputAdapter: n.inputAdapter ?? null, inputArgs: n.inputArgs ?? null,
      ...(n.optional ? { optional: true } : {}) };
  });
  // Cycles: repeatedly take the nodes whose dependencies are all taken.
  const taken = new Set<string>();
  let left = nodes;
  while (left.length > 0) {
    const ready = left.filter((n) => n.dependsOn.every((d) => taken.has(d)));
    if (ready.length === 0) throw bad(`the nodes ${left.map((n) => `"${n.nodeId}"`).join(', ')} depend on one another in a cycle`);
    for (const n of ready) taken.add(n.nodeId);
    left = left.filter((n) => !taken.has(n.nodeId));
  }
  const sinks = nodes.filter((n) => !nodes.some((m) => m.dependsOn.includes(n.nodeId)));
  const output = spec.output ?? sinks.at(-1)!.nodeId;
  if (!ids.has(output)) throw bad(`the output "${output}" is not a node of the graph`);
  return { nodes, output };
}

/** What the release rule needs to know of each node's task. */
export interface NodeStatus {
  state: TaskState;
  /** Still waiting for its upstream nodes. */
  blocked: boolean;
  /** It has written at least one artifact. */
  hasArtifacts: boolean;
}

/**
 * The blocked nodes that may start now: a streaming node (an input adapter with
 * `eofOnTaskDone`) once one of its upstream nodes has written an artifact or all of them
 * have ended; any other node once all its upstream nodes have completed (an optional node
 * that failed counts as done).
 */
export function releasable(plan: GraphPlan, status: ReadonlyMap<string, NodeStatus>): string[] {
  const out: string[] = [];
  const optional = new Set(plan.nodes.filter((n) => n.optional).map((n) => n.nodeId));
  const ended = (u: NodeStatus | undefined) => u !== undefined && (u.state === 'completed' || u.state === 'failed' || u.state === 'cancelled');
  for (const n of plan.nodes) {
    const s = status.get(n.nodeId);
    if (!s || !s.blocked || s.state !== 'queued') continue;
    const up = n.dependsOn.map((d) => [d, status.get(d)] as const);
    const ready = streams(n)
      ? up.some(([, u]) => u?.hasArtifacts) || up.every(([, u]) => ended(u))
      : up.every(([d, u]) => u?.state === 'completed' || (optional.has(d) && ended(u)));
    if (ready) out.push(n.taskId);
  }
  return out;
}

/**
 * A finished graph's state: failed when a node that is not optional failed; otherwise
 * cancelled if it was cancelled, else completed (optional nodes may have failed).
 */
export function graphState(plan: GraphPlan, failedTaskIds: readonly string[], cancelRequested: boolean): 'completed' | 'failed' | 'cancelled' {
  const optional = new Set(plan.nodes.filter((n) => n.optional).map((n) => n.taskId));
  if (failedTaskIds.some((id) => !optional.has(id))) return 'failed';
  return cancelRequested ? 'cancelled' : 'completed';
}

/** True when one of these failed tasks is a node whose failure fails the graph. */
export function failsGraph(plan: GraphPlan, failedTaskIds: readonly string[]): boolean {
  return graphState(plan, failedTaskIds, false) === 'failed';
}

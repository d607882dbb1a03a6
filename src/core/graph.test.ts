import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCKED_UNTIL, graphState, planGraph, releasable, type NodeStatus } from './graph.ts';

test('planGraph refuses duplicate ids, unknown dependencies, cycles and adapters without their arguments, naming the node', () => {
  const bad = (nodes: Parameters<typeof planGraph>[1]['nodes'], message: RegExp) => assert.throws(() => planGraph('j', { nodes }), message);
  bad([{ id: 'a', type: 't' }, { id: 'a', type: 't' }], /two nodes have the id "a"/);
  bad([{ id: 'a', type: 't', dependsOn: ['z'] }], /node "a" depends on "z", which is not a node/);
  bad([{ id: 'a', type: 't', dependsOn: ['b'] }, { id: 'b', type: 't', dependsOn: ['a'] }], /"a", "b" depend on one another in a cycle/);
  bad([{ id: 'a', type: 't', inputAdapter: 'pull.from_artifacts' }], /node "a" has the input adapter pull.from_artifacts but no inputArgs.fromNodes/);
  bad([{ id: 'a', type: 't' }, { id: 'b', type: 't', inputAdapter: 'pull.from_artifacts.rechunk:size', inputArgs: { fromNodes: ['a'] } }], /needs inputArgs.size/);
  assert.throws(() => planGraph('j', { nodes: [{ id: 'a', type: 't' }], output: 'x' }), /the output "x" is not a node/);
  const plan = planGraph('j', { nodes: [{ id: 'a', type: 't' }, { id: 'b', type: 't', inputAdapter: 'pull.from_artifacts', inputArgs: { fromNodes: ['a'] } }, { id: 'c', type: 't' }] });
  assert.equal(plan.output, 'c', 'the last node nothing depends on');
  assert.deepEqual(plan.nodes[1].dependsOn, ['a'], "an adapter's nodes are dependencies");
  assert.equal(plan.nodes[1].taskId, 'j.1');
});

test('releasable: streaming nodes at the first upstream artifact, others when upstream completed (an optional failure counts as done)', () => {
  const plan = planGraph('j', { nodes: [
    { id: 'up', type: 't', optional: true },
    { id: 'stream', type: 't', inputAdapter: 'pull.from_artifacts', inputArgs: { fromNodes: ['up'] } },
    { id: 'after', type: 't', dependsOn: ['up'] },
  ] });
  const st = (up: Partial<NodeStatus>) => new Map<string, NodeStatus>([
    ['up', { state: 'running', blocked: false, hasArtifacts: false, ...up }],
    ['stream', { state: 'queued', blocked: true, hasArtifacts: false }],
    ['after', { state: 'queued', blocked: true, hasArtifacts: false }],
  ]);
  assert.deepEqual(releasable(plan, st({})), []);
  assert.deepEqual(releasable(plan, st({ hasArtifacts: true })), ['j.1']);
  assert.deepEqual(releasable(plan, st({ state: 'completed', hasArtifacts: true })), ['j.1', 'j.2']);
  assert.deepEqual(releasable(plan, st({ state: 'failed' })), ['j.1', 'j.2'], 'up is optional');
  assert.ok(BLOCKED_UNTIL > Date.now() * 1000);
  assert.equal(graphState(plan, ['j.0'], false), 'completed');
  assert.equal(graphState(plan, ['j.0', 'j.2'], false), 'failed');
  assert.equal(graphState(plan, [], true), 'cancelled');
});

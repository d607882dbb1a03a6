/**
 * No cluster runs on the CI machines, so this checks deploy/kustomize the way one would take
 * it, short of applying it: each overlay rendered by `kubectl kustomize` (offline), every object
 * validated against its API's JSON schema (Kubernetes, KEDA, Prometheus Operator: the
 * kubernetes-models packages), then what the schemas cannot say (probes on the right path and
 * port, workers dialling the foremen's Service, Secrets the walkthrough makes, flags the CLI
 * has, the scaler's target and metric). Last, the rendered foreman and worker containers' commands
 * run outside Kubernetes, with their environment resolved as the kubelet would and the
 * walkthrough's steps (docs/operations.md, "Kubernetes") against the local PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ms from 'ms';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Client } from '../../src/client/index.ts';
import { TASK_STATES } from '../../src/protocol/index.ts';
import { FreezableProxy, freePort, waitFor } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const kubectl = process.env.KUBECTL ?? 'kubectl';

/** Whether kubectl runs here; under CI=true its absence fails the test rather than skipping it. */
function kubectlMissing(): string | false {
  try {
    execFileSync(kubectl, ['version', '--client'], { stdio: 'ignore' });
    return false;
  } catch {
    const why = `${kubectl} is not installed (scripts/ensure-kubectl.sh installs Debian's kubectl)`;
    if (process.env.CI === 'true') throw new Error(`${why}; CI=true needs it to render deploy/kustomize`);
    return why;
  }
}
const missing = kubectlMissing();
// Asked before any test runs: the renders below block the event loop for seconds at a time.
const pgUrl = missing ? null : await testPostgresUrl();

// ---- the objects, as rendered ----

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
type Container = { name: string; image: string; args?: string[]; env?: any[]; envFrom?: any[]; ports?: { name?: string; containerPort: number }[]; readinessProbe?: any; livenessProbe?: any; startupProbe?: any; resources?: any; securityContext?: any; volumeMounts?: { name: string; mountPath: string }[] };

/** The model class of each kind this repository ships, by API version. Any other fails the test. */
const MODELS: Record<string, Record<string, unknown>> = {
  v1: core, 'apps/v1': apps, 'policy/v1': policy, 'autoscaling/v2': autoscaling,
  'keda.sh/v1alpha1': keda, 'monitoring.coreos.com/v1': monitoring,
};

const overlaysDir = join(root, 'deploy/kustomize/overlays');
const overlays = readdirSync(overlaysDir).filter((d) => existsSync(join(overlaysDir, d, 'kustomization.yaml')));

function render(overlay: string): Obj[] {
  const text = execFileSync(kubectl, ['kustomize', join(overlaysDir, overlay)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`${overlay}: ${d.errors[0].message}`);
    return d.toJS() as Obj;
  }).filter((o) => o !== null);
}

const docs = readFileSync(join(root, 'docs/operations.md'), 'utf8');

/** The metric names the foreman exports, read from its source so that renaming one fails here. */
const foremanMetricNames = new Set([...readFileSync(join(root, 'src/foreman/shared/foreman-metrics.ts'), 'utf8').matchAll(/name: '(crowdcompute_[a-z_]+)'/g)].map((m) => m[1]));

/** Every long option of a CLI command, from its --help. */
const helpFlags = new Map<string, Set<string>>();
function flagsOf(command: string): Set<string> {
  if (!helpFlags.has(command)) {
    const help = execFileSync(process.execPath, ['--no-node-snapshot', 'bin/crowdcompute.js', command, '--help'], { cwd: root, encoding: 'utf8' });
    // The options' own lines (`  -p, --port <port>  …`), not flags named in other options' help.
    helpFlags.set(command, new Set([...help.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z][a-z-]*)/gm)].map((m) => m[1])));
  }
  return helpFlags.get(command)!;
}

function one(objects: Obj[], kind: string, pick: (o: Obj) => boolean = () => true): Obj {
  const found = objects.filter((o) => o.kind === kind && pick(o));
  assert.equal(found.length, 1, `one ${kind} expected, found ${found.length}`);
  return found[0];
}

const containerOf = (d: Obj): Container => d.spec.template.spec.containers[0];
const role = (d: Obj) => containerOf(d).args?.[0];
const argAfter = (c: Container, flag: string) => { const i = c.args!.indexOf(flag); return i < 0 ? undefined : c.args![i + 1]; };
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A container's port number for a probe's or Service's port (a name or a number). */
function portNumber(c: Container, port: string | number): number {
  if (typeof port === 'number') return port;
  const p = c.ports?.find((x) => x.name === port);
  assert.ok(p, `${c.name} has no port named ${port}`);
  return p.containerPort;
}

/** Secrets the walkthrough makes: name -> the keys it gives them. */
function documentedSecrets(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of docs.matchAll(/kubectl -n crowdcompute create secret generic ([a-z0-9-]+) --from-literal=([a-z0-9_-]+)=/g)) {
    out.set(m[1], new Set([...(out.get(m[1]) ?? []), m[2]]));
  }
  return out;
}

/**
 * The environment the kubelet would give a container: its env and envFrom (ConfigMaps from the
 * render, Secrets and the pod's fields from `given`), with $(VAR) expanded in values and args.
 */
function resolve(objects: Obj[], c: Container, given: { secret: (name: string, key: string) => string; podName: string }): { env: Record<string, string>; args: string[] } {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = one(objects, 'ConfigMap', (o) => o.metadata.name === from.configMapRef.name);
    Object.assign(env, cm.data);
  }
  const expand = (v: string) => v.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
    assert.ok(name in env, `$(${name}) in ${c.name} names no variable defined before it`);
    return env[name];
  });
  for (const e of c.env ?? []) {
    if ('value' in e) env[e.name] = expand(e.value);
    else if (e.valueFrom.secretKeyRef) env[e.name] = given.secret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom.configMapKeyRef) env[e.name] = one(objects, 'ConfigMap', (o) => o.metadata.name === e.valueFrom.configMapKeyRef.name).data![e.valueFrom.configMapKeyRef.key];
    else if (e.valueFrom.fieldRef) { assert.equal(e.valueFrom.fieldRef.fieldPath, 'metadata.name'); env[e.name] = given.podName; }
    else if (e.valueFrom.resourceFieldRef) env[e.name] = String(resourceValue(c, e.valueFrom.resourceFieldRef));
    else assert.fail(`${c.name}: env ${e.name} has a source this test does not know`);
  }
  return { env, args: (c.args ?? []).map(expand) };
}

/** limits.cpu in whole cores (rounded up, as the kubelet does), limits.memory in its divisor. */
function resourceValue(c: Container, ref: { resource: string; divisor?: string }): number {
  const [kind, what] = ref.resource.split('.');
  const value = c.resources?.[kind]?.[what];
  assert.ok(value !== undefined, `${c.name} exposes ${ref.resource} but sets none (it would get the node's)`);
  return Math.ceil(quantity(String(value)) / quantity(ref.divisor ?? '1'));
}

function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  assert.ok(m, `quantity ${q}`);
  const unit = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** The metric names and label matchers of a PromQL expression (what this one needs: selectors). */
function selectors(query: string): { metric: string; labels: Record<string, string> }[] {
  return [...query.matchAll(/(crowdcompute_[a-z_]+)(?:\{([^}]*)\})?/g)].map((m) => ({
    metric: m[1],
    labels: Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((l) => [l[1], l[2]])),
  }));
}

for (const overlay of overlays) {
  test(`deploy/kustomize/overlays/${overlay}: rendered, every object valid against its API schema, and coherent`, { skip: missing }, () => {
    const objects = render(overlay);
    assert.ok(objects.length > 0);
    for (const o of objects) {
      const Model = MODELS[o.apiVersion]?.[o.kind] as (new (data: unknown) => { validate(): void }) | undefined;
      assert.ok(Model, `${o.kind} ${o.metadata.name}: no schema for ${o.apiVersion} here; add its model to MODELS`);
      try {
        new Model(o).validate();
      } catch (err) {
        assert.fail(`${o.kind} ${o.metadata.name} is not valid ${o.apiVersion}: ${(err as Error).message}`);
      }
    }
    const namespace = one(objects, 'Namespace').metadata.name;
    for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, namespace, `${o.kind} ${o.metadata.name} in the overlay's namespace`);

    const deployments = objects.filter((o) => o.kind === 'Deployment');
    const foreman = one(deployments, 'Deployment', (d) => role(d) === 'foreman');
    const worker = one(deployments, 'Deployment', (d) => role(d) === 'worker');
    const fc = containerOf(foreman);
    const wc = containerOf(worker);

    // Every flag given exists on the command (its --help), and every image is the overlay's.
    for (const c of [fc, wc]) {
      for (const flag of c.args!.filter((a) => a.startsWith('--'))) assert.ok(flagsOf(c.args![0]).has(flag), `${c.args![0]} has no ${flag} (crowdcompute ${c.args![0]} --help)`);
      assert.match(c.image, /^[a-z0-9.-]+(:\d+)?\/.+:.+$/, `${c.name}: the overlay names a registry and a tag, not ${c.image}`);
    }

    // Foremen: several, on a database and a secret from Secrets; ready from /health on their port.
    assert.ok(foreman.spec.replicas >= 2, 'at least two foremen');
    const env = (c: Container, name: string) => c.env?.find((e) => e.name === name);
    for (const name of ['CROWDCOMPUTE_DATABASE', 'CROWDCOMPUTE_SECRET']) assert.ok(env(fc, name)?.valueFrom?.secretKeyRef, `${name} from a Secret`);
    const foremanPort = Number(argAfter(fc, '--port'));
    assert.equal(fc.readinessProbe.httpGet.path, '/health');
    assert.equal(portNumber(fc, fc.readinessProbe.httpGet.port), foremanPort);
    assert.notEqual(fc.livenessProbe.httpGet?.path, '/health', 'liveness is not /health: a database outage must not restart the foremen');
    const service = one(objects, 'Service', (s) => selects(s.spec.selector, foreman.spec.template.metadata.labels));
    const servicePort = service.spec.ports[0];
    assert.equal(portNumber(fc, servicePort.targetPort), foremanPort);
    const pdb = one(objects, 'PodDisruptionBudget');
    assert.ok(selects(pdb.spec.selector.matchLabels, foreman.spec.template.metadata.labels), 'the PodDisruptionBudget covers the foremen');
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < foreman.spec.replicas);

    // Workers: dial the foremen's Service, ready from /health on their status port, and drain
    // within their grace period.
    const resolved = resolve(objects, wc, { secret: () => 'x', podName: 'worker-0' });
    const foremanUrl = new URL(resolved.env.CROWDCOMPUTE_FOREMAN ?? argAfter(wc, '--foreman') ?? '');
    assert.equal(foremanUrl.protocol, 'ws:');
    assert.ok([service.metadata.name, `${service.metadata.name}.${namespace}`, `${service.metadata.name}.${namespace}.svc`].includes(foremanUrl.hostname), `workers dial ${foremanUrl.hostname}, not the foremen's Service ${service.metadata.name}`);
    assert.equal(Number(foremanUrl.port), servicePort.port);
    assert.equal(foremanUrl.pathname, '/ws');
    const args = resolved.args;
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(wc.readinessProbe.httpGet.path, '/health');
    assert.equal(portNumber(wc, wc.readinessProbe.httpGet.port), Number(value('--status-port')));
    assert.notEqual(wc.livenessProbe.httpGet?.path, '/health', 'liveness is not /health: a worker reconnects by itself');
    assert.equal(value('--status-host'), '0.0.0.0', 'the kubelet reaches the status server on the pod\'s address');
    const drainSeconds = ms(value('--drain-timeout') as ms.StringValue) / 1000;
    assert.ok(worker.spec.template.spec.terminationGracePeriodSeconds > drainSeconds, `terminationGracePeriodSeconds leaves the drain (${drainSeconds} s) time to end`);
    assert.ok(Number(value('--cpus')) >= 1 && Number(value('--memory')) >= 256, 'workers are told their pod\'s limits');

    // Pods: non-root by number (runAsNonRoot cannot check a user named in the image), a read-only
    // root, and writable mounts where the processes write.
    for (const d of [foreman, worker]) {
      const pod = d.spec.template.spec;
      const c = containerOf(d);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(Number.isInteger(pod.securityContext.runAsUser) && pod.securityContext.runAsUser > 0);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.ok(c.volumeMounts!.some((m) => m.mountPath === '/tmp'));
      assert.ok(c.resources?.limits?.memory && c.resources?.requests?.cpu, `${c.name} has resources`);
    }
    // The foremen keep no local credentials file (the root is read-only; nobody in the pod needs one).
    assert.ok(fc.args!.includes('--no-local-credentials'), 'the foreman writes no local credentials file');
    assert.ok(env(fc, 'CROWDCOMPUTE_SECRET')?.valueFrom?.secretKeyRef, 'the foreman is given the deployment\'s secret');
    const tokenFile = argAfter(wc, '--token-file')!;
    const tokenMount = wc.volumeMounts!.find((m) => tokenFile.startsWith(`${m.mountPath}/`))!;
    assert.ok(tokenMount, 'the worker token file is mounted');
    const tokenVolume = worker.spec.template.spec.volumes.find((v: { name: string }) => v.name === tokenMount.name);

    // Secrets: each one referenced, with the key read, is in the render or made by the walkthrough.
    const made = documentedSecrets();
    const referenced: [string, string][] = [];
    for (const d of [foreman, worker]) for (const e of containerOf(d).env ?? []) if (e.valueFrom?.secretKeyRef) referenced.push([e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]);
    referenced.push([tokenVolume.secret.secretName, tokenFile.slice(tokenMount.mountPath.length + 1)]);
    const monitor = one(objects, 'ServiceMonitor');
    for (const ep of monitor.spec.endpoints) if (ep.authorization) referenced.push([ep.authorization.credentials.name, ep.authorization.credentials.key]);
    for (const [name, key] of referenced) {
      const inRender = objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
      assert.ok(inRender ? key in (inRender.data ?? {}) : made.get(name)?.has(key), `Secret ${name} (key ${key}) is neither rendered nor made in docs/operations.md`);
    }

    // Monitoring: the ServiceMonitor scrapes the foremen's Service on /metrics with a key; the
    // PodMonitor the workers' status port.
    assert.ok(selects(monitor.spec.selector.matchLabels, service.metadata.labels));
    assert.ok(monitor.spec.endpoints.every((ep: { port: string; path: string }) => service.spec.ports.some((p: { name: string }) => p.name === ep.port) && ep.path === '/metrics'));
    const podMonitor = one(objects, 'PodMonitor');
    assert.ok(selects(podMonitor.spec.selector.matchLabels, worker.spec.template.metadata.labels));
    for (const ep of podMonitor.spec.podMetricsEndpoints) assert.equal(portNumber(wc, ep.port), Number(value('--status-port')));

    // Scaling: the worker Deployment, one worker per WORKER_CONCURRENCY tasks queued or running,
    // on metrics the foreman exports, in this namespace.
    const concurrency = Number(value('--concurrency'));
    const scalers = objects.filter((o) => o.kind === 'ScaledObject' || o.kind === 'HorizontalPodAutoscaler');
    assert.equal(scalers.length, 1, 'one autoscaler for the workers');
    const scaler = scalers[0];
    assert.equal(scaler.spec.scaleTargetRef.name, worker.metadata.name);
    assert.equal(scaler.spec.scaleTargetRef.kind ?? 'Deployment', 'Deployment');
    assert.equal(worker.spec.replicas, undefined, 'the autoscaled Deployment names no replica count, which each kubectl apply would restore');
    let query: string;
    if (scaler.kind === 'ScaledObject') {
      assert.equal(scaler.spec.triggers.length, 1);
      const trigger = scaler.spec.triggers[0];
      assert.equal(trigger.type, 'prometheus');
      assert.equal(Number(trigger.metadata.threshold), concurrency, 'the scaler counts WORKER_CONCURRENCY tasks per worker');
      query = trigger.metadata.query;
      for (const s of selectors(query)) assert.equal(s.labels.namespace, namespace, `${s.metric} in the query is limited to the namespace ${namespace}`);
    } else {
      const metric = scaler.spec.metrics[0];
      assert.equal(metric.type, 'External');
      assert.equal(Number(metric.external.target.averageValue), concurrency, 'the scaler counts WORKER_CONCURRENCY tasks per worker');
      // The adapter's rule, as the walkthrough gives it.
      const block = /```yaml\n(externalRules:[\s\S]*?)```/.exec(docs);
      assert.ok(block, 'docs/operations.md gives prometheus-adapter\'s rule');
      const rules = parseAllDocuments(block[1])[0].toJS().externalRules as { name: { as: string }; metricsQuery: string }[];
      const rule = rules.find((r) => r.name.as === metric.external.metric.name);
      assert.ok(rule, `docs/operations.md has an adapter rule for ${metric.external.metric.name}`);
      query = rule.metricsQuery;
    }
    const used = selectors(query);
    assert.deepEqual(used.map((s) => s.metric).sort(), ['crowdcompute_queue_depth', 'crowdcompute_tasks'], 'queued and running tasks');
    for (const s of used) {
      assert.ok(foremanMetricNames.has(s.metric), `${s.metric} is not a metric of the foreman (src/foreman/shared/foreman-metrics.ts)`);
      if (s.labels.state) assert.ok((TASK_STATES as readonly string[]).includes(s.labels.state));
    }
    assert.equal(used.find((s) => s.metric === 'crowdcompute_tasks')?.labels.state, 'running');
  });
}

// ---- the rendered commands, run ----

/** `kubectl -n … exec deploy/<name> -- <command>` inside each `create secret` of the walkthrough. */
function documentedExecs(): Map<string, { deployment: string; command: string[] }> {
  const out = new Map<string, { deployment: string; command: string[] }>();
  for (const m of docs.matchAll(/create secret generic ([a-z0-9-]+) --from-literal=[a-z]+="\$\(kubectl -n crowdcompute exec deploy\/([a-z0-9-]+) -- ([^)]*)\)"/g)) {
    out.set(m[1], { deployment: m[2], command: [...m[3].matchAll(/'([^']*)'|(\S+)/g)].map((w) => w[1] ?? w[2]) });
  }
  return out;
}

test('the production overlay\'s foreman and worker commands, run outside Kubernetes with the walkthrough\'s steps: ready, scraped, a job runs, unready but alive while the database is away, a worker drains on SIGTERM', { skip: missing || (pgUrl ? false : 'no PostgreSQL reachable') }, async () => {
  const objects = render('production');
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const foreman = one(deployments, 'Deployment', (d) => role(d) === 'foreman');
  const worker = one(deployments, 'Deployment', (d) => role(d) === 'worker');
  const service = one(objects, 'Service');
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]) as string[];
  assert.deepEqual(entry.slice(0, 2), ['node', '--no-node-snapshot']);

  const schema = `cc_kubernetes_${process.pid}`;
  // The database, behind a proxy that can take it away.
  const proxy = await FreezableProxy.start(Number(new URL(pgUrl!).port || 5432));
  const database = new URL(pgUrl!);
  database.port = String(proxy.port);
  database.searchParams.set('schema', schema);
  const scratch = mkdtempSync(join(tmpdir(), 'cc-kubernetes-'));
  // The Secrets of step 2; those of step 4 are filled in below.
  const secrets = new Map<string, Record<string, string>>([
    ['crowdcompute-secret', { secret: randomBytes(32).toString('base64') }],
    ['crowdcompute-database', { url: database.toString() }],
  ]);
  const secret = (name: string, key: string) => {
    const v = secrets.get(name)?.[key];
    assert.ok(v !== undefined, `Secret ${name} (key ${key}) is needed before the walkthrough makes it`);
    return v;
  };
  // A pod's volumes: directories of their own, at the paths the container reads them from.
  const pod = (d: Obj, name: string, ports: Map<number, number>, servicePort: number) => {
    const c = containerOf(d);
    const { env, args } = resolve(objects, c, { secret, podName: name });
    const mounts = new Map<string, string>();
    for (const m of c.volumeMounts ?? []) {
      const dir = join(scratch, name, m.name);
      mkdirSync(dir, { recursive: true });
      const volume = d.spec.template.spec.volumes.find((v: { name: string }) => v.name === m.name);
      if (volume.secret) for (const [k, v] of Object.entries(secrets.get(volume.secret.secretName) ?? {})) writeFileSync(join(dir, k), v);
      mounts.set(m.mountPath, dir);
    }
    const local = (v: string) => {
      for (const [path, dir] of mounts) if (v === path || v.startsWith(`${path}/`)) return dir + v.slice(path.length);
      // The foremen's Service, on this machine: one foreman's port.
      return v.replace(`${service.metadata.name}:${service.spec.ports[0].port}`, `127.0.0.1:${servicePort}`);
    };
    const home = join(scratch, name, 'home');
    mkdirSync(home, { recursive: true });
    const out = {
      env: { PATH: process.env.PATH!, HOME: home, TMPDIR: mounts.get('/tmp')!, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, local(v)])) },
      args: args.map(local).map((a, i, all) => (['--port', '--status-port'].includes(all[i - 1]) ? String(ports.get(Number(a))) : a)),
      home,
    };
    return out;
  };
  const children: ChildProcess[] = [];
  const start = (name: string, p: { env: Record<string, string>; args: string[] }) => {
    const child = spawn(process.execPath, [...entry.slice(1), ...p.args], { cwd: root, env: p.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (b: Buffer) => { log = (log + b.toString()).slice(-4000); });
    child.on('exit', (code) => { if (code !== 0 && code !== null) process.stderr.write(`${name} exited ${code}: ${log}\n`); });
    children.push(child);
    return child;
  };
  const get = async (port: number, path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers }).catch(() => null);
    return r ? { status: r.status, text: await r.text() } : null;
  };
  let client: Client | null = null;
  try {
    // Step 3: the foremen (as many as the Deployment's replicas).
    const foremanPort = Number(argAfter(containerOf(foreman), '--port'));
    const foremen: { port: number; home: string; env: Record<string, string> }[] = [];
    for (let i = 0; i < foreman.spec.replicas; i++) {
      const port = await freePort();
      const p = pod(foreman, `crowdcompute-foreman-${i}`, new Map([[foremanPort, port]]), foremen[0]?.port ?? port);
      start(`foreman ${i}`, p);
      foremen.push({ port, home: p.home, env: p.env });
    }
    const probe = containerOf(foreman).readinessProbe.httpGet;
    for (const f of foremen) await waitFor(async () => (await get(f.port, probe.path))?.status === 200 || null, { timeoutMs: 60_000, message: `foreman on ${f.port} ready (${probe.path})` });

    // Step 4: the token and the metrics key, made as the walkthrough makes them, in a foreman's container.
    const execs = documentedExecs();
    assert.deepEqual([...execs.keys()].sort(), ['crowdcompute-metrics-key', 'crowdcompute-worker-token']);
    const inForeman = async (command: string[]) => {
      assert.deepEqual(command.slice(0, 3), entry, 'the walkthrough runs the image\'s CLI');
      return (await run(process.execPath, command.slice(1), { cwd: root, env: foremen[0].env })).stdout.trim();
    };
    for (const [name, e] of execs) {
      assert.equal(e.deployment, foreman.metadata.name);
      const key = /create secret generic [a-z0-9-]+ --from-literal=([a-z]+)=/.exec(docs.slice(docs.indexOf(`create secret generic ${name} `)))![1];
      secrets.set(name, { [key]: await inForeman(e.command) });
    }
    assert.match(secret('crowdcompute-worker-token', 'token'), /^cct_/);

    // The worker, dialling "the Service" (the first foreman here).
    const statusPort = await freePort();
    const wp = pod(worker, 'crowdcompute-worker-0', new Map([[8001, statusPort]]), foremen[0].port);
    assert.equal(argAfter(containerOf(worker), '--status-port'), '8001');
    const workerProcess = start('worker', wp);
    const wprobe = containerOf(worker).readinessProbe.httpGet;
    await waitFor(async () => (await get(statusPort, wprobe.path))?.status === 200 || null, { timeoutMs: 60_000, message: 'worker ready (connected)' });
    assert.equal((await get(statusPort, containerOf(worker).livenessProbe.httpGet.path))?.status, 200);

    // Step 5: an operator's key, a job through the worker.
    const adminKey = await inForeman([...entry, 'key', 'create', '--scopes', 'admin', '--name', 'ops']);
    client = new Client({ url: `http://127.0.0.1:${foremen[1]?.port ?? foremen[0].port}`, apiKey: adminKey });
    assert.deepEqual(await client.map((x: number) => x * 2, [1, 2, 3]), [2, 4, 6]);

    // What Prometheus scrapes with the metrics key has the series the scaler's query reads.
    const monitor = one(objects, 'ServiceMonitor').spec.endpoints[0];
    assert.equal((await get(foremen[0].port, monitor.path))?.status, 401, 'the metrics need the key');
    const scrape = await get(foremen[0].port, monitor.path, { authorization: `Bearer ${secret('crowdcompute-metrics-key', 'key')}` });
    assert.equal(scrape?.status, 200);
    const query = one(objects, 'ScaledObject').spec.triggers[0].metadata.query as string;
    for (const s of selectors(query)) {
      const { namespace: _n, job: _j, ...own } = s.labels;
      const want = `${s.metric}${Object.keys(own).length ? `{${Object.entries(own).map(([k, v]) => `${k}="${v}"`).join(',')}}` : ''} `;
      assert.ok(scrape!.text.includes(want), `the scrape has ${want.trim()}`);
    }

    // The database goes away: the foremen are unready, alive, and keep their worker.
    const liveness = containerOf(foreman).livenessProbe.httpGet;
    proxy.cut();
    for (const f of foremen) {
      await waitFor(async () => (await get(f.port, probe.path))?.status === 503 || null, { timeoutMs: 60_000, message: `foreman on ${f.port} unready while the database is away` });
      assert.equal((await get(f.port, liveness.path))?.status, 200, 'alive while the database is away');
    }
    assert.equal((await get(statusPort, wprobe.path))?.status, 200, 'the worker stays connected');
    proxy.restore();
    for (const f of foremen) await waitFor(async () => (await get(f.port, probe.path))?.status === 200 || null, { timeoutMs: 60_000, message: `foreman on ${f.port} ready again` });

    // A scale-down: SIGTERM drains the worker, which exits by itself within its grace period.
    const exited = new Promise<number | null>((r) => workerProcess.once('exit', (code) => r(code)));
    workerProcess.kill('SIGTERM');
    assert.equal(await exited, 0);

    // Nothing was written outside the pods' volumes (their root is read-only).
    for (const home of [...foremen.map((f) => f.home), wp.home]) assert.deepEqual(readdirSync(home), [], `${home} stays empty`);
  } finally {
    await client?.close();
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    rmSync(scratch, { recursive: true, force: true });
    await proxy.close();
    const c = new pg.Client({ connectionString: pgUrl! });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});

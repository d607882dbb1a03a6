/**
 * The flags that describe a job, shared by the commands that submit one (`submit`, `map`,
 * `graph run`) and `schedule create`, which keeps one to fire later: the same words give the
 * same job spec, built by the SDK's own spec builders.
 */
import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { MapFunction, MapOptions, TaskOptions } from '../client/index.ts';
import { JOB_LIMITS, JOB_NAME_MAX, MAX_TIME_AHEAD_MS, PRIORITIES, webhookUrlProblem, type Priority } from '../protocol/index.ts';
import { loadModule } from './load-module.ts';
import { pythonFunctionFromFile, splitPythonTarget } from './python-function.ts';
import { parseDuration, parseDurationFlag, parseIntArg, parseJsonArg, parseTime, parseTimeArg, parseWeight, within } from './parse-args.ts';

function priorityArg(v: string): Priority {
  if (!(PRIORITIES as readonly string[]).includes(v)) throw new Error(`priority must be one of ${PRIORITIES.join(', ')}`);
  return v as Priority;
}

/** `--run-on`: where a map job's tasks may run. */
function runOnArg(v: string): 'any' | 'node' | 'browser' {
  if (v !== 'any' && v !== 'node' && v !== 'browser') throw new Error(`--run-on takes any, node or browser, not "${v}"`);
  return v;
}

/** The parsed flags of {@link taskFlags}, {@link mapFlags} and {@link startFlags}. */
export interface JobFlagValues {
  priority?: Priority; timeout?: number; queueTimeout?: number; maxAttempts?: number;
  chunkSize?: number; runOn?: 'any' | 'node' | 'browser'; weight?: number; maxConcurrency?: number;
  at?: string | number; delay?: number; deadline?: number; webhook?: string;
}

/** `--webhook`: a URL the job's end is posted to, checked here so a typo fails before anything is sent. */
function webhookArg(v: string): string {
  const problem = webhookUrlProblem(v);
  if (problem) throw new Error(`--webhook ${problem}`);
  return v;
}

/** `--webhook <url>`: post the job's end there (signed; see docs/operations.md, "Webhooks"). */
export function webhookFlag(cmd: Command): Command {
  return cmd.option('--webhook <url>', 'post the job\'s end to this http(s) URL, signed, retried until it answers 2xx (default: your API key\'s webhook, if it has one)', webhookArg);
}

/** `--name`: a name for people, checked here so that one too long fails before anything is sent. */
function nameArg(v: string): string {
  if (v.trim() === '') throw new InvalidArgumentError('--name is empty: give a name for people, or leave it out');
  if (v.length > JOB_NAME_MAX) throw new InvalidArgumentError(`--name is ${v.length} characters long; at most ${JOB_NAME_MAX}`);
  return v;
}

/** `--name` of a submitted job (`what` says its default). */
export function nameFlag(cmd: Command, what: string): Command {
  return cmd.option('--name <name>', `a name for people, shown in job lists and on the dashboard (default: ${what})`, nameArg);
}

/** A default job name, cut to the length a name may have. */
export function defaultJobName(name: string): string {
  return name.length <= JOB_NAME_MAX ? name : `${name.slice(0, JOB_NAME_MAX - 1)}…`;
}

/** Options every job of tasks takes: priority, per-task timeout, queue timeout, attempts, webhook. */
export function taskFlags(cmd: Command): Command {
  return webhookFlag(cmd)
    .option('--priority <p>', `one of ${PRIORITIES.join(', ')}`, priorityArg)
    .option('--timeout <duration>', 'per-task timeout, e.g. 30s (at most 24d)', within(parseDuration, '--timeout', JOB_LIMITS.timeoutMs))
    .option('--queue-timeout <duration>', 'fail tasks no worker has started this long after submission (CC_ERR_NO_WORKER), e.g. 5m', within(parseDuration, '--queue-timeout', JOB_LIMITS.queueTimeoutMs))
    .option('--max-attempts <n>', 'attempts per task before it fails for good', within(parseIntArg, '--max-attempts', JOB_LIMITS.maxAttempts));
}

/** Options of a map job: chunking, where it runs, its share of the workers. */
export function mapFlags(cmd: Command): Command {
  return cmd
    .option('--export <name>', 'named export to ship instead of the default')
    .option('--chunk-size <n>', 'arguments per task (default: chosen from the count)', within(parseIntArg, '--chunk-size', JOB_LIMITS.chunkSize))
    .option('--run-on <where>', 'any (default), node (Node workers only) or browser (browser tabs that opened a join link only)', runOnArg)
    .option('--weight <w>', 'its share of the workers against your other jobs of its priority (default 1; 3 = three times as many tasks at once)', parseWeight)
    .option('--max-concurrency <n>', 'at most this many of its tasks run at once', within(parseIntArg, '--max-concurrency', JOB_LIMITS.maxConcurrency));
}

/** `--at` / `--delay`: the job's tasks wait in state `scheduled` until then; `--deadline`: they fail if unfinished by then. */
export function startFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--at <time>', 'do not start before this time: RFC 3339 with its offset (2026-12-06T20:00:00Z) or epoch ms; its tasks wait as "scheduled" until then (at most a year ahead)')
      .argParser(parseTime('--at')).conflicts('delay'))
    .addOption(new Option('--delay <duration>', 'do not start until this long after submission, e.g. 10m, 2h, 1d (at most a year); its tasks wait as "scheduled"')
      .argParser(parseDurationFlag('--delay', MAX_TIME_AHEAD_MS)))
    .option('--deadline <time>', 'fail its unfinished tasks (CC_ERR_DEADLINE) past this time: an RFC 3339 time, epoch ms, or a duration from now such as 30m', parseTimeArg);
}

/** The job options the flags give, only those set. */
export function jobOptionsFrom(o: JobFlagValues): MapOptions & TaskOptions {
  return {
    ...(o.priority ? { priority: o.priority } : {}), ...(o.timeout ? { timeoutMs: o.timeout } : {}),
    ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}), ...(o.queueTimeout ? { queueTimeoutMs: o.queueTimeout } : {}),
    ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}), ...(o.runOn ? { runOn: o.runOn } : {}),
    ...(o.weight !== undefined ? { weight: o.weight } : {}), ...(o.maxConcurrency ? { maxConcurrency: o.maxConcurrency } : {}),
    ...(o.at !== undefined ? { runAt: o.at } : {}), ...(o.delay !== undefined ? { delay: o.delay } : {}),
    ...(o.deadline !== undefined ? { deadline: o.deadline } : {}), ...(o.webhook !== undefined ? { webhook: o.webhook } : {}),
  };
}

/**
 * The function a map job ships: a module's default export (or `exportName`), or a Python
 * file's function (`module.py:function`, or `exportName`), which runs in Pyodide on the workers.
 */
export async function mapFunctionFrom(modulePath: string, exportName?: string): Promise<MapFunction<unknown, unknown>> {
  const python = splitPythonTarget(modulePath);
  if (python.path.endsWith('.py')) {
    if (!existsSync(python.path)) throw new Error(`Python file ${python.path} does not exist`);
    const picked = pythonFunctionFromFile(python.path, python.name ?? exportName);
    return { python: picked.source, name: picked.name };
  }
  const mod = await loadModule(modulePath, 'map module');
  const exported: unknown = exportName ? mod[exportName] : mod.default;
  if (typeof exported !== 'function') throw new Error(`map module ${modulePath} has no ${exportName ? `export "${exportName}"` : 'default export'} that is a function`);
  return exported as (x: unknown) => unknown;
}

/** A map job's arguments: a JSON file holding an array. */
export function mapInputsFrom(path: string): unknown[] {
  if (!existsSync(path)) throw new Error(`inputs file ${path} does not exist`);
  const args = parseJsonArg(readFileSync(path, 'utf8'), path);
  if (!Array.isArray(args)) throw new Error(`${path} must hold a JSON array of arguments`);
  return args;
}

/** A task graph file: a JSON object with a `nodes` array (and `output`, `name`, options). */
export function graphFrom(path: string): { nodes: unknown[]; name?: string } & Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`graph file ${path} does not exist`);
  const spec = parseJsonArg(readFileSync(path, 'utf8'), path) as { nodes?: unknown; name?: string } | null;
  if (!spec || typeof spec !== 'object' || !Array.isArray(spec.nodes)) throw new Error(`${path} must hold a JSON object with a "nodes" array`);
  return spec as { nodes: unknown[]; name?: string } & Record<string, unknown>;
}

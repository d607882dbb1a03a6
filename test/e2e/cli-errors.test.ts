/**
 * Every command's and every flag's error paths, walked from the program itself (so a new
 * command or flag is walked too): an unknown option, a value its parser refuses, and, for the
 * commands that talk to a foreman, a foreman that is not there. Each error is one line on
 * stderr, `crowdcompute: <what went wrong>`, without a stack trace; a usage error (what was
 * typed) ends with `; see crowdcompute <command> --help` and exits 2, any other exits 1. The
 * one usage error with more than a line is a group typed alone (`crowdcompute schedule`),
 * which shows its help: the list of its commands.
 *
 * The walk runs the program in this process (runCli, which main.ts runs), a fresh program per
 * case, so that it stays quick; a few cases run the real binary to check main.ts passes the
 * exit codes on.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { allCommands, buildProgram, commandPath, runCli } from '../../src/cli/program.ts';
import { freePort } from '../../src/testing/index.ts';

const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

let dir: string;
let refused: string;
/** Arguments that let a command get as far as its foreman (files that exist, a job the schedule commands accept). */
let operands: Record<string, string[]>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cc-cli-errors-'));
  refused = `http://127.0.0.1:${await freePort()}`;
  const module = join(dir, 'square.ts');
  writeFileSync(module, 'export default function square(x: number) { return x * x; }\n');
  const inputs = join(dir, 'inputs.json');
  writeFileSync(inputs, '[1, 2]');
  const graph = join(dir, 'graph.json');
  writeFileSync(graph, JSON.stringify({ nodes: [{ id: 'a', type: 'math.add', input: { a: 1, b: 2 } }] }));
  operands = {
    'crowdcompute map': [module, inputs],
    'crowdcompute submit': ['math.add', '{}'],
    'crowdcompute worker': ['--foreman', 'ws://127.0.0.1:9/ws', '--no-status'],
    'crowdcompute key create': ['--scopes', 'read'],
    'crowdcompute key limit': ['some-key', '--max-concurrency', '5'],
    'crowdcompute token create': ['--worker', 'some-worker'],
    'crowdcompute graph run': [graph],
    'crowdcompute file upload': [inputs],
    'crowdcompute schedule create': ['nightly', 'submit', 'math.add', '--every', '1h'],
    'crowdcompute schedule backfill': ['nightly', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'],
  };
});

after(() => { rmSync(dir, { recursive: true, force: true }); });

interface Ran { code: number; stderr: string }

/** Run the program in this process; stderr as runCli writes it. */
async function inProcess(args: string[]): Promise<Ran> {
  let stderr = '';
  const exitCode = process.exitCode;
  try {
    const code = await runCli([process.execPath, bin, ...args], (t) => { stderr += t; });
    return { code, stderr };
  } finally {
    process.exitCode = exitCode;
  }
}

/** The commands a person runs: those without subcommands. */
function leaves(): Command[] {
  return allCommands(buildProgram()).filter((c) => c.commands.length === 0);
}

/** What a command needs typed after its name: the operands above, else `x` per required argument. */
function operandsOf(cmd: Command): string[] {
  return operands[commandPath(cmd)] ?? cmd.registeredArguments.filter((a) => a.required).map(() => 'x');
}

/** Whether a command talks to a foreman: it has the foreman flags. */
const needsForeman = (cmd: Command) => cmd.options.some((o) => o.long === '--connect-timeout');

/** A value the option refuses (its parser or its choices), or null for one that takes anything (a repeatable name, say). */
function badValue(option: Option): string | null {
  if (option.argChoices) return 'not-a-choice';
  if (!option.parseArg) return null;
  for (const value of ['not-a-value', '-1', '1e999', '99999999999999999999', 'x=']) {
    try {
      option.parseArg(value, option.defaultValue);
    } catch (err) {
      assert.ok(err instanceof InvalidArgumentError, `${option.long} refuses "${value}" with an InvalidArgumentError (a usage error), not ${String(err)}`);
      return value;
    }
  }
  return null;
}

/** One line, `crowdcompute: …`, and no stack trace. */
function oneLine(r: Ran, what: string): string {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, not:\n${r.stderr}`);
  assert.match(lines[0], /^crowdcompute: \S/, what);
  assert.ok(!/\n\s+at |node:internal|\.ts:\d+:\d+/.test(r.stderr), `${what}: no stack trace:\n${r.stderr}`);
  return lines[0];
}

/** A usage error: exit 2, one line naming the problem and the command's --help. */
function usageError(r: Ran, cmd: Command, what: string): string {
  assert.equal(r.code, 2, `${what}: exit code 2; stderr: ${r.stderr}`);
  const line = oneLine(r, what);
  assert.ok(line.endsWith(`; see ${commandPath(cmd)} --help`), `${what}: ends with the command's --help: ${line}`);
  return line;
}

test('the walk covers the program: every command, and the flags that take a value', () => {
  const commands = leaves();
  assert.ok(commands.length >= 30, `${commands.length} commands`);
  const parsed = commands.flatMap((c) => c.options.filter((o) => badValue(o) !== null));
  assert.ok(parsed.length >= 100, `${parsed.length} flags with a value parser`);
  for (const path of Object.keys(operands)) assert.ok(commands.some((c) => commandPath(c) === path), `${path} is still a command`);
  // A required option needs a value that works, given above.
  for (const cmd of commands.filter((c) => c.options.some((o) => o.mandatory && o.defaultValue === undefined))) {
    assert.ok(operands[commandPath(cmd)], `${commandPath(cmd)} has a required option: give it a value in operands`);
  }
});

test('an unknown option: exit 2, one line naming it and the command\'s --help', async () => {
  for (const cmd of leaves()) {
    const path = commandPath(cmd).split(' ').slice(1);
    const r = await inProcess([...path, ...operandsOf(cmd), '--no-such-flag']);
    const line = usageError(r, cmd, `${commandPath(cmd)} --no-such-flag`);
    assert.match(line, /unknown option '--no-such-flag'/);
  }
});

test('an unknown command, at the top and in each group: exit 2, one line, with a suggestion when one is close', async () => {
  const program = buildProgram();
  // A group with a default command (`crowdcompute failed` is `failed list`) passes a word it does not know to that command.
  const hasDefault = (c: Command) => (c as unknown as { _defaultCommandName?: string | null })._defaultCommandName != null;
  for (const group of allCommands(program).filter((c) => c.commands.length > 0 && !hasDefault(c))) {
    const path = commandPath(group).split(' ').slice(1);
    const r = await inProcess([...path, 'no-such-command']);
    assert.match(usageError(r, group, `${commandPath(group)} no-such-command`), /unknown command 'no-such-command'/);
    if (group.parent) {
      // A group alone (`crowdcompute schedule`) is the one usage error that shows the help: it lists the commands to choose from.
      const bare = await inProcess(path);
      assert.equal(bare.code, 2, `${commandPath(group)} alone exits 2`);
    }
  }
  const typo = await inProcess(['workrs']);
  assert.match(usageError(typo, program, 'workrs'), /unknown command 'workrs' \(Did you mean workers\?\)/);
});

test('a missing argument and too many arguments: exit 2, one line', async () => {
  for (const cmd of leaves().filter((c) => c.registeredArguments.some((a) => a.required))) {
    const path = commandPath(cmd).split(' ').slice(1);
    // A command with a required option (schedule backfill --from) may name that first.
    assert.match(usageError(await inProcess(path), cmd, `${commandPath(cmd)} without arguments`), /missing required argument|required option '.*' not specified/);
  }
  const job = leaves().find((c) => commandPath(c) === 'crowdcompute job')!;
  assert.match(usageError(await inProcess(['job', 'a', 'b']), job, 'job a b'), /too many arguments for 'job'\. Expected 1 argument but got 2: a, b;/);
});

test('a value an option refuses: exit 2, one line naming the option', async () => {
  let walked = 0;
  for (const cmd of leaves()) {
    const path = commandPath(cmd).split(' ').slice(1);
    for (const option of cmd.options) {
      const value = badValue(option);
      if (value === null || !option.long) continue;
      walked++;
      const what = `${commandPath(cmd)} ${option.long} ${value}`;
      const line = usageError(await inProcess([...path, ...operandsOf(cmd), `${option.long}=${value}`]), cmd, what);
      assert.ok(line.includes(`'${option.flags}'`), `${what}: names the option: ${line}`);
    }
  }
  assert.ok(walked >= 100, `${walked} refused values`);
});

test('an argument a command checks itself (input that is not JSON): exit 2, one line naming it', async () => {
  const submit = leaves().find((c) => commandPath(c) === 'crowdcompute submit')!;
  const line = usageError(await inProcess(['submit', 'image.resize', 'notjson', '--foreman', 'http://127.0.0.1:9']), submit, 'submit with input notjson');
  assert.match(line, /^crowdcompute: input is not valid JSON: /);
});

test('a foreman that is not there: exit 1, one line naming the URL and that nothing answers', async () => {
  const commands = leaves().filter(needsForeman);
  assert.ok(commands.length >= 18, `${commands.length} commands talk to a foreman`);
  for (const cmd of commands) {
    const path = commandPath(cmd).split(' ').slice(1);
    const what = `${commandPath(cmd)} --foreman ${refused}`;
    const r = await inProcess([...path, ...operandsOf(cmd), '--foreman', refused, '--connect-timeout', '0']);
    assert.equal(r.code, 1, `${what}: exit code 1; stderr: ${r.stderr}`);
    assert.match(oneLine(r, what), new RegExp(`cannot reach the foreman at ${refused.replaceAll('.', '\\.')}: nothing answers there \\(connection refused\\)$`), what);
  }
});

test('the binary passes the exit codes on: 2 for what was typed, 1 for what went wrong, 0 for --help', async () => {
  const run = (args: string[]) => new Promise<Ran & { stdout: string }>((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr }));
  });
  const [typo, bad, down, help] = await Promise.all([
    run(['jobz']), run(['jobs', '--limit', 'many']), run(['stats', '--foreman', refused]), run(['jobs', '--help']),
  ]);
  assert.equal(typo.code, 2);
  assert.match(oneLine(typo, 'jobz'), /^crowdcompute: unknown command 'jobz' \(Did you mean one of job, jobs\?\); see crowdcompute --help$/);
  assert.equal(bad.code, 2);
  assert.match(oneLine(bad, 'jobs --limit many'), /^crowdcompute: option '--limit <n>' argument 'many' is invalid\. "many" is not a non-negative integer; see crowdcompute jobs --help$/);
  assert.equal(down.code, 1);
  assert.match(oneLine(down, 'stats'), /cannot reach the foreman at .*: nothing answers there/);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: crowdcompute jobs \[options\]/);
});

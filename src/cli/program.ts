/**
 * The `crowdcompute` program: every command, and how its errors reach a person. Built by a
 * function (main.ts runs it), so that a test can walk every command and flag without a process
 * per case.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { CrowdComputeError } from '../protocol/index.ts';
import { foremanCommand } from './foreman-command.ts';
import { workerCommand } from './worker-command.ts';
import { clientCommands } from './client-commands.ts';
import { demoCommand } from './demo-command.ts';
import { credentialCommands } from './credential-commands.ts';
import { pruneCommand } from './prune-command.ts';
import { scheduleCommands } from './schedule-commands.ts';
import { failedCommands } from './failed-commands.ts';
import { startTracing, stopTracing, type SERVICE_NAMES } from '../host/tracing.ts';

/** Exit code of an error in what was typed (an unknown command or option, a bad value): 2, as for most Unix tools. */
export const USAGE_ERROR = 2;

/** A usage error that commander raised, with the command that raised it (for the `--help` hint). */
class UsageError extends Error {
  readonly commanderError: CommanderError;
  readonly command: Command;
  constructor(commanderError: CommanderError, command: Command) {
    super(commanderError.message);
    this.commanderError = commanderError;
    this.command = command;
  }
}

/** `crowdcompute schedule create`: a command's full name, as typed. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command of the program, the program first, then each command before its subcommands. */
export function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap((c) => allCommands(c))];
}

/**
 * The program, with every command. Commander's own error text (and its 40 lines of usage) is
 * not printed: {@link runCli} says each error in one line.
 */
export function buildProgram(): Command {
  const program = new Command('crowdcompute')
    .description('CrowdCompute: a foreman, workers over WebSocket, map jobs and named tasks')
    .version('0.1.0')
    // Subcommands made after this inherit it: runCli prints the error itself.
    .configureOutput({ outputError: () => {} })
    .addHelpText('after', '\nTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set (an OTLP/HTTP collector), the foreman, the worker and the\n'
      + 'client commands export OpenTelemetry spans of every job to it (docs/operations.md, "Traces").\n');
  demoCommand(program);
  foremanCommand(program);
  workerCommand(program);
  clientCommands(program);
  scheduleCommands(program);
  failedCommands(program);
  credentialCommands(program);
  pruneCommand(program);
  for (const cmd of allCommands(program)) {
    // Each command throws its own errors, so that the hint names the command that was typed.
    cmd.exitOverride((err) => { throw new UsageError(err, cmd); });
    // A value parser's refusal is a usage error naming its option, whatever kind of Error it threw.
    for (const option of cmd.options) {
      const parse = option.parseArg as ((value: string, previous: unknown) => unknown) | undefined;
      if (!parse) continue;
      option.parseArg = ((value: string, previous: unknown) => {
        try {
          return parse(value, previous);
        } catch (err) {
          if (err instanceof CommanderError || !(err instanceof Error)) throw err;
          throw new InvalidArgumentError(err.message);
        }
      }) as typeof option.parseArg;
    }
  }
  return program;
}

/**
 * Which service the command that runs is, for its spans: the foreman and the worker as
 * themselves, every other command as a client. Tracing starts only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (src/host/tracing.ts).
 */
function traceAs(program: Command): () => keyof typeof SERVICE_NAMES {
  let service: keyof typeof SERVICE_NAMES = 'client';
  program.hook('preAction', async (_program, action) => {
    let top: Command = action;
    while (top.parent && top.parent !== program) top = top.parent;
    service = top.name() === 'worker' ? 'worker' : top.name() === 'foreman' || top.name() === 'demo' ? 'foreman' : 'client';
    await startTracing(service);
  });
  return () => service;
}

/** An error as one line: commander's `error: ` prefix dropped, its lines (and an OpenSSL dump's) joined. */
export function oneLine(message: string): string {
  return message.replace(/^error: /, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' ').replace(/\.$/, '');
}

/**
 * Run the program on `argv` (process.argv's shape). Resolves with the exit code to leave with
 * when something went wrong (0 otherwise: a foreman or a worker keeps running after its
 * action returns). Every error is one line on `writeErr`, `crowdcompute: <what>`; a usage
 * error ends with the command's `--help` and exits 2, any other exits 1.
 */
export async function runCli(argv: readonly string[], writeErr: (text: string) => void = (t) => { process.stderr.write(t); }): Promise<number> {
  const program = buildProgram();
  const service = traceAs(program);
  // A command's own check of an argument (input JSON that does not parse) throws from its
  // action, past commander's handling: it is still a usage error of the command that ran.
  let running: Command | null = null;
  program.hook('preAction', (_program, action) => { running = action; });
  try {
    await program.parseAsync(argv as string[]);
    // A client command's spans are flushed when it ends; the foreman and the worker flush theirs when they stop.
    if (service() === 'client') await stopTracing();
    return 0;
  } catch (err) {
    await stopTracing();
    if (err instanceof UsageError) {
      const e = err.commanderError;
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return e.exitCode;
      // A group typed without its subcommand (`crowdcompute schedule`): its help, listing them, is on stderr.
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : USAGE_ERROR;
      writeErr(`crowdcompute: ${oneLine(e.message)}; see ${commandPath(err.command)} --help\n`);
      return USAGE_ERROR;
    }
    if (err instanceof InvalidArgumentError && running) {
      writeErr(`crowdcompute: ${oneLine(err.message)}; see ${commandPath(running)} --help\n`);
      return USAGE_ERROR;
    }
    const message = err instanceof CrowdComputeError || err instanceof Error ? err.message : String(err);
    writeErr(`crowdcompute: ${oneLine(message)}\n`);
    return 1;
  }
}

import { Command } from 'commander';
import { CrowdComputeError } from '../protocol/index.ts';
import { foremanCommand } from './foreman-command.ts';
import { workerCommand } from './worker-command.ts';
import { clientCommands } from './client-commands.ts';
import { demoCommand } from './demo-command.ts';
import { credentialCommands } from './credential-commands.ts';
import { pruneCommand } from './prune-command.ts';
import { scheduleCommands } from './schedule-commands.ts';
import { startTracing, stopTracing, type SERVICE_NAMES } from '../host/tracing.ts';

const program = new Command('crowdcompute')
  .description('CrowdCompute: a foreman, workers over WebSocket, map jobs and named tasks')
  .version('0.1.0')
  .showHelpAfterError()
  .addHelpText('after', '\nTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set (an OTLP/HTTP collector), the foreman, the worker and the\n'
    + 'client commands export OpenTelemetry spans of every job to it (docs/operations.md, "Traces").\n');

demoCommand(program);
foremanCommand(program);
workerCommand(program);
clientCommands(program);
scheduleCommands(program);
credentialCommands(program);
pruneCommand(program);

// Spans are exported when OTEL_EXPORTER_OTLP_ENDPOINT is set (src/host/tracing.ts): the
// foreman and the worker as themselves, every other command as a client. A client command's
// spans are flushed when it ends; the foreman and the worker flush theirs when they stop.
let service: keyof typeof SERVICE_NAMES = 'client';
program.hook('preAction', async (_program, action) => {
  let top: Command = action;
  while (top.parent && top.parent !== program) top = top.parent;
  service = top.name() === 'worker' ? 'worker' : top.name() === 'foreman' || top.name() === 'demo' ? 'foreman' : 'client';
  await startTracing(service);
});

program.parseAsync(process.argv).then(async () => {
  if (service === 'client') await stopTracing();
}, async (err: unknown) => {
  const message = err instanceof CrowdComputeError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`crowdcompute: ${message}\n`);
  await stopTracing();
  process.exit(1);
});

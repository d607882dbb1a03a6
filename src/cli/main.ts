import { Command } from 'commander';
import { CrowdComputeError } from '../protocol/index.ts';
import { foremanCommand } from './foreman-command.ts';
import { workerCommand } from './worker-command.ts';
import { clientCommands } from './client-commands.ts';
import { demoCommand } from './demo-command.ts';
import { credentialCommands } from './credential-commands.ts';
import { pruneCommand } from './prune-command.ts';
import { scheduleCommands } from './schedule-commands.ts';
import { failedCommands } from './failed-commands.ts';

const program = new Command('crowdcompute')
  .description('CrowdCompute: a foreman, workers over WebSocket, map jobs and named tasks')
  .version('0.1.0')
  .showHelpAfterError();

demoCommand(program);
foremanCommand(program);
workerCommand(program);
clientCommands(program);
scheduleCommands(program);
failedCommands(program);
credentialCommands(program);
pruneCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof CrowdComputeError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`crowdcompute: ${message}\n`);
  process.exit(1);
});

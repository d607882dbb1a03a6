import { runCli } from './program.ts';

const code = await runCli(process.argv);
if (code !== 0) process.exit(code);

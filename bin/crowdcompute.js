#!/usr/bin/env -S node --no-node-snapshot
// isolated-vm needs --no-node-snapshot on Node 20+; the shebang passes it.
// A checkout runs the TypeScript sources directly (Node strips the types); the installed
// package has no src/ and runs the compiled dist/.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // An older node on PATH (npx crowdcompute in a checkout, say): hand over to the checkout's own
  // Node 24, which scripts/ensure-node.sh installs into .node/ without touching the machine's.
  const own = new URL('../.node/node_modules/.bin/node', import.meta.url);
  if (!existsSync(own)) {
    process.stderr.write(`crowdcompute: needs Node.js 24 or newer, this is ${process.version} (${process.execPath}); `
      + 'in a checkout, bash scripts/ensure-node.sh installs Node 24 into its .node/ folder\n');
    process.exit(1);
  }
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = spawn(fileURLToPath(own), ['--no-node-snapshot', ...process.execArgv.filter((a) => a !== '--no-node-snapshot'), fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' });
  // Ctrl-C reaches both processes (one terminal group); a signal sent to this one alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => { if (signal !== 'SIGINT') child.kill(signal); });
  child.on('exit', (code, signal) => {
    if (signal) { process.removeAllListeners(signal); process.kill(process.pid, signal); }
    process.exit(code ?? 1);
  });
} else {
  const source = new URL('../src/cli/main.ts', import.meta.url);
  await import(existsSync(source) ? source.href : new URL('../dist/cli/main.js', import.meta.url).href);
}

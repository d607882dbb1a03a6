/**
 * Tests that run the Python SDK use Debian's python3 with python3-websockets (scripts/test.sh
 * installs them). Without them those tests skip, except under CI=true, where they fail.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = process.env.CROWDCOMPUTE_PYTHON ?? '/usr/bin/python3';
/** The Python package's directory, put on PYTHONPATH. */
export const PYTHON_PACKAGE_DIR = fileURLToPath(new URL('../../python/', import.meta.url));

function ready(): string | null {
  try {
    execFileSync(PYTHON, ['-c', 'import websockets, sys; assert sys.version_info >= (3, 11)'], { stdio: 'ignore', timeout: 20_000 });
    return null;
  } catch {
    return `no Python 3.11 with websockets at ${PYTHON} (apt-get install -y python3 python3-websockets)`;
  }
}

const problem = ready();
if (problem && process.env.CI === 'true') throw new Error(`${problem}; it is required under CI=true`);

/** `skip` for node:test: false when Python and websockets are there. */
export const pythonSkip: string | false = problem ?? false;

/** Run a Python program (its source) with the package importable; output is kept for failures. */
export function spawnPython(source: string, env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(PYTHON, ['-c', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONPATH: PYTHON_PACKAGE_DIR, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

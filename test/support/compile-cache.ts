/**
 * Preloaded by the test command (`--import`) into the test runner and into each test file's
 * process: keeps Node's compile cache (compiled code, and TypeScript with its types stripped)
 * in one folder of the temp dir, and sets NODE_COMPILE_CACHE, so that the foremen, workers and
 * CLI commands the tests start use it too. Without it every one of those processes strips and
 * compiles the same sources anew: a third of the CPU time of a CLI command, and the suite
 * starts several hundred of them. Node checks each entry against its source, so a changed
 * file is compiled again, never run stale.
 */
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'crowdcompute-compile-cache');
enableCompileCache(process.env.NODE_COMPILE_CACHE);

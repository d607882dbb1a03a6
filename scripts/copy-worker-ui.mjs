#!/usr/bin/env node
// Copy the worker page's files into the Python package (python/crowdcompute/ui/), so that the
// Python worker's status server serves the same page as the Node worker's: the page's own
// modules and styles from ui/, and the libraries it imports from node_modules, with their
// licences. It also writes MANIFEST.json (each copy and where it came from), which
// python/tests/test_worker_ui_copies.py checks the copies against.
//
//   node scripts/copy-worker-ui.mjs          (npm run copy:worker-ui)
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'python', 'crowdcompute', 'ui');

/** Copy name (under ui/ in the Python package) -> source, relative to the repository root. */
const FILES = {
  // What the worker page loads: its module, the shared helpers it imports, its styles, the icon.
  'worker.js': 'ui/worker.js',
  'common.js': 'ui/common.js',
  'worker.css': 'ui/worker.css',
  'style.css': 'ui/style.css',
  'favicon.svg': 'ui/favicon.svg',
  // The libraries, by the names src/host/ui-assets.ts serves them under /ui/vendor/.
  'vendor/preact.mjs': 'node_modules/preact/dist/preact.mjs',
  'vendor/hooks.mjs': 'node_modules/preact/hooks/dist/hooks.mjs',
  'vendor/htm.mjs': 'node_modules/htm/dist/htm.mjs',
  'vendor/uplot.mjs': 'node_modules/uplot/dist/uPlot.esm.js',
  'vendor/uplot.css': 'node_modules/uplot/dist/uPlot.min.css',
  'vendor/LICENSE-preact': 'node_modules/preact/LICENSE',
  'vendor/LICENSE-htm': 'node_modules/htm/LICENSE',
  'vendor/LICENSE-uplot': 'node_modules/uplot/LICENSE',
};

rmSync(OUT, { recursive: true, force: true });
for (const [name, source] of Object.entries(FILES)) {
  const to = join(OUT, name);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(ROOT, source), to);
}
writeFileSync(join(OUT, 'MANIFEST.json'), `${JSON.stringify({
  about: 'Copies of the worker page made by scripts/copy-worker-ui.mjs; do not edit them here, edit the sources and run npm run copy:worker-ui',
  files: FILES,
}, null, 2)}\n`);
process.stdout.write(`copied ${Object.keys(FILES).length} files to ${OUT}\n`);

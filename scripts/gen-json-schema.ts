/**
 * `npm run gen:schema`: write the protocol's JSON Schema documents (schemas/) and the Python
 * package's wire types and schema copy from the zod schemas in src/protocol/. Run it after
 * changing a schema; test/e2e/json-schema.test.ts fails while the committed files differ.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from './schema/generated-files.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
for (const { path, text } of generatedFiles()) {
  const file = join(root, path);
  let before: string | null = null;
  try { before = readFileSync(file, 'utf8'); } catch { /* new file */ }
  if (before === text) { console.log(`unchanged ${path}`); continue; }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${path}`);
}

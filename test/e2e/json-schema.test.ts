/**
 * The committed JSON Schema documents (schemas/), the Python package's copy and its wire types
 * are generated from the zod schemas; this fails, naming the file and the script to run, when
 * one of them no longer matches what the schemas generate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../../scripts/schema/generated-files.ts';
import { INBOUND_TYPES, OUTBOUND_TYPES } from '../../src/protocol/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const files = generatedFiles();

test('the committed schemas and Python wire types match the zod schemas', () => {
  const stale = files.filter(({ path, text }) => {
    const file = join(root, path);
    return !existsSync(file) || readFileSync(file, 'utf8') !== text;
  }).map(({ path }) => path);
  assert.deepEqual(stale, [], `out of date: ${stale.join(', ')}; run npm run gen:schema (scripts/gen-json-schema.ts) and commit the result`);
});

test('the WebSocket schema defines every message type, and only those, under its type', () => {
  const doc = JSON.parse(files.find((f) => f.path === 'schemas/protocol.schema.json')!.text) as { oneOf: { $ref: string }[]; $defs: Record<string, { properties?: { type?: { const?: string } } }> };
  const types = [...new Set([...INBOUND_TYPES, ...OUTBOUND_TYPES])].sort();
  assert.deepEqual(doc.oneOf.map((r) => r.$ref.replace('#/$defs/', '')), types);
  for (const type of types) assert.equal(doc.$defs[type].properties?.type?.const, type, `$defs.${type} is the message whose type is ${type}`);
});

// Debian's Python, which the Python package's tests use; the module must import with no package but its own.
const python = '/usr/bin/python3';
test('the Python wire types import', { skip: existsSync(python) ? false : `${python} is not installed` }, () => {
  const out = execFileSync(python, ['-c', 'import sys; sys.path.insert(0, "python"); import crowdcompute.wire_types as w; print(sorted(w.HelloMessage.__required_keys__))'], { cwd: root, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.replace(/'/g, '"')), ['allowCode', 'capacity', 'patterns', 'protocol', 'role', 'type', 'workerId']);
});

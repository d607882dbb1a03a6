/**
 * Every file scripts/gen-json-schema.ts writes, with its text: the JSON Schema documents of
 * the protocol, the Python package's copy of the WebSocket one, and the Python wire types.
 * The drift test compares the committed files with these.
 */
import { formatJson, restSchema, websocketSchema } from './protocol-json-schema.ts';
import { pythonWireTypes } from './python-wire-types.ts';

/** A generated file: its path from the repository's root, and its text. */
export interface GeneratedFile { path: string; text: string }

/** The files, generated in memory from the zod schemas. */
export function generatedFiles(): GeneratedFile[] {
  const ws = websocketSchema();
  const wsText = formatJson(ws);
  return [
    { path: 'schemas/protocol.schema.json', text: wsText },
    { path: 'schemas/rest.schema.json', text: formatJson(restSchema()) },
    // Package data, so Python code and tests can validate against the schema without the repository.
    { path: 'python/crowdcompute/protocol.schema.json', text: wsText },
    { path: 'python/crowdcompute/wire_types.py', text: pythonWireTypes(ws, 'schemas/protocol.schema.json') },
  ];
}

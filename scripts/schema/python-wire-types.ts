/**
 * Python `TypedDict`s of the WebSocket messages, generated from the protocol's JSON Schema
 * (not from zod), so what Python reads is exactly what the published schema says. Only the
 * standard library's `typing` is used: the module imports anywhere, and type checkers read it.
 */
import type { JsonSchema } from './protocol-json-schema.ts';

const PYTHON_KEYWORDS = new Set([
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del', 'elif', 'else',
  'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise',
  'return', 'try', 'while', 'with', 'yield',
]);
const WIDTH = 100;
/** Bounds that only say "a JavaScript safe integer": noise to a Python reader. */
const SAFE = Number.MAX_SAFE_INTEGER;

const pascal = (s: string) => s.replace(/(^|[_-])([a-z0-9])/g, (_m, _sep, c: string) => c.toUpperCase()).replace(/^[a-z]/, (c) => c.toUpperCase());
const isMessageName = (name: string) => /^[a-z]/.test(name);
const refName = (ref: string) => {
  const m = /^#\/\$defs\/(.+)$/.exec(ref);
  if (!m) throw new Error(`python-wire-types: only local $defs references are supported, not ${ref}`);
  return m[1];
};

/** Words wrapped to the width (less `margin`), each line starting with `prefix`. */
function wrap(text: string, prefix: string, margin = 0): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix.length + line.length + 1 + word.length > WIDTH - margin) { lines.push(prefix + line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(prefix + line);
  return lines;
}

/** What a TypedDict cannot say of a value: its bounds, for the comment beside its field. */
function bounds(s: JsonSchema): string[] {
  const out: string[] = [];
  const n = (k: string) => (typeof s[k] === 'number' && Math.abs(s[k] as number) !== SAFE ? (s[k] as number) : undefined);
  const range = (lo: number | undefined, hi: number | undefined, unit: string) => {
    if (lo !== undefined && hi !== undefined) out.push(`${lo} to ${hi}${unit}`);
    else if (lo !== undefined) out.push(`at least ${lo}${unit}`);
    else if (hi !== undefined) out.push(`at most ${hi}${unit}`);
  };
  range(n('minLength'), n('maxLength'), n('maxLength') === 1 || (n('maxLength') === undefined && n('minLength') === 1) ? ' character' : ' characters');
  if (typeof s.pattern === 'string') out.push(`matching ${s.pattern}`);
  if (n('exclusiveMinimum') !== undefined) out.push(`more than ${n('exclusiveMinimum')}`);
  if (n('exclusiveMaximum') !== undefined) out.push(`less than ${n('exclusiveMaximum')}`);
  range(n('minimum'), n('maximum'), '');
  range(n('minItems'), n('maxItems'), n('maxItems') === 1 || (n('maxItems') === undefined && n('minItems') === 1) ? ' item' : ' items');
  const items = s.items as JsonSchema | undefined;
  if (items && typeof items === 'object') for (const b of bounds(items)) out.push(`each ${b}`);
  for (const member of (s.anyOf ?? []) as JsonSchema[]) out.push(...bounds(member));
  return out;
}

/** `Name: TypeAlias = A | B`, one alternative a line when it is long. */
function alias(name: string, type: string): string {
  const line = `${name}: TypeAlias = ${type}`;
  if (line.length <= WIDTH) return line;
  return [`${name}: TypeAlias = (`, ...type.split(' | ').map((t, i) => `    ${i ? '| ' : ''}${t}`), ')'].join('\n');
}

function docstring(text: string | undefined, indent: string): string[] {
  if (!text) return [];
  // Backslashes and quotes escaped; a quote ending the text would run into the closing ones.
  const safe = text.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"').replace(/"$/, '\\"');
  // Three characters kept for the opening quotes on the first line.
  const lines = wrap(safe, indent, 3);
  if (lines.length === 1 && lines[0].length + 6 <= WIDTH) return [`${indent}"""${lines[0].trimStart()}"""`];
  return [`${indent}"""${lines[0].trimStart()}`, ...lines.slice(1), `${indent}"""`];
}

/** The module's text, from the WebSocket JSON Schema document. */
export function pythonWireTypes(doc: JsonSchema, generatedFrom: string): string {
  const defs = doc.$defs as Record<string, JsonSchema>;
  const blocks: string[] = [];
  const pyNames = new Map<string, string>();
  const taken = new Set<string>();
  const building = new Set<string>();

  const claim = (name: string) => {
    if (taken.has(name)) throw new Error(`python-wire-types: two types would be named ${name}; name one of the schemas apart`);
    taken.add(name);
    return name;
  };
  const pyNameOfDef = (name: string) => (isMessageName(name) ? `${pascal(name)}Message` : name);

  /** The Python type of a definition, emitting it (and what it uses) first. */
  const def = (name: string): string => {
    const known = pyNames.get(name);
    if (known) return known;
    const s = defs[name];
    if (!s) throw new Error(`python-wire-types: #/$defs/${name} is referenced but not defined`);
    if (building.has(name)) throw new Error(`python-wire-types: ${name} refers to itself; a recursive type needs forward references here`);
    building.add(name);
    const py = pyNameOfDef(name);
    if (s.type === 'object' && s.properties) typedDict(s, py);
    else {
      const t = typeOf(s, py);
      claim(py);
      blocks.push([...wrap(s.description as string ?? '', '# '), alias(py, t)].join('\n'));
    }
    building.delete(name);
    pyNames.set(name, py);
    return py;
  };

  const literal = (v: unknown) => {
    if (typeof v === 'string' || typeof v === 'number') return JSON.stringify(v);
    if (typeof v === 'boolean') return v ? 'True' : 'False';
    throw new Error(`python-wire-types: a literal of ${JSON.stringify(v)} has no Python Literal form`);
  };

  /** The Python type of a schema; objects with properties become TypedDicts named `hint`. */
  const typeOf = (s: JsonSchema, hint: string): string => {
    if (typeof s.$ref === 'string') return def(refName(s.$ref));
    if ('const' in s) return `Literal[${literal(s.const)}]`;
    if (Array.isArray(s.enum)) return `Literal[${s.enum.map(literal).join(', ')}]`;
    const members = (s.oneOf ?? s.anyOf) as JsonSchema[] | undefined;
    if (members) {
      // `X | None` keeps X's name; alternatives of their own are numbered.
      const several = members.filter((m) => m.type !== 'null').length > 1;
      return [...new Set(members.map((m, i) => typeOf(m, several ? `${hint}${i + 1}` : hint)))].join(' | ');
    }
    switch (s.type) {
      case 'string': return 'str';
      case 'integer': return 'int';
      case 'number': return 'float';
      case 'boolean': return 'bool';
      case 'null': return 'None';
      case 'array': return `list[${typeOf((s.items ?? {}) as JsonSchema, `${hint}Item`)}]`;
      case 'object': {
        if (s.properties) return typedDict(s, hint);
        const values = s.additionalProperties;
        return `dict[str, ${values && typeof values === 'object' ? typeOf(values as JsonSchema, `${hint}Value`) : 'Any'}]`;
      }
      case undefined: {
        const rest = Object.keys(s).filter((k) => k !== 'description');
        if (rest.length === 0) return 'Any';
      }
    }
    throw new Error(`python-wire-types: no Python type for ${JSON.stringify(s)} (at ${hint})`);
  };

  /** A TypedDict class for an object schema; its nested objects are named after it and the field. */
  const typedDict = (s: JsonSchema, name: string): string => {
    claim(name);
    const base = name.replace(/Message$/, '');
    const required = new Set((s.required ?? []) as string[]);
    const fields: string[] = [];
    for (const [key, prop] of Object.entries(s.properties as Record<string, JsonSchema>)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || PYTHON_KEYWORDS.has(key)) {
        throw new Error(`python-wire-types: ${name}.${key} cannot be a TypedDict class field; rename it or emit the functional form`);
      }
      const t = typeOf(prop, `${base}${pascal(key)}`);
      const note = bounds(prop);
      fields.push(
        ...wrap((prop.description as string | undefined) ?? '', '    #: '),
        `    ${key}: ${required.has(key) ? t : `NotRequired[${t}]`}${note.length ? `  # ${note.join(', ')}` : ''}`,
      );
    }
    const open = s.additionalProperties !== undefined && s.additionalProperties !== false;
    const description = [s.description, open ? 'It may carry keys not named here.' : ''].filter(Boolean).join(' ');
    blocks.push([`class ${name}(TypedDict):`, ...docstring(description || undefined, '    '), ...(description ? [''] : []), ...fields].join('\n'));
    return name;
  };

  const names = Object.keys(defs);
  const isGroup = (n: string) => !isMessageName(n) && Array.isArray(defs[n].oneOf)
    && (defs[n].oneOf as JsonSchema[]).every((m) => typeof m.$ref === 'string' && isMessageName(refName(m.$ref)));
  for (const n of names.filter((n) => !isMessageName(n) && !isGroup(n))) def(n);
  for (const n of names.filter(isMessageName)) def(n);
  for (const n of names.filter(isGroup)) def(n);
  const everything = typeOf({ oneOf: doc.oneOf } as JsonSchema, 'Message');

  return [
    '"""The WebSocket messages of CrowdCompute\'s protocol, as TypedDicts.',
    '',
    ...wrap(`Generated by scripts/gen-json-schema.ts (npm run gen:schema) from ${generatedFrom}, itself generated from the zod schemas in src/protocol/. Do not edit by hand: change the zod schemas and run the script; the TypeScript test suite fails while this file is out of date.`, ''),
    '',
    ...wrap('A message class is named after its `type` (`assign_tasks` is AssignTasksMessage); objects inside one are named after the message and the field. Bounds a TypedDict cannot express (lengths, ranges) are noted beside each field; protocol.schema.json, next to this module, checks them all.', ''),
    '"""',
    '',
    'from typing import Any, Final, Literal, NotRequired, TypeAlias, TypedDict',
    '',
    `PROTOCOL_VERSION: Final = ${JSON.stringify(doc['x-protocol-version'])}`,
    '',
    '',
    blocks.join('\n\n\n'),
    '',
    '',
    '# Every message, whichever way it goes.',
    alias('Message', everything),
    '',
  ].join('\n');
}

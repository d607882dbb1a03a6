/**
 * What a hostile or broken peer sends, made from valid values: one part replaced by deep
 * nesting, a huge string, an odd number, the wrong type or odd Unicode; a key given twice or
 * left out; raw bytes that are not UTF-8; a frame cut in half; several messages in one array.
 *
 * A case is a recipe (a valid value, a mutation and a few choices) that fast-check generates
 * from a seed; the bytes are built from it only when the case is sent, so a run never holds
 * more than one huge frame, and every part of a case is reproducible from the seed alone.
 * Texts are spliced in as raw JSON, not serialized by this process: nesting deeper than the
 * stack, `-0` and numbers beyond doubles have no JavaScript value to serialize.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import { allPaths, arbitraryOf, jsonPaths, valueAt, type Path } from './zod-arbitrary.ts';

/** Every way a case breaks its valid value. */
export const MUTATIONS = [
  'valid', 'deep-nesting', 'huge-string', 'odd-number', 'wrong-type', 'unicode', 'raw-bytes', 'duplicate-key', 'missing-field', 'cut-in-half',
] as const;
/** One of {@link MUTATIONS}, or a batch of several messages in one frame. */
export type Mutation = (typeof MUTATIONS)[number] | 'batch';

/** One generated case: a valid value and how to break it. Cheap to hold and to print. */
export interface Recipe {
  value: unknown;
  mutation: (typeof MUTATIONS)[number];
  /** Choices the mutation makes (which path, which odd value, ...), each taken modulo its options. */
  picks: readonly [number, number, number];
}

/** A case as generated: one message, or a batch of several (some broken) in one JSON array. */
export type FuzzCase = { kind: 'one'; recipe: Recipe } | { kind: 'batch'; recipes: Recipe[]; extras: readonly string[] };

/** The bytes of a case, ready to send, and what they are in words. */
export interface Frame {
  data: string | Buffer;
  /** Over a WebSocket: send as a binary frame (the foreman decodes it as UTF-8 all the same). */
  binary: boolean;
  mutation: Mutation;
  /** What was done where, e.g. `deep-nesting: 20000 nested arrays at results.0.result`. */
  detail: string;
}

/** A case's value after the target made it fit (real ids, request ids, signatures), before it is broken. */
export type Prepare = (value: unknown) => unknown;

const pickOf = <T>(list: readonly T[], n: number): T => list[n % list.length];

/**
 * Cases for one schema: mostly single messages with one mutation, sometimes a batch.
 * `skip` leaves mutations out (CC_FUZZ_SKIP), to look past a failure that hides the others.
 */
export function fuzzCases(schema: z.ZodType, options: { skip?: readonly string[]; batches?: boolean } = {}): fc.Arbitrary<FuzzCase> {
  const mutations = MUTATIONS.filter((m) => !options.skip?.includes(m));
  const recipe: fc.Arbitrary<Recipe> = fc.record({
    value: arbitraryOf(schema),
    mutation: fc.constantFrom(...mutations),
    picks: fc.tuple(fc.nat(), fc.nat(), fc.nat()),
  });
  const one = recipe.map((r): FuzzCase => ({ kind: 'one', recipe: r }));
  if (options.batches === false || options.skip?.includes('batch')) return one;
  // A batch's messages are each valid or broken alone (never cut: that spoils the whole frame),
  // with now and then something that is not a message at all.
  const inBatch = recipe.filter((r) => r.mutation !== 'cut-in-half');
  const batch = fc.record({
    recipes: fc.array(inBatch, { minLength: 2, maxLength: 5 }),
    extras: fc.subarray(['42', 'null', '"hello"', '[]', '[{"type":"heartbeat"}]', '{}']),
  }).map((b): FuzzCase => ({ kind: 'batch', ...b }));
  return fc.oneof({ arbitrary: one, weight: 8 }, { arbitrary: batch, weight: 1 });
}

/** A frame of more messages than the foreman takes in one (10,000), all of them nothing. */
export function overfullBatch(count: number): Frame {
  return { data: `[${new Array(count).fill('{}').join(',')}]`, binary: false, mutation: 'batch', detail: `${count} empty messages in one frame` };
}

/**
 * The frame of a case of `schema` (whose `unknown` fields take the deep and huge values most
 * of the time), its values first passed through `prepare`.
 */
export function frameOf(schema: z.ZodType, c: FuzzCase, prepare: Prepare = (v) => v): Frame {
  if (c.kind === 'one') return build(schema, c.recipe, prepare(c.recipe.value));
  const parts = c.recipes.map((r) => build(schema, r, prepare(r.value)));
  const items: (string | Buffer)[] = [...parts.map((p) => p.data), ...c.extras];
  const data = items.some((i) => typeof i !== 'string')
    ? Buffer.concat([Buffer.from('['), ...items.flatMap((d, i) => [...(i ? [Buffer.from(',')] : []), Buffer.from(d)]), Buffer.from(']')])
    : `[${items.join(',')}]`;
  return { data, binary: parts.some((p) => p.binary), mutation: 'batch', detail: `batch of ${items.length}: ${[...parts.map((p) => p.detail), ...c.extras].join(' | ')}` };
}

const MARK = '\u0001fuzz-mark\u0001';
const MARK_TEXT = JSON.stringify(MARK);
const MARK_KEY = '\u0001fuzz-key\u0001';

const where = (path: Path) => (path.length ? path.join('.') : '(root)');

function build(schema: z.ZodType, r: Recipe, value: unknown): Frame {
  const [a, b, c] = r.picks;
  const any = [[], ...allPaths(value)] as Path[];
  // Deep and huge values go where the schema takes any JSON, three times in four: there
  // nothing refuses them early.
  const json = c % 4 !== 0 ? jsonPaths(schema, value) : [];
  const preferJson = json.length ? json : any;
  const frame = (data: string | Buffer, detail: string, binary = false): Frame => ({ data, binary, mutation: r.mutation, detail: `${r.mutation}: ${detail}` });
  switch (r.mutation) {
    case 'valid':
      return frame(JSON.stringify(value), 'as generated');
    case 'deep-nesting': {
      const path = pickOf(preferJson, a);
      const depth = pickOf([1_000, 5_000, 20_000, 100_000], b);
      const shape = pickOf(['arrays', 'objects', 'arrays and objects'] as const, c);
      return frame(splice(value, path, nest(depth, shape)), `${depth} nested ${shape} at ${where(path)}`);
    }
    case 'huge-string': {
      const path = pickOf(preferJson, a);
      const kind = pickOf(HUGE_STRINGS, b);
      return frame(splice(value, path, JSON.stringify(kind.make())), `a string of ${kind.name} at ${where(path)}`);
    }
    case 'odd-number': {
      const numeric = any.filter((p) => typeof valueAt(value, p) === 'number');
      const path = pickOf(numeric.length ? numeric : any, a);
      const n = pickOf(ODD_NUMBERS, b);
      return frame(splice(value, path, n), `${n} at ${where(path)}`);
    }
    case 'wrong-type': {
      const path = pickOf(any, a);
      const raw = pickOf(WRONG_TYPES, b);
      return frame(splice(value, path, raw), `${raw} at ${where(path)}`);
    }
    case 'unicode': {
      const strings = any.filter((p) => typeof valueAt(value, p) === 'string');
      const path = pickOf(strings.length ? strings : any, a);
      const odd = pickOf(ODD_STRINGS, b);
      const before = valueAt(value, path);
      const text = typeof before === 'string' && c % 2 === 0 ? before + odd.text : odd.text;
      return frame(splice(value, path, JSON.stringify(text)), `${odd.name} at ${where(path)}`);
    }
    case 'raw-bytes': {
      const strings = any.filter((p) => typeof valueAt(value, p) === 'string');
      const path = pickOf(strings.length ? strings : any, a);
      const bytes = pickOf(BAD_BYTES, b);
      const binary = c % 2 === 0;
      return frame(splice(value, path, Buffer.concat([Buffer.from('"a'), Buffer.from(bytes.bytes), Buffer.from('z"')])),
        `${bytes.name} (not UTF-8) in a string at ${where(path)}, sent as a ${binary ? 'binary' : 'text'} frame`, binary);
    }
    case 'duplicate-key': {
      const objects = any.filter((p) => isObject(valueAt(value, p)));
      if (objects.length === 0) return frame(JSON.stringify(value), 'no object to give a key twice; sent as generated');
      const path = pickOf(objects, a);
      const keys = [...Object.keys(valueAt(value, path) as object), '__proto__', 'constructor'];
      const key = pickOf(keys, b);
      const raw = pickOf(['null', '"cancel_job"', '{"__proto__":{"polluted":true}}', '1e308', '[]', JSON.stringify(valueAt(value, [...path, key]) ?? 'same')], c);
      const first = c % 3 === 0;
      return frame(duplicateKey(value, path, key, raw, first), `"${key}" given twice (${first ? 'first' : 'last'} is ${raw}) at ${where(path)}`);
    }
    case 'missing-field': {
      const keyed = any.filter((p) => p.length > 0 && typeof p[p.length - 1] === 'string');
      if (keyed.length === 0) return frame(JSON.stringify(value), 'no field to leave out; sent as generated');
      const path = pickOf(keyed, a);
      const copy = structuredClone(value) as Record<string, unknown>;
      delete (valueAt(copy, path.slice(0, -1)) as Record<string, unknown>)[path[path.length - 1]];
      return frame(JSON.stringify(copy), `${where(path)} left out`);
    }
    case 'cut-in-half': {
      const bytes = Buffer.from(JSON.stringify(value));
      const at = 1 + (a % Math.max(1, bytes.length - 1));
      return frame(bytes.subarray(0, at), `cut after byte ${at} of ${bytes.length}`, b % 2 === 0);
    }
  }
}

function nest(depth: number, shape: 'arrays' | 'objects' | 'arrays and objects'): string {
  if (shape === 'arrays') return '['.repeat(depth) + ']'.repeat(depth);
  if (shape === 'objects') return '{"a":'.repeat(depth) + 'null' + '}'.repeat(depth);
  const half = Math.ceil(depth / 2);
  return '[{"a":'.repeat(half) + '1' + '}]'.repeat(half);
}

const MiB = 1024 * 1024;
const HUGE_STRINGS: readonly { name: string; make: () => string }[] = [
  { name: '1M "x"', make: () => 'x'.repeat(MiB) },
  { name: '1M UTF-16 units of RTL marks, accents and emoji', make: () => '\u202Eé🙂'.repeat(MiB / 4) },
  { name: '256K NULs', make: () => '\u0000'.repeat(MiB / 4) },
  { name: '1M quotes and backslashes', make: () => '"\\'.repeat(MiB / 2) },
];

const ODD_NUMBERS: readonly string[] = [
  '1e308', '-1e308', '-0', '9007199254740993', '-9007199254740993', '-1', '0', '1.5', '5e-324', '1e400', '-1e400',
  '18446744073709551616', '123456789012345678901234567890', '0.1e-999', '1E+2',
];

const WRONG_TYPES: readonly string[] = ['null', 'true', '"1"', '""', '0', '[]', '{}', '[null]', '{"__proto__":{"polluted":true}}', '"__proto__"'];

const ODD_STRINGS: readonly { name: string; text: string }[] = [
  { name: 'a lone high surrogate', text: '\ud800' },
  { name: 'a lone low surrogate and a reversed pair', text: '\udc00x\udfff\ud83d' },
  { name: 'NUL', text: 'a\u0000b' },
  { name: 'RTL override and marks', text: '\u202Eevil\u202C\u200F\u061C' },
  { name: 'a family emoji with joiners and a flag', text: '👩‍👩‍👧‍👦🏳️‍🌈' },
  { name: 'a byte order mark', text: '\uFEFF' },
  { name: 'combining accents', text: 'e\u0301\u0301\u0301' },
  { name: 'line and paragraph separators', text: '\u2028\u2029' },
  { name: 'noncharacters', text: '\uFFFF\uFFFE' },
  { name: 'astral letters', text: '𝕏𝕐𝕫' },
  { name: 'control characters', text: '\u0007\u001b[31m\r\n\t' },
];

const BAD_BYTES: readonly { name: string; bytes: number[] }[] = [
  { name: 'a UTF-16 surrogate encoded as UTF-8 (CESU)', bytes: [0xed, 0xa0, 0x80] },
  { name: 'an overlong "/"', bytes: [0xc0, 0xaf] },
  { name: 'an overlong "/" in three bytes', bytes: [0xe0, 0x80, 0xaf] },
  { name: 'a five-byte sequence', bytes: [0xf8, 0x88, 0x80, 0x80, 0x80] },
  { name: 'bytes FF FE', bytes: [0xff, 0xfe] },
  { name: 'a truncated sequence', bytes: [0xe2, 0x82] },
  { name: 'a code point past U+10FFFF', bytes: [0xf4, 0x90, 0x80, 0x80] },
  { name: 'a raw NUL byte', bytes: [0x00] },
];

/** The JSON text of `value` with `raw` (JSON text or bytes) in place of what is at `path`. */
function splice(value: unknown, path: Path, raw: string | Buffer): string | Buffer {
  if (path.length === 0) return raw;
  const copy = structuredClone(value);
  (valueAt(copy, path.slice(0, -1)) as Record<string | number, unknown>)[path[path.length - 1]] = MARK;
  return replaceMark(JSON.stringify(copy), MARK_TEXT, raw);
}

/** The JSON text of `value` with the object at `path` holding `key` twice, once with `raw`. */
function duplicateKey(value: unknown, path: Path, key: string, raw: string, first: boolean): string {
  const copy = structuredClone(value);
  const target = valueAt(copy, path) as Record<string, unknown>;
  // A key the object lacks (`__proto__`, `constructor`, ...) is given once as it is, so that the mark gives it twice.
  if (!Object.hasOwn(target, key)) Object.defineProperty(target, key, { value: 'same', enumerable: true, writable: true, configurable: true });
  const withMark = first ? { [MARK_KEY]: MARK, ...target } : { ...target, [MARK_KEY]: MARK };
  const text = JSON.stringify(path.length === 0 ? withMark : (() => {
    const parent = valueAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
    parent[path[path.length - 1]] = withMark;
    return copy;
  })());
  return replaceMark(text, `${JSON.stringify(MARK_KEY)}:${MARK_TEXT}`, `${JSON.stringify(key)}:${raw}`) as string;
}

function replaceMark(text: string, mark: string, raw: string | Buffer): string | Buffer {
  const i = text.indexOf(mark);
  const before = text.slice(0, i);
  const after = text.slice(i + mark.length);
  return typeof raw === 'string' ? before + raw + after : Buffer.concat([Buffer.from(before), raw, Buffer.from(after)]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

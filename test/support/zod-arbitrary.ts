/**
 * Valid values of the protocol's zod schemas, as fast-check arbitraries: the fuzz suite
 * starts from messages and bodies the foreman must accept and then breaks them, so every
 * mutation lands one step away from something real. The walk reads zod v4's definitions
 * (`_zod.def`) for the kinds the protocol uses; a kind it does not know is an error, so a
 * new kind in the protocol is noticed rather than fuzzed as nothing.
 */
import fc from 'fast-check';
import type { z } from 'zod';

type Def = { type: string; [k: string]: any };
type Check = { check: string; [k: string]: any };

const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;
const checksOf = (def: Def): Check[] => ((def.checks ?? []) as { _zod: { def: Check } }[]).map((c) => c._zod.def);

/** Any JSON value, kept small: where the schema says `unknown`, the foreman takes anything. */
export const jsonArbitrary: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** Strings of every kind of character: ASCII mostly, sometimes any code point (astral included). */
function stringArbitrary(min: number, max: number): fc.Arbitrary<string> {
  // fast-check counts characters, zod counts UTF-16 units: an astral character is two.
  const most = Math.max(min, Math.floor(Math.min(max, 60) / 2));
  const units = fc.oneof({ arbitrary: fc.constantFrom<'grapheme-ascii' | 'binary' | 'grapheme'>('grapheme-ascii'), weight: 3 },
    { arbitrary: fc.constantFrom<'grapheme-ascii' | 'binary' | 'grapheme'>('binary', 'grapheme'), weight: 1 });
  return units.chain((unit) => fc.string({ unit, minLength: min, maxLength: most }))
    .filter((s) => s.length >= min && s.length <= max);
}

/** Integers from lo to hi, beyond the 32 bits fc.integer covers. */
function integerIn(lo: number, hi: number): fc.Arbitrary<number> {
  if (lo >= -(2 ** 31) && hi <= 2 ** 31 - 1) return fc.integer({ min: lo, max: hi });
  return fc.double({ min: lo, max: hi, noNaN: true }).map((x) => Math.min(hi, Math.max(lo, Math.round(x))));
}

function numberArbitrary(def: Def): fc.Arbitrary<number> {
  let min = -Number.MAX_VALUE;
  let max = Number.MAX_VALUE;
  let minExcluded = false;
  let maxExcluded = false;
  let integer = false;
  for (const c of checksOf(def)) {
    if (c.check === 'number_format') integer = true;
    else if (c.check === 'greater_than' && c.value >= min) { min = c.value; minExcluded = !c.inclusive; }
    else if (c.check === 'less_than' && c.value <= max) { max = c.value; maxExcluded = !c.inclusive; }
    else if (c.check === 'multiple_of') throw new Error('zod-arbitrary: multipleOf is not supported');
  }
  if (integer) {
    const lo = Math.max(Number.MIN_SAFE_INTEGER, minExcluded ? Math.floor(min) + 1 : Math.ceil(min));
    const hi = Math.min(Number.MAX_SAFE_INTEGER, maxExcluded ? Math.ceil(max) - 1 : Math.floor(max));
    // Mostly small numbers (what real peers send), sometimes anywhere in the range.
    const near = Math.max(lo, 0);
    return fc.oneof({ arbitrary: integerIn(Math.max(lo, near - 1_000), Math.min(hi, near + 1_000)), weight: 4 }, { arbitrary: integerIn(lo, hi), weight: 1 });
  }
  return fc.double({ min, max, minExcluded, maxExcluded, noNaN: true, noDefaultInfinity: true });
}

function lengthBounds(def: Def, cap: number): { min: number; max: number } {
  let min = 0;
  let max = Infinity;
  for (const c of checksOf(def)) {
    if (c.check === 'min_length') min = Math.max(min, c.minimum);
    else if (c.check === 'max_length') max = Math.min(max, c.maximum);
    else if (c.check === 'length_equals') { min = c.length; max = c.length; }
  }
  return { min, max: Math.min(max, min + cap) };
}

/**
 * An arbitrary of values that `schema` accepts. Objects, optional and nullable fields, enums,
 * literals, unions (discriminated or not), arrays, records, strings (lengths, regexes),
 * numbers (integers, bounds), booleans, and `unknown` (any JSON value); a pipe is generated
 * from its input side (the REST schemas transform snake_case bodies).
 */
export function arbitraryOf(schema: z.ZodType): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  switch (def.type) {
    case 'unknown':
    case 'any':
      return jsonArbitrary;
    case 'string': {
      const checks = checksOf(def);
      // A refined string (a duration's text): no generator knows its rule; its examples are valid.
      const examples = (schema as { meta?: () => { examples?: unknown } | undefined }).meta?.()?.examples;
      if (checks.some((c) => c.check === 'custom') && Array.isArray(examples) && examples.length > 0) return fc.constantFrom(...(examples as unknown[]));
      const regex = checks.find((c) => c.check === 'string_format' && c.format === 'regex');
      if (regex) return fc.stringMatching(regex.pattern as RegExp);
      // A format (email, datetime, ...) sits on the schema itself (z.email()) or among its checks.
      const format = def.format ?? checks.find((c) => c.check === 'string_format')?.format;
      if (format === 'datetime') return fc.date({ min: new Date(0), max: new Date(Date.UTC(2100, 0, 1)), noInvalidDate: true }).map((d) => d.toISOString());
      if (format) throw new Error(`zod-arbitrary: string format ${format} is not supported`);
      const { min, max } = lengthBounds(def, 200);
      return stringArbitrary(min, max);
    }
    case 'number':
      return numberArbitrary(def);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'literal':
      return fc.constantFrom(...(def.values as unknown[]));
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries as Record<string, unknown>));
    case 'optional':
      return fc.option(arbitraryOf(def.innerType), { nil: undefined });
    case 'nullable':
      return fc.option(arbitraryOf(def.innerType), { nil: null });
    case 'default':
    case 'catch':
    case 'readonly':
      return arbitraryOf(def.innerType);
    case 'pipe':
      return arbitraryOf(def.in);
    case 'array': {
      const { min, max } = lengthBounds(def, 6);
      return fc.array(arbitraryOf(def.element), { minLength: min, maxLength: max });
    }
    case 'record':
      return fc.dictionary(arbitraryOf(def.keyType) as fc.Arbitrary<string>, arbitraryOf(def.valueType), { maxKeys: 4 });
    case 'union':
      return fc.oneof(...(def.options as z.ZodType[]).map(arbitraryOf));
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      const arbs: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const [key, field] of Object.entries(shape)) {
        const optional = defOf(field).type === 'optional';
        arbs[key] = optional ? arbitraryOf(defOf(field).innerType) : arbitraryOf(field);
        if (!optional) required.push(key);
      }
      return fc.record(arbs, { requiredKeys: required });
    }
    default:
      throw new Error(`zod-arbitrary: schemas of type ${def.type} are not supported`);
  }
}

/** Where a value sits inside another: object keys and array indexes. */
export type Path = readonly (string | number)[];

/**
 * The paths inside `value` where `schema` takes any JSON value (`unknown`: task inputs and
 * results, map arguments, metadata, checkpoints): where deep or huge JSON gets furthest
 * before anything refuses it.
 */
export function jsonPaths(schema: z.ZodType, value: unknown, path: Path = []): Path[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'unknown':
    case 'any':
      return [path];
    case 'optional':
    case 'default':
    case 'catch':
    case 'readonly':
      return value === undefined ? [] : jsonPaths(def.innerType, value, path);
    case 'nullable':
      return value === null ? [] : jsonPaths(def.innerType, value, path);
    case 'pipe':
      return jsonPaths(def.in, value, path);
    case 'array':
      return Array.isArray(value) ? value.flatMap((v, i) => jsonPaths(def.element, v, [...path, i])) : [];
    case 'record':
      return isObject(value) ? Object.entries(value).flatMap(([k, v]) => jsonPaths(def.valueType, v, [...path, k])) : [];
    case 'object': {
      if (!isObject(value)) return [];
      const shape = def.shape as Record<string, z.ZodType>;
      return Object.keys(shape).filter((k) => value[k] !== undefined).flatMap((k) => jsonPaths(shape[k], value[k], [...path, k]));
    }
    case 'union': {
      const option = (def.options as z.ZodType[]).find((o) => o.safeParse(value).success);
      return option ? jsonPaths(option, value, path) : [];
    }
    default:
      return [];
  }
}

/** Every path inside a value (the root excluded), parents before children. */
export function allPaths(value: unknown, path: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...path, i], ...allPaths(v, [...path, i])]);
  if (isObject(value)) return Object.entries(value).flatMap(([k, v]) => [[...path, k], ...allPaths(v, [...path, k])]);
  return [];
}

/** The value at a path, or undefined. */
export function valueAt(value: unknown, path: Path): unknown {
  let v = value;
  for (const p of path) v = (v as Record<string | number, unknown> | null | undefined)?.[p];
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

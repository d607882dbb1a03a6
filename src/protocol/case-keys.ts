/**
 * The REST API speaks snake_case (`timeout_ms`), as the HTTP task services it stands in for
 * do; the WebSocket protocol and the SDKs speak camelCase (`timeoutMs`). The two are one
 * shape: the REST schema of a submission is derived from the protocol's schema here, and the
 * SDK's types of REST answers are derived from the REST schemas with {@link CamelKeys}.
 */
import { z } from 'zod';

/** `timeoutMs` → `timeout_ms`. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `timeout_ms` → `timeoutMs`. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** A snake_case string literal in camelCase. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** An object type with its top-level keys in camelCase (values untouched). */
export type CamelKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** Rename an object's top-level keys to camelCase; values (inputs, results) are left as they are. */
export function camelKeys<T extends object>(o: T): CamelKeys<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[camelCase(k)] = v;
  return out as CamelKeys<T>;
}

/** The same structure with snake_case keys, no transforms (so objects stay objects for unions). */
function snakeStructure(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodObject) {
    const shape: Record<string, z.ZodType> = {};
    for (const [k, v] of Object.entries(schema.shape as Record<string, z.ZodType>)) shape[snakeCase(k)] = snakeStructure(v);
    return schema.clone({ ...schema.def, shape } as typeof schema.def);
  }
  if (schema instanceof z.ZodOptional) return snakeStructure(schema.unwrap() as z.ZodType).optional();
  if (schema instanceof z.ZodNullable) return snakeStructure(schema.unwrap() as z.ZodType).nullable();
  if (schema instanceof z.ZodArray) return schema.clone({ ...schema.def, element: snakeStructure(schema.element as z.ZodType) } as typeof schema.def);
  if (schema instanceof z.ZodDiscriminatedUnion) {
    const options = (schema.options as z.ZodType[]).map(snakeStructure);
    return schema.clone({ ...schema.def, options, discriminator: snakeCase(schema.def.discriminator) } as unknown as typeof schema.def);
  }
  return schema;
}

/** A walk of values of one schema that renames their keys. */
type Walk = (value: unknown) => unknown;

/**
 * The walk for a schema, made once and kept: what kind of schema it is and which keys it
 * renames are looked up when the walk is made, not for every value (a REST submission is
 * renamed on every request). A child's walk is made at its first use, so a schema that
 * contains itself is fine.
 */
function walkOf(walks: WeakMap<z.ZodType, Walk>, make: (schema: z.ZodType) => Walk, schema: z.ZodType): Walk {
  let w = walks.get(schema);
  if (!w) { w = make(schema); walks.set(schema, w); }
  return w;
}

/** A child's walk, made at its first use. */
function lazyWalk(walks: WeakMap<z.ZodType, Walk>, make: (schema: z.ZodType) => Walk, schema: z.ZodType): Walk {
  let w: Walk | undefined;
  return (value) => (w ??= walkOf(walks, make, schema))(value);
}

const camelWalks = new WeakMap<z.ZodType, Walk>();
const snakeWalks = new WeakMap<z.ZodType, Walk>();
const same: Walk = (value) => value;

/**
 * The walk that renames, beside a camelCase schema, the keys the schema names: from snake_case
 * to camelCase (a parsed request body) or back (a response). Values are left as they are.
 */
function walkMaker(walks: WeakMap<z.ZodType, Walk>, toSnake: boolean): (schema: z.ZodType) => Walk {
  const make = (schema: z.ZodType): Walk => {
    const child = (s: z.ZodType) => lazyWalk(walks, make, s);
    if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
      const inner = child(schema.unwrap() as z.ZodType);
      return (value) => (value === undefined || value === null ? value : inner(value));
    }
    if (schema instanceof z.ZodArray) {
      const element = child(schema.element as z.ZodType);
      return (value) => (Array.isArray(value) ? value.map(element) : value);
    }
    if (schema instanceof z.ZodObject) {
      const keys = Object.entries(schema.shape as Record<string, z.ZodType>)
        .map(([k, v]) => (toSnake ? { from: k, to: snakeCase(k), walk: child(v) } : { from: snakeCase(k), to: k, walk: child(v) }));
      return (value) => {
        if (value === undefined || value === null) return value;
        const src = value as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const { from, to, walk } of keys) if (from in src) out[to] = walk(src[from]);
        return out;
      };
    }
    if (schema instanceof z.ZodDiscriminatedUnion) {
      const key = schema.def.discriminator;
      const tagKey = toSnake ? key : snakeCase(key);
      const options = (schema.options as z.ZodObject[]).map((o) => ({ values: (o.shape[key] as z.ZodLiteral).values, walk: child(o) }));
      return (value) => {
        if (value === undefined || value === null) return value;
        const tag = (value as Record<string, unknown>)[tagKey];
        const option = options.find((o) => o.values.has(tag as never));
        return option ? option.walk(value) : value;
      };
    }
    return same;
  };
  return make;
}

const makeCamelWalk = walkMaker(camelWalks, false);
const makeSnakeWalk = walkMaker(snakeWalks, true);

function toCamel(schema: z.ZodType, value: unknown): unknown {
  return walkOf(camelWalks, makeCamelWalk, schema)(value);
}

/**
 * The snake_case twin of a camelCase schema: every key the schema names is renamed (nested
 * objects and arrays of objects too, never the keys inside an open value such as a task's
 * input), the checks stay the same, and parsing gives back the camelCase value.
 */
export function snakeCaseSchema<S extends z.ZodType>(schema: S): z.ZodType<z.output<S>> {
  return snakeStructure(schema).transform((v) => toCamel(schema, v) as z.output<S>) as unknown as z.ZodType<z.output<S>>;
}

function toSnake(schema: z.ZodType, value: unknown): unknown {
  return walkOf(snakeWalks, makeSnakeWalk, schema)(value);
}

/**
 * A camelCase value with the keys its schema names in snake_case, nested ones too (never the
 * keys inside an open value such as a task's input): what a REST body built from an SDK
 * value looks like.
 */
export function snakeKeysOf<S extends z.ZodType>(schema: S, value: z.input<S> | z.output<S>): Record<string, unknown> {
  return toSnake(schema, value) as Record<string, unknown>;
}

/** The reverse of {@link snakeKeysOf}: a snake_case value read back with its schema's camelCase keys. */
export function camelKeysOf<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return toCamel(schema, value) as z.output<S>;
}

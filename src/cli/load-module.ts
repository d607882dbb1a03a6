import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Import a user's module (.ts, .js, .mjs) by path, relative to the working directory. */
export async function loadModule(path: string): Promise<Record<string, unknown>> {
  return import(pathToFileURL(resolve(path)).href) as Promise<Record<string, unknown>>;
}

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Import a user's module (.ts, .js, .mjs) by path, relative to the working directory. A path
 * that does not exist, and a module that throws while it loads (a syntax error, a missing
 * import, code at its top level that fails), are errors that name the file and what went wrong.
 * `what` names the module in those messages ("map module", "handlers module").
 */
export async function loadModule(path: string, what = 'module'): Promise<Record<string, unknown>> {
  const file = resolve(path);
  if (!existsSync(file)) throw new Error(`${what} ${path} does not exist${file !== path ? ` (looked for ${file})` : ''}`);
  try {
    return await import(pathToFileURL(file).href) as Record<string, unknown>;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    const named = err instanceof Error && e.name && e.name !== 'Error' && !e.message?.startsWith(e.name);
    const why = err instanceof Error ? `${named ? `${e.name}: ` : ''}${e.message}` : String(err);
    throw new Error(`${what} ${path} failed to load: ${why.split('\n')[0]}`);
  }
}

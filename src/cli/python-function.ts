/**
 * `crowdcompute map module.py:function inputs.json`: the function's source, cut from the file
 * as it is written there (from its `def` to the next line at the file's top level), so that
 * the foreman checks and ships exactly what the file says.
 */
import { readFileSync } from 'node:fs';

/** `path/module.py:name` → the path and the name (none when not given). */
export function splitPythonTarget(target: string): { path: string; name: string | undefined } {
  const m = /^(.*\.py):([A-Za-z_][A-Za-z0-9_]*)$/.exec(target);
  return m ? { path: m[1], name: m[2] } : { path: target, name: undefined };
}

/** The source of the top-level function `name` of a Python file (the file's only one when no name is given). */
export function pythonFunctionFromFile(path: string, name: string | undefined): { source: string; name: string } {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  const defs = lines.flatMap((line, i) => {
    const m = /^def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(line);
    return m ? [{ name: m[1], at: i }] : [];
  });
  if (defs.length === 0) throw new Error(`${path} defines no top-level function (def name(arg): ...)`);
  const chosen = name === undefined ? defs : defs.filter((d) => d.name === name);
  if (chosen.length === 0) throw new Error(`${path} has no top-level function "${name}" (it has: ${defs.map((d) => d.name).join(', ')})`);
  if (chosen.length > 1) throw new Error(`${path} has several top-level functions (${defs.map((d) => d.name).join(', ')}): name one, as ${path}:${defs[0].name}`);
  const start = chosen[0].at;
  let end = start + 1;
  // The function ends before the next line at the top level (a closing bracket of its own signature aside).
  while (end < lines.length && (lines[end].trim() === '' || /^\s/.test(lines[end]) || /^[)\]}]/.test(lines[end]) || lines[end].startsWith('#'))) end++;
  while (end > start + 1 && (lines[end - 1].trim() === '' || lines[end - 1].startsWith('#'))) end--;
  return { source: `${lines.slice(start, end).join('\n')}\n`, name: chosen[0].name };
}

/**
 * Pyodide's files as a tab holds them: fetched from the foreman once per page (the foreman
 * serves them as immutable, so the browser's cache answers later page loads), the WebAssembly
 * module capped in memory and compiled once, for every Python worker of the tab. The sandboxed
 * workers fetch nothing: they get these by postMessage.
 */
import { capWasmMemory } from '../runtime/wasm-memory-cap.ts';

/** What a Python worker boots from. */
export interface PyodideFiles {
  /** Where the files came from (ends with `/`); the worker's Pyodide knows itself by it. */
  indexURL: string;
  /** pyodide.js, pyodide.asm.mjs and pyodide-lock.json as text, python_stdlib.zip as bytes. */
  files: Record<string, string | Uint8Array>;
  /** The compiled module, its memory capped. */
  wasm: WebAssembly.Module;
}

const TEXT = ['pyodide.js', 'pyodide.asm.mjs', 'pyodide-lock.json'];

async function get(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load Pyodide's ${url.split('/').pop()} from ${url}: HTTP ${res.status}`);
  return res;
}

/** Fetch, cap and compile; `base` is the folder's URL (`/pyodide/<version>/`), `maxMemoryBytes` the cap. */
export async function loadPyodideFiles(base: string, maxMemoryBytes: number): Promise<PyodideFiles> {
  const indexURL = new URL(base, location.href).href;
  const [texts, stdlib, wasm] = await Promise.all([
    Promise.all(TEXT.map(async (name) => [name, await (await get(indexURL + name)).text()] as const)),
    get(`${indexURL}python_stdlib.zip`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
    get(`${indexURL}pyodide.asm.wasm`).then(async (r) => WebAssembly.compile(capWasmMemory(new Uint8Array(await r.arrayBuffer()), maxMemoryBytes) as Uint8Array<ArrayBuffer>)),
  ]);
  return { indexURL, files: { ...Object.fromEntries(texts), 'python_stdlib.zip': stdlib }, wasm };
}

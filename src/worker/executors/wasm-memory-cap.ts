/**
 * Caps the memory a WebAssembly module can grow to, by rewriting the maximum of the memory it
 * defines in its binary before it is compiled. Pyodide's module defines and exports its own
 * memory with a maximum of 4 GiB, and grows it as Python allocates; with a lower maximum a
 * `memory.grow` past it fails, so Python's allocator returns NULL and the code gets a
 * MemoryError instead of the process growing without bound.
 */

/** Bytes in a WebAssembly page. */
export const WASM_PAGE = 65_536;

/**
 * A copy of `bytes` whose defined memory may grow to at most `maxPages` pages (its initial
 * size is kept if larger). The new maximum is written in as many bytes as the old one (LEB128
 * allows padding), so no section moves. Throws when the module defines no memory or one it
 * cannot cap (a 64-bit memory, or a maximum too short to hold the new one).
 */
export function capWasmMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  const b = new Uint8Array(bytes);
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) throw new Error('not a WebAssembly binary');
  let p = 8;
  const leb = (): number => {
    let r = 0; let mul = 1; let x: number;
    do { x = b[p++]!; r += (x & 0x7f) * mul; mul *= 128; } while (x & 0x80);
    return r;
  };
  while (p < b.length) {
    const id = b[p++]!;
    const size = leb();
    const end = p + size;
    if (id === 5) {
      if (leb() !== 1) throw new Error('the module defines more than one memory');
      const flags = b[p++]!;
      if (flags & 0x04) throw new Error('the module defines a 64-bit memory');
      const initial = leb();
      if (!(flags & 0x01)) throw new Error('the module\'s memory has no maximum to lower');
      const at = p;
      leb();
      const width = p - at;
      const max = Math.max(maxPages, initial);
      if (max >= 2 ** (7 * width)) throw new Error(`the module's memory maximum is ${width} bytes long, too short for ${max} pages`);
      for (let i = 0; i < width; i++) b[at + i] = ((max >>> (7 * i)) & 0x7f) | (i < width - 1 ? 0x80 : 0);
      return b;
    }
    p = end;
  }
  throw new Error('the module defines no memory');
}

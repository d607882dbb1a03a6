/**
 * A cap on a WebAssembly module's memory, written into its bytes: the maximum of the memory
 * it defines. Browsers give a Web Worker no heap limit of its own; a module whose memory may
 * not grow past the cap fails its allocations there (Python raises MemoryError) instead of
 * taking the tab's memory. Pure byte work: it runs in a browser and in Node alike.
 */

/** The size of a WebAssembly memory page. */
export const WASM_PAGE = 65_536;
const PAGE = WASM_PAGE;

/** Read an unsigned LEB128 number at `at`: its value and the offset after it. */
function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let p = at; p < bytes.length; p++) {
    const b = bytes[p]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [value, p + 1];
  }
  throw new Error('the WebAssembly module is truncated (a number runs past its end)');
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/**
 * A copy of the module `wasm` whose memory may grow to `maxBytes` at most (rounded down to
 * whole 64 KiB pages). Throws when the module defines no memory of its own (it imports it),
 * or when the memory it starts with is already larger than the cap.
 */
export function capWasmMemory(wasm: Uint8Array, maxBytes: number): Uint8Array {
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) throw new Error('not a WebAssembly module (its first bytes are not \\0asm)');
  const maxPages = Math.floor(maxBytes / PAGE);
  let p = 8;
  while (p < wasm.length) {
    const id = wasm[p]!;
    const [size, start] = readLeb(wasm, p + 1);
    if (id === 5) {
      const [count, afterCount] = readLeb(wasm, start);
      if (count !== 1) throw new Error(`the WebAssembly module defines ${count} memories; one is expected`);
      const flags = wasm[afterCount]!;
      if (flags > 1) throw new Error(`the WebAssembly module's memory is shared or 64-bit (limits flags ${flags}); it cannot be capped here`);
      const [min] = readLeb(wasm, afterCount + 1);
      if (min > maxPages) throw new Error(`the WebAssembly module starts with ${min * PAGE / 1_048_576} MiB of memory, more than the cap of ${maxPages * PAGE / 1_048_576} MiB`);
      const body = [...leb(1), 0x01, ...leb(min), ...leb(maxPages)];
      const section = [5, ...leb(body.length), ...body];
      const out = new Uint8Array(wasm.length - (start + size - p) + section.length);
      out.set(wasm.subarray(0, p), 0);
      out.set(section, p);
      out.set(wasm.subarray(start + size), p + section.length);
      return out;
    }
    p = start + size;
  }
  throw new Error('the WebAssembly module defines no memory of its own (it imports it): there is no maximum to cap');
}

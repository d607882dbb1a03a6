/**
 * The part of Pyodide's API this program uses, typed here rather than taken from the `pyodide`
 * package: its declarations do not type-check on their own (they name an `FS` type they do
 * not declare), and the package build checks every declaration it reads.
 */

/** A loaded interpreter. */
export interface PyodideInterpreter {
  globals: { get(name: string): unknown };
  runPython(code: string, options?: { globals?: unknown }): unknown;
  setStdin(options: { error: boolean }): void;
}

/** `pyodide.mjs`'s export. */
export interface PyodideModule {
  loadPyodide(options: {
    indexURL?: string;
    jsglobals?: object;
    env?: Record<string, string>;
    stdout?: (text: string) => void;
    stderr?: (text: string) => void;
  }): Promise<PyodideInterpreter>;
}

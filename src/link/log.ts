/**
 * The logging the runtime parts need, and no more: a pino logger fits it, and so does a
 * browser's console through {@link consoleLog}. Lines are `(fields, message)`.
 */

/** A structured logger. */
export interface Log {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** A logger that drops everything. */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger on the console (for runtimes without pino, such as a browser's Web Worker). */
export function consoleLog(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): Log {
  const order = ['debug', 'info', 'warn', 'error'];
  const at = (l: 'debug' | 'info' | 'warn' | 'error') => (fields: object, message?: string) => {
    if (order.indexOf(l) >= order.indexOf(level)) console[l](message ?? '', fields);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * The log of a foreman or worker started from the command line: human-readable lines
 * (pino-pretty) on a terminal, JSON lines (pino's own) elsewhere, for log collectors and
 * scripts; `--log-format` chooses.
 */
import { Option } from 'commander';
import { pino, type Logger } from 'pino';

/** What `--log-format` takes: `auto` is `pretty` when stderr is a terminal, else `json`. */
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
/** A `--log-format` value. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The `--log-format` flag (env CROWDCOMPUTE_LOG_FORMAT). */
export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'pretty (a line per event, for people), json (a JSON object per line, for log collectors), or auto: pretty when stderr is a terminal, else json')
    .choices(LOG_FORMATS).env('CROWDCOMPUTE_LOG_FORMAT').default('auto');
}

/** Whether the log is pretty: asked so, or `auto` on a terminal. */
export function isPretty(format: LogFormat, stderrIsTTY = process.stderr.isTTY === true): boolean {
  return format === 'pretty' || (format === 'auto' && stderrIsTTY);
}

/**
 * A logger on stderr at `level`, in `format`. pino-pretty runs in this thread, writing
 * synchronously as pino's own destination does, so that a crash's last lines are not lost.
 */
export async function cliLogger(level: string, format: LogFormat): Promise<Logger> {
  if (!isPretty(format)) return pino({ level }, pino.destination(2));
  const { default: pretty } = await import('pino-pretty');
  const colour = process.stderr.isTTY === true && !process.env.NO_COLOR;
  return pino({ level }, pretty({ destination: 2, sync: true, colorize: colour, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

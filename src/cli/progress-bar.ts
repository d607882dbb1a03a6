import cliProgress from 'cli-progress';

/** Where a progress bar writes: stderr, or anything like it (a test's fake stream). */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** What the bar shows besides the counts. */
interface Payload { label: string; extra: string; tty: boolean }

/** One line of the bar: `job 1a2b3c4d ███░░░ 42% 42/100 3.2s 1 failed` (on a terminal), `job 1a2b3c4d 40% (40/100) 3.0s 1 failed` (elsewhere). */
const format: cliProgress.GenericFormatter = (options, params, payload: Payload) => {
  const percent = `${Math.floor(params.progress * 100)}%`;
  const elapsed = `${(((params.stopTime ?? Date.now()) - params.startTime) / 1000).toFixed(1)}s`;
  const extra = payload.extra ? ` ${payload.extra}` : '';
  return payload.tty
    ? `${payload.label} ${cliProgress.Format.BarFormat(params.progress, options)} ${percent.padStart(4)} ${params.value}/${params.total} ${elapsed}${extra}`
    : `${payload.label} ${percent} (${params.value}/${params.total}) ${elapsed}${extra}`;
};

/**
 * A progress bar on stderr, drawn by cli-progress. On a terminal it redraws one line; elsewhere
 * (CI logs, pipes) it prints a line at every tenth, and a last line with the final counts, so
 * logs stay readable. The text after the counts (`3 failed`) stays until an update changes it,
 * so the last line keeps it.
 */
export class ProgressBar {
  private readonly label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private bar: cliProgress.SingleBar | null = null;
  private state: { done: number; total: number; extra: string } | null = null;
  /** Elsewhere than on a terminal: the tenth last printed, and the state that line showed. */
  private lastDecile = -1;
  private lastPrinted = '';
  private finished = false;

  /** A bar named `label` (`job 1a2b3c4d`), on `stream` (stderr by default). */
  constructor(label: string, stream: ProgressStream = process.stderr) {
    this.label = label;
    this.stream = stream;
    this.tty = stream.isTTY === true;
  }

  /** `done` of `total` finished; `extra` is shown after the counts (omitted: the previous text stays). */
  update(done: number, total: number, extra?: string): void {
    if (this.finished) return;
    this.state = { done, total, extra: extra ?? this.state?.extra ?? '' };
    if (this.tty) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar({
          stream: this.stream, format, fps: 20, hideCursor: false, linewrap: true, gracefulExit: false,
          barsize: Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60)), barCompleteChar: '█', barIncompleteChar: '░',
        });
        this.bar.start(total, done, { label: this.label, extra: this.state.extra, tty: true });
      } else {
        if (total !== this.bar.getTotal()) this.bar.setTotal(total);
        this.bar.update(done, { extra: this.state.extra });
      }
      return;
    }
    const decile = Math.floor(fraction(done, total) * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.printLine();
    }
  }

  /** Finish: the last state is drawn (once), the line ended, and `message` printed below it. */
  done(message = ''): void {
    if (this.finished) return;
    this.finished = true;
    if (this.bar) this.bar.stop();
    else if (this.state && key(this.state) !== this.lastPrinted) this.printLine();
    if (message) this.stream.write(`${message}\n`);
  }

  private printLine(): void {
    const s = this.state!;
    this.lastPrinted = key(s);
    const line = format({}, {
      progress: fraction(s.done, s.total), eta: 0, startTime: this.started, stopTime: null, total: s.total, value: s.done, maxWidth: 200,
    }, { label: this.label, extra: s.extra, tty: false } satisfies Payload);
    this.stream.write(`${line}\n`);
  }
}

/** Finished over all, 0..1; nothing to do counts as done. */
function fraction(done: number, total: number): number {
  return total <= 0 ? 1 : Math.max(0, Math.min(1, done / total));
}

/** What a printed line shows, less the time. */
function key(s: { done: number; total: number; extra: string }): string {
  return `${s.done}/${s.total} ${s.extra}`;
}

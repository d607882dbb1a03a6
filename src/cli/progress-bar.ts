/**
 * A progress bar on stderr. On a terminal it redraws one line; elsewhere (CI logs, pipes)
 * it prints a line at every tenth, so logs stay readable.
 */
export class ProgressBar {
  private readonly label: string;
  private readonly stream: NodeJS.WriteStream;
  private readonly started = Date.now();
  private lastDecile = -1;
  private lastDraw = 0;
  private finished = false;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.stream = stream;
  }

  update(done: number, total: number, extra = ''): void {
    if (this.finished) return;
    const fraction = total === 0 ? 1 : Math.min(1, done / total);
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(1);
    if (this.stream.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 50 && fraction < 1) return;
      this.lastDraw = now;
      const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60));
      const filled = Math.round(fraction * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      this.stream.write(`\r${this.label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${total} ${elapsed}s ${extra}\x1b[K`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile === this.lastDecile) return;
      this.lastDecile = decile;
      this.stream.write(`${this.label} ${(fraction * 100).toFixed(0)}% (${done}/${total}) ${elapsed}s ${extra}\n`);
    }
  }

  done(message = ''): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream.isTTY) this.stream.write('\n');
    if (message) this.stream.write(`${message}\n`);
  }
}

/** One bucket of the throughput chart. */
export interface SeriesPoint {
  /** Start of the bucket (epoch ms). */
  t: number;
  completed: number;
  failed: number;
}

/**
 * Task outcomes this foreman recorded, in 10-second buckets over the last hour: what the
 * dashboard's throughput and failure-rate chart draws. In memory (a restart starts it empty)
 * and per foreman (with several, each draws what it recorded).
 */
export class ThroughputSeries {
  static readonly BUCKET_MS = 10_000;
  static readonly BUCKETS = 360;
  private readonly buckets: SeriesPoint[] = [];
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Count outcomes in the current bucket. */
  record(completed: number, failed: number): void {
    const b = this.current();
    b.completed += completed;
    b.failed += failed;
  }

  /** Every bucket of the last hour, oldest first, empty ones included (the chart's x axis is time). */
  points(): SeriesPoint[] {
    const latest = this.bucketStart(this.now());
    const first = latest - (ThroughputSeries.BUCKETS - 1) * ThroughputSeries.BUCKET_MS;
    const byStart = new Map(this.buckets.map((b) => [b.t, b]));
    const out: SeriesPoint[] = [];
    for (let t = first; t <= latest; t += ThroughputSeries.BUCKET_MS) out.push(byStart.get(t) ?? { t, completed: 0, failed: 0 });
    return out;
  }

  /** The bucket in progress. */
  latest(): SeriesPoint {
    return { ...this.current() };
  }

  private bucketStart(ms: number): number {
    return ms - (ms % ThroughputSeries.BUCKET_MS);
  }

  private current(): SeriesPoint {
    const t = this.bucketStart(this.now());
    let b = this.buckets.at(-1);
    if (!b || b.t !== t) {
      b = { t, completed: 0, failed: 0 };
      this.buckets.push(b);
      while (this.buckets.length > ThroughputSeries.BUCKETS) this.buckets.shift();
    }
    return b;
  }
}

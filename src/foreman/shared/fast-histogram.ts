import type { Registry } from 'prom-client';

/** One histogram series: counts per bucket (the last is +Inf), sum and count. */
interface Series {
  labelValue: string;
  counts: Float64Array;
  sum: number;
}

/**
 * A histogram with one label, for the dispatch loop's hot path: observing is a binary search
 * and an increment (prom-client's own hashes its labels at every call; at a few observations
 * per task that cost the loop about 4% of its throughput, measured with `npm run bench`).
 * Counts are cumulated only when a scrape asks. It registers with a prom-client Registry like
 * any of prom-client's metrics and comes out in the same exposition format (a test compares
 * the two).
 */
export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly label: string;
  private readonly buckets: readonly number[];
  private readonly series = new Map<string, Series>();

  constructor(options: { name: string; help: string; labelName: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.label = options.labelName;
    this.buckets = [...options.buckets].sort((a, b) => a - b);
    for (const r of options.registers) r.registerMetric(this as never);
  }

  /** Count `value` under the label value. */
  observe(labelValue: string, value: number): void {
    let s = this.series.get(labelValue);
    if (!s) {
      s = { labelValue, counts: new Float64Array(this.buckets.length + 1), sum: 0 };
      this.series.set(labelValue, s);
    }
    // The first bucket whose bound is at least the value (le is inclusive).
    let lo = 0;
    let hi = this.buckets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.buckets[mid]! < value) lo = mid + 1; else hi = mid;
    }
    s.counts[lo]!++;
    s.sum += value;
  }

  /** What prom-client's registry formats: cumulative buckets, then sum and count, per label value. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i]!;
        values.push({ labels: { le: this.buckets[i]!, [this.label]: s.labelValue }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      cumulative += s.counts[this.buckets.length]!;
      values.push({ labels: { le: '+Inf', [this.label]: s.labelValue }, value: cumulative, metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.label]: s.labelValue }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.label]: s.labelValue }, value: cumulative, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forget every observation. */
  reset(): void {
    this.series.clear();
  }
}

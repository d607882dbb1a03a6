/** The Prometheus text-format parser the tests read metrics with; it ships without declarations. */
declare module 'parse-prometheus-text-format' {
  /** One sample of a family: a value with its labels, or a histogram's or summary's parts. */
  export interface PromSample { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }
  /** A metric family: its name, help, type (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED) and samples. */
  export interface PromFamily { name: string; help: string; type: string; metrics: PromSample[] }
  /** Parse Prometheus text exposition format; throws on text that is not. */
  export default function parsePrometheusTextFormat(text: string): PromFamily[];
}

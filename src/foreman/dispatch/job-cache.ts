/**
 * What the dispatcher reads of a job once and keeps (a map job's function source and chunk
 * size, a graph's nodes), by job id, bounded (oldest out), so that it reads the store once per
 * job, not once per assignment.
 * @internal
 */
export class JobCache<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) { this.max = max; }

  get(jobId: string): V | undefined { return this.map.get(jobId); }

  set(jobId: string, entry: V): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(jobId, entry);
  }
}

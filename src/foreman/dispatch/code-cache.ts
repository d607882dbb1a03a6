/**
 * Map-job sources by job id, bounded (oldest out), so that the dispatcher reads a job's code
 * from the store once per job, not once per assignment.
 * @internal
 */
export class CodeCache {
  private readonly map = new Map<string, string>();
  private readonly max: number;

  constructor(max: number) { this.max = max; }

  get(jobId: string): string | undefined { return this.map.get(jobId); }

  set(jobId: string, code: string): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(jobId, code);
  }
}

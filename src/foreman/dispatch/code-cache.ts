/**
 * Map jobs' function sources and chunk sizes by job id, bounded (oldest out), so that the
 * dispatcher reads them from the store once per job, not once per assignment.
 * @internal
 */
export class CodeCache {
  private readonly map = new Map<string, { code: string; chunkSize: number; name: string | null }>();
  private readonly max: number;

  constructor(max: number) { this.max = max; }

  get(jobId: string): { code: string; chunkSize: number; name: string | null } | undefined { return this.map.get(jobId); }

  set(jobId: string, entry: { code: string; chunkSize: number; name: string | null }): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(jobId, entry);
  }
}

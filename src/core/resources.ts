/**
 * Placement by resources: a task may require CPU cores, memory, GPUs and labels; a worker
 * announces what it has; the dispatcher hands a task only to a worker with that much free
 * (what it has, less what its running tasks require) and whose labels match. Pure.
 */
import type { Requirements } from '../protocol/index.ts';

/** What a worker has, or has free: amounts, and labels that must match exactly. */
export interface ResourceAmounts {
  cpu: number;
  memoryMb: number;
  gpu: number;
  labels: Readonly<Record<string, string>>;
}

/** A worker's resources from its hello's `resources` (cpuCores, memoryMb, gpu, labels); missing amounts are 0. */
export function announced(resources: Record<string, unknown> | undefined): ResourceAmounts {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  const labels = resources?.labels && typeof resources.labels === 'object' ? resources.labels as Record<string, string> : {};
  return { cpu: num(resources?.cpuCores), memoryMb: num(resources?.memoryMb), gpu: num(resources?.gpu), labels };
}

/** What is left of `total` once the requirements of the tasks running are taken out. */
export function freeOf(total: ResourceAmounts, running: Iterable<Requirements | null | undefined>): ResourceAmounts {
  let { cpu, memoryMb, gpu } = total;
  for (const r of running) {
    if (!r) continue;
    cpu -= r.cpu ?? 0;
    memoryMb -= r.memoryMb ?? 0;
    gpu -= r.gpu ?? 0;
  }
  return { cpu, memoryMb, gpu, labels: total.labels };
}

/** True when `req` fits in `free`: every amount at most what is free, every label the same. */
export function fits(req: Requirements, free: ResourceAmounts): boolean {
  if ((req.cpu ?? 0) > free.cpu || (req.memoryMb ?? 0) > free.memoryMb || (req.gpu ?? 0) > free.gpu) return false;
  for (const [k, v] of Object.entries(req.labels ?? {})) if (free.labels[k] !== v) return false;
  return true;
}

/** `free` after a task requiring `req` starts. */
export function take(free: ResourceAmounts, req: Requirements): ResourceAmounts {
  return { cpu: free.cpu - (req.cpu ?? 0), memoryMb: free.memoryMb - (req.memoryMb ?? 0), gpu: free.gpu - (req.gpu ?? 0), labels: free.labels };
}

/** The requirement in words, for warnings and errors: `cpu 2, memoryMb 4096, gpu 1, region=eu`. */
export function describeRequirements(req: Requirements): string {
  const parts: string[] = [];
  if (req.cpu) parts.push(`cpu ${req.cpu}`);
  if (req.memoryMb) parts.push(`memoryMb ${req.memoryMb}`);
  if (req.gpu) parts.push(`gpu ${req.gpu}`);
  for (const [k, v] of Object.entries(req.labels ?? {})) parts.push(`${k}=${v}`);
  return parts.join(', ') || 'nothing';
}

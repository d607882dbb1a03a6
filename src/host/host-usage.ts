import { cpus, freemem, totalmem, platform, release, arch } from 'node:os';

/**
 * CPU and memory of the machine, as the FastAPI worker node's /health reports them
 * (psutil.cpu_percent, virtual_memory().percent). CPU percent is measured between two calls,
 * so the first call after start reports the average since boot.
 */
export class HostUsage {
  private last = HostUsage.sample();

  private static sample(): { idle: number; total: number } {
    let idle = 0;
    let total = 0;
    for (const c of cpus()) {
      idle += c.times.idle;
      total += c.times.idle + c.times.user + c.times.nice + c.times.sys + c.times.irq;
    }
    return { idle, total };
  }

  cpuPercent(): number {
    const now = HostUsage.sample();
    const dIdle = now.idle - this.last.idle;
    const dTotal = now.total - this.last.total;
    this.last = now;
    if (dTotal <= 0) return 0;
    return Math.round(1000 * (1 - dIdle / dTotal)) / 10;
  }

  memoryPercent(): number {
    return Math.round(1000 * (1 - freemem() / totalmem())) / 10;
  }
}

/** What a worker announces about its machine in its hello (cpu cores, memory, platform, runtime). */
export function hostResources(): { cpuCores: number; memoryMb: number; platform: string; runtime: string } {
  return {
    cpuCores: cpus().length,
    memoryMb: Math.round(totalmem() / (1024 * 1024)),
    platform: `${platform()}-${arch()} ${release()}`,
    runtime: `node ${process.versions.node}`,
  };
}

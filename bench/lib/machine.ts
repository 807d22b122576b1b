/** What the figures were measured on, recorded with every entry. */
import { availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import type { MachineInfo } from './results.js';

/** This machine: CPU count as `nproc` reports it, memory, CPU model, Node version. */
export function machineInfo(): MachineInfo {
  return {
    nproc: availableParallelism(),
    memoryGB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    node: process.version,
    platform: `${platform()} ${release()}`,
  };
}

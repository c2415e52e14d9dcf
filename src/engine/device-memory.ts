// Where the GPU's memory goes at start-up, and how much of it the KV cache may take. The cache is sized last,
// from what is left once everything else the server will hold is in place: the weights, the eager steps'
// activations (a warm-up at the largest prefill chunk and decode batch) and the CUDA graphs with their buffers
// (a trial capture over a small cache, whose memory the pool keeps for the real capture). Sizing before the
// graphs existed left no room for them on an 80 GB card (issue 13).
import type { DeviceMemoryInfo } from '../backend/backend.js';

/** Bytes taken by each part, as measured between marks (device free memory before and after). */
export interface DeviceMemoryReport {
  totalBytes: number;
  /** The cap everything must fit in: --gpu_memory_limit, else the card's memory. */
  limitBytes: number;
  weightsBytes: number;
  activationsBytes: number;
  graphsBytes: number;
  kvBytes: number;
  /** Free on the device once everything is allocated. */
  freeBytes: number;
}

export class DeviceMemoryLedger {
  private readonly total: number;
  private lastFree: number;
  private readonly parts = new Map<string, number>();

  constructor(private readonly memory: DeviceMemoryInfo, private readonly limitBytes?: number) {
    this.total = memory.totalBytes();
    this.lastFree = memory.freeBytes();
  }

  get free(): number {
    return this.memory.freeBytes();
  }

  /** Charges what was allocated since the last mark to `part`. */
  mark(part: 'weights' | 'activations' | 'graphs' | 'kv'): void {
    const free = this.free;
    this.parts.set(part, (this.parts.get(part) ?? 0) + Math.max(0, this.lastFree - free));
    this.lastFree = free;
  }

  /** The memory everything must fit in. */
  get limit(): number {
    return this.limitBytes === undefined ? this.total : Math.min(this.limitBytes, this.total);
  }

  /**
   * Bytes the KV cache may take: `utilization` of the limit, less what is in use now. In use counts everything
   * on the card (another process's memory too), which errs on the side of starting.
   */
  kvBudget(utilization: number): number {
    const inUse = this.total - this.free;
    return utilization * this.limit - inUse;
  }

  report(): DeviceMemoryReport {
    return {
      totalBytes: this.total,
      limitBytes: this.limit,
      weightsBytes: this.parts.get('weights') ?? 0,
      activationsBytes: this.parts.get('activations') ?? 0,
      graphsBytes: this.parts.get('graphs') ?? 0,
      kvBytes: this.parts.get('kv') ?? 0,
      freeBytes: this.free,
    };
  }
}

/** "weights 4.6 GiB, activations 1.2 GiB, graphs 0.3 GiB, KV 62.1 GiB; 7.9 GiB free of 79.2 GiB". */
export function describeDeviceMemory(r: DeviceMemoryReport): string {
  const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
  const cap = r.limitBytes < r.totalBytes ? ` (capped at ${gib(r.limitBytes)})` : '';
  return `weights ${gib(r.weightsBytes)}, activations ${gib(r.activationsBytes)}, graphs ${gib(r.graphsBytes)}, ` +
    `KV ${gib(r.kvBytes)}; ${gib(r.freeBytes)} free of ${gib(r.totalBytes)}${cap}`;
}

// Loads a model's weights onto its backend by canonical name, counting bytes for the progress line
// and recording which module path each weight belongs to (placement rules and the start-up line
// read that record).
import type { Backend, Tensor } from '../../backend/backend.js';
import { readWeightF32 } from '../../backend/host-weights.js';
import type { WeightSource } from '../weights.js';

export interface LoadProgress {
  (loadedBytes: number, totalBytes: number): void;
}

/** One loaded weight: the HF module path it belongs to, its canonical name, bytes and device. */
export interface PlacedWeight {
  module: string;
  name: string;
  bytes: number;
  device: string;
}

export class WeightLoader {
  private readonly total: number;
  private loaded = 0;
  readonly placed: PlacedWeight[] = [];

  constructor(
    readonly backend: Backend,
    readonly source: WeightSource,
    private readonly onProgress?: LoadProgress,
  ) {
    this.total = source.names().reduce((n, name) => n + source.get(name).byteLength, 0);
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  /** A matmul (or embedding, or expert) weight, kept in its file type on the backend. */
  weight(module: string, name: string): Tensor {
    const loc = this.source.get(name);
    this.count(module, name, loc.byteLength);
    this.onProgress?.(this.loaded, this.total);
    return this.backend.loadWeight(loc);
  }

  /** A small weight (norm, bias) as an F32 vector. */
  vector(module: string, name: string): Tensor {
    const loc = this.source.get(name);
    this.count(module, name, loc.byteLength);
    return this.backend.constantF32(readWeightF32(loc), [loc.shape.reduce((a, b) => a * b, 1)]);
  }

  private count(module: string, name: string, bytes: number): void {
    this.loaded += bytes;
    this.placed.push({ module, name, bytes, device: this.backend.device });
  }
}

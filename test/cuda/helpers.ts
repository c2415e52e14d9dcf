// Shared by the CUDA tests: the skip option where no GPU build/device is present, fresh
// random inputs, weights written to a temporary file (so both backends load them the same
// way), and the error metrics.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, Tensor, WeightLocation } from '../../src/backend/backend.js';
import { cudaUnavailableReason, type CudaNative } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { loadNative } from '../../src/backend/native.js';
import { normalSampler } from '../../src/make-model/random-model.js';

const why = cudaUnavailableReason();
/** Pass as a node:test option: skips, saying why, where CUDA cannot run. */
export const needCuda = why ? { skip: `no CUDA device: ${why}` } : {};

/** A fresh seed per run (printed in failure messages), so every run checks new inputs. */
export function freshSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/** Normal samples · scale from a seeded generator. */
export function randn(count: number, seed: number, scale = 1): Float32Array {
  const next = normalSampler(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = scale * next();
  return out;
}

/** Normalised mean squared error of got against want; NaN anywhere gives Infinity. */
export function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    if (Number.isNaN(g)) return Infinity;
    const d = g - want[i]!;
    num += d * d;
    den += want[i]! * want[i]!;
  }
  return den === 0 ? num : num / den;
}

export { maxAbsDiff } from '../helpers/model-harness.js';

/** Weight files in a temporary folder, loaded by each backend through loadWeight. */
export class WeightFiles {
  private readonly dir = mkdtempSync(join(tmpdir(), 'kt-cuda-test-'));
  private count = 0;

  /** Quantizes values [rows, cols] to GGML type `dtype` and writes them to a new file. */
  write(dtype: number, values: Float32Array, rows: number, cols: number): WeightLocation {
    const bytes = loadNative().quantize(dtype, values);
    const file = join(this.dir, `w${this.count++}.bin`);
    writeFileSync(file, bytes);
    return { file, offset: 0, byteLength: bytes.length, dtype, shape: [rows, cols] };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the same construction on two backends. */
export function onBoth<T>(a: Backend, b: Backend, fn: (be: Backend) => T): [T, T] {
  return [fn(a), fn(b)];
}

export function readBoth(a: Backend, b: Backend, ta: Tensor, tb: Tensor): [Float32Array, Float32Array] {
  return [a.read(ta), b.read(tb)];
}

/** Device tensors by raw handle, for the tests of single kernels; whatever is still live goes at releaseAll. */
export class DeviceHandles {
  private readonly live: number[] = [];

  constructor(private readonly n: CudaNative) {}

  upload(dtype: number, shape: number[], data: Float32Array | Int32Array): number {
    const h = this.n.cudaAlloc(dtype, shape, false);
    this.n.cudaUpload(h, data);
    this.live.push(h);
    return h;
  }

  /** B rows of the same F32 row, uploaded once and repeated on the device. */
  repeatedRow(row: Float32Array, B: number): number {
    const h = this.n.cudaAlloc(DType.F32, [B, row.length], false);
    this.n.cudaUploadRepeat(h, new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    this.live.push(h);
    return h;
  }

  release(...hs: number[]): void {
    for (const h of hs) {
      const i = this.live.indexOf(h);
      if (i >= 0) this.live.splice(i, 1);
      this.n.cudaRelease(h);
    }
  }

  releaseAll(): void {
    for (const h of this.live.splice(0)) this.n.cudaRelease(h);
  }
}

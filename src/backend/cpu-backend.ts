// The CPU backend: tensors live in native memory (or mapped weight files) and every op
// is one call into the C++ kernels of native/cpu.
import type { AttentionInputs, Backend, Tensor, WeightLocation } from './backend.js';
import { DType, type DTypeId } from './dtype.js';
import { loadNative } from './native.js';

/** Native functions of native/napi/tensor_napi.cpp and ops_napi.cpp. */
interface CpuOps {
  tAlloc(dtype: number, shape: number[], scratch: boolean): number;
  mapFile(path: string): number;
  tFromMapping(mapping: number, offset: number, dtype: number, shape: number[]): number;
  tUpload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  tDownload(h: number): Float32Array | Int32Array;
  tRelease(h: number): void;
  tReleaseScratch(): void;
  tStats(): { liveTensors: number; liveBytes: number; mappings: number };
  opEmbedding(table: number, ids: number): number;
  opRmsNorm(x: number, w: number, eps: number): number;
  opMatmul(x: number, w: number): number;
  opRope(x: number, pos: number, invFreq: number, headDim: number, rotDim: number, interleaved: boolean): void;
  opStoreKv(kc: number, vc: number, k: number, v: number, slots: number): void;
  opPagedAttention(q: number, kc: number, vc: number, cuQ: number, kvLens: number, tables: number, nkv: number, scale: number): number;
  opSiluMul(g: number, u: number): number;
  opAddInPlace(a: number, b: number): void;
  opGatherRows(x: number, idx: number): number;
}

class CpuTensor implements Tensor {
  released = false;
  constructor(
    readonly handle: number,
    readonly dtype: DTypeId,
    readonly shape: readonly number[],
    readonly perStep: boolean,
  ) {}
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  private readonly n = loadNative() as unknown as CpuOps;
  private readonly mappings = new Map<string, number>();
  private perStep: CpuTensor[] = [];

  private h(t: Tensor): number {
    const c = t as CpuTensor;
    if (c.released) throw new Error('cpu backend: tensor used after it was freed');
    return c.handle;
  }

  private wrap(handle: number, dtype: DTypeId, shape: readonly number[], perStep = true): CpuTensor {
    const t = new CpuTensor(handle, dtype, shape, perStep);
    if (perStep) this.perStep.push(t);
    return t;
  }

  loadWeight(loc: WeightLocation): Tensor {
    let m = this.mappings.get(loc.file);
    if (m === undefined) {
      m = this.n.mapFile(loc.file);
      this.mappings.set(loc.file, m);
    }
    return this.wrap(this.n.tFromMapping(m, loc.offset, loc.dtype, loc.shape), loc.dtype, loc.shape, false);
  }

  constantF32(data: Float32Array, shape: number[]): Tensor {
    const h = this.n.tAlloc(DType.F32, shape, false);
    this.n.tUpload(h, data);
    return this.wrap(h, DType.F32, shape, false);
  }

  inputI32(data: Int32Array, shape: number[]): Tensor {
    const h = this.n.tAlloc(DType.I32, shape, true);
    this.n.tUpload(h, data);
    return this.wrap(h, DType.I32, shape);
  }

  zeros(dtype: DTypeId, shape: number[]): Tensor {
    return this.wrap(this.n.tAlloc(dtype, shape, false), dtype, shape, false);
  }

  read(t: Tensor): Float32Array {
    const out = this.n.tDownload(this.h(t));
    if (!(out instanceof Float32Array)) throw new Error('cpu backend: read() takes F32 tensors');
    return out;
  }

  free(...ts: Tensor[]): void {
    for (const t of ts) {
      const c = t as CpuTensor;
      if (c.released) continue;
      this.n.tRelease(c.handle);
      c.released = true;
    }
  }

  endStep(): void {
    for (const t of this.perStep) if (!t.released) this.free(t);
    this.perStep = [];
  }

  info(): { threads: number; simd: string } {
    return loadNative().info();
  }

  /** Live native tensors and bytes, for leak checks in tests. */
  stats(): { liveTensors: number; liveBytes: number; mappings: number } {
    return this.n.tStats();
  }

  embedding(table: Tensor, ids: Tensor): Tensor {
    return this.wrap(this.n.opEmbedding(this.h(table), this.h(ids)), DType.F32, [ids.shape[0] ?? 0, table.shape[1] ?? 0]);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    return this.wrap(this.n.opRmsNorm(this.h(x), this.h(weight), eps), DType.F32, x.shape);
  }

  matmul(x: Tensor, w: Tensor): Tensor {
    const k = w.shape[1] ?? 1;
    const m = x.shape.reduce((a, b) => a * b, 1) / k;
    return this.wrap(this.n.opMatmul(this.h(x), this.h(w)), DType.F32, [m, w.shape[0] ?? 0]);
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void {
    this.n.opRope(this.h(x), this.h(positions), this.h(invFreq), headDim, rotDim, interleaved);
  }

  storeKv(kCache: Tensor, vCache: Tensor, k: Tensor, v: Tensor, slots: Tensor): void {
    this.n.opStoreKv(this.h(kCache), this.h(vCache), this.h(k), this.h(v), this.h(slots));
  }

  pagedAttention(q: Tensor, kCache: Tensor, vCache: Tensor, inp: AttentionInputs, numKvHeads: number, scale: number): Tensor {
    const h = this.n.opPagedAttention(this.h(q), this.h(kCache), this.h(vCache), this.h(inp.cuQ), this.h(inp.kvLens), this.h(inp.blockTables), numKvHeads, scale);
    return this.wrap(h, DType.F32, q.shape);
  }

  siluMul(gate: Tensor, up: Tensor): Tensor {
    return this.wrap(this.n.opSiluMul(this.h(gate), this.h(up)), DType.F32, gate.shape);
  }

  addInPlace(a: Tensor, b: Tensor): void {
    this.n.opAddInPlace(this.h(a), this.h(b));
  }

  gatherRows(x: Tensor, rows: Tensor): Tensor {
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    return this.wrap(this.n.opGatherRows(this.h(x), this.h(rows)), DType.F32, [rows.shape[0] ?? 0, width]);
  }
}

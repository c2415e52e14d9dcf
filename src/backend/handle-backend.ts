// The Backend both native implementations share: tensors are integer handles into the
// addon's tensor table, ops are one native call each, and per-step tensors die together
// at endStep. CPU and CUDA differ only in which native functions they call.
import type { AttentionInputs, Backend, BackendCapabilities, ExpertWeights, RouterSpec, Tensor, WeightLocation } from './backend.js';
import { DType, type DTypeId } from './dtype.js';

/** The native functions a handle backend calls (CPU: native/napi, CUDA: native/cuda). */
export interface NativeTensorOps {
  alloc(dtype: number, shape: number[], scratch: boolean): number;
  mapFile(path: string): number;
  unmapFile(mapping: number): void;
  fromMapping(mapping: number, offset: number, dtype: number, shape: number[]): number;
  upload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  download(h: number): Float32Array | Int32Array;
  release(h: number): void;
  releaseScratch(): void;
  opEmbedding(table: number, ids: number): number;
  opRmsNorm(x: number, w: number, eps: number): number;
  opMatmul(x: number, w: number): number;
  opRope(x: number, pos: number, invFreq: number, headDim: number, rotDim: number, interleaved: boolean): void;
  opStoreKv(kc: number, vc: number, k: number, v: number, slots: number): void;
  opPagedAttention(q: number, kc: number, vc: number, cuQ: number, kvLens: number, tables: number, nkv: number, scale: number, stride?: number): number;
  opSiluMul(g: number, u: number): number;
  opAddInPlace(a: number, b: number): void;
  opGatherRows(x: number, idx: number): number;
  /** Copies E pieces (mapping i at offset i, nbytes/E each) into one persistent tensor [E, ...] (notes/moe-contract.md). */
  stackMappings(mappings: number[], offsets: number[], dtype: number, shape: number[]): number;
  /** Returns [ids, weights] handles; bias -1: none; scoring 0 softmax / 1 sigmoid; groupScore 0 max / 1 top2sum. */
  opMoeRoute(logits: number, bias: number, scoring: number, topK: number, numGroups: number, topKGroups: number, groupScore: number, normalize: boolean, scale: number): number[];
  opMoeExperts(x: number, ids: number, weights: number, gate: number, up: number, down: number): number;
}

class HandleTensor implements Tensor {
  released = false;
  constructor(
    readonly handle: number,
    readonly dtype: DTypeId,
    readonly shape: readonly number[],
    readonly device: string,
  ) {}
}

export abstract class HandleBackend implements Backend {
  abstract readonly name: string;
  abstract readonly device: string;
  abstract readonly capabilities: BackendCapabilities;
  /** The compute device in words, for start-up lines and benchmark reports. */
  abstract describeDevice(): string;
  private readonly mappings = new Map<string, number>();
  private perStep: HandleTensor[] = [];

  protected constructor(protected readonly ops: NativeTensorOps) {}

  protected h(t: Tensor): number {
    if (!(t instanceof HandleTensor) || t.device !== this.device) {
      throw new Error(`${this.name} backend (${this.device}): given a tensor of ${t.device}; move it first`);
    }
    if (t.released) throw new Error(`${this.name} backend: tensor used after it was freed`);
    return t.handle;
  }

  private wrap(handle: number, dtype: DTypeId, shape: readonly number[], perStep = true): HandleTensor {
    const t = new HandleTensor(handle, dtype, shape, this.device);
    if (perStep) this.perStep.push(t);
    return t;
  }

  /** A per-step tensor around a handle a subclass's own native op returned. */
  protected wrapStep(handle: number, dtype: DTypeId, shape: readonly number[]): Tensor {
    return this.wrap(handle, dtype, shape);
  }

  private mapping(file: string): number {
    let m = this.mappings.get(file);
    if (m === undefined) {
      m = this.ops.mapFile(file);
      this.mappings.set(file, m);
    }
    return m;
  }

  loadWeight(loc: WeightLocation): Tensor {
    if (loc.parts) {
      const parts = loc.parts;
      const h = this.ops.stackMappings(parts.map((p) => this.mapping(p.file)), parts.map((p) => p.offset), loc.dtype, loc.shape);
      return this.wrap(h, loc.dtype, loc.shape, false);
    }
    return this.wrap(this.ops.fromMapping(this.mapping(loc.file), loc.offset, loc.dtype, loc.shape), loc.dtype, loc.shape, false);
  }

  /** Drops this backend's own references to the mapped model files (tensors keep theirs). */
  releaseMappings(): void {
    for (const m of this.mappings.values()) this.ops.unmapFile(m);
    this.mappings.clear();
  }

  constantF32(data: Float32Array, shape: number[]): Tensor {
    const h = this.ops.alloc(DType.F32, shape, false);
    this.ops.upload(h, data);
    return this.wrap(h, DType.F32, shape, false);
  }

  inputI32(data: Int32Array, shape: number[]): Tensor {
    const h = this.ops.alloc(DType.I32, shape, true);
    this.ops.upload(h, data);
    return this.wrap(h, DType.I32, shape);
  }

  /** A per-step F32 input (sampling parameters); freed at endStep. */
  inputF32(data: Float32Array, shape: number[]): Tensor {
    const h = this.ops.alloc(DType.F32, shape, true);
    this.ops.upload(h, data);
    return this.wrap(h, DType.F32, shape);
  }

  /** Makes a per-step tensor persistent (a graph's output): endStep no longer frees it. */
  protected keep(t: Tensor): number {
    this.perStep = this.perStep.filter((p) => p !== t);
    return this.h(t);
  }

  zeros(dtype: DTypeId, shape: number[]): Tensor {
    return this.wrap(this.ops.alloc(dtype, shape, false), dtype, shape, false);
  }

  /**
   * Overwrites an existing tensor's contents (the whole tensor, or its start when `data` is
   * shorter), in stream order: how persistent step buffers get new values before a graph replays.
   */
  write(t: Tensor, data: Float32Array | Int32Array): void {
    this.ops.upload(this.h(t), data);
  }

  /** Copies an I32 tensor back to the host (sampled token ids). */
  readI32(t: Tensor): Int32Array {
    const out = this.ops.download(this.h(t));
    if (!(out instanceof Int32Array)) throw new Error(`${this.name} backend: readI32() takes I32 tensors`);
    return out;
  }

  read(t: Tensor): Float32Array {
    const out = this.ops.download(this.h(t));
    if (!(out instanceof Float32Array)) throw new Error(`${this.name} backend: read() takes F32 tensors`);
    return out;
  }

  free(...ts: Tensor[]): void {
    for (const t of ts) {
      const c = t as HandleTensor;
      if (c.released) continue;
      this.ops.release(c.handle);
      c.released = true;
    }
  }

  endStep(): void {
    // One native call frees every per-step tensor; the wrappers only learn they are gone.
    for (const t of this.perStep) t.released = true;
    this.perStep = [];
    this.ops.releaseScratch();
  }

  embedding(table: Tensor, ids: Tensor): Tensor {
    return this.wrap(this.ops.opEmbedding(this.h(table), this.h(ids)), DType.F32, [ids.shape[0] ?? 0, table.shape[1] ?? 0]);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    return this.wrap(this.ops.opRmsNorm(this.h(x), this.h(weight), eps), DType.F32, x.shape);
  }

  /** Two native ops here; the CUDA backend can fuse them into one launch. */
  addRmsNorm(x: Tensor, delta: Tensor, weight: Tensor, eps: number): Tensor {
    this.addInPlace(x, delta);
    return this.rmsNorm(x, weight, eps);
  }

  matmul(x: Tensor, w: Tensor): Tensor {
    const k = w.shape[1] ?? 1;
    const m = x.shape.reduce((a, b) => a * b, 1) / k;
    return this.wrap(this.ops.opMatmul(this.h(x), this.h(w)), DType.F32, [m, w.shape[0] ?? 0]);
  }

  /** One native op per weight here; the CUDA backend runs them as one launch at decode. */
  matmulGroup(x: Tensor, ws: readonly Tensor[]): Tensor[] {
    return ws.map((w) => this.matmul(x, w));
  }

  /** Three native ops here; the CUDA backend can fuse them into one launch. */
  matmulSiluMul(x: Tensor, gate: Tensor, up: Tensor): Tensor {
    const g = this.matmul(x, gate);
    const u = this.matmul(x, up);
    const m = this.siluMul(g, u);
    this.free(g, u);
    return m;
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void {
    this.ops.opRope(this.h(x), this.h(positions), this.h(invFreq), headDim, rotDim, interleaved);
  }

  storeKv(kCache: Tensor, vCache: Tensor, k: Tensor, v: Tensor, slots: Tensor): void {
    this.ops.opStoreKv(this.h(kCache), this.h(vCache), this.h(k), this.h(v), this.h(slots));
  }

  /** Three native ops here; the CUDA backend can fuse them into one launch. */
  ropeStoreKv(q: Tensor, k: Tensor, v: Tensor, kCache: Tensor, vCache: Tensor, positions: Tensor, slots: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void {
    this.rope(q, positions, invFreq, headDim, rotDim, interleaved);
    this.rope(k, positions, invFreq, headDim, rotDim, interleaved);
    this.storeKv(kCache, vCache, k, v, slots);
  }

  pagedAttention(q: Tensor, kCache: Tensor, vCache: Tensor, inp: AttentionInputs, numKvHeads: number, scale: number): Tensor {
    const stride = inp.tableStride ? [this.h(inp.tableStride)] : [];
    const h = this.ops.opPagedAttention(this.h(q), this.h(kCache), this.h(vCache), this.h(inp.cuQ), this.h(inp.kvLens), this.h(inp.blockTables), numKvHeads, scale, ...stride);
    return this.wrap(h, DType.F32, q.shape);
  }

  siluMul(gate: Tensor, up: Tensor): Tensor {
    return this.wrap(this.ops.opSiluMul(this.h(gate), this.h(up)), DType.F32, gate.shape);
  }

  addInPlace(a: Tensor, b: Tensor): void {
    this.ops.opAddInPlace(this.h(a), this.h(b));
  }

  gatherRows(x: Tensor, rows: Tensor): Tensor {
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    return this.wrap(this.ops.opGatherRows(this.h(x), this.h(rows)), DType.F32, [rows.shape[0] ?? 0, width]);
  }

  moeRoute(logits: Tensor, spec: RouterSpec, selectionBias?: Tensor): { ids: Tensor; weights: Tensor } {
    const bias = selectionBias ? this.h(selectionBias) : -1;
    const [ids, weights] = this.ops.opMoeRoute(
      this.h(logits), bias, spec.scoring === 'sigmoid' ? 1 : 0, spec.topK, spec.numGroups, spec.topKGroups,
      spec.groupScore === 'top2sum' ? 1 : 0, spec.normalize, spec.scale,
    );
    const shape = [logits.shape[0] ?? 0, spec.topK];
    return { ids: this.wrap(ids!, DType.I32, shape), weights: this.wrap(weights!, DType.F32, shape) };
  }

  moeExperts(x: Tensor, ids: Tensor, weights: Tensor, e: ExpertWeights): Tensor {
    const out = this.ops.opMoeExperts(this.h(x), this.h(ids), this.h(weights), this.h(e.gate), this.h(e.up), this.h(e.down));
    return this.wrap(out, DType.F32, [x.shape[0] ?? 0, e.down.shape[1] ?? 0]);
  }
}

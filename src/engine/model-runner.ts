// Runs the model for the engine, one step at a time. Any batch runs eagerly (ops issued one by
// one); on the CUDA backend, decode steps (every sequence one token, all sampling on the device)
// replay a CUDA graph captured at start-up for the nearest bucket size at or above the batch, over
// persistent step buffers, so a step costs a dozen host calls instead of hundreds of launches.
import type { Backend, Tensor } from '../backend/backend.js';
import { CudaBackend } from '../backend/cuda-backend.js';
import { DType, type DTypeId } from '../backend/dtype.js';
import { flattenBatch, padDecodeBatch, uploadStepInputs, type ForwardBatch, type StepTensors } from '../models/forward-batch.js';
import type { PagedKvCache } from '../models/kv-cache.js';
import type { CausalLM } from '../models/registry.js';
import { packSamplingRows, type GpuSamplingRow } from './gpu-sampling.js';

/** One sampling row for the device sampler. */
export type DeviceSampleRow = GpuSamplingRow;

export interface StepOutput {
  /** Sampled token per sampling row (when the step was given device sampling rows). */
  tokens?: Int32Array;
  /** Logits [sampling rows, vocab] (otherwise). */
  logits?: Float32Array;
}

export interface ModelRunnerOptions {
  /** Capture CUDA graphs for decode steps (CUDA backend only). */
  cudaGraphs: boolean;
  /** Largest number of sequences in a step. */
  maxBatchSize: number;
}

/** Batch sizes graphs are captured for: fine steps where padding would cost most, coarser above. */
export function graphBuckets(maxBatch: number): number[] {
  const out: number[] = [];
  for (let b = 1; b <= Math.max(1, maxBatch); ) {
    out.push(b);
    b = b < 4 ? b + 1 : b < 8 ? 8 : b < 64 ? b + 8 : b < 128 ? b + 16 : b + 32;
  }
  if (out[out.length - 1]! < maxBatch) out.push(maxBatch);
  return out;
}

/** Capturing the decode graphs failed; the runner was left without graphs (eager steps work). */
export class GraphCaptureError extends Error {
  override readonly name = 'GraphCaptureError';
}

interface DecodeGraph {
  size: number;
  graph: number;
  inputs: StepTensors & { logitRows: undefined };
  stride: Tensor;
  params: Tensor;
  seeds: Tensor;
  tokens: Tensor;
}

export class ModelRunner {
  private readonly graphs: DecodeGraph[] = [];
  private readonly cuda: CudaBackend | undefined;
  /** Block-table entries per sequence the graphs' table buffers hold. */
  private readonly tableCapacity: number;

  constructor(
    private readonly model: CausalLM,
    private readonly cache: PagedKvCache,
    private readonly opts: ModelRunnerOptions,
  ) {
    this.cuda = model.backend instanceof CudaBackend ? model.backend : undefined;
    const bs = cache.shape.blockSize;
    this.tableCapacity = Math.ceil(Math.min(model.config.maxPositions, cache.tokens) / bs);
  }

  private get backend(): Backend {
    return this.model.backend;
  }

  /** True where sampled ids can come from the device (only they are read back). */
  get samplesOnDevice(): boolean {
    return this.cuda !== undefined;
  }

  get graphSizes(): number[] {
    return this.graphs.map((g) => g.size);
  }

  /**
   * Captures one decode graph per bucket size (CUDA with cudaGraphs only). The KV cache's spare
   * block absorbs the padding rows' K/V writes.
   */
  captureGraphs(): void {
    const b = this.cuda;
    if (!b || !this.opts.cudaGraphs) return;
    if (this.cache.spareBlock === undefined) throw new Error('model runner: CUDA graphs need a KV cache with a spare block');
    try {
      for (const size of graphBuckets(this.opts.maxBatchSize)) this.graphs.push(this.capture(b, size));
    } catch (err) {
      // Steps still run, eagerly: a server without graphs beats no server.
      this.dispose();
      throw new GraphCaptureError((err as Error).message);
    }
  }

  private capture(b: CudaBackend, size: number): DecodeGraph {
    const persistent = (dtype: DTypeId, shape: number[]) => b.zeros(dtype, shape);
    const inputs: DecodeGraph['inputs'] = {
      ids: persistent(DType.I32, [size]),
      attention: {
        cuQ: persistent(DType.I32, [size + 1]),
        kvLens: persistent(DType.I32, [size]),
        blockTables: persistent(DType.I32, [size, this.tableCapacity]),
        slots: persistent(DType.I32, [size]),
        positions: persistent(DType.I32, [size]),
      },
      logitRows: undefined,
    };
    const stride = persistent(DType.I32, [1]);
    inputs.attention.tableStride = stride;
    const params = persistent(DType.F32, [size, 4]);
    const seeds = persistent(DType.I32, [size, 2]);
    const g: Omit<DecodeGraph, 'graph' | 'tokens'> = { size, inputs, stride, params, seeds };
    // Every row padding: valid indices for the ops' host-side checks while capturing.
    this.writeInputs(g, { sequences: [] }, []);
    b.captureBegin();
    let tokens: Tensor;
    try {
      const logits = this.model.forwardTensors(inputs, this.cache)!;
      tokens = b.sample(logits, params, seeds);
    } catch (err) {
      try {
        b.releaseGraph(b.captureEnd());
      } catch {
        // The capture was already invalidated; the original error says why.
      }
      b.endStep();
      const a = inputs.attention;
      b.free(inputs.ids, a.cuQ, a.kvLens, a.blockTables, a.slots, a.positions, stride, params, seeds);
      throw err;
    }
    const graph = b.captureEnd();
    b.persist(tokens);
    b.endStep();
    return { ...g, graph, tokens };
  }

  /** Fills a graph's step buffers: the batch's rows, then padding rows on the spare block. */
  private writeInputs(g: Omit<DecodeGraph, 'graph' | 'tokens'>, batch: ForwardBatch, rows: readonly DeviceSampleRow[]): void {
    const b = this.backend as CudaBackend;
    const p = padDecodeBatch(batch, g.size, this.cache.shape.blockSize, this.cache.spareBlock!);
    if (p.width > this.tableCapacity) throw new Error(`model runner: a sequence needs ${p.width} KV blocks, the graph tables hold ${this.tableCapacity}`);
    const a = g.inputs.attention;
    b.write(g.inputs.ids, p.tokenIds);
    b.write(a.positions, p.positions);
    b.write(a.slots, p.slots);
    b.write(a.cuQ, p.cuQ);
    b.write(a.kvLens, p.kvLens);
    b.write(a.blockTables, p.blockTables);
    b.write(g.stride, Int32Array.of(p.width));
    const packed = packSamplingRows(rows, g.size);
    b.write(g.params, packed.params);
    b.write(g.seeds, packed.seeds);
  }

  private graphFor(batch: ForwardBatch, rows: readonly DeviceSampleRow[] | undefined): DecodeGraph | undefined {
    const seqs = batch.sequences;
    if (!rows || this.graphs.length === 0 || rows.length !== seqs.length) return undefined;
    if (!seqs.every((s) => s.tokens.length === 1 && s.wantLogits)) return undefined;
    return this.graphs.find((g) => g.size >= seqs.length);
  }

  /**
   * Runs one step. With `deviceRows` (one per sequence that samples, in order; only where
   * samplesOnDevice) the step returns sampled tokens, else the logits of the sampling rows.
   */
  run(batch: ForwardBatch, deviceRows?: readonly DeviceSampleRow[]): StepOutput {
    const g = this.graphFor(batch, deviceRows);
    if (g) {
      const b = this.cuda!;
      this.writeInputs(g, batch, deviceRows!);
      b.replay(g.graph);
      return { tokens: b.readI32(g.tokens).subarray(0, batch.sequences.length) };
    }
    return this.runEager(batch, deviceRows);
  }

  private runEager(batch: ForwardBatch, deviceRows?: readonly DeviceSampleRow[]): StepOutput {
    const b = this.backend;
    try {
      const flat = flattenBatch(batch, this.cache.shape.blockSize);
      const want = flat.logitRows.length > 0;
      const logits = this.model.forwardTensors(uploadStepInputs(b, flat, want), this.cache);
      if (!logits) return {};
      if (deviceRows && this.cuda) {
        const n = flat.logitRows.length;
        if (deviceRows.length !== n) throw new Error(`model runner: ${deviceRows.length} sampling rows for ${n} logit rows`);
        const packed = packSamplingRows(deviceRows, n);
        const tokens = this.cuda.sample(logits, this.cuda.inputF32(packed.params, [n, 4]), b.inputI32(packed.seeds, [n, 2]));
        return { tokens: this.cuda.readI32(tokens) };
      }
      return { logits: b.read(logits) };
    } finally {
      b.endStep();
    }
  }

  dispose(): void {
    for (const g of this.graphs) {
      this.cuda?.releaseGraph(g.graph);
      const a = g.inputs.attention;
      this.backend.free(g.inputs.ids, a.cuQ, a.kvLens, a.blockTables, a.slots, a.positions, g.stride, g.params, g.seeds, g.tokens);
    }
    this.graphs.length = 0;
  }
}

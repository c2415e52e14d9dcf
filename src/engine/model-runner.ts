// Runs the model for the engine, one step at a time. Any batch runs eagerly (ops issued one by
// one); on the CUDA backend, decode steps (every sequence one token, all sampling on the device)
// replay a CUDA graph captured at start-up for the nearest bucket size at or above the batch, over
// persistent step buffers, so a step costs a dozen host calls instead of hundreds of launches.
// Sampling on the device includes logit_bias and the penalties (gpu-sampling.ts, packPenalties).
import type { Backend, DeviceSampler, GraphCapture, Tensor } from '../backend/backend.js';
import { DType, type DTypeId } from '../backend/dtype.js';
import { flattenBatch, padDecodeBatch, padMixedBatch, uploadStepInputs, type ForwardBatch, type StepTensors } from '../models/forward-batch.js';
import type { PagedKvCache } from '../models/kv-cache.js';
import type { CausalLM } from '../models/registry.js';
import { GPU_PENALTY_INDEX, GPU_PENALTY_VALUES, packPenalties, packSamplingRows, type GpuSamplingRow, type PackedPenalties } from './gpu-sampling.js';

/** A step whose work is issued; wait() returns its output (sync with the device where needed). */
export interface PendingStep {
  wait(): StepOutput;
}

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
  /** Token counts mixed prefill+decode graphs are captured for (absent or empty: mixed steps run eagerly). */
  mixedTokenBuckets?: number[];
  /** Penalty entries a graph step takes (default GRAPH_PENALTY_ENTRIES); a step with more runs eagerly. */
  penaltyCapacity?: number;
}

/**
 * Penalty entries (one per penalised token per row) the graphs' buffers hold: 64 rows with 1k distinct
 * tokens each, for 1.25 MiB of device memory.
 */
export const GRAPH_PENALTY_ENTRIES = 65536;

/** What the engine needs of a runner (tests give it fakes). */
export type StepRunner = Pick<ModelRunner, 'samplesOnDevice' | 'start'>;

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

/** A captured step: `tokens` rows in `seqs` sequences (a decode graph: one row per sequence). */
interface StepGraph {
  kind: 'decode' | 'mixed';
  tokens: number;
  seqs: number;
  graph: number;
  /** logitRows: undefined for decode graphs (every row samples), [seqs] for mixed ones. */
  inputs: StepTensors;
  stride: Tensor;
  params: Tensor;
  seeds: Tensor;
  sampled: Tensor;
}

type GraphBuffers = Omit<StepGraph, 'graph' | 'sampled'>;

/**
 * The penalty kernel's inputs, one set for every graph: steps run one after another on one stream, so
 * no two replays read them at once, and sharing lets each graph take the whole capacity.
 */
interface PenaltyBuffers {
  index: Tensor;
  values: Tensor;
  count: Tensor;
}

/** Token counts for mixed graphs: powers of two from 32, then chunkSize. */
export function mixedTokenBuckets(chunkSize: number): number[] {
  const out: number[] = [];
  for (let t = 32; t < chunkSize; t *= 2) out.push(t);
  out.push(chunkSize);
  return out;
}

export class ModelRunner {
  private readonly graphs: StepGraph[] = [];
  private penalties: PenaltyBuffers | undefined;
  /** The backend's graph capture, where it has one (and graphs are wanted). */
  private readonly capture?: GraphCapture | undefined;
  private readonly sampler: DeviceSampler | undefined;
  /** Block-table entries per sequence the graphs' table buffers hold. */
  private readonly tableCapacity: number;
  /** Penalty entries the graphs' penalty buffers hold. */
  private readonly penaltyCapacity: number;

  constructor(
    private readonly model: CausalLM,
    private readonly cache: PagedKvCache,
    private readonly opts: ModelRunnerOptions,
  ) {
    const caps = model.backend.capabilities;
    this.sampler = caps.sampler;
    // Graph steps sample on the device: a backend offers graphs to the runner only with a sampler.
    this.capture = opts.cudaGraphs && caps.sampler ? caps.graphs : undefined;
    const bs = cache.shape.blockSize;
    this.tableCapacity = Math.ceil(Math.min(model.config.maxPositions, cache.tokens) / bs);
    this.penaltyCapacity = opts.penaltyCapacity ?? GRAPH_PENALTY_ENTRIES;
  }

  private get backend(): Backend {
    return this.model.backend;
  }

  /** True where sampled ids can come from the device (only they are read back). */
  get samplesOnDevice(): boolean {
    return this.sampler !== undefined;
  }

  /** Batch sizes with a decode graph. */
  get graphSizes(): number[] {
    return this.graphs.filter((g) => g.kind === 'decode').map((g) => g.seqs);
  }

  /** Token counts with a mixed prefill+decode graph. */
  get mixedGraphTokens(): number[] {
    return this.graphs.filter((g) => g.kind === 'mixed').map((g) => g.tokens);
  }

  /**
   * Captures one decode graph per bucket size, and one mixed graph per token bucket (CUDA with
   * cudaGraphs only). The KV cache's spare block absorbs the padding rows' K/V writes.
   */
  captureGraphs(): void {
    const g = this.capture;
    if (!g) return;
    if (this.cache.spareBlock === undefined) throw new Error('model runner: CUDA graphs need a KV cache with a spare block');
    try {
      const cap = this.penaltyCapacity;
      const b = this.backend;
      this.penalties = {
        index: b.zeros(DType.I32, [cap, GPU_PENALTY_INDEX]),
        values: b.zeros(DType.F32, [cap, GPU_PENALTY_VALUES]),
        count: b.zeros(DType.I32, [1]),
      };
      for (const size of graphBuckets(this.opts.maxBatchSize)) this.graphs.push(this.captureStep(g, this.sampler!, 'decode', size, size));
      // One sequence more than a step holds: the padding sequence.
      for (const t of this.opts.mixedTokenBuckets ?? []) this.graphs.push(this.captureStep(g, this.sampler!, 'mixed', t, this.opts.maxBatchSize + 1));
    } catch (err) {
      // Steps still run, eagerly: a server without graphs beats no server.
      this.dispose();
      throw new GraphCaptureError((err as Error).message);
    }
  }

  private captureStep(cap: GraphCapture, sampler: DeviceSampler, kind: StepGraph['kind'], tokens: number, seqs: number): StepGraph {
    const b = this.backend;
    const persistent = (dtype: DTypeId, shape: number[]) => b.zeros(dtype, shape);
    const stride = persistent(DType.I32, [1]);
    const inputs: StepTensors = {
      ids: persistent(DType.I32, [tokens]),
      attention: {
        cuQ: persistent(DType.I32, [seqs + 1]),
        kvLens: persistent(DType.I32, [seqs]),
        blockTables: persistent(DType.I32, [seqs, this.tableCapacity]),
        slots: persistent(DType.I32, [tokens]),
        positions: persistent(DType.I32, [tokens]),
        tableStride: stride,
      },
      logitRows: kind === 'mixed' ? persistent(DType.I32, [seqs]) : undefined,
    };
    const params = persistent(DType.F32, [seqs, 4]);
    const seeds = persistent(DType.I32, [seqs, 2]);
    const g: GraphBuffers = { kind, tokens, seqs, inputs, stride, params, seeds };
    const pen = this.penalties!;
    // Every row padding: valid indices for the ops' host-side checks while capturing.
    this.writeInputs(g, { sequences: [] }, [], packPenalties([]));
    cap.captureBegin();
    let sampled: Tensor;
    try {
      const logits = this.model.forwardTensors(inputs, this.cache)!;
      sampler.applyPenalties(logits, pen.index, pen.values, pen.count);
      sampled = sampler.sample(logits, params, seeds);
    } catch (err) {
      try {
        cap.releaseGraph(cap.captureEnd());
      } catch {
        // The capture was already invalidated; the original error says why.
      }
      b.endStep();
      this.freeBuffers(g);
      throw err;
    }
    const graph = cap.captureEnd();
    cap.persist(sampled);
    b.endStep();
    return { ...g, graph, sampled };
  }

  /** Fills a graph's step buffers: the batch's rows, then padding (see padDecodeBatch, padMixedBatch). */
  private writeInputs(g: GraphBuffers, batch: ForwardBatch, rows: readonly GpuSamplingRow[], penalties: PackedPenalties): void {
    const b = this.backend;
    const bs = this.cache.shape.blockSize;
    const spare = this.cache.spareBlock!;
    const mixed = g.kind === 'mixed' ? padMixedBatch(batch, g.tokens, g.seqs, bs, spare) : undefined;
    const p = mixed ?? padDecodeBatch(batch, g.seqs, bs, spare);
    if (p.width > this.tableCapacity) throw new Error(`model runner: a sequence needs ${p.width} KV blocks, the graph tables hold ${this.tableCapacity}`);
    const a = g.inputs.attention;
    b.write(g.inputs.ids, p.tokenIds);
    b.write(a.positions, p.positions);
    b.write(a.slots, p.slots);
    b.write(a.cuQ, p.cuQ);
    b.write(a.kvLens, p.kvLens);
    b.write(a.blockTables, p.blockTables);
    b.write(g.stride, Int32Array.of(p.width));
    if (g.inputs.logitRows && mixed) b.write(g.inputs.logitRows, mixed.logitRows);
    const packed = packSamplingRows(rows, g.seqs);
    b.write(g.params, packed.params);
    b.write(g.seeds, packed.seeds);
    const pen = this.penalties!;
    b.write(pen.count, Int32Array.of(penalties.count));
    if (penalties.count > 0) {
      b.write(pen.index, penalties.index);
      b.write(pen.values, penalties.values);
    }
  }

  private graphFor(batch: ForwardBatch, rows: readonly GpuSamplingRow[] | undefined, penalties: PackedPenalties | undefined): StepGraph | undefined {
    const seqs = batch.sequences;
    if (!rows || !penalties || this.graphs.length === 0) return undefined;
    if (penalties.count > this.penaltyCapacity) return undefined;
    if (rows.length !== seqs.filter((s) => s.wantLogits).length) return undefined;
    if (seqs.every((s) => s.tokens.length === 1 && s.wantLogits)) {
      const g = this.graphs.find((x) => x.kind === 'decode' && x.seqs >= seqs.length);
      if (g) return g;
    }
    const tokens = seqs.reduce((n, s) => n + s.tokens.length, 0);
    return this.graphs.find((x) => x.kind === 'mixed' && x.tokens >= tokens && x.seqs > seqs.length);
  }

  /**
   * Runs one step. With `deviceRows` (one per sequence that samples, in order; only where
   * samplesOnDevice) the step returns sampled tokens, each row's logit_bias and penalties applied
   * first (from its `penalties` as they stand when the step starts); else the logits of the
   * sampling rows, as the model gave them.
   */
  run(batch: ForwardBatch, deviceRows?: readonly GpuSamplingRow[]): StepOutput {
    return this.start(batch, deviceRows).wait();
  }

  /**
   * Issues one step as run() does and returns before it is done where the step replays a graph
   * (the host may plan the next step meanwhile). Wait for it before starting another step: a
   * later replay of the same graph would overwrite its output.
   */
  start(batch: ForwardBatch, deviceRows?: readonly GpuSamplingRow[]): PendingStep {
    const penalties = deviceRows && this.sampler ? packPenalties(deviceRows) : undefined;
    const g = this.graphFor(batch, deviceRows, penalties);
    if (g) {
      const b = this.backend;
      const rows = deviceRows!.length;
      this.writeInputs(g, batch, deviceRows!, penalties!);
      this.capture!.replay(g.graph);
      return { wait: () => ({ tokens: b.readI32(g.sampled).subarray(0, rows) }) };
    }
    const out = this.runEager(batch, deviceRows, penalties);
    return { wait: () => out };
  }

  private runEager(batch: ForwardBatch, deviceRows?: readonly GpuSamplingRow[], penalties?: PackedPenalties): StepOutput {
    const b = this.backend;
    try {
      const flat = flattenBatch(batch, this.cache.shape.blockSize);
      const want = flat.logitRows.length > 0;
      const logits = this.model.forwardTensors(uploadStepInputs(b, flat, want), this.cache);
      if (!logits) return {};
      const sampler = this.sampler;
      if (deviceRows && sampler) {
        const n = flat.logitRows.length;
        if (deviceRows.length !== n) throw new Error(`model runner: ${deviceRows.length} sampling rows for ${n} logit rows`);
        if (penalties && penalties.count > 0) {
          const k = penalties.count;
          const index = b.inputI32(penalties.index, [k, GPU_PENALTY_INDEX]);
          sampler.applyPenalties(logits, index, b.inputF32(penalties.values, [k, GPU_PENALTY_VALUES]), b.inputI32(Int32Array.of(k), [1]));
        }
        const packed = packSamplingRows(deviceRows, n);
        const tokens = sampler.sample(logits, b.inputF32(packed.params, [n, 4]), b.inputI32(packed.seeds, [n, 2]));
        return { tokens: b.readI32(tokens) };
      }
      return { logits: b.read(logits) };
    } finally {
      b.endStep();
    }
  }

  private freeBuffers(g: GraphBuffers): void {
    const a = g.inputs.attention;
    const rows = g.inputs.logitRows ? [g.inputs.logitRows] : [];
    this.backend.free(g.inputs.ids, a.cuQ, a.kvLens, a.blockTables, a.slots, a.positions, g.stride, g.params, g.seeds, ...rows);
  }

  dispose(): void {
    for (const g of this.graphs) {
      this.capture?.releaseGraph(g.graph);
      this.freeBuffers(g);
      this.backend.free(g.sampled);
    }
    this.graphs.length = 0;
    if (this.penalties) this.backend.free(this.penalties.index, this.penalties.values, this.penalties.count);
    this.penalties = undefined;
  }
}

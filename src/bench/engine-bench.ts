// `ktserve bench engine`: the engine's throughput without HTTP, as llama.cpp's llama-batched-bench measures it:
// for each prompt length (npp) and batch size (npl), npl requests of npp random tokens each generate ntg tokens
// through the same EngineCore that `serve` runs; prefill and decode phases are timed separately.
import { cudaNative } from '../backend/cuda-backend.js';
import { createEngine } from '../engine/engine-factory.js';
import { PagedKvCache } from '../models/kv-cache.js';
import type { CausalLM } from '../models/registry.js';
import type { GenerationRequest } from '../engine/engine-api.js';
import { validateSamplingParams } from '../engine/sampling-params.js';
import type { EngineReadyInfo } from '../engine/worker-protocol.js';
import { openModelFiles, type ModelLocation } from '../models/model-files.js';

export interface EngineBenchOptions {
  model: ModelLocation;
  /** Prompt lengths in tokens. */
  npp: number[];
  /** Tokens generated per request (max_tokens, EOS ignored). */
  ntg: number;
  /** Batch sizes: requests submitted together. */
  npl: number[];
  chunkSize: number;
  blockSize: number;
  seed: number;
  prefixCaching: boolean;
  backend?: 'cpu' | 'cuda';
  /** CUDA graphs for decode steps (default true; CUDA only). */
  cudaGraphs?: boolean;
  kvCacheDtype?: 'f32' | 'bf16';
  cudaFusedOps?: boolean;
  cudaMixedGraphs?: boolean;
  /** false: plan each step only after the previous one is read (undefined: the engine's default). */
  overlap?: boolean | undefined;
  /** Every prompt read before any decode, as llama-batched-bench runs (default: interleaved, as serve). */
  prefillFirst?: boolean;
  /** One small untimed request first, so one-off start-up costs stay out of the first row. */
  warmup: boolean;
  /** Called after each (npp, npl) run, for printing rows as they come. */
  onResult?: (r: EngineBenchResult) => void;
}

export interface PhaseStats {
  time_s: number;
  /** Tokens this phase processed: prompt tokens for prefill, generated tokens for decode. */
  tokens: number;
  tok_per_s: number;
  steps: number;
  mean_step_ms: number;
}

export interface EngineBenchResult {
  npp: number;
  ntg: number;
  npl: number;
  /** Tokens in the KV cache at the end: npl·(npp+ntg), llama-batched-bench's N_KV. */
  n_kv: number;
  /** From the first step until every request has its first token (prompts processed: npl·npp). */
  prefill: PhaseStats;
  /** From then until every request has all ntg tokens. */
  decode: PhaseStats;
  /** Tokens sampled before the prefill phase ended besides each request's first: chunked prefill lets early
   * requests decode while later prompts are still being read. They are not in decode.tokens. */
  decode_tokens_during_prefill: number;
  generated_tokens: number;
  total: { time_s: number; tok_per_s: number };
}

export interface EngineBenchReport {
  model: ModelLocation;
  engine: EngineReadyInfo;
  settings: { npp: number[]; ntg: number; npl: number[]; chunk_size: number; block_size: number; cache_tokens: number; max_batch_size: number; prefix_caching: boolean; prefill_first: boolean; cuda_fused_ops: boolean; seed: number };
  results: EngineBenchResult[];
  skipped: { npp: number; npl: number; reason: string }[];
  /** Bytes of weights one decode step reads (every matrix but the embedding table, unless tied). */
  weight_bytes: number;
  /** CUDA: device-to-device copy bandwidth measured after the runs (bytes read + written per second / 1e9). */
  copy_gb_s?: number;
  /** Mixture-of-experts models: what decode reads of the experts. */
  moe?: MoeReadStats;
}

export interface MoeReadStats {
  experts: number;
  top_k: number;
  /** Bytes of one expert (gate, up and down) summed over the MoE layers. */
  expert_bytes: number;
  /** Every weight but the routed experts (and the embedding table unless tied): read whole by any step. */
  dense_bytes: number;
  /** Per batch size: mean distinct experts per MoE layer that one decode step of that many random tokens routes to. */
  distinct_experts: { npl: number; per_layer: number; step_bytes: number }[];
}

const phase = (time_s: number, tokens: number, steps: number): PhaseStats => ({
  time_s,
  tokens,
  tok_per_s: time_s > 0 ? tokens / time_s : 0,
  steps,
  mean_step_ms: steps > 0 ? (time_s * 1000) / steps : 0,
});

/** Deterministic prompt token ids in [0, vocab). */
function randomPrompt(state: { x: number }, n: number, vocab: number): number[] {
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let x = state.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    state.x = x >>> 0;
    ids[i] = state.x % vocab;
  }
  return ids;
}

export function benchEngine(opts: EngineBenchOptions): EngineBenchReport {
  const seqTokens = (npp: number) => Math.ceil((npp + opts.ntg) / opts.blockSize) * opts.blockSize;
  const maxBatch = Math.max(...opts.npl);
  // Runs longer than the model's context are skipped, so they must not size the KV cache.
  const files = openModelFiles(opts.model);
  const maxModelLen = files.config.maxPositions;
  const tied = !files.weights.has('output.weight');
  const read = (name: string) => (name === 'token_embd.weight' && !tied ? 0 : files.weights.get(name).byteLength);
  const isExperts = (name: string) => /\.ffn_(gate|up|down)_exps\.weight$/.test(name);
  const moeConfig = files.config.moe;
  const expertBytes = moeConfig ? files.weights.names().filter(isExperts).reduce((n, name) => n + read(name), 0) / moeConfig.numExperts : 0;
  const denseBytes = files.weights.names().filter((n) => !isExperts(n)).reduce((n, name) => n + read(name), 0);
  // A B = 1 decode step reads the dense weights and its token's top-k experts in every MoE layer.
  const weightBytes = denseBytes + (moeConfig ? expertBytes * moeConfig.topK : 0);
  const runnable = opts.npp.filter((npp) => npp + opts.ntg <= maxModelLen);
  // One engine for every run, sized for the largest: KV blocks for all of its sequences at their full length.
  const cacheTokens = Math.max(opts.blockSize, ...runnable.flatMap((npp) => opts.npl.map((npl) => npl * seqTokens(npp))));
  const { core, info, model } = createEngine({
    model: opts.model,
    backend: opts.backend,
    cudaGraphs: opts.cudaGraphs,
    kvCacheDtype: opts.kvCacheDtype,
    prefillFirst: opts.prefillFirst,
    cudaFusedOps: opts.cudaFusedOps,
    cudaMixedGraphs: opts.cudaMixedGraphs,
    overlap: opts.overlap,
    cacheTokens,
    blockSize: opts.blockSize,
    chunkSize: opts.chunkSize,
    maxBatchSize: maxBatch,
    maxQueue: maxBatch + 1,
    prefixCaching: opts.prefixCaching,
  });
  const rng = { x: (opts.seed ^ 0x9e3779b9) >>> 0 || 1 };
  const greedy = validateSamplingParams({ temperature: 0 });
  let nextId = 0;
  const request = (npp: number, maxTokens: number): GenerationRequest => ({
    id: `bench-${nextId++}`, promptIds: randomPrompt(rng, npp, info.vocabSize), sampling: greedy, maxTokens, stopIds: [],
  });

  /** Submits the requests and steps the engine until they finish; times both phases. */
  const run = (reqs: GenerationRequest[]) => {
    for (const r of reqs) core.submit(r);
    const started = new Set<string>();
    let generated = 0;
    let finished = 0;
    let prefillEnd = -1;
    let prefillSteps = 0;
    let generatedAtPrefillEnd = 0;
    let steps = 0;
    const t0 = performance.now();
    while (finished < reqs.length) {
      for (const e of core.step()) {
        if (e.type === 'tokens') {
          generated += e.tokens.length;
          started.add(e.id);
        } else if (e.reason !== 'length') throw new Error(`request ${e.id} ended with ${e.reason}${e.error ? `: ${e.error}` : ''}`);
        else finished++;
      }
      steps++;
      if (prefillEnd < 0 && started.size === reqs.length) {
        prefillEnd = performance.now();
        prefillSteps = steps;
        generatedAtPrefillEnd = generated;
      }
    }
    const t1 = performance.now();
    return { prefillS: (prefillEnd - t0) / 1000, decodeS: (t1 - prefillEnd) / 1000, prefillSteps, decodeSteps: steps - prefillSteps, generated, generatedAtPrefillEnd };
  };

  if (opts.warmup) run([request(Math.min(16, Math.max(1, ...opts.npp)), 2)]);

  const results: EngineBenchResult[] = [];
  const skipped: EngineBenchReport['skipped'] = [];
  for (const npp of opts.npp) {
    for (const npl of opts.npl) {
      if (npp + opts.ntg > info.maxModelLen) {
        skipped.push({ npp, npl, reason: `npp + ntg = ${npp + opts.ntg} exceeds the model's context of ${info.maxModelLen} tokens` });
        continue;
      }
      const m = run(Array.from({ length: npl }, () => request(npp, opts.ntg)));
      const decodeTokens = m.generated - m.generatedAtPrefillEnd;
      const total = m.prefillS + m.decodeS;
      const r: EngineBenchResult = {
        npp,
        ntg: opts.ntg,
        npl,
        n_kv: npl * (npp + opts.ntg),
        prefill: phase(m.prefillS, npl * npp, m.prefillSteps),
        decode: phase(m.decodeS, decodeTokens, m.decodeSteps),
        decode_tokens_during_prefill: m.generatedAtPrefillEnd - npl,
        generated_tokens: m.generated,
        total: { time_s: total, tok_per_s: total > 0 ? (npl * (npp + opts.ntg)) / total : 0 },
      };
      results.push(r);
      opts.onResult?.(r);
    }
  }
  const moe = moeConfig && model.setRoutingProbe ? moeReads(model, moeConfig.numExperts, moeConfig.topK, expertBytes, denseBytes, opts.npl, info.vocabSize, rng) : undefined;
  return {
    model: opts.model,
    engine: info,
    settings: {
      npp: opts.npp, ntg: opts.ntg, npl: opts.npl, chunk_size: opts.chunkSize, block_size: opts.blockSize,
      cache_tokens: cacheTokens, max_batch_size: maxBatch, prefix_caching: opts.prefixCaching, prefill_first: opts.prefillFirst ?? false, cuda_fused_ops: opts.cudaFusedOps ?? true, seed: opts.seed,
    },
    results,
    skipped,
    weight_bytes: weightBytes,
    // 1 GiB copied 20 times: the bandwidth bound a B = 1 decode step is compared with.
    ...(info.backend === 'cuda' ? { copy_gb_s: cudaNative()!.cudaCopyBandwidth(2 ** 30, 20) } : {}),
    ...(moe ? { moe } : {}),
  };
}

/**
 * Distinct experts a decode step of `npl` tokens touches, counted from the routers' own choices in one
 * eager step of npl random tokens (each its own sequence, on a cache of its own): the experts' share of
 * what that step must read.
 */
function moeReads(
  model: CausalLM, experts: number, topK: number, expertBytes: number, denseBytes: number, npls: number[], vocab: number, rng: { x: number },
): MoeReadStats {
  const distinct = npls.map((npl) => {
    const cache = new PagedKvCache(model.backend, { numLayers: model.config.numLayers, numBlocks: npl, blockSize: 16, layout: model.kvLayout });
    const counts: number[] = [];
    model.setRoutingProbe!((_, ids) => counts.push(new Set(model.backend.readI32(ids)).size));
    try {
      const tokens = randomPrompt(rng, npl, vocab);
      model.forward({ sequences: tokens.map((t, i) => ({ cachedLen: 0, tokens: [t], blockTable: [i], wantLogits: false })) }, cache);
    } finally {
      model.setRoutingProbe!(undefined);
      cache.dispose();
    }
    const perLayer = counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length);
    return { npl, per_layer: perLayer, step_bytes: denseBytes + perLayer * expertBytes };
  });
  return { experts, top_k: topK, expert_bytes: expertBytes, dense_bytes: denseBytes, distinct_experts: distinct };
}

// llama-batched-bench's columns, plus the mean decode step time.
const COLUMNS: [string, number][] = [
  ['PP', 6], ['TG', 6], ['B', 5], ['N_KV', 8], ['T_PP s', 9], ['S_PP t/s', 10], ['T_TG s', 9], ['S_TG t/s', 10], ['T s', 9], ['S t/s', 10], ['TG ms/step', 11],
];

export function engineTableHeader(): string {
  const head = `|${COLUMNS.map(([h, w]) => ` ${h.padStart(w)} `).join('|')}|`;
  const rule = `|${COLUMNS.map(([, w]) => '-'.repeat(w + 2)).join('|')}|`;
  return `${head}\n${rule}\n`;
}

export function engineTableRow(r: EngineBenchResult): string {
  const cells = [
    String(r.npp), String(r.ntg), String(r.npl), String(r.n_kv),
    r.prefill.time_s.toFixed(3), r.prefill.tok_per_s.toFixed(2),
    r.decode.time_s.toFixed(3), r.decode.tok_per_s.toFixed(2),
    r.total.time_s.toFixed(3), r.total.tok_per_s.toFixed(2),
    r.decode.mean_step_ms.toFixed(2),
  ];
  return `|${cells.map((c, i) => ` ${c.padStart(COLUMNS[i]![1])} `).join('|')}|\n`;
}

/** The lines printed under the table: how the numbers were obtained. */
export function engineTableNotes(rep: EngineBenchReport): string {
  const e = rep.engine;
  const lines = [
    `engine: ${e.backend} backend on ${e.device}; KV cache ${e.kvTokens} tokens (${e.kvCacheDtype}) in blocks of ${rep.settings.block_size}; chunk_size ${rep.settings.chunk_size}; prefix cache ${rep.settings.prefix_caching ? 'on' : 'off'}; ${rep.settings.prefill_first ? 'prompts read before decodes' : 'decodes interleaved with prompts'}; ` +
      (e.cudaGraphs.length > 0 ? `CUDA graphs for decode batches ${e.cudaGraphs.join(',')}` : 'no CUDA graphs') +
      (e.cudaMixedGraphTokens.length > 0 ? `, for mixed steps of ${e.cudaMixedGraphTokens.join(',')} tokens` : '') +
      (rep.settings.cuda_fused_ops ? '; fused kernels' : ''),
    'T_PP: until every request has its first token (S_PP = B·PP / T_PP); T_TG: the rest (S_TG = tokens decoded in it / T_TG, summed over the batch).',
  ];
  const overlap = rep.results.filter((r) => r.decode_tokens_during_prefill > 0);
  if (overlap.length > 0) lines.push('With chunked prefill, early requests decode while later prompts are read: those tokens count in neither S_PP nor S_TG (decode_tokens_during_prefill in the JSON).');
  if (rep.copy_gb_s !== undefined) {
    const boundTokS = (rep.copy_gb_s * 1e9) / rep.weight_bytes;
    const b1 = rep.results.find((r) => r.npl === 1);
    lines.push(
      `device copy bandwidth ${rep.copy_gb_s.toFixed(0)} GB/s; a decode step reads ${(rep.weight_bytes / 1e9).toFixed(2)} GB of weights → bound ${boundTokS.toFixed(0)} tok/s at B = 1` +
        (b1 ? `; measured ${b1.decode.tok_per_s.toFixed(1)} tok/s = ${((100 * b1.decode.tok_per_s) / boundTokS).toFixed(1)} % of the bound` : ''),
    );
  }
  if (rep.moe) {
    const m = rep.moe;
    const gb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);
    lines.push(
      `MoE: ${m.experts} experts, top-${m.top_k}; dense part ${gb(m.dense_bytes)}, one expert ${gb(m.expert_bytes)} over the layers (B = 1 reads top-${m.top_k} of them); distinct experts a decode step routes to, per layer: ` +
        m.distinct_experts.map((d) => `B ${d.npl}: ${d.per_layer.toFixed(1)} (${gb(d.step_bytes)} a step)`).join(', '),
    );
  }
  for (const s of rep.skipped) lines.push(`skipped PP ${s.npp}, B ${s.npl}: ${s.reason}`);
  return `\n${lines.join('\n')}\n`;
}

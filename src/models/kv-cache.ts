// The paged KV cache memory: per layer the tensors the model's KV layout declares, each
// [numBlocks, blockSize, width] (per-head attention: K and V; MLA: one latent). Which blocks
// belong to whom is the scheduler's business (block tables); this only holds the memory.
import type { Backend, Tensor } from '../backend/backend.js';
import { DType } from '../backend/dtype.js';

/** One tensor a layer keeps per token: its name and values per token. */
export interface KvPart {
  readonly name: 'k' | 'v' | 'latent';
  readonly width: number;
}

/**
 * What a model stores per token per layer. Memory sizing, the cache and the graphs follow it, so a
 * latent cache (MLA: kv_lora_rank + rope dims, once for all heads) costs what it holds, not per-head K/V.
 */
export interface KvLayout {
  readonly parts: readonly KvPart[];
}

/** Per-head attention: K of numKvHeads·headDim and V of numKvHeads·valueDim values per token. */
export function perHeadKvLayout(numKvHeads: number, headDim: number, valueDim = headDim): KvLayout {
  return { parts: [{ name: 'k', width: numKvHeads * headDim }, { name: 'v', width: numKvHeads * valueDim }] };
}

/** Multi-head latent attention: one compressed vector per token shared by every head. */
export function latentKvLayout(width: number): KvLayout {
  return { parts: [{ name: 'latent', width }] };
}

export interface KvCacheShape {
  numLayers: number;
  numBlocks: number;
  blockSize: number;
  layout: KvLayout;
}

/** Element type of the cache: F32 everywhere; BF16 (half the bytes) on the CUDA backend. */
export type KvCacheDtype = 'f32' | 'bf16';

/** Bytes of one cache element. */
export function kvElementBytes(dtype: KvCacheDtype): number {
  return dtype === 'bf16' ? 2 : 4;
}

/** Cache bytes one token takes over every layer. */
export function kvBytesPerToken(layout: KvLayout, numLayers: number, dtype: KvCacheDtype): number {
  return numLayers * layout.parts.reduce((n, p) => n + p.width, 0) * kvElementBytes(dtype);
}

export class PagedKvCache {
  private readonly perLayer: Tensor[][] = [];
  /**
   * A block past shape.numBlocks that no sequence owns, when asked for: padding rows of a
   * replayed CUDA graph write their K/V there.
   */
  readonly spareBlock: number | undefined;
  readonly dtype: KvCacheDtype;

  constructor(
    private readonly backend: Backend,
    readonly shape: KvCacheShape,
    options: { spareBlock?: boolean; dtype?: KvCacheDtype } = {},
  ) {
    this.spareBlock = options.spareBlock ? shape.numBlocks : undefined;
    this.dtype = options.dtype ?? 'f32';
    if (!backend.capabilities.kvDtypes.includes(this.dtype)) {
      throw new Error(`KV cache dtype ${this.dtype} is not available on the ${backend.name} backend (it keeps ${backend.capabilities.kvDtypes.join(', ')})`);
    }
    const type = this.dtype === 'bf16' ? DType.BF16 : DType.F32;
    const blocks = shape.numBlocks + (options.spareBlock ? 1 : 0);
    for (let l = 0; l < shape.numLayers; l++) {
      this.perLayer.push(shape.layout.parts.map((p) => backend.zeros(type, [blocks, shape.blockSize, p.width])));
    }
  }

  /** Layer l's cache tensors, in the layout's order (per-head: [K, V]). */
  layer(l: number): readonly Tensor[] {
    const t = this.perLayer[l];
    if (!t) throw new Error(`KV cache: no layer ${l} (it has ${this.perLayer.length})`);
    return t;
  }

  /** Bytes the cache holds (every part, all layers). */
  get bytes(): number {
    const blocks = this.shape.numBlocks + (this.spareBlock === undefined ? 0 : 1);
    return blocks * this.shape.blockSize * kvBytesPerToken(this.shape.layout, this.shape.numLayers, this.dtype);
  }

  get tokens(): number {
    return this.shape.numBlocks * this.shape.blockSize;
  }

  dispose(): void {
    for (const ts of this.perLayer) this.backend.free(...ts);
    this.perLayer.length = 0;
  }
}

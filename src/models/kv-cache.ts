// The paged KV cache memory: per layer one K and one V tensor of
// [numBlocks, blockSize, kvHeads · headDim]. Which blocks belong to whom is the
// scheduler's business (block tables); this only holds the memory.
import type { Backend, Tensor } from '../backend/backend.js';
import { DType } from '../backend/dtype.js';

export interface KvCacheShape {
  numLayers: number;
  numBlocks: number;
  blockSize: number;
  /** Values per token per layer for K (and for V). */
  width: number;
}

/** Element type of the cache: F32 everywhere; BF16 (half the bytes) on the CUDA backend. */
export type KvCacheDtype = 'f32' | 'bf16';

/** Bytes of one cache element. */
export function kvElementBytes(dtype: KvCacheDtype): number {
  return dtype === 'bf16' ? 2 : 4;
}

export class PagedKvCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
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
    const dims = [shape.numBlocks + (options.spareBlock ? 1 : 0), shape.blockSize, shape.width];
    const type = this.dtype === 'bf16' ? DType.BF16 : DType.F32;
    for (let l = 0; l < shape.numLayers; l++) {
      this.k.push(backend.zeros(type, dims));
      this.v.push(backend.zeros(type, dims));
    }
  }

  /** Bytes the cache holds (K and V, all layers). */
  get bytes(): number {
    const { numLayers, numBlocks, blockSize, width } = this.shape;
    return 2 * numLayers * (numBlocks + (this.spareBlock === undefined ? 0 : 1)) * blockSize * width * kvElementBytes(this.dtype);
  }

  get tokens(): number {
    return this.shape.numBlocks * this.shape.blockSize;
  }

  dispose(): void {
    this.backend.free(...this.k, ...this.v);
    this.k.length = 0;
    this.v.length = 0;
  }
}

// What every paged-attention kernel reads (PagedAttention), and what one query row of a step sees,
// for the kernels that take a block per (row, KV head, key split): its sequence, its block table,
// and this block's share of its keys (row_keys).
#pragma once
#include <cstdint>

#include "cuda/ops.h"

namespace kt::cuda {

// paged_attention's arguments as kernel parameters; each kernel's own arguments extend it.
struct PagedAttention {
  const float* q;
  const void* kc;  // [blocks, block_size, width] of float or __nv_bfloat16 (the kernel's C)
  const void* vc;
  const int32_t* cu_q;
  const int32_t* kv_lens;
  const int32_t* tables;
  const int32_t* stride;  // row stride of tables on the device, or null: max_blocks
  int S, max_blocks, bs, width, H, group;
  float* out;
};

inline PagedAttention paged_attention_args(const AttentionShape& sh, const DeviceTensor& q, const DeviceTensor& k_cache,
                                           const DeviceTensor& v_cache, const DeviceTensor& cu_q, const DeviceTensor& kv_lens,
                                           const DeviceTensor& block_tables, int num_kv_heads, DeviceTensor& out,
                                           const DeviceTensor* table_stride) {
  return PagedAttention{q.as<float>(), k_cache.data, v_cache.data, cu_q.as<int32_t>(), kv_lens.as<int32_t>(), block_tables.as<int32_t>(),
                        table_stride ? table_stride->as<int32_t>() : nullptr, static_cast<int>(sh.S), static_cast<int>(sh.max_blocks),
                        static_cast<int>(sh.block_size), static_cast<int>(sh.width), static_cast<int>(sh.H),
                        static_cast<int>(sh.H / num_kv_heads), out.as<float>()};
}

struct RowKeys {
  int seq, qlen;
  const int32_t* table;
  int begin, end;  // this split's keys [begin, end); may be empty
};

// Each sequence's keys are cut into gridDim.z equal chunks (≥ min_chunk keys, a function of the
// sequence's length and the split count only), so one launch shape serves any lengths: a replayed
// CUDA graph sees new lengths with the splits it was captured with.
__device__ inline RowKeys row_keys(const PagedAttention& a, int min_chunk, int row) {
  const int32_t* cu_q = a.cu_q;
  const int32_t* kv_lens = a.kv_lens;
  int lo = 0, hi = a.S - 1;  // the last s with cu_q[s] <= row (empty sequences are skipped over)
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu_q[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  RowKeys r;
  r.seq = lo;
  r.qlen = cu_q[lo + 1] - cu_q[lo];
  const int n = kv_lens[lo] - r.qlen + (row - cu_q[lo]) + 1;  // keys this row may see (causal)
  r.table = a.tables + static_cast<int64_t>(lo) * (a.stride ? *a.stride : a.max_blocks);
  const int splits = static_cast<int>(gridDim.z);
  const int chunk = max(min_chunk, ((kv_lens[lo] + splits - 1) / splits + 3) / 4 * 4);
  r.begin = blockIdx.z * chunk;
  r.end = min(n, r.begin + chunk);
  return r;
}

}  // namespace kt::cuda

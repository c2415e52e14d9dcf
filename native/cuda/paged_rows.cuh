// What one query row of a paged-attention step sees, for the kernels that take a block per
// (row, KV head, key split): its sequence, its block table, and this block's share of its keys.
#pragma once
#include <cstdint>

namespace kt::cuda {

struct RowKeys {
  int seq, qlen;
  const int32_t* table;
  int begin, end;  // this split's keys [begin, end); may be empty
};

// cu_q / kv_lens / tables as paged_attention takes them; stride: the tables' device row stride or null.
// Each sequence's keys are cut into gridDim.z equal chunks (≥ min_chunk keys, a function of the
// sequence's length and the split count only), so one launch shape serves any lengths: a replayed
// CUDA graph sees new lengths with the splits it was captured with.
__device__ inline RowKeys row_keys(const int32_t* cu_q, const int32_t* kv_lens, const int32_t* tables, const int32_t* stride,
                                   int S, int max_blocks, int min_chunk, int row) {
  int lo = 0, hi = S - 1;  // the last s with cu_q[s] <= row (empty sequences are skipped over)
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu_q[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  RowKeys r;
  r.seq = lo;
  r.qlen = cu_q[lo + 1] - cu_q[lo];
  const int n = kv_lens[lo] - r.qlen + (row - cu_q[lo]) + 1;  // keys this row may see (causal)
  r.table = tables + static_cast<int64_t>(lo) * (stride ? *stride : max_blocks);
  const int splits = static_cast<int>(gridDim.z);
  const int chunk = max(min_chunk, ((kv_lens[lo] + splits - 1) / splits + 3) / 4 * 4);
  r.begin = blockIdx.z * chunk;
  r.end = min(n, r.begin + chunk);
  return r;
}

}  // namespace kt::cuda

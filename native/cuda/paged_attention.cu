// Causal attention over the paged KV cache, for prefill chunks and decode alike: one block
// per (query row, KV head, key split), one warp per query head of that KV head's group, so the
// group reads each K/V row from L1 after the first warp. Online softmax over the keys, four
// keys per round (four dot products reduced together). Where rows × KV heads are too few to
// fill the GPU (decode), the keys are split over blocks ("flash-decoding") and a second kernel
// merges the partial softmaxes. CUDA cores, f32 arithmetic; the caches hold f32 or bf16 (notes/cuda.md).
// In bf16 precision, calls with a run of 16+ query rows go to the tensor-core kernel (paged_attention_prefill.cu).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/paged_rows.cuh"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

constexpr int kMaxWarps = 8;
constexpr int kKeysPerRound = 4;

struct AttnArgs : PagedAttention {
  int D;
  float scale;
  int min_chunk;    // fewest keys per split
  float* part_acc;  // [T, H, splits, D] unnormalised sums, or null: one split, write `out`
  float* part_ml;   // [T, H, splits, 2] running max and sum of exponentials
};

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }

// NPL: head dims per lane (D ≤ 32 · NPL); lane holds dims lane, lane + 32, ...; C: the caches' element type.
template <int NPL, typename C>
__global__ void paged_attention_kernel(AttnArgs a) {
  const C* kc = static_cast<const C*>(a.kc);
  const C* vc = static_cast<const C*>(a.vc);
  const int row = blockIdx.x, kvh = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  const RowKeys rk = row_keys(a, a.min_chunk, row);
  const int32_t* table = rk.table;
  const int64_t head_off = static_cast<int64_t>(kvh) * a.D;
  const int j_begin = rk.begin, j_end = rk.end;

  for (int hh = warp; hh < a.group; hh += nwarps) {
    const int h = kvh * a.group + hh;
    const float* qv = a.q + (static_cast<int64_t>(row) * a.H + h) * a.D;
    float qr[NPL], acc[NPL];
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int d = lane + 32 * i;
      qr[i] = d < a.D ? qv[d] : 0.f;
      acc[i] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int j0 = j_begin; j0 < j_end; j0 += kKeysPerRound) {
      float sc[kKeysPerRound];
      int64_t off[kKeysPerRound];
#pragma unroll
      for (int u = 0; u < kKeysPerRound; ++u) {
        const int j = min(j0 + u, j_end - 1);  // past the end: a real key, masked below
        off[u] = (static_cast<int64_t>(table[j / a.bs]) * a.bs + j % a.bs) * a.width + head_off;
        float part = 0.f;
#pragma unroll
        for (int i = 0; i < NPL; ++i) {
          const int d = lane + 32 * i;
          if (d < a.D) part += qr[i] * ld(kc + off[u] + d);
        }
        sc[u] = part;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1)
#pragma unroll
        for (int u = 0; u < kKeysPerRound; ++u) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
      float mx = m;
#pragma unroll
      for (int u = 0; u < kKeysPerRound; ++u) {
        sc[u] = j0 + u < j_end ? sc[u] * a.scale : -INFINITY;
        mx = fmaxf(mx, sc[u]);
      }
      const float corr = expf(m - mx);  // 0 on the first round (m = -inf)
      l *= corr;
#pragma unroll
      for (int i = 0; i < NPL; ++i) acc[i] *= corr;
#pragma unroll
      for (int u = 0; u < kKeysPerRound; ++u) {
        const float p = expf(sc[u] - mx);  // 0 for masked keys
        l += p;
#pragma unroll
        for (int i = 0; i < NPL; ++i) {
          const int d = lane + 32 * i;
          if (d < a.D) acc[i] += p * ld(vc + off[u] + d);
        }
      }
      m = mx;
    }
    if (a.part_acc) {
      const int64_t idx = (static_cast<int64_t>(row) * a.H + h) * gridDim.z + blockIdx.z;
      float* o = a.part_acc + idx * a.D;
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        const int d = lane + 32 * i;
        if (d < a.D) o[d] = acc[i];
      }
      if (lane == 0) a.part_ml[2 * idx] = m, a.part_ml[2 * idx + 1] = l;
      continue;
    }
    const float inv = 1.0f / l;
    float* o = a.out + (static_cast<int64_t>(row) * a.H + h) * a.D;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int d = lane + 32 * i;
      if (d < a.D) o[d] = acc[i] * inv;
    }
  }
}

// One block per (query row, head): out = Σ_s e^(m_s - m) acc_s / Σ_s e^(m_s - m) l_s. Empty
// splits have m_s = -inf and weigh nothing; split 0 is never empty.
__global__ void merge_splits_kernel(const float* __restrict__ part_acc, const float* __restrict__ part_ml, int splits, int D,
                                    float* __restrict__ out) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  const int64_t base = static_cast<int64_t>(blockIdx.x) * splits;
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, part_ml[2 * (base + s)]);
  float l = 0.f;
  for (int s = 0; s < splits; ++s) l += expf(part_ml[2 * (base + s)] - mx) * part_ml[2 * (base + s) + 1];
  const float inv = 1.0f / l;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = 0.f;
    for (int s = 0; s < splits; ++s) v += expf(part_ml[2 * (base + s)] - mx) * part_acc[(base + s) * D + d];
    out[static_cast<int64_t>(blockIdx.x) * D + d] = v * inv;
  }
}

int multiprocessors() {
  static const int count = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? n : 132;
  }();
  return count;
}

template <int NPL>
void launch(const AttnArgs& a, bool bf16, int T, int num_kv_heads, int splits) {
  const int warps = std::min(a.group, kMaxWarps);
  const dim3 grid(T, num_kv_heads, splits);
  if (bf16) paged_attention_kernel<NPL, __nv_bfloat16><<<grid, 32 * warps, 0, stream()>>>(a);
  else paged_attention_kernel<NPL, float><<<grid, 32 * warps, 0, stream()>>>(a);
  check_launch("paged_attention_kernel");
}

}  // namespace

AttentionShape check_paged_attention(const char* op, const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache,
                                     const DeviceTensor& cu_q, const DeviceTensor& kv_lens, const DeviceTensor& block_tables,
                                     int num_kv_heads, const DeviceTensor& out, const DeviceTensor* table_stride) {
  check(q.dtype == DType::F32 && out.dtype == DType::F32 && out.numel() == q.numel(), op, "q and out must be F32 of one shape");
  check_kv_caches(op, k_cache, v_cache);
  check(cu_q.dtype == DType::I32 && kv_lens.dtype == DType::I32 && block_tables.dtype == DType::I32, op, "metadata must be I32");
  const int64_t S = kv_lens.numel();
  check(S > 0 && cu_q.numel() == S + 1, op, "cu_q must have one more entry than kv_lens");
  check(block_tables.shape.size() == 2 && block_tables.shape[0] == S, op, "block_tables must be [S, max_blocks], got " + block_tables.describe());
  const int64_t nblocks = k_cache.shape[0], bs = k_cache.shape[1], width = k_cache.shape[2];
  check(num_kv_heads > 0 && width % num_kv_heads == 0, op, "cache width not divisible by kv heads");
  const int64_t D = width / num_kv_heads;
  check(D <= 256, op, "head dim " + std::to_string(D) + " above the kernel's 256");
  check(q.shape.size() >= 2, op, "q must be [T, H * D], got " + q.describe());
  const int64_t T = q.shape[0];
  check(T > 0 && q.numel() % (T * D) == 0, op, "q " + q.describe() + " is not [T, H * " + std::to_string(D) + "]");
  const int64_t H = q.numel() / (T * D);
  check(H % num_kv_heads == 0, op, "query heads not a multiple of kv heads");
  const int64_t max_blocks = block_tables.shape[1];
  if (table_stride) check(table_stride->dtype == DType::I32 && table_stride->numel() == 1, op, "table stride must be I32 [1]");
  AttentionShape shape{S, T, H, D, bs, width, max_blocks, -1, -1};
  // Index data is checked where the host holds a copy (every upload keeps one); a replayed graph
  // skips these checks, so its runner fills the step buffers from validated plans only.
  if (cu_q.has_host_copy() && kv_lens.has_host_copy() && block_tables.has_host_copy() && (!table_stride || table_stride->has_host_copy())) {
    const int64_t stride = table_stride ? table_stride->host_i32[0] : max_blocks;
    check(stride >= 1 && stride <= max_blocks, op, "table stride " + std::to_string(stride) + " outside 1.." + std::to_string(max_blocks));
    const std::vector<int32_t>& cq = cu_q.host_i32;
    const std::vector<int32_t>& lens = kv_lens.host_i32;
    const std::vector<int32_t>& tables = block_tables.host_i32;
    check(cq[0] == 0 && cq[S] == T, op, "cu_q must run from 0 to the " + std::to_string(T) + " rows of q");
    shape.max_qlen = 0;
    shape.min_qlen = T;
    for (int64_t s = 0; s < S; ++s) {
      const int64_t qlen = cq[s + 1] - cq[s];
      check(qlen >= 0 && lens[s] >= qlen && lens[s] >= 1 && lens[s] <= stride * bs, op, "sequence " + std::to_string(s) + " has bad lengths");
      for (int64_t b = 0; b < (lens[s] + bs - 1) / bs; ++b) {
        const int32_t blk = tables[s * stride + b];
        check(blk >= 0 && blk < nblocks, op, "block " + std::to_string(blk) + " outside the cache");
      }
      shape.max_qlen = std::max(shape.max_qlen, qlen);
      shape.min_qlen = std::min(shape.min_qlen, qlen);
    }
  }
  return shape;
}

void paged_attention(const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache, const DeviceTensor& cu_q,
                     const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale, DeviceTensor& out,
                     const DeviceTensor* table_stride) {
  const char* op = "paged_attention";
  const AttentionShape shape = check_paged_attention(op, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, out, table_stride);
  // Runs of 16+ query rows take the tensor-core kernel (paged_attention_prefill.cu) in bf16 precision
  // ('f32' precision keeps the per-row kernels, which compute what the CPU does); the step's shorter
  // runs (decodes beside a prefill chunk) take attention_rows, which reads each K/V row once per KV
  // head group rather than once per query head. Lengths come from the host copies, so a replayed
  // graph (decode: no long runs) keeps the launch it was captured with.
  constexpr int kPrefillRows = 16;
  if (options().precision == Precision::BF16 && shape.max_qlen >= kPrefillRows && prefill_attention_supported(shape, q, k_cache, v_cache, out)) {
    paged_attention_prefill(q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, scale, out, table_stride, &shape, kPrefillRows);
    if (shape.min_qlen < kPrefillRows) {
      check(attention_rows_supported(shape.D), op, "no row kernel for head dim " + std::to_string(shape.D));
      // One split: a merge pass would overwrite the prefill kernel's rows.
      attention_rows(shape, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, scale, out, table_stride, 1, 1, nullptr,
                     nullptr, kPrefillRows);
    }
    return;
  }
  const int64_t T = shape.T, H = shape.H, D = shape.D, bs = shape.block_size;
  const int64_t max_blocks = shape.max_blocks;
  // Split the keys when rows × KV heads give fewer than ~4 blocks per SM (options().attention_blocks_per_sm). The split count depends on
  // shapes only (the block table's capacity stands in for the longest sequence), never on lengths.
  const int64_t capacity = max_blocks * bs;
  const int64_t want_blocks = int64_t{options().attention_blocks_per_sm} * multiprocessors(), have = T * num_kv_heads;
  constexpr int64_t kMinChunk = 32;
  const int64_t splits = have >= want_blocks ? 1 : std::max<int64_t>(1, std::min((want_blocks + have - 1) / have, (capacity + kMinChunk - 1) / kMinChunk));
  check(splits < 65536, op, "too many key splits");
  std::shared_ptr<void> part;
  AttnArgs a{paged_attention_args(shape, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, out, table_stride),
             static_cast<int>(D), scale, static_cast<int>(splits > 1 ? kMinChunk : 1), nullptr, nullptr};
  if (splits > 1) {
    // Freed when this function returns: the pool hands the block out again only to later
    // launches on the same stream, which run after the merge.
    part = pool().alloc(static_cast<size_t>(T * H * splits * (D + 2)) * sizeof(float));
    a.part_acc = static_cast<float*>(part.get());
    a.part_ml = a.part_acc + T * H * splits * D;
  }
  const int s = static_cast<int>(splits);
  out.q8k.reset();
  if (options().attention_kernel == 0 && attention_rows_supported(D)) {
    // Split rows merge in their last block (counters); at decode that block also writes the q8_K
    // rows the output projection's GEMV reads (then neither a merge nor a quantize launch).
    const int G = attention_rows_group(static_cast<int>(H), num_kv_heads), group = static_cast<int>(H) / num_kv_heads;
    int* counters = splits > 1 ? split_counters(T * num_kv_heads * ((group + G - 1) / G)) : nullptr;
    std::shared_ptr<void> q8;
    ActQ q8v{};
    if (counters && T <= 2 && (H * D) % 256 == 0 && group % G == 0 && G * D == 4 * attention_rows_threads()) {
      q8 = pool().alloc(q8_storage_bytes(T, H * D, ActFormat::Q8_K));
      q8v = q8_view(q8.get(), T, H * D, ActFormat::Q8_K);
    }
    attention_rows(shape, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, scale, out, table_stride, s, a.min_chunk,
                   a.part_acc, a.part_ml, 0x7fffffff, counters, const_cast<int8_t*>(q8v.q), const_cast<float*>(q8v.d));
    out.q8k = std::move(q8);
    if (counters) return;
  } else {
    const int npl = static_cast<int>((D + 31) / 32);
    const bool bf16 = k_cache.dtype == DType::BF16;
    if (npl <= 1) launch<1>(a, bf16, static_cast<int>(T), num_kv_heads, s);
    else if (npl <= 2) launch<2>(a, bf16, static_cast<int>(T), num_kv_heads, s);
    else if (npl <= 4) launch<4>(a, bf16, static_cast<int>(T), num_kv_heads, s);
    else launch<8>(a, bf16, static_cast<int>(T), num_kv_heads, s);
  }
  if (splits > 1) {
    merge_splits_kernel<<<static_cast<unsigned>(T * H), 128, 0, stream()>>>(a.part_acc, a.part_ml, s, static_cast<int>(D), out.as<float>());
    check_launch("merge_splits_kernel");
  }
}

}  // namespace kt::cuda

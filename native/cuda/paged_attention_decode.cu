// Attention of single query rows over the paged KV cache: decode, and any row of a step that the
// tensor-core prefill kernel does not take. One block per (query row, KV head, key split) holds
// every query head of that KV head's group, so each K/V row is read once for the whole group.
//
// Inside a warp, TPK lanes share one key: each lane loads 16 contiguous bytes of the K row (and of
// the V row), so a key group reads whole 128-byte lines. A lane keeps its slice of every group
// head's query and output. Per round a lane has R keys' K and V loads in flight before it uses
// any, then scores R keys for all heads at once (one shuffle tree per key and head), and updates
// its online softmax once per round. Key groups and warps keep separate softmax states; they are
// merged at the end, through shuffles and then shared memory. Key splits write unnormalised
// partials for merge_attention_splits (the ("flash-decoding") second pass).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/paged_rows.cuh"
#include "cuda/pdl.cuh"
#include "cuda/q8k_block.cuh"

namespace kt::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRound = 4;  // keys per key group per round
constexpr float kLog2e = 1.4426950408889634f;

// 16 bytes of cache: loaded raw (4 registers whatever the type), widened to float element by element.
template <typename C> struct Chunk;
template <> struct Chunk<float> {
  static constexpr int kElems = 4;
  using Raw = float4;
  __device__ static Raw load(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }
  __device__ static float get(const Raw& r, int e) { return e == 0 ? r.x : e == 1 ? r.y : e == 2 ? r.z : r.w; }
};
template <> struct Chunk<__nv_bfloat16> {
  static constexpr int kElems = 8;
  using Raw = uint4;
  __device__ static Raw load(const __nv_bfloat16* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
  __device__ static float get(const Raw& r, int e) {
    const uint32_t w = e < 2 ? r.x : e < 4 ? r.y : e < 6 ? r.z : r.w;
    return __uint_as_float(e % 2 == 0 ? w << 16 : w & 0xffff0000u);
  }
};

struct RowArgs : PagedAttention {
  int head_batches;
  float scale_log2;  // softmax scale · log2(e): scores are kept in base 2
  int min_chunk;
  int skip_qlen;  // sequences with this many query rows or more belong to the prefill kernel
  float* part_acc;  // [T, H, splits, D] or null (one split: normalised into out)
  float* part_ml;   // [T, H, splits, 2]: max (natural-log units) and sum
  // With splits: one zeroed counter per (row, blockIdx.y), or null (the merge kernel merges). The
  // last split block of each counts in, merges the splits into out, and sets the counter back to 0.
  int* counters;
  // With counters, and heads · D == 4 · threads: out's rows are also written in q8_K here, or null.
  int8_t* q8;
  float* q8d;
};

// Split s's partial sums (natural-log max, sum) for row·head rh, read from L2: other blocks wrote them.
__device__ __forceinline__ float2 split_ml(const RowArgs& a, int64_t rh, int splits, int s) {
  return __ldcg(reinterpret_cast<const float2*>(a.part_ml) + rh * splits + s);
}

// The last split block's merge of `heads` heads from h0 of `row`: out = Σ_s e^(m_s - m) acc_s /
// Σ_s e^(m_s - m) l_s, as merge_splits_kernel computes it (empty splits have m_s = -inf).
template <int D>
__device__ void merge_own_splits(const RowArgs& a, int row, int h0, int heads) {
  const int splits = static_cast<int>(gridDim.z);
  const auto merged = [&](int64_t rh, int d0, int n, float* v) {
    float mx = -INFINITY;
    for (int s = 0; s < splits; ++s) mx = fmaxf(mx, split_ml(a, rh, splits, s).x);
    float l = 0.f;
    for (int i = 0; i < n; ++i) v[i] = 0.f;
    for (int s = 0; s < splits; ++s) {
      const float2 ml = split_ml(a, rh, splits, s);
      const float f = expf(ml.x - mx);
      l += f * ml.y;
      const float* acc = a.part_acc + (rh * splits + s) * D + d0;
      for (int i = 0; i < n; ++i) v[i] += f * __ldcg(acc + i);
    }
    const float inv = 1.0f / l;
    for (int i = 0; i < n; ++i) v[i] *= inv;
  };
  if (heads * D == 4 * static_cast<int>(blockDim.x)) {
    // Four consecutive values a thread (one head's), so 64 threads hold a q8_K block of the row.
    const int i = 4 * threadIdx.x, h = i / D, d = i % D;
    const int64_t rh = static_cast<int64_t>(row) * a.H + h0 + h;
    float v[4];
    merged(rh, d, 4, v);
    const float4 y = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(a.out + rh * D + d) = y;
    if (a.q8) q8k_block<kWarps * 32>(y, (h0 + h) * D + d, row, a.H * D, a.q8, a.q8d);
    return;
  }
  for (int i = threadIdx.x; i < heads * D; i += blockDim.x) {
    const int64_t rh = static_cast<int64_t>(row) * a.H + h0 + i / D;
    float v;
    merged(rh, i % D, 1, &v);
    a.out[rh * D + i % D] = v;
  }
}

// D: head dim; G: heads of the group per block (the group's heads are cut in batches of G);
// C: cache element type.
template <int D, int G, typename C>
__global__ void __launch_bounds__(kWarps * 32) attention_rows_kernel(RowArgs a) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  constexpr int E = Chunk<C>::kElems;
  constexpr int TPK = D / E < 32 ? D / E : 32;  // lanes per key
  constexpr int CH = D / (E * TPK);             // 16-byte chunks per lane
  constexpr int KPW = 32 / TPK;                 // keys a warp scores at once
  constexpr int KEYS_PER_WARP_ROUND = KPW * kRound;
  const C* kc = static_cast<const C*>(a.kc);
  const C* vc = static_cast<const C*>(a.vc);
  const int row = blockIdx.x;
  const int kvh = blockIdx.y / a.head_batches, hb = blockIdx.y % a.head_batches;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kg = lane / TPK, t = lane % TPK;

  const RowKeys rk = row_keys(a, a.min_chunk, row);
  if (rk.qlen >= a.skip_qlen) return;  // the whole block, before its barrier
  const int32_t* table = rk.table;
  const int j_begin = rk.begin, j_end = rk.end;

  const int h0 = kvh * a.group + hb * G;  // first query head of this block
  const int heads = min(G, a.group - hb * G);
  float q[G][CH][E], acc[G][CH][E], m[G], l[G];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    const float* qv = a.q + (static_cast<int64_t>(row) * a.H + h0 + min(h, heads - 1)) * D;
#pragma unroll
    for (int c = 0; c < CH; ++c)
#pragma unroll
      for (int e = 0; e < E; ++e) {
        q[h][c][e] = h < heads ? qv[(c * TPK + t) * E + e] * a.scale_log2 : 0.f;
        acc[h][c][e] = 0.f;
      }
    m[h] = -INFINITY;
    l[h] = 0.f;
  }
  const int64_t head_off = static_cast<int64_t>(kvh) * D;

  for (int base = j_begin + warp * KEYS_PER_WARP_ROUND; base < j_end; base += kWarps * KEYS_PER_WARP_ROUND) {
    typename Chunk<C>::Raw kf[kRound][CH], vf[kRound][CH];
    bool valid[kRound];
#pragma unroll
    for (int r = 0; r < kRound; ++r) {
      const int j0 = base + r * KPW + kg;
      valid[r] = j0 < j_end;
      const int j = valid[r] ? j0 : j_begin;  // a real key: loaded, then masked
      const int64_t off = (static_cast<int64_t>(table[j / a.bs]) * a.bs + j % a.bs) * a.width + head_off;
#pragma unroll
      for (int c = 0; c < CH; ++c) {
        kf[r][c] = Chunk<C>::load(kc + off + (c * TPK + t) * E);
        vf[r][c] = Chunk<C>::load(vc + off + (c * TPK + t) * E);
      }
    }
    float sc[kRound][G];
#pragma unroll
    for (int r = 0; r < kRound; ++r)
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float p = 0.f;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
          for (int e = 0; e < E; ++e) p = fmaf(q[h][c][e], Chunk<C>::get(kf[r][c], e), p);
        sc[r][h] = p;
      }
#pragma unroll
    for (int o = TPK / 2; o > 0; o >>= 1)
#pragma unroll
      for (int r = 0; r < kRound; ++r)
#pragma unroll
        for (int h = 0; h < G; ++h) sc[r][h] += __shfl_xor_sync(0xffffffffu, sc[r][h], o);
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float mx = m[h];
#pragma unroll
      for (int r = 0; r < kRound; ++r) {
        sc[r][h] = valid[r] ? sc[r][h] : -INFINITY;
        mx = fmaxf(mx, sc[r][h]);
      }
      if (mx == -INFINITY) continue;  // nothing seen yet by this key group
      const float corr = exp2f(m[h] - mx);  // 0 when m was -inf
      m[h] = mx;
      l[h] *= corr;
#pragma unroll
      for (int c = 0; c < CH; ++c)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[h][c][e] *= corr;
#pragma unroll
      for (int r = 0; r < kRound; ++r) {
        const float p = exp2f(sc[r][h] - mx);  // 0 for masked keys
        l[h] += p;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
          for (int e = 0; e < E; ++e) acc[h][c][e] = fmaf(p, Chunk<C>::get(vf[r][c], e), acc[h][c][e]);
      }
    }
  }

  // Merge the warp's key groups (lanes TPK apart hold the same dims of different keys).
#pragma unroll
  for (int o = TPK; o < 32; o <<= 1)
#pragma unroll
    for (int h = 0; h < G; ++h) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[h], o);
      const float lo2 = __shfl_xor_sync(0xffffffffu, l[h], o);
      const float mx = fmaxf(m[h], mo);
      const float fa = mx == -INFINITY ? 0.f : exp2f(m[h] - mx), fb = mx == -INFINITY ? 0.f : exp2f(mo - mx);
#pragma unroll
      for (int c = 0; c < CH; ++c)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[h][c][e] = acc[h][c][e] * fa + __shfl_xor_sync(0xffffffffu, acc[h][c][e], o) * fb;
      l[h] = l[h] * fa + lo2 * fb;
      m[h] = mx;
    }

  // Merge the warps through shared memory: warp w's state for head h, lanes 0..TPK-1 hold the dims.
  __shared__ float s_acc[kWarps][G][D];
  __shared__ float s_ml[kWarps][G][2];
  if (kg == 0) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
#pragma unroll
      for (int c = 0; c < CH; ++c)
#pragma unroll
        for (int e = 0; e < E; ++e) s_acc[warp][h][(c * TPK + t) * E + e] = acc[h][c][e];
      if (t == 0) s_ml[warp][h][0] = m[h], s_ml[warp][h][1] = l[h];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < heads * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_ml[w][h][0]);
    float sum = 0.f, v = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = exp2f(s_ml[w][h][0] - mx);
        sum += f * s_ml[w][h][1];
        v += f * s_acc[w][h][d];
      }
    }
    const int64_t rh = static_cast<int64_t>(row) * a.H + h0 + h;
    if (a.part_acc) {
      const int64_t idx = rh * gridDim.z + blockIdx.z;
      a.part_acc[idx * D + d] = v;
      // The merge kernel works in natural-log units: m₂ · ln 2.
      if (d == 0) a.part_ml[2 * idx] = mx == -INFINITY ? -INFINITY : mx / kLog2e, a.part_ml[2 * idx + 1] = sum;
    } else {
      a.out[rh * D + d] = v / sum;
    }
  }
  if (!a.part_acc || !a.counters) return;
  // Count this split in; the last of the row's splits for these heads merges them all.
  __shared__ bool last;
  __threadfence();  // the partials above are visible device-wide before the count says so
  __syncthreads();
  int* counter = a.counters + static_cast<int64_t>(row) * gridDim.y + blockIdx.y;
  if (threadIdx.x == 0) last = atomicAdd(counter, 1) == static_cast<int>(gridDim.z) - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  merge_own_splits<D>(a, row, h0, heads);
  if (threadIdx.x == 0) *counter = 0;  // for the next launch (graphs replay the same buffer)
}

template <int D, int G>
void launch_d_g(const RowArgs& a, bool bf16, dim3 grid) {
  if (bf16) attention_rows_kernel<D, G, __nv_bfloat16><<<grid, kWarps * 32, 0, stream()>>>(a);
  else attention_rows_kernel<D, G, float><<<grid, kWarps * 32, 0, stream()>>>(a);
  check_launch("attention_rows_kernel");
}

template <int D>
void launch_d(const RowArgs& a, bool bf16, int g, dim3 grid) {
  if (g <= 1) launch_d_g<D, 1>(a, bf16, grid);
  else if (g <= 2) launch_d_g<D, 2>(a, bf16, grid);
  else if (g <= 4) launch_d_g<D, 4>(a, bf16, grid);
  else launch_d_g<D, 8>(a, bf16, grid);
}

}  // namespace

bool attention_rows_supported(int64_t head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }

int attention_rows_group(int H, int num_kv_heads) {
  const int group = H / num_kv_heads;
  return group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
}

int attention_rows_threads() { return kWarps * 32; }

void attention_rows(const AttentionShape& sh, const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache,
                    const DeviceTensor& cu_q, const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale,
                    DeviceTensor& out, const DeviceTensor* table_stride, int splits, int min_chunk, float* part_acc, float* part_ml,
                    int skip_qlen, int* counters, int8_t* q8, float* q8d) {
  const int group = static_cast<int>(sh.H / num_kv_heads);
  const int G = attention_rows_group(static_cast<int>(sh.H), num_kv_heads);
  const int head_batches = (group + G - 1) / G;
  RowArgs a{paged_attention_args(sh, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, out, table_stride), head_batches,
            scale * kLog2e, min_chunk, skip_qlen, part_acc, part_ml, counters, q8, q8d};
  const dim3 grid(static_cast<unsigned>(sh.T), static_cast<unsigned>(num_kv_heads * head_batches), static_cast<unsigned>(splits));
  const bool bf16 = k_cache.dtype == DType::BF16;
  switch (sh.D) {
    case 64: launch_d<64>(a, bf16, G, grid); break;
    case 128: launch_d<128>(a, bf16, G, grid); break;
    case 256: launch_d<256>(a, bf16, G, grid); break;
    default: check(false, "paged_attention", "attention_rows: head dim " + std::to_string(sh.D) + " unsupported");
  }
}

}  // namespace kt::cuda

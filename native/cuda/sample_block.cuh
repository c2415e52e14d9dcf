// The device sampler's building blocks (sample.cu): its constants and shared-memory layout, the
// per-row state, the counter-based RNG, and the block/cluster reductions and scans the passes use.
// Included by sample.cu alone (hence the anonymous namespace).
#pragma once
#include <cooperative_groups.h>

#include <climits>
#include <cstdint>

#include "cuda/cuda_common.h"

namespace kt::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxCluster = 8;  // the portable cluster size
constexpr int kBins = 2048;
constexpr float kBinsPerUnit = 32.f;
constexpr int kCap = 8192;  // tokens a boundary bin may hold to be sorted in shared memory
constexpr int kRadix = 256;
constexpr float kGreedyTemperature = 1e-5f;    // as sampler.ts (vLLM's epsilon)
constexpr float kMassScale = 1099511627776.f;  // 2^40: Σ over 2^21 tokens of weights ≤ 1 stays below 2^61
constexpr float kMassCut = 29.f;              // e^-29 · 2^40 < 0.5: farther tokens weigh 0
// Top-p keeps a token while the mass before it is below topP·Z·(1 − 1e-6), as sampler.ts: float logits of
// a probability exactly on the boundary must not pull in the next token.
constexpr double kTopPRelTolerance = 1e-6;
// u = 1 − h/2^64 as a float in [2^-24, 1 − 2^-64], so the Gumbel noise g lies in [−2.81, 44.37]: the max
// token scores at least −2.81 and is always kept, so a token with z_max − z > 48 can never win.
constexpr float kNeverWins = 48.f;
constexpr float kLn2 = 0.69314718f;

// Dynamic shared memory (u64 words): sorted boundary-bin tokens; row-wide bin masses and counts; this
// block's own bin masses and counts (C > 1); the radix histograms, row-wide and own.
constexpr int kSortedAt = 0, kMassAt = kCap, kCountAt = kMassAt + kBins, kOwnMassAt = kCountAt + kBins / 2,
              kOwnCountAt = kOwnMassAt + kBins, kRadixAt = kOwnCountAt + kBins / 2, kOwnRadixAt = kRadixAt + kRadix,
              kSharedWords = kOwnRadixAt + kRadix;
constexpr size_t kSharedBytes = kSharedWords * sizeof(uint64_t);

struct Scratch {
  uint64_t* sorted;  // (key << 32 | ~index) of a gathered bin, most likely first
  uint64_t* mass;
  uint32_t* count;
  uint64_t* own_mass;  // C = 1: the same arrays as mass and count
  uint32_t* own_count;
  uint64_t* radix;
  uint64_t* own_radix;
};

struct Partial {
  float v;
  int i;
  uint64_t a;
};

struct BlockState {
  float red_val[kWarps];
  int red_idx[kWarps];
  uint64_t red_u64[kWarps];
  Partial out;          // a reduction's result
  Partial exchange[2];  // this block's partial, for the cluster (alternating, see row_reduce)
  int parity;
  int first;
  uint64_t before;
  uint32_t gathered;
  int sorted_bin;  // the bin whose tokens `sorted` holds, or -1
  int sorted_n;
};

// One row: its logits, this block's slice [begin, end) of them, its max, how gaps map to bins and weights.
struct Row {
  const float* x;
  int begin, end;
  float m;
  float inv_t;
  float bin_scale;
  int rank, C;  // this block's place in the row's cluster
};

// Order-preserving map of a float's bits to an unsigned key; NaN → 0, below every number (never kept),
// −0 → +0 so that equal logits have equal keys.
__device__ __forceinline__ uint32_t key_of(float v) {
  if (v != v) return 0;
  const uint32_t u = v == 0.f ? 0u : __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float value_of(uint32_t key) { return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key); }

// Explicit roundings (no contraction into FMAs) so every pass computes the same bin and weight for a token.
__device__ __forceinline__ float dist_of(const Row& r, float v) { return __fmul_rn(__fsub_rn(r.m, v), r.inv_t); }

__device__ __forceinline__ int bin_of(const Row& r, float v) {
  const float b = __fmul_rn(__fsub_rn(r.m, v), r.bin_scale);
  return b < static_cast<float>(kBins - 1) ? static_cast<int>(b) : kBins - 1;
}

__device__ __forceinline__ uint64_t mass_of(const Row& r, float v) {
  const float d = dist_of(r, v);
  return d < kMassCut ? __float2ull_rn(__fmul_rn(expf(-d), kMassScale)) : 0ull;
}

// splitmix64's finalizer: a bijection of 64-bit words with good avalanche.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Distinct (seed, counter) give distinct row keys, distinct tokens distinct hash inputs.
__device__ __forceinline__ uint64_t row_key(int32_t seed, int32_t counter) {
  return mix64((static_cast<uint64_t>(static_cast<uint32_t>(seed)) << 32) | static_cast<uint32_t>(counter));
}

__device__ __forceinline__ uint64_t token_hash(uint64_t key, int i) { return mix64(key + (static_cast<uint64_t>(i) + 1) * 0x9e3779b97f4a7c15ull); }

// g = −log(−log u) with u = 1 − v, v = h/2^64 rounded toward zero: −log u = −log1p(−v) keeps full relative
// precision where it matters (u near 1, v near 0: the large g of unlikely winners).
__device__ __forceinline__ float gumbel(uint64_t h) {
  const float v = fmaxf(__ull2float_rz(h) * 0x1p-64f, 0x1p-64f);
  return -logf(-log1pf(-v));
}

// Upper bound of gumbel(h): v ≥ 2^-(clz(h)+1) and −log1p(−v) ≥ v, so g ≤ (clz(h)+1)·ln 2 (plus a margin
// far above float rounding). Lets the draw skip the two logs for tokens that cannot win.
__device__ __forceinline__ float gumbel_bound(uint64_t h) { return static_cast<float>(__clzll(h) + 1) * kLn2 + 1e-3f; }

// Exact 64-bit add into shared memory from native 32-bit atomics (a 64-bit shared atomic add is a CAS loop
// on sm_90): the low word, then the high part plus any carry into the high word. Readers wait for a barrier.
__device__ __forceinline__ void atomic_add_u64(uint64_t* p, uint64_t v) {
  uint32_t* w = reinterpret_cast<uint32_t*>(p);  // little-endian: w[0] low, w[1] high
  const uint32_t lo = static_cast<uint32_t>(v);
  const uint32_t up = static_cast<uint32_t>(v >> 32) + (atomicAdd(w, lo) > 0xffffffffu - lo ? 1u : 0u);
  if (up) atomicAdd(w + 1, up);
}

// Larger value wins, lower index among equals; NaN never wins.
__device__ __forceinline__ void argmax_merge(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

// One thread's chunk of kU float4s, element c of q[u] at index i0 + 4·u·kThreads + c: keep, then f.
// kCompact, for sparse passes: f runs over the kept elements in a tight loop afterwards, so a warp pays for
// f as often as its busiest lane, not once for every element that any of its lanes keeps.
template <bool kCompact, int kU, typename K, typename F>
__device__ __forceinline__ void visit_chunk(const float4 (&q)[kU], int i0, const float* __restrict__ x, K& keep, F& f) {
  uint32_t mask = 0;
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int i = i0 + 4 * u * kThreads;
    const float v[4] = {q[u].x, q[u].y, q[u].z, q[u].w};
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      if (kCompact) mask |= (keep(i + c, v[c]) ? 1u : 0u) << (4 * u + c);
      else if (keep(i + c, v[c])) f(i + c, v[c]);
    }
  }
  for (; kCompact && mask; mask &= mask - 1) {
    const int e = __ffs(mask) - 1;
    const int i = i0 + 4 * (e >> 2) * kThreads + (e & 3);
    f(i, __ldg(x + i));  // an L1 hit: this thread has just loaded it
  }
}

// Calls keep(i, x[i]) for i in [begin, end), then f(i, x[i]) where it held; each thread walks chunks of
// kUnroll 16-byte loads, all in flight at once.
template <bool kCompact, int kUnroll = 4, typename K, typename F>
__device__ __forceinline__ void for_each_kept(const float* __restrict__ x, int begin, int end, K&& keep, F&& f) {
  const int n = end - begin;
  const float* p = x + begin;
  const int head = min(n, static_cast<int>(((16 - (reinterpret_cast<uintptr_t>(p) & 15)) & 15) >> 2));
  if (static_cast<int>(threadIdx.x) < head && keep(begin + threadIdx.x, p[threadIdx.x])) f(begin + threadIdx.x, p[threadIdx.x]);
  const float4* p4 = reinterpret_cast<const float4*>(p + head);
  const int n4 = (n - head) >> 2, base = begin + head;
  int j = threadIdx.x;
  for (; j + (kUnroll - 1) * kThreads < n4; j += kUnroll * kThreads) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) q[u] = __ldg(p4 + j + u * kThreads);
    visit_chunk<kCompact>(q, base + 4 * j, x, keep, f);
  }
  for (; j < n4; j += kThreads) {
    const float4 q[1] = {__ldg(p4 + j)};
    visit_chunk<kCompact>(q, base + 4 * j, x, keep, f);
  }
  const int tail = head + 4 * n4 + threadIdx.x;
  if (tail < n && keep(begin + tail, p[tail])) f(begin + tail, p[tail]);
}

template <typename F>
__device__ __forceinline__ void for_each_logit(const Row& r, F&& f) {
  for_each_kept<false>(r.x, r.begin, r.end, [](int, float) { return true; }, f);
}

// ---- reductions; each ends with a barrier so its shared slots can be reused at once ----

__device__ void warp_merge(Partial& p) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    argmax_merge(p.v, p.i, __shfl_xor_sync(kFull, p.v, o), __shfl_xor_sync(kFull, p.i, o));
    p.a += __shfl_xor_sync(kFull, p.a, o);
  }
}

// Row-wide argmax (value, lowest index) of v and sum of a, over this block, then over the cluster's blocks
// through distributed shared memory. Exchange slots alternate between calls: a block can be at most one
// cluster barrier ahead of another, so it never overwrites a slot another block may still be reading.
__device__ Partial row_reduce(Partial p, BlockState& s, const Row& r) {
  warp_merge(p);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    s.red_val[warp] = p.v;
    s.red_idx[warp] = p.i;
    s.red_u64[warp] = p.a;
  }
  const int parity = s.parity;
  __syncthreads();
  if (warp == 0) {
    p = lane < kWarps ? Partial{s.red_val[lane], s.red_idx[lane], s.red_u64[lane]} : Partial{-INFINITY, INT_MAX, 0};
    warp_merge(p);
    if (lane == 0) {
      s.out = p;
      if (r.C > 1) {
        s.exchange[parity] = p;
        s.parity = parity ^ 1;
      }
    }
  }
  if (r.C > 1) {
    cg::this_cluster().sync();
    if (warp == 0) {
      p = lane < r.C ? *cg::this_cluster().map_shared_rank(&s.exchange[parity], lane) : Partial{-INFINITY, INT_MAX, 0};
      warp_merge(p);
      if (lane == 0) s.out = p;
    }
  }
  __syncthreads();
  p = s.out;
  __syncthreads();
  return p;
}

// Sum over this block only (for values every block already holds row-wide).
__device__ uint64_t block_sum(uint64_t v, BlockState& s) {
  const Row local{nullptr, 0, 0, 0.f, 0.f, 0.f, 0, 1};
  return row_reduce(Partial{-INFINITY, INT_MAX, v}, s, local).a;
}

__device__ void cluster_barrier(const Row& r) {
  if (r.C > 1) cg::this_cluster().sync();
  else __syncthreads();
}

// Sum of `v` over the threads before this one.
__device__ uint64_t block_exclusive_scan(uint64_t v, BlockState& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint64_t incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint64_t t = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl += t;
  }
  if (lane == 31) s.red_u64[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    uint64_t w = lane < kWarps ? s.red_u64[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint64_t t = __shfl_up_sync(kFull, w, o);
      if (lane >= o) w += t;
    }
    if (lane < kWarps) s.red_u64[lane] = w;
  }
  __syncthreads();
  const uint64_t out = (warp ? s.red_u64[warp - 1] : 0) + incl - v;
  __syncthreads();
  return out;
}

// The first i < n where before + val(0) + … + val(i) ≥ target (n if none), and in *before_i the total
// before it. Thread t owns items [t·kPer, t·kPer + kPer).
template <int kPer, typename Val>
__device__ int block_first_reaching(int n, Val val, uint64_t before, uint64_t target, BlockState& s, uint64_t* before_i) {
  if (threadIdx.x == 0) s.first = INT_MAX;
  const int base = threadIdx.x * kPer;
  uint64_t v[kPer];
  uint64_t local = 0;
#pragma unroll
  for (int p = 0; p < kPer; ++p) {
    v[p] = base + p < n ? val(base + p) : 0;
    local += v[p];
  }
  uint64_t run = before + block_exclusive_scan(local, s);  // its barriers publish s.first
  int found = INT_MAX;
  uint64_t found_before = 0;
#pragma unroll
  for (int p = 0; p < kPer; ++p) {
    if (found == INT_MAX && base + p < n && run + v[p] >= target) {
      found = base + p;
      found_before = run;
    }
    run += v[p];
  }
  if (found != INT_MAX) atomicMin(&s.first, found);
  __syncthreads();
  const int first = s.first;
  if (found == first) s.before = found_before;  // one thread: the index ranges are disjoint
  __syncthreads();
  *before_i = s.before;
  __syncthreads();
  return first == INT_MAX ? n : first;
}

}  // namespace
}  // namespace kt::cuda

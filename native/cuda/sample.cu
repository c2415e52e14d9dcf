// Sampling on the device: one block per row of logits [B, V] draws one token id per row with the CPU
// sampler's semantics (src/engine/sampler.ts), so a step reads back B int32 ids instead of B·V floats.
// Capturable in a CUDA graph: no host sync, no allocation that depends on data; thresholds live on the device.
//
// A row, in passes over its logits (the first from memory, the later ones mostly from L2):
// 1. max: the largest logit m and its lowest index. Greedy rows (T < 1e-5, or top-k 1) stop here.
// 2. histogram (only with top-k or top-p): tokens binned by their gap m − x, kBinsPerUnit bins per unit of
//    logit (per unit of z = x/T when T > 1); a count and the mass Σ exp(z − z_max) per bin. Masses are
//    2^-40 fixed point in integers, so sums do not depend on the order atomics land in and a draw is a
//    deterministic function of (seed, counter, logits). Bins follow the logits' order, so every truncation
//    keeps whole bins plus the top part of one boundary bin.
// 3. a boundary bin's tokens are gathered into shared memory and sorted (up to kCap of them; a bigger bin,
//    thousands of tokens within 1/32 of a logit, takes a radix select over the logit bits, one pass per byte).
//    Top-k, then top-p over the top-k set's mass, each give a threshold: every token ≥ it is kept, so
//    tokens tied with the threshold are all kept (a set may then exceed k, or top-p's smallest mass).
// 4. draw: Gumbel-max, argmax over kept tokens of z_i − log(−log u_i), u from a counter-based hash of
//    (seed, counter, token index): an exact draw from the renormalised kept set with no sort and no sum.
//    Min-p (p ≥ minP·p_max, i.e. z_max − z ≤ −ln minP) is tested per token here.
#include <climits>
#include <cstdint>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/device_tensor.h"

namespace kt::cuda {

void sample(const DeviceTensor& logits, const DeviceTensor& params, const DeviceTensor& seeds, DeviceTensor& out);

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kBins = 2048;
constexpr float kBinsPerUnit = 32.f;
constexpr int kCap = 8192;  // tokens a boundary bin may hold to be sorted in shared memory
constexpr int kRadix = 256;
constexpr float kGreedyTemperature = 1e-5f;  // as sampler.ts (vLLM's epsilon)
constexpr float kMassScale = 1099511627776.f;  // 2^40: Σ over 2^21 tokens of weights ≤ 1 stays below 2^61
constexpr float kMassCut = 29.f;              // e^-29 · 2^40 < 0.5: farther tokens weigh 0
// Top-p keeps a token while the mass before it is below topP·Z·(1 − 1e-6), as sampler.ts: float logits of
// a probability exactly on the boundary must not pull in the next token.
constexpr double kTopPRelTolerance = 1e-6;
// u = (h + ε)/2^64 as a float in [2^-64, 1 − 2^-24], so the Gumbel noise g lies in [−2.81, 44.37]: the max
// token scores at least −2.81 and is always kept, so a token with z_max − z > 48 can never win.
constexpr float kNeverWins = 48.f;
constexpr float kLn2 = 0.69314718f;

// Dynamic shared memory: sorted boundary-bin tokens, the bin histograms, the radix histogram.
constexpr size_t kSortedBytes = kCap * sizeof(uint64_t);
constexpr size_t kMassBytes = kBins * sizeof(uint64_t);
constexpr size_t kCountBytes = kBins * sizeof(uint32_t);
constexpr size_t kRadixBytes = kRadix * sizeof(uint64_t);
constexpr size_t kSharedBytes = kSortedBytes + kMassBytes + kCountBytes + kRadixBytes;

struct Scratch {
  uint64_t* sorted;  // (key << 32 | ~index) of a gathered bin, most likely first
  uint64_t* mass;
  uint32_t* count;
  uint64_t* radix;
};

struct BlockState {
  float red_val[kWarps];
  int red_idx[kWarps];
  uint64_t red_u64[kWarps];
  float m;
  int argmax;
  uint64_t total;
  int first;
  uint64_t before;
  uint32_t gathered;
  int sorted_bin;  // the bin whose tokens `sorted` holds, or -1
};

// What one row's passes share: the row, its max, and how gaps map to bins and weights.
struct Row {
  const float* x;
  int V;
  float m;
  float inv_t;
  float bin_scale;
};

// Order-preserving map of a float's bits to an unsigned key; NaN → 0, below every number (never kept),
// −0 → +0 so that equal logits have equal keys.
__device__ __forceinline__ uint32_t key_of(float v) {
  if (v != v) return 0;
  const uint32_t u = v == 0.f ? 0u : __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float value_of(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

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

__device__ __forceinline__ uint64_t token_hash(uint64_t key, int i) {
  return mix64(key + (static_cast<uint64_t>(i) + 1) * 0x9e3779b97f4a7c15ull);
}

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

// Calls f(i, x[i]) for every i, each thread in ascending i, with 16-byte loads several in flight.
template <typename F>
__device__ __forceinline__ void for_each_logit(const float* __restrict__ x, int V, F&& f) {
  const int head = min(V, static_cast<int>(((16 - (reinterpret_cast<uintptr_t>(x) & 15)) & 15) >> 2));
  if (static_cast<int>(threadIdx.x) < head) f(threadIdx.x, x[threadIdx.x]);
  const float4* x4 = reinterpret_cast<const float4*>(x + head);
  const int n4 = (V - head) >> 2;
  constexpr int kUnroll = 4;
  int j = threadIdx.x;
  for (; j + (kUnroll - 1) * kThreads < n4; j += kUnroll * kThreads) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) q[u] = __ldg(x4 + j + u * kThreads);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = head + 4 * (j + u * kThreads);
      f(i, q[u].x);
      f(i + 1, q[u].y);
      f(i + 2, q[u].z);
      f(i + 3, q[u].w);
    }
  }
  for (; j < n4; j += kThreads) {
    const float4 q = __ldg(x4 + j);
    const int i = head + 4 * j;
    f(i, q.x);
    f(i + 1, q.y);
    f(i + 2, q.z);
    f(i + 3, q.w);
  }
  const int tail = head + 4 * n4 + threadIdx.x;
  if (tail < V) f(tail, x[tail]);
}

// ---- block-wide reductions; each ends with a barrier so the shared slots can be reused at once ----

__device__ void block_argmax(float v, int i, BlockState& s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) argmax_merge(v, i, __shfl_xor_sync(kFull, v, o), __shfl_xor_sync(kFull, i, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    s.red_val[warp] = v;
    s.red_idx[warp] = i;
  }
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? s.red_val[lane] : -INFINITY;
    i = lane < kWarps ? s.red_idx[lane] : INT_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) argmax_merge(v, i, __shfl_xor_sync(kFull, v, o), __shfl_xor_sync(kFull, i, o));
    if (lane == 0) {
      s.m = v;
      s.argmax = i;
    }
  }
  __syncthreads();
}

__device__ uint64_t block_sum(uint64_t v, BlockState& s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s.red_u64[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? s.red_u64[lane] : 0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
    if (lane == 0) s.total = v;
  }
  __syncthreads();
  const uint64_t total = s.total;
  __syncthreads();
  return total;
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

// ---- boundary bins ----

// Gathers the tokens of bin b (count known ≤ kCap) and sorts them, most likely first (lower id among ties).
__device__ void gather_sorted(const Row& r, int b, int count, const Scratch& sc, BlockState& s) {
  if (threadIdx.x == 0) s.gathered = 0;
  __syncthreads();
  for_each_logit(r.x, r.V, [&](int i, float v) {
    if (v == v && bin_of(r, v) == b) {
      const uint32_t slot = atomicAdd(&s.gathered, 1u);
      if (slot < kCap) sc.sorted[slot] = (static_cast<uint64_t>(key_of(v)) << 32) | static_cast<uint32_t>(~i);
    }
  });
  int size = 2;
  while (size < count) size <<= 1;
  __syncthreads();
  for (int j = count + threadIdx.x; j < size; j += kThreads) sc.sorted[j] = 0;  // padding sorts last
  __syncthreads();
  // Bitonic sort, descending: the entries are distinct (the index is in the low word), so the order is unique.
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < size; i += kThreads) {
        const int l = i ^ j;
        if (l > i) {
          const uint64_t a = sc.sorted[i], c = sc.sorted[l];
          if (((i & k) == 0) ? (a < c) : (a > c)) {
            sc.sorted[i] = c;
            sc.sorted[l] = a;
          }
        }
      }
      __syncthreads();
    }
  }
  if (threadIdx.x == 0) s.sorted_bin = b;
  __syncthreads();
}

// Radix select over the logit bits for a bin too big to sort: kRadix-way histograms of count or mass of the
// candidates (bin b, key ≥ floor) whose higher bytes match the prefix so far, one pass per byte.
__device__ uint32_t radix_select(const Row& r, int b, uint32_t floor, bool by_mass, uint64_t before, uint64_t target, const Scratch& sc,
                                 BlockState& s) {
  uint32_t prefix = 0, mask = 0;
  const int lane = threadIdx.x & 31;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < kRadix; d += kThreads) sc.radix[d] = 0;
    __syncthreads();
    // Block-uniform trip count, so whole warps meet at __match_any_sync.
    for (int i0 = 0; i0 < r.V; i0 += kThreads) {
      const int i = i0 + threadIdx.x;
      const float v = i < r.V ? r.x[i] : __int_as_float(0x7fffffff);
      const uint32_t key = key_of(v);
      const bool cand = key != 0 && key >= floor && (key & mask) == prefix && bin_of(r, v) == b;
      const uint32_t digit = (key >> shift) & (kRadix - 1);
      if (by_mass) {
        if (cand) {
          const uint64_t w = mass_of(r, v);
          if (w) atomic_add_u64(&sc.radix[digit], w);
        }
      } else {
        // Candidates crowd into few digits (a bin spans a narrow range of logits): one atomic per digit per warp.
        const unsigned peers = __match_any_sync(kFull, cand ? digit : 0xffffffffu);
        if (cand && lane == __ffs(peers) - 1) atomic_add_u64(&sc.radix[digit], __popc(peers));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int d = kRadix - 1;
      uint64_t run = before;
      for (; d > 0 && run + sc.radix[d] < target; --d) run += sc.radix[d];
      s.first = d;
      s.before = run;
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(s.first) << shift;
    mask |= static_cast<uint32_t>(kRadix - 1) << shift;
    before = s.before;
    __syncthreads();
  }
  return prefix;
}

__device__ __forceinline__ uint64_t sorted_weight(const Row& r, const Scratch& sc, int j, uint32_t floor, bool by_mass) {
  const uint32_t key = static_cast<uint32_t>(sc.sorted[j] >> 32);
  if (key < floor) return 0;
  return by_mass ? mass_of(r, value_of(key)) : 1;
}

// The key of the token in bin b (among keys ≥ floor) where the running count or mass, from `before`, in
// descending order first reaches target: the threshold (everything ≥ it is kept).
__device__ uint32_t resolve_threshold(const Row& r, int b, uint32_t floor, bool by_mass, uint64_t before, uint64_t target, const Scratch& sc,
                                      BlockState& s) {
  const int count = static_cast<int>(sc.count[b]);
  if (count > kCap) return radix_select(r, b, floor, by_mass, before, target, sc, s);
  if (s.sorted_bin != b) gather_sorted(r, b, count, sc, s);
  uint64_t unused;
  int j = block_first_reaching<kCap / kThreads>(
      count, [&](int j) { return sorted_weight(r, sc, j, floor, by_mass); }, before, target, s, &unused);
  if (j >= count) j = 0;  // unreachable: the target was met inside this bin
  return static_cast<uint32_t>(sc.sorted[j] >> 32);
}

// Mass of bin b's tokens with key ≥ floor.
__device__ uint64_t bin_mass_from(const Row& r, int b, uint32_t floor, const Scratch& sc, BlockState& s) {
  uint64_t local = 0;
  if (s.sorted_bin == b) {
    for (int j = threadIdx.x; j < static_cast<int>(sc.count[b]); j += kThreads) local += sorted_weight(r, sc, j, floor, true);
  } else {
    for_each_logit(r.x, r.V, [&](int, float v) {
      if (v == v && key_of(v) >= floor && bin_of(r, v) == b) local += mass_of(r, v);
    });
  }
  return block_sum(local, s);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int V, const float* __restrict__ params,
                                                          const int32_t* __restrict__ seeds, int32_t* __restrict__ out) {
  extern __shared__ uint64_t dyn[];
  const Scratch sc{dyn, dyn + kCap, reinterpret_cast<uint32_t*>(dyn + kCap + kBins), dyn + kCap + kBins + kBins / 2};
  __shared__ BlockState s;
  const int row = blockIdx.x;
  const float* x = logits + static_cast<int64_t>(row) * V;
  const float temperature = params[row * 4], top_k = params[row * 4 + 1], top_p = params[row * 4 + 2], min_p = params[row * 4 + 3];

  // 1. max and argmax; the count of non-NaN logits gives the last bin's count later.
  float best = -INFINITY;
  int best_i = INT_MAX;
  uint32_t valid = 0;
  for_each_logit(x, V, [&](int i, float v) {
    valid += v == v;
    argmax_merge(best, best_i, v, i);
  });
  const uint64_t n_valid = block_sum(valid, s);
  block_argmax(best, best_i, s);
  const float m = s.m;
  const int argmax = s.argmax;
  const bool greedy = !(temperature >= kGreedyTemperature) || (top_k >= 1.f && top_k < 2.f);
  if (greedy || !(m > -INFINITY) || m == INFINITY) {
    // All −inf or NaN: nothing to draw from, token 0 (as sampler.ts). +inf holds all the mass: its first index.
    if (threadIdx.x == 0) out[row] = m > -INFINITY ? argmax : 0;
    return;
  }

  Row r{x, V, m, 1.f / temperature, kBinsPerUnit / fmaxf(temperature, 1.f)};
  const bool use_k = top_k >= 2.f && top_k < static_cast<float>(V);
  const bool use_p = top_p < 1.f;
  // Kept: bins < keep_bin, and in bin keep_bin the keys ≥ thr.
  int keep_bin = kBins;
  uint32_t thr = 1;
  if (use_k || use_p) {
    // 2. histogram
    if (threadIdx.x == 0) s.sorted_bin = -1;
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      sc.count[b] = 0;
      sc.mass[b] = 0;
    }
    __syncthreads();
    for_each_logit(x, V, [&](int, float v) {
      if (!(v == v)) return;
      const int b = bin_of(r, v);
      if (b == kBins - 1) return;  // counted below; such a gap is ≥ 64 in z, so its weight is 0
      atomicAdd(&sc.count[b], 1u);
      if (use_p) {
        const uint64_t w = mass_of(r, v);
        if (w) atomic_add_u64(&sc.mass[b], w);
      }
    });
    __syncthreads();
    uint64_t counted = 0;
    for (int b = threadIdx.x; b < kBins - 1; b += kThreads) counted += sc.count[b];
    counted = block_sum(counted, s);
    if (threadIdx.x == 0) sc.count[kBins - 1] = static_cast<uint32_t>(n_valid - counted);
    __syncthreads();

    // 3a. top-k: the bin where the count reaches k, then the k-th largest key in it (all of it if it fits).
    if (use_k) {
      const uint64_t k = static_cast<uint64_t>(top_k);
      uint64_t before;
      const int b = block_first_reaching<kBins / kThreads>(
          kBins, [&](int i) { return static_cast<uint64_t>(sc.count[i]); }, 0, k, s, &before);
      if (b < kBins) {  // else fewer than k numbers: top-k keeps them all
        keep_bin = b;
        if (before + sc.count[b] != k) thr = resolve_threshold(r, b, 1, false, before, k, sc, s);
      }
    }
    // 3b. top-p over the top-k set: Z is its mass; the bin where the mass reaches topP·Z, then the key in it.
    if (use_p) {
      const uint64_t partial = keep_bin < kBins ? (thr == 1 ? sc.mass[keep_bin] : bin_mass_from(r, keep_bin, thr, sc, s)) : 0;
      const int kb = keep_bin;
      auto kept_mass = [&](int i) { return i < kb ? sc.mass[i] : i == kb ? partial : 0ull; };
      uint64_t z = 0;
      for (int b = threadIdx.x; b < kBins; b += kThreads) z += kept_mass(b);
      z = block_sum(z, s);
      const uint64_t target = static_cast<uint64_t>(ceil(static_cast<double>(z) * static_cast<double>(top_p) * (1.0 - kTopPRelTolerance)));
      uint64_t before;
      const int b = block_first_reaching<kBins / kThreads>(kBins, kept_mass, 0, target, s, &before);
      if (b < kBins) {
        thr = resolve_threshold(r, b, b == keep_bin ? thr : 1, true, before, target, sc, s);
        keep_bin = b;
      }
    }
  }

  // 4. draw. Every thread starts from the max token's score (it is always kept): a lower bound on the
  // winner's, below which a token is skipped once its noise's upper bound says it cannot reach it.
  const float dcut = min_p > 0.f ? fmaxf(-logf(min_p), 0.f) : INFINITY;
  const uint64_t key = row_key(seeds[row * 2], seeds[row * 2 + 1]);
  best = gumbel(token_hash(key, argmax));
  best_i = argmax;
  for_each_logit(x, V, [&](int i, float v) {
    const float d = dist_of(r, v);
    if (!(d <= dcut) || d > kNeverWins) return;  // NaN, min-p, or too far to win
    if (keep_bin < kBins) {
      const int b = bin_of(r, v);
      if (b > keep_bin || (b == keep_bin && key_of(v) < thr)) return;
    }
    const uint64_t h = token_hash(key, i);
    if (gumbel_bound(h) - d < best) return;
    argmax_merge(best, best_i, gumbel(h) - d, i);
  });
  block_argmax(best, best_i, s);
  if (threadIdx.x == 0) out[row] = s.argmax;
}

}  // namespace

void sample(const DeviceTensor& logits, const DeviceTensor& params, const DeviceTensor& seeds, DeviceTensor& out) {
  const char* op = "sample";
  check(logits.dtype == DType::F32 && logits.shape.size() == 2, op, "logits must be F32 [B, V], got " + logits.describe());
  const int64_t B = logits.shape[0], V = logits.shape[1];
  check(V >= 1 && V < (int64_t{1} << 31), op, "vocabulary size " + std::to_string(V) + " outside 1..2^31-1");
  check(params.dtype == DType::F32 && params.shape == std::vector<int64_t>{B, 4}, op,
        "params must be F32 [" + std::to_string(B) + ", 4] (temperature, topK, topP, minP), got " + params.describe());
  check(seeds.dtype == DType::I32 && seeds.shape == std::vector<int64_t>{B, 2}, op,
        "seeds must be I32 [" + std::to_string(B) + ", 2] (seed, counter), got " + seeds.describe());
  check(out.dtype == DType::I32 && out.numel() == B, op, "out must be I32 [" + std::to_string(B) + "], got " + out.describe());
  if (B == 0) return;
  static bool configured = false;  // the one host-side setting; capture-safe (no stream work)
  if (!configured) {
    check_cuda(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSharedBytes)),
               "sample_kernel: shared memory");
    configured = true;
  }
  sample_kernel<<<static_cast<unsigned>(B), kThreads, kSharedBytes, stream()>>>(logits.as<float>(), static_cast<int>(V), params.as<float>(),
                                                                                seeds.as<int32_t>(), out.as<int32_t>());
  check_launch("sample_kernel");
}

}  // namespace kt::cuda

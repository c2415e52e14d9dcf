// Sampling on the device: each row of logits [B, V] draws one token id with the CPU sampler's semantics
// (src/engine/sampler.ts), so a step reads back B int32 ids instead of B·V floats. Capturable in a CUDA graph:
// no host sync, no allocation that depends on data; every threshold is found on the device.
//
// A row is sampled by a cluster of C blocks (C = 1 for large B; up to 8 SMs per row for small B), each block
// owning a slice of the row; partial results meet in distributed shared memory, so every block holds the same
// row-wide totals and takes the same decisions. In passes over the logits (mostly from L2 after the first):
// 1. max: the largest logit m and its lowest index. Greedy rows (T < 1e-5, or top-k 1) stop here.
// 2. histogram (only with top-k or top-p): tokens binned by their gap m − x, kBinsPerUnit bins per unit of
//    logit (per unit of z = x/T when T > 1); per bin a count (top-k) and the mass Σ exp(z − z_max) (top-p),
//    in 2^-40 fixed point: integer sums do not depend on the order atomics land in, so a draw is a
//    deterministic function of (seed, counter, logits). Bins follow the logits' order, so every truncation
//    keeps whole bins plus the top part of one boundary bin.
// 3. a boundary bin's tokens are gathered into shared memory and sorted (up to kCap of them; a bigger bin,
//    thousands of tokens within 1/32 of a logit, takes a radix select over the logit bits, one pass per byte).
//    Top-k, then top-p over the top-k set's mass, each give a threshold key: every token ≥ it is kept, so
//    tokens tied with a threshold are all kept (the set may then exceed k, or top-p's smallest set).
// 4. draw: Gumbel-max, argmax over kept tokens of z_i − log(−log u_i), u from a counter-based hash of
//    (seed, counter, token index): an exact draw from the renormalised kept set with no sort and no sum.
//    Min-p (p ≥ minP·p_max, i.e. z_max − z ≤ −ln minP) is tested per token here.
#include <cooperative_groups.h>

#include <climits>
#include <cstdint>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/device_tensor.h"
#include "cuda/ops.h"
#include "cuda/sample_block.cuh"

namespace kt::cuda {

namespace {

// ---- boundary bins ----

// Gathers the row's tokens of bin b into the first block's `sorted` (C > 1: through distributed shared
// memory), copies them to every block's own, and sorts them there, most likely first (lower id among ties).
// Returns their number; above kCap nothing is sorted (the caller takes the radix select).
__device__ int gather_sorted(const Row& r, int b, const Scratch& sc, BlockState& s) {
  cg::cluster_group cluster = cg::this_cluster();
  uint32_t* counter = r.C > 1 ? cluster.map_shared_rank(&s.gathered, 0) : &s.gathered;
  uint64_t* dst = r.C > 1 ? cluster.map_shared_rank(sc.sorted, 0) : sc.sorted;
  if (r.rank == 0 && threadIdx.x == 0) s.gathered = 0;
  cluster_barrier(r);
  for_each_kept<true>(
      r.x, r.begin, r.end, [&](int, float v) { return v == v && bin_of(r, v) == b; },
      [&](int i, float v) {
        const uint32_t slot = atomicAdd(counter, 1u);
        if (slot < kCap) dst[slot] = (static_cast<uint64_t>(key_of(v)) << 32) | static_cast<uint32_t>(~i);
      });
  cluster_barrier(r);
  const int count = static_cast<int>(*counter);
  if (count <= kCap) {
    if (r.rank != 0)
      for (int j = threadIdx.x; j < count; j += kThreads) sc.sorted[j] = dst[j];
    cluster_barrier(r);  // the first block sorts its copy in place only once the others have theirs
    int size = 2;
    while (size < count) size <<= 1;
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
  }
  if (threadIdx.x == 0) {  // read by all only after the barrier below
    s.sorted_bin = count <= kCap ? b : -1;
    s.sorted_n = count;
  }
  cluster_barrier(r);  // no block gathers again while another still reads the first block's tokens
  return count;
}

// Radix select over the logit bits for a bin too big to sort: kRadix-way histograms of count or mass of the
// candidates (bin b, key ≥ floor) whose higher bytes match the prefix so far, one pass per byte.
__device__ uint32_t radix_select(const Row& r, int b, uint32_t floor, bool by_mass, uint64_t before, uint64_t target, const Scratch& sc,
                                 BlockState& s) {
  uint32_t prefix = 0, mask = 0;
  const int lane = threadIdx.x & 31;
  uint64_t* own = r.C > 1 ? sc.own_radix : sc.radix;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < kRadix; d += kThreads) own[d] = 0;
    __syncthreads();
    // Block-uniform trip count, so whole warps meet at __match_any_sync.
    for (int i0 = r.begin; i0 < r.end; i0 += kThreads) {
      const int i = i0 + threadIdx.x;
      const float v = i < r.end ? r.x[i] : __int_as_float(0x7fffffff);
      const uint32_t key = key_of(v);
      const bool cand = key != 0 && key >= floor && (key & mask) == prefix && bin_of(r, v) == b;
      const uint32_t digit = (key >> shift) & (kRadix - 1);
      if (by_mass) {
        const uint64_t w = cand ? mass_of(r, v) : 0;
        if (w) atomic_add_u64(&own[digit], w);
      } else {
        // Candidates crowd into few digits (a bin spans a narrow range of logits): one atomic per digit per warp.
        const unsigned peers = __match_any_sync(kFull, cand ? digit : 0xffffffffu);
        if (cand && lane == __ffs(peers) - 1) atomic_add_u64(&own[digit], __popc(peers));
      }
    }
    cluster_barrier(r);
    if (r.C > 1) {
      for (int d = threadIdx.x; d < kRadix; d += kThreads) {
        uint64_t t = 0;
        for (int k = 0; k < r.C; ++k) t += cg::this_cluster().map_shared_rank(sc.own_radix, k)[d];
        sc.radix[d] = t;
      }
      __syncthreads();
    }
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
    cluster_barrier(r);  // every block has read the others' histograms before they are cleared
  }
  return prefix;
}

__device__ __forceinline__ uint64_t sorted_weight(const Row& r, const Scratch& sc, int j, uint32_t floor, bool by_mass) {
  const uint32_t key = static_cast<uint32_t>(sc.sorted[j] >> 32);
  if (key < floor) return 0;
  return by_mass ? mass_of(r, value_of(key)) : 1;
}

// The key of the token in bin b (among keys ≥ floor) where the running count or mass, from `before`, in
// descending order first reaches target: the threshold (everything ≥ it is kept). known_count: the bin's
// count where the histogram has it, else -1.
__device__ uint32_t resolve_threshold(const Row& r, int b, int known_count, uint32_t floor, bool by_mass, uint64_t before, uint64_t target,
                                      const Scratch& sc, BlockState& s) {
  if (s.sorted_bin != b && (known_count > kCap || gather_sorted(r, b, sc, s) > kCap))
    return radix_select(r, b, floor, by_mass, before, target, sc, s);
  const int count = s.sorted_n;
  uint64_t unused;
  int j = block_first_reaching<kCap / kThreads>(
      count, [&](int k) { return sorted_weight(r, sc, k, floor, by_mass); }, before, target, s, &unused);
  if (j >= count) j = 0;  // unreachable: the target was met inside this bin
  return static_cast<uint32_t>(sc.sorted[j] >> 32);
}

// Mass of bin b's tokens with key ≥ floor.
__device__ uint64_t bin_mass_from(const Row& r, int b, uint32_t floor, const Scratch& sc, BlockState& s) {
  uint64_t local = 0;
  if (s.sorted_bin == b) {
    for (int j = threadIdx.x; j < s.sorted_n; j += kThreads) local += sorted_weight(r, sc, j, floor, true);
    return block_sum(local, s);
  }
  for_each_logit(r, [&](int, float v) {
    if (v == v && key_of(v) >= floor && bin_of(r, v) == b) local += mass_of(r, v);
  });
  return row_reduce(Partial{-INFINITY, INT_MAX, local}, s, r).a;
}

// Step 2: the row-wide histogram in every block (counts with top-k, masses with top-p).
__device__ void histogram(const Row& r, bool counts, bool masses, uint64_t n_valid, const Scratch& sc, BlockState& s) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    sc.own_count[b] = 0;
    sc.own_mass[b] = 0;
  }
  __syncthreads();
  for_each_logit(r, [&](int, float v) {
    const int b = bin_of(r, v);
    if (v != v || b == kBins - 1) return;  // the last bin: see below
    if (counts) atomicAdd(&sc.own_count[b], 1u);
    if (masses) {
      const uint64_t w = mass_of(r, v);
      if (w) atomic_add_u64(&sc.own_mass[b], w);
    }
  });
  if (r.C > 1) {
    // Reduce-scatter then all-gather: block k sums bins [k·kBins/C, (k+1)·kBins/C) over the cluster and
    // writes the totals into every block.
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    const int per = kBins / r.C;
    for (int b = r.rank * per + threadIdx.x; b < (r.rank + 1) * per; b += kThreads) {
      uint32_t c = 0;
      uint64_t m = 0;
      for (int k = 0; k < r.C; ++k) {
        c += cluster.map_shared_rank(sc.own_count, k)[b];
        m += cluster.map_shared_rank(sc.own_mass, k)[b];
      }
      for (int k = 0; k < r.C; ++k) {
        cluster.map_shared_rank(sc.count, k)[b] = c;
        cluster.map_shared_rank(sc.mass, k)[b] = m;
      }
    }
    cluster.sync();
  } else {
    __syncthreads();
  }
  if (counts) {
    // The last bin (gaps ≥ 64 in z: weight 0) holds the rest; counting it directly would crowd one address.
    uint64_t counted = 0;
    for (int b = threadIdx.x; b < kBins - 1; b += kThreads) counted += sc.count[b];
    counted = block_sum(counted, s);
    if (threadIdx.x == 0) sc.count[kBins - 1] = static_cast<uint32_t>(n_valid - counted);
    __syncthreads();
  }
}

// Steps 2 and 3: the kept set as (keep_bin, thr): bins < keep_bin, and in bin keep_bin the keys ≥ thr.
__device__ void truncate(const Row& r, float top_k, float top_p, uint64_t n_valid, const Scratch& sc, BlockState& s, int& keep_bin, uint32_t& thr) {
  const bool use_k = top_k >= 2.f && top_k < static_cast<float>(n_valid);
  const bool use_p = top_p < 1.f;
  keep_bin = kBins;
  thr = 1;
  if (!use_k && !use_p) return;
  if (threadIdx.x == 0) s.sorted_bin = -1;
  histogram(r, use_k, use_p, n_valid, sc, s);
  // top-k: the bin where the count reaches k, then the k-th largest key in it (all of it if the bin fits).
  if (use_k) {
    const uint64_t k = static_cast<uint64_t>(top_k);
    uint64_t before;
    keep_bin = block_first_reaching<kBins / kThreads>(kBins, [&](int i) { return static_cast<uint64_t>(sc.count[i]); }, 0, k, s, &before);
    if (keep_bin < kBins && before + sc.count[keep_bin] != k) thr = resolve_threshold(r, keep_bin, static_cast<int>(sc.count[keep_bin]), 1, false, before, k, sc, s);
  }
  // top-p over the top-k set: Z is its mass; the bin where the mass reaches topP·Z, then the key in it.
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
      thr = resolve_threshold(r, b, use_k ? static_cast<int>(sc.count[b]) : -1, b == keep_bin ? thr : 1, true, before, target, sc, s);
      keep_bin = b;
    }
  }
}

// Grid: B·C blocks, clusters of C along x; block rank k of a cluster owns the k-th slice of its row.
__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int V, const float* __restrict__ params,
                                                          const int32_t* __restrict__ seeds, int32_t* __restrict__ out) {
  extern __shared__ uint64_t dyn[];
  __shared__ BlockState s;
  const int C = static_cast<int>(cg::this_cluster().num_blocks());
  const int row = blockIdx.x / C, rank = blockIdx.x % C;
  const Scratch sc{dyn + kSortedAt,
                   dyn + kMassAt,
                   reinterpret_cast<uint32_t*>(dyn + kCountAt),
                   C > 1 ? dyn + kOwnMassAt : dyn + kMassAt,
                   reinterpret_cast<uint32_t*>(C > 1 ? dyn + kOwnCountAt : dyn + kCountAt),
                   dyn + kRadixAt,
                   dyn + kOwnRadixAt};
  const float* x = logits + static_cast<int64_t>(row) * V;
  const float temperature = params[row * 4], top_k = params[row * 4 + 1], top_p = params[row * 4 + 2], min_p = params[row * 4 + 3];
  const int slice = ((V + C - 1) / C + 3) & ~3;  // multiples of 4 keep the slices' 16-byte loads aligned alike
  Row r{x, min(V, rank * slice), min(V, (rank + 1) * slice), 0.f, 0.f, 0.f, rank, C};
  if (threadIdx.x == 0) s.parity = 0;
  __syncthreads();

  // 1. max and argmax; the count of non-NaN logits gives the last bin's count later.
  Partial p{-INFINITY, INT_MAX, 0};
  uint32_t n_numbers = 0;
  for_each_logit(r, [&](int i, float v) {
    n_numbers += v == v;
    argmax_merge(p.v, p.i, v, i);
  });
  p.a = n_numbers;
  p = row_reduce(p, s, r);
  const float m = p.v;
  const int argmax = p.i;
  const uint64_t n_valid = p.a;
  const bool greedy = !(temperature >= kGreedyTemperature) || (top_k >= 1.f && top_k < 2.f);
  if (greedy || !(m > -INFINITY) || m == INFINITY) {
    // All −inf or NaN: nothing to draw from, token 0 (as sampler.ts). +inf holds all the mass: its first index.
    if (rank == 0 && threadIdx.x == 0) out[row] = m > -INFINITY ? argmax : 0;
  } else {
    r.m = m;
    r.inv_t = 1.f / temperature;
    r.bin_scale = kBinsPerUnit / fmaxf(temperature, 1.f);
    int keep_bin;
    uint32_t thr;
    truncate(r, top_k, top_p, n_valid, sc, s, keep_bin, thr);

    // 4. draw. Every thread starts from the max token's score (it is always kept): a lower bound on the
    // winner's, below which a token is skipped once its noise's upper bound says it cannot reach it.
    const float dcut = min_p > 0.f ? fmaxf(-logf(min_p), 0.f) : INFINITY;
    const uint64_t key = row_key(seeds[row * 2], seeds[row * 2 + 1]);
    p = Partial{gumbel(token_hash(key, argmax)), argmax, 0};
    auto keep = [&](int, float v) {
      const float d = dist_of(r, v);
      if (!(d <= dcut) || d > kNeverWins) return false;  // NaN, min-p, or too far to win
      if (keep_bin == kBins) return true;
      const int b = bin_of(r, v);
      return b < keep_bin || (b == keep_bin && key_of(v) >= thr);
    };
    auto draw = [&](int i, float v) {
      const uint64_t h = token_hash(key, i);
      const float d = dist_of(r, v);
      if (gumbel_bound(h) - d >= p.v) argmax_merge(p.v, p.i, gumbel(h) - d, i);
    };
    // A truncated distribution keeps few tokens: compact them; else nearly every one is hashed.
    if (keep_bin < kBins || dcut < kNeverWins) for_each_kept<true, 2>(x, r.begin, r.end, keep, draw);
    else for_each_kept<false, 2>(x, r.begin, r.end, keep, draw);
    p = row_reduce(p, s, r);
    if (rank == 0 && threadIdx.x == 0) out[row] = p.i;
  }
  if (C > 1) cg::this_cluster().sync();  // no block leaves while another may still read its shared memory
}

// A launch of `blocks` blocks in clusters of C (held in place: cfg points at attr).
struct ClusterLaunch {
  cudaLaunchAttribute attr = {};
  cudaLaunchConfig_t cfg = {};
  ClusterLaunch(unsigned blocks, int C, cudaStream_t stream) {
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = static_cast<unsigned>(C);
    attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = kSharedBytes;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;
};

// Blocks per row: enough to spread a small batch over the SMs, at most kMaxCluster, and only as many as the
// device can co-schedule (a cluster's blocks run on SMs of one GPC at once).
int cluster_size(int64_t B) {
  static int sms = 0, max_cluster = 0;
  if (!sms) {
    int dev = 0;
    check_cuda(cudaGetDevice(&dev), "sample: device");
    check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "sample: device");
    check_cuda(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSharedBytes)),
               "sample_kernel: shared memory");
    for (max_cluster = kMaxCluster; max_cluster > 1; max_cluster /= 2) {
      const ClusterLaunch launch(max_cluster, max_cluster, nullptr);
      int clusters = 0;
      if (cudaOccupancyMaxActiveClusters(&clusters, sample_kernel, &launch.cfg) == cudaSuccess && clusters > 0) break;
      cudaGetLastError();
    }
  }
  int c = 1;
  while (c < max_cluster && B * c * 2 <= sms) c *= 2;
  return c;
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
  check(B < (int64_t{1} << 28), op, "too many rows: " + std::to_string(B));
  if (B == 0) return;
  const int C = cluster_size(B);
  const ClusterLaunch launch(static_cast<unsigned>(B * C), C, stream());
  check_cuda(cudaLaunchKernelEx(&launch.cfg, sample_kernel, logits.as<float>(), static_cast<int>(V), params.as<float>(), seeds.as<int32_t>(),
                                out.as<int32_t>()),
             "sample_kernel");
  check_launch("sample_kernel");
}

}  // namespace kt::cuda

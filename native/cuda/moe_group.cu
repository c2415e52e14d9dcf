// The two ends of the expert FFN around its matmuls: grouping a batch's (token, slot) assignments
// by expert on the device (a stable counting sort in one block, then each expert's run cut into
// tiles), and the weighted combine of each token's k expert outputs in slot order (no atomics,
// so the sum is the same on every run).
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/moe.h"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

constexpr int kGroupWarps = 16;
constexpr int kGroupThreads = 32 * kGroupWarps;
constexpr int kMaxExperts = kGroupThreads;  // one thread per expert in the scans

// Exclusive prefix sums of (v.x, v.y) over the block's threads in thread order; *total gets the sums.
__device__ int2 block_exclusive_scan(int2 v, int2* total) {
  __shared__ int2 warp_sums[kGroupWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int2 inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int x = __shfl_up_sync(0xffffffffu, inc.x, o), y = __shfl_up_sync(0xffffffffu, inc.y, o);
    if (lane >= o) inc.x += x, inc.y += y;
  }
  if (lane == 31) warp_sums[warp] = inc;
  __syncthreads();
  int2 before = make_int2(0, 0), all = make_int2(0, 0);
  for (int w = 0; w < kGroupWarps; ++w) {
    const int2 s = warp_sums[w];
    if (w < warp) before.x += s.x, before.y += s.y;
    all.x += s.x, all.y += s.y;
  }
  *total = all;
  return make_int2(before.x + inc.x - v.x, before.y + inc.y - v.y);
}

// Warp w owns slots [w·chunk, (w + 1)·chunk): it counts its slots per expert, the counts become each
// warp's first position in the expert's run (experts in order, warps in order within an expert),
// and the warp then places its slots in order, peers with one expert ranked by __match_any_sync.
// So every expert's run lists its slots in increasing order, and the result is a function of ids alone.
__global__ void __launch_bounds__(kGroupThreads) moe_group_kernel(const int* __restrict__ ids, int slots, int E, int tile_rows,
                                                                  int* __restrict__ list, int4* __restrict__ tiles, int* __restrict__ count) {
  pdl_trigger();
  pdl_wait();
  __shared__ int table[kGroupWarps][kMaxExperts];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  for (int i = tid; i < kGroupWarps * kMaxExperts; i += kGroupThreads) table[i / kMaxExperts][i % kMaxExperts] = 0;
  __syncthreads();
  const int chunk = (slots + kGroupWarps - 1) / kGroupWarps;
  const int lo = min(slots, warp * chunk), hi = min(slots, lo + chunk);
  for (int a = lo + lane; a < hi; a += 32) {
    const int e = ids[a];
    if (e >= 0 && e < E) atomicAdd(&table[warp][e], 1);  // integer counts: the same whatever the order
  }
  __syncthreads();

  const int e = tid;  // this thread's expert (E ≤ kMaxExperts)
  int n = 0;
  if (e < E)
    for (int w = 0; w < kGroupWarps; ++w) {
      const int c = table[w][e];
      table[w][e] = n;
      n += c;
    }
  const int nt = (n + tile_rows - 1) / tile_rows;
  int2 total;
  const int2 start = block_exclusive_scan(make_int2(n, nt), &total);  // (list start, first tile) of expert e
  if (e < E)
    for (int w = 0; w < kGroupWarps; ++w) table[w][e] += start.x;
  for (int j = 0; j < nt; ++j) tiles[start.y + j] = make_int4(e, start.x + j * tile_rows, min(tile_rows, n - j * tile_rows), 0);
  if (tid == 0) *count = total.y;
  __syncthreads();

  const unsigned below = (1u << lane) - 1;
  for (int base = lo; base < hi; base += 32) {
    const int a = base + lane;
    int id = a < hi ? ids[a] : -1;
    const bool valid = id >= 0 && id < E;
    if (!valid) id = -1;
    const unsigned peers = __match_any_sync(0xffffffffu, id);
    const int rank = __popc(peers & below);
    if (valid) list[table[warp][id] + rank] = a;
    __syncwarp();
    if (valid && rank == 0) table[warp][id] += __popc(peers);
    __syncwarp();
  }
}

// Block (t, column block): 4 columns a thread as float4, the k slots added in order.
__global__ void __launch_bounds__(256) moe_combine_kernel(const float* __restrict__ y, const int* __restrict__ ids,
                                                          const float* __restrict__ w, int k, int64_t H, int E, float* __restrict__ out) {
  pdl_trigger();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * 256 + threadIdx.x;
  if (4 * i >= H) return;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int j = 0; j < k; ++j) {
    const int64_t slot = t * k + j;
    const int e = ids[slot];
    if (e < 0 || e >= E) continue;
    const float wt = w[slot];
    const float4 v = reinterpret_cast<const float4*>(y + slot * H)[i];
    acc.x = __fadd_rn(acc.x, __fmul_rn(wt, v.x));
    acc.y = __fadd_rn(acc.y, __fmul_rn(wt, v.y));
    acc.z = __fadd_rn(acc.z, __fmul_rn(wt, v.z));
    acc.w = __fadd_rn(acc.w, __fmul_rn(wt, v.w));
  }
  reinterpret_cast<float4*>(out + t * H)[i] = acc;
}

size_t align16(size_t n) { return (n + 15) / 16 * 16; }

}  // namespace

size_t moe_group_bytes(int64_t slots, int64_t E, int64_t tile_rows) {
  return align16(static_cast<size_t>(slots) * 4) + static_cast<size_t>(moe_max_tiles(slots, E, tile_rows)) * 16 + 16;
}

MoeTiles moe_group(const int* ids, int64_t slots, int64_t E, int tile_rows, void* scratch) {
  check(E >= 1 && E <= kMaxExperts, "moe_experts", "at most " + std::to_string(kMaxExperts) + " experts, got " + std::to_string(E));
  check(slots >= 1 && slots < (1LL << 30) && tile_rows >= 1, "moe_experts", "bad number of slots");
  uint8_t* base = static_cast<uint8_t*>(scratch);
  MoeTiles t;
  int* list = reinterpret_cast<int*>(base);
  int4* tiles = reinterpret_cast<int4*>(base + align16(static_cast<size_t>(slots) * 4));
  t.max_tiles = static_cast<int>(moe_max_tiles(slots, E, tile_rows));
  int* count = reinterpret_cast<int*>(tiles + t.max_tiles);
  launch_pdl("moe_group_kernel", moe_group_kernel, dim3(1), dim3(kGroupThreads), 0, ids, static_cast<int>(slots), static_cast<int>(E), tile_rows,
             list, tiles, count);
  t.list = list;
  t.tiles = tiles;
  t.count = count;
  t.ids = ids;
  return t;
}

void moe_combine(const float* y, const int* ids, const float* weights, int64_t T, int k, int64_t H, int64_t E, float* out) {
  check(H % 4 == 0, "moe_experts", "hidden size must be a multiple of 4");
  if (T == 0) return;
  const dim3 grid(static_cast<unsigned>(T), blocks_for(H / 4, 256));
  launch_pdl("moe_combine_kernel", moe_combine_kernel, grid, dim3(256), 0, y, ids, weights, k, H, static_cast<int>(E), out);
}

}  // namespace kt::cuda

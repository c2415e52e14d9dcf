// The expert FFN at decode: the dense GEMV's row-pair loop (gemv_rows.cuh) over the experts the
// routing chose, read from the 3-D expert tensors at a per-tile expert offset. Block (x, y): row
// block y of tiles x, x + gridDim.x, ...; a tile is one expert and up to MT of its slots (moe_group),
// so an expert that several tokens chose is read once for all of them; tiles run fastest in the grid,
// so the tiles of one expert (adjacent after grouping) or the same expert chosen by several slots
// (direct mode) run together and share its rows through L2. Quantized types take the q8 activations of the dense
// GEMV (int8 dots), so a slot's result equals that of a dense matmul of x with its expert's rows.
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/gemv_rows.cuh"
#include "cuda/moe.h"

namespace kt::cuda {

namespace {

using gemv_rows::kRows;
using gemv_rows::kThreads;

struct MoeGemvArgs {
  const uint8_t* w0;
  const uint8_t* w1;  // up (silu_mul), else unused
  int64_t row_bytes, expert_bytes;
  const float* x;
  ActQ act;
  MoeTiles tiles;
  int K, N, E, act_div;
  float* out;
};

// Tile `tile`: its expert (-1: none, nothing to do; -2: past the last tile), its first list index and
// rows; slot[m] the slots of rows m < MT (rows past the tile's repeat its last: computed, not stored).
template <int MT>
__device__ __forceinline__ int tile_of(const MoeGemvArgs& a, int tile, int (&slot)[MT], int* start, int* rows) {
  int expert;
  if (a.tiles.direct) {
    if (tile >= a.tiles.max_tiles) return -2;
    *start = tile;
    *rows = 1;
    expert = a.tiles.ids[tile];
  } else {
    if (tile >= *a.tiles.count) return -2;
    const int4 t = a.tiles.tiles[tile];
    expert = t.x, *start = t.y, *rows = t.z;
  }
  if (expert < 0 || expert >= a.E) return -1;
#pragma unroll
  for (int m = 0; m < MT; ++m) slot[m] = a.tiles.direct ? *start : a.tiles.list[*start + min(m, *rows - 1)];
  return expert;
}

// Block (x, y) takes row block y of tiles x, x + gridDim.x, ... (the grid is sized for the usual number
// of tiles, not the worst case, so that no block is launched only to find its tile empty).
// SiluMul: a warp pair is (gate row n, up row n) of the tile's expert and the store is silu(g) · u at
// n, as the dense gemv_group_kernel; else rows 2·pair and 2·pair + 1 of the one weight.
template <DType T, int MT, int W, bool Int8, bool SiluMul>
__global__ void __launch_bounds__(kThreads) moe_gemv_kernel(const MoeGemvArgs a) {
  pdl_trigger();
  pdl_wait();  // the tiles and activations come from the kernels before
  constexpr int kPairs = 8 / W;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pair = blockIdx.y * kPairs + warp / W;
#pragma unroll 1
  for (int tile = blockIdx.x;; tile += gridDim.x) {
    int slot[MT], start, rows;
    const int expert = tile_of<MT>(a, tile, slot, &start, &rows);
    if (expert == -2) break;  // block-uniform, as every test below
    if (expert < 0) continue;
    const uint8_t* we = a.w0 + expert * a.expert_bytes;
    const uint8_t *w0, *w1;
    bool live;
    if constexpr (SiluMul) {
      live = pair < a.N;
      w0 = we + static_cast<int64_t>(min(pair, a.N - 1)) * a.row_bytes;
      w1 = a.w1 + expert * a.expert_bytes + static_cast<int64_t>(min(pair, a.N - 1)) * a.row_bytes;
    } else {
      live = pair * kRows < a.N;
      w0 = we + static_cast<int64_t>(min(pair * kRows, a.N - 1)) * a.row_bytes;
      w1 = we + static_cast<int64_t>(min(pair * kRows + 1, a.N - 1)) * a.row_bytes;
    }
    int64_t xm[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xm[m] = slot[m] / a.act_div;
    float acc[kRows][MT];
    gemv_rows::zero(acc);
    // One unit of each row in flight (gemv_unroll 1, the dense default: fewer registers, more warps).
    if (live) gemv_rows::pair_sums<T, MT, W, Int8, 1>(w0, w1, a.x, a.act, a.K, xm, (warp % W) * 32 + lane, acc);
    const auto partial = gemv_rows::warp_partials<MT>(acc, warp, lane);
    // The store's slot is read again from the list: slot[] indexed by a run-time m would go to local memory.
    if constexpr (SiluMul) {
      if (threadIdx.x < kPairs * MT) {
        const int p = threadIdx.x / MT, m = threadIdx.x % MT;
        const int n = blockIdx.y * kPairs + p;
        if (n < a.N && m < rows) {
          float g = 0.f, u = 0.f;
#pragma unroll
          for (int j = 0; j < W; ++j) g += partial[p * W + j][0][m], u += partial[p * W + j][1][m];
          const int64_t sm = a.tiles.direct ? start : a.tiles.list[start + m];
          a.out[sm * a.N + n] = gemv_rows::silu_times(g, u);
        }
      }
    } else if (threadIdx.x < kPairs * kRows * MT) {
      const int p = threadIdx.x / (kRows * MT), r = (threadIdx.x / MT) % kRows, m = threadIdx.x % MT;
      const int n = (blockIdx.y * kPairs + p) * kRows + r;
      if (n < a.N && m < rows) {
        float v = 0.f;
#pragma unroll
        for (int j = 0; j < W; ++j) v += partial[p * W + j][r][m];
        const int64_t sm = a.tiles.direct ? start : a.tiles.list[start + m];
        a.out[sm * a.N + n] = v;
      }
    }
    __syncthreads();  // the partials are the next tile's
  }
}

// Pieces (units) of a row a thread of the pair's warps takes: warps a pair from the row's length
// alone (never from the batch, so a slot's sums are split the same way at every batch size).
template <DType T, bool Int8>
int warps_for_row(int64_t K) {
  if (options().gemv_warps) return options().gemv_warps;
  int64_t units;
  if constexpr (Int8) units = K / Dot<T>::kBlockElems * Dot<T>::kUnits;
  else units = K / Quant<T>::kPiece;
  return units >= 128 ? 4 : units >= 64 ? 2 : 1;
}

struct MoeGemvLaunch {
  MoeGemvArgs a;
  bool silu_mul;
  int tile_rows;
  unsigned grid_x;

  template <DType T, bool Int8, int MT, int W>
  void go() const {
    const int pairs = silu_mul ? a.N : (a.N + kRows - 1) / kRows;
    const dim3 grid(grid_x, blocks_for(pairs, 8 / W));
    check(grid.y < 65536, "moe_experts", "too many weight rows for the GEMV");
    if (silu_mul) launch_pdl("moe_gemv_kernel", moe_gemv_kernel<T, MT, W, Int8, true>, grid, dim3(kThreads), 0, a);
    else launch_pdl("moe_gemv_kernel", moe_gemv_kernel<T, MT, W, Int8, false>, grid, dim3(kThreads), 0, a);
  }

  template <DType T, bool Int8, int MT>
  void by_w() const {
    const int W = warps_for_row<T, Int8>(a.K);
    if (W == 1) go<T, Int8, MT, 1>();
    else if (W == 2) go<T, Int8, MT, 2>();
    else go<T, Int8, MT, 4>();
  }

  template <DType T, bool Int8>
  void run() const {
    switch (tile_rows) {
      case 1: return by_w<T, Int8, 1>();
      case 2: return by_w<T, Int8, 2>();
      case 4: return by_w<T, Int8, 4>();
      default: return by_w<T, Int8, 8>();
    }
  }
};

}  // namespace

bool moe_gemv_supported(DType t, int64_t K) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return rows_fit_pieces(t, K) && K < (1LL << 31);
    default: return false;
  }
}

void moe_gemv(const MoeWeight& w, const MoeWeight* up, const MoeTiles& tiles, int tile_rows, const float* x, const ActQ* act,
              int act_div, float* out) {
  check(moe_gemv_supported(w.type, w.K), "moe_experts", "no GEMV kernel for these expert weights");
  check(tile_rows == 1 || tile_rows == 2 || tile_rows == 4 || tile_rows == 8, "moe_experts", "GEMV tiles take 1, 2, 4 or 8 slots");
  check(!tiles.direct || tile_rows == 1, "moe_experts", "direct tiles are single slots");
  MoeGemvLaunch l{};
  l.a = MoeGemvArgs{w.w, up ? up->w : nullptr, w.row_bytes, w.expert_bytes, x, act ? *act : ActQ{}, tiles, w.K, w.N, w.E, act_div, out};
  l.silu_mul = up != nullptr;
  l.tile_rows = tile_rows;
  // Direct: one block column per slot. Grouped: one per expert, which covers every tile when each chosen
  // expert fits one tile (the usual case); more tiles (skewed routing) take further turns of the loop.
  l.grid_x = static_cast<unsigned>(tiles.direct ? tiles.max_tiles : std::min(tiles.max_tiles, w.E));
  switch (w.type) {
    case DType::F32: return l.run<DType::F32, false>();
    case DType::F16: return l.run<DType::F16, false>();
    case DType::BF16: return l.run<DType::BF16, false>();
    case DType::Q8_0: return l.run<DType::Q8_0, true>();
    case DType::Q4_K: return l.run<DType::Q4_K, true>();
    case DType::Q5_K: return l.run<DType::Q5_K, false>();  // no int8 dot: f32 over the q8 values (act->xf, in x)
    case DType::Q6_K: return l.run<DType::Q6_K, true>();
    default: return;
  }
}

}  // namespace kt::cuda

// The expert FFN at prefill: a grouped tensor-core matmul over each expert's tokens, for every
// weight type. Block (weight rows, tile): 128 staged weight rows of the tile's expert against the
// tile's 32 or 64 gathered slots (moe_group), K in steps of 64: the activations (bf16) are copied
// into shared memory by cp.async while each thread dequantizes its pieces of the weight rows
// (Quant<T>, exact f32 values as the CPU's) and rounds them once to bf16; then mma.sync m16n8k16
// with f32 sums. Weight row blocks run fastest in the grid, so the blocks of one tile share its
// activations through L2, and the tiles of one expert (adjacent after grouping) its weights.
// A slot's sums take the same steps whatever else is in its tile (fixed k order, no split-K, no
// atomics): its result does not depend on the batch.
#include <cuda_bf16.h>

#include <string>

#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/gemv_rows.cuh"
#include "cuda/mma_bf16.cuh"
#include "cuda/moe.h"

namespace kt::cuda {

namespace {

constexpr int kThreads = 256;    // 8 warps: 4 along the weight rows (32 each) × 2 along the slots
constexpr int kBN = 128;         // staged weight rows a block
constexpr int kBK = 64;          // k a step
constexpr int kLd = kBK + 8;     // bf16 a shared row: 144 bytes, so 8 rows' 16-byte pieces hit distinct banks

struct MoeMmaArgs {
  const uint8_t* w0;
  const uint8_t* w1;  // up (SiluMul), else unused
  int64_t row_bytes, expert_bytes;
  const __nv_bfloat16* x;
  MoeTiles tiles;
  int K, N, E, act_div;
  void* out;
};

// The 8 (4) bf16 of y at dst, 16 (8) bytes.
template <int P>
__device__ __forceinline__ void store_bf16(__nv_bfloat16* dst, const float* y) {
#pragma unroll
  for (int i = 0; i < P; i += 8) {
    if constexpr (P >= 8)
      *reinterpret_cast<uint4*>(dst + i) = make_uint4(pack_bf16(y[i], y[i + 1]), pack_bf16(y[i + 2], y[i + 3]), pack_bf16(y[i + 4], y[i + 5]),
                                                      pack_bf16(y[i + 6], y[i + 7]));
    else
      *reinterpret_cast<uint2*>(dst + i) = make_uint2(pack_bf16(y[i], y[i + 1]), pack_bf16(y[i + 2], y[i + 3]));
  }
}

// MF: n-tiles of 8 slots a warp (the tile has 16·MF slots). SiluMul: the staged rows 32q .. 32q + 15
// are gate rows n0 + 16q .. + 15 and rows 32q + 16 .. + 31 the same rows of up, so that a lane's two
// weight fragments hold gate and up of one row n and the epilogue writes silu(g) · u (as bf16: the
// down projection's input); else the staged rows are rows n0 .. n0 + 127 and the output f32.
template <DType T, int MF, bool SiluMul>
__global__ void __launch_bounds__(kThreads, 2) moe_mma_kernel(const MoeMmaArgs a) {
  using Q = Quant<T>;
  constexpr int BM = 16 * MF;
  constexpr int kPieces = kBK / Q::kPiece;                  // pieces of a weight row a step
  constexpr int kMine = kBN * kPieces / kThreads;           // pieces a thread dequantizes a step
  constexpr int kXMine = BM * (kBK / 8) / kThreads;         // 16-byte activation copies a thread issues a step
  static_assert(kThreads % kPieces == 0 && kMine >= 1 && kXMine >= 1, "tile shape");
  __shared__ __align__(16) __nv_bfloat16 ws[kBN][kLd];
  __shared__ __align__(16) __nv_bfloat16 xs[BM][kLd];

  pdl_trigger();
  pdl_wait();  // the tiles and activations come from the kernels before
  const int tile = blockIdx.y;
  if (tile >= *a.tiles.count) return;  // block-uniform: before any barrier
  const int4 td = a.tiles.tiles[tile];
  const int expert = td.x, start = td.y, rows = td.z;
  if (expert < 0 || expert >= a.E) return;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, c = lane % 4, wn = warp % 4, wm = warp / 4;

  // This thread's weight rows (rows past N repeat row N - 1: computed, not stored) and activation rows
  // (slots past the tile's repeat its last).
  const uint8_t* wrow[kMine];
  const int pp = tid % kPieces;
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = tid / kPieces + i * (kThreads / kPieces);
    int n;
    const uint8_t* base;
    if constexpr (SiluMul) n = blockIdx.x * (kBN / 2) + (r / 32) * 16 + r % 16, base = r % 32 < 16 ? a.w0 : a.w1;
    else n = blockIdx.x * kBN + r, base = a.w0;
    wrow[i] = base + expert * a.expert_bytes + static_cast<int64_t>(min(n, a.N - 1)) * a.row_bytes;
  }
  const __nv_bfloat16* xrow[kXMine];
  const int part = tid % 8;
#pragma unroll
  for (int i = 0; i < kXMine; ++i) {
    const int m = tid / 8 + i * (kThreads / 8);
    const int slot = a.tiles.list[start + min(m, rows - 1)];
    xrow[i] = a.x + static_cast<int64_t>(slot / a.act_div) * a.K + 8 * part;
  }

  float acc[2][MF][4];
#pragma unroll
  for (int f = 0; f < 2; ++f)
#pragma unroll
    for (int mf = 0; mf < MF; ++mf) acc[f][mf][0] = acc[f][mf][1] = acc[f][mf][2] = acc[f][mf][3] = 0.f;

  for (int k0 = 0; k0 < a.K; k0 += kBK) {
    // Activations first: their copies run while this thread dequantizes.
#pragma unroll
    for (int i = 0; i < kXMine; ++i) cp_async16(&xs[tid / 8 + i * (kThreads / 8)][8 * part], xrow[i] + k0);
    cp_async_commit();
    const int k = k0 + pp * Q::kPiece;
    const int64_t boff = static_cast<int64_t>(k / Q::kBlockElems) * Q::kBlockBytes;
    const int piece = (k % Q::kBlockElems) / Q::kPiece;
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      float y[Q::kPiece];
      Q::piece(wrow[i] + boff, piece, y);
      store_bf16<Q::kPiece>(&ws[tid / kPieces + i * (kThreads / kPieces)][pp * Q::kPiece], y);
    }
    cp_async_wait<0>();
    __syncthreads();  // the step's tiles staged by every thread
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) {
      uint32_t af[2][4], bf[MF][2];
#pragma unroll
      for (int f = 0; f < 2; ++f) ldmatrix_x4(af[f], &ws[wn * 32 + f * 16 + lane % 16][ks * 16 + (lane / 16) * 8]);
#pragma unroll
      for (int mf = 0; mf < MF; ++mf) ldmatrix_x2(bf[mf], &xs[wm * 8 * MF + mf * 8 + lane % 8][ks * 16 + ((lane / 8) % 2) * 8]);
#pragma unroll
      for (int f = 0; f < 2; ++f)
#pragma unroll
        for (int mf = 0; mf < MF; ++mf) mma_bf16(acc[f][mf], af[f][0], af[f][1], af[f][2], af[f][3], bf[mf][0], bf[mf][1]);
    }
    __syncthreads();  // every warp done with the tiles before the next step overwrites them
  }

  // acc[f][mf][i]: staged row wn·32 + 16f + g (+ 8 for i ≥ 2), slot wm·8·MF + 8mf + 2c + (i & 1) of the tile.
#pragma unroll
  for (int mf = 0; mf < MF; ++mf)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int m = wm * 8 * MF + mf * 8 + 2 * c + (i & 1);
      if (m >= rows) continue;
      const int64_t slot = a.tiles.list[start + m];
      const int r = g + (i >= 2 ? 8 : 0);
      if constexpr (SiluMul) {
        const int n = blockIdx.x * (kBN / 2) + wn * 16 + r;
        if (n < a.N)
          static_cast<__nv_bfloat16*>(a.out)[slot * a.N + n] = __float2bfloat16_rn(gemv_rows::silu_times(acc[0][mf][i], acc[1][mf][i]));
      } else {
#pragma unroll
        for (int f = 0; f < 2; ++f) {
          const int n = blockIdx.x * kBN + wn * 32 + f * 16 + r;
          if (n < a.N) static_cast<float*>(a.out)[slot * a.N + n] = acc[f][mf][i];
        }
      }
    }
}

struct MoeMmaLaunch {
  MoeMmaArgs a;
  bool silu_mul;
  int tile_rows;

  template <DType T, int MF>
  void go() const {
    const int per_block = silu_mul ? kBN / 2 : kBN;
    const dim3 grid(blocks_for(a.N, per_block), static_cast<unsigned>(a.tiles.max_tiles));
    if (silu_mul) launch_pdl("moe_mma_kernel", moe_mma_kernel<T, MF, true>, grid, dim3(kThreads), 0, a);
    else launch_pdl("moe_mma_kernel", moe_mma_kernel<T, MF, false>, grid, dim3(kThreads), 0, a);
  }

  template <DType T>
  void run() const {
    if (tile_rows == 32) go<T, 2>();
    else go<T, 4>();
  }
};

}  // namespace

bool moe_mma_supported(DType t, int64_t K) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return K % kBK == 0 && rows_fit_pieces(t, K) && K < (1LL << 31);
    default: return false;
  }
}

void moe_mma(const MoeWeight& w, const MoeWeight* up, const MoeTiles& tiles, int tile_rows, const void* xb, int act_div, void* out) {
  check(moe_mma_supported(w.type, w.K), "moe_experts", "no tensor-core kernel for these expert weights");
  check(tile_rows == 32 || tile_rows == 64, "moe_experts", "tensor-core tiles take 32 or 64 slots");
  check(!tiles.direct && tiles.max_tiles < 65536, "moe_experts", "too many tiles for the tensor-core kernel");
  MoeMmaLaunch l{};
  l.a = MoeMmaArgs{w.w, up ? up->w : nullptr, w.row_bytes, w.expert_bytes, static_cast<const __nv_bfloat16*>(xb), tiles, w.K, w.N, w.E,
                   act_div, out};
  l.silu_mul = up != nullptr;
  l.tile_rows = tile_rows;
  switch (w.type) {
    case DType::F32: return l.run<DType::F32>();
    case DType::F16: return l.run<DType::F16>();
    case DType::BF16: return l.run<DType::BF16>();
    case DType::Q8_0: return l.run<DType::Q8_0>();
    case DType::Q4_K: return l.run<DType::Q4_K>();
    case DType::Q5_K: return l.run<DType::Q5_K>();
    case DType::Q6_K: return l.run<DType::Q6_K>();
    default: return;
  }
}

}  // namespace kt::cuda

// The inner loop every GEMV kernel is written over (matmul_gemv.cu for dense weights, moe_gemv.cu
// for the selected experts of a 3-D expert tensor): the sums of a pair of weight rows against up to
// MT activation rows, taken from anywhere in the activations (rows in order for a dense matmul, the
// gathered tokens of one expert for MoE), and the per-warp partials those kernels add at the end.
#pragma once
#include <cstdint>

#include "cuda/dequant.cuh"
#include "cuda/pdl.cuh"
#include "cuda/quantize_act.h"

namespace kt::cuda::gemv_rows {

constexpr int kThreads = 256;  // 8 warps
constexpr int kRows = 2;       // weight rows per warp: each x value loaded feeds two rows

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Each warp's sums of its row pair, added over the W warps sharing the pair, in shared memory
// (partial[pair * W + j][r][m] for the pair's warps j), for the stores below.
template <int MT>
__device__ __forceinline__ float (*warp_partials(const float (&acc)[kRows][MT], int warp, int lane))[kRows][MT] {
  __shared__ float partial[8][kRows][MT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = warp_sum(acc[r][m]);
      if (lane == 0) partial[warp][r][m] = v;
    }
  __syncthreads();
  return partial;
}

// silu(g) · u with silu_mul.cu's rounding.
__device__ __forceinline__ float silu_times(float g, float u) { return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u); }

// Rows m0 .. m0 + MT - 1 of a dense activation matrix of M rows; rows past M repeat the last
// (computed, not stored).
template <int MT>
__device__ __forceinline__ void dense_rows(int m0, int M, int64_t (&xm)[MT]) {
#pragma unroll
  for (int m = 0; m < MT; ++m) xm[m] = min(m0 + m, M - 1);
}

// Sums of weight rows w0 and w1 against the MT activation rows xm[0..MT) (each row's sums do not
// depend on the others: a row computed beside other rows equals the row computed alone). Thread t
// (0 .. 32W - 1) of the pair's W warps takes pieces (units) t, t + 32W, ... of both rows. Int8: q8
// activations and int8 dots (Dot<T>), U units of each row in flight per step (1 needs fewer
// registers, so more warps fit an SM); else f32 x against weights dequantized in registers (Quant<T>).
template <DType T, int MT, int W, bool Int8, int U = 2>
__device__ __forceinline__ void pair_sums(const uint8_t* __restrict__ w0, const uint8_t* __restrict__ w1, const float* __restrict__ x,
                                          const ActQ& act, int K, const int64_t (&xm)[MT], int t, float (&acc)[kRows][MT]) {
  if constexpr (Int8) {
    using D = Dot<T>;
    const int units = K / D::kBlockElems * D::kUnits;
#pragma unroll U
    for (int p = t; p < units; p += 32 * W) {
      const int blk = p / D::kUnits, u = p % D::kUnits;
      const int64_t off = static_cast<int64_t>(blk) * D::kBlockBytes;
      const int8_t* xq[MT];
      float xd[MT], xs[MT];
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        xq[m] = act.q + xm[m] * K + static_cast<int64_t>(blk) * D::kBlockElems;
        xd[m] = __ldg(act.d + xm[m] * act.blocks + blk);
        xs[m] = act.s ? __ldg(act.s + xm[m] * act.blocks + blk) : 0.f;
      }
      D::template unit<MT>(w0 + off, u, xq, xd, xs, acc[0]);
      D::template unit<MT>(w1 + off, u, xq, xd, xs, acc[1]);
    }
  } else {
    using Q = Quant<T>;
    constexpr int kPiecesPerBlock = Q::kBlockElems / Q::kPiece;
    const int pieces = K / Q::kPiece;
    const float* xr[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xr[m] = x + xm[m] * K;
#pragma unroll 2
    for (int p = t; p < pieces; p += 32 * W) {
      const int64_t off = static_cast<int64_t>(p / kPiecesPerBlock) * Q::kBlockBytes;
      float y0[Q::kPiece], y1[Q::kPiece];
      Q::piece(w0 + off, p % kPiecesPerBlock, y0);
      Q::piece(w1 + off, p % kPiecesPerBlock, y1);
      const int k0 = p * Q::kPiece;
#pragma unroll
      for (int m = 0; m < MT; ++m) {
#pragma unroll
        for (int i = 0; i < Q::kPiece; i += 4) {
          const float4 xv = __ldg(reinterpret_cast<const float4*>(xr[m] + k0 + i));
          acc[0][m] += y0[i] * xv.x + y0[i + 1] * xv.y + y0[i + 2] * xv.z + y0[i + 3] * xv.w;
          acc[1][m] += y1[i] * xv.x + y1[i + 1] * xv.y + y1[i + 2] * xv.z + y1[i + 3] * xv.w;
        }
      }
    }
  }
}

// Asks L2 for rows [r0, r0 + rows) of w, clamped to N. Weights: no kernel writes them, so this
// may run before pdl_wait.
__device__ __forceinline__ void prefetch_rows(const uint8_t* w, int64_t row_bytes, int64_t r0, int rows, int N) {
  if (r0 < N) prefetch_l2(w + r0 * row_bytes, static_cast<uint32_t>(min(static_cast<int64_t>(rows), N - r0) * row_bytes));
}

template <int MT>
__device__ __forceinline__ void zero(float (&acc)[kRows][MT]) {
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;
}

// Weight types with an int8 dot kernel (Dot<T>) against q8 activations.
inline bool has_dot(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q4_K: case DType::Q6_K:
      return true;
    default: return false;
  }
}

inline bool plain_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace kt::cuda::gemv_rows

// Matmul for few activation rows (decode): one pass over the weights, memory-bound (each
// weight byte is read once per MT activation rows). Plain weights: f32 activations and sums.
// Quantized weights: as the CPU (and llama.cpp's mmvq), the activations are first quantized
// per row to the type's q8 format, then int8 dot products (dp4a) per block with float scales.
#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"
#include "cuda/quantize_act.h"

namespace kt::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps
constexpr int kRows = 2;       // weight rows per warp: each x value loaded feeds two rows

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The end of both kernels: each warp's sums of its row pair, added over the W warps sharing the
// pair, stored for rows below M and N.
template <int MT, int W>
__device__ __forceinline__ void store_rows(const float (&acc)[kRows][MT], int warp, int lane, int M, int N, int m0, float* __restrict__ out) {
  constexpr int kPairs = 8 / W;
  __shared__ float partial[8][kRows][MT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = warp_sum(acc[r][m]);
      if (lane == 0) partial[warp][r][m] = v;
    }
  __syncthreads();
  if (threadIdx.x < kPairs * kRows * MT) {
    const int pair = threadIdx.x / (kRows * MT), r = (threadIdx.x / MT) % kRows, m = threadIdx.x % MT;
    const int n = (blockIdx.x * kPairs + pair) * kRows + r;
    if (n < N && m0 + m < M) {
      float v = 0.f;
#pragma unroll
      for (int j = 0; j < W; ++j) v += partial[pair * W + j][r][m];
      out[static_cast<int64_t>(m0 + m) * N + n] = v;
    }
  }
}

// W warps share a pair of weight rows (splitting K), so a block does 8 / W pairs. Thread t
// (0 .. 32W - 1) of a pair takes pieces t, t + 32W, ... of both rows; activation rows
// MT · blockIdx.y ... + MT - 1. W is chosen on the host so that small N still fills the GPU.
template <DType T, int MT, int W>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const uint8_t* __restrict__ w, int64_t row_bytes,
                                                        const float* __restrict__ x, int M, int K, int N,
                                                        float* __restrict__ out) {
  using Q = Quant<T>;
  constexpr int kPiecesPerBlock = Q::kBlockElems / Q::kPiece;
  constexpr int kPairs = 8 / W;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * kPairs + warp / W) * kRows;
  const int t = (warp % W) * 32 + lane;
  const int m0 = blockIdx.y * MT;
  const int pieces = K / Q::kPiece;
  float acc[kRows][MT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;
  if (n0 < N) {
    const uint8_t* w0 = w + static_cast<int64_t>(n0) * row_bytes;
    const uint8_t* w1 = w + static_cast<int64_t>(min(n0 + 1, N - 1)) * row_bytes;  // odd N: row computed twice, stored once
    const float* xr[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xr[m] = x + static_cast<int64_t>(min(m0 + m, M - 1)) * K;  // rows past M: computed, not stored
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
  store_rows<MT, W>(acc, warp, lane, M, N, m0, out);
}


// The int8 version of gemv_kernel (same warp layout): thread t takes units t, t + 32W, ... of
// both weight rows against MT quantized activation rows.
template <DType T, int MT, int W>
__global__ void __launch_bounds__(kThreads) mmvq_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, ActQ act, int M, int K,
                                                        int N, float* __restrict__ out) {
  using D = Dot<T>;
  constexpr int kPairs = 8 / W;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * kPairs + warp / W) * kRows;
  const int t = (warp % W) * 32 + lane;
  const int m0 = blockIdx.y * MT;
  const int units = K / D::kBlockElems * D::kUnits;
  float acc[kRows][MT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;
  if (n0 < N) {
    const uint8_t* w0 = w + static_cast<int64_t>(n0) * row_bytes;
    const uint8_t* w1 = w + static_cast<int64_t>(min(n0 + 1, N - 1)) * row_bytes;  // odd N: row computed twice, stored once
    int64_t xm[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xm[m] = min(m0 + m, M - 1);  // rows past M: computed, not stored
#pragma unroll 2
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
  }
  store_rows<MT, W>(acc, warp, lane, M, N, m0, out);
}

bool has_dot(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q4_K: case DType::Q6_K:
      return true;
    default: return false;
  }
}

struct GemvLaunch {
  const void* w;
  int64_t row_bytes;
  const float* x;
  int64_t M, K, N;
  float* out;
  const ActQ* act;  // quantized activations (int8 kernels), else nullptr

  template <int MT, int W, DType T>
  void launch() const {
    const int64_t pairs = (N + kRows - 1) / kRows;
    const dim3 grid(blocks_for(pairs, 8 / W), static_cast<unsigned>((M + MT - 1) / MT));
    if constexpr (Dot<T>::kHas) {
      if (act) {
        mmvq_kernel<T, MT, W><<<grid, kThreads, 0, stream()>>>(static_cast<const uint8_t*>(w), row_bytes, *act, static_cast<int>(M),
                                                                static_cast<int>(K), static_cast<int>(N), out);
        check_launch("mmvq_kernel");
        return;
      }
    }
    gemv_kernel<T, MT, W><<<grid, kThreads, 0, stream()>>>(static_cast<const uint8_t*>(w), row_bytes, x, static_cast<int>(M),
                                                            static_cast<int>(K), static_cast<int>(N), out);
    check_launch("gemv_kernel");
  }

  // Warps per row pair, from sweeps on an H200 (notes/cuda.md): plain types stream best with
  // four warps on every shape, int8 Q8_0 too; other quantized ones with one warp where there
  // are enough pairs to fill the GPU (~16 warps per SM), more where there are not.
  template <int MT, DType T>
  void pick_w() const {
    const int64_t pairs = (N + kRows - 1) / kRows;
    const bool plain = T == DType::F32 || T == DType::F16 || T == DType::BF16;
    const int forced = options().gemv_warps;
    if (forced == 1) launch<MT, 1, T>();
    else if (forced == 2) launch<MT, 2, T>();
    else if (forced == 4 || plain) launch<MT, 4, T>();
    else if (T == DType::Q8_0 && act) launch<MT, 4, T>();
    else if (pairs >= 2048) launch<MT, 1, T>();
    else if (pairs >= 1024) launch<MT, 2, T>();
    else launch<MT, 4, T>();
  }

  template <DType T>
  void run() const {
    if (M <= 1) pick_w<1, T>();
    else if (M <= 2) pick_w<2, T>();
    else if (M <= 4) pick_w<4, T>();
    else pick_w<8, T>();  // more rows: grid.y walks them 8 at a time
  }
};

}  // namespace

void gemv(const void* w, DType wt, int64_t row_bytes, const float* x, int64_t M, int64_t K, int64_t N, float* out) {
  if (M <= 0 || N <= 0) return;
  check(M < 65535LL * 8 && N < (1LL << 31) && K < (1LL << 31), "matmul", "shape too large for the GEMV kernels");
  const bool plain = wt == DType::F32 || wt == DType::F16 || wt == DType::BF16;
  if (plain) {
    const GemvLaunch l{w, row_bytes, x, M, K, N, out, nullptr};
    check(dispatch_quant(wt, l), "matmul", "no CUDA kernel for this weight type");
    return;
  }
  // Quantized: activations to q8 first (freed in stream order after the launch that reads them).
  // Types without an int8 kernel (Q2_K, Q3_K, Q5_K) run the f32 kernel over the dequantized
  // q8 values, which equals the int8 result up to float rounding.
  const bool int8 = has_dot(wt);
  std::shared_ptr<void> storage;
  const ActQ act = quantize_activations(x, M, K, act_format(wt), !int8, &storage);
  const GemvLaunch l{w, row_bytes, int8 ? x : act.xf, M, K, N, out, int8 ? &act : nullptr};
  check(dispatch_quant(wt, l), "matmul", "no CUDA kernel for this weight type");
}

bool matmul_type_supported(DType wt, int64_t K) { return rows_fit_pieces(wt, K); }

int default_gemv_rows(DType wt) {
  // Plain weights: cuBLAS is as fast from M = 4 (notes/cuda.md). Q4_K/Q6_K: from M = 3 the
  // tensor-core kernel (matmul_mma.cu) wins (Q4_K layer of llama-3.1-8b, H200: GEMV 87 µs at M = 2,
  // 158 at M = 4; tensor cores ~135 µs for any M ≤ 8). Other int8 types have no tensor-core kernel:
  // up to 8 rows share one GEMV pass, far cheaper than dequantizing a layer for cuBLAS (~430 µs).
  if (wt == DType::Q4_K || wt == DType::Q6_K) return 2;
  return has_dot(wt) ? 8 : 2;
}

}  // namespace kt::cuda

// Weight rows dequantized into a scratch buffer (f32 or bf16) for the cuBLAS path of large
// M, and activations rounded to bf16 / f16 for the tensor cores.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

constexpr int kThreads = 128;  // pieces per block: a row of K = 4096 in 32-element pieces

__device__ __forceinline__ void store_piece(float* o, const float* y, int n) {
  for (int i = 0; i < n; i += 4) *reinterpret_cast<float4*>(o + i) = make_float4(y[i], y[i + 1], y[i + 2], y[i + 3]);
}
__device__ __forceinline__ uint32_t bf16x2(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&v);
}
// n is a multiple of 4: 8-byte stores, 16-byte ones where n allows.
__device__ __forceinline__ void store_piece(__nv_bfloat16* o, const float* y, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    *reinterpret_cast<uint4*>(o + i) = make_uint4(bf16x2(y[i], y[i + 1]), bf16x2(y[i + 2], y[i + 3]), bf16x2(y[i + 4], y[i + 5]), bf16x2(y[i + 6], y[i + 7]));
  for (; i < n; i += 4) *reinterpret_cast<uint2*>(o + i) = make_uint2(bf16x2(y[i], y[i + 1]), bf16x2(y[i + 2], y[i + 3]));
}

// One thread per piece, no loop: blockIdx.x is the row (2^31 rows allowed, so lm_head fits),
// blockIdx.y · kThreads + threadIdx.x the piece; consecutive threads take consecutive pieces.
// (v1 walked a grid-stride loop with 64-bit divisions per piece: ~1.6 TB/s on a Q4_K layer.)
template <DType T, typename Out>
__global__ void __launch_bounds__(kThreads) dequant_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, int K, Out* __restrict__ dst) {
  using Q = Quant<T>;
  constexpr int kPiecesPerBlock = Q::kBlockElems / Q::kPiece;
  const int p = blockIdx.y * kThreads + threadIdx.x;
  if (p >= K / Q::kPiece) return;
  const int64_t r = blockIdx.x;
  float y[Q::kPiece];
  Q::piece(w + r * row_bytes + static_cast<int64_t>(p / kPiecesPerBlock) * Q::kBlockBytes, p % kPiecesPerBlock, y);
  store_piece(dst + r * K + static_cast<int64_t>(p) * Q::kPiece, y, Q::kPiece);
}

template <typename Out>
struct DequantLaunch {
  const void* w;
  int64_t row_bytes, K, rows;
  Out* dst;

  template <DType T>
  void run() const {
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(blocks_for(K / Quant<T>::kPiece, kThreads)));
    dequant_kernel<T, Out><<<grid, kThreads, 0, stream()>>>(static_cast<const uint8_t*>(w), row_bytes, static_cast<int>(K), dst);
    check_launch("dequant_kernel");
  }
};

__global__ void to_bf16_kernel(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void to_f16_kernel(const float* __restrict__ src, __half* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}

unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 132 * 16)); }

}  // namespace

void dequantize_rows_f32(const void* w, DType wt, int64_t row_bytes, int64_t K, int64_t rows, float* dst) {
  if (rows <= 0) return;
  check(dispatch_quant(wt, DequantLaunch<float>{w, row_bytes, K, rows, dst}), "matmul", "no CUDA dequantizer for this weight type");
}

void dequantize_rows_bf16(const void* w, DType wt, int64_t row_bytes, int64_t K, int64_t rows, void* dst) {
  if (rows <= 0) return;
  const DequantLaunch<__nv_bfloat16> l{w, row_bytes, K, rows, static_cast<__nv_bfloat16*>(dst)};
  check(dispatch_quant(wt, l), "matmul", "no CUDA dequantizer for this weight type");
}

void convert_f32_to_bf16(const float* src, void* dst, int64_t n) {
  if (n <= 0) return;
  to_bf16_kernel<<<grid_for(n), kThreads, 0, stream()>>>(src, static_cast<__nv_bfloat16*>(dst), n);
  check_launch("to_bf16_kernel");
}

void convert_f32_to_f16(const float* src, void* dst, int64_t n) {
  if (n <= 0) return;
  to_f16_kernel<<<grid_for(n), kThreads, 0, stream()>>>(src, static_cast<__half*>(dst), n);
  check_launch("to_f16_kernel");
}

}  // namespace kt::cuda

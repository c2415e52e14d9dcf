// x · Wᵀ over GGML weight formats on the CPU: fused dequantize+dot per row for decode
// (M = 1), dequantized f32 panels reused across all rows of x for prefill (M > 1).
#pragma once
#include <cstdint>

#include "cpu/dtype.h"
#include "cpu/thread_pool.h"

namespace kt {

// out[m*N + n] = sum_k x[m*K + k] * W_n[k]; W is N rows of K elements of type wt, row n at
// w + n*row_bytes(wt, K). K must be a multiple of the block size. Multithreaded over N.
// Throws std::invalid_argument for an unsupported type or a K that is not a whole number of blocks.
void matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* out, ThreadPool& pool);
bool matmul_supported(DType wt);

namespace detail {

// Per-ISA kernels for one weight type, looked up once per matmul call.
struct RowKernels {
  // Dot product of x (K floats) with one W row of K elements.
  float (*dot)(const float* x, const void* w, int64_t K);
  // Dequantizes one W row of K elements into out.
  void (*dequant)(const void* w, float* out, int64_t K);
};

// out[m*ldo + j] = x_m · w_j for m < M, j < nw, where x_m = x + m*ldx and w_j = w + j*ldw (f32, K each).
using PanelGemm = void (*)(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K,
                           float* out, int64_t ldo);

// Each returns false (and leaves *k alone) where it has no kernel for t or was built without the ISA.
bool scalar_row_kernels(DType t, RowKernels* k);
bool avx2_row_kernels(DType t, RowKernels* k);
bool avx512_row_kernels(DType t, RowKernels* k);
PanelGemm scalar_panel_gemm();
PanelGemm avx2_panel_gemm();    // nullptr when built without AVX2
PanelGemm avx512_panel_gemm();  // nullptr when built without AVX-512

}  // namespace detail

}  // namespace kt

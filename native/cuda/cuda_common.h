// Shared by every CUDA source: error checks that throw (the bindings turn them into JS
// errors naming the kernel), the current device's compute stream, and the run-time options.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace kt::cuda {

// Throws std::runtime_error("cuda <what>: <error name>: <description>").
[[noreturn]] void throw_cuda(cudaError_t e, const char* what);

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_cuda(e, what);
}

// After each launch: a bad configuration shows at once; an earlier kernel's fault (sticky)
// shows here too, so the message says which launch noticed it.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

// Matmul precision for M above the GEMV limit: F32 mirrors the CPU (f32 products, f32 sums);
// BF16 rounds activations to bf16 (f16 for F16 weights) and uses tensor cores, f32 accumulation.
enum class Precision { F32, BF16 };

struct Options {
  Precision precision = Precision::BF16;
  // M at or below this runs the GEMV kernels (q8 activations for quantized weights); -1: the
  // measured default (2, see matmul.cu).
  int gemv_max_rows = -1;
  // Above the GEMV rows and up to this, bf16 precision, Q4_K/Q6_K weights: the tensor-core kernel with
  // in-register dequantization (matmul_mma.cu) instead of dequantize + cuBLAS; -1: 64, 0: never.
  int mma_max_rows = -1;
  // Tensor-core kernel layout: 2 (default) bf16 activations staged once per block, 128 weight rows a block,
  // split-K for narrow shapes (1.2–2.2× variant 0 at M 4–64 on the H200); 0 the first layout; 1 activation tiles fastest.
  int mma_variant = 2;
  int gemv_warps = 0;        // warps per GEMV row pair (1, 2, 4); 0 picks by N (benchmarks sweep it)
  int attention_kernel = 0;  // rows of paged attention: 0 paged_attention_decode.cu's kernel; 1 the first one (benchmarks)
  bool poison = false;    // fill new per-step tensors with NaN bytes (tests: proves every element is written)
  // Programmatic dependent launch for the GEMV kernels and the activation quantizer (pdl.cuh): their
  // launch and weight prefetch overlap the kernel before; false: ordinary launches (to measure).
  bool pdl = true;
  // Units of each weight row an int8 GEMV thread has in flight per step: 1 (58-72 registers, so 3-4
  // blocks fit an SM) or 2 (~100: 2 blocks). With 2 the kernels of several waves ran slower on the
  // H200 (gate/up 26.8 → 23.7 µs with 1, lm_head 190 → 149), single waves over long rows faster.
  int gemv_unroll = 1;
  // Row pairs from which an int8 GEMV gives each pair one warp (fewer: 2 or 4 warps share a pair).
  int gemv_w1_pairs = 2560;
  // Decode attention splits the keys until rows × KV heads × splits reach this many blocks per SM
  // (llama-3.1-8b Q4_K_M on the H200, step ms at B = 1 / 16: 4 → 3.37 / 5.79, 2 → 3.18 / 5.49, 1 → 3.13 / 5.66).
  int attention_blocks_per_sm = 2;
  // MoE expert FFN (moe_experts.cu): up to this many slots (tokens × top-k) the GEMV path over the chosen
  // experts (q8 activations for quantized weights), above it the grouped tensor-core path (bf16); -1: 1024.
  int moe_gemv_max_slots = -1;
};

// One set for the process, shared by every device (device.cpp says why).
Options& options();

// The current device's compute stream (cuda/device.h): each device runs its ops on its one stream.
cudaStream_t stream();

// The current device's cuBLAS handle, bound to stream(); opaque here so kernel files need no cuBLAS headers.
void* cublas_handle();

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace kt::cuda

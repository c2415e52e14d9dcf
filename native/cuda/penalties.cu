// logit_bias and the repetition/presence/frequency penalties on the device, before sample(): per-token
// entries built on the host from each request's history (src/engine/gpu-sampling.ts, packPenalties).
// The number of valid entries is read on the device, so a graph captured over buffers of fixed capacity
// replays for any count up to it.
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks for a full capacity in one or two strides; every thread past the count exits at once.
constexpr int64_t kMaxBlocks = 256;

// Each (row, token) occurs at most once, so entries never touch the same logit. The _rn intrinsics keep
// the host's rounding after each stage (sampler.ts stores a float after each): no contraction of
// x * rep - sub into one FMA, and IEEE division whatever the compiler's flags.
__global__ void penalties_kernel(float* __restrict__ logits, int64_t B, int64_t V, const int32_t* __restrict__ index,
                                 const float* __restrict__ values, const int32_t* __restrict__ count, int64_t cap) {
  const int64_t n = min(static_cast<int64_t>(max(*count, 0)), cap);
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = index[2 * e], token = index[2 * e + 1];
    if (row < 0 || row >= B || token < 0 || token >= V) continue;
    float* x = logits + row * V + token;
    const float bias = values[3 * e], rep = values[3 * e + 1], sub = values[3 * e + 2];
    float v = __fadd_rn(*x, bias);
    if (rep != 1.f) v = v > 0.f ? __fdiv_rn(v, rep) : __fmul_rn(v, rep);
    *x = __fsub_rn(v, sub);
  }
}

}  // namespace

void apply_penalties(DeviceTensor& logits, const DeviceTensor& index, const DeviceTensor& values, const DeviceTensor& count) {
  const char* op = "apply_penalties";
  check(logits.dtype == DType::F32 && logits.shape.size() == 2, op, "logits must be F32 [B, V], got " + logits.describe());
  check(index.dtype == DType::I32 && index.shape.size() == 2 && index.shape[1] == 2, op,
        "index must be I32 [capacity, 2] (row, token), got " + index.describe());
  const int64_t cap = index.shape[0];
  check(values.dtype == DType::F32 && values.shape == std::vector<int64_t>{cap, 3}, op,
        "values must be F32 [" + std::to_string(cap) + ", 3] (bias, repetition, subtract), got " + values.describe());
  check(count.dtype == DType::I32 && count.numel() == 1, op, "count must be I32 [1], got " + count.describe());
  const int64_t B = logits.shape[0], V = logits.shape[1];
  if (cap == 0 || B == 0 || V == 0) return;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(blocks_for(cap, kThreads), kMaxBlocks));
  penalties_kernel<<<blocks, kThreads, 0, stream()>>>(logits.as<float>(), B, V, index.as<int32_t>(), values.as<float>(), count.as<int32_t>(), cap);
  check_launch("penalties_kernel");
}

}  // namespace kt::cuda

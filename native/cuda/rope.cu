// Rotary position embedding, in place, for both pairings Llama weights come in.
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/rope.cuh"

namespace kt::cuda {

namespace {

// One block per token; threads walk (head, pair). The angle is rounded to f32 before
// sin/cos, as the CPU and Hugging Face compute it (inv_freq · pos in f32).
__global__ void rope_kernel(float* __restrict__ x, const int32_t* __restrict__ pos, const float* __restrict__ inv_freq, int heads,
                            int head_dim, int half, bool interleaved) {
  const int t = blockIdx.x;
  const float p = static_cast<float>(pos[t]);
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const RopePair r(p, inv_freq, j % half, half, interleaved);
    float* v = x + (static_cast<int64_t>(t) * heads + j / half) * head_dim;
    const float x0 = v[r.a], x1 = v[r.c];
    v[r.a] = r.first(x0, x1);
    v[r.c] = r.second(x0, x1);
  }
}

}  // namespace

void rope(DeviceTensor& x, const DeviceTensor& positions, const DeviceTensor& inv_freq, int head_dim, int rot_dim, bool interleaved) {
  x.q8k.reset();  // written in place: a q8_K copy beside it would be stale
  const char* op = "rope";
  check(x.dtype == DType::F32, op, "x must be F32, got " + x.describe());
  check_rope_args(op, positions, inv_freq, head_dim, rot_dim);
  const int64_t T = positions.numel();
  check(T > 0 && x.numel() % (T * head_dim) == 0, op,
        "x " + x.describe() + " is not " + std::to_string(T) + " rows of heads of " + std::to_string(head_dim));
  const int64_t heads = x.numel() / (T * head_dim);
  rope_kernel<<<static_cast<unsigned>(T), 256, 0, stream()>>>(x.as<float>(), positions.as<int32_t>(), inv_freq.as<float>(),
                                                              static_cast<int>(heads), head_dim, rot_dim / 2, interleaved);
  check_launch("rope_kernel");
}

}  // namespace kt::cuda

// Rotary position embedding, in place, for both pairings Llama weights come in.
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// One block per token; threads walk (head, pair). The angle is rounded to f32 before
// sin/cos, as the CPU and Hugging Face compute it (inv_freq · pos in f32).
__global__ void rope_kernel(float* __restrict__ x, const int32_t* __restrict__ pos, const float* __restrict__ inv_freq, int heads,
                            int head_dim, int half, bool interleaved) {
  const int t = blockIdx.x;
  const float p = static_cast<float>(pos[t]);
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    float sn, cs;
    sincosf(__fmul_rn(p, inv_freq[i]), &sn, &cs);
    float* v = x + (static_cast<int64_t>(t) * heads + h) * head_dim;
    const int a = interleaved ? 2 * i : i, c = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[c];
    v[a] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
    v[c] = __fadd_rn(__fmul_rn(x1, cs), __fmul_rn(x0, sn));
  }
}

}  // namespace

void rope(DeviceTensor& x, const DeviceTensor& positions, const DeviceTensor& inv_freq, int head_dim, int rot_dim, bool interleaved) {
  const char* op = "rope";
  check(x.dtype == DType::F32, op, "x must be F32, got " + x.describe());
  check(positions.dtype == DType::I32, op, "positions must be I32, got " + positions.describe());
  check(inv_freq.dtype == DType::F32 && inv_freq.numel() == rot_dim / 2, op,
        "inv_freq " + inv_freq.describe() + " must hold rot_dim/2 = " + std::to_string(rot_dim / 2) + " F32 values");
  check(head_dim > 0 && rot_dim > 0 && rot_dim <= head_dim && rot_dim % 2 == 0, op,
        "bad head_dim " + std::to_string(head_dim) + " / rot_dim " + std::to_string(rot_dim));
  const int64_t T = positions.numel();
  check(T > 0 && x.numel() % (T * head_dim) == 0, op,
        "x " + x.describe() + " is not " + std::to_string(T) + " rows of heads of " + std::to_string(head_dim));
  const int64_t heads = x.numel() / (T * head_dim);
  rope_kernel<<<static_cast<unsigned>(T), 256, 0, stream()>>>(x.as<float>(), positions.as<int32_t>(), inv_freq.as<float>(),
                                                              static_cast<int>(heads), head_dim, rot_dim / 2, interleaved);
  check_launch("rope_kernel");
}

}  // namespace kt::cuda

// SwiGLU's gate: out = silu(gate) * up, element-wise.
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

__global__ void silu_mul_kernel(const float* __restrict__ g, const float* __restrict__ u, float* __restrict__ o, int64_t n) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    o[i] = __fmul_rn(__fdiv_rn(g[i], __fadd_rn(1.0f, expf(-g[i]))), u[i]);
}

}  // namespace

void silu_mul(const DeviceTensor& gate, const DeviceTensor& up, DeviceTensor& out) {
  const char* op = "silu_mul";
  check(gate.dtype == DType::F32 && up.dtype == DType::F32 && out.dtype == DType::F32, op, "gate, up and out must be F32");
  check(gate.numel() == up.numel() && out.numel() == gate.numel(), op,
        "shapes differ: gate " + gate.describe() + ", up " + up.describe() + ", out " + out.describe());
  const int64_t n = gate.numel();
  if (n == 0) return;
  silu_mul_kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks_for(n, 256), 132 * 16)), 256, 0, stream()>>>(
      gate.as<float>(), up.as<float>(), out.as<float>(), n);
  check_launch("silu_mul_kernel");
}

}  // namespace kt::cuda

// Residual add in place: a += b.
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

__global__ void add_kernel(float* __restrict__ a, const float* __restrict__ b, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] += b[i];
}

}  // namespace

void add_inplace(DeviceTensor& a, const DeviceTensor& b) {
  a.q8k.reset();  // written in place: a q8_K copy beside it would be stale
  const char* op = "add";
  check(a.dtype == DType::F32 && b.dtype == DType::F32, op, "a and b must be F32, got " + a.describe() + ", " + b.describe());
  check(a.numel() == b.numel(), op, "shapes differ: " + a.describe() + " vs " + b.describe());
  const int64_t n = a.numel();
  if (n == 0) return;
  add_kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks_for(n, 256), 132 * 16)), 256, 0, stream()>>>(a.as<float>(), b.as<float>(), n);
  check_launch("add_kernel");
}

}  // namespace kt::cuda

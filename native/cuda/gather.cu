// Row gather: out[i, :] = x[idx[i], :] (the logits rows of the sequences that sample).
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// One block per gathered row; a row index outside x (possible only without a host copy to
// check) gives a NaN row.
__global__ void gather_kernel(const float* __restrict__ x, const int32_t* __restrict__ idx, int64_t rows, int64_t D, float* __restrict__ out) {
  const int64_t r = idx[blockIdx.x];
  float* o = out + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) o[i] = (r >= 0 && r < rows) ? x[r * D + i] : __int_as_float(0x7fffffff);
}

}  // namespace

void gather_rows(const DeviceTensor& x, const DeviceTensor& idx, DeviceTensor& out) {
  const char* op = "gather_rows";
  check(x.dtype == DType::F32, op, "x must be F32, got " + x.describe());
  check(idx.dtype == DType::I32, op, "indices must be I32, got " + idx.describe());
  const int64_t rows = x.dim(0), D = x.numel() / std::max<int64_t>(rows, 1), n = idx.numel();
  check(out.numel() == n * D, op, "out " + out.describe() + " does not hold " + std::to_string(n) + " rows");
  if (idx.has_host_copy())
    for (int32_t r : idx.host_i32) check(r >= 0 && r < rows, op, "row " + std::to_string(r) + " outside " + x.describe());
  if (n == 0 || D == 0) return;
  gather_kernel<<<static_cast<unsigned>(n), 256, 0, stream()>>>(x.as<float>(), idx.as<int32_t>(), rows, D, out.as<float>());
  check_launch("gather_kernel");
}

}  // namespace kt::cuda

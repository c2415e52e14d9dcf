// Shape checks around the quantized matmul kernels (cpu/matmul.h).
#include "cpu/matmul.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace kt::cpu {

void matmul(const Tensor& x, const Tensor& w, Tensor& out) {
  const char* op = "matmul";
  check(x.dtype == DType::F32 && out.dtype == DType::F32, op, "x and out must be F32, got " + x.describe() + ", " + out.describe());
  check(w.shape.size() == 2, op, "weight must be 2-D [N, K], got " + w.describe());
  check(matmul_supported(w.dtype), op, "unsupported weight type " + w.describe());
  const int64_t N = w.shape[0], K = w.shape[1];
  check(x.numel() % K == 0, op, "x " + x.describe() + " is not rows of K = " + std::to_string(K) + " for weight " + w.describe());
  const int64_t M = x.numel() / K;
  check(out.numel() == M * N, op, "out " + out.describe() + " is not [" + std::to_string(M) + ", " + std::to_string(N) + "]");
  kt::matmul(x.as<float>(), M, K, w.data, w.dtype, N, out.as<float>(), global_pool());
}

}  // namespace kt::cpu

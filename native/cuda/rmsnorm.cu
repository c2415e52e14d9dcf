// RMSNorm over rows: out = w * (x * 1/sqrt(mean(x²) + eps)), sums in f32 as the CPU (and
// Hugging Face's float32 path) computes them.
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

constexpr int kThreads = 256;

// One block per row. The products are kept apart from the sums (__fmul_rn) so each output
// is w * (x * inv) rounded as the CPU rounds it. With delta, x += delta first (written back):
// the same additions and the same sums as add_inplace then rms_norm, in one pass over x.
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ delta, const float* __restrict__ w,
                                                           int D, float eps, float* __restrict__ out) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  float* xr = x + static_cast<int64_t>(blockIdx.x) * D;
  float* o = out + static_cast<int64_t>(blockIdx.x) * D;
  float ss = 0.f;
  if (delta) {
    const float* dr = delta + static_cast<int64_t>(blockIdx.x) * D;
    for (int i = threadIdx.x; i < D; i += kThreads) {
      const float v = xr[i] + dr[i];
      xr[i] = v;  // read back below by this same thread only
      ss += v * v;
    }
  } else {
    for (int i = threadIdx.x; i < D; i += kThreads) ss += xr[i] * xr[i];
  }
#pragma unroll
  for (int k = 16; k > 0; k >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, k);
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float inv_s;
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.f;
    for (int i = 0; i < kThreads / 32; ++i) total += warp_sums[i];
    inv_s = 1.0f / sqrtf(total / static_cast<float>(D) + eps);
  }
  __syncthreads();
  const float inv = inv_s;
  for (int i = threadIdx.x; i < D; i += kThreads) o[i] = __fmul_rn(w[i], __fmul_rn(xr[i], inv));
}

// Checks the shapes both entry points share and launches one block per row (delta may be null).
void launch_norm(const char* op, const DeviceTensor& x, const float* delta, const DeviceTensor& w, float eps, DeviceTensor& out) {
  check(x.dtype == DType::F32 && w.dtype == DType::F32 && out.dtype == DType::F32, op,
        "x, weight and out must be F32, got " + x.describe() + ", " + w.describe() + ", " + out.describe());
  const int64_t D = w.numel();
  check(D > 0 && x.numel() % D == 0, op, "x " + x.describe() + " is not rows of weight " + w.describe());
  check(out.numel() == x.numel(), op, "out " + out.describe() + " differs from x " + x.describe());
  const int64_t rows = x.numel() / D;
  if (rows == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream()>>>(x.as<float>(), delta, w.as<float>(), static_cast<int>(D), eps,
                                                                          out.as<float>());
  check_launch("rmsnorm_kernel");
}

}  // namespace

void rms_norm(const DeviceTensor& x, const DeviceTensor& w, float eps, DeviceTensor& out) { launch_norm("rms_norm", x, nullptr, w, eps, out); }

void add_rms_norm(DeviceTensor& x, const DeviceTensor& delta, const DeviceTensor& w, float eps, DeviceTensor& out) {
  const char* op = "add_rms_norm";
  check(delta.dtype == DType::F32 && delta.numel() == x.numel(), op, "delta " + delta.describe() + " must be F32 like x " + x.describe());
  check(x.data != out.data && delta.data != out.data, op, "out must not alias x or delta");
  launch_norm(op, x, delta.as<float>(), w, eps, out);
}

}  // namespace kt::cuda

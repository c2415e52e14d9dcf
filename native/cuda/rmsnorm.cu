// RMSNorm over rows: out = w * (x * 1/sqrt(mean(x²) + eps)), sums in f32 as the CPU (and
// Hugging Face's float32 path) computes them.
#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/pdl.cuh"
#include "cuda/q8k_block.cuh"
#include "cuda/quantize_act.h"

namespace kt::cuda {

namespace {

constexpr int kMaxThreads = 1024;
constexpr int kPer = 4;  // float4s a thread keeps in registers between the two halves (rows up to 16384)

// One block per row, a float4 per thread per pass: at decode a row is one block's work, so the
// kernel's time is its chain of dependent steps (load, reduce, store), not bandwidth; the earlier
// 256-thread scalar loop took ~9.6 µs a row of 4096 on the H200, most of a step's small kernels.
// The products are kept apart from the sums (__fmul_rn) so each output is w * (x * inv) rounded
// as the CPU rounds it. With delta, x += delta first (written back): the same additions and the
// same sums as add_inplace then rms_norm, in one pass over x. Rows of D % 4 == 0 only (the host
// checks); a row longer than kPer float4s a thread re-reads x in the second half.
// Q8: the normalised row is also written in q8_K (q8k_block.cuh) for the GEMV that reads it next.
template <bool Q8>
__global__ void __launch_bounds__(kMaxThreads) rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ delta, const float* __restrict__ w,
                                                              int D, float eps, float* __restrict__ out, int8_t* __restrict__ q8,
                                                              float* __restrict__ q8d) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  float4* xr = reinterpret_cast<float4*>(x + static_cast<int64_t>(blockIdx.x) * D);
  float4* o = reinterpret_cast<float4*>(out + static_cast<int64_t>(blockIdx.x) * D);
  const float4* dr = delta ? reinterpret_cast<const float4*>(delta + static_cast<int64_t>(blockIdx.x) * D) : nullptr;
  const float4* wv = reinterpret_cast<const float4*>(w);
  const int n4 = D / 4;
  float4 keep[kPer];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < n4) {
      float4 v = xr[i];
      if (dr) {
        const float4 d = dr[i];
        v = make_float4(v.x + d.x, v.y + d.y, v.z + d.z, v.w + d.w);
        xr[i] = v;
      }
      keep[k] = v;
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  }
  for (int i = threadIdx.x + kPer * blockDim.x; i < n4; i += blockDim.x) {
    float4 v = xr[i];
    if (dr) {
      const float4 d = dr[i];
      v = make_float4(v.x + d.x, v.y + d.y, v.z + d.z, v.w + d.w);
      xr[i] = v;  // read back below by this same thread only
    }
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
#pragma unroll
  for (int k = 16; k > 0; k >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, k);
  __shared__ float warp_sums[kMaxThreads / 32];
  __shared__ float inv_s;
  const int warps = blockDim.x / 32;
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float total = threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.f;
#pragma unroll
    for (int k = 16; k > 0; k >>= 1) total += __shfl_xor_sync(0xffffffffu, total, k);
    if (threadIdx.x == 0) inv_s = 1.0f / sqrtf(total / static_cast<float>(D) + eps);
  }
  __syncthreads();
  const float inv = inv_s;
  const auto norm = [&](const float4& v, const float4& g) {
    return make_float4(__fmul_rn(g.x, __fmul_rn(v.x, inv)), __fmul_rn(g.y, __fmul_rn(v.y, inv)), __fmul_rn(g.z, __fmul_rn(v.z, inv)),
                       __fmul_rn(g.w, __fmul_rn(v.w, inv)));
  };
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    float4 y = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i < n4) o[i] = y = norm(keep[k], wv[i]);
    // The host asks for q8 only where every value stays in registers and D % 256 == 0: a chunk's
    // 64-thread groups are then all in the row or all past it, and this test is the block's own.
    if (Q8 && k * static_cast<int>(blockDim.x) < n4) q8k_block<kMaxThreads>(y, 4 * i, blockIdx.x, D, q8, q8d);
  }
  for (int i = threadIdx.x + kPer * blockDim.x; i < n4; i += blockDim.x) o[i] = norm(xr[i], wv[i]);
}

// Checks the shapes both entry points share and launches one block per row (delta may be null).
void launch_norm(const char* op, const DeviceTensor& x, const float* delta, const DeviceTensor& w, float eps, DeviceTensor& out) {
  check(x.dtype == DType::F32 && w.dtype == DType::F32 && out.dtype == DType::F32, op,
        "x, weight and out must be F32, got " + x.describe() + ", " + w.describe() + ", " + out.describe());
  const int64_t D = w.numel();
  check(D > 0 && x.numel() % D == 0, op, "x " + x.describe() + " is not rows of weight " + w.describe());
  check(D % 4 == 0, op, "rows of " + std::to_string(D) + " values: the kernel takes a multiple of 4");
  check(out.numel() == x.numel(), op, "out " + out.describe() + " differs from x " + x.describe());
  const int64_t rows = x.numel() / D;
  if (rows == 0) return;
  // A float4 per thread where the row allows, in whole warps.
  const int threads = static_cast<int>(std::min<int64_t>(kMaxThreads, std::max<int64_t>(32, (D / 4 + 31) / 32 * 32)));
  out.q8k.reset();
  // At decode the next op is a GEMV over q8_K rows (K-quant weights): write them here, saving it a
  // quantize launch. Rows of 256-multiples that fit the registers only (then threads % 64 == 0).
  if (rows <= 2 && D % 256 == 0 && D <= int64_t{4} * kPer * kMaxThreads) {
    auto storage = pool().alloc(q8_storage_bytes(rows, D, ActFormat::Q8_K));
    const ActQ a = q8_view(storage.get(), rows, D, ActFormat::Q8_K);
    rmsnorm_kernel<true><<<static_cast<unsigned>(rows), threads, 0, stream()>>>(x.as<float>(), delta, w.as<float>(), static_cast<int>(D), eps,
                                                                               out.as<float>(), const_cast<int8_t*>(a.q), const_cast<float*>(a.d));
    out.q8k = std::move(storage);
  } else {
    rmsnorm_kernel<false><<<static_cast<unsigned>(rows), threads, 0, stream()>>>(x.as<float>(), delta, w.as<float>(), static_cast<int>(D), eps,
                                                                                out.as<float>(), nullptr, nullptr);
  }
  check_launch("rmsnorm_kernel");
}

}  // namespace

void rms_norm(const DeviceTensor& x, const DeviceTensor& w, float eps, DeviceTensor& out) { launch_norm("rms_norm", x, nullptr, w, eps, out); }

void add_rms_norm(DeviceTensor& x, const DeviceTensor& delta, const DeviceTensor& w, float eps, DeviceTensor& out) {
  const char* op = "add_rms_norm";
  check(delta.dtype == DType::F32 && delta.numel() == x.numel(), op, "delta " + delta.describe() + " must be F32 like x " + x.describe());
  check(x.data != out.data && delta.data != out.data, op, "out must not alias x or delta");
  x.q8k.reset();  // written in place
  launch_norm(op, x, delta.as<float>(), w, eps, out);
}

}  // namespace kt::cuda

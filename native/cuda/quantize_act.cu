// Per-row activation quantization for the int8 GEMV: one warp per q8_0/q8_1 block (a lane per
// element) or per q8_K block (8 elements a lane). Rounding as native/cpu/matmul.cpp: codes
// round to nearest even (the CPU's nearest_int), scales by correctly rounded division.
#include <cuda_fp16.h>

#include "cuda/cuda_common.h"
#include "cuda/device_tensor.h"
#include "cuda/pdl.cuh"
#include "cuda/quantize_act.h"

namespace kt::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float fp16_round(float v) { return __half2float(__float2half_rn(v)); }

// q8_0 / q8_1: d = amax/127 (fp16-rounded), codes rn(x * (127/amax)).
__global__ void __launch_bounds__(kThreads) quantize_q8_0(const float* __restrict__ x, int64_t nblocks, int8_t* __restrict__ q,
                                                          float* __restrict__ d, float* __restrict__ s, float* __restrict__ xf) {
  pdl_trigger();
  pdl_wait();
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (b >= nblocks) return;
  const float v = x[b * 32 + lane];
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float dd = __fdiv_rn(amax, 127.f);
  const float id = amax != 0.f ? __fdiv_rn(127.f, amax) : 0.f;
  const int c = __float2int_rn(__fmul_rn(v, id));
  q[b * 32 + lane] = static_cast<int8_t>(c);
  int sum = c;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float dr = fp16_round(dd);
  if (lane == 0) {
    d[b] = dr;
    if (s) s[b] = fp16_round(__fmul_rn(dd, static_cast<float>(sum)));
  }
  if (xf) xf[b * 32 + lane] = __fmul_rn(dr, static_cast<float>(c));
}

// q8_K: iscale = -127 / (the first element of largest magnitude), codes min(127, rn(iscale*x)),
// d = 1 / iscale (f32).
__global__ void __launch_bounds__(kThreads) quantize_q8_K(const float* __restrict__ x, int64_t nblocks, int8_t* __restrict__ q,
                                                          float* __restrict__ d, float* __restrict__ xf) {
  pdl_trigger();
  pdl_wait();
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (b >= nblocks) return;
  const float* xb = x + b * 256 + lane * 8;
  const float4 v0 = *reinterpret_cast<const float4*>(xb), v1 = *reinterpret_cast<const float4*>(xb + 4);
  const float v[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
  float amax = 0.f, mx = 0.f;
  int at = 1 << 30;
#pragma unroll
  for (int j = 0; j < 8; ++j)
    if (fabsf(v[j]) > amax) amax = fabsf(v[j]), mx = v[j], at = lane * 8 + j;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {  // larger magnitude wins; on a tie the lower index (the CPU's first)
    const float a2 = __shfl_xor_sync(0xffffffffu, amax, o), m2 = __shfl_xor_sync(0xffffffffu, mx, o);
    const int at2 = __shfl_xor_sync(0xffffffffu, at, o);
    if (a2 > amax || (a2 == amax && at2 < at)) amax = a2, mx = m2, at = at2;
  }
  int8_t c[8];
  if (amax == 0.f) {
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j] = 0;
    if (lane == 0) d[b] = 0.f;
  } else {
    const float iscale = __fdiv_rn(-127.f, mx);
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j] = static_cast<int8_t>(min(127, __float2int_rn(__fmul_rn(iscale, v[j]))));
    if (lane == 0) d[b] = __fdiv_rn(1.f, iscale);
  }
  uint2 packed;
  packed.x = (c[0] & 0xffu) | (c[1] & 0xffu) << 8 | (c[2] & 0xffu) << 16 | static_cast<uint32_t>(c[3] & 0xff) << 24;
  packed.y = (c[4] & 0xffu) | (c[5] & 0xffu) << 8 | (c[6] & 0xffu) << 16 | static_cast<uint32_t>(c[7] & 0xff) << 24;
  *reinterpret_cast<uint2*>(q + b * 256 + lane * 8) = packed;
  if (xf) {
    const float dd = amax == 0.f ? 0.f : __fdiv_rn(1.f, __fdiv_rn(-127.f, mx));
#pragma unroll
    for (int j = 0; j < 8; ++j) xf[b * 256 + lane * 8 + j] = __fmul_rn(dd, static_cast<float>(c[j]));
  }
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

ActFormat act_format(DType wt) {
  switch (wt) {
    case DType::Q4_1: case DType::Q5_1: return ActFormat::Q8_1;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return ActFormat::Q8_K;
    default: return ActFormat::Q8_0;
  }
}

size_t q8_storage_bytes(int64_t M, int64_t K, ActFormat f) {
  return align256(static_cast<size_t>(M * K)) + align256(static_cast<size_t>(M * (K / act_block(f))) * 4);
}

ActQ q8_view(void* base, int64_t M, int64_t K, ActFormat f) {
  uint8_t* b = static_cast<uint8_t*>(base);
  return ActQ{reinterpret_cast<int8_t*>(b), reinterpret_cast<float*>(b + align256(static_cast<size_t>(M * K))), nullptr, nullptr,
              K / act_block(f)};
}

ActQ quantize_activations(const float* x, int64_t M, int64_t K, ActFormat f, bool want_xf, std::shared_ptr<void>* storage) {
  const int64_t B = act_block(f), nb = M * (K / B);
  const size_t q_bytes = align256(static_cast<size_t>(M * K)), d_bytes = align256(static_cast<size_t>(nb) * 4);
  const size_t s_bytes = f == ActFormat::Q8_1 ? d_bytes : 0, xf_bytes = want_xf ? static_cast<size_t>(M * K) * 4 : 0;
  *storage = pool().alloc(q_bytes + d_bytes + s_bytes + xf_bytes);
  uint8_t* base = static_cast<uint8_t*>(storage->get());
  int8_t* q = reinterpret_cast<int8_t*>(base);
  float* d = reinterpret_cast<float*>(base + q_bytes);
  float* s = s_bytes ? reinterpret_cast<float*>(base + q_bytes + d_bytes) : nullptr;
  float* xf = want_xf ? reinterpret_cast<float*>(base + q_bytes + d_bytes + s_bytes) : nullptr;
  const unsigned grid = blocks_for(nb * 32, kThreads);
  // Launched to overlap the kernel before (pdl.cuh): it starts the GEMV after it early too.
  if (f == ActFormat::Q8_K) launch_pdl("quantize_activations", quantize_q8_K, dim3(grid), dim3(kThreads), 0, x, nb, q, d, xf);
  else launch_pdl("quantize_activations", quantize_q8_0, dim3(grid), dim3(kThreads), 0, x, nb, q, d, s, xf);
  return ActQ{q, d, s, xf, K / B};
}

}  // namespace kt::cuda

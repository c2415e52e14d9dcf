// One 256-value q8_K block written from the float4s of 64 consecutive threads (two warps), for
// kernels that produce a GEMV's input at decode (rmsnorm, attention's split merge): exactly what
// quantize_activations would write from the same values (quantize_act.cu: the first value of
// largest magnitude sets the scale, same roundings). Every thread of the block calls it (it has
// barriers); y holds the values at elem .. elem + 3 of row `row` of D (threads with elem >= D pass
// anything and write nothing; a 64-thread group is all in the row or all past it).
#pragma once
#include <cstdint>

namespace kt::cuda {

template <int kMaxThreads>
__device__ __forceinline__ void q8k_block(const float4& y, int elem, int64_t row, int D, int8_t* __restrict__ q8, float* __restrict__ q8d) {
  const float v[4] = {y.x, y.y, y.z, y.w};
  float amax = 0.f, mx = 0.f;
  int at = 1 << 30;
#pragma unroll
  for (int j = 0; j < 4; ++j)
    if (fabsf(v[j]) > amax) amax = fabsf(v[j]), mx = v[j], at = elem + j;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {  // larger magnitude wins; on a tie the lower index
    const float a2 = __shfl_xor_sync(0xffffffffu, amax, o), m2 = __shfl_xor_sync(0xffffffffu, mx, o);
    const int at2 = __shfl_xor_sync(0xffffffffu, at, o);
    if (a2 > amax || (a2 == amax && at2 < at)) amax = a2, mx = m2, at = at2;
  }
  __shared__ float s_amax[kMaxThreads / 32], s_mx[kMaxThreads / 32];
  __shared__ int s_at[kMaxThreads / 32];
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) s_amax[warp] = amax, s_mx[warp] = mx, s_at[warp] = at;
  __syncthreads();
  {
    const float a2 = s_amax[warp ^ 1], m2 = s_mx[warp ^ 1];  // the other warp of the 256-value block
    const int at2 = s_at[warp ^ 1];
    if (a2 > amax || (a2 == amax && at2 < at)) amax = a2, mx = m2, at = at2;
  }
  __syncthreads();  // the next chunk reuses the arrays
  if (elem >= D) return;
  int c[4] = {0, 0, 0, 0};
  float d = 0.f;
  if (amax != 0.f) {
    const float iscale = __fdiv_rn(-127.f, mx);
#pragma unroll
    for (int j = 0; j < 4; ++j) c[j] = min(127, __float2int_rn(__fmul_rn(iscale, v[j])));
    d = __fdiv_rn(1.f, iscale);
  }
  const uint32_t packed = (c[0] & 0xffu) | (c[1] & 0xffu) << 8 | (c[2] & 0xffu) << 16 | static_cast<uint32_t>(c[3] & 0xff) << 24;
  *reinterpret_cast<uint32_t*>(q8 + row * D + elem) = packed;
  if (elem % 256 == 0) q8d[row * (D / 256) + elem / 256] = d;
}

}  // namespace kt::cuda

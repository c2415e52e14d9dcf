// Writes each new token's K and V rows into the paged caches at its slot (F32 caches, or BF16 ones
// holding the rows rounded to nearest even).
#include <cuda_bf16.h>

#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// One block per token; a slot outside the cache (possible only without a host copy to
// check) is skipped rather than written out of bounds.
__device__ __forceinline__ void put(float* p, float x) { *p = x; }
__device__ __forceinline__ void put(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

template <typename C>
__global__ void kv_store_kernel(C* __restrict__ kc, C* __restrict__ vc, const float* __restrict__ k, const float* __restrict__ v,
                                const int32_t* __restrict__ slots, int64_t total, int width) {
  const int t = blockIdx.x;
  const int64_t s = slots[t];
  if (s < 0 || s >= total) return;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    put(kc + s * width + i, k[static_cast<int64_t>(t) * width + i]);
    put(vc + s * width + i, v[static_cast<int64_t>(t) * width + i]);
  }
}

}  // namespace

void store_kv(DeviceTensor& k_cache, DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v, const DeviceTensor& slots) {
  const char* op = "store_kv";
  check(k_cache.dtype == v_cache.dtype && (k_cache.dtype == DType::F32 || k_cache.dtype == DType::BF16), op, "caches must be both F32 or both BF16");
  check(k_cache.shape == v_cache.shape && k_cache.shape.size() == 3, op, "caches must be [blocks, block_size, width], got " + k_cache.describe());
  check(slots.dtype == DType::I32, op, "slots must be I32, got " + slots.describe());
  check(k.dtype == DType::F32 && v.dtype == DType::F32, op, "k and v must be F32");
  const int64_t width = k_cache.shape[2], total = k_cache.shape[0] * k_cache.shape[1], T = slots.numel();
  check(k.numel() == T * width && v.numel() == T * width, op,
        "k " + k.describe() + " / v " + v.describe() + " are not " + std::to_string(T) + " rows of " + std::to_string(width));
  if (slots.has_host_copy())
    for (int32_t s : slots.host_i32) check(s >= 0 && s < total, op, "slot " + std::to_string(s) + " outside the cache of " + std::to_string(total));
  if (T == 0) return;
  if (k_cache.dtype == DType::BF16)
    kv_store_kernel<<<static_cast<unsigned>(T), 256, 0, stream()>>>(k_cache.as<__nv_bfloat16>(), v_cache.as<__nv_bfloat16>(), k.as<float>(),
                                                                    v.as<float>(), slots.as<int32_t>(), total, static_cast<int>(width));
  else
    kv_store_kernel<<<static_cast<unsigned>(T), 256, 0, stream()>>>(k_cache.as<float>(), v_cache.as<float>(), k.as<float>(), v.as<float>(),
                                                                    slots.as<int32_t>(), total, static_cast<int>(width));
  check_launch("kv_store_kernel");
}

}  // namespace kt::cuda

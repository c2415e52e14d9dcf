// Writes each new token's K and V rows into the paged caches at its slot (F32 caches, or BF16 ones
// holding the rows rounded to nearest even).
#include <cuda_bf16.h>

#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/rope.cuh"
#include "cuda/pdl.cuh"

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

// Rotates q in place and writes k rotated (k itself is left as it was) and v into the caches at
// each token's slot. A thread per unit of work: a rotation pair of one head (q's heads, then k's),
// or one element of v (with k's element where the head's dims past rot_dim are copied as they are);
// blockIdx.x is the token, blockIdx.y a run of units. At decode that is a dozen blocks doing one
// sincos each, where one block looping over the token took ~7.7 µs (H200). The rotation is
// rope_kernel's, float op for float op, so the result equals rope(q), rope(k), store_kv bit for bit.
template <typename C>
__global__ void rope_store_kernel(float* __restrict__ q, int q_heads, const float* __restrict__ k, const float* __restrict__ v, int kv_heads,
                                  C* __restrict__ kc, C* __restrict__ vc, const int32_t* __restrict__ pos, const int32_t* __restrict__ slots,
                                  const float* __restrict__ inv_freq, int head_dim, int half, bool interleaved, int64_t total) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  const int t = blockIdx.x;
  const int u = blockIdx.y * blockDim.x + threadIdx.x;
  const int pairs = (q_heads + kv_heads) * half, width = kv_heads * head_dim;
  if (u >= pairs + width) return;
  const int64_t s = slots[t];
  const bool store = s >= 0 && s < total;  // out of range only without a host copy to check
  if (u < pairs) {
    const int h = u / half;
    if (h >= q_heads && !store) return;
    const RopePair r(static_cast<float>(pos[t]), inv_freq, u % half, half, interleaved);
    if (h < q_heads) {
      float* x = q + (static_cast<int64_t>(t) * q_heads + h) * head_dim;
      const float x0 = x[r.a], x1 = x[r.c];
      x[r.a] = r.first(x0, x1);
      x[r.c] = r.second(x0, x1);
    } else {
      const int kh = h - q_heads;
      const float* x = k + static_cast<int64_t>(t) * width + kh * head_dim;
      const float x0 = x[r.a], x1 = x[r.c];
      put(kc + s * width + kh * head_dim + r.a, r.first(x0, x1));
      put(kc + s * width + kh * head_dim + r.c, r.second(x0, x1));
    }
    return;
  }
  if (!store) return;
  const int i = u - pairs;
  if (i % head_dim >= 2 * half) put(kc + s * width + i, k[static_cast<int64_t>(t) * width + i]);  // dims past rot_dim: not rotated
  put(vc + s * width + i, v[static_cast<int64_t>(t) * width + i]);
}

// Checks what both cache writes take; returns the cache width, its slot count and the token count.
struct KvWrite {
  int64_t width, total, T;
};
KvWrite check_kv_write(const char* op, const DeviceTensor& k_cache, const DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v,
                       const DeviceTensor& slots) {
  check_kv_caches(op, k_cache, v_cache);
  check(slots.dtype == DType::I32, op, "slots must be I32, got " + slots.describe());
  check(k.dtype == DType::F32 && v.dtype == DType::F32, op, "k and v must be F32");
  const KvWrite w{k_cache.shape[2], k_cache.shape[0] * k_cache.shape[1], slots.numel()};
  check(k.numel() == w.T * w.width && v.numel() == w.T * w.width, op,
        "k " + k.describe() + " / v " + v.describe() + " are not " + std::to_string(w.T) + " rows of " + std::to_string(w.width));
  if (slots.has_host_copy())
    for (int32_t s : slots.host_i32) check(s >= 0 && s < w.total, op, "slot " + std::to_string(s) + " outside the cache of " + std::to_string(w.total));
  return w;
}

}  // namespace

void rope_store_kv(DeviceTensor& q, DeviceTensor& k_cache, DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v,
                   const DeviceTensor& positions, const DeviceTensor& slots, const DeviceTensor& inv_freq, int head_dim, int rot_dim,
                   bool interleaved) {
  const char* op = "rope_store_kv";
  q.q8k.reset();  // rotated in place: a q8_K copy beside it would be stale
  check(q.dtype == DType::F32, op, "q must be F32, got " + q.describe());
  check_rope_args(op, positions, inv_freq, head_dim, rot_dim);
  const KvWrite w = check_kv_write(op, k_cache, v_cache, k, v, slots);
  const int64_t width = w.width, total = w.total, T = w.T;
  check(positions.numel() == T && width % head_dim == 0, op, "positions, slots and the cache width disagree");
  check(q.numel() % (T * head_dim) == 0, op, "q " + q.describe() + " is not " + std::to_string(T) + " rows of heads of " + std::to_string(head_dim));
  if (T == 0) return;
  const int q_heads = static_cast<int>(q.numel() / (T * head_dim)), kv_heads = static_cast<int>(width / head_dim);
  const auto go = [&](auto* kc, auto* vc) {
    const int64_t units = (q_heads + kv_heads) * (rot_dim / 2) + width;
    rope_store_kernel<<<dim3(static_cast<unsigned>(T), blocks_for(units, 256)), 256, 0, stream()>>>(q.as<float>(), q_heads, k.as<float>(), v.as<float>(), kv_heads, kc, vc,
                                                                     positions.as<int32_t>(), slots.as<int32_t>(), inv_freq.as<float>(), head_dim,
                                                                     rot_dim / 2, interleaved, total);
  };
  if (k_cache.dtype == DType::BF16) go(k_cache.as<__nv_bfloat16>(), v_cache.as<__nv_bfloat16>());
  else go(k_cache.as<float>(), v_cache.as<float>());
  check_launch("rope_store_kernel");
}

void store_kv(DeviceTensor& k_cache, DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v, const DeviceTensor& slots) {
  const KvWrite w = check_kv_write("store_kv", k_cache, v_cache, k, v, slots);
  const int64_t width = w.width, total = w.total, T = w.T;
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

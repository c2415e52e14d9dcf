// Rotary embedding pieces shared by rope.cu and the fused rope + cache write (kv_store.cu): the
// argument checks, and one pair's rotation rounded as the CPU and Hugging Face round it.
#pragma once
#include <string>

#include "cuda/device_tensor.h"

namespace kt::cuda {

inline void check_rope_args(const char* op, const DeviceTensor& positions, const DeviceTensor& inv_freq, int head_dim, int rot_dim) {
  check(positions.dtype == DType::I32, op, "positions must be I32, got " + positions.describe());
  check(inv_freq.dtype == DType::F32 && inv_freq.numel() == rot_dim / 2, op,
        "inv_freq " + inv_freq.describe() + " must hold rot_dim/2 = " + std::to_string(rot_dim / 2) + " F32 values");
  check(head_dim > 0 && rot_dim > 0 && rot_dim <= head_dim && rot_dim % 2 == 0, op,
        "bad head_dim " + std::to_string(head_dim) + " / rot_dim " + std::to_string(rot_dim));
}

// Pair i of a head: its two dims (interleaved (2i, 2i+1), else (i, i + half)) and its angle's sin
// and cos, the angle inv_freq · pos rounded to f32 first.
struct RopePair {
  int a, c;
  float sn, cs;
  __device__ __forceinline__ RopePair(float pos, const float* inv_freq, int i, int half, bool interleaved)
      : a(interleaved ? 2 * i : i), c(interleaved ? 2 * i + 1 : i + half) {
    sincosf(__fmul_rn(pos, inv_freq[i]), &sn, &cs);
  }
  __device__ __forceinline__ float first(float x0, float x1) const { return __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn)); }
  __device__ __forceinline__ float second(float x0, float x1) const { return __fadd_rn(__fmul_rn(x1, cs), __fmul_rn(x0, sn)); }
};

}  // namespace kt::cuda

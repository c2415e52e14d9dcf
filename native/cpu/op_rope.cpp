// Rotary position embedding, in place, for both pairings Llama weights come in.
#include <cmath>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace kt::cpu {

void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, int head_dim, int rot_dim, bool interleaved) {
  const char* op = "rope";
  check(x.dtype == DType::F32, op, "x must be F32, got " + x.describe());
  check(positions.dtype == DType::I32, op, "positions must be I32, got " + positions.describe());
  check(inv_freq.dtype == DType::F32 && inv_freq.numel() == rot_dim / 2, op,
        "inv_freq " + inv_freq.describe() + " must hold rot_dim/2 = " + std::to_string(rot_dim / 2) + " F32 values");
  check(head_dim > 0 && rot_dim > 0 && rot_dim <= head_dim && rot_dim % 2 == 0, op,
        "bad head_dim " + std::to_string(head_dim) + " / rot_dim " + std::to_string(rot_dim));
  const int64_t T = positions.numel();
  check(T > 0 && x.numel() % (T * head_dim) == 0, op, "x " + x.describe() + " is not " + std::to_string(T) + " rows of heads of " + std::to_string(head_dim));
  const int64_t heads = x.numel() / (T * head_dim);
  const int half = rot_dim / 2;
  const float* f = inv_freq.as<float>();
  const int32_t* pos = positions.as<int32_t>();
  global_pool().parallel_for(T, 4, [&](int64_t b, int64_t e) {
    std::vector<float> cs(half), sn(half);
    for (int64_t t = b; t < e; ++t) {
      // The angle is rounded to f32 first, as Hugging Face computes it (inv_freq · pos in f32).
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[t]) * f[i];
        cs[i] = std::cos(angle);
        sn[i] = std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x.as<float>() + (t * heads + h) * head_dim;
        for (int i = 0; i < half; ++i) {
          const int a = interleaved ? 2 * i : i, c = interleaved ? 2 * i + 1 : i + half;
          const float x0 = v[a], x1 = v[c];
          v[a] = x0 * cs[i] - x1 * sn[i];
          v[c] = x1 * cs[i] + x0 * sn[i];
        }
      }
    }
  });
}

}  // namespace kt::cpu

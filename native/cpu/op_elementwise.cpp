// Row-wise and element-wise ops: embedding, RMSNorm, SiLU·mul, add, gather.
#include <cmath>
#include <cstring>

#include "cpu/ops.h"
#include "cpu/quant.h"
#include "cpu/thread_pool.h"

namespace kt::cpu {

static void check_f32(const Tensor& t, const char* op, const char* name) {
  check(t.dtype == DType::F32, op, std::string(name) + " must be F32, got " + t.describe());
}

void embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  const char* op = "embedding";
  check(table.shape.size() == 2, op, "table must be 2-D, got " + table.describe());
  check(ids.dtype == DType::I32, op, "ids must be I32, got " + ids.describe());
  check_f32(out, op, "out");
  const int64_t V = table.shape[0], D = table.shape[1], T = ids.numel();
  check(out.numel() == T * D, op, "out " + out.describe() + " does not hold " + std::to_string(T) + " rows of " + std::to_string(D));
  const TypeTraits* tr = type_traits(table.dtype);
  check(tr && dequantize_supported(table.dtype), op, "unsupported table type " + table.describe());
  check(D % tr->block_elems == 0, op, "row length " + std::to_string(D) + " is not a whole number of " + tr->name + " blocks");
  const int64_t rb = row_bytes(*tr, D);
  const int32_t* id = ids.as<int32_t>();
  for (int64_t t = 0; t < T; ++t) check(id[t] >= 0 && id[t] < V, op, "token id " + std::to_string(id[t]) + " outside vocabulary of " + std::to_string(V));
  global_pool().parallel_for(T, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      dequantize_row(table.dtype, static_cast<const uint8_t*>(table.data) + id[t] * rb, out.as<float>() + t * D, D);
  });
}

void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  const char* op = "rms_norm";
  check_f32(x, op, "x");
  check_f32(w, op, "weight");
  check_f32(out, op, "out");
  const int64_t D = w.numel();
  check(D > 0 && x.numel() % D == 0, op, "x " + x.describe() + " is not rows of weight " + w.describe());
  check(out.numel() == x.numel(), op, "out " + out.describe() + " differs from x " + x.describe());
  const int64_t rows = x.numel() / D;
  const float* wp = w.as<float>();
  global_pool().parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x.as<float>() + r * D;
      float* o = out.as<float>() + r * D;
      float ss = 0.f;  // f32 accumulation, as Hugging Face's float32 path does
      for (int64_t i = 0; i < D; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
      for (int64_t i = 0; i < D; ++i) o[i] = wp[i] * (xr[i] * inv);
    }
  });
}

void silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  const char* op = "silu_mul";
  check_f32(gate, op, "gate");
  check_f32(up, op, "up");
  check(gate.numel() == up.numel() && out.numel() == gate.numel(), op,
        "shapes differ: gate " + gate.describe() + ", up " + up.describe() + ", out " + out.describe());
  const float* g = gate.as<float>();
  const float* u = up.as<float>();
  float* o = out.as<float>();
  global_pool().parallel_for(gate.numel(), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void add_inplace(Tensor& a, const Tensor& b) {
  const char* op = "add";
  check_f32(a, op, "a");
  check_f32(b, op, "b");
  check(a.numel() == b.numel(), op, "shapes differ: " + a.describe() + " vs " + b.describe());
  float* ap = a.as<float>();
  const float* bp = b.as<float>();
  global_pool().parallel_for(a.numel(), 8192, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) ap[i] += bp[i];
  });
}

void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) {
  const char* op = "gather_rows";
  check_f32(x, op, "x");
  check(idx.dtype == DType::I32, op, "indices must be I32, got " + idx.describe());
  const int64_t rows = x.dim(0), D = x.numel() / std::max<int64_t>(rows, 1), n = idx.numel();
  check(out.numel() == n * D, op, "out " + out.describe() + " does not hold " + std::to_string(n) + " rows");
  const int32_t* ip = idx.as<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    check(ip[i] >= 0 && ip[i] < rows, op, "row " + std::to_string(ip[i]) + " outside " + x.describe());
    std::memcpy(out.as<float>() + i * D, x.as<float>() + ip[i] * D, D * sizeof(float));
  }
}

}  // namespace kt::cpu

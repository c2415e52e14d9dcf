// Paged KV cache writes and causal attention over it, for prefill chunks and decode alike.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace kt::cpu {

void store_kv(Tensor& k_cache, Tensor& v_cache, const Tensor& k, const Tensor& v, const Tensor& slots) {
  const char* op = "store_kv";
  check(k_cache.dtype == DType::F32 && v_cache.dtype == DType::F32, op, "caches must be F32");
  check(k_cache.shape == v_cache.shape && k_cache.shape.size() == 3, op, "caches must be [blocks, block_size, width], got " + k_cache.describe());
  check(slots.dtype == DType::I32, op, "slots must be I32, got " + slots.describe());
  const int64_t width = k_cache.shape[2], total = k_cache.shape[0] * k_cache.shape[1], T = slots.numel();
  check(k.numel() == T * width && v.numel() == T * width, op,
        "k " + k.describe() + " / v " + v.describe() + " are not " + std::to_string(T) + " rows of " + std::to_string(width));
  const int32_t* s = slots.as<int32_t>();
  for (int64_t t = 0; t < T; ++t) {
    check(s[t] >= 0 && s[t] < total, op, "slot " + std::to_string(s[t]) + " outside the cache of " + std::to_string(total));
    std::memcpy(k_cache.as<float>() + s[t] * width, k.as<float>() + t * width, width * sizeof(float));
    std::memcpy(v_cache.as<float>() + s[t] * width, v.as<float>() + t * width, width * sizeof(float));
  }
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& cu_q,
                     const Tensor& kv_lens, const Tensor& block_tables, int num_kv_heads, float scale, Tensor& out) {
  const char* op = "paged_attention";
  check(q.dtype == DType::F32 && out.dtype == DType::F32 && out.numel() == q.numel(), op, "q and out must be F32 of one shape");
  check(k_cache.shape.size() == 3 && v_cache.shape == k_cache.shape, op, "caches must be [blocks, block_size, width]");
  check(cu_q.dtype == DType::I32 && kv_lens.dtype == DType::I32 && block_tables.dtype == DType::I32, op, "metadata must be I32");
  const int64_t S = kv_lens.numel();
  check(cu_q.numel() == S + 1, op, "cu_q must have one more entry than kv_lens");
  check(block_tables.shape.size() == 2 && block_tables.shape[0] == S, op, "block_tables must be [S, max_blocks], got " + block_tables.describe());
  const int64_t nblocks = k_cache.shape[0], bs = k_cache.shape[1], width = k_cache.shape[2];
  check(num_kv_heads > 0 && width % num_kv_heads == 0, op, "cache width not divisible by kv heads");
  const int64_t D = width / num_kv_heads;
  const int32_t* cq = cu_q.as<int32_t>();
  const int64_t T = cq[S];
  check(T > 0 && q.numel() % (T * D) == 0, op, "q " + q.describe() + " does not match " + std::to_string(T) + " query rows");
  const int64_t H = q.numel() / (T * D);
  check(H % num_kv_heads == 0, op, "query heads not a multiple of kv heads");
  const int64_t group = H / num_kv_heads, max_blocks = block_tables.shape[1];
  const int32_t* lens = kv_lens.as<int32_t>();
  const int32_t* tables = block_tables.as<int32_t>();
  std::vector<int32_t> seq_of_row(T);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t qlen = cq[s + 1] - cq[s];
    check(qlen >= 0 && lens[s] >= qlen && lens[s] <= max_blocks * bs, op, "sequence " + std::to_string(s) + " has bad lengths");
    for (int64_t b = 0; b < (lens[s] + bs - 1) / bs; ++b) {
      const int32_t blk = tables[s * max_blocks + b];
      check(blk >= 0 && blk < nblocks, op, "block " + std::to_string(blk) + " outside the cache");
    }
    for (int64_t i = cq[s]; i < cq[s + 1]; ++i) seq_of_row[i] = static_cast<int32_t>(s);
  }
  const float* kc = k_cache.as<float>();
  const float* vc = v_cache.as<float>();
  global_pool().parallel_for(T * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<float> acc(D);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t row = job / H, h = job % H, kvh = h / group;
      const int64_t s = seq_of_row[row];
      const int64_t qlen = cq[s + 1] - cq[s];
      const int64_t n = lens[s] - qlen + (row - cq[s]) + 1;  // keys this query may see
      const float* qv = q.as<float>() + (row * H + h) * D;
      const int32_t* table = tables + s * max_blocks;
      scores.resize(n);
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const float* kv = kc + (static_cast<int64_t>(table[j / bs]) * bs + j % bs) * width + kvh * D;
        float dot = 0.f;
        for (int64_t d = 0; d < D; ++d) dot += qv[d] * kv[d];
        scores[j] = dot * scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0.f;
      for (int64_t j = 0; j < n; ++j) sum += (scores[j] = std::exp(scores[j] - mx));
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < n; ++j) {
        const float* vv = vc + (static_cast<int64_t>(table[j / bs]) * bs + j % bs) * width + kvh * D;
        const float p = scores[j];
        for (int64_t d = 0; d < D; ++d) acc[d] += p * vv[d];
      }
      float* o = out.as<float>() + (row * H + h) * D;
      const float inv = 1.0f / sum;
      for (int64_t d = 0; d < D; ++d) o[d] = acc[d] * inv;
    }
  });
}

}  // namespace kt::cpu

// CUDA implementations of the transformer ops, with the CPU ops' semantics (native/cpu/ops.h)
// and argument lists. Shapes are checked on the host; index data (token ids, slots, block
// tables, lengths) is checked against the host copy an uploaded I32 tensor keeps, so a bad
// index throws std::invalid_argument naming the op, as on the CPU, without a device sync.
// Every launch runs on stream() and is checked with check_launch("<kernel>").
#pragma once
#include "cuda/device_tensor.h"
#include "cuda/quantize_act.h"

namespace kt::cuda {

// out[t, :] = dequantized row ids[t] of table [V, D].
void embedding(const DeviceTensor& table, const DeviceTensor& ids, DeviceTensor& out);
// Rows of length w.numel(): out = x / rms(x) * w.
void rms_norm(const DeviceTensor& x, const DeviceTensor& w, float eps, DeviceTensor& out);
// x += delta, then out = rms_norm(x): the residual add and the next norm in one launch.
void add_rms_norm(DeviceTensor& x, const DeviceTensor& delta, const DeviceTensor& w, float eps, DeviceTensor& out);
// out[M, N] = x[M, K] · w[N, K]ᵀ (see options().precision for how M > gemv_max_rows runs).
void matmul(const DeviceTensor& x, const DeviceTensor& w, DeviceTensor& out);
// outs[i] = x · ws[i]ᵀ for each i: one GEMV launch where the GEMV path takes every weight and
// gemv_group_supported says they go together (a layer's q, k, v), else one matmul each.
void matmul_group(const DeviceTensor& x, const DeviceTensor* const* ws, DeviceTensor* const* outs, int count);
// out = silu(x · gateᵀ) · (x · upᵀ): one GEMV launch where it can (as matmul_group), else two
// matmuls and silu_mul.
void matmul_silu_mul(const DeviceTensor& x, const DeviceTensor& gate, const DeviceTensor& up, DeviceTensor& out);
// Rotates x [T, H * head_dim] in place (interleaved pairs (2i, 2i+1), else (i, i + rot_dim/2)).
void rope(DeviceTensor& x, const DeviceTensor& positions, const DeviceTensor& inv_freq, int head_dim, int rot_dim, bool interleaved);
// Writes k, v [T, Hkv * D] into the paged caches [blocks, block_size, Hkv * D] at slots[t].
void store_kv(DeviceTensor& k_cache, DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v, const DeviceTensor& slots);
// rope(q) in place, then k rotated (k is left unrotated) and v written at slots: rope, rope and
// store_kv in one launch, bit-identical to them.
void rope_store_kv(DeviceTensor& q, DeviceTensor& k_cache, DeviceTensor& v_cache, const DeviceTensor& k, const DeviceTensor& v,
                   const DeviceTensor& positions, const DeviceTensor& slots, const DeviceTensor& inv_freq, int head_dim, int rot_dim,
                   bool interleaved);
// K and V caches both [blocks, block_size, width], both F32 or both BF16 (store, fused store, attention).
inline void check_kv_caches(const char* op, const DeviceTensor& k_cache, const DeviceTensor& v_cache) {
  check(k_cache.dtype == v_cache.dtype && (k_cache.dtype == DType::F32 || k_cache.dtype == DType::BF16), op, "caches must be both F32 or both BF16");
  check(k_cache.shape == v_cache.shape && k_cache.shape.size() == 3, op, "caches must be [blocks, block_size, width], got " + k_cache.describe());
}
// Causal attention of q [T, H * D] over each sequence's cached keys and values (cpu/ops.h).
// table_stride (optional I32 [1]): the block table's row stride in entries, read on the device, so
// a graph captured over a wide table buffer can replay over a compact table of any width.
void paged_attention(const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache, const DeviceTensor& cu_q,
                     const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale, DeviceTensor& out,
                     const DeviceTensor* table_stride = nullptr);
// The shapes of a paged_attention call, as check_paged_attention found them (one check for both kernels).
struct AttentionShape {
  int64_t S, T, H, D, block_size, width, max_blocks;
  int64_t max_qlen;  // the longest sequence's query rows, or -1 where the index data has no host copy
  int64_t min_qlen;  // the shortest's, or -1 likewise
};
AttentionShape check_paged_attention(const char* op, const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache,
                                     const DeviceTensor& cu_q, const DeviceTensor& kv_lens, const DeviceTensor& block_tables,
                                     int num_kv_heads, const DeviceTensor& out, const DeviceTensor* table_stride);
// paged_attention on the tensor cores, FlashAttention-2 style (paged_attention_prefill.cu): bf16 Q, K,
// V and P, f32 softmax and sums, for the sequences with min_qlen query rows or more (the others' rows
// are left to attention_rows). Head dims 64 and 128 only.
bool prefill_attention_supported(const AttentionShape& shape, const DeviceTensor& q, const DeviceTensor& k_cache,
                                 const DeviceTensor& v_cache, const DeviceTensor& out);
// checked: the shape from check_paged_attention where the caller has already checked (the hook in
// paged_attention); null checks here.
void paged_attention_prefill(const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache, const DeviceTensor& cu_q,
                             const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale,
                             DeviceTensor& out, const DeviceTensor* table_stride = nullptr, const AttentionShape* checked = nullptr,
                             int min_qlen = 0);
// The rows of paged_attention outside the prefill kernel (paged_attention_decode.cu): one block per
// (row, KV head, key split) for the group's heads; head dims 64, 128, 256. With splits > 1 it writes
// partials (part_acc [T, H, splits, D], part_ml [T, H, splits, 2]) for the merge kernel. Rows of
// sequences with skip_qlen query rows or more are left alone (the prefill kernel's).
// With splits and counters (zeroed, one per row and KV head batch: T · num_kv_heads · head batches),
// the last split block of each merges the splits itself (no merge kernel) and zeroes its counter
// again; with q8/q8d too it writes out's rows in q8_K (layout of quantize_act.h), where each block's
// heads hold 4 values a thread (attention_rows_group(H, kv) · D == 4 · attention_rows_threads()).
bool attention_rows_supported(int64_t head_dim);
int attention_rows_group(int H, int num_kv_heads);
int attention_rows_threads();
void attention_rows(const AttentionShape& shape, const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache,
                    const DeviceTensor& cu_q, const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale,
                    DeviceTensor& out, const DeviceTensor* table_stride, int splits, int min_chunk, float* part_acc, float* part_ml,
                    int skip_qlen = 0x7fffffff, int* counters = nullptr, int8_t* q8 = nullptr, float* q8d = nullptr);
// n zeroed ints that stay allocated (attention_rows' split counters; each user leaves them zeroed),
// or null where n exceeds what was set aside: the current device's. The first call on a device
// allocates them; call it before any capture (capture_begin does).
int* split_counters(int64_t n);
// One token id per row of logits [B, V] (sample.cu): params F32 [B, 4] (temperature, top-k, top-p,
// min-p), seeds I32 [B, 2] (seed, counter); out I32 [B]. Capturable: no sync, no data-dependent allocation.
void sample(const DeviceTensor& logits, const DeviceTensor& params, const DeviceTensor& seeds, DeviceTensor& out);
// logits [B, V] in place, per entry e < count[0] (penalties.cu): x = logits[row, token] for index[e] = (row,
// token), values[e] = (bias, rep, sub): x += bias; if rep != 1, x = x > 0 ? x / rep : x * rep; x -= sub.
// index I32 [cap, 2], values F32 [cap, 3], count I32 [1] read on the device (capturable at a fixed cap).
// Each (row, token) at most once; entries outside [B, V] are skipped.
void apply_penalties(DeviceTensor& logits, const DeviceTensor& index, const DeviceTensor& values, const DeviceTensor& count);
// out = silu(gate) * up.
void silu_mul(const DeviceTensor& gate, const DeviceTensor& up, DeviceTensor& out);
// a += b.
void add_inplace(DeviceTensor& a, const DeviceTensor& b);
// out[i, :] = x[idx[i], :].
void gather_rows(const DeviceTensor& x, const DeviceTensor& idx, DeviceTensor& out);

// ---- matmul pieces (matmul_gemv.cu, matmul_dequant.cu), called by matmul() ----
// out[m, n] for m < M, n < N, weights of type wt dequantized in registers: quantized types take
// activations rounded to q8 (as the CPU and llama.cpp do) and int8 dot products; F32/F16/BF16 take f32.
// q8k: x's rows already in q8_K (DeviceTensor::q8k), used where the weights read that format.
void gemv(const void* w, DType wt, int64_t row_bytes, const float* x, int64_t M, int64_t K, int64_t N, float* out,
          const ActQ* q8k = nullptr);
// One weight of a GEMV group: N rows of type `type`, row_bytes apart; results to out [M, N].
struct GemvWeight {
  const void* w;
  DType type;
  int64_t row_bytes;
  int64_t N;
  float* out;
};
// True where these weight types can share one gemv_group launch (one activation format: all of
// Q4_K/Q6_K, or all Q8_0, or all of BF16/F16), at most 3 of them.
bool gemv_group_supported(const DType* types, int count);
// x [M, K] (M 1 or 2) against `count` weights in one launch, the activations quantized once (the
// GEMV kernels' arithmetic). silu_mul: two weights (gate, up) of one type and N; ws[0].out gets
// silu(x · gateᵀ) · (x · upᵀ) with silu_mul's rounding.
void gemv_group(const GemvWeight* ws, int count, const float* x, int64_t M, int64_t K, bool silu_mul, const ActQ* q8k = nullptr);
// Dequantizes `rows` rows of K elements (row_bytes apart) into dst as f32 or bf16 (row-major, K apart).
void dequantize_rows_f32(const void* w, DType wt, int64_t row_bytes, int64_t K, int64_t rows, float* dst);
void dequantize_rows_bf16(const void* w, DType wt, int64_t row_bytes, int64_t K, int64_t rows, void* dst);
// dst[i] = round(src[i]) to bf16 or f16 (round to nearest even).
void convert_f32_to_bf16(const float* src, void* dst, int64_t n);
void convert_f32_to_f16(const float* src, void* dst, int64_t n);
// Quantized weights (Q4_K, Q6_K) in bf16 tensor-core fragments dequantized in registers (matmul_mma.cu).
bool mma_supported(DType wt, int64_t K);
void matmul_mma(const void* w, DType wt, int64_t row_bytes, const float* x, int64_t M, int64_t K, int64_t N, float* out);
// Rows up to which matmul takes the GEMV path for weights of type wt (options().gemv_max_rows < 0).
int default_gemv_rows(DType wt);
// True where the device kernels handle weights of type wt with rows of K elements.
bool matmul_type_supported(DType wt, int64_t K);

}  // namespace kt::cuda

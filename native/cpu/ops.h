// CPU implementations of the transformer ops the backend interface exposes.
// Every op checks its shapes and throws std::invalid_argument naming itself.
#pragma once
#include "cpu/tensor.h"

namespace kt::cpu {

// out[t, :] = dequantized row ids[t] of table [V, D].
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);
// Rows of length w.numel(): out = x / rms(x) * w.
void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out);
// out[M, N] = x[M, K] · w[N, K]ᵀ for every weight type matmul supports.
void matmul(const Tensor& x, const Tensor& w, Tensor& out);
// Rotates x [T, H * head_dim] in place by position; `interleaved` pairs (2i, 2i+1) as GGUF
// Llama weights expect, otherwise (i, i + rot_dim/2) as Hugging Face's rotate_half does.
// Only the first rot_dim dims of each head rotate (DeepSeek's rope part).
void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, int head_dim, int rot_dim, bool interleaved);
// Writes k, v [T, Hkv * D] into the paged caches [blocks, block_size, Hkv * D] at slots[t].
void store_kv(Tensor& k_cache, Tensor& v_cache, const Tensor& k, const Tensor& v, const Tensor& slots);
// Causal attention of q [T, H * D] over each sequence's cached keys and values.
// cu_q [S+1]: query rows of sequence s are cu_q[s] .. cu_q[s+1]; kv_lens [S]: cached length after
// this step; block_tables [S, max_blocks]. Query row i of s sits at position kv_len - q_len + (i - cu_q[s]).
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& cu_q,
                     const Tensor& kv_lens, const Tensor& block_tables, int num_kv_heads, float scale, Tensor& out);
// out = silu(gate) * up.
void silu_mul(const Tensor& gate, const Tensor& up, Tensor& out);
// Mixture of Experts, as the MoE op contract (notes/moe-contract.md) defines them.
enum class MoeScoring : int { Softmax = 0, Sigmoid = 1 };
enum class MoeGroupScore : int { Max = 0, Top2Sum = 1 };
struct MoeRouteSpec {
  MoeScoring scoring;
  int top_k;
  int num_groups, top_k_groups;  // num_groups 1: no group limit
  MoeGroupScore group_score;
  bool normalize;
  float scale;
};
// Router: logits [T, E] (and an optional selection bias [E], which chooses but never weighs) to
// the k experts of each token, best first (ties: lower id), ids I32 [T, k] and weights F32 [T, k].
void moe_route(const Tensor& logits, const Tensor* bias, const MoeRouteSpec& spec, Tensor& ids, Tensor& weights);
// out [T, H] = sum over slots j in order of weights[t, j] * down_e · (silu(gate_e · x_t) * (up_e · x_t)), e = ids[t, j];
// gate, up [E, I, H], down [E, H, I] of any matmul weight type. A token's bits do not depend on the batch.
void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate, const Tensor& up,
                 const Tensor& down, Tensor& out);
// a += b.
void add_inplace(Tensor& a, const Tensor& b);
// out[i, :] = x[idx[i], :].
void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out);

}  // namespace kt::cpu

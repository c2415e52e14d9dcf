// MoE routing on the device: for each token, scores (softmax or sigmoid) of its E router logits,
// an optional selection bias, group-limited selection, top-k, and the weights. One warp per token
// with E ≤ 512 scores in registers (lane l holds experts l, l + 32, ...); every reduction is a
// fixed butterfly or a loop in a fixed order, so a token's ids and weights never depend on the
// other tokens or on timing.
#include <cmath>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/moe.h"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

constexpr int kMaxExperts = 512;
constexpr int kPer = kMaxExperts / 32;  // scores a lane holds
constexpr int kWarps = 4;               // tokens a block

struct RouteArgs {
  const float* logits;
  const float* bias;  // or null
  int T, E;
  MoeRouteSpec spec;
  int* ids;
  float* weights;
};

// The better of two candidates (value, index): the larger value; on a tie the lower index.
__device__ __forceinline__ bool better(float v, int i, float v2, int i2) { return v > v2 || (v == v2 && i < i2); }

// The warp's best candidate (every lane gets it).
__device__ __forceinline__ void warp_best(float& v, int& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v2 = __shfl_xor_sync(0xffffffffu, v, o);
    const int i2 = __shfl_xor_sync(0xffffffffu, i, o);
    if (better(v2, i2, v, i)) v = v2, i = i2;
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_add(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The bitmask of the groups kept (G ≤ 32): the top_k_groups best group scores, a group's score being
// the max of its choice scores c or the sum of its two largest. c of the warp's token is staged in
// shared memory so that lane g can walk group g's consecutive experts.
__device__ uint32_t kept_groups(const float (&c)[kPer], int lane, int E, const MoeRouteSpec& s, float* staged) {
#pragma unroll
  for (int i = 0; i < kPer; ++i)
    if (i * 32 + lane < E) staged[i * 32 + lane] = c[i];
  __syncwarp();
  const int size = E / s.num_groups;
  float score = -INFINITY;
  if (lane < s.num_groups) {
    float m1 = -INFINITY, m2 = -INFINITY;
    for (int e = lane * size; e < (lane + 1) * size; ++e) {
      const float v = staged[e];
      if (v > m1) m2 = m1, m1 = v;
      else if (v > m2) m2 = v;
    }
    score = s.top2sum ? m1 + m2 : m1;
  }
  __syncwarp();  // staged is the next token's (none here, but keep the contract simple)
  uint32_t kept = 0;
  for (int r = 0; r < s.top_k_groups; ++r) {
    float v = lane < s.num_groups && !(kept >> lane & 1u) ? score : -INFINITY;
    int g = lane < s.num_groups && !(kept >> lane & 1u) ? lane : 1 << 30;
    warp_best(v, g);
    kept |= 1u << g;
  }
  return kept;
}

__global__ void __launch_bounds__(32 * kWarps) moe_route_kernel(const RouteArgs a) {
  pdl_trigger();
  pdl_wait();
  __shared__ float staged[kWarps][kMaxExperts];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int t = blockIdx.x * kWarps + warp;
  if (t >= a.T) return;  // warp-uniform; no block barrier below
  const MoeRouteSpec& s = a.spec;
  const float* row = a.logits + static_cast<int64_t>(t) * a.E;

  float sc[kPer], c[kPer];  // scores s (they weigh) and choice scores c = s + bias (they choose)
#pragma unroll
  for (int i = 0; i < kPer; ++i) sc[i] = i * 32 + lane < a.E ? row[i * 32 + lane] : -INFINITY;
  if (s.sigmoid) {
#pragma unroll
    for (int i = 0; i < kPer; ++i) sc[i] = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-sc[i])));
  } else {
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < kPer; ++i) mx = fmaxf(mx, sc[i]);
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      sc[i] = i * 32 + lane < a.E ? expf(sc[i] - mx) : 0.f;
      sum += sc[i];
    }
    sum = warp_add(sum);
#pragma unroll
    for (int i = 0; i < kPer; ++i) sc[i] = __fdiv_rn(sc[i], sum);
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = i * 32 + lane;
    c[i] = e < a.E ? (a.bias ? __fadd_rn(sc[i], a.bias[e]) : sc[i]) : -INFINITY;
  }
  if (s.num_groups > 1) {
    const uint32_t kept = kept_groups(c, lane, a.E, s, staged[warp]);
    const int size = a.E / s.num_groups;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (i * 32 + lane < a.E && !(kept >> ((i * 32 + lane) / size) & 1u)) c[i] = -INFINITY;
  }

  // k rounds of the warp's best remaining candidate; lane j keeps the j-th pick (id, score).
  uint32_t taken = 0;  // bit i: this lane's candidate i is picked
  int my_id = 0;
  float my_w = 0.f;
  for (int j = 0; j < s.top_k; ++j) {
    float v = -INFINITY;
    int e = 1 << 30, slot = -1;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int ei = i * 32 + lane;
      if (ei < a.E && !(taken >> i & 1u) && better(c[i], ei, v, e)) v = c[i], e = ei, slot = i;
    }
    float w = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (i == slot) w = sc[i];
    const int mine = e;
    warp_best(v, e);
    if (mine == e && slot >= 0) taken |= 1u << slot;
    const int owner = e % 32;  // lane e mod 32 holds expert e
    w = __shfl_sync(0xffffffffu, w, owner);
    if (lane == j) my_id = e, my_w = w;
  }
  if (s.normalize) {
    float sum = 0.f;  // in pick order, as the CPU sums
    for (int j = 0; j < s.top_k; ++j) sum = __fadd_rn(sum, __shfl_sync(0xffffffffu, my_w, j));
    my_w = __fdiv_rn(my_w, __fadd_rn(sum, 1e-20f));
  }
  my_w = __fmul_rn(my_w, s.scale);
  if (lane < s.top_k) {
    a.ids[static_cast<int64_t>(t) * s.top_k + lane] = my_id;
    a.weights[static_cast<int64_t>(t) * s.top_k + lane] = my_w;
  }
}

}  // namespace

void moe_route(const DeviceTensor& logits, const DeviceTensor* bias, const MoeRouteSpec& s, DeviceTensor& ids, DeviceTensor& weights) {
  const char* op = "moe_route";
  check(logits.dtype == DType::F32 && logits.shape.size() == 2, op, "logits must be F32 [T, E], got " + logits.describe());
  const int64_t T = logits.shape[0], E = logits.shape[1];
  check(E >= 1 && E <= kMaxExperts, op, "at most " + std::to_string(kMaxExperts) + " experts, got " + std::to_string(E));
  check(s.top_k >= 1 && s.top_k <= 32 && s.top_k <= E, op, "top_k must be in 1 .. min(32, E), got " + std::to_string(s.top_k));
  check(s.num_groups >= 1 && s.num_groups <= 32 && E % s.num_groups == 0, op,
        "num_groups must divide E (" + std::to_string(E) + ") and be at most 32, got " + std::to_string(s.num_groups));
  if (s.num_groups > 1) {
    check(s.top_k_groups >= 1 && s.top_k_groups <= s.num_groups, op, "top_k_groups must be in 1 .. num_groups");
    check(s.top_k <= s.top_k_groups * (E / s.num_groups), op, "top_k exceeds the experts of the kept groups");
    check(!s.top2sum || E / s.num_groups >= 2, op, "top2sum needs groups of at least 2 experts");
  }
  check(std::isfinite(s.scale), op, "scale must be finite");
  if (bias) check(bias->dtype == DType::F32 && bias->numel() == E, op, "bias must be F32 [E], got " + bias->describe());
  check(ids.dtype == DType::I32 && ids.numel() == T * s.top_k, op, "ids must be I32 [T, k], got " + ids.describe());
  check(weights.dtype == DType::F32 && weights.numel() == T * s.top_k, op, "weights must be F32 [T, k], got " + weights.describe());
  check(T < (1LL << 31) / 32, op, "too many tokens");
  ids.host_i32.clear();  // written on the device: no host copy to check against
  if (T == 0) return;
  const RouteArgs a{logits.as<float>(), bias ? bias->as<float>() : nullptr, static_cast<int>(T), static_cast<int>(E), s, ids.as<int>(),
                    weights.as<float>()};
  launch_pdl("moe_route_kernel", moe_route_kernel, dim3(blocks_for(T, kWarps)), dim3(32 * kWarps), 0, a);
}

}  // namespace kt::cuda

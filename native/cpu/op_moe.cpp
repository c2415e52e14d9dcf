// Mixture-of-Experts on the CPU, as the MoE op contract (notes/moe-contract.md) defines it: the router's choice of k
// experts per token, and the chosen experts' SwiGLU FFNs over 3-D weight tensors, weighted and summed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/matmul.h"
#include "cpu/ops.h"
#include "cpu/quant.h"
#include "cpu/thread_pool.h"

namespace kt::cpu {

namespace {

// ---- router ----

// Writes the indices of the n largest v[i] (i < count, keep(i)) to out in descending order, ties
// to the lower index; returns how many there were. Insertion keeps it O(count) for small n, and
// a NaN (never greater) cannot break it the way it breaks a sort's ordering.
template <class Keep>
int top_n(const float* v, int count, int n, Keep keep, int* out) {
  int have = 0;
  for (int i = 0; i < count; ++i) {
    if (!keep(i) || (have == n && !(v[i] > v[out[n - 1]]))) continue;
    int p = have < n ? have++ : n - 1;
    for (; p > 0 && v[i] > v[out[p - 1]]; --p) out[p] = out[p - 1];
    out[p] = i;
  }
  return have;
}

// Per-token scratch of one chunk of router rows.
struct RouteScratch {
  std::vector<float> s, c, group_score;  // scores, choice scores (E each), group scores (G)
  std::vector<int> pick, top;
  std::vector<char> group_kept;
  RouteScratch(int E, int G, int k) : s(E), c(E), group_score(G), pick(std::max(G, 2)), top(k), group_kept(G) {}
};

// One token's logits l [E] to ids and weights [k], by the contract's five steps.
void route_row(const float* l, const float* bias, int E, const MoeRouteSpec& sp, RouteScratch& r, int32_t* ids, float* w) {
  float* s = r.s.data();
  float* c = r.c.data();
  if (sp.scoring == MoeScoring::Softmax) {
    float mx = l[0], sum = 0;
    for (int e = 1; e < E; ++e) mx = std::max(mx, l[e]);
    for (int e = 0; e < E; ++e) sum += s[e] = std::exp(l[e] - mx);
    for (int e = 0; e < E; ++e) s[e] /= sum;
  } else {
    for (int e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + std::exp(-l[e]));
  }
  for (int e = 0; e < E; ++e) c[e] = bias ? s[e] + bias[e] : s[e];
  const int G = sp.num_groups, size = E / G;
  const auto all = [](int) { return true; };
  std::fill(r.group_kept.begin(), r.group_kept.end(), G == 1);
  if (G > 1) {
    int* p = r.pick.data();
    for (int g = 0; g < G; ++g) {
      const float* cg = c + g * size;
      const int n = top_n(cg, size, sp.group_score == MoeGroupScore::Max ? 1 : 2, all, p);
      r.group_score[g] = n == 1 ? cg[p[0]] : cg[p[0]] + cg[p[1]];  // max, or the sum of the 2 largest
    }
    const int n = top_n(r.group_score.data(), G, sp.top_k_groups, all, p);
    for (int i = 0; i < n; ++i) r.group_kept[p[i]] = 1;
  }
  top_n(c, E, sp.top_k, [&](int e) { return r.group_kept[e / size] != 0; }, r.top.data());
  float sum = 0;
  for (int j = 0; j < sp.top_k; ++j) {
    ids[j] = r.top[j];
    sum += w[j] = s[r.top[j]];  // the unbiased score: the bias only chooses
  }
  for (int j = 0; j < sp.top_k; ++j) w[j] = (sp.normalize ? w[j] / (sum + 1e-20f) : w[j]) * sp.scale;
}

// ---- experts ----

// One projection of every expert: rows [e*N, (e+1)*N) of a [E, N, K] weight tensor.
struct Projection {
  const uint8_t* w;
  int64_t N;
  detail::WeightKernels k;
  const uint8_t* rows(int64_t e, int64_t n0) const { return w + (e * N + n0) * k.rb; }
};

// A projection's input: one row per (token, slot) assignment in expert order, in the form its
// kernels take (quantized act rows, or f32 rows ld apart).
struct Input {
  detail::ActBuffers act;
  std::vector<float> f;
  const float* x = nullptr;
  int64_t ld = 0;
};

// out[m*ldo + r] = w_e row (n0 + r) · input row (m0 + m), for m < M, r < rows.
void project(const Projection& p, const Input& in, int64_t e, int64_t m0, int64_t M, int64_t n0, int64_t rows, float* out,
             int64_t ldo) {
  if (p.k.quantized) detail::quant_rows(p.k, p.rows(e, n0), rows, detail::act_rows_from(in.act.rows, m0), M, out, ldo);
  else detail::plain_rows(p.k, p.rows(e, n0), rows, in.x + m0 * in.ld, in.ld, M, out, ldo);
}

// x's rows (token[i] for i < n) gathered for p: quantized once per token, then copied per
// assignment, since quantizing a row is the same work whichever experts use it.
void gather_input(const Projection& p, const float* x, int64_t T, int64_t K, const std::vector<int32_t>& token, Input* in,
                  ThreadPool& pool) {
  const int64_t n = static_cast<int64_t>(token.size());
  if (!p.k.quantized) {
    in->ld = K + 16;  // one cache line past a power-of-two stride, as matmul pads its x
    in->f.resize(static_cast<size_t>(n * in->ld));
    for (int64_t i = 0; i < n; ++i) std::memcpy(in->f.data() + i * in->ld, x + token[i] * K, K * sizeof(float));
    in->x = in->f.data();
    return;
  }
  detail::ActBuffers once;
  detail::quantize_rows(p.k.qk, x, T, K, K, &once, pool);
  const detail::ActRows& a = once.rows;
  const int64_t nb = a.blocks;
  detail::ActBuffers& g = in->act;
  g.q.resize(static_cast<size_t>(n * K));
  g.d.resize(static_cast<size_t>(n * nb));
  g.s.resize(a.s ? static_cast<size_t>(n * nb) : 0);
  g.sums.resize(static_cast<size_t>(n * K / 16));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = token[i];
    std::memcpy(g.q.data() + i * K, a.q + t * K, K);
    std::memcpy(g.d.data() + i * nb, a.d + t * nb, nb * sizeof(float));
    if (a.s) std::memcpy(g.s.data() + i * nb, a.s + t * nb, nb * sizeof(float));
    std::memcpy(g.sums.data() + i * (K / 16), a.sums + t * (K / 16), K / 16 * sizeof(int16_t));
  }
  g.rows = detail::ActRows{g.q.data(), g.d.data(), a.s ? g.s.data() : nullptr, g.sums.data(), K, nb};
}

bool same_input(const Projection& a, const Projection& b) {
  return a.k.quantized == b.k.quantized && (!a.k.quantized || a.k.qk.act == b.k.qk.act);
}

// Weight rows [n0, n0 + rows) of expert e, against all of that expert's assignments.
struct Item {
  int64_t e, n0, rows;
};

// A weight row costs about (its tokens + kRowCost) token-row dot products, kRowCost for
// streaming and decoding it: one Q4_K row of 2048 took 430 + 32 M ns for M tokens, a Q6_K row
// of 768 about 300 + 15 M (one core, weights from DRAM).
constexpr double kRowCost = 16;

// Cuts every used expert's N rows into items of about equal cost: the busiest expert's of `unit`
// rows (one kernel pass), the others' proportionally longer. The pool hands out contiguous runs of
// items, so equal items balance the threads however skewed the experts' loads are.
std::vector<Item> split(const std::vector<int64_t>& count, int64_t N, int64_t unit) {
  const double most = static_cast<double>(*std::max_element(count.begin(), count.end()));
  const int64_t max_units = (N + unit - 1) / unit;
  std::vector<Item> items;
  for (int64_t e = 0; e < static_cast<int64_t>(count.size()); ++e) {
    if (count[e] == 0) continue;
    const int64_t units = std::clamp<int64_t>(std::llround((most + kRowCost) / (count[e] + kRowCost)), 1, max_units);
    for (int64_t n0 = 0; n0 < N; n0 += units * unit) items.push_back({e, n0, std::min(units * unit, N - n0)});
  }
  return items;
}

// Floats that need no zeroing: every one is written before it is read.
std::unique_ptr<float[]> floats(int64_t n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]); }

void check_weight(const Tensor& w, const char* name, int64_t E, int64_t N, int64_t K) {
  const char* op = "moe_experts";
  const std::string want = "[" + std::to_string(E) + ", " + std::to_string(N) + ", " + std::to_string(K) + "]";
  check(w.shape.size() == 3 && w.shape[0] == E && w.shape[1] == N && w.shape[2] == K, op,
        std::string(name) + " must be " + want + ", got " + w.describe());
  check(matmul_supported(w.dtype), op, std::string(name) + ": unsupported weight type " + w.describe());
  const TypeTraits* tr = quant_traits(w.dtype);
  check(K % tr->block_elems == 0, op,
        std::string(name) + " rows of " + std::to_string(K) + " are not whole " + tr->name + " blocks of " + std::to_string(tr->block_elems));
}

}  // namespace

void moe_route(const Tensor& logits, const Tensor* bias, const MoeRouteSpec& sp, Tensor& ids, Tensor& weights) {
  const char* op = "moe_route";
  check(logits.dtype == DType::F32 && logits.shape.size() == 2, op, "logits must be F32 [T, E], got " + logits.describe());
  const int64_t T = logits.shape[0], E = logits.shape[1];
  const std::string es = std::to_string(E);
  check(E > 0 && E < (int64_t{1} << 30), op, "logits " + logits.describe() + " have no experts");
  check(!bias || (bias->dtype == DType::F32 && bias->numel() == E), op, "selection bias must be F32 [" + es + "], got " + (bias ? bias->describe() : ""));
  check(sp.scoring == MoeScoring::Softmax || sp.scoring == MoeScoring::Sigmoid, op, "scoring must be softmax (0) or sigmoid (1)");
  check(sp.group_score == MoeGroupScore::Max || sp.group_score == MoeGroupScore::Top2Sum, op, "group score must be max (0) or top2sum (1)");
  check(sp.num_groups >= 1 && E % sp.num_groups == 0, op, std::to_string(sp.num_groups) + " groups do not split " + es + " experts evenly");
  const int64_t size = E / sp.num_groups;
  check(sp.top_k_groups >= 1 && sp.top_k_groups <= sp.num_groups, op,
        "topKGroups " + std::to_string(sp.top_k_groups) + " is not in [1, " + std::to_string(sp.num_groups) + "]");
  check(sp.num_groups == 1 || sp.group_score == MoeGroupScore::Max || size >= 2, op, "top2sum needs groups of at least 2 experts");
  const int64_t reachable = sp.num_groups == 1 ? E : sp.top_k_groups * size;
  check(sp.top_k >= 1 && sp.top_k <= reachable, op,
        "topK " + std::to_string(sp.top_k) + " is not in [1, " + std::to_string(reachable) + "] (the experts the kept groups hold)");
  check(std::isfinite(sp.scale), op, "scale must be finite");
  const int64_t k = sp.top_k;
  check(ids.dtype == DType::I32 && ids.numel() == T * k, op, "ids must be I32 [" + std::to_string(T) + ", " + std::to_string(k) + "], got " + ids.describe());
  check(weights.dtype == DType::F32 && weights.numel() == T * k, op, "weights must be F32 [" + std::to_string(T) + ", " + std::to_string(k) + "], got " + weights.describe());
  const float* b = bias ? bias->as<float>() : nullptr;
  global_pool().parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    RouteScratch r(static_cast<int>(E), sp.num_groups, sp.top_k);
    for (int64_t t = t0; t < t1; ++t)
      route_row(logits.as<float>() + t * E, b, static_cast<int>(E), sp, r, ids.as<int32_t>() + t * k, weights.as<float>() + t * k);
  });
}

void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate, const Tensor& up,
                 const Tensor& down, Tensor& out) {
  const char* op = "moe_experts";
  check(gate.shape.size() == 3, op, "gate must be [E, I, H], got " + gate.describe());
  const int64_t E = gate.shape[0], I = gate.shape[1], H = gate.shape[2];
  check(E > 0 && I > 0 && H > 0, op, "gate " + gate.describe() + " is empty");
  check_weight(gate, "gate", E, I, H);
  check_weight(up, "up", E, I, H);
  check_weight(down, "down", E, H, I);
  check(x.dtype == DType::F32 && x.shape.size() == 2 && x.shape[1] == H, op,
        "x must be F32 [T, " + std::to_string(H) + "], got " + x.describe());
  const int64_t T = x.shape[0];
  check(ids.dtype == DType::I32 && ids.shape.size() == 2 && ids.shape[0] == T, op,
        "ids must be I32 [" + std::to_string(T) + ", k], got " + ids.describe());
  const int64_t k = ids.shape[1], n = T * k;
  check(weights.dtype == DType::F32 && weights.shape == ids.shape, op, "weights must be F32 like ids " + ids.describe() + ", got " + weights.describe());
  check(out.dtype == DType::F32 && out.numel() == T * H, op, "out must be F32 [" + std::to_string(T) + ", " + std::to_string(H) + "], got " + out.describe());
  const int32_t* id = ids.as<int32_t>();
  for (int64_t a = 0; a < n; ++a)
    check(id[a] >= 0 && id[a] < E, op, "expert id " + std::to_string(id[a]) + " at ids[" + std::to_string(a / k) + ", " +
                                           std::to_string(a % k) + "] is outside [0, " + std::to_string(E) + ")");
  if (T == 0) return;
  ThreadPool& pool = global_pool();

  // Assignments a = t*k + j grouped by expert (counting sort, tokens ascending within one):
  // expert e's are rows start[e] .. start[e] + count[e] of every per-assignment buffer.
  std::vector<int64_t> count(static_cast<size_t>(E), 0), start(static_cast<size_t>(E) + 1, 0);
  for (int64_t a = 0; a < n; ++a) ++count[id[a]];
  for (int64_t e = 0; e < E; ++e) start[e + 1] = start[e] + count[e];
  std::vector<int64_t> row_of(static_cast<size_t>(n));
  std::vector<int32_t> token(static_cast<size_t>(n));
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t a = 0; a < n; ++a) {
      row_of[a] = next[id[a]]++;
      token[row_of[a]] = static_cast<int32_t>(a / k);
    }
  }

  const Projection pg{static_cast<const uint8_t*>(gate.data), I, detail::weight_kernels(gate.dtype, H)};
  const Projection pu{static_cast<const uint8_t*>(up.data), I, detail::weight_kernels(up.dtype, H)};
  const Projection pd{static_cast<const uint8_t*>(down.data), H, detail::weight_kernels(down.dtype, I)};
  Input in_g, in_u_own, in_d;
  gather_input(pg, x.as<float>(), T, H, token, &in_g, pool);
  const bool shared = same_input(pg, pu);
  if (!shared) gather_input(pu, x.as<float>(), T, H, token, &in_u_own, pool);
  const Input& in_u = shared ? in_g : in_u_own;

  // h = silu(gate · x) * (up · x) per assignment, one loop over (expert, rows of I) items.
  const int64_t ldh = I + 16;
  const std::unique_ptr<float[]> h = floats(n * ldh);
  const std::vector<Item> gu = split(count, I, std::max(pg.k.rows, pu.k.rows));
  pool.parallel_for(static_cast<int64_t>(gu.size()), 1, [&](int64_t b, int64_t end) {
    thread_local std::vector<float> u;
    for (int64_t i = b; i < end; ++i) {
      const Item& it = gu[i];
      const int64_t m0 = start[it.e], M = count[it.e];
      float* g = h.get() + m0 * ldh + it.n0;
      u.resize(static_cast<size_t>(M * it.rows));
      project(pg, in_g, it.e, m0, M, it.n0, it.rows, g, ldh);
      project(pu, in_u, it.e, m0, M, it.n0, it.rows, u.data(), it.rows);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = 0; r < it.rows; ++r) {
          float& gv = g[m * ldh + r];
          gv = gv / (1.0f + std::exp(-gv)) * u[m * it.rows + r];  // silu_mul's expression: the same bits
        }
    }
  });

  // y = down · h per assignment: h quantized once (or read as f32), then (expert, rows of H) items.
  if (pd.k.quantized) detail::quantize_rows(pd.k.qk, h.get(), n, I, ldh, &in_d.act, pool);
  in_d.x = h.get();
  in_d.ld = ldh;
  const std::unique_ptr<float[]> y = floats(n * H);
  const std::vector<Item> dn = split(count, H, pd.k.rows);
  pool.parallel_for(static_cast<int64_t>(dn.size()), 1, [&](int64_t b, int64_t end) {
    for (int64_t i = b; i < end; ++i) {
      const Item& it = dn[i];
      project(pd, in_d, it.e, start[it.e], count[it.e], it.n0, it.rows, y.get() + start[it.e] * H + it.n0, H);
    }
  });

  // out[t] = sum over j in slot order of weights[t, j] * y[t, j]. This file is built for the
  // baseline ISA, so w * y + o is two roundings (never a fused multiply-add) on every machine.
  const float* wt = weights.as<float>();
  pool.parallel_for(T, std::max<int64_t>(1, 32768 / std::max<int64_t>(k * H, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out.as<float>() + t * H;
      std::fill(o, o + H, 0.0f);
      for (int64_t j = 0; j < k; ++j) {
        const float w = wt[t * k + j];
        const float* yr = y.get() + row_of[t * k + j] * H;
        for (int64_t c = 0; c < H; ++c) o[c] += w * yr[c];
      }
    }
  });
}

}  // namespace kt::cpu

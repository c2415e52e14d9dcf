// matmul dispatch: validates, quantizes the activations of quantized weight types once per
// call, picks the ISA's kernels and splits the output rows N over the pool. Also the portable
// kernels every type falls back to, which define the bits the SIMD kernels must reproduce.
#include "cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/quant.h"

namespace kt {

namespace detail {
namespace {

// ---- plain weights ----

// Plain dot with eight partial sums (the SIMD paths' lane count order, give or take).
float dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[k + l] * b[k + l];
  for (; k < n; ++k) s[k & 7] += a[k] * b[k];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

// The reference order for plain weights: dot_f32 over each whole row, converted a chunk at a
// time but with the eight partial sums carried across chunks (so equal to scalar_gemm's).
template <DType T>
void plain_gemv(const float* x, const void* w, int64_t nw, int64_t K, float* out) {
  constexpr int64_t kChunk = 256;  // a multiple of 8
  float buf[kChunk];
  for (int64_t j = 0; j < nw; ++j) {
    const uint8_t* row = static_cast<const uint8_t*>(w) + j * K * (T == DType::F32 ? 4 : 2);
    if (T == DType::F32) { out[j] = dot_f32(x, reinterpret_cast<const float*>(row), K); continue; }
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < K; k += kChunk) {
      const int64_t n = std::min(kChunk, K - k);
      dequantize_row(T, row + 2 * k, buf, n);
      for (int64_t l = 0; l < n; ++l) s[(k + l) & 7] += x[k + l] * buf[l];
    }
    out[j] = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  }
}

template <DType T>
void plain_dequant(const void* w, float* out, int64_t K) {
  dequantize_row(T, w, out, K);
}

// out = x · wᵀ for a panel, one dot product per output: the portable reference.
void scalar_gemm(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
                 int64_t ldo) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < nw; ++j) out[m * ldo + j] = dot_f32(x + m * ldx, w + j * ldw, K);
}

// ---- quantized weights: the reference int8 kernel ----

// The exact integer parts of one block (IntBlock's definition) against activation codes x
// with 16-sums X. A group's products sum to under 2^24 in magnitude, so float adds them exactly
// in any order: generic 4-lane vectors (SSE here, whatever the target elsewhere) do it.
typedef float f4 __attribute__((vector_size(16)));

void block_ints(const IntBlock& b, const float* u, int64_t n, const float* x, const int16_t* X, int32_t* isum,
                int32_t* msum) {
  int32_t is = 0, ms = 0;
  for (int64_t g = 0; g < n / 16; ++g) {
    f4 acc = {0, 0, 0, 0};
    for (int h = 0; h < 4; ++h) {
      f4 a, c;
      std::memcpy(&a, u + 16 * g + 4 * h, 16);
      std::memcpy(&c, x + 16 * g + 4 * h, 16);
      acc += a * c;
    }
    const int32_t dot = static_cast<int32_t>((acc[0] + acc[1]) + (acc[2] + acc[3]));
    is += b.s[g] * dot + b.c[g] * X[g];
    ms += b.n[g] * X[g];
  }
  *isum = is;
  *msum = ms;
}

// One block's float steps for one output (matmul.h gives the order every kernel follows).
float block_step(Step k, float acc, int32_t isum, int32_t msum, float wd, float wm, float xd, float xs) {
  acc = std::fma(static_cast<float>(isum), wd * xd, acc);
  if (k == Step::KMin) acc = std::fma(static_cast<float>(msum), -(wm * xd), acc);
  if (k == Step::Q81) acc = std::fma(wm, xs, acc);
  return acc;
}

// One weight row after another: the reference every SIMD kernel's bits are checked against.
// (Groups of kScalarRows rows share one float copy of the activation codes.)
constexpr int64_t kScalarRows = 16;

void scalar_group(const QuantKind& qk, const uint8_t* w, int64_t rb, int64_t rows, const ActRows& x, int64_t M, float* out,
                  int64_t ldo) {
  const int64_t B = qk.block;
  thread_local std::vector<float> xf;
  xf.assign(x.q, x.q + M * x.K);
  IntBlock blk;
  float u[256];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t m = 0; m < M; ++m) out[m * ldo + r] = 0;
    for (int64_t b = 0; b < x.blocks; ++b) {
      qk.unpack(w + r * rb + b * qk.bytes, &blk);
      std::copy(blk.u, blk.u + B, u);
      for (int64_t m = 0; m < M; ++m) {
        int32_t isum, msum;
        block_ints(blk, u, B, xf.data() + m * x.K + b * B, x.sums + m * (x.K / 16) + b * (B / 16), &isum, &msum);
        const int64_t i = m * x.blocks + b;
        float& o = out[m * ldo + r];
        o = block_step(qk.step, o, isum, msum, blk.d, blk.m, x.d[i], x.s ? x.s[i] : 0.f);
      }
    }
  }
}

// ---- activation quantization, as ggml's x86 from_float for each vec_dot type ----

// Round to nearest, ties to even, by letting the float adder do it (|v| < 2^22).
inline int nearest_int(float v) {
  const float biased = v + 12582912.f;
  return static_cast<int>(f32_bits(biased) & 0x007fffffu) - 0x00400000;
}

// q8_0 / q8_1 (32 per block): d = amax/127 kept as fp16; codes round(x * 127/amax), ties to even.
// (ggml's quantize_row_q8_0_ref divides by d and rounds ties away from zero; its AVX/AVX2/
// AVX-512 from_float, which produced llama.cpp's logits on x86, does this.)
void quantize_q8_0_block(const float* x, int8_t* q, float* d, float* s, int16_t* sums) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float dd = amax / 127.f;
  const float id = amax != 0.f ? 127.f / amax : 0.f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int8_t>(nearest_int(x[j] * id));
    sum += q[j];
  }
  *d = fp16_to_fp32(fp32_to_fp16(dd));
  if (s) *s = fp16_to_fp32(fp32_to_fp16(dd * static_cast<float>(sum)));
  for (int h = 0; h < 2; ++h) {
    int t = 0;
    for (int j = 0; j < 16; ++j) t += q[16 * h + j];
    sums[h] = static_cast<int16_t>(t);
  }
}

// q8_K (256 per block): scale -127/max of the first element of largest magnitude, codes
// nearest_int(x * scale) capped at 127, d = 1/scale in f32; ggml's quantize_row_q8_K_ref.
void quantize_q8_K_block(const float* x, int8_t* q, float* d, int16_t* sums) {
  float max = 0, amax = 0;
  for (int j = 0; j < 256; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) { amax = ax; max = x[j]; }
  }
  if (amax == 0.f) {
    std::fill(q, q + 256, 0);
    std::fill(sums, sums + 16, 0);
    *d = 0;
    return;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < 256; ++j) q[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
  for (int g = 0; g < 16; ++g) {
    int t = 0;
    for (int j = 0; j < 16; ++j) t += q[16 * g + j];
    sums[g] = static_cast<int16_t>(t);
  }
  *d = 1 / iscale;
}

}  // namespace

void quantize_rows(const QuantKind& qk, const float* x, int64_t M, int64_t K, int64_t ldx, ActBuffers* a, ThreadPool& pool) {
  const int64_t B = qk.block, nb = K / B;
  a->q.resize(static_cast<size_t>(M * K));
  a->d.resize(static_cast<size_t>(M * nb));
  a->s.resize(qk.act == ActFormat::Q8_1 ? static_cast<size_t>(M * nb) : 0);
  a->sums.resize(static_cast<size_t>(M * K / 16));
  a->rows = ActRows{a->q.data(), a->d.data(), a->s.empty() ? nullptr : a->s.data(), a->sums.data(), K, nb};
  const ActFormat f = qk.act;
  const auto quantize = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {  // i: block index over all rows
      const int64_t m = i / nb, b = i % nb;
      const float* xb = x + m * ldx + b * B;
      int8_t* q = a->q.data() + m * K + b * B;
      int16_t* sums = a->sums.data() + (m * K + b * B) / 16;
      if (f == ActFormat::Q8_K) quantize_q8_K_block(xb, q, a->d.data() + i, sums);
      else quantize_q8_0_block(xb, q, a->d.data() + i, f == ActFormat::Q8_1 ? a->s.data() + i : nullptr, sums);
    }
  };
  if (M * K < 65536) return quantize(0, M * nb);
  pool.parallel_for(M * nb, std::max<int64_t>(1, 8192 / B), quantize);
}

ActRows act_rows_from(const ActRows& a, int64_t m0) {
  return ActRows{a.q + m0 * a.K, a.d + m0 * a.blocks, a.s ? a.s + m0 * a.blocks : nullptr, a.sums + m0 * (a.K / 16), a.K, a.blocks};
}

bool quant_kind(DType t, QuantKind* k) {
  const UnpackFn u = int_unpacker(t);
  const TypeTraits* tr = quant_traits(t);
  if (!u || !tr) return false;
  // ggml's vec_dot_type per type; the SIMD files' kernel tables repeat these facts as template
  // arguments (the cross-ISA bit-identity test holds them to this one).
  *k = QuantKind{t, tr->block_elems, tr->block_bytes, ActFormat::Q8_0, Step::Plain, 0, u};
  switch (t) {
    case DType::Q4_1: case DType::Q5_1: k->act = ActFormat::Q8_1; k->step = Step::Q81; break;
    case DType::Q2_K: case DType::Q4_K: case DType::Q5_K: k->act = ActFormat::Q8_K; k->step = Step::KMin; break;
    case DType::Q3_K: case DType::Q6_K: k->act = ActFormat::Q8_K; break;
    default: break;
  }
  if (t == kIQ4_XS) k->act = ActFormat::Q8_K;
  if (k->block == 256) k->scale_group = (t == DType::Q4_K || t == DType::Q5_K || t == kIQ4_XS) ? 32 : 16;
  return true;
}

PanelLayout panel_layout(const QuantKind& qk, int64_t R) {
  PanelLayout p{};
  p.R = R;
  p.codes = 0;
  p.S = qk.block * R;
  p.C = p.S + (qk.scale_group ? qk.block / qk.scale_group : 0) * R * 4;
  p.N = p.C + qk.block / 32 * R * 4;
  p.D = p.N + qk.block / 32 * R * 4;
  p.Wm = p.D + R * 4;
  p.bytes = p.Wm + R * 4;
  return p;
}

bool scalar_row_kernels(DType t, RowKernels* k) {
  switch (t) {
    case DType::F32: *k = RowKernels{&plain_gemv<DType::F32>, &plain_dequant<DType::F32>}; return true;
    case DType::F16: *k = RowKernels{&plain_gemv<DType::F16>, &plain_dequant<DType::F16>}; return true;
    case DType::BF16: *k = RowKernels{&plain_gemv<DType::BF16>, &plain_dequant<DType::BF16>}; return true;
    default: return false;
  }
}

PanelGemm scalar_panel_gemm() { return &scalar_gemm; }

bool scalar_int_kernels(const QuantKind&, IntKernels* k) {
  *k = IntKernels{&scalar_group, kScalarRows};
  return true;
}

}  // namespace detail

bool matmul_supported(DType wt) {
  detail::RowKernels k;
  detail::QuantKind q;
  return detail::scalar_row_kernels(wt, &k) || detail::quant_kind(wt, &q);
}

namespace detail {

namespace {

[[noreturn]] void unsupported(DType wt) {
  const TypeTraits* tr = quant_traits(wt);
  throw std::invalid_argument(std::string("matmul: unsupported weight type ") +
                              (tr ? tr->name : "type#" + std::to_string(static_cast<int>(wt))));
}

// Rows of W converted together for M > 1: enough to make each pass over x worth it,
// few enough that the panel stays in L2 (about 256 KiB).
int64_t f32_panel_rows(int64_t K) { return std::max<int64_t>(4, std::min<int64_t>(64, (65536 / K) / 4 * 4)); }

}  // namespace

WeightKernels weight_kernels(DType wt, int64_t K) {
  const TypeTraits* tr = quant_traits(wt);
  if (!tr || !matmul_supported(wt)) unsupported(wt);
  if (K <= 0 || K % tr->block_elems != 0)
    throw std::invalid_argument("matmul: K=" + std::to_string(K) + " is not a positive multiple of the " + tr->name +
                                " block size " + std::to_string(tr->block_elems));
  WeightKernels k{};
  k.K = K;
  k.rb = row_bytes(*tr, K);
  const SimdLevel level = simd_level();
  if (quant_kind(wt, &k.qk)) {
    k.quantized = true;
    const bool found = (level >= SimdLevel::Avx512 && avx512_int_kernels(k.qk, &k.ik)) ||
                       (level >= SimdLevel::Avx2 && avx2_int_kernels(k.qk, &k.ik)) || scalar_int_kernels(k.qk, &k.ik);
    if (!found) throw std::logic_error("matmul: no int8 kernel");
    k.rows = k.ik.rows;
    return k;
  }
  const bool found = (level >= SimdLevel::Avx512 && avx512_row_kernels(wt, &k.row)) ||
                     (level >= SimdLevel::Avx2 && avx2_row_kernels(wt, &k.row)) || scalar_row_kernels(wt, &k.row);
  if (!found) unsupported(wt);
  k.gemm = level >= SimdLevel::Avx512 ? avx512_panel_gemm() : nullptr;
  if (!k.gemm && level >= SimdLevel::Avx2) k.gemm = avx2_panel_gemm();
  if (!k.gemm) k.gemm = scalar_panel_gemm();
  k.rows = f32_panel_rows(K);
  return k;
}

void quant_rows(const WeightKernels& k, const uint8_t* w, int64_t rows, const ActRows& x, int64_t M, float* out, int64_t ldo) {
  const int64_t R = k.ik.rows;
  for (int64_t r = 0; r < rows; r += R) k.ik.group(k.qk, w + r * k.rb, k.rb, std::min(R, rows - r), x, M, out + r, ldo);
}

void plain_rows(const WeightKernels& k, const uint8_t* w, int64_t rows, const float* x, int64_t ldx, int64_t M, float* out,
                int64_t ldo) {
  if (M == 1) return k.row.gemv(x, w, rows, k.K, out);  // weights read in place
  // A panel row one cache line past a power-of-two stride, so the rows a GEMM tile reads
  // together do not all fall into the same L1 set.
  const int64_t ldp = k.K + 16;
  thread_local std::vector<float> panel;
  if (panel.size() < static_cast<size_t>(k.rows * ldp)) panel.resize(static_cast<size_t>(k.rows * ldp));
  for (int64_t n0 = 0; n0 < rows; n0 += k.rows) {
    const int64_t n = std::min(k.rows, rows - n0);
    for (int64_t r = 0; r < n; ++r) k.row.dequant(w + (n0 + r) * k.rb, panel.data() + r * ldp, k.K);
    k.gemm(x, ldx, M, panel.data(), ldp, n, k.K, out + n0, ldo);
  }
}

}  // namespace detail

namespace {

using namespace detail;

// Everything a chunk of work needs, behind one pointer: a lambda capturing only that
// pointer fits std::function's small buffer, so a call allocates nothing.
struct Job {
  WeightKernels k;
  const float* x;  // plain: M rows, ldx apart
  int64_t ldx;
  ActRows act;  // quantized
  int64_t M, N;
  const uint8_t* w;
  float* out;
};

// Output rows [n0, n1) of every activation row.
void rows_of(const Job& j, int64_t n0, int64_t n1) {
  const uint8_t* w = j.w + n0 * j.k.rb;
  if (j.k.quantized) quant_rows(j.k, w, n1 - n0, j.act, j.M, j.out + n0, j.N);
  else plain_rows(j.k, w, n1 - n0, j.x, j.ldx, j.M, j.out + n0, j.N);
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* out, ThreadPool& pool) {
  Job job{weight_kernels(wt, K), x, K, {}, M, N, static_cast<const uint8_t*>(w), out};
  if (M < 0 || N < 0) throw std::invalid_argument("matmul: negative M or N");
  if (M == 0 || N == 0) return;
  const Job* j = &job;
  const int64_t rb = job.k.rb, R = job.k.rows;
  ActBuffers act;
  std::vector<float> xpad;
  if (job.k.quantized) {
    quantize_rows(job.k.qk, x, M, K, K, &act, pool);
    job.act = act.rows;
  } else if (M == 1) {
    // Memory-bound: each chunk should stream at least ~32 KiB of weights to pay for its hand-off.
    pool.parallel_for(N, std::max<int64_t>(1, 32768 / rb), [j](int64_t b, int64_t e) { rows_of(*j, b, e); });
    return;
  } else {
    // x in a padded copy, for the same reason as the panel's stride (plain_rows).
    job.ldx = K + 16;
    xpad.resize(static_cast<size_t>(M * job.ldx));
    for (int64_t m = 0; m < M; ++m) std::copy(x + m * K, x + (m + 1) * K, xpad.begin() + m * job.ldx);
    job.x = xpad.data();
  }
  // Items of R rows: a kernel group (quantized) or an f32 panel (plain). Decode streams weights:
  // a chunk should read at least ~32 KiB of them to pay for its hand-off.
  const int64_t items = (N + R - 1) / R;
  const int64_t grain = M == 1 ? std::max<int64_t>(1, 32768 / (rb * R)) : 1;
  pool.parallel_for(items, grain, [j, R](int64_t b, int64_t e) { rows_of(*j, b * R, std::min(e * R, j->N)); });
}

}  // namespace kt

// matmul dispatch: validates, picks the ISA's kernels once per call, and splits the
// output rows N over the pool. Also the portable scalar kernels every type falls back to.
#include "cpu/matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/quant.h"

namespace kt {

namespace detail {
namespace {

// Plain dot with eight partial sums (the SIMD paths' lane count order, give or take).
float dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[k + l] * b[k + l];
  for (; k < n; ++k) s[k & 7] += a[k] * b[k];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

// Every type's scalar dot: dequantize a chunk at a time into a stack buffer, then dot it.
template <DType T>
float generic_dot(const float* x, const void* w, int64_t K) {
  constexpr int64_t kChunk = 256;  // a multiple of every block size
  const TypeTraits& tr = *quant_traits(T);
  const uint8_t* src = static_cast<const uint8_t*>(w);
  float buf[kChunk];
  float sum = 0;
  for (int64_t k = 0; k < K; k += kChunk) {
    const int64_t n = std::min(kChunk, K - k);
    dequantize_row(T, src + row_bytes(tr, k), buf, n);
    sum += dot_f32(x + k, buf, n);
  }
  return sum;
}

template <DType T>
void generic_dequant(const void* w, float* out, int64_t K) {
  dequantize_row(T, w, out, K);
}

float dot_plain_f32(const float* x, const void* w, int64_t K) { return dot_f32(x, static_cast<const float*>(w), K); }

template <DType T>
constexpr RowKernels generic_kernels() {
  return RowKernels{&generic_dot<T>, &generic_dequant<T>};
}

// out = x · wᵀ for a panel, one dot product per output: the portable reference.
void scalar_gemm(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
                 int64_t ldo) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < nw; ++j) out[m * ldo + j] = dot_f32(x + m * ldx, w + j * ldw, K);
}

}  // namespace

bool scalar_row_kernels(DType t, RowKernels* k) {
  switch (t) {
    case DType::F32: *k = RowKernels{&dot_plain_f32, &generic_dequant<DType::F32>}; return true;
    case DType::F16: *k = generic_kernels<DType::F16>(); return true;
    case DType::BF16: *k = generic_kernels<DType::BF16>(); return true;
    case DType::Q4_0: *k = generic_kernels<DType::Q4_0>(); return true;
    case DType::Q4_1: *k = generic_kernels<DType::Q4_1>(); return true;
    case DType::Q5_0: *k = generic_kernels<DType::Q5_0>(); return true;
    case DType::Q5_1: *k = generic_kernels<DType::Q5_1>(); return true;
    case DType::Q8_0: *k = generic_kernels<DType::Q8_0>(); return true;
    case DType::Q2_K: *k = generic_kernels<DType::Q2_K>(); return true;
    case DType::Q3_K: *k = generic_kernels<DType::Q3_K>(); return true;
    case DType::Q4_K: *k = generic_kernels<DType::Q4_K>(); return true;
    case DType::Q5_K: *k = generic_kernels<DType::Q5_K>(); return true;
    case DType::Q6_K: *k = generic_kernels<DType::Q6_K>(); return true;
    default: break;
  }
  if (t == kIQ4_NL) { *k = generic_kernels<kIQ4_NL>(); return true; }
  if (t == kIQ4_XS) { *k = generic_kernels<kIQ4_XS>(); return true; }
  return false;
}

PanelGemm scalar_panel_gemm() { return &scalar_gemm; }

}  // namespace detail

bool matmul_supported(DType wt) {
  detail::RowKernels k;
  return detail::scalar_row_kernels(wt, &k);
}

namespace {

struct Kernels {
  detail::RowKernels row;
  detail::PanelGemm gemm;
};

Kernels pick_kernels(DType wt) {
  Kernels k{};
  const SimdLevel level = simd_level();
  const bool found = (level >= SimdLevel::Avx512 && detail::avx512_row_kernels(wt, &k.row)) ||
                     (level >= SimdLevel::Avx2 && detail::avx2_row_kernels(wt, &k.row)) ||
                     detail::scalar_row_kernels(wt, &k.row);
  if (!found) {
    const TypeTraits* tr = quant_traits(wt);
    throw std::invalid_argument(std::string("matmul: unsupported weight type ") +
                                (tr ? tr->name : "type#" + std::to_string(static_cast<int>(wt))));
  }
  k.gemm = level >= SimdLevel::Avx512 ? detail::avx512_panel_gemm() : nullptr;
  if (!k.gemm && level >= SimdLevel::Avx2) k.gemm = detail::avx2_panel_gemm();
  if (!k.gemm) k.gemm = detail::scalar_panel_gemm();
  return k;
}

// Rows of W dequantized together for M > 1: enough to make each pass over x worth it,
// few enough that the panel stays in L2 (about 256 KiB).
int64_t panel_rows(int64_t K) { return std::max<int64_t>(4, std::min<int64_t>(64, (65536 / K) / 4 * 4)); }

// Everything a chunk of work needs, behind one pointer: a lambda capturing only that
// pointer fits std::function's small buffer, so a call allocates nothing.
struct Job {
  Kernels k;
  const float* x;  // M rows, ldx apart
  int64_t ldx, M, K, N;
  const uint8_t* w;
  int64_t rb;  // bytes per W row
  float* out;
  int64_t panel_rows, ldp;  // M > 1 only
};

void decode_rows(const Job& j, int64_t begin, int64_t end) {
  for (int64_t n = begin; n < end; ++n) j.out[n] = j.k.row.dot(j.x, j.w + n * j.rb, j.K);
}

void prefill_panels(const Job& j, int64_t begin, int64_t end) {
  thread_local std::vector<float> panel;
  if (panel.size() < static_cast<size_t>(j.panel_rows * j.ldp)) panel.resize(static_cast<size_t>(j.panel_rows * j.ldp));
  for (int64_t p = begin; p < end; ++p) {
    const int64_t n0 = p * j.panel_rows, rows = std::min(j.panel_rows, j.N - n0);
    for (int64_t r = 0; r < rows; ++r) j.k.row.dequant(j.w + (n0 + r) * j.rb, panel.data() + r * j.ldp, j.K);
    j.k.gemm(j.x, j.ldx, j.M, panel.data(), j.ldp, rows, j.K, j.out + n0, j.N);
  }
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* out, ThreadPool& pool) {
  const TypeTraits* tr = quant_traits(wt);
  Job job{pick_kernels(wt), x, K, M, K, N, static_cast<const uint8_t*>(w), 0, out, 0, 0};
  if (K <= 0 || K % tr->block_elems != 0)
    throw std::invalid_argument("matmul: K=" + std::to_string(K) + " is not a positive multiple of the " + tr->name +
                                " block size " + std::to_string(tr->block_elems));
  if (M < 0 || N < 0) throw std::invalid_argument("matmul: negative M or N");
  if (M == 0 || N == 0) return;
  job.rb = row_bytes(*tr, K);
  const Job* j = &job;

  if (M == 1) {
    // Memory-bound: each chunk should stream at least ~32 KiB of weights to pay for its hand-off.
    const int64_t grain = std::max<int64_t>(1, 32768 / job.rb);
    pool.parallel_for(N, grain, [j](int64_t begin, int64_t end) { decode_rows(*j, begin, end); });
    return;
  }

  // Rows one cache line past a power-of-two stride, so the rows a GEMM tile reads together
  // do not all fall into the same L1 set: the panel's, and x's in a padded copy.
  job.panel_rows = panel_rows(K);
  job.ldp = K + 16;
  std::vector<float> xpad(static_cast<size_t>(M * job.ldp));
  for (int64_t m = 0; m < M; ++m) std::copy(x + m * K, x + (m + 1) * K, xpad.begin() + m * job.ldp);
  job.x = xpad.data();
  job.ldx = job.ldp;
  const int64_t panels = (N + job.panel_rows - 1) / job.panel_rows;
  pool.parallel_for(panels, 1, [j](int64_t begin, int64_t end) { prefill_panels(*j, begin, end); });
}

}  // namespace kt

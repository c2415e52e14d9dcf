// AVX-512 matmul kernels. Plain weights: f32 dot products and a register-tiled f32 GEMM.
// Quantized weights: VNNI int8 dot products (vpdpbusd, unsigned codes x signed activations)
// per block, each output's float steps in the order of detail::block_step.
#include "cpu/matmul.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
// GCC 12's own AVX-512 headers trip these on their _mm512_undefined_* helpers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "cpu/quant.h"

namespace kt::detail {
namespace {

// Plain formats: 16 at a time, then a masked tail (K need not be a multiple of 16).
template <int Kind>  // 0 f32, 1 f16, 2 bf16
inline __m512 load_plain(const void* w, int64_t k) {
  if (Kind == 0) return _mm512_loadu_ps(static_cast<const float*>(w) + k);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + k));
  if (Kind == 1) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <int Kind>
inline __m512 load_plain_tail(const void* w, int64_t k, __mmask16 mask) {
  if (Kind == 0) return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w) + k);
  const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(w) + k);
  if (Kind == 1) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }

template <int Kind>
void dequant_plain(const void* w, float* out, int64_t K) {
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) _mm512_storeu_ps(out + k, load_plain<Kind>(w, k));
  if (k < K) _mm512_mask_storeu_ps(out + k, tail_mask(K - k), load_plain_tail<Kind>(w, k, tail_mask(K - k)));
}

// ---- register-tiled GEMM: MR rows of x against NR weight rows, full K per tile ----
// Every output has one accumulator, 16 lanes wide, over k in steps of 16 (masked tail), then
// one horizontal sum: the same operations whatever MR, NR or M, so M = 1 (weights read in
// place, f16/bf16 widened on the fly) and M > 1 (an f32 panel) give the same bits.

template <int Kind>
inline const void* wrow(const void* w, int64_t j, int64_t ldw) {
  return static_cast<const uint8_t*>(w) + j * ldw * (Kind == 0 ? 4 : 2);
}

template <int Kind, int MR, int NR>
void gemm_tile(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t K, float* out, int64_t ldo) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load_plain<Kind>(wrow<Kind>(w, j, ldw), k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 mask = tail_mask(K - k);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load_plain_tail<Kind>(wrow<Kind>(w, j, ldw), k, mask);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * ldo + j] = _mm512_reduce_add_ps(acc[i][j]);
}

// 24 accumulators + 4 panel vectors + 1 x vector of the 32 registers; the main loop's
// loads are unmasked (masked loads there cost a third of the speed), the tail is masked.
constexpr int kMR = 6, kNR = 4;

// Weight rows [0, nw) in tiles of kNR, the last one narrower.
template <int Kind, int MR>
void gemm_rows(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t nw, int64_t K, float* out, int64_t ldo) {
  int64_t j = 0;
  for (; j + kNR <= nw; j += kNR) gemm_tile<Kind, MR, kNR>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
  const int64_t rest = nw - j;
  if (rest == 1) gemm_tile<Kind, MR, 1>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
  if (rest == 2) gemm_tile<Kind, MR, 2>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
  if (rest == 3) gemm_tile<Kind, MR, 3>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
}

// The last M % kMR rows of x: one instantiation per possible remainder.
template <int R>
void gemm_rest(int64_t rest, const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
               int64_t ldo) {
  if constexpr (R > 0) {
    if (rest == R) return gemm_rows<0, R>(x, ldx, w, ldw, nw, K, out, ldo);
    gemm_rest<R - 1>(rest, x, ldx, w, ldw, nw, K, out, ldo);
  }
}

void panel_gemm(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
                int64_t ldo) {
  int64_t m = 0;
  for (; m + kMR <= M; m += kMR) gemm_rows<0, kMR>(x + m * ldx, ldx, w, ldw, nw, K, out + m * ldo, ldo);
  gemm_rest<kMR - 1>(M - m, x + m * ldx, ldx, w, ldw, nw, K, out + m * ldo, ldo);
}

template <int Kind>
void gemv_plain(const float* x, const void* w, int64_t nw, int64_t K, float* out) {
  gemm_rows<Kind, 1>(x, K, w, K, nw, K, out, 0);
}

// ---- quantized weights ----

// The vector type of the lane-form decoders (matmul.h): 16 int32 lanes, lane r = weight row r.
struct V512 {
  using I = __m512i;
  using F = __m512;
  static constexpr int R = 16;
  struct Rows {
    const uint8_t* base;  // block b of row 0
    __m512i idx;          // byte offset of each row from row 0
    __mmask16 mask;       // rows that exist
    int64_t rb, rows;
    __m512i load(int64_t off) const {
      return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, idx, base + off, 1);
    }
    void bulk(int64_t off, int n, __m512i* out) const;
  };
  static I zero() { return _mm512_setzero_si512(); }
  static F fzero() { return _mm512_setzero_ps(); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I set4(const int32_t* w) { return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I mullo(I a, I b) { return _mm512_mullo_epi32(a, b); }
  static I srli(I a, int n) { return _mm512_srli_epi32(a, static_cast<unsigned>(n)); }
  static I slli(I a, int n) { return _mm512_slli_epi32(a, static_cast<unsigned>(n)); }
  static I srai(I a, int n) { return _mm512_srai_epi32(a, static_cast<unsigned>(n)); }
  static I shuffle_bytes(I table, I idx) { return _mm512_shuffle_epi8(table, idx); }
  static F half_lo(I v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
  static F half_hi(I v) { return half_lo(_mm512_srli_epi32(v, 16)); }
  static void store(uint8_t* p, I v) { _mm512_store_si512(p, v); }
  static void storef(uint8_t* p, F v) { _mm512_store_ps(p, v); }
};

// Dword transposes: out[k] lane r = dword k of row r.
[[gnu::always_inline]] inline void transpose16x16(__m512i* v) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  __m512i u[4][4];  // u[q][k]: 128-bit lane L holds column 4L+k of rows 4q..4q+3
  for (int q = 0; q < 4; ++q) {
    u[q][0] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[q][1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[q][2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[q][3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    const __m512i a = _mm512_shuffle_i32x4(u[0][k], u[1][k], 0x44), b = _mm512_shuffle_i32x4(u[0][k], u[1][k], 0xEE);
    const __m512i c = _mm512_shuffle_i32x4(u[2][k], u[3][k], 0x44), d = _mm512_shuffle_i32x4(u[2][k], u[3][k], 0xEE);
    v[k] = _mm512_shuffle_i32x4(a, c, 0x88);
    v[4 + k] = _mm512_shuffle_i32x4(a, c, 0xDD);
    v[8 + k] = _mm512_shuffle_i32x4(b, d, 0x88);
    v[12 + k] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
}

// W (16, 8 or 4) dwords at byte `off` of each row's block, transposed into out[0..W). Narrow
// loads share a vector: with 8 dwords rows r and r+8, with 4 rows r, r+4, r+8, r+12, each
// masked into its own lanes (masked-off lanes read nothing, so no row is over-read).
template <int W>
[[gnu::always_inline]] inline void bulk_part(const V512::Rows& rw, const uint8_t* at, __m512i* out) {
  __m512i v[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) v[i] = _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) {
    const int vi = r % W, slot = r / W;
    const __mmask16 lanes = static_cast<__mmask16>(((1u << W) - 1) << (W * slot));
    if (r < rw.rows) v[vi] = _mm512_mask_loadu_epi32(v[vi], lanes, at + r * rw.rb - 4 * W * slot);
  }
  transpose16x16(v);
#pragma GCC unroll 16
  for (int k = 0; k < W; ++k) {
    if (W == 16) out[k] = v[k];
    else if (W == 8) out[k] = _mm512_shuffle_i32x4(v[k], v[k + 8], 0x44);
    else out[k] = _mm512_shuffle_i32x4(_mm512_shuffle_i32x4(v[k], v[k + 4], 0), _mm512_shuffle_i32x4(v[k + 8], v[k + 12], 0), 0x88);
  }
}

[[gnu::always_inline]] inline void V512::Rows::bulk(int64_t off, int n, __m512i* out) const {
  int k0 = 0;
  for (; k0 + 16 <= n; k0 += 16) bulk_part<16>(*this, base + off + 4 * k0, out + k0);
  if (n - k0 == 8) bulk_part<8>(*this, base + off + 4 * k0, out + k0);
  if (n - k0 == 4) bulk_part<4>(*this, base + off + 4 * k0, out + k0);
}

inline __m512i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One block of a panel against MR activation rows m0.. (lane r = weight row r): vpdpbusd takes
// 4 codes of 16 rows against 4 broadcast activation codes; a scale group's products are summed,
// then multiplied by the group's scales; the float steps run 16 outputs wide (block_step's order).
template <int64_t B, int SG, Step ST, int MR>
inline void consume(const PanelLayout& pl, const uint8_t* p, const ActRows& x, int64_t m0, int64_t b, __m512* facc) {
  const int8_t* xq = x.q + m0 * x.K + b * B;
  const int16_t* X = x.sums + m0 * (x.K / 16) + b * (B / 16);
  __m512i iacc[MR];
  for (int i = 0; i < MR; ++i) iacc[i] = _mm512_setzero_si512();
  constexpr int64_t G = SG ? SG : B;
  for (int64_t j = 0; j < B / G; ++j) {
    // Even and odd chunks in separate sums: two dependency chains (integer sums are exact).
    __m512i t[MR], t2[MR];
    for (int i = 0; i < MR; ++i) t[i] = t2[i] = _mm512_setzero_si512();
    for (int64_t c = j * G / 4; c < (j + 1) * G / 4; c += 2) {
      const __m512i W0 = _mm512_load_si512(p + pl.codes + 64 * c), W1 = _mm512_load_si512(p + pl.codes + 64 * c + 64);
      for (int i = 0; i < MR; ++i) {
        t[i] = _mm512_dpbusd_epi32(t[i], W0, bcast32(xq + i * x.K + 4 * c));
        t2[i] = _mm512_dpbusd_epi32(t2[i], W1, bcast32(xq + i * x.K + 4 * c + 4));
      }
    }
    for (int i = 0; i < MR; ++i) t[i] = _mm512_add_epi32(t[i], t2[i]);
    if constexpr (SG == 0) {
      for (int i = 0; i < MR; ++i) iacc[i] = t[i];
    } else {
      const __m512i S = _mm512_load_si512(p + pl.S + 64 * j);
      for (int i = 0; i < MR; ++i) iacc[i] = _mm512_add_epi32(iacc[i], _mm512_mullo_epi32(t[i], S));
    }
  }
  for (int64_t q = 0; q < B / 32; ++q) {
    const __m512i Cv = _mm512_load_si512(p + pl.C + 64 * q);
    for (int i = 0; i < MR; ++i) iacc[i] = _mm512_dpwssd_epi32(iacc[i], Cv, bcast32(X + i * (x.K / 16) + 2 * q));
  }
  const __m512 D = _mm512_load_ps(p + pl.D), Wm = _mm512_load_ps(p + pl.Wm);
  for (int i = 0; i < MR; ++i) {
    const __m512 xd = _mm512_set1_ps(x.d[(m0 + i) * x.blocks + b]);
    facc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[i]), _mm512_mul_ps(D, xd), facc[i]);
    if constexpr (ST == Step::Q81) facc[i] = _mm512_fmadd_ps(Wm, _mm512_set1_ps(x.s[(m0 + i) * x.blocks + b]), facc[i]);
  }
  if constexpr (ST == Step::KMin) {
    for (int i = 0; i < MR; ++i) {
      __m512i macc = _mm512_setzero_si512();
      for (int64_t q = 0; q < B / 32; ++q)
        macc = _mm512_dpwssd_epi32(macc, _mm512_load_si512(p + pl.N + 64 * q), bcast32(X + i * (x.K / 16) + 2 * q));
      const __m512 xd = _mm512_set1_ps(x.d[(m0 + i) * x.blocks + b]);
      facc[i] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(macc), _mm512_mul_ps(Wm, xd), facc[i]);
    }
  }
}

template <int MR>
inline void store_rows(const __m512* facc, float* out, int64_t ldo, int64_t m0, int64_t rows) {
  const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
  for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(out + (m0 + i) * ldo, keep, facc[i]);
}

// All blocks of a panel (or of a one-block slice refilled per block) against MR rows.
template <int64_t B, int SG, Step ST, int MR>
void panel_rows(const PanelLayout& pl, const uint8_t* panel, const ActRows& x, int64_t m0, float* out, int64_t ldo,
                int64_t rows) {
  __m512 facc[MR];
  for (int i = 0; i < MR; ++i) facc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < x.blocks; ++b) consume<B, SG, ST, MR>(pl, panel + b * pl.bytes, x, m0, b, facc);
  store_rows<MR>(facc, out, ldo, m0, rows);
}

template <int64_t B, int SG, Step ST, int R>
void panel_rest(int64_t rest, const PanelLayout& pl, const uint8_t* panel, const ActRows& x, int64_t m0, float* out,
                int64_t ldo, int64_t rows) {
  if constexpr (R > 0) {
    if (rest == R) return panel_rows<B, SG, ST, R>(pl, panel, x, m0, out, ldo, rows);
    panel_rest<B, SG, ST, R - 1>(rest, pl, panel, x, m0, out, ldo, rows);
  }
}

constexpr int kQMR = 6;     // activation rows per panel pass (4 accumulators each, of 32 registers)
constexpr int kStream = 3;  // up to this many rows, decode each block and use it at once

// Few activation rows: each block's panel slice is decoded and used at once, in L1.
template <lanes::Decoder<V512> Decode, int64_t B, int SG, Step ST, int MR>
void stream(V512::Rows r, const PanelLayout& pl, uint8_t* slice, int64_t bytes, const ActRows& x, float* out, int64_t ldo) {
  __m512 facc[MR];
  for (int i = 0; i < MR; ++i) facc[i] = _mm512_setzero_ps();
  const uint8_t* w = r.base;
  for (int64_t b = 0; b < x.blocks; ++b) {
    r.base = w + b * bytes;
    Decode(r, lanes::Out<V512>{pl, slice});
    consume<B, SG, ST, MR>(pl, slice, x, 0, b, facc);
  }
  store_rows<MR>(facc, out, ldo, 0, r.rows);
}

template <lanes::Decoder<V512> Decode, int64_t B, int SG, Step ST>
void group(const QuantKind& qk, const uint8_t* w, int64_t rb, int64_t rows, const ActRows& x, int64_t M, float* out,
           int64_t ldo) {
  const PanelLayout pl = panel_layout(qk, 16);
  V512::Rows r{w, _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32(static_cast<int32_t>(rb))),
               static_cast<__mmask16>((1u << rows) - 1), rb, rows};
  thread_local std::vector<uint8_t> buf;
  const int64_t nb = M <= kStream ? 1 : x.blocks;
  if (buf.size() < static_cast<size_t>(nb * pl.bytes + 64)) buf.resize(static_cast<size_t>(nb * pl.bytes + 64));
  uint8_t* panel = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  if (M == 1) return stream<Decode, B, SG, ST, 1>(r, pl, panel, qk.bytes, x, out, ldo);
  if (M == 2) return stream<Decode, B, SG, ST, 2>(r, pl, panel, qk.bytes, x, out, ldo);
  if (M == 3) return stream<Decode, B, SG, ST, 3>(r, pl, panel, qk.bytes, x, out, ldo);
  for (int64_t b = 0; b < x.blocks; ++b) {
    r.base = w + b * qk.bytes;
    Decode(r, lanes::Out<V512>{pl, panel + b * pl.bytes});
  }
  int64_t m = 0;
  for (; m + kQMR <= M; m += kQMR) panel_rows<B, SG, ST, kQMR>(pl, panel, x, m, out, ldo, rows);
  panel_rest<B, SG, ST, kQMR - 1>(M - m, pl, panel, x, m, out, ldo, rows);
}

}  // namespace

// One kernel per type: its decoder inlined into the block loop.
bool avx512_int_kernels(const QuantKind& qk, IntKernels* k) {
  using namespace lanes;
  GroupKernel g = nullptr;
  switch (qk.type) {
    case DType::Q4_0: g = &group<&dec_q4_0<V512>, 32, 0, Step::Plain>; break;
    case DType::Q4_1: g = &group<&dec_q4_1<V512>, 32, 0, Step::Q81>; break;
    case DType::Q5_0: g = &group<&dec_q5_0<V512>, 32, 0, Step::Plain>; break;
    case DType::Q5_1: g = &group<&dec_q5_1<V512>, 32, 0, Step::Q81>; break;
    case DType::Q8_0: g = &group<&dec_q8_0<V512>, 32, 0, Step::Plain>; break;
    case DType::Q2_K: g = &group<&dec_q2_K<V512>, 256, 16, Step::KMin>; break;
    case DType::Q3_K: g = &group<&dec_q3_K<V512>, 256, 16, Step::Plain>; break;
    case DType::Q4_K: g = &group<&dec_q4_K<V512>, 256, 32, Step::KMin>; break;
    case DType::Q5_K: g = &group<&dec_q5_K<V512>, 256, 32, Step::KMin>; break;
    case DType::Q6_K: g = &group<&dec_q6_K<V512>, 256, 16, Step::Plain>; break;
    default:
      if (qk.type == kIQ4_NL) g = &group<&dec_iq4_nl<V512>, 32, 0, Step::Plain>;
      if (qk.type == kIQ4_XS) g = &group<&dec_iq4_xs<V512>, 256, 32, Step::Plain>;
  }
  if (!g) return false;
  *k = IntKernels{g, 16};
  return true;
}

bool avx512_row_kernels(DType t, RowKernels* k) {
  switch (t) {
    case DType::F32: *k = RowKernels{&gemv_plain<0>, &dequant_plain<0>}; return true;
    case DType::F16: *k = RowKernels{&gemv_plain<1>, &dequant_plain<1>}; return true;
    case DType::BF16: *k = RowKernels{&gemv_plain<2>, &dequant_plain<2>}; return true;
    default: return false;
  }
}

PanelGemm avx512_panel_gemm() { return &panel_gemm; }

}  // namespace kt::detail

#else  // built without AVX-512: the dispatcher falls back

namespace kt::detail {
bool avx512_row_kernels(DType, RowKernels*) { return false; }
bool avx512_int_kernels(const QuantKind&, IntKernels*) { return false; }
PanelGemm avx512_panel_gemm() { return nullptr; }
}  // namespace kt::detail

#endif

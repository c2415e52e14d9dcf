// AVX2 matmul kernels: the AVX-512 file's design with 8-lane vectors. Quantized weights use
// vpmaddubsw + vpmaddwd (unsigned codes x signed activations, pairs in int16: codes up to 63
// fit; wide signed codes take the sign trick), each output's float steps in block_step's order.
#include "cpu/matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/quant.h"

namespace kt::detail {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Plain formats: 8 at a time, then a scalar tail (K need not be a multiple of 8).
template <int Kind>  // 0 f32, 1 f16, 2 bf16
inline __m256 load_plain(const void* w, int64_t k) {
  if (Kind == 0) return _mm256_loadu_ps(static_cast<const float*>(w) + k);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k));
  if (Kind == 1) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <int Kind>
inline float load_one(const void* w, int64_t k) {
  if (Kind == 0) return static_cast<const float*>(w)[k];
  uint16_t h;
  std::memcpy(&h, static_cast<const uint8_t*>(w) + 2 * k, 2);
  return Kind == 1 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

template <int Kind>
void dequant_plain(const void* w, float* out, int64_t K) {
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) _mm256_storeu_ps(out + k, load_plain<Kind>(w, k));
  for (; k < K; ++k) out[k] = load_one<Kind>(w, k);
}

// ---- register-tiled GEMM: MR rows of x against NR weight rows, full K per tile ----
// One 8-lane accumulator per output over k in steps of 8, a horizontal sum, then the scalar
// tail: the same operations whatever MR, NR or M, so M = 1 (weights read in place) and M > 1
// (an f32 panel) give the same bits.

template <int Kind>
inline const void* wrow(const void* w, int64_t j, int64_t ldw) {
  return static_cast<const uint8_t*>(w) + j * ldw * (Kind == 0 ? 4 : 2);
}

template <int Kind, int MR, int NR>
void gemm_tile(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t K, float* out, int64_t ldo) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load_plain<Kind>(wrow<Kind>(w, j, ldw), k);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = k; t < K; ++t) s = std::fma(x[i * ldx + t], load_one<Kind>(wrow<Kind>(w, j, ldw), t), s);
      out[i * ldo + j] = s;
    }
  }
}

// 12 accumulators + 3 panel vectors + 1 x vector: all 16 registers, no spills.
constexpr int kMR = 4, kNR = 3;

// Weight rows [0, nw) in tiles of kNR, the last one narrower.
template <int Kind, int MR>
void gemm_rows(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t nw, int64_t K, float* out, int64_t ldo) {
  int64_t j = 0;
  for (; j + kNR <= nw; j += kNR) gemm_tile<Kind, MR, kNR>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
  const int64_t rest = nw - j;
  if (rest == 1) gemm_tile<Kind, MR, 1>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
  if (rest == 2) gemm_tile<Kind, MR, 2>(x, ldx, wrow<Kind>(w, j, ldw), ldw, K, out + j, ldo);
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

// The vector type of the lane-form decoders (matmul.h): 8 int32 lanes, lane r = weight row r.
struct V256 {
  using I = __m256i;
  using F = __m256;
  static constexpr int R = 8;
  struct Rows {
    const uint8_t* base;  // block b of row 0
    __m256i idx;          // byte offset of each row from row 0
    __m256i mask;         // all ones in the lanes of rows that exist
    int64_t rb, rows;
    __m256i load(int64_t off) const {
      return _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), reinterpret_cast<const int*>(base + off), idx, mask, 1);
    }
    void bulk(int64_t off, int n, __m256i* out) const;
  };
  static I zero() { return _mm256_setzero_si256(); }
  static F fzero() { return _mm256_setzero_ps(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I set4(const int32_t* w) { return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I mullo(I a, I b) { return _mm256_mullo_epi32(a, b); }
  static I srli(I a, int n) { return _mm256_srli_epi32(a, n); }
  static I slli(I a, int n) { return _mm256_slli_epi32(a, n); }
  static I srai(I a, int n) { return _mm256_srai_epi32(a, n); }
  static I shuffle_bytes(I table, I idx) { return _mm256_shuffle_epi8(table, idx); }
  static F half_lo(I v) {  // the low 16 bits of each lane, packed to 8 halves
    const __m256i p = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_setzero_si256());
    return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0x08)));
  }
  static F half_hi(I v) { return half_lo(_mm256_srli_epi32(v, 16)); }
  static void store(uint8_t* p, I v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
  static void storef(uint8_t* p, F v) { _mm256_store_ps(reinterpret_cast<float*>(p), v); }
};

// Dword transpose: v[k] lane r = dword k of row r.
[[gnu::always_inline]] inline void transpose8x8(__m256i* v) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 4h..4h+3: u[4h + k] lane L holds column 4L + k
    u[4 * h] = _mm256_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
    v[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
  }
}

// n dwords (4 or a multiple of 8) at byte `off` of each row's block, transposed; with 4,
// rows r and r+4 share a vector. Loads read exactly the bytes asked for.
[[gnu::always_inline]] inline void V256::Rows::bulk(int64_t off, int n, __m256i* out) const {
  for (int k0 = 0; k0 < n; k0 += 8) {
    const bool narrow = n - k0 < 8;
    __m256i v[8];
    for (int i = 0; i < 8; ++i) v[i] = _mm256_setzero_si256();
    for (int r = 0; r < rows; ++r) {
      const uint8_t* p = base + r * rb + off + 4 * k0;
      if (!narrow) v[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      else if (r < 4) v[r] = _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      else v[r - 4] = _mm256_inserti128_si256(v[r - 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), 1);
    }
    transpose8x8(v);
    if (!narrow) for (int k = 0; k < 8; ++k) out[k0 + k] = v[k];
    else for (int k = 0; k < 4; ++k) out[k0 + k] = _mm256_permute2x128_si256(v[k], v[k + 4], 0x20);
  }
}

inline __m256i load256(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }

inline __m256i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Each row's int32 scale as an int16 pair (s, s), so vpmaddwd scales a pair sum at once.
inline __m256i scale_pairs(const uint8_t* p) {
  const __m256i s = load256(p);
  return _mm256_or_si256(_mm256_and_si256(s, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(s, 16));
}

// One block of a panel against MR activation rows (see the AVX-512 file). vpmaddubsw sums code
// pairs in int16: narrow codes (up to 63) add two chunks' pairs before vpmaddwd (4 * 63 * 127
// fits); wide codes (v + 128, whose only offset is that 128) go as |v| times x with v's sign.
template <int64_t B, int SG, Step ST, bool Wide, int MR>
inline void consume(const PanelLayout& pl, const uint8_t* p, const ActRows& x, int64_t m0, int64_t b, __m256* facc) {
  const int8_t* xq = x.q + m0 * x.K + b * B;
  const int16_t* X = x.sums + m0 * (x.K / 16) + b * (B / 16);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i iacc[MR];
  for (int i = 0; i < MR; ++i) iacc[i] = _mm256_setzero_si256();
  constexpr int64_t G = SG ? SG : B;
  for (int64_t j = 0; j < B / G; ++j) {
    const __m256i S = SG ? scale_pairs(p + pl.S + 32 * j) : _mm256_set1_epi16(1);
    for (int64_t c = j * G / 4; c < (j + 1) * G / 4; c += 2) {
      __m256i W0 = load256(p + pl.codes + 32 * c), W1 = load256(p + pl.codes + 32 * (c + 1));
      if constexpr (Wide) {
        W0 = _mm256_xor_si256(W0, flip);
        W1 = _mm256_xor_si256(W1, flip);
        const __m256i A0 = _mm256_abs_epi8(W0), A1 = _mm256_abs_epi8(W1);
        for (int i = 0; i < MR; ++i) {
          const __m256i p0 = _mm256_maddubs_epi16(A0, _mm256_sign_epi8(bcast32(xq + i * x.K + 4 * c), W0));
          const __m256i p1 = _mm256_maddubs_epi16(A1, _mm256_sign_epi8(bcast32(xq + i * x.K + 4 * c + 4), W1));
          iacc[i] = _mm256_add_epi32(iacc[i], _mm256_add_epi32(_mm256_madd_epi16(p0, S), _mm256_madd_epi16(p1, S)));
        }
      } else {
        for (int i = 0; i < MR; ++i) {
          const __m256i p2 = _mm256_add_epi16(_mm256_maddubs_epi16(W0, bcast32(xq + i * x.K + 4 * c)),
                                              _mm256_maddubs_epi16(W1, bcast32(xq + i * x.K + 4 * c + 4)));
          iacc[i] = _mm256_add_epi32(iacc[i], _mm256_madd_epi16(p2, S));
        }
      }
    }
  }
  if constexpr (!Wide) {
    for (int64_t q = 0; q < B / 32; ++q) {
      const __m256i Cv = load256(p + pl.C + 32 * q);
      for (int i = 0; i < MR; ++i) iacc[i] = _mm256_add_epi32(iacc[i], _mm256_madd_epi16(Cv, bcast32(X + i * (x.K / 16) + 2 * q)));
    }
  }
  const __m256 D = _mm256_load_ps(reinterpret_cast<const float*>(p + pl.D));
  const __m256 Wm = _mm256_load_ps(reinterpret_cast<const float*>(p + pl.Wm));
  for (int i = 0; i < MR; ++i) {
    const __m256 xd = _mm256_set1_ps(x.d[(m0 + i) * x.blocks + b]);
    facc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[i]), _mm256_mul_ps(D, xd), facc[i]);
    if constexpr (ST == Step::Q81) facc[i] = _mm256_fmadd_ps(Wm, _mm256_set1_ps(x.s[(m0 + i) * x.blocks + b]), facc[i]);
  }
  if constexpr (ST == Step::KMin) {
    for (int i = 0; i < MR; ++i) {
      __m256i macc = _mm256_setzero_si256();
      for (int64_t q = 0; q < B / 32; ++q)
        macc = _mm256_add_epi32(macc, _mm256_madd_epi16(load256(p + pl.N + 32 * q), bcast32(X + i * (x.K / 16) + 2 * q)));
      const __m256 xd = _mm256_set1_ps(x.d[(m0 + i) * x.blocks + b]);
      facc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(macc), _mm256_mul_ps(Wm, xd), facc[i]);
    }
  }
}

template <int MR>
inline void store_rows(const __m256* facc, float* out, int64_t ldo, int64_t m0, int64_t rows) {
  for (int i = 0; i < MR; ++i) {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, facc[i]);
    std::copy(tmp, tmp + rows, out + (m0 + i) * ldo);
  }
}

template <int64_t B, int SG, Step ST, bool Wide, int MR>
void panel_rows(const PanelLayout& pl, const uint8_t* panel, const ActRows& x, int64_t m0, float* out, int64_t ldo,
                int64_t rows) {
  __m256 facc[MR];
  for (int i = 0; i < MR; ++i) facc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < x.blocks; ++b) consume<B, SG, ST, Wide, MR>(pl, panel + b * pl.bytes, x, m0, b, facc);
  store_rows<MR>(facc, out, ldo, m0, rows);
}

template <int64_t B, int SG, Step ST, bool Wide, int R>
void panel_rest(int64_t rest, const PanelLayout& pl, const uint8_t* panel, const ActRows& x, int64_t m0, float* out,
                int64_t ldo, int64_t rows) {
  if constexpr (R > 0) {
    if (rest == R) return panel_rows<B, SG, ST, Wide, R>(pl, panel, x, m0, out, ldo, rows);
    panel_rest<B, SG, ST, Wide, R - 1>(rest, pl, panel, x, m0, out, ldo, rows);
  }
}

constexpr int kQMR = 4;     // activation rows per panel pass
constexpr int kStream = 2;  // up to this many rows, decode each block and use it at once

// Few activation rows: each block's panel slice is decoded and used at once, in L1.
template <lanes::Decoder<V256> Decode, int64_t B, int SG, Step ST, bool Wide, int MR>
void stream(V256::Rows r, const PanelLayout& pl, uint8_t* slice, int64_t bytes, const ActRows& x, float* out, int64_t ldo) {
  __m256 facc[MR];
  for (int i = 0; i < MR; ++i) facc[i] = _mm256_setzero_ps();
  const uint8_t* w = r.base;
  for (int64_t b = 0; b < x.blocks; ++b) {
    r.base = w + b * bytes;
    Decode(r, lanes::Out<V256>{pl, slice});
    consume<B, SG, ST, Wide, MR>(pl, slice, x, 0, b, facc);
  }
  store_rows<MR>(facc, out, ldo, 0, r.rows);
}

template <lanes::Decoder<V256> Decode, int64_t B, int SG, Step ST, bool Wide>
void group(const QuantKind& qk, const uint8_t* w, int64_t rb, int64_t rows, const ActRows& x, int64_t M, float* out,
           int64_t ldo) {
  const PanelLayout pl = panel_layout(qk, 8);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  V256::Rows r{w, _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<int32_t>(rb))),
               _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(rows)), lane), rb, rows};
  thread_local std::vector<uint8_t> buf;
  const int64_t nb = M <= kStream ? 1 : x.blocks;
  if (buf.size() < static_cast<size_t>(nb * pl.bytes + 64)) buf.resize(static_cast<size_t>(nb * pl.bytes + 64));
  uint8_t* panel = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  if (M == 1) return stream<Decode, B, SG, ST, Wide, 1>(r, pl, panel, qk.bytes, x, out, ldo);
  if (M == 2) return stream<Decode, B, SG, ST, Wide, 2>(r, pl, panel, qk.bytes, x, out, ldo);
  for (int64_t b = 0; b < x.blocks; ++b) {
    r.base = w + b * qk.bytes;
    Decode(r, lanes::Out<V256>{pl, panel + b * pl.bytes});
  }
  int64_t m = 0;
  for (; m + kQMR <= M; m += kQMR) panel_rows<B, SG, ST, Wide, kQMR>(pl, panel, x, m, out, ldo, rows);
  panel_rest<B, SG, ST, Wide, kQMR - 1>(M - m, pl, panel, x, m, out, ldo, rows);
}

}  // namespace

// One kernel per type: its decoder inlined into the block loop.
bool avx2_int_kernels(const QuantKind& qk, IntKernels* k) {
  using namespace lanes;
  GroupKernel g = nullptr;
  switch (qk.type) {
    case DType::Q4_0: g = &group<&dec_q4_0<V256>, 32, 0, Step::Plain, false>; break;
    case DType::Q4_1: g = &group<&dec_q4_1<V256>, 32, 0, Step::Q81, false>; break;
    case DType::Q5_0: g = &group<&dec_q5_0<V256>, 32, 0, Step::Plain, false>; break;
    case DType::Q5_1: g = &group<&dec_q5_1<V256>, 32, 0, Step::Q81, false>; break;
    case DType::Q8_0: g = &group<&dec_q8_0<V256>, 32, 0, Step::Plain, true>; break;
    case DType::Q2_K: g = &group<&dec_q2_K<V256>, 256, 16, Step::KMin, false>; break;
    case DType::Q3_K: g = &group<&dec_q3_K<V256>, 256, 16, Step::Plain, false>; break;
    case DType::Q4_K: g = &group<&dec_q4_K<V256>, 256, 32, Step::KMin, false>; break;
    case DType::Q5_K: g = &group<&dec_q5_K<V256>, 256, 32, Step::KMin, false>; break;
    case DType::Q6_K: g = &group<&dec_q6_K<V256>, 256, 16, Step::Plain, false>; break;
    default:
      if (qk.type == kIQ4_NL) g = &group<&dec_iq4_nl<V256>, 32, 0, Step::Plain, true>;
      if (qk.type == kIQ4_XS) g = &group<&dec_iq4_xs<V256>, 256, 32, Step::Plain, true>;
  }
  if (!g) return false;
  *k = IntKernels{g, 8};
  return true;
}

bool avx2_row_kernels(DType t, RowKernels* k) {
  switch (t) {
    case DType::F32: *k = RowKernels{&gemv_plain<0>, &dequant_plain<0>}; return true;
    case DType::F16: *k = RowKernels{&gemv_plain<1>, &dequant_plain<1>}; return true;
    case DType::BF16: *k = RowKernels{&gemv_plain<2>, &dequant_plain<2>}; return true;
    default: return false;
  }
}

PanelGemm avx2_panel_gemm() { return &panel_gemm; }

}  // namespace kt::detail

#else  // built without AVX2: the dispatcher falls back

namespace kt::detail {
bool avx2_row_kernels(DType, RowKernels*) { return false; }
bool avx2_int_kernels(const QuantKind&, IntKernels*) { return false; }
PanelGemm avx2_panel_gemm() { return nullptr; }
}  // namespace kt::detail

#endif

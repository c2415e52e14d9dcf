// AVX-512 matmul kernels: each weight format is decoded once into 16-float vectors by a
// "decoder" that feeds either a dot product (decode) or a store into an f32 panel (prefill),
// so both paths share one unpacking routine per format.
#include "cpu/matmul.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__F16C__)
// GCC 12's own AVX-512 headers trip these on their _mm512_undefined_* helpers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "cpu/quant.h"

namespace kt::detail {
namespace {

using namespace blocks;

inline __m512 half_to_vec(uint16_t h) { return _mm512_set1_ps(_cvtsh_ss(h)); }
inline __m512i u8x16(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m512i i8x16(const int8_t* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m512 to_f(__m512i v) { return _mm512_cvtepi32_ps(v); }
// A function, not a global: a global would run an AVX-512 instruction at load time on any CPU.
inline __m512i low4() { return _mm512_set1_epi32(0xF); }

// ---- sinks: what to do with each decoded vector of 16 weights at element offset `off` ----

struct DotSink {
  const float* x;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  void operator()(int64_t off, __m512 v, int s) { acc[s] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + off), acc[s]); }
  float sum() const { return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))); }
};

struct StoreSink {
  float* out;
  void operator()(int64_t off, __m512 v, int) { _mm512_storeu_ps(out + off, v); }
};

// ---- decoders: call sink(offset, vector, accumulator slot) for every 16 weights of a row ----
//
// 4- and 5-bit codes index a per-block table of their 16 (32) dequantized values with one
// permute, which replaces the int->float convert and the scale multiply per vector. The
// 16-entry permute reads only the low 4 bits of each index, so low nibbles go in unmasked.

inline __m512 iota16() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline __m512 lookup(__m512i idx, __m512 table) { return _mm512_permutexvar_ps(idx, table); }
// 32-entry table in two halves; bit 4 of idx picks the half.
inline __m512 lookup32(__m512i idx, __m512 lo, __m512 hi) { return _mm512_permutex2var_ps(lo, idx, hi); }

// d * (q - offset) for q = 0..15, rounded once like the reference's (q - offset) * d.
inline __m512 offset_table(__m512 d, float offset, float first = 0) {
  return _mm512_fmsub_ps(_mm512_add_ps(iota16(), _mm512_set1_ps(first)), d, _mm512_mul_ps(d, _mm512_set1_ps(offset)));
}

template <class Sink>
void decode_q4_0(const void* w, int64_t K, Sink& sink) {
  const Q4_0* b = static_cast<const Q4_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 table = offset_table(half_to_vec(b[i].d), 8);
    const __m512i q = u8x16(b[i].qs);
    sink(32 * i, lookup(q, table), 0);
    sink(32 * i + 16, lookup(_mm512_srli_epi32(q, 4), table), 1);
  }
}

template <class Sink>
void decode_q4_1(const void* w, int64_t K, Sink& sink) {
  const Q4_1* b = static_cast<const Q4_1*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 table = _mm512_fmadd_ps(iota16(), half_to_vec(b[i].d), half_to_vec(b[i].m));
    const __m512i q = u8x16(b[i].qs);
    sink(32 * i, lookup(q, table), 0);
    sink(32 * i + 16, lookup(_mm512_srli_epi32(q, 4), table), 1);
  }
}

// The 5th bit of element j lives in bit j of qh: a mask register sets bit 4 of the index.
inline __m512i with_bit4(__m512i idx, uint32_t mask) {
  return _mm512_mask_or_epi32(idx, static_cast<__mmask16>(mask), idx, _mm512_set1_epi32(16));
}

template <class Sink>
void decode_q5_0(const void* w, int64_t K, Sink& sink) {
  const Q5_0* b = static_cast<const Q5_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 d = half_to_vec(b[i].d);
    const __m512 lo_t = offset_table(d, 16), hi_t = offset_table(d, 16, 16);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    const __m512i q = u8x16(b[i].qs);
    sink(32 * i, lookup32(with_bit4(_mm512_and_si512(q, low4()), qh), lo_t, hi_t), 0);
    sink(32 * i + 16, lookup32(with_bit4(_mm512_srli_epi32(q, 4), qh >> 16), lo_t, hi_t), 1);
  }
}

template <class Sink>
void decode_q5_1(const void* w, int64_t K, Sink& sink) {
  const Q5_1* b = static_cast<const Q5_1*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 d = half_to_vec(b[i].d), m = half_to_vec(b[i].m);
    const __m512 lo_t = _mm512_fmadd_ps(iota16(), d, m);
    const __m512 hi_t = _mm512_fmadd_ps(_mm512_add_ps(iota16(), _mm512_set1_ps(16)), d, m);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    const __m512i q = u8x16(b[i].qs);
    sink(32 * i, lookup32(with_bit4(_mm512_and_si512(q, low4()), qh), lo_t, hi_t), 0);
    sink(32 * i + 16, lookup32(with_bit4(_mm512_srli_epi32(q, 4), qh >> 16), lo_t, hi_t), 1);
  }
}

template <class Sink>
void decode_q8_0(const void* w, int64_t K, Sink& sink) {
  const Q8_0* b = static_cast<const Q8_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 d = half_to_vec(b[i].d);
    sink(32 * i, _mm512_mul_ps(to_f(i8x16(b[i].qs)), d), 0);
    sink(32 * i + 16, _mm512_mul_ps(to_f(i8x16(b[i].qs + 16)), d), 1);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with a 6-bit scale and min each, unpacked from the 12
// scale bytes with 32-bit word operations: lanes 0-7 get d * scale, lanes 8-15 dmin * min.
inline __m512 k4_scales(uint16_t dh, uint16_t dminh, const uint8_t* packed) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  const uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = b & 0x3f3f3f3fu;
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
  const __m128i bytes = _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), static_cast<int>(m_lo),
                                       static_cast<int>(m_hi));
  const __m512 mult = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(_cvtsh_ss(dh)), _mm512_set1_ps(_cvtsh_ss(dminh)));
  return _mm512_mul_ps(to_f(_mm512_cvtepu8_epi32(bytes)), mult);
}

inline __m512 lane(__m512 v, int j) { return _mm512_permutexvar_ps(_mm512_set1_epi32(j), v); }

// Table of d_j * q - m_j for sub-block j.
inline __m512 k4_table(__m512 scales, int j) { return _mm512_fmsub_ps(iota16(), lane(scales, j), lane(scales, 8 + j)); }

template <class Sink>
void decode_q4_K(const void* w, int64_t K, Sink& sink) {
  const Q4_K* b = static_cast<const Q4_K*>(w);
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m512 scales = k4_scales(b[i].d, b[i].dmin, b[i].scales);
    for (int j = 0; j < 4; ++j) {
      const __m512 lo_t = k4_table(scales, 2 * j), hi_t = k4_table(scales, 2 * j + 1);
      for (int h = 0; h < 2; ++h) {
        const __m512i q = u8x16(b[i].qs + 32 * j + 16 * h);
        const int64_t off = 256 * i + 64 * j + 16 * h;
        sink(off, lookup(q, lo_t), h);
        sink(off + 32, lookup(_mm512_srli_epi32(q, 4), hi_t), 2 + h);
      }
    }
  }
}

template <class Sink>
void decode_q5_K(const void* w, int64_t K, Sink& sink) {
  const Q5_K* b = static_cast<const Q5_K*>(w);
  const __m512 sixteen = _mm512_set1_ps(16);
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m512 scales = k4_scales(b[i].d, b[i].dmin, b[i].scales);
    const __m512i qh[2] = {u8x16(b[i].qh), u8x16(b[i].qh + 16)};
    for (int j = 0; j < 4; ++j) {
      __m512 t[2][2];  // [sub-block][half of the 32-entry table]
      for (int s = 0; s < 2; ++s) {
        const __m512 d = lane(scales, 2 * j + s), m = lane(scales, 8 + 2 * j + s);
        t[s][0] = _mm512_fmsub_ps(iota16(), d, m);
        t[s][1] = _mm512_fmsub_ps(_mm512_add_ps(iota16(), sixteen), d, m);
      }
      const __m512i bit_lo = _mm512_set1_epi32(1 << (2 * j)), bit_hi = _mm512_set1_epi32(2 << (2 * j));
      for (int h = 0; h < 2; ++h) {
        const __m512i q = u8x16(b[i].qs + 32 * j + 16 * h);
        const __m512i lo = with_bit4(_mm512_and_si512(q, low4()), _mm512_test_epi32_mask(qh[h], bit_lo));
        const __m512i hi = with_bit4(_mm512_srli_epi32(q, 4), _mm512_test_epi32_mask(qh[h], bit_hi));
        const int64_t off = 256 * i + 64 * j + 16 * h;
        sink(off, lookup32(lo, t[0][0], t[0][1]), h);
        sink(off + 32, lookup32(hi, t[1][0], t[1][1]), 2 + h);
      }
    }
  }
}

// Q6_K: per 128 weights, ql holds two nibble planes and qh four 2-bit planes. The -32
// offset rides in the multiply: fmsub(q, s, 32 s) rounds s * (q - 32) once, like the reference.
template <class Sink>
void decode_q6_K(const void* w, int64_t K, Sink& sink) {
  const Q6_K* b = static_cast<const Q6_K*>(w);
  const __m512i bits45 = _mm512_set1_epi32(0x30);
  const __m512 thirty_two = _mm512_set1_ps(32);
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m512 d = half_to_vec(b[i].d);
    const __m512 scales = _mm512_mul_ps(to_f(i8x16(b[i].scales)), d);
    for (int n = 0; n < 2; ++n) {
      const int64_t base = 256 * i + 128 * n;
      for (int h = 0; h < 2; ++h) {
        const __m512i a = u8x16(b[i].ql + 64 * n + 16 * h), c = u8x16(b[i].ql + 64 * n + 32 + 16 * h);
        const __m512i hb = u8x16(b[i].qh + 32 * n + 16 * h);
        // nibble | (high bits moved to bits 4-5): ternary logic A | (B & C)
        const auto code = [&](__m512i nib, __m512i high) { return to_f(_mm512_ternarylogic_epi32(nib, high, bits45, 0xF8)); };
        const auto put = [&](int64_t off, __m512 q, int sub, int slot) {
          const __m512 s = lane(scales, 8 * n + h + sub);
          sink(off, _mm512_fmsub_ps(q, s, _mm512_mul_ps(s, thirty_two)), slot);
        };
        put(base + 16 * h, code(_mm512_and_si512(a, low4()), _mm512_slli_epi32(hb, 4)), 0, 0);
        put(base + 32 + 16 * h, code(_mm512_and_si512(c, low4()), _mm512_slli_epi32(hb, 2)), 2, 1);
        put(base + 64 + 16 * h, code(_mm512_srli_epi32(a, 4), hb), 4, 2);
        put(base + 96 + 16 * h, code(_mm512_srli_epi32(c, 4), _mm512_srli_epi32(hb, 2)), 6, 3);
      }
    }
  }
}

// Q2_K / Q3_K: 16 sub-blocks of 16; per 128 weights, 32 bytes of qs hold four 2-bit planes.
// Weight 128 h + 32 j + 16 p + l is plane j of byte 32 h + 16 p + l, sub-block 8 h + 2 j + p.
template <class Sink>
void decode_q2_K(const void* w, int64_t K, Sink& sink) {
  const Q2_K* b = static_cast<const Q2_K*>(w);
  const __m512i three = _mm512_set1_epi32(3);
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m512i sc = u8x16(b[i].scales);  // low nibble scale, high nibble min
    const __m512 dl = _mm512_mul_ps(to_f(_mm512_and_si512(sc, low4())), half_to_vec(b[i].d));
    const __m512 ml = _mm512_mul_ps(to_f(_mm512_srli_epi32(sc, 4)), half_to_vec(b[i].dmin));
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < 2; ++p) {
        const __m512i q = u8x16(b[i].qs + 32 * h + 16 * p);
        for (int j = 0; j < 4; ++j) {
          const int is = 8 * h + 2 * j + p;
          const __m512 code = to_f(_mm512_and_si512(_mm512_srli_epi32(q, 2 * j), three));
          sink(256 * i + 128 * h + 32 * j + 16 * p, _mm512_fmsub_ps(code, lane(dl, is), lane(ml, is)), j);
        }
      }
    }
  }
}

// d * (scale - 32) for the 16 sub-blocks of a Q3_K block, unpacked with 32-bit word operations.
inline __m512 q3_k_scales(const uint8_t* s, float d) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
  const __m128i bytes = _mm_setr_epi32(static_cast<int>((a & m4) | ((c & m2) << 4)),
                                       static_cast<int>((b & m4) | (((c >> 2) & m2) << 4)),
                                       static_cast<int>(((a >> 4) & m4) | (((c >> 4) & m2) << 4)),
                                       static_cast<int>(((b >> 4) & m4) | (((c >> 6) & m2) << 4)));
  const __m512i scales = _mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), _mm512_set1_epi32(32));
  return _mm512_mul_ps(to_f(scales), _mm512_set1_ps(d));
}

// Q3_K codes are 2 low bits from qs plus a high bit from hmask (bit 4 h + j of byte 16 p + l);
// a clear high bit means code - 4. fmsub(code, s, 4 s) rounds s * (code - 4) once, like the reference.
template <class Sink>
void decode_q3_K(const void* w, int64_t K, Sink& sink) {
  const Q3_K* b = static_cast<const Q3_K*>(w);
  const __m512i three = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m512 dl = q3_k_scales(b[i].scales, _cvtsh_ss(b[i].d));
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < 2; ++p) {
        const __m512i q = u8x16(b[i].qs + 32 * h + 16 * p), hm = u8x16(b[i].hmask + 16 * p);
        for (int j = 0; j < 4; ++j) {
          __m512i code = _mm512_and_si512(_mm512_srli_epi32(q, 2 * j), three);
          code = _mm512_mask_or_epi32(code, _mm512_test_epi32_mask(hm, _mm512_set1_epi32(1 << (4 * h + j))), code, four);
          const __m512 s = lane(dl, 8 * h + 2 * j + p);
          sink(256 * i + 128 * h + 32 * j + 16 * p, _mm512_fmsub_ps(to_f(code), s, _mm512_mul_ps(s, _mm512_set1_ps(4))), j);
        }
      }
    }
  }
}

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
float dot_plain(const float* x, const void* w, int64_t K) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    acc[0] = _mm512_fmadd_ps(load_plain<Kind>(w, k), _mm512_loadu_ps(x + k), acc[0]);
    acc[1] = _mm512_fmadd_ps(load_plain<Kind>(w, k + 16), _mm512_loadu_ps(x + k + 16), acc[1]);
  }
  if (k + 16 <= K) {
    acc[0] = _mm512_fmadd_ps(load_plain<Kind>(w, k), _mm512_loadu_ps(x + k), acc[0]);
    k += 16;
  }
  if (k < K) {
    const __mmask16 mask = tail_mask(K - k);
    acc[1] = _mm512_fmadd_ps(load_plain_tail<Kind>(w, k, mask), _mm512_maskz_loadu_ps(mask, x + k), acc[1]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

template <int Kind>
void dequant_plain(const void* w, float* out, int64_t K) {
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) _mm512_storeu_ps(out + k, load_plain<Kind>(w, k));
  if (k < K) _mm512_mask_storeu_ps(out + k, tail_mask(K - k), load_plain_tail<Kind>(w, k, tail_mask(K - k)));
}

template <void (*Decode)(const void*, int64_t, DotSink&)>
float dot_decoded(const float* x, const void* w, int64_t K) {
  DotSink sink{x};
  Decode(w, K, sink);
  return sink.sum();
}

template <void (*Decode)(const void*, int64_t, StoreSink&)>
void dequant_decoded(const void* w, float* out, int64_t K) {
  StoreSink sink{out};
  Decode(w, K, sink);
}

#define KT_DECODED(fn) RowKernels{&dot_decoded<&fn<DotSink>>, &dequant_decoded<&fn<StoreSink>>}

// ---- f32 panel GEMM: MR rows of x against NR rows of the panel, full K per tile ----

template <int MR, int NR>
void gemm_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* out, int64_t ldo) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 mask = tail_mask(K - k);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_ps(mask, w + j * ldw + k);
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

// Rows [0, nw) of the panel in tiles of kNR, the last one narrower.
template <int MR>
void gemm_rows(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out, int64_t ldo) {
  int64_t j = 0;
  for (; j + kNR <= nw; j += kNR) gemm_tile<MR, kNR>(x, ldx, w + j * ldw, ldw, K, out + j, ldo);
  const int64_t rest = nw - j;
  if constexpr (kNR > 1) if (rest == 1) gemm_tile<MR, 1>(x, ldx, w + j * ldw, ldw, K, out + j, ldo);
  if constexpr (kNR > 2) if (rest == 2) gemm_tile<MR, 2>(x, ldx, w + j * ldw, ldw, K, out + j, ldo);
  if constexpr (kNR > 3) if (rest == 3) gemm_tile<MR, 3>(x, ldx, w + j * ldw, ldw, K, out + j, ldo);
}

// The last M % kMR rows of x: one instantiation per possible remainder.
template <int R>
void gemm_rest(int64_t rest, const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
               int64_t ldo) {
  if constexpr (R > 0) {
    if (rest == R) return gemm_rows<R>(x, ldx, w, ldw, nw, K, out, ldo);
    gemm_rest<R - 1>(rest, x, ldx, w, ldw, nw, K, out, ldo);
  }
}

void panel_gemm(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K, float* out,
                int64_t ldo) {
  int64_t m = 0;
  for (; m + kMR <= M; m += kMR) gemm_rows<kMR>(x + m * ldx, ldx, w, ldw, nw, K, out + m * ldo, ldo);
  gemm_rest<kMR - 1>(M - m, x + m * ldx, ldx, w, ldw, nw, K, out + m * ldo, ldo);
}

// Formats without a hand-written decoder: reference dequantization a chunk at a time.
template <DType T>
float generic_dot(const float* x, const void* w, int64_t K) {
  const TypeTraits& tr = *quant_traits(T);
  alignas(64) float buf[256];
  __m512 acc = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 256) {
    const int64_t n = std::min<int64_t>(256, K - k);  // a multiple of 32: every block size divides it
    dequantize_row(T, static_cast<const uint8_t*>(w) + row_bytes(tr, k), buf, n);
    for (int64_t l = 0; l < n; l += 16) acc = _mm512_fmadd_ps(_mm512_load_ps(buf + l), _mm512_loadu_ps(x + k + l), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

template <DType T>
void generic_dequant(const void* w, float* out, int64_t K) {
  dequantize_row(T, w, out, K);
}

}  // namespace

bool avx512_row_kernels(DType t, RowKernels* k) {
  switch (t) {
    case DType::F32: *k = RowKernels{&dot_plain<0>, &dequant_plain<0>}; return true;
    case DType::F16: *k = RowKernels{&dot_plain<1>, &dequant_plain<1>}; return true;
    case DType::BF16: *k = RowKernels{&dot_plain<2>, &dequant_plain<2>}; return true;
    case DType::Q4_0: *k = KT_DECODED(decode_q4_0); return true;
    case DType::Q4_1: *k = KT_DECODED(decode_q4_1); return true;
    case DType::Q5_0: *k = KT_DECODED(decode_q5_0); return true;
    case DType::Q5_1: *k = KT_DECODED(decode_q5_1); return true;
    case DType::Q8_0: *k = KT_DECODED(decode_q8_0); return true;
    case DType::Q4_K: *k = KT_DECODED(decode_q4_K); return true;
    case DType::Q5_K: *k = KT_DECODED(decode_q5_K); return true;
    case DType::Q6_K: *k = KT_DECODED(decode_q6_K); return true;
    case DType::Q2_K: *k = KT_DECODED(decode_q2_K); return true;
    case DType::Q3_K: *k = KT_DECODED(decode_q3_K); return true;
    default: break;
  }
  if (t == kIQ4_NL) { *k = RowKernels{&generic_dot<kIQ4_NL>, &generic_dequant<kIQ4_NL>}; return true; }
  if (t == kIQ4_XS) { *k = RowKernels{&generic_dot<kIQ4_XS>, &generic_dequant<kIQ4_XS>}; return true; }
  return false;
}

PanelGemm avx512_panel_gemm() { return &panel_gemm; }

}  // namespace kt::detail

#else  // built without AVX-512: the dispatcher falls back

namespace kt::detail {
bool avx512_row_kernels(DType, RowKernels*) { return false; }
PanelGemm avx512_panel_gemm() { return nullptr; }
}  // namespace kt::detail

#endif

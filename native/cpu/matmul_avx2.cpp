// AVX2 matmul kernels: the AVX-512 file's design with 8-float vectors. A decoder per
// weight format feeds either a dot product (decode) or a store into an f32 panel (prefill).
#include "cpu/matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>

#include "cpu/quant.h"

namespace kt::detail {
namespace {

using namespace blocks;

inline __m256 half_to_vec(uint16_t h) { return _mm256_set1_ps(_cvtsh_ss(h)); }
inline __m256i u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i i8x8(const int8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256 to_f(__m256i v) { return _mm256_cvtepi32_ps(v); }
// Functions, not globals: a global would run AVX2 instructions at load time on any CPU.
inline __m256i low4() { return _mm256_set1_epi32(0xF); }
inline __m256i lane_index() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- sinks: what to do with each decoded vector of 8 weights at element offset `off` ----

struct DotSink {
  const float* x;
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  void operator()(int64_t off, __m256 v, int s) { acc[s] = _mm256_fmadd_ps(v, _mm256_loadu_ps(x + off), acc[s]); }
  float sum() const { return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))); }
};

struct StoreSink {
  float* out;
  void operator()(int64_t off, __m256 v, int) { _mm256_storeu_ps(out + off, v); }
};

// Bit (base + lane) of bits, moved to bit 4 (value 16) of each lane.
inline __m256i fifth_bit(uint32_t bits, int base) {
  const __m256i shift = _mm256_add_epi32(lane_index(), _mm256_set1_epi32(base));
  return _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(bits)), shift),
                                            _mm256_set1_epi32(1)),
                           4);
}

// ---- decoders: call sink(offset, vector, accumulator slot) for every 8 weights of a row ----

template <class Sink>
void decode_q4_0(const void* w, int64_t K, Sink& sink) {
  const Q4_0* b = static_cast<const Q4_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m256 d = half_to_vec(b[i].d), d8 = _mm256_mul_ps(d, _mm256_set1_ps(8));
    for (int h = 0; h < 2; ++h) {
      const __m256i q = u8x8(b[i].qs + 8 * h);
      sink(32 * i + 8 * h, _mm256_fmsub_ps(to_f(_mm256_and_si256(q, low4())), d, d8), h);
      sink(32 * i + 16 + 8 * h, _mm256_fmsub_ps(to_f(_mm256_srli_epi32(q, 4)), d, d8), 2 + h);
    }
  }
}

template <class Sink>
void decode_q4_1(const void* w, int64_t K, Sink& sink) {
  const Q4_1* b = static_cast<const Q4_1*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m256 d = half_to_vec(b[i].d), m = half_to_vec(b[i].m);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = u8x8(b[i].qs + 8 * h);
      sink(32 * i + 8 * h, _mm256_fmadd_ps(to_f(_mm256_and_si256(q, low4())), d, m), h);
      sink(32 * i + 16 + 8 * h, _mm256_fmadd_ps(to_f(_mm256_srli_epi32(q, 4)), d, m), 2 + h);
    }
  }
}

template <class Sink>
void decode_q5_0(const void* w, int64_t K, Sink& sink) {
  const Q5_0* b = static_cast<const Q5_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m256 d = half_to_vec(b[i].d), d16 = _mm256_mul_ps(d, _mm256_set1_ps(16));
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = u8x8(b[i].qs + 8 * h);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4()), fifth_bit(qh, 8 * h));
      const __m256i hi = _mm256_or_si256(_mm256_srli_epi32(q, 4), fifth_bit(qh, 16 + 8 * h));
      // fmsub(q, d, 16 d) rounds d * (q - 16) once, exactly as the reference does
      sink(32 * i + 8 * h, _mm256_fmsub_ps(to_f(lo), d, d16), h);
      sink(32 * i + 16 + 8 * h, _mm256_fmsub_ps(to_f(hi), d, d16), 2 + h);
    }
  }
}

template <class Sink>
void decode_q5_1(const void* w, int64_t K, Sink& sink) {
  const Q5_1* b = static_cast<const Q5_1*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m256 d = half_to_vec(b[i].d), m = half_to_vec(b[i].m);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = u8x8(b[i].qs + 8 * h);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4()), fifth_bit(qh, 8 * h));
      const __m256i hi = _mm256_or_si256(_mm256_srli_epi32(q, 4), fifth_bit(qh, 16 + 8 * h));
      sink(32 * i + 8 * h, _mm256_fmadd_ps(to_f(lo), d, m), h);
      sink(32 * i + 16 + 8 * h, _mm256_fmadd_ps(to_f(hi), d, m), 2 + h);
    }
  }
}

template <class Sink>
void decode_q8_0(const void* w, int64_t K, Sink& sink) {
  const Q8_0* b = static_cast<const Q8_0*>(w);
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m256 d = half_to_vec(b[i].d);
    for (int h = 0; h < 4; ++h) sink(32 * i + 8 * h, _mm256_mul_ps(to_f(i8x8(b[i].qs + 8 * h)), d), h);
  }
}

struct SubScales {
  __m256 d[8], m[8];
};

inline void k4_scales(uint16_t dh, uint16_t dminh, const uint8_t* packed, SubScales* s) {
  const float d = _cvtsh_ss(dh), dmin = _cvtsh_ss(dminh);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    s->d[j] = _mm256_set1_ps(d * sc);
    s->m[j] = _mm256_set1_ps(dmin * m);
  }
}

template <class Sink>
void decode_q4_K(const void* w, int64_t K, Sink& sink) {
  const Q4_K* b = static_cast<const Q4_K*>(w);
  SubScales s;
  for (int64_t i = 0; i < K / 256; ++i) {
    k4_scales(b[i].d, b[i].dmin, b[i].scales, &s);
    for (int j = 0; j < 4; ++j) {
      for (int h = 0; h < 4; ++h) {
        const __m256i q = u8x8(b[i].qs + 32 * j + 8 * h);
        const int64_t off = 256 * i + 64 * j + 8 * h;
        sink(off, _mm256_fmsub_ps(to_f(_mm256_and_si256(q, low4())), s.d[2 * j], s.m[2 * j]), h & 1);
        sink(off + 32, _mm256_fmsub_ps(to_f(_mm256_srli_epi32(q, 4)), s.d[2 * j + 1], s.m[2 * j + 1]), 2 + (h & 1));
      }
    }
  }
}

template <class Sink>
void decode_q5_K(const void* w, int64_t K, Sink& sink) {
  const Q5_K* b = static_cast<const Q5_K*>(w);
  const __m256i one = _mm256_set1_epi32(1);
  SubScales s;
  for (int64_t i = 0; i < K / 256; ++i) {
    k4_scales(b[i].d, b[i].dmin, b[i].scales, &s);
    for (int j = 0; j < 4; ++j) {
      for (int h = 0; h < 4; ++h) {
        const __m256i q = u8x8(b[i].qs + 32 * j + 8 * h), qh = u8x8(b[i].qh + 8 * h);
        const __m256i hb_lo = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(qh, 2 * j), one), 4);
        const __m256i hb_hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(qh, 2 * j + 1), one), 4);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4()), hb_lo);
        const __m256i hi = _mm256_or_si256(_mm256_srli_epi32(q, 4), hb_hi);
        const int64_t off = 256 * i + 64 * j + 8 * h;
        sink(off, _mm256_fmsub_ps(to_f(lo), s.d[2 * j], s.m[2 * j]), h & 1);
        sink(off + 32, _mm256_fmsub_ps(to_f(hi), s.d[2 * j + 1], s.m[2 * j + 1]), 2 + (h & 1));
      }
    }
  }
}

// Q6_K: per 128 weights, ql holds two nibble planes and qh four 2-bit planes. The -32
// offset rides in the multiply: fmsub(q, s, 32 s) rounds s * (q - 32) once, like the reference.
template <class Sink>
void decode_q6_K(const void* w, int64_t K, Sink& sink) {
  const Q6_K* b = static_cast<const Q6_K*>(w);
  const __m256i bits45 = _mm256_set1_epi32(0x30);
  for (int64_t i = 0; i < K / 256; ++i) {
    const float d = _cvtsh_ss(b[i].d);
    for (int n = 0; n < 2; ++n) {
      const int64_t base = 256 * i + 128 * n;
      for (int h = 0; h < 4; ++h) {  // 8 of the 32 l's per step; scale index is l / 16
        const __m256i a = u8x8(b[i].ql + 64 * n + 8 * h), c = u8x8(b[i].ql + 64 * n + 32 + 8 * h);
        const __m256i hb = u8x8(b[i].qh + 32 * n + 8 * h);
        const int8_t* sc = b[i].scales + 8 * n + h / 2;
        // nibble | (the plane's 2 high bits, already moved to bits 4-5)
        const auto put = [&](int64_t off, __m256i nib, __m256i high, int sub, int slot) {
          const __m256 q = to_f(_mm256_or_si256(nib, _mm256_and_si256(high, bits45)));
          const float s = d * static_cast<float>(sc[sub]);
          sink(off, _mm256_fmsub_ps(q, _mm256_set1_ps(s), _mm256_set1_ps(32 * s)), slot);
        };
        put(base + 8 * h, _mm256_and_si256(a, low4()), _mm256_slli_epi32(hb, 4), 0, 0);
        put(base + 32 + 8 * h, _mm256_and_si256(c, low4()), _mm256_slli_epi32(hb, 2), 2, 1);
        put(base + 64 + 8 * h, _mm256_srli_epi32(a, 4), hb, 4, 2);
        put(base + 96 + 8 * h, _mm256_srli_epi32(c, 4), _mm256_srli_epi32(hb, 2), 6, 3);
      }
    }
  }
}

// Q2_K / Q3_K: 16 sub-blocks of 16; per 128 weights, 32 bytes of qs hold four 2-bit planes.
// Weight 128 h + 32 j + 16 p + 8 e + l is plane j of byte 32 h + 16 p + 8 e + l, sub-block 8 h + 2 j + p.
template <class Sink>
void decode_q2_K(const void* w, int64_t K, Sink& sink) {
  const Q2_K* b = static_cast<const Q2_K*>(w);
  const __m256i three = _mm256_set1_epi32(3);
  for (int64_t i = 0; i < K / 256; ++i) {
    const float d = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
    float dl[16], ml[16];
    for (int is = 0; is < 16; ++is) {
      dl[is] = d * static_cast<float>(b[i].scales[is] & 0xF);
      ml[is] = dmin * static_cast<float>(b[i].scales[is] >> 4);
    }
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < 2; ++p) {
        for (int e = 0; e < 2; ++e) {
          const __m256i q = u8x8(b[i].qs + 32 * h + 16 * p + 8 * e);
          for (int j = 0; j < 4; ++j) {
            const int is = 8 * h + 2 * j + p;
            const __m256 code = to_f(_mm256_and_si256(_mm256_srli_epi32(q, 2 * j), three));
            sink(256 * i + 128 * h + 32 * j + 16 * p + 8 * e,
                 _mm256_fmsub_ps(code, _mm256_set1_ps(dl[is]), _mm256_set1_ps(ml[is])), j);
          }
        }
      }
    }
  }
}

// Q3_K codes are 2 low bits from qs plus a high bit from hmask (bit 4 h + j of byte 16 p + l);
// a clear high bit means code - 4. fmsub(code, s, 4 s) rounds s * (code - 4) once, like the reference.
template <class Sink>
void decode_q3_K(const void* w, int64_t K, Sink& sink) {
  const Q3_K* b = static_cast<const Q3_K*>(w);
  const __m256i three = _mm256_set1_epi32(3), one = _mm256_set1_epi32(1);
  for (int64_t i = 0; i < K / 256; ++i) {
    const float d = _cvtsh_ss(b[i].d);
    float dl[16];
    for (int is = 0; is < 16; ++is) dl[is] = d * static_cast<float>(q3_k_scale(is, b[i].scales));
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < 2; ++p) {
        for (int e = 0; e < 2; ++e) {
          const __m256i q = u8x8(b[i].qs + 32 * h + 16 * p + 8 * e), hm = u8x8(b[i].hmask + 16 * p + 8 * e);
          for (int j = 0; j < 4; ++j) {
            const __m256i high = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hm, 4 * h + j), one), 2);
            const __m256 code = to_f(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(q, 2 * j), three), high));
            const float s = dl[8 * h + 2 * j + p];
            sink(256 * i + 128 * h + 32 * j + 16 * p + 8 * e, _mm256_fmsub_ps(code, _mm256_set1_ps(s), _mm256_set1_ps(4 * s)), j);
          }
        }
      }
    }
  }
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
float dot_plain(const float* x, const void* w, int64_t K) {
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    acc[0] = _mm256_fmadd_ps(load_plain<Kind>(w, k), _mm256_loadu_ps(x + k), acc[0]);
    acc[1] = _mm256_fmadd_ps(load_plain<Kind>(w, k + 8), _mm256_loadu_ps(x + k + 8), acc[1]);
  }
  for (; k + 8 <= K; k += 8) acc[0] = _mm256_fmadd_ps(load_plain<Kind>(w, k), _mm256_loadu_ps(x + k), acc[0]);
  float sum = hsum(_mm256_add_ps(acc[0], acc[1]));
  for (; k < K; ++k) sum += load_one<Kind>(w, k) * x[k];
  return sum;
}

template <int Kind>
void dequant_plain(const void* w, float* out, int64_t K) {
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) _mm256_storeu_ps(out + k, load_plain<Kind>(w, k));
  for (; k < K; ++k) out[k] = load_one<Kind>(w, k);
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
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = k; t < K; ++t) s += x[i * ldx + t] * w[j * ldw + t];
      out[i * ldo + j] = s;
    }
  }
}

// 12 accumulators + 3 panel vectors + 1 x vector: all 16 registers, no spills.
constexpr int kMR = 4, kNR = 3;

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
  alignas(32) float buf[256];
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t k = 0; k < K; k += 256) {
    const int64_t n = std::min<int64_t>(256, K - k);  // a multiple of 32: every block size divides it
    dequantize_row(T, static_cast<const uint8_t*>(w) + row_bytes(tr, k), buf, n);
    for (int64_t l = 0; l < n; l += 16) {
      acc[0] = _mm256_fmadd_ps(_mm256_load_ps(buf + l), _mm256_loadu_ps(x + k + l), acc[0]);
      acc[1] = _mm256_fmadd_ps(_mm256_load_ps(buf + l + 8), _mm256_loadu_ps(x + k + l + 8), acc[1]);
    }
  }
  return hsum(_mm256_add_ps(acc[0], acc[1]));
}

template <DType T>
void generic_dequant(const void* w, float* out, int64_t K) {
  dequantize_row(T, w, out, K);
}

#define KT_GENERIC(t) RowKernels{&generic_dot<t>, &generic_dequant<t>}

}  // namespace

bool avx2_row_kernels(DType t, RowKernels* k) {
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
  if (t == kIQ4_NL) { *k = KT_GENERIC(kIQ4_NL); return true; }
  if (t == kIQ4_XS) { *k = KT_GENERIC(kIQ4_XS); return true; }
  return false;
}

PanelGemm avx2_panel_gemm() { return &panel_gemm; }

}  // namespace kt::detail

#else  // built without AVX2: the dispatcher falls back

namespace kt::detail {
bool avx2_row_kernels(DType, RowKernels*) { return false; }
PanelGemm avx2_panel_gemm() { return nullptr; }
}  // namespace kt::detail

#endif

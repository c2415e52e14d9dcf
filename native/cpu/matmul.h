// x · Wᵀ over GGML weight formats on the CPU. Plain weights (F32/F16/BF16) multiply f32
// activations; quantized weights multiply activations quantized per row to the type's
// vec_dot format (q8_0, q8_1 or q8_K), as llama.cpp does: exact integer dot products per
// block, then one fixed sequence of float steps per output, so every (row, output) gives the
// same bits whatever M, the row's place in the batch, the thread count or the SIMD level.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/dtype.h"
#include "cpu/quant.h"
#include "cpu/thread_pool.h"

namespace kt {

// out[m*N + n] = sum_k x[m*K + k] * W_n[k]; W is N rows of K elements of type wt, row n at
// w + n*row_bytes(wt, K). K must be a multiple of the block size. Multithreaded over N.
// Throws std::invalid_argument for an unsupported type or a K that is not a whole number of blocks.
void matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* out, ThreadPool& pool);
bool matmul_supported(DType wt);

namespace detail {

// ---- plain weights: f32 activations ----

// Per-ISA kernels for one plain weight type, looked up once per matmul call. gemv computes
// each output with exactly the PanelGemm's operations, so M = 1 and M > 1 agree bit for bit.
struct RowKernels {
  // out[j] = x · w_j for j < nw: x K floats, w nw rows of K elements back to back.
  void (*gemv)(const float* x, const void* w, int64_t nw, int64_t K, float* out);
  // Converts one W row of K elements to f32 into out.
  void (*dequant)(const void* w, float* out, int64_t K);
};

// out[m*ldo + j] = x_m · w_j for m < M, j < nw, where x_m = x + m*ldx and w_j = w + j*ldw (f32, K each).
using PanelGemm = void (*)(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t nw, int64_t K,
                           float* out, int64_t ldo);

// Each returns false (and leaves *k alone) where it has no kernel for t or was built without the ISA.
bool scalar_row_kernels(DType t, RowKernels* k);
bool avx2_row_kernels(DType t, RowKernels* k);
bool avx512_row_kernels(DType t, RowKernels* k);
PanelGemm scalar_panel_gemm();
PanelGemm avx2_panel_gemm();    // nullptr when built without AVX2
PanelGemm avx512_panel_gemm();  // nullptr when built without AVX-512

// ---- quantized weights: int8 activations ----

enum class ActFormat : uint8_t { Q8_0, Q8_1, Q8_K };  // ggml's vec_dot_type of the weight type
// The float steps of one block (see block_step).
enum class Step : uint8_t { Plain, KMin, Q81 };

struct QuantKind {
  DType type;
  int64_t block;    // elements per block: 32, or 256 for K-quants and IQ4_XS
  int64_t bytes;    // bytes per weight block
  ActFormat act;    // activation blocks have the same size as weight blocks
  Step step;
  int scale_group;  // elements sharing one int scale s (16 or 32); 0: every s is 1
  UnpackFn unpack;  // the portable integer form (quant.h), for the scalar kernel
};
bool quant_kind(DType t, QuantKind* k);

// The activation rows of one matmul call, quantized.
struct ActRows {
  const int8_t* q;       // codes, row m at q + m*K
  const float* d;        // block scales (fp16-rounded for q8_0/q8_1), row m at d + m*(K/block)
  const float* s;        // q8_1 only: fp16(d * sum of the block's codes), laid out as d
  const int16_t* sums;   // sum of every 16 codes, row m at sums + m*(K/16)
  int64_t K, blocks;     // blocks per row
};

// Every kernel, per output and per block in order, with the block's exact integer parts isum and
// msum (IntBlock), weight scales wd, wm and activation scales xd (and q8_1's xs), does
//   acc = fma(float(isum), wd * xd, acc)
//   then Q2_K/Q4_K/Q5_K: acc = fma(float(msum), -(wm * xd), acc);  Q4_1/Q5_1: acc = fma(wm, xs, acc)
// (matmul.cpp's block_step; the SIMD kernels run it lane-wise, one weight row per lane).

// Panels: R weight rows of every block interleaved so that one vector load holds 4 codes of
// each of R rows (R = 16 for AVX-512, 8 for AVX2). Per block, R rows each:
//   codes [block/4][R][4] u8; S [block/scale_group][R] i32 (scale_group > 0);
//   C [block/32][R] and N [block/32][R] as pairs of i16 (c and n of groups 2p, 2p+1); D, Wm [R] f32.
struct PanelLayout {
  int64_t R, codes, S, C, N, D, Wm, bytes;  // byte offsets inside one block, and its size
};
PanelLayout panel_layout(const QuantKind& qk, int64_t R);

// out[m*ldo + r] for m < M, r < rows: up to R weight rows (row stride rb) against M activation rows.
using GroupKernel = void (*)(const QuantKind& qk, const uint8_t* w, int64_t rb, int64_t rows, const ActRows& x, int64_t M,
                             float* out, int64_t ldo);
struct IntKernels {
  GroupKernel group;
  int64_t rows;  // R
};
bool scalar_int_kernels(const QuantKind& qk, IntKernels* k);
bool avx2_int_kernels(const QuantKind& qk, IntKernels* k);
bool avx512_int_kernels(const QuantKind& qk, IntKernels* k);

// ---- what matmul() and the MoE expert op (cpu/op_moe.cpp) share ----

// Activation rows quantized for one weight type, with their storage.
struct ActBuffers {
  std::vector<int8_t> q;
  std::vector<float> d, s;
  std::vector<int16_t> sums;
  ActRows rows;
};
// Quantizes M rows of K floats (row m at x + m*ldx) to qk's activation format; one parallel
// loop over blocks when there are enough of them (call it outside any other loop).
void quantize_rows(const QuantKind& qk, const float* x, int64_t M, int64_t K, int64_t ldx, ActBuffers* a, ThreadPool& pool);
// Rows m0.. of a, as ActRows of their own.
ActRows act_rows_from(const ActRows& a, int64_t m0);

// The kernels of one weight type at this process's SIMD level.
struct WeightKernels {
  bool quantized;
  QuantKind qk;  // quantized types
  IntKernels ik;
  RowKernels row;  // plain types
  PanelGemm gemm;
  int64_t K, rb;  // elements and bytes per weight row
  int64_t rows;   // weight rows one kernel pass takes: a group (R), or an f32 panel for M > 1
};
// Throws std::invalid_argument as matmul() does for an unsupported type or a K that is not whole blocks.
WeightKernels weight_kernels(DType wt, int64_t K);

// out[m*ldo + r] = x_m · w_r for m < M, r < rows (w: rows weight rows, k.rb bytes apart), with
// exactly matmul()'s arithmetic per output. Quantized weights take x as ActRows, plain ones as
// f32 rows ldx apart (M > 1: through a thread-local panel of k.rows rows at a time).
void quant_rows(const WeightKernels& k, const uint8_t* w, int64_t rows, const ActRows& x, int64_t M, float* out, int64_t ldo);
void plain_rows(const WeightKernels& k, const uint8_t* w, int64_t rows, const float* x, int64_t ldx, int64_t M, float* out,
                int64_t ldo);

// ---- lane-form decoders: block b of R rows at once, lane r = row r ----
//
// Written once over a vector type V (V::I: R int32 lanes; V::Rows::load(off) gathers the dword at
// byte `off` of every row's block, bulk(off, n, v) loads n consecutive dwords of every row and
// transposes them into v[0..n)) and instantiated by the AVX2 and AVX-512 files. Each
// writes one panel block (PanelLayout) straight from the packed bytes, in the element order of
// quant.cpp's IntBlock unpackers. Chunk c holds elements 4c..4c+3 of every row.
namespace lanes {

template <class V> using I = typename V::I;

template <class V> inline I<V> bytes(int32_t b) { return V::set1(b * 0x01010101); }
template <class V> inline I<V> nib_lo(I<V> v) { return V::and_(v, bytes<V>(0x0F)); }
template <class V> inline I<V> nib_hi(I<V> v) { return V::and_(V::srli(v, 4), bytes<V>(0x0F)); }
// Byte t of every lane as an unsigned / sign-extended int32.
template <class V> inline I<V> byte_u(I<V> v, int t) { return V::and_(V::srli(v, 8 * t), V::set1(0xFF)); }
template <class V> inline I<V> byte_s(I<V> v, int t) { return V::srai(V::slli(v, 24 - 8 * t), 24); }
// (lo, hi) as a pair of int16 in each lane.
template <class V> inline I<V> pair16(I<V> lo, I<V> hi) { return V::or_(V::and_(lo, V::set1(0xFFFF)), V::slli(hi, 16)); }
// Bits 0-3 of each lane moved to bit 4 of bytes 0-3 (a 5th code bit).
template <class V> inline I<V> spread4(I<V> bits) {
  return V::slli(V::and_(V::mullo(V::and_(bits, V::set1(0xF)), V::set1(0x00204081)), bytes<V>(0x01)), 4);
}

template <class V> struct Out {
  const PanelLayout& pl;
  uint8_t* p;
  void code(int64_t c, I<V> v) const { V::store(p + pl.codes + c * V::R * 4, v); }
  void S(int64_t j, I<V> v) const { V::store(p + pl.S + j * V::R * 4, v); }
  void C(int64_t q, I<V> v) const { V::store(p + pl.C + q * V::R * 4, v); }
  void N(int64_t q, I<V> v) const { V::store(p + pl.N + q * V::R * 4, v); }
  void D(typename V::F d, typename V::F m) const { V::storef(p + pl.D, d); V::storef(p + pl.Wm, m); }
};

// Legacy 32-blocks: fp16 d (and m) at 0, optional 32-bit qh, 16 nibble bytes; offset `off`.
template <class V, bool HasM, bool FiveBit>
[[gnu::always_inline]] inline void legacy4(const typename V::Rows& r, const Out<V>& o, int off) {
  const I<V> h = r.load(0);
  o.D(V::half_lo(h), HasM ? V::half_hi(h) : V::fzero());
  const int64_t qs = (HasM ? 4 : 2) + (FiveBit ? 4 : 0);
  const I<V> qh = FiveBit ? r.load(HasM ? 4 : 2) : V::zero();
  I<V> raw[4];
  r.bulk(qs, 4, raw);
  for (int q = 0; q < 4; ++q) {
    const I<V> v = raw[q];
    I<V> lo = nib_lo<V>(v), hi = nib_hi<V>(v);
    if (FiveBit) {
      lo = V::or_(lo, spread4<V>(V::srli(qh, 4 * q)));
      hi = V::or_(hi, spread4<V>(V::srli(qh, 16 + 4 * q)));
    }
    o.code(q, lo);
    o.code(4 + q, hi);
  }
  o.C(0, pair16<V>(V::set1(-off), V::set1(-off)));
  o.N(0, V::zero());
}

// Q8_0 and IQ4_NL: signed codes ride as v + 128 (table: IQ4_NL's codebook + 128 per nibble).
template <class V, bool Table>
[[gnu::always_inline]] inline void signed32(const typename V::Rows& r, const Out<V>& o, I<V> table) {
  o.D(V::half_lo(r.load(0)), V::fzero());
  I<V> raw[8];
  r.bulk(2, Table ? 4 : 8, raw);
  for (int c = 0; c < 8; ++c) {
    if (Table) {
      if (c < 4) {
        o.code(c, V::shuffle_bytes(table, nib_lo<V>(raw[c])));
        o.code(c + 4, V::shuffle_bytes(table, nib_hi<V>(raw[c])));
      }
    } else {
      o.code(c, V::xor_(raw[c], bytes<V>(0x80)));
    }
  }
  o.C(0, pair16<V>(V::set1(-128), V::set1(-128)));
  o.N(0, V::zero());
}

// Q4_K / Q5_K: 6-bit scales and mins of 8 sub-blocks in 12 bytes at 4; qs at 16 (Q5_K: qh[32] at 16, qs at 48).
template <class V, bool FiveBit>
[[gnu::always_inline]] inline void k4(const typename V::Rows& r, const Out<V>& o) {
  const I<V> h = r.load(0), a = r.load(4), b = r.load(8), c = r.load(12);
  o.D(V::half_lo(h), V::half_hi(h));
  for (int j = 0; j < 8; ++j) {
    I<V> sc, mn;
    if (j < 4) {
      sc = V::and_(byte_u<V>(a, j), V::set1(63));
      mn = V::and_(byte_u<V>(b, j), V::set1(63));
    } else {
      sc = V::or_(V::and_(byte_u<V>(c, j - 4), V::set1(0xF)), V::slli(V::srli(byte_u<V>(a, j - 4), 6), 4));
      mn = V::or_(V::srli(byte_u<V>(c, j - 4), 4), V::slli(V::srli(byte_u<V>(b, j - 4), 6), 4));
    }
    o.S(j, sc);
    o.N(j, pair16<V>(mn, mn));
    o.C(j, V::zero());
  }
  I<V> raw[40];  // Q5_K: qh (8 dwords) then qs (32)
  r.bulk(16, FiveBit ? 40 : 32, raw);
  const I<V>* qh = raw;
  const I<V>* qs = FiveBit ? raw + 8 : raw;
  for (int j = 0; j < 4; ++j)
    for (int q = 0; q < 8; ++q) {
      const I<V> v = qs[8 * j + q];
      I<V> lo = nib_lo<V>(v), hi = nib_hi<V>(v);
      if (FiveBit) {
        lo = V::or_(lo, V::slli(V::and_(V::srli(qh[q], 2 * j), bytes<V>(1)), 4));
        hi = V::or_(hi, V::slli(V::and_(V::srli(qh[q], 2 * j + 1), bytes<V>(1)), 4));
      }
      o.code(16 * j + q, lo);
      o.code(16 * j + 8 + q, hi);
    }
}

// Q6_K: ql[128] at 0, qh[64] at 128, int8 scales[16] at 192, d at 208; codes v + 32.
template <class V>
[[gnu::always_inline]] inline void q6k(const typename V::Rows& r, const Out<V>& o) {
  o.D(V::half_hi(r.load(206)), V::fzero());  // d is the high half of the block's last dword
  I<V> s[16];
  for (int i = 0; i < 4; ++i) {
    const I<V> v = r.load(192 + 4 * i);
    for (int t = 0; t < 4; ++t) s[4 * i + t] = byte_s<V>(v, t);
  }
  for (int g = 0; g < 16; ++g) o.S(g, s[g]);
  for (int q = 0; q < 8; ++q) {
    o.C(q, pair16<V>(V::mullo(s[2 * q], V::set1(-32)), V::mullo(s[2 * q + 1], V::set1(-32))));
    o.N(q, V::zero());
  }
  const I<V> m2 = bytes<V>(3);
  I<V> raw[48];  // ql (32 dwords) then qh (16)
  r.bulk(0, 48, raw);
  for (int n = 0; n < 2; ++n)
    for (int q = 0; q < 8; ++q) {
      const I<V> A = raw[16 * n + q], B = raw[16 * n + 8 + q], H = raw[32 + 8 * n + q];
      o.code(32 * n + q, V::or_(nib_lo<V>(A), V::slli(V::and_(H, m2), 4)));
      o.code(32 * n + 8 + q, V::or_(nib_lo<V>(B), V::slli(V::and_(V::srli(H, 2), m2), 4)));
      o.code(32 * n + 16 + q, V::or_(nib_hi<V>(A), V::slli(V::and_(V::srli(H, 4), m2), 4)));
      o.code(32 * n + 24 + q, V::or_(nib_hi<V>(B), V::slli(V::and_(V::srli(H, 6), m2), 4)));
    }
}

// Q2_K: scales[16] at 0 (low nibble scale, high min), qs[64] at 16, d and dmin at 80.
// Q3_K: hmask[32] at 0, qs[64] at 32, 12 scale bytes at 96, d at 108; codes v + 4.
// Element 128h + 32j + 16p + l is plane j of qs byte 32h + 16p + l, group 8h + 2j + p.
template <class V, bool Three>
[[gnu::always_inline]] inline void q23k(const typename V::Rows& r, const Out<V>& o) {
  I<V> s[16];
  if (Three) {
    const I<V> a = r.load(96), b = r.load(100), c = r.load(104);
    o.D(V::half_hi(r.load(106)), V::fzero());
    for (int g = 0; g < 16; ++g) {
      const I<V> low = g < 8 ? V::and_(byte_u<V>(g < 4 ? a : b, g % 4), V::set1(0xF))
                             : V::srli(byte_u<V>(g < 12 ? a : b, g % 4), 4);
      const I<V> high = V::and_(V::srli(byte_u<V>(c, g % 4), 2 * (g / 4)), V::set1(3));
      s[g] = V::sub(V::or_(low, V::slli(high, 4)), V::set1(32));
      o.S(g, s[g]);
    }
    for (int q = 0; q < 8; ++q) {
      o.C(q, pair16<V>(V::mullo(s[2 * q], V::set1(-4)), V::mullo(s[2 * q + 1], V::set1(-4))));
      o.N(q, V::zero());
    }
  } else {
    const I<V> h = r.load(80);
    o.D(V::half_lo(h), V::half_hi(h));
    I<V> n[16];
    for (int i = 0; i < 4; ++i) {
      const I<V> v = r.load(4 * i);
      for (int t = 0; t < 4; ++t) {
        s[4 * i + t] = V::and_(byte_u<V>(v, t), V::set1(0xF));
        n[4 * i + t] = V::srli(byte_u<V>(v, t), 4);
      }
    }
    for (int g = 0; g < 16; ++g) o.S(g, s[g]);
    for (int q = 0; q < 8; ++q) {
      o.C(q, V::zero());
      o.N(q, pair16<V>(n[2 * q], n[2 * q + 1]));
    }
  }
  I<V> raw[24];  // Q3_K: hmask (8 dwords) then qs (16)
  r.bulk(Three ? 0 : 16, Three ? 24 : 16, raw);
  const I<V>* qs = Three ? raw + 8 : raw;
  for (int h = 0; h < 2; ++h)
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 4; ++q) {
        const I<V> v = qs[8 * h + 4 * p + q];
        const I<V> hm = Three ? raw[4 * p + q] : V::zero();
        for (int j = 0; j < 4; ++j) {
          I<V> code = V::and_(V::srli(v, 2 * j), bytes<V>(3));
          if (Three) code = V::or_(code, V::slli(V::and_(V::srli(hm, 4 * h + j), bytes<V>(1)), 2));
          o.code(32 * h + 8 * j + 4 * p + q, code);
        }
      }
}

// IQ4_XS: d at 0, scales_h at 2, scales_l[4] at 4, qs[128] at 8; codebook + 128, scale ls - 32 per 32.
template <class V>
[[gnu::always_inline]] inline void iq4xs(const typename V::Rows& r, const Out<V>& o, I<V> table) {
  const I<V> h = r.load(0), sl = r.load(4);
  o.D(V::half_lo(h), V::fzero());
  I<V> raw[32];
  r.bulk(8, 32, raw);
  for (int ib = 0; ib < 8; ++ib) {
    const I<V> ls = V::or_(V::and_(V::srli(sl, 4 * ib), V::set1(0xF)),
                           V::slli(V::and_(V::srli(h, 16 + 2 * ib), V::set1(3)), 4));
    const I<V> s = V::sub(ls, V::set1(32)), c = V::mullo(s, V::set1(-128));
    o.S(ib, s);
    o.C(ib, pair16<V>(c, c));
    o.N(ib, V::zero());
    for (int q = 0; q < 4; ++q) {
      const I<V> v = raw[4 * ib + q];
      o.code(8 * ib + q, V::shuffle_bytes(table, nib_lo<V>(v)));
      o.code(8 * ib + 4 + q, V::shuffle_bytes(table, nib_hi<V>(v)));
    }
  }
}

// IQ4_NL's codebook + 128 as bytes, for V::shuffle_bytes.
template <class V> I<V> iq4_table() {
  int32_t w[4];
  for (int i = 0; i < 4; ++i) {
    uint32_t b = 0;
    for (int k = 0; k < 4; ++k) b |= static_cast<uint32_t>(static_cast<uint8_t>(blocks::kIQ4NLValues[4 * i + k] + 128)) << (8 * k);
    w[i] = static_cast<int32_t>(b);
  }
  return V::set4(w);
}

template <class V>
using Decoder = void (*)(const typename V::Rows& r, const Out<V>& o);

template <class V> [[gnu::always_inline]] inline void dec_q4_0(const typename V::Rows& r, const Out<V>& o) { legacy4<V, false, false>(r, o, 8); }
template <class V> [[gnu::always_inline]] inline void dec_q4_1(const typename V::Rows& r, const Out<V>& o) { legacy4<V, true, false>(r, o, 0); }
template <class V> [[gnu::always_inline]] inline void dec_q5_0(const typename V::Rows& r, const Out<V>& o) { legacy4<V, false, true>(r, o, 16); }
template <class V> [[gnu::always_inline]] inline void dec_q5_1(const typename V::Rows& r, const Out<V>& o) { legacy4<V, true, true>(r, o, 0); }
template <class V> [[gnu::always_inline]] inline void dec_q8_0(const typename V::Rows& r, const Out<V>& o) { signed32<V, false>(r, o, V::zero()); }
template <class V> [[gnu::always_inline]] inline void dec_iq4_nl(const typename V::Rows& r, const Out<V>& o) { signed32<V, true>(r, o, iq4_table<V>()); }
template <class V> [[gnu::always_inline]] inline void dec_q2_K(const typename V::Rows& r, const Out<V>& o) { q23k<V, false>(r, o); }
template <class V> [[gnu::always_inline]] inline void dec_q3_K(const typename V::Rows& r, const Out<V>& o) { q23k<V, true>(r, o); }
template <class V> [[gnu::always_inline]] inline void dec_q4_K(const typename V::Rows& r, const Out<V>& o) { k4<V, false>(r, o); }
template <class V> [[gnu::always_inline]] inline void dec_q5_K(const typename V::Rows& r, const Out<V>& o) { k4<V, true>(r, o); }
template <class V> [[gnu::always_inline]] inline void dec_q6_K(const typename V::Rows& r, const Out<V>& o) { q6k<V>(r, o); }
template <class V> [[gnu::always_inline]] inline void dec_iq4_xs(const typename V::Rows& r, const Out<V>& o) { iq4xs<V>(r, o, iq4_table<V>()); }

template <class V>
Decoder<V> decoder(DType t) {
  switch (t) {
    case DType::Q4_0: return &dec_q4_0<V>;
    case DType::Q4_1: return &dec_q4_1<V>;
    case DType::Q5_0: return &dec_q5_0<V>;
    case DType::Q5_1: return &dec_q5_1<V>;
    case DType::Q8_0: return &dec_q8_0<V>;
    case DType::Q2_K: return &dec_q2_K<V>;
    case DType::Q3_K: return &dec_q3_K<V>;
    case DType::Q4_K: return &dec_q4_K<V>;
    case DType::Q5_K: return &dec_q5_K<V>;
    case DType::Q6_K: return &dec_q6_K<V>;
    default: break;
  }
  if (t == kIQ4_NL) return &dec_iq4_nl<V>;
  if (t == kIQ4_XS) return &dec_iq4_xs<V>;
  return nullptr;
}

}  // namespace lanes

}  // namespace detail

}  // namespace kt

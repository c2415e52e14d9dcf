// Device-side GGML weight formats. Each type's Quant<T>::piece() dequantizes kPiece
// consecutive elements of one block into registers; the GEMV, dequantize and embedding
// kernels are all written over it. The arithmetic is the CPU reference's (native/cpu/quant.cpp)
// step for step with every product rounded on its own (__fmul_rn: no fused multiply-add),
// so the values equal the CPU's bit for bit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cpu/dtype.h"

namespace kt::cuda {

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const uint16_t*>(p)));
}
__device__ __forceinline__ float bf16_bits(uint32_t h) { return __uint_as_float(h << 16); }
__device__ __forceinline__ uint32_t u16_at(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
__device__ __forceinline__ uint32_t u32_at(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Byte b (0..3) of a little-endian word.
__device__ __forceinline__ uint32_t byte_of(uint32_t w, int b) { return (w >> (8 * b)) & 0xffu; }
// Exact float of an integer 0 <= q < 2^23 without the (quarter-rate) conversion unit: q as the
// mantissa of 2^23, minus 2^23. Same value as static_cast<float>(q), so results stay bit-exact.
__device__ __forceinline__ float u2f(uint32_t q) { return __int_as_float(0x4B000000u | q) - 8388608.f; }
// Byte i (0..11) of three words, selected without indexing a register array (that would
// spill it to local memory when i is not a compile-time constant).
__device__ __forceinline__ uint32_t byte12(uint32_t a, uint32_t b, uint32_t c, int i) {
  const uint32_t w = i < 4 ? a : (i < 8 ? b : c);
  return (w >> (8 * (i & 3))) & 0xffu;
}

// N bytes (a multiple of 4) from any address as little-endian words: aligned 4-byte loads
// (one word more than needed), realigned by funnel shifts. For block formats whose fields
// are only 2-byte aligned (18, 22, 34, 110, 210-byte blocks). The pool pads every allocation,
// so the extra word never leaves it.
template <int N>
__device__ __forceinline__ void load_words_any(const uint8_t* p, uint32_t* w) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uint32_t* base = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
  const uint32_t sh = static_cast<uint32_t>(a & 3) * 8;
  uint32_t v[N / 4 + 1];
#pragma unroll
  for (int i = 0; i <= N / 4; ++i) v[i] = base[i];
#pragma unroll
  for (int i = 0; i < N / 4; ++i) w[i] = __funnelshift_r(v[i], v[i + 1], sh);
}

template <int N>
__device__ __forceinline__ void load_words_a4(const uint8_t* p, uint32_t* w) {
#pragma unroll
  for (int i = 0; i < N / 4; ++i) w[i] = u32_at(p + 4 * i);
}
template <int N>
__device__ __forceinline__ void load_words_a16(const uint8_t* p, uint32_t* w) {
#pragma unroll
  for (int i = 0; i < N / 16; ++i) {
    const uint4 v = *reinterpret_cast<const uint4*>(p + 16 * i);
    w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
  }
}

template <DType T> struct Quant;

// Plain types: a "block" is one 16-byte load (rows must be a multiple of it: K % 4 or K % 8).
template <> struct Quant<DType::F32> {
  static constexpr int kBlockElems = 4, kBlockBytes = 16, kPiece = 4;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float4 v = *reinterpret_cast<const float4*>(b);
    y[0] = v.x, y[1] = v.y, y[2] = v.z, y[3] = v.w;
  }
};
template <> struct Quant<DType::F16> {
  static constexpr int kBlockElems = 8, kBlockBytes = 16, kPiece = 8;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    uint32_t w[4];
    load_words_a16<16>(b, w);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      y[2 * i] = __half2float(__ushort_as_half(static_cast<uint16_t>(w[i] & 0xffffu)));
      y[2 * i + 1] = __half2float(__ushort_as_half(static_cast<uint16_t>(w[i] >> 16)));
    }
  }
};
template <> struct Quant<DType::BF16> {
  static constexpr int kBlockElems = 8, kBlockBytes = 16, kPiece = 8;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    uint32_t w[4];
    load_words_a16<16>(b, w);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      y[2 * i] = bf16_bits(w[i] & 0xffffu);
      y[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

template <> struct Quant<DType::Q4_0> {  // d, qs[16]
  static constexpr int kBlockElems = 32, kBlockBytes = 18, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float d = f16_at(b);
    uint32_t w[4];
    load_words_any<16>(b + 2, w);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint32_t q = byte_of(w[j / 4], j % 4);
      y[j] = __fmul_rn(u2f(q & 0xF) - 8.f, d);
      y[j + 16] = __fmul_rn(u2f(q >> 4) - 8.f, d);
    }
  }
};
template <> struct Quant<DType::Q4_1> {  // d, m, qs[16]
  static constexpr int kBlockElems = 32, kBlockBytes = 20, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float d = f16_at(b), m = f16_at(b + 2);
    uint32_t w[4];
    load_words_a4<16>(b + 4, w);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint32_t q = byte_of(w[j / 4], j % 4);
      y[j] = __fadd_rn(__fmul_rn(u2f(q & 0xF), d), m);
      y[j + 16] = __fadd_rn(__fmul_rn(u2f(q >> 4), d), m);
    }
  }
};
template <> struct Quant<DType::Q5_0> {  // d, qh[4], qs[16]
  static constexpr int kBlockElems = 32, kBlockBytes = 22, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float d = f16_at(b);
    uint32_t w[5];  // qh, then qs
    load_words_any<20>(b + 2, w);
    const uint32_t qh = w[0];
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint32_t q = byte_of(w[1 + j / 4], j % 4);
      const uint32_t h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = __fmul_rn(u2f((q & 0xF) | h0) - 16.f, d);
      y[j + 16] = __fmul_rn(u2f((q >> 4) | h1) - 16.f, d);
    }
  }
};
template <> struct Quant<DType::Q5_1> {  // d, m, qh[4], qs[16]
  static constexpr int kBlockElems = 32, kBlockBytes = 24, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float d = f16_at(b), m = f16_at(b + 2);
    const uint32_t qh = u32_at(b + 4);
    uint32_t w[4];
    load_words_a4<16>(b + 8, w);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint32_t q = byte_of(w[j / 4], j % 4);
      const uint32_t h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = __fadd_rn(__fmul_rn(u2f((q & 0xF) | h0), d), m);
      y[j + 16] = __fadd_rn(__fmul_rn(u2f((q >> 4) | h1), d), m);
    }
  }
};
template <> struct Quant<DType::Q8_0> {  // d, qs[32]
  static constexpr int kBlockElems = 32, kBlockBytes = 34, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int, float* y) {
    const float d = f16_at(b);
    uint32_t w[8];
    load_words_any<32>(b + 2, w);
#pragma unroll
    for (int j = 0; j < 32; ++j) y[j] = __fmul_rn(u2f(byte_of(w[j / 4] ^ 0x80808080u, j % 4)) - 128.f, d);  // int8 = (b ^ 0x80) - 128
  }
};

// K-quants: pieces of 32 elements. Piece c of a block covers elements 32c .. 32c + 31.
template <> struct Quant<DType::Q2_K> {  // scales[16], qs[64], d, dmin
  static constexpr int kBlockElems = 256, kBlockBytes = 84, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int c, float* y) {
    const int h = c / 4, shift = 2 * (c % 4);
    const float d = f16_at(b + 80), dmin = f16_at(b + 82);
    uint32_t w[8];
    load_words_a4<32>(b + 16 + 32 * h, w);
#pragma unroll
    for (int part = 0; part < 2; ++part) {
      const uint32_t sc = b[8 * h + 2 * (c % 4) + part];
      const float dl = __fmul_rn(d, static_cast<float>(sc & 0xF)), ml = __fmul_rn(dmin, static_cast<float>(sc >> 4));
#pragma unroll
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * part + l;
        y[i] = __fsub_rn(__fmul_rn(dl, u2f((byte_of(w[i / 4], i % 4) >> shift) & 3)), ml);
      }
    }
  }
};
template <> struct Quant<DType::Q3_K> {  // hmask[32], qs[64], scales[12], d
  static constexpr int kBlockElems = 256, kBlockBytes = 110, kPiece = 32;
  __device__ static int scale(int j, const uint8_t* s) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
  }
  __device__ static void piece(const uint8_t* b, int c, float* y) {
    const int h = c / 4, s = c % 4, shift = 2 * s;
    const uint32_t m = 1u << (4 * h + s);
    const float d_all = f16_at(b + 108);
    uint32_t qs[8], hm[8];
    load_words_any<32>(b + 32 + 32 * h, qs);
    load_words_any<32>(b, hm);
#pragma unroll
    for (int part = 0; part < 2; ++part) {
      const float dl = __fmul_rn(d_all, static_cast<float>(scale(8 * h + 2 * s + part, b + 96)));
#pragma unroll
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * part + l;
        const float v = u2f((byte_of(qs[i / 4], i % 4) >> shift) & 3) - ((byte_of(hm[i / 4], i % 4) & m) ? 0.f : 4.f);
        y[i] = __fmul_rn(dl, v);
      }
    }
  }
};

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, from the three words
// of its 12 scale bytes.
__device__ __forceinline__ void scale_min_k4(int j, uint32_t s0, uint32_t s1, uint32_t s2, float* d, float* m) {
  uint32_t sc, mn;
  if (j < 4) {
    sc = byte12(s0, s1, s2, j) & 63;
    mn = byte12(s0, s1, s2, j + 4) & 63;
  } else {
    sc = (byte12(s0, s1, s2, j + 4) & 0xF) | ((byte12(s0, s1, s2, j - 4) >> 6) << 4);
    mn = (byte12(s0, s1, s2, j + 4) >> 4) | ((byte12(s0, s1, s2, j) >> 6) << 4);
  }
  *d = u2f(sc);
  *m = u2f(mn);
}

template <> struct Quant<DType::Q4_K> {  // d, dmin, scales[12], qs[128]; 16-byte aligned
  static constexpr int kBlockElems = 256, kBlockBytes = 144, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int c, float* y) {
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    uint32_t w[8];
    load_words_a16<32>(b + 16 + 32 * (c / 2), w);
    const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x & 0xffffu)));
    const float dmin = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x >> 16)));
    float sc, mn;
    scale_min_k4(c, hd.y, hd.z, hd.w, &sc, &mn);
    const float d1 = __fmul_rn(d, sc), m1 = __fmul_rn(dmin, mn);
    const int shift = 4 * (c % 2);
#pragma unroll
    for (int l = 0; l < 32; ++l) y[l] = __fsub_rn(__fmul_rn(d1, u2f((byte_of(w[l / 4], l % 4) >> shift) & 0xF)), m1);
  }
};
template <> struct Quant<DType::Q5_K> {  // d, dmin, scales[12], qh[32], qs[128]; 16-byte aligned
  static constexpr int kBlockElems = 256, kBlockBytes = 176, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int c, float* y) {
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    uint32_t w[8], qh[8];
    load_words_a16<32>(b + 48 + 32 * (c / 2), w);
    load_words_a16<32>(b + 16, qh);
    const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x & 0xffffu)));
    const float dmin = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x >> 16)));
    float sc, mn;
    scale_min_k4(c, hd.y, hd.z, hd.w, &sc, &mn);
    const float d1 = __fmul_rn(d, sc), m1 = __fmul_rn(dmin, mn);
    const int shift = 4 * (c % 2);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(w[l / 4], l % 4) >> shift) & 0xF) | (((byte_of(qh[l / 4], l % 4) >> c) & 1) << 4);
      y[l] = __fsub_rn(__fmul_rn(d1, u2f(q)), m1);
    }
  }
};
template <> struct Quant<DType::Q6_K> {  // ql[128], qh[64], scales[16] (int8), d; 2-byte aligned
  static constexpr int kBlockElems = 256, kBlockBytes = 210, kPiece = 32;
  __device__ static void piece(const uint8_t* b, int c, float* y) {
    const int n = c / 4, cc = c % 4;
    uint32_t ql[8], qh[8];
    load_words_any<32>(b + 64 * n + 32 * (cc & 1), ql);
    load_words_any<32>(b + 128 + 32 * n, qh);
    const float d = f16_at(b + 208);
    const uint32_t sc2 = u16_at(b + 192 + 8 * n + 2 * cc);  // the piece's two int8 scales
    const float ds0 = __fmul_rn(d, static_cast<float>(static_cast<int8_t>(sc2 & 0xff)));
    const float ds1 = __fmul_rn(d, static_cast<float>(static_cast<int8_t>(sc2 >> 8)));
    const int lshift = 4 * (cc >> 1), hshift = 2 * cc;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(ql[l / 4], l % 4) >> lshift) & 0xF) | (((byte_of(qh[l / 4], l % 4) >> hshift) & 3) << 4);
      y[l] = __fmul_rn(l < 16 ? ds0 : ds1, u2f(q) - 32.f);
    }
  }
};

// ---- int8 dot products against q8 activations (the int8 GEMV, matmul_gemv.cu) ----
//
// Dot<T>::unit() takes one "unit" of a weight block (kUnits per block, each weight byte in
// exactly one unit) against MT activation rows of codes xq[m] (the block's codes, 16-byte
// aligned), block scales xd[m] (and q8_1's xs[m]), and adds the float result to acc[m]. The
// integer parts are exact; the float steps are the CPU's per block (cpu/matmul.h), except that
// a block's units are summed in float separately (float reordering only).

__device__ __forceinline__ int dp4a(int a, int b, int c) { return __dp4a(a, b, c); }
// Bits 0-3 of b moved to bit 4 of bytes 0-3 (the 5th bit of four codes).
__device__ __forceinline__ int spread4(uint32_t b) { return static_cast<int>((((b & 0xFu) * 0x00204081u) & 0x01010101u) << 4); }
__device__ __forceinline__ void load_x32(const int8_t* xq, int* x) {  // 32 codes as 8 words
  const int4 a = *reinterpret_cast<const int4*>(xq), b = *reinterpret_cast<const int4*>(xq + 16);
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}

template <DType T> struct Dot { static constexpr bool kHas = false; };

// Legacy 32-blocks: one unit per block. Codes are unsigned nibbles (5 bits with qh) with an
// offset (8, 16) or a min m (q8_1 activations: m * xs).
template <int Bytes, int Off, bool HasM, bool Five>
struct DotLegacy {
  static constexpr bool kHas = true;
  static constexpr int kBlockElems = 32, kBlockBytes = Bytes, kUnits = 1;
  template <int MT>
  __device__ static void unit(const uint8_t* b, int, const int8_t* const* xq, const float* xd, const float* xs, float* acc) {
    const float d = f16_at(b), m = HasM ? f16_at(b + 2) : 0.f;
    constexpr int kQ = (HasM ? 4 : 2) + (Five ? 4 : 0);
    uint32_t w[5];
    if (Five) load_words_any<20>(b + kQ - 4, w);  // qh, then qs
    else if (HasM) load_words_a4<16>(b + kQ, w + 1);
    else load_words_any<16>(b + kQ, w + 1);
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      lo[i] = static_cast<int>(w[1 + i] & 0x0F0F0F0Fu);
      hi[i] = static_cast<int>((w[1 + i] >> 4) & 0x0F0F0F0Fu);
      if (Five) lo[i] |= spread4(w[0] >> (4 * i)), hi[i] |= spread4(w[0] >> (16 + 4 * i));
    }
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      int x[8];
      load_x32(xq[r], x);
      int dot = 0, sum = 0;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        dot = dp4a(lo[i], x[i], dot);
        dot = dp4a(hi[i], x[4 + i], dot);
        if (Off) sum = dp4a(0x01010101, x[i], dp4a(0x01010101, x[4 + i], sum));
      }
      const float v = static_cast<float>(dot - Off * sum) * (d * xd[r]);
      acc[r] = HasM ? fmaf(m, xs[r], acc[r] + v) : acc[r] + v;
    }
  }
};
template <> struct Dot<DType::Q4_0> : DotLegacy<18, 8, false, false> {};
template <> struct Dot<DType::Q4_1> : DotLegacy<20, 0, true, false> {};
template <> struct Dot<DType::Q5_0> : DotLegacy<22, 16, false, true> {};
template <> struct Dot<DType::Q5_1> : DotLegacy<24, 0, true, true> {};

template <> struct Dot<DType::Q8_0> {
  static constexpr bool kHas = true;
  static constexpr int kBlockElems = 32, kBlockBytes = 34, kUnits = 1;
  template <int MT>
  __device__ static void unit(const uint8_t* b, int, const int8_t* const* xq, const float* xd, const float*, float* acc) {
    const float d = f16_at(b);
    uint32_t w[8];
    load_words_any<32>(b + 2, w);
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      int x[8];
      load_x32(xq[r], x);
      int dot = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) dot = dp4a(static_cast<int>(w[i]), x[i], dot);
      acc[r] += static_cast<float>(dot) * (d * xd[r]);
    }
  }
};

// Q4_K: unit u covers sub-blocks 2u (low nibbles of qs[32u..]) and 2u + 1 (high nibbles).
template <> struct Dot<DType::Q4_K> {
  static constexpr bool kHas = true;
  static constexpr int kBlockElems = 256, kBlockBytes = 144, kUnits = 4;
  __device__ static void scale_min(int j, uint32_t s0, uint32_t s1, uint32_t s2, int* sc, int* mn) {
    if (j < 4) {
      *sc = byte12(s0, s1, s2, j) & 63;
      *mn = byte12(s0, s1, s2, j + 4) & 63;
    } else {
      *sc = (byte12(s0, s1, s2, j + 4) & 0xF) | ((byte12(s0, s1, s2, j - 4) >> 6) << 4);
      *mn = (byte12(s0, s1, s2, j + 4) >> 4) | ((byte12(s0, s1, s2, j) >> 6) << 4);
    }
  }
  template <int MT>
  __device__ static void unit(const uint8_t* b, int u, const int8_t* const* xq, const float* xd, const float*, float* acc) {
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    uint32_t w[8];
    load_words_a16<32>(b + 16 + 32 * u, w);
    const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x & 0xffffu)));
    const float dmin = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x >> 16)));
    int sc0, mn0, sc1, mn1;
    scale_min(2 * u, hd.y, hd.z, hd.w, &sc0, &mn0);
    scale_min(2 * u + 1, hd.y, hd.z, hd.w, &sc1, &mn1);
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      int xl[8], xh[8];
      load_x32(xq[r] + 64 * u, xl);
      load_x32(xq[r] + 64 * u + 32, xh);
      int dl = 0, dh = 0, sl = 0, sh = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        dl = dp4a(static_cast<int>(w[i] & 0x0F0F0F0Fu), xl[i], dl);
        dh = dp4a(static_cast<int>((w[i] >> 4) & 0x0F0F0F0Fu), xh[i], dh);
        sl = dp4a(0x01010101, xl[i], sl);
        sh = dp4a(0x01010101, xh[i], sh);
      }
      const int isum = sc0 * dl + sc1 * dh, msum = mn0 * sl + mn1 * sh;
      acc[r] += fmaf(static_cast<float>(msum), -(dmin * xd[r]), static_cast<float>(isum) * (d * xd[r]));
    }
  }
};

// Q6_K: unit u covers bytes l0 .. l0 + 7 (l0 = 8 (u % 4)) of half n = u / 4: elements
// 128n + 32j + l0 .. + 7 for j = 0..3, codes - 32, int8 scale 8n + 2j + l0 / 16.
template <> struct Dot<DType::Q6_K> {
  static constexpr bool kHas = true;
  static constexpr int kBlockElems = 256, kBlockBytes = 210, kUnits = 8;
  template <int MT>
  __device__ static void unit(const uint8_t* b, int u, const int8_t* const* xq, const float* xd, const float*, float* acc) {
    const int n = u / 4, l0 = 8 * (u % 4);
    uint32_t qa[2], qb[2], qh[2];
    load_words_any<8>(b + 64 * n + l0, qa);
    load_words_any<8>(b + 64 * n + 32 + l0, qb);
    load_words_any<8>(b + 128 + 32 * n + l0, qh);
    const float d = f16_at(b + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * n + l0 / 16);
    int v[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      v[0][i] = __vsubss4(static_cast<int>((qa[i] & 0x0F0F0F0Fu) | ((qh[i] & 0x03030303u) << 4)), 0x20202020);
      v[1][i] = __vsubss4(static_cast<int>((qb[i] & 0x0F0F0F0Fu) | (((qh[i] >> 2) & 0x03030303u) << 4)), 0x20202020);
      v[2][i] = __vsubss4(static_cast<int>(((qa[i] >> 4) & 0x0F0F0F0Fu) | (((qh[i] >> 4) & 0x03030303u) << 4)), 0x20202020);
      v[3][i] = __vsubss4(static_cast<int>(((qb[i] >> 4) & 0x0F0F0F0Fu) | (((qh[i] >> 6) & 0x03030303u) << 4)), 0x20202020);
    }
    int s[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) s[j] = sc[2 * j];
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      int isum = 0;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int2 x = *reinterpret_cast<const int2*>(xq[r] + 128 * n + 32 * j + l0);
        isum += s[j] * dp4a(v[j][1], x.y, dp4a(v[j][0], x.x, 0));
      }
      acc[r] += static_cast<float>(isum) * (d * xd[r]);
    }
  }
};

// Calls fn.template run<T>() with the Quant type for a runtime dtype (fn is a functor: C++17
// lambdas take no template parameters); returns false for a type without device kernels.
template <typename Fn>
bool dispatch_quant(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32: fn.template run<DType::F32>(); return true;
    case DType::F16: fn.template run<DType::F16>(); return true;
    case DType::BF16: fn.template run<DType::BF16>(); return true;
    case DType::Q4_0: fn.template run<DType::Q4_0>(); return true;
    case DType::Q4_1: fn.template run<DType::Q4_1>(); return true;
    case DType::Q5_0: fn.template run<DType::Q5_0>(); return true;
    case DType::Q5_1: fn.template run<DType::Q5_1>(); return true;
    case DType::Q8_0: fn.template run<DType::Q8_0>(); return true;
    case DType::Q2_K: fn.template run<DType::Q2_K>(); return true;
    case DType::Q3_K: fn.template run<DType::Q3_K>(); return true;
    case DType::Q4_K: fn.template run<DType::Q4_K>(); return true;
    case DType::Q5_K: fn.template run<DType::Q5_K>(); return true;
    case DType::Q6_K: fn.template run<DType::Q6_K>(); return true;
    default: return false;
  }
}

// Rows of K elements of type t can be cut into Quant pieces (plain types need K % 4 or 8).
inline bool rows_fit_pieces(DType t, int64_t K) {
  switch (t) {
    case DType::F32: return K % 4 == 0;
    case DType::F16: case DType::BF16: return K % 8 == 0;
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: return K % 32 == 0;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return K % 256 == 0;
    default: return false;
  }
}

}  // namespace kt::cuda

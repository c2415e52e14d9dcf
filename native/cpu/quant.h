// GGML weight formats: block layouts, float16/bfloat16 conversions, and row-wise
// dequantization and reference quantization (byte-identical to ggml's, no imatrix).
#pragma once
#include <cstdint>
#include <cstring>

#include "cpu/dtype.h"

namespace kt {

// GGML type ids the DType enum does not name yet (dequantize and matmul accept them).
constexpr DType kIQ4_NL = static_cast<DType>(20);
constexpr DType kIQ4_XS = static_cast<DType>(23);

// type_traits() plus the IQ4 types above; nullptr for an unknown id.
const TypeTraits* quant_traits(DType t);

// Dequantizes n elements (multiple of the block size) of type t. Throws
// std::invalid_argument naming the type when it is not supported.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Quantizes n floats (multiple of the block size) into type t exactly as
// ggml_quantize_chunk without an importance matrix does.
void quantize_row(DType t, const float* src, void* dst, int64_t n);
bool dequantize_supported(DType t);
bool quantize_supported(DType t);

// One weight block in the integer form the int8 matmul (cpu/matmul.h) works on: unsigned codes
// u (the stored code plus a per-type offset, so that signed codes fit a u8) and, per group g of
// 16 elements, an int scale s, an offset coefficient c and a min coefficient n. Against int8
// activations x with per-group sums X, the block's exact integer parts are
//   isum = sum_g (s_g * sum_{i in g} u_i x_i + c_g * X_g),   msum = sum_g n_g * X_g,
// and its value is d * dx * isum - m * dx * msum (K-quants with a min) or d * dx * isum (+ m * sx, Q4_1/Q5_1).
struct IntBlock {
  alignas(64) uint8_t u[256];  // block_elems codes (32 or 256)
  int16_t s[16], c[16], n[16];  // block_elems / 16 groups
  float d, m;                   // block scale; dmin (K-quants) or m (Q4_1/Q5_1), else 0
};
using UnpackFn = void (*)(const void* block, IntBlock* out);
// nullptr for a type without an integer form (the plain F32/F16/BF16).
UnpackFn int_unpacker(DType t);

// ---- scalar conversions (inline: the kernels' scalar paths call them per element) ----

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return f32_from_bits(sign | 0x7f800000u | ((em & 0x3ffu) << 13));  // inf, nan
  if (em >= 0x0400u) return f32_from_bits(sign | ((em << 13) + 0x38000000u));          // normal: rebias 15 -> 127
  // zero or subnormal: em units of 2^-24, exact in float
  return f32_from_bits(sign | f32_bits(static_cast<float>(em) * 5.9604644775390625e-08f));
}

// Round to nearest, ties to even; overflow goes to infinity, NaN stays a (quiet) NaN.
inline uint16_t fp32_to_fp16(float f) {
  uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u;
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds past 65504
  if (x >= 0x38800000u) {                       // normal half
    const uint32_t r = x - 0x38000000u;
    return sign | static_cast<uint16_t>((r + 0x0fffu + ((r >> 13) & 1u)) >> 13);
  }
  if (x <= 0x33000000u) return sign;  // <= 2^-25 rounds (ties to even) to zero
  const uint32_t mant = (x & 0x7fffffu) | 0x800000u;
  const int shift = 126 - static_cast<int>(x >> 23);  // 14..24: value in units of 2^-24
  const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  return sign | static_cast<uint16_t>(q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u));
}

inline float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // keep NaN quiet
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// ---- block layouts (packed: rows from JS buffers need not be 2-byte aligned) ----
namespace blocks {
#pragma pack(push, 1)
struct Q4_0 { uint16_t d; uint8_t qs[16]; };
struct Q4_1 { uint16_t d, m; uint8_t qs[16]; };
struct Q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct Q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct Q8_0 { uint16_t d; int8_t qs[32]; };
struct Q2_K { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; };
struct Q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; };
struct Q4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct Q5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct Q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
struct IQ4_NL { uint16_t d; uint8_t qs[16]; };
struct IQ4_XS { uint16_t d, scales_h; uint8_t scales_l[4]; uint8_t qs[128]; };
#pragma pack(pop)
static_assert(sizeof(Q4_0) == 18 && sizeof(Q4_1) == 20 && sizeof(Q5_0) == 22 && sizeof(Q5_1) == 24, "block size");
static_assert(sizeof(Q8_0) == 34 && sizeof(Q2_K) == 84 && sizeof(Q3_K) == 110 && sizeof(Q4_K) == 144, "block size");
static_assert(sizeof(Q5_K) == 176 && sizeof(Q6_K) == 210 && sizeof(IQ4_NL) == 18 && sizeof(IQ4_XS) == 136, "block size");

// The 6-bit scale and min of sub-block j (0..7) packed in a Q4_K/Q5_K block's 12 scale bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The 6-bit scale of sub-block j (0..15) of a Q3_K block, minus 32: low nibble from byte j
// (j < 8) or the high nibble of byte j - 8, two high bits from byte 8 + j % 4.
inline int q3_k_scale(int j, const uint8_t* s) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// The non-linear 4-bit codebook of IQ4_NL / IQ4_XS.
extern const int8_t kIQ4NLValues[16];
}  // namespace blocks

}  // namespace kt

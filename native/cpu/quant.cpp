// Reference (scalar) dequantization of every GGML weight format ktserve reads, their integer
// forms for the int8 matmul (IntBlock), and the type dispatch of dequantize_row / quantize_row.
// Results equal ggml's and gguf-py's bit for bit, which needs every product rounded on its
// own, so a*b+c is never fused here:
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu/quant.h"

#include <stdexcept>
#include <string>

namespace kt {

namespace blocks {
const int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
}

// Quantizers live in quant_encode.cpp.
void quantize_q4_0(const float* x, void* y, int64_t n);
void quantize_q4_1(const float* x, void* y, int64_t n);
void quantize_q5_0(const float* x, void* y, int64_t n);
void quantize_q5_1(const float* x, void* y, int64_t n);
void quantize_q8_0(const float* x, void* y, int64_t n);
void quantize_q2_K(const float* x, void* y, int64_t n);
void quantize_q3_K(const float* x, void* y, int64_t n);
void quantize_q4_K(const float* x, void* y, int64_t n);
void quantize_q5_K(const float* x, void* y, int64_t n);
void quantize_q6_K(const float* x, void* y, int64_t n);

const TypeTraits* quant_traits(DType t) {
  static const TypeTraits iq4_nl{"IQ4_NL", 32, 18}, iq4_xs{"IQ4_XS", 256, 136};
  if (t == kIQ4_NL) return &iq4_nl;
  if (t == kIQ4_XS) return &iq4_xs;
  return type_traits(t);
}

namespace {

using namespace blocks;

std::string type_name(DType t) {
  const TypeTraits* tr = quant_traits(t);
  return tr ? std::string(tr->name) : "type#" + std::to_string(static_cast<int>(t));
}

void dq_q4_0(const Q4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dq_q4_1(const Q4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

inline uint32_t load_qh(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

void dq_q5_0(const Q5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = static_cast<float>(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
      y[j + 16] = static_cast<float>(((x[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dq_q5_1(const Q5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = static_cast<float>((x[i].qs[j] & 0x0F) | h0) * d + m;
      y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

void dq_q8_0(const Q8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dq_q2_K(const Q2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {  // two 16-element groups with their own scale
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dq_q3_K(const Q3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    const uint8_t* q = x[i].qs;
    uint8_t m = 1;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(q3_k_scale(is++, x[i].scales));
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dq_q4_K(const Q4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dq_q5_K(const Q5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((x[i].qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((x[i].qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dq_q6_K(const Q6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < 2; ++n, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        // (d * scale) first, then * q: the order ggml and gguf-py use
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dq_iq4_nl(const IQ4_NL* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIQ4NLValues[x[i].qs[j] & 0xF]);
      y[j + 16] = d * static_cast<float>(kIQ4NLValues[x[i].qs[j] >> 4]);
    }
  }
}

void dq_iq4_xs(const IQ4_XS* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < 8; ++ib, y += 32, qs += 16) {
      const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIQ4NLValues[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kIQ4NLValues[qs[j] >> 4]);
      }
    }
  }
}

template <typename Block>
const Block* as(const void* p) { return static_cast<const Block*>(p); }

// ---- integer forms (IntBlock) for the int8 matmul; element order as the dequantizers above ----

// Groups of 16 with scale 1 and the offset `off` subtracted from every code (legacy 32-blocks).
void plain_groups(IntBlock* o, int groups, int off, float d, float m) {
  for (int g = 0; g < groups; ++g) { o->s[g] = 1; o->c[g] = static_cast<int16_t>(-off); o->n[g] = 0; }
  o->d = d;
  o->m = m;
}

void int_q4_0(const void* p, IntBlock* o) {
  const Q4_0& b = *as<Q4_0>(p);
  for (int j = 0; j < 16; ++j) { o->u[j] = b.qs[j] & 0xF; o->u[j + 16] = b.qs[j] >> 4; }
  plain_groups(o, 2, 8, fp16_to_fp32(b.d), 0);
}

void int_q4_1(const void* p, IntBlock* o) {
  const Q4_1& b = *as<Q4_1>(p);
  for (int j = 0; j < 16; ++j) { o->u[j] = b.qs[j] & 0xF; o->u[j + 16] = b.qs[j] >> 4; }
  plain_groups(o, 2, 0, fp16_to_fp32(b.d), fp16_to_fp32(b.m));
}

void five_bit_codes(const uint8_t* qs, const uint8_t* qhp, uint8_t* u) {
  const uint32_t qh = load_qh(qhp);
  for (int j = 0; j < 16; ++j) {
    u[j] = static_cast<uint8_t>((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
    u[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
}

void int_q5_0(const void* p, IntBlock* o) {
  const Q5_0& b = *as<Q5_0>(p);
  five_bit_codes(b.qs, b.qh, o->u);
  plain_groups(o, 2, 16, fp16_to_fp32(b.d), 0);
}

void int_q5_1(const void* p, IntBlock* o) {
  const Q5_1& b = *as<Q5_1>(p);
  five_bit_codes(b.qs, b.qh, o->u);
  plain_groups(o, 2, 0, fp16_to_fp32(b.d), fp16_to_fp32(b.m));
}

// Signed codes ride as u = v + 128.
void int_q8_0(const void* p, IntBlock* o) {
  const Q8_0& b = *as<Q8_0>(p);
  for (int j = 0; j < 32; ++j) o->u[j] = static_cast<uint8_t>(b.qs[j] ^ 0x80);
  plain_groups(o, 2, 128, fp16_to_fp32(b.d), 0);
}

void int_iq4_nl(const void* p, IntBlock* o) {
  const IQ4_NL& b = *as<IQ4_NL>(p);
  for (int j = 0; j < 16; ++j) {
    o->u[j] = static_cast<uint8_t>(kIQ4NLValues[b.qs[j] & 0xF] + 128);
    o->u[j + 16] = static_cast<uint8_t>(kIQ4NLValues[b.qs[j] >> 4] + 128);
  }
  plain_groups(o, 2, 128, fp16_to_fp32(b.d), 0);
}

void int_q2_K(const void* p, IntBlock* o) {
  const Q2_K& b = *as<Q2_K>(p);
  for (int g = 0; g < 16; ++g) {  // group g = 8 half + 2 plane + part, as in dq_q2_K
    const uint8_t* q = b.qs + 32 * (g / 8) + 16 * (g % 2);
    const int shift = 2 * ((g % 8) / 2);
    for (int l = 0; l < 16; ++l) o->u[16 * g + l] = (q[l] >> shift) & 3;
    o->s[g] = b.scales[g] & 0xF;
    o->c[g] = 0;
    o->n[g] = b.scales[g] >> 4;
  }
  o->d = fp16_to_fp32(b.d);
  o->m = fp16_to_fp32(b.dmin);
}

void int_q3_K(const void* p, IntBlock* o) {
  const Q3_K& b = *as<Q3_K>(p);
  for (int g = 0; g < 16; ++g) {  // codes v + 4 in 0..7: the high bit set means v >= 0
    const uint8_t* q = b.qs + 32 * (g / 8);
    const int plane = (g % 8) / 2, l0 = 16 * (g % 2);
    const uint8_t hbit = static_cast<uint8_t>(1u << (4 * (g / 8) + plane));
    for (int l = 0; l < 16; ++l)
      o->u[16 * g + l] = static_cast<uint8_t>(((q[l0 + l] >> (2 * plane)) & 3) | ((b.hmask[l0 + l] & hbit) ? 4 : 0));
    o->s[g] = static_cast<int16_t>(q3_k_scale(g, b.scales));
    o->c[g] = static_cast<int16_t>(-4 * o->s[g]);
    o->n[g] = 0;
  }
  o->d = fp16_to_fp32(b.d);
  o->m = 0;
}

// Q4_K / Q5_K: sub-block j (32 elements, groups 2j and 2j+1) has a 6-bit scale and min.
void k4_groups(const uint8_t* packed, uint16_t d, uint16_t dmin, IntBlock* o) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, mn;
    scale_min_k4(j, packed, &sc, &mn);
    o->s[2 * j] = o->s[2 * j + 1] = sc;
    o->n[2 * j] = o->n[2 * j + 1] = mn;
    o->c[2 * j] = o->c[2 * j + 1] = 0;
  }
  o->d = fp16_to_fp32(d);
  o->m = fp16_to_fp32(dmin);
}

void int_q4_K(const void* p, IntBlock* o) {
  const Q4_K& b = *as<Q4_K>(p);
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) {
      o->u[64 * j + l] = b.qs[32 * j + l] & 0xF;
      o->u[64 * j + 32 + l] = b.qs[32 * j + l] >> 4;
    }
  k4_groups(b.scales, b.d, b.dmin, o);
}

void int_q5_K(const void* p, IntBlock* o) {
  const Q5_K& b = *as<Q5_K>(p);
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) {
      o->u[64 * j + l] = static_cast<uint8_t>((b.qs[32 * j + l] & 0xF) | (((b.qh[l] >> (2 * j)) & 1) << 4));
      o->u[64 * j + 32 + l] = static_cast<uint8_t>((b.qs[32 * j + l] >> 4) | (((b.qh[l] >> (2 * j + 1)) & 1) << 4));
    }
  k4_groups(b.scales, b.d, b.dmin, o);
}

void int_q6_K(const void* p, IntBlock* o) {
  const Q6_K& b = *as<Q6_K>(p);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + 64 * n;
    const uint8_t* qh = b.qh + 32 * n;
    uint8_t* u = o->u + 128 * n;
    for (int l = 0; l < 32; ++l) {
      u[l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
      u[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      u[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      u[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
  for (int g = 0; g < 16; ++g) {
    o->s[g] = b.scales[g];
    o->c[g] = static_cast<int16_t>(-32 * b.scales[g]);
    o->n[g] = 0;
  }
  o->d = fp16_to_fp32(b.d);
  o->m = 0;
}

void int_iq4_xs(const void* p, IntBlock* o) {
  const IQ4_XS& b = *as<IQ4_XS>(p);
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      o->u[32 * ib + j] = static_cast<uint8_t>(kIQ4NLValues[qs[j] & 0xF] + 128);
      o->u[32 * ib + 16 + j] = static_cast<uint8_t>(kIQ4NLValues[qs[j] >> 4] + 128);
    }
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    o->s[2 * ib] = o->s[2 * ib + 1] = static_cast<int16_t>(ls - 32);
    o->c[2 * ib] = o->c[2 * ib + 1] = static_cast<int16_t>(-128 * (ls - 32));
    o->n[2 * ib] = o->n[2 * ib + 1] = 0;
  }
  o->d = fp16_to_fp32(b.d);
  o->m = 0;
}

void check_count(const char* op, DType t, const TypeTraits& tr, int64_t n) {
  if (n < 0 || n % tr.block_elems != 0)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(n) + " elements is not a multiple of the " +
                                tr.name + " block size " + std::to_string(tr.block_elems));
}

}  // namespace

bool dequantize_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q8_0: case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return t == kIQ4_NL || t == kIQ4_XS;
  }
}

bool quantize_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q8_0: case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

UnpackFn int_unpacker(DType t) {
  switch (t) {
    case DType::Q4_0: return &int_q4_0;
    case DType::Q4_1: return &int_q4_1;
    case DType::Q5_0: return &int_q5_0;
    case DType::Q5_1: return &int_q5_1;
    case DType::Q8_0: return &int_q8_0;
    case DType::Q2_K: return &int_q2_K;
    case DType::Q3_K: return &int_q3_K;
    case DType::Q4_K: return &int_q4_K;
    case DType::Q5_K: return &int_q5_K;
    case DType::Q6_K: return &int_q6_K;
    default: break;
  }
  if (t == kIQ4_NL) return &int_iq4_nl;
  if (t == kIQ4_XS) return &int_iq4_xs;
  return nullptr;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  if (!dequantize_supported(t)) throw std::invalid_argument("dequantize: unsupported type " + type_name(t));
  const TypeTraits& tr = *quant_traits(t);
  check_count("dequantize", t, tr, n);
  const int64_t nb = n / tr.block_elems;
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, s + 2 * i, 2); dst[i] = fp16_to_fp32(h); }
      return;
    }
    case DType::BF16: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, s + 2 * i, 2); dst[i] = bf16_to_fp32(h); }
      return;
    }
    case DType::Q4_0: dq_q4_0(as<Q4_0>(src), dst, nb); return;
    case DType::Q4_1: dq_q4_1(as<Q4_1>(src), dst, nb); return;
    case DType::Q5_0: dq_q5_0(as<Q5_0>(src), dst, nb); return;
    case DType::Q5_1: dq_q5_1(as<Q5_1>(src), dst, nb); return;
    case DType::Q8_0: dq_q8_0(as<Q8_0>(src), dst, nb); return;
    case DType::Q2_K: dq_q2_K(as<Q2_K>(src), dst, nb); return;
    case DType::Q3_K: dq_q3_K(as<Q3_K>(src), dst, nb); return;
    case DType::Q4_K: dq_q4_K(as<Q4_K>(src), dst, nb); return;
    case DType::Q5_K: dq_q5_K(as<Q5_K>(src), dst, nb); return;
    case DType::Q6_K: dq_q6_K(as<Q6_K>(src), dst, nb); return;
    default: break;
  }
  if (t == kIQ4_NL) return dq_iq4_nl(as<IQ4_NL>(src), dst, nb);
  if (t == kIQ4_XS) return dq_iq4_xs(as<IQ4_XS>(src), dst, nb);
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  if (!quantize_supported(t)) throw std::invalid_argument("quantize: unsupported type " + type_name(t));
  check_count("quantize", t, *quant_traits(t), n);
  uint8_t* out = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) { const uint16_t h = fp32_to_fp16(src[i]); std::memcpy(out + 2 * i, &h, 2); }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) { const uint16_t h = fp32_to_bf16(src[i]); std::memcpy(out + 2 * i, &h, 2); }
      return;
    case DType::Q4_0: return quantize_q4_0(src, dst, n);
    case DType::Q4_1: return quantize_q4_1(src, dst, n);
    case DType::Q5_0: return quantize_q5_0(src, dst, n);
    case DType::Q5_1: return quantize_q5_1(src, dst, n);
    case DType::Q8_0: return quantize_q8_0(src, dst, n);
    case DType::Q2_K: return quantize_q2_K(src, dst, n);
    case DType::Q3_K: return quantize_q3_K(src, dst, n);
    case DType::Q4_K: return quantize_q4_K(src, dst, n);
    case DType::Q5_K: return quantize_q5_K(src, dst, n);
    case DType::Q6_K: return quantize_q6_K(src, dst, n);
    default: return;
  }
}

}  // namespace kt

// Matmul of quantized weights (Q4_K, Q6_K) for batches too large for the GEMV path and too small
// for dequantize + cuBLAS to pay off (decode at B ≈ 8..128): the weights are dequantized in
// registers straight into bf16 tensor-core fragments (mma.sync m16n8k16, f32 accumulation), so
// each weight byte is read once from memory and no bf16 copy of the layer is ever written.
//
// A block of 4 warps owns 16 weight rows and up to 8·NT activation rows; the warps split K by
// 256-element super-blocks and add their partial tiles in shared memory at the end. The k order
// inside an mma is free as long as both operands agree: lane (g, c) takes the 4 consecutive
// elements 8c + 4s .. 8c + 4s + 3 of a 32-element group in step s, so its weight bytes are one
// aligned word per row and its activations one 8-byte load per activation row.
#include <cuda_bf16.h>

#include <algorithm>

#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ uint32_t pack_bf16(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void mma_bf16(float* d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Per type: Raw holds every byte of one row's super-block that lane c needs (loaded in one go, so
// a warp has a whole block of loads in flight, and the next block's are issued before this one is
// used); group() turns group G (0..7, a compile-time constant after unrolling) of it into the 8
// weights lane c takes, as bf16 pairs: p[s][0] = elements 8c + 4s + 0, 1; p[s][1] = 8c + 4s + 2, 3.
template <DType T> struct MmaTile;

template <> struct MmaTile<DType::Q4_K> {  // d, dmin, scales[12], qs[128]; 16-byte aligned
  static constexpr int kBlockBytes = 144;
  struct Raw {
    uint4 h;
    uint2 q[4];  // qs bytes 32i + 8c .. + 7: low nibbles are group 2i, high ones group 2i + 1
  };
  __device__ static void load(const uint8_t* b, int c, Raw& r) {
    r.h = *reinterpret_cast<const uint4*>(b);
#pragma unroll
    for (int i = 0; i < 4; ++i) r.q[i] = *reinterpret_cast<const uint2*>(b + 16 + 32 * i + 8 * c);
  }
  __device__ static void group(const Raw& r, int G, int, uint32_t p[2][2]) {
    const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(r.h.x & 0xffffu)));
    const float dmin = __half2float(__ushort_as_half(static_cast<uint16_t>(r.h.x >> 16)));
    float sc, mn;
    scale_min_k4(G, r.h.y, r.h.z, r.h.w, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    const int shift = 4 * (G % 2);
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const uint32_t v = (s ? r.q[G / 2].y : r.q[G / 2].x) >> shift;
      const float y0 = d1 * u2f(v & 0xF) - m1, y1 = d1 * u2f((v >> 8) & 0xF) - m1;
      const float y2 = d1 * u2f((v >> 16) & 0xF) - m1, y3 = d1 * u2f((v >> 24) & 0xF) - m1;
      p[s][0] = pack_bf16(y0, y1);
      p[s][1] = pack_bf16(y2, y3);
    }
  }
};

template <> struct MmaTile<DType::Q6_K> {  // ql[128], qh[64], scales[16] (int8), d; 2-byte aligned
  static constexpr int kBlockBytes = 210;
  struct Raw {
    uint32_t ql[2][2][2];  // [half n][region: groups 0/2 or 1/3][word]: ql bytes 64n + 32·region + 8c .. + 7
    uint32_t qh[2][2];     // [half n][word]: qh bytes 32n + 8c .. + 7
    uint32_t sc[4];        // the 16 int8 scales
    float d;
  };
  __device__ static void load(const uint8_t* b, int c, Raw& r) {
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int reg = 0; reg < 2; ++reg) load_words_any<8>(b + 64 * n + 32 * reg + 8 * c, r.ql[n][reg]);
      load_words_any<8>(b + 128 + 32 * n + 8 * c, r.qh[n]);
    }
    load_words_any<16>(b + 192, r.sc);
    r.d = f16_at(b + 208);
  }
  __device__ static void group(const Raw& r, int G, int c, uint32_t p[2][2]) {
    const int n = G / 4, cc = G % 4;
    // Elements 8c .. 8c + 7 of the group share one int8 scale (scales cover 16 elements).
    const int si = 8 * n + 2 * cc + (c >> 1);
    const float ds = r.d * static_cast<float>(static_cast<int8_t>((r.sc[si / 4] >> (8 * (si % 4))) & 0xff));
    const int lshift = 4 * (cc >> 1), hshift = 2 * cc;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const uint32_t ql = r.ql[n][cc & 1][s], qh = r.qh[n][s];
      float y[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t q = ((ql >> (8 * j + lshift)) & 0xF) | (((qh >> (8 * j + hshift)) & 3) << 4);
        y[j] = ds * (u2f(q) - 32.f);
      }
      p[s][0] = pack_bf16(y[0], y[1]);
      p[s][1] = pack_bf16(y[2], y[3]);
    }
  }
};

// out[m, n] for a tile of 16 weight rows n0.. and 8·NT activation rows m0..; xb is x in bf16. The
// weight tile is blockIdx.x (m_fast: blockIdx.y, so that the blocks sharing a weight tile run
// together and all but the first read it from L2).
template <DType T, int NT>
__global__ void __launch_bounds__(32 * kWarps) mma_kernel(const uint8_t* __restrict__ w, int64_t row_bytes,
                                                          const __nv_bfloat16* __restrict__ xb, int M, int K, int N,
                                                          float* __restrict__ out, bool m_fast) {
  using Tile = MmaTile<T>;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, c = lane % 4;
  const int n0 = (m_fast ? blockIdx.y : blockIdx.x) * 16, m0 = (m_fast ? blockIdx.x : blockIdx.y) * 8 * NT;
  const uint8_t* w0 = w + static_cast<int64_t>(min(n0 + g, N - 1)) * row_bytes;
  const uint8_t* w1 = w + static_cast<int64_t>(min(n0 + g + 8, N - 1)) * row_bytes;
  const __nv_bfloat16* xr[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) xr[t] = xb + static_cast<int64_t>(min(m0 + 8 * t + g, M - 1)) * K;  // rows past M: not stored
  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;

  const int blocks = K / 256;
  typename Tile::Raw r0, r1;
  if (warp < blocks) {
    Tile::load(w0 + static_cast<int64_t>(warp) * Tile::kBlockBytes, c, r0);
    Tile::load(w1 + static_cast<int64_t>(warp) * Tile::kBlockBytes, c, r1);
  }
  for (int blk = warp; blk < blocks; blk += kWarps) {
    const typename Tile::Raw cur0 = r0, cur1 = r1;
    if (blk + kWarps < blocks) {  // the next block's loads go out before this one is used
      Tile::load(w0 + static_cast<int64_t>(blk + kWarps) * Tile::kBlockBytes, c, r0);
      Tile::load(w1 + static_cast<int64_t>(blk + kWarps) * Tile::kBlockBytes, c, r1);
    }
#pragma unroll
    for (int G = 0; G < 8; ++G) {
      uint32_t p0[2][2], p1[2][2];
      Tile::group(cur0, G, c, p0);
      Tile::group(cur1, G, c, p1);
      const int k = blk * 256 + 32 * G + 8 * c;
#pragma unroll
      for (int s = 0; s < 2; ++s) {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          const uint2 xv = __ldg(reinterpret_cast<const uint2*>(xr[t] + k + 4 * s));
          mma_bf16(acc[t], p0[s][0], p1[s][0], p0[s][1], p1[s][1], xv.x, xv.y);
        }
      }
    }
  }

  // Warps 1..3 hand their tiles to warp 0, which adds them and stores.
  __shared__ float red[kWarps - 1][NT][4][32];
  if (warp > 0)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp - 1][t][i][lane] = acc[t][i];
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float v = acc[t][i];
#pragma unroll
      for (int j = 0; j < kWarps - 1; ++j) v += red[j][t][i][lane];
      const int n = n0 + g + (i >= 2 ? 8 : 0);
      const int m = m0 + 8 * t + 2 * c + (i & 1);
      if (n < N && m < M) out[static_cast<int64_t>(m) * N + n] = v;
    }
  }
}

template <DType T>
void launch(const void* w, int64_t rb, const __nv_bfloat16* xb, int64_t M, int64_t K, int64_t N, float* out) {
  const unsigned nb = static_cast<unsigned>((N + 15) / 16);
  // Variant 1 (to be measured): at most 32 activation rows a block, activation tiles fastest in the grid.
  const bool v1 = options().mma_variant == 1;
  check(!v1 || nb < 65536, "matmul", "too many weight rows for the tensor-core kernel's variant 1");
  const auto go = [&](auto nt) {
    constexpr int NT = decltype(nt)::value;
    const unsigned mb = static_cast<unsigned>((M + 8 * NT - 1) / (8 * NT));
    const dim3 grid = v1 ? dim3(mb, nb) : dim3(nb, mb);
    mma_kernel<T, NT><<<grid, 32 * kWarps, 0, stream()>>>(static_cast<const uint8_t*>(w), rb, xb, static_cast<int>(M),
                                                         static_cast<int>(K), static_cast<int>(N), out, v1);
    check_launch("mma_kernel");
  };
  if (M <= 8) go(std::integral_constant<int, 1>{});
  else if (M <= 16) go(std::integral_constant<int, 2>{});
  else if (M <= 32 || v1) go(std::integral_constant<int, 4>{});
  else go(std::integral_constant<int, 8>{});  // more rows: grid.y walks them 64 at a time
}

}  // namespace

bool mma_supported(DType wt, int64_t K) { return (wt == DType::Q4_K || wt == DType::Q6_K) && K % 256 == 0; }

void matmul_mma(const void* w, DType wt, int64_t row_bytes, const float* x, int64_t M, int64_t K, int64_t N, float* out) {
  check(mma_supported(wt, K), "matmul", "no tensor-core kernel for this weight type");
  check(M < 65535LL * 64 && N < (1LL << 31), "matmul", "shape too large for the tensor-core kernel");
  // bf16 activations, freed in stream order after the launch that reads them.
  auto xb = pool().alloc(static_cast<size_t>(M * K) * 2);
  convert_f32_to_bf16(x, xb.get(), M * K);
  const auto* xh = static_cast<const __nv_bfloat16*>(xb.get());
  if (wt == DType::Q4_K) launch<DType::Q4_K>(w, row_bytes, xh, M, K, N, out);
  else launch<DType::Q6_K>(w, row_bytes, xh, M, K, N, out);
}

}  // namespace kt::cuda

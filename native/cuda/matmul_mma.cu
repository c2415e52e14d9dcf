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
#include "cuda/mma_bf16.cuh"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

constexpr int kWarps = 4;

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
    const int sb = 2 * cc + (c >> 1);  // byte of the scale word 2n + cc / 2 (sb / 4 == cc / 2)
    const float ds = r.d * static_cast<float>(static_cast<int8_t>((r.sc[2 * n + cc / 2] >> (8 * (sb % 4))) & 0xff));
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

// Variant 2 (M ≈ 8..64): a block of 8 warps owns 128 weight rows (16 a warp, as in variant 0) and
// 8·NT activation rows, and walks its K range one 256-element super-block at a time through
// shared-memory stages filled by cp.async: that super-block of every activation row (bf16) and of
// every weight row (raw bytes). A staged activation element is read by all 8 warps, one 16-byte
// shared load per lane, n-tile and group (elements 8c .. 8c + 7 of the group: both k16 steps' B
// fragments, in MmaTile's k order), and the weights wait in shared memory instead of registers.
// Per super-block each warp first decodes its 16 rows' scales once into a small table (variant 0
// decodes every scale in each of the 4 lanes that use it); the weights' values are variant 0's
// (exact f32 dequantization rounded once to bf16). Where the weight tiles alone leave the GPU short
// of blocks, the grid also splits K (blockIdx.y) and the blocks add their tiles into a zeroed
// output with atomics (the summation order then varies from run to run).
constexpr int kV2Warps = 8;
constexpr int kV2Rows = 16 * kV2Warps;

// Bytes 0..3 of t as floats 2^23 + byte, by one byte permute each (u2f of a byte, exact).
__device__ __forceinline__ float byte_f(uint32_t t, int j) { return __int_as_float(static_cast<int>(__byte_perm(t, 0x4B000000u, 0x7440u + j))); }

// Per type: a staged row holds one super-block, kChunks 16-byte pieces from the 16-byte boundary at
// or below it (Q6_K blocks are only 2-byte aligned: the block sits o = address & 15 bytes in),
// kStride bytes apart (a multiple of 16; Q4_K's keeps a half-warp's 8-byte loads from 4 rows on
// distinct banks). The warp's scale table has kTable floats a row. prepass() fills the table
// entries of lane half h (0, 1) of one row; group() turns group G of a row into the lane's A
// fragment words exactly as MmaTile<T>::group does.
template <DType T> struct V2Ops;

template <> struct V2Ops<DType::Q4_K> {
  static constexpr int kChunks = 9, kStride = 160;
  static constexpr int kTable = 18;  // (d·sc, dmin·mn) for the 8 groups, padded: rows 18 words apart hit distinct banks
  __device__ static void prepass(const uint8_t* b, int h, float* tr) {  // groups h, h + 2, h + 4, h + 6
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x & 0xffffu)));
    const float dmin = __half2float(__ushort_as_half(static_cast<uint16_t>(hd.x >> 16)));
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int j = h + 2 * k, sh = 8 * j;  // groups j (< 4) and j + 4 (scale_min_k4's two cases)
      const uint32_t y = hd.y >> sh, z = hd.z >> sh, wv = hd.w >> sh;
      const uint32_t sc0 = y & 63, mn0 = z & 63;
      const uint32_t sc1 = (wv & 0xF) | (((y >> 6) & 3) << 4), mn1 = ((wv >> 4) & 0xF) | (((z >> 6) & 3) << 4);
      *reinterpret_cast<float2*>(tr + 2 * j) = make_float2(d * u2f(sc0), dmin * u2f(mn0));
      *reinterpret_cast<float2*>(tr + 2 * (j + 4)) = make_float2(d * u2f(sc1), dmin * u2f(mn1));
    }
  }
  __device__ static void group(const uint8_t* b, const float* tr, int G, int c, uint32_t p[2][2]) {
    const float2 dm = *reinterpret_cast<const float2*>(tr + 2 * G);
    const float d1 = dm.x, m1 = dm.y;
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * (G / 2) + 8 * c);
    const int shift = 4 * (G % 2);
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const uint32_t t = ((s ? q.y : q.x) >> shift) & 0x0F0F0F0Fu;
      float y[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) y[j] = d1 * (byte_f(t, j) - 8388608.f) - m1;
      p[s][0] = pack_bf16(y[0], y[1]);
      p[s][1] = pack_bf16(y[2], y[3]);
    }
  }
};

template <> struct V2Ops<DType::Q6_K> {
  static constexpr int kChunks = 14, kStride = 224;  // 210 bytes + up to 14 of offset
  static constexpr int kTable = 17;  // d·scale for the 16 scales, padded: rows 17 words apart hit distinct banks
  // 8 bytes at b (2-byte aligned; o: b's offset from a 16-byte-aligned shared address, mod 4 is what counts).
  __device__ static void load8(const uint8_t* b, int o, uint32_t w[2]) {
    const uint32_t* a = reinterpret_cast<const uint32_t*>(b - (o & 3));
    const uint32_t sh = 8 * (o & 3), v0 = a[0], v1 = a[1], v2 = a[2];
    w[0] = __funnelshift_r(v0, v1, sh);
    w[1] = __funnelshift_r(v1, v2, sh);
  }
  __device__ static void prepass(const uint8_t* b, int o, int h, float* tr) {  // scales 8h .. 8h + 7
    uint32_t sc[2];
    load8(b + 192 + 8 * h, o, sc);
    const float d = __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(b + 208)));
#pragma unroll
    for (int i = 0; i < 8; ++i) tr[8 * h + i] = d * static_cast<float>(static_cast<int8_t>((sc[i / 4] >> (8 * (i % 4))) & 0xff));
  }
  __device__ static void group(const uint8_t* b, int o, const float* tr, int G, int c, uint32_t p[2][2]) {
    const int n = G / 4, cc = G % 4;
    const float ds = tr[2 * G + (c >> 1)];  // scale 8n + 2cc + (c >> 1): elements 8c .. 8c + 7 share it
    uint32_t ql[2], qh[2];
    load8(b + 64 * n + 32 * (cc & 1) + 8 * c, o, ql);
    load8(b + 128 + 32 * n + 8 * c, o, qh);
    const int lshift = 4 * (cc >> 1), hshift = 2 * cc;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const uint32_t t = ((ql[s] >> lshift) & 0x0F0F0F0Fu) | (((qh[s] >> hshift) & 0x03030303u) << 4);
      float y[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) y[j] = ds * (byte_f(t, j) - 8388640.f);  // (2^23 + q) - (2^23 + 32): q - 32, exact
      p[s][0] = pack_bf16(y[0], y[1]);
      p[s][1] = pack_bf16(y[2], y[3]);
    }
  }
};

template <DType T, int NT>
struct V2Layout {
  static constexpr int kXBytes = 8 * NT * 512;  // activation rows of 256 bf16 (16-byte pieces swizzled)
  static constexpr int kStageBytes = kXBytes + kV2Rows * V2Ops<T>::kStride;
  static constexpr int kTableBytes = kV2Warps * 16 * V2Ops<T>::kTable * 4;
  // The most stages (up to 4) with which two blocks fit an SM (228 KB, 1 KB of it reserved a
  // block), else three for one block.
  static constexpr bool fits2(int s) { return 2 * (s * kStageBytes + kTableBytes + 1024) <= 228 * 1024; }
  static constexpr int kStages = fits2(4) ? 4 : fits2(3) ? 3 : fits2(2) ? 2 : 3;
  static constexpr int kSmem = kStages * kStageBytes + kTableBytes;
  static_assert(kSmem <= 227 * 1024, "variant 2 stages exceed the shared memory of a block");
};

// Block (blockIdx.x, blockIdx.y, blockIdx.z) = (128 weight rows, K range of `chunk` super-blocks,
// 8·NT activation rows).
template <DType T, int NT>
__global__ void __launch_bounds__(32 * kV2Warps, 2)
    mma2_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const __nv_bfloat16* __restrict__ xb, int M, int K, int N,
                int chunk, float* __restrict__ out) {
  using Ops = V2Ops<T>;
  using L = V2Layout<T, NT>;
  constexpr int kS = L::kStages, kBB = MmaTile<T>::kBlockBytes;
  extern __shared__ __align__(16) uint8_t v2_smem[];

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, c = lane % 4;
  const int nb0 = blockIdx.x * kV2Rows, n0 = nb0 + 16 * warp;
  const int m0 = blockIdx.z * 8 * NT;
  const int kb0 = blockIdx.y * chunk;
  const int nk = min(chunk, K / 256 - kb0);

  // Staging super-block kb0 + i into stage s. Activations: warp v copies rows v, v + 8, ..., lane l
  // the row's 16-byte piece l (512 contiguous bytes a warp), stored at piece l ^ 4 in odd rows so
  // that a quarter-warp's loads (rows 2p and 2p + 1, pieces 4G .. 4G + 3) cover all 32 banks. Rows
  // past M repeat row M - 1 (their columns are never stored). Weights: 4 threads a row, thread h of
  // row r copying pieces h, h + 4, ... (64 contiguous bytes a row and instruction) of rows r and
  // r + 64; rows past N repeat row N - 1.
  const int xlast = M - 1 - m0;
  const auto issue = [&](int i, int s) {
    // The addresses are recomputed at each call: held across the main loop they would take ~15
    // registers (spills at NT = 8), and the opaque copy keeps the compiler from hoisting them.
    int tx = tid;
    asm volatile("" : "+r"(tx));
    const int xw = tx / 32, xp = tx % 32, wr = tx / 4, wh = tx % 4;
    const __nv_bfloat16* xg = xb + static_cast<int64_t>(m0) * K + static_cast<int64_t>(kb0 + i) * 256 + 8 * xp;
    const uint8_t* wsrc0 = w + static_cast<int64_t>(min(nb0 + wr, N - 1)) * row_bytes + static_cast<int64_t>(kb0 + i) * kBB;
    const uint8_t* wsrc1 = w + static_cast<int64_t>(min(nb0 + wr + 64, N - 1)) * row_bytes + static_cast<int64_t>(kb0 + i) * kBB;
    uint8_t* st = v2_smem + s * L::kStageBytes;
    uint8_t* xd = st + 16 * (xp ^ ((xw & 1) << 2));
#pragma unroll
    for (int j = 0; j < NT; ++j) cp_async16(xd + (xw + 8 * j) * 512, xg + static_cast<int64_t>(min(xw + 8 * j, xlast)) * K);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const uintptr_t a = reinterpret_cast<uintptr_t>(half ? wsrc1 : wsrc0);
      const uint8_t* src = reinterpret_cast<const uint8_t*>(a & ~uintptr_t{15}) + 16 * wh;
      uint8_t* dst = st + L::kXBytes + (wr + 64 * half) * Ops::kStride + 16 * wh;
#pragma unroll
      for (int p = 0; p < (Ops::kChunks + 3) / 4; ++p)
        if (4 * p + wh < Ops::kChunks) cp_async16(dst + 64 * p, src + 64 * p);
    }
  };

  // Offsets of this lane's rows' blocks in their staged windows at super-block kb0 (+ i·kBB, mod 16
  // later): rows n0 + g and n0 + g + 8 for the fragments, n0 + lane / 2 for the scale pre-pass.
  const auto offset = [&](int n) {
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(w)) + static_cast<uint32_t>(min(n, N - 1)) * static_cast<uint32_t>(row_bytes) +
           static_cast<uint32_t>(kb0 * kBB);
  };
  const uint32_t wo0 = offset(n0 + g), wo1 = offset(n0 + g + 8), wop = offset(n0 + lane / 2);
  const bool active = n0 < N;  // warp-uniform: a warp wholly past N only helps stage
  float* table = reinterpret_cast<float*>(v2_smem + kS * L::kStageBytes) + warp * 16 * Ops::kTable;
  // Lane (g, c) reads activation row 8t + g, elements 32G + 8c .. + 7: piece 4G + c, or 4G + (c ^ 4)
  // pieces in odd rows: + 64 bytes for even G, - 64 for odd G.
  const int xoff = g * 512 + 16 * c, xsw = (g & 1) << 6;

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;

#pragma unroll
  for (int s = 0; s < kS - 1; ++s) {
    if (s < nk) issue(s, s);
    cp_async_commit();  // empty groups keep the count uniform
  }
  int s_use = 0, s_fill = kS - 1;
  for (int i = 0; i < nk; ++i) {
    cp_async_wait<kS - 2>();
    __syncthreads();  // super-block i staged by all; every warp done with the stage refilled next and with its table
    if (i + kS - 1 < nk) issue(i + kS - 1, s_fill);
    cp_async_commit();
    if (active) {
      const uint8_t* st = v2_smem + s_use * L::kStageBytes;
      const uint8_t* ws = st + L::kXBytes + 16 * warp * Ops::kStride;  // the warp's 16 weight rows
      const uint32_t off = static_cast<uint32_t>(i * kBB);
      const int op = static_cast<int>((wop + off) & 15), o0 = static_cast<int>((wo0 + off) & 15), o1 = static_cast<int>((wo1 + off) & 15);
      if constexpr (T == DType::Q4_K) Ops::prepass(ws + (lane / 2) * Ops::kStride, lane % 2, table + (lane / 2) * Ops::kTable);
      else Ops::prepass(ws + (lane / 2) * Ops::kStride + op, op, lane % 2, table + (lane / 2) * Ops::kTable);
      __syncwarp();
      const uint8_t* b0 = ws + g * Ops::kStride + o0;
      const uint8_t* b1 = ws + (g + 8) * Ops::kStride + o1;
      const float* t0 = table + g * Ops::kTable;
      const float* t1 = table + (g + 8) * Ops::kTable;
      const uint8_t* xl = st + xoff;
#pragma unroll
      for (int G = 0; G < 8; ++G) {
        uint32_t p0[2][2], p1[2][2];
        if constexpr (T == DType::Q4_K) {
          Ops::group(b0, t0, G, c, p0);
          Ops::group(b1, t1, G, c, p1);
        } else {
          Ops::group(b0, o0, t0, G, c, p0);
          Ops::group(b1, o1, t1, G, c, p1);
        }
        const int gx = 64 * G + ((G & 1) ? -xsw : xsw);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          const uint4 xv = *reinterpret_cast<const uint4*>(xl + 8 * t * 512 + gx);
          mma_bf16(acc[t], p0[0][0], p1[0][0], p0[0][1], p1[0][1], xv.x, xv.y);
          mma_bf16(acc[t], p0[1][0], p1[1][0], p0[1][1], p1[1][1], xv.z, xv.w);
        }
      }
    }
    s_use = s_use + 1 == kS ? 0 : s_use + 1;
    s_fill = s_fill + 1 == kS ? 0 : s_fill + 1;
  }
  cp_async_wait<0>();  // only empty groups can remain; leave none behind
  if (!active) return;

  const bool split = gridDim.y > 1;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int n = n0 + g + (i >= 2 ? 8 : 0);
      const int m = m0 + 8 * t + 2 * c + (i & 1);
      if (n < N && m < M) {
        float* o = out + static_cast<int64_t>(m) * N + n;
        if (split) atomicAdd(o, acc[t][i]);
        else *o = acc[t][i];
      }
    }
  }
}

int multiprocessors() {
  static const int count = [] {
    int dev = 0, n = 0;
    check_cuda(cudaGetDevice(&dev), "mma2: device");
    check_cuda(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "mma2: device");
    return n > 0 ? n : 132;
  }();
  return count;
}

template <DType T, int NT>
void launch_v2(const void* w, int64_t rb, const __nv_bfloat16* xb, int64_t M, int64_t K, int64_t N, float* out) {
  const auto kernel = mma2_kernel<T, NT>;
  constexpr int smem = V2Layout<T, NT>::kSmem;
  // Blocks an SM holds at once (registers, shared memory), asked once per instantiation.
  static const int per_sm = [&] {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "mma2_kernel: shared memory");
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared),
               "mma2_kernel: shared memory carveout");
    int n = 0;
    check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, 32 * kV2Warps, smem), "mma2_kernel: occupancy");
    return std::max(n, 1);
  }();
  check(T != DType::Q4_K || reinterpret_cast<uintptr_t>(w) % 16 == 0, "matmul", "Q4_K weights must be 16-byte aligned");
  const int64_t nb = (N + kV2Rows - 1) / kV2Rows, mb = (M + 8 * NT - 1) / (8 * NT), kblocks = K / 256;
  const int64_t slots = static_cast<int64_t>(multiprocessors()) * per_sm;
  // K splits: the fewest waves of resident blocks times (super-blocks a block + 1 for its first loads).
  int64_t best_s = 1, best_chunk = kblocks, best_cost = -1;
  for (int64_t s = 1; s <= kblocks; ++s) {
    const int64_t ch = (kblocks + s - 1) / s;
    if ((kblocks + ch - 1) / ch != s) continue;  // the same chunks as a smaller split
    const int64_t cost = (nb * mb * s + slots - 1) / slots * (ch + 1);
    if (best_cost < 0 || cost < best_cost) best_s = s, best_chunk = ch, best_cost = cost;
  }
  check(nb < (1LL << 31) && best_s < 65536 && mb < 65536, "matmul", "shape too large for the tensor-core kernel's variant 2");
  if (best_s > 1) check_cuda(cudaMemsetAsync(out, 0, static_cast<size_t>(M * N) * sizeof(float), stream()), "mma2: zero output");
  const dim3 grid(static_cast<unsigned>(nb), static_cast<unsigned>(best_s), static_cast<unsigned>(mb));
  kernel<<<grid, 32 * kV2Warps, smem, stream()>>>(static_cast<const uint8_t*>(w), rb, xb, static_cast<int>(M), static_cast<int>(K),
                                                  static_cast<int>(N), static_cast<int>(best_chunk), out);
  check_launch("mma2_kernel");
}

template <DType T>
void launch2(const void* w, int64_t rb, const __nv_bfloat16* xb, int64_t M, int64_t K, int64_t N, float* out) {
  switch (std::min<int64_t>((M + 7) / 8, 8)) {  // n-tiles of 8 activation rows a block; more rows: grid.z
    case 1: return launch_v2<T, 1>(w, rb, xb, M, K, N, out);
    case 2: return launch_v2<T, 2>(w, rb, xb, M, K, N, out);
    case 3: return launch_v2<T, 3>(w, rb, xb, M, K, N, out);
    case 4: return launch_v2<T, 4>(w, rb, xb, M, K, N, out);
    case 5: return launch_v2<T, 5>(w, rb, xb, M, K, N, out);
    case 6: return launch_v2<T, 6>(w, rb, xb, M, K, N, out);
    case 7: return launch_v2<T, 7>(w, rb, xb, M, K, N, out);
    default: return launch_v2<T, 8>(w, rb, xb, M, K, N, out);
  }
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
  if (options().mma_variant == 2) {
    if (wt == DType::Q4_K) launch2<DType::Q4_K>(w, row_bytes, xh, M, K, N, out);
    else launch2<DType::Q6_K>(w, row_bytes, xh, M, K, N, out);
  } else if (wt == DType::Q4_K) launch<DType::Q4_K>(w, row_bytes, xh, M, K, N, out);
  else launch<DType::Q6_K>(w, row_bytes, xh, M, K, N, out);
}

}  // namespace kt::cuda

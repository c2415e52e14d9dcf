// Matmul for few activation rows (decode): one pass over the weights, memory-bound (each
// weight byte is read once per MT activation rows). Plain weights: f32 activations and sums.
// Quantized weights: as the CPU (and llama.cpp's mmvq), the activations are first quantized
// per row to the type's q8 format, then int8 dot products (dp4a) per block with float scales.
// gemv_group runs several weights over the same activations in one launch (a layer's q, k, v;
// gate and up with SwiGLU at the end). Every kernel here starts with launch_pdl (pdl.cuh).
#include <type_traits>

#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/gemv_rows.cuh"
#include "cuda/ops.h"
#include "cuda/pdl.cuh"
#include "cuda/quantize_act.h"

namespace kt::cuda {

namespace {

using gemv_rows::kRows;
using gemv_rows::kThreads;
using gemv_rows::has_dot;
using gemv_rows::plain_type;
using gemv_rows::warp_partials;
using gemv_rows::zero;

// The end of the plain kernels: rows 2·pair and 2·pair + 1 of block bx's pairs, stored below M and N.
template <int MT, int W>
__device__ __forceinline__ void store_rows(const float (&acc)[kRows][MT], int warp, int lane, int M, int N, int m0, int bx,
                                           float* __restrict__ out) {
  constexpr int kPairs = 8 / W;
  const auto partial = warp_partials<MT>(acc, warp, lane);
  if (threadIdx.x < kPairs * kRows * MT) {
    const int pair = threadIdx.x / (kRows * MT), r = (threadIdx.x / MT) % kRows, m = threadIdx.x % MT;
    const int n = (bx * kPairs + pair) * kRows + r;
    if (n < N && m0 + m < M) {
      float v = 0.f;
#pragma unroll
      for (int j = 0; j < W; ++j) v += partial[pair * W + j][r][m];
      out[static_cast<int64_t>(m0 + m) * N + n] = v;
    }
  }
}

// The end of the SwiGLU kernel: a pair is (gate row n, up row n) and stores silu(gate) · up at n,
// with silu_mul.cu's rounding.
template <int MT, int W>
__device__ __forceinline__ void store_silu_mul(const float (&acc)[kRows][MT], int warp, int lane, int M, int N, int m0, int bx,
                                               float* __restrict__ out) {
  constexpr int kPairs = 8 / W;
  const auto partial = warp_partials<MT>(acc, warp, lane);
  if (threadIdx.x < kPairs * MT) {
    const int pair = threadIdx.x / MT, m = threadIdx.x % MT;
    const int n = bx * kPairs + pair;
    if (n < N && m0 + m < M) {
      float g = 0.f, u = 0.f;
#pragma unroll
      for (int j = 0; j < W; ++j) g += partial[pair * W + j][0][m], u += partial[pair * W + j][1][m];
      out[static_cast<int64_t>(m0 + m) * N + n] = gemv_rows::silu_times(g, u);
    }
  }
}
// W warps share a pair of weight rows (splitting K), so a block does 8 / W pairs; activation rows
// MT · blockIdx.y ... + MT - 1. W is chosen on the host so that small N still fills the GPU.
// Launched with launch_pdl (pdl.cuh).
// Before its pdl_wait a block asks L2 for its rows. (Asking also for the rows of the block that
// will run in its place, one wave ahead, measured slower on the H200: 26.8 → 29.7 µs for gate/up.)
template <DType T, int MT, int W, bool Int8, int U>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, const float* __restrict__ x,
                                                        ActQ act, int M, int K, int N, float* __restrict__ out) {
  pdl_trigger();
  constexpr int kPairs = 8 / W;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * kPairs + warp / W) * kRows;
  const uint8_t* w0 = w + static_cast<int64_t>(min(n0, N - 1)) * row_bytes;
  const uint8_t* w1 = w + static_cast<int64_t>(min(n0 + 1, N - 1)) * row_bytes;  // odd N: row computed twice, stored once
  if (threadIdx.x == 0 && blockIdx.y == 0) {
    constexpr int kBlockRows = kPairs * kRows;
    gemv_rows::prefetch_rows(w, row_bytes, static_cast<int64_t>(blockIdx.x) * kBlockRows, kBlockRows, N);
  }
  pdl_wait();
  float acc[kRows][MT];
  zero(acc);
  int64_t xm[MT];
  gemv_rows::dense_rows<MT>(blockIdx.y * MT, M, xm);
  if (n0 < N) gemv_rows::pair_sums<T, MT, W, Int8, U>(w0, w1, x, act, K, xm, (warp % W) * 32 + lane, acc);
  store_rows<MT, W>(acc, warp, lane, M, N, blockIdx.y * MT, blockIdx.x, out);
}

// Several weights against the same activations in one launch (gemv_group): each segment's rows
// are a run of blocks. With SiluMul, two segments (gate, up) of equal shape and type whose rows
// n pair up, and one output, silu(x·gate_n) · (x·up_n).
constexpr int kMaxSegments = 3;

struct GemvSegment {
  const uint8_t* w;
  int64_t row_bytes;
  float* out;
  int N;
  int first_block;
  DType type;
};

struct GemvGroup {
  GemvSegment seg[kMaxSegments];
  int count;
  const float* x;
  ActQ act;
  int M, K;
};

// The segment block b of the grid belongs to (SiluMul: the first, whose rows pair with the second's).
template <bool SiluMul>
__device__ __forceinline__ GemvSegment segment_of(const GemvGroup& g, int b) {
  int si = 0;
#pragma unroll
  for (int i = 1; i < kMaxSegments; ++i)
    if (!SiluMul && i < g.count && b >= g.seg[i].first_block) si = i;
  return si == 0 ? g.seg[0] : si == 1 ? g.seg[1] : g.seg[2];
}

// Asks L2 for the rows of segment s that its block bx reads.
template <bool SiluMul, int kPairs>
__device__ __forceinline__ void prefetch_group_block(const GemvGroup& g, const GemvSegment& s, int bx) {
  if constexpr (SiluMul) {
    gemv_rows::prefetch_rows(s.w, s.row_bytes, static_cast<int64_t>(bx) * kPairs, kPairs, s.N);
    gemv_rows::prefetch_rows(g.seg[1].w, s.row_bytes, static_cast<int64_t>(bx) * kPairs, kPairs, s.N);
  } else {
    gemv_rows::prefetch_rows(s.w, s.row_bytes, static_cast<int64_t>(bx) * kPairs * kRows, kPairs * kRows, s.N);
  }
}

// The types a group takes: the K-quants and Q8_0 (int8), BF16 and F16 (f32 activations).
template <bool Int8, int MT, int W, int U>
__device__ __forceinline__ void group_pair_sums(DType type, const uint8_t* w0, const uint8_t* w1, const GemvGroup& g, int m0, int t,
                                                float (&acc)[kRows][MT]) {
  using gemv_rows::pair_sums;
  int64_t xm[MT];
  gemv_rows::dense_rows<MT>(m0, g.M, xm);
  if constexpr (Int8) {
    switch (type) {
      case DType::Q4_K: return pair_sums<DType::Q4_K, MT, W, true, U>(w0, w1, g.x, g.act, g.K, xm, t, acc);
      case DType::Q6_K: return pair_sums<DType::Q6_K, MT, W, true, U>(w0, w1, g.x, g.act, g.K, xm, t, acc);
      case DType::Q8_0: return pair_sums<DType::Q8_0, MT, W, true, U>(w0, w1, g.x, g.act, g.K, xm, t, acc);
      default: return;
    }
  } else {
    switch (type) {
      case DType::BF16: return pair_sums<DType::BF16, MT, W, false>(w0, w1, g.x, g.act, g.K, xm, t, acc);
      case DType::F16: return pair_sums<DType::F16, MT, W, false>(w0, w1, g.x, g.act, g.K, xm, t, acc);
      default: return;
    }
  }
}

bool group_type(DType t, bool* int8) {
  *int8 = t == DType::Q4_K || t == DType::Q6_K || t == DType::Q8_0;
  return *int8 || t == DType::BF16 || t == DType::F16;
}

template <int MT, int W, bool Int8, bool SiluMul, int U>
__global__ void __launch_bounds__(kThreads) gemv_group_kernel(const GemvGroup g) {
  pdl_trigger();
  constexpr int kPairs = 8 / W;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const GemvSegment s = segment_of<SiluMul>(g, static_cast<int>(blockIdx.x));
  const int bx = static_cast<int>(blockIdx.x) - s.first_block;
  const int pair = bx * kPairs + warp / W;
  const uint8_t *w0, *w1;
  bool live;
  if constexpr (SiluMul) {
    live = pair < s.N;
    w0 = s.w + static_cast<int64_t>(min(pair, s.N - 1)) * s.row_bytes;
    w1 = g.seg[1].w + static_cast<int64_t>(min(pair, s.N - 1)) * s.row_bytes;
  } else {
    live = pair * kRows < s.N;
    w0 = s.w + static_cast<int64_t>(min(pair * kRows, s.N - 1)) * s.row_bytes;
    w1 = s.w + static_cast<int64_t>(min(pair * kRows + 1, s.N - 1)) * s.row_bytes;
  }
  if (threadIdx.x == 0 && blockIdx.y == 0) prefetch_group_block<SiluMul, kPairs>(g, s, bx);  // as in gemv_kernel
  pdl_wait();
  float acc[kRows][MT];
  zero(acc);
  const int m0 = blockIdx.y * MT;
  if (live) group_pair_sums<Int8, MT, W, U>(s.type, w0, w1, g, m0, (warp % W) * 32 + lane, acc);
  if constexpr (SiluMul) store_silu_mul<MT, W>(acc, warp, lane, g.M, s.N, m0, bx, s.out);
  else store_rows<MT, W>(acc, warp, lane, g.M, s.N, m0, bx, s.out);
}

// Warps per row pair, from sweeps on an H200 (notes/cuda.md): plain types stream best with four
// warps on every shape, int8 Q8_0 too; other quantized ones with one warp where there are enough
// pairs to fill the GPU (options().gemv_w1_pairs: with unroll 1 about 32 warps fit an SM), more
// where there are not.
int warps_for(int64_t pairs, bool four) {
  const int forced = options().gemv_warps;
  if (forced) return forced;
  if (four) return 4;
  return pairs >= options().gemv_w1_pairs ? 1 : pairs >= 1024 ? 2 : 4;
}

// Calls fn.template go<MT, W>() for M activation rows (MT 1, 2, 4, or 8 with grid.y walking
// the rest) and W warps a pair.
template <typename Fn>
void with_mt_w(int64_t M, int W, const Fn& fn) {
  const auto by_w = [&](auto mt) {
    constexpr int MT = decltype(mt)::value;
    if (W == 1) fn.template go<MT, 1>();
    else if (W == 2) fn.template go<MT, 2>();
    else fn.template go<MT, 4>();
  };
  if (M <= 1) by_w(std::integral_constant<int, 1>{});
  else if (M <= 2) by_w(std::integral_constant<int, 2>{});
  else if (M <= 4) by_w(std::integral_constant<int, 4>{});
  else by_w(std::integral_constant<int, 8>{});
}

// One gemv() call's arguments.
struct GemvArgs {
  const void* w;
  int64_t row_bytes;
  const float* x;
  int64_t M, K, N;
  float* out;
  const ActQ* act;  // quantized activations (int8 kernels), else nullptr
};

template <DType T>
struct GemvLaunch {
  GemvArgs a;

  template <int MT, int W>
  void go() const {
    const dim3 grid(blocks_for((a.N + kRows - 1) / kRows, 8 / W), static_cast<unsigned>((a.M + MT - 1) / MT));
    const auto* w = static_cast<const uint8_t*>(a.w);
    const int m = static_cast<int>(a.M), k = static_cast<int>(a.K), n = static_cast<int>(a.N);
    if constexpr (Dot<T>::kHas) {
      if (a.act && options().gemv_unroll == 1)
        return launch_pdl("gemv_kernel", gemv_kernel<T, MT, W, true, 1>, grid, dim3(kThreads), 0, w, a.row_bytes, a.x, *a.act, m, k, n, a.out);
      if (a.act)
        return launch_pdl("gemv_kernel", gemv_kernel<T, MT, W, true, 2>, grid, dim3(kThreads), 0, w, a.row_bytes, a.x, *a.act, m, k, n, a.out);
    }
    launch_pdl("gemv_kernel", gemv_kernel<T, MT, W, false, 2>, grid, dim3(kThreads), 0, w, a.row_bytes, a.x, ActQ{}, m, k, n, a.out);
  }
};

// dispatch_quant's functor: the launch for the weight type, with W and MT for the shape.
struct GemvDispatch {
  GemvArgs a;

  template <DType T>
  void run() const {
    with_mt_w(a.M, warps_for((a.N + kRows - 1) / kRows, plain_type(T) || (T == DType::Q8_0 && a.act)), GemvLaunch<T>{a});
  }
};

struct GroupLaunch {
  GemvGroup g;
  bool int8, silu_mul;

  template <int MT, int W>
  void go() const {
    GemvGroup with_blocks = g;
    int blocks = 0;
    for (int i = 0; i < (silu_mul ? 1 : g.count); ++i) {
      GemvSegment& s = with_blocks.seg[i];
      s.first_block = blocks;
      blocks += static_cast<int>(blocks_for(silu_mul ? s.N : (s.N + kRows - 1) / kRows, 8 / W));
    }
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>((g.M + MT - 1) / MT));
    const auto go_with = [&](auto kernel) { launch_pdl("gemv_group_kernel", kernel, grid, dim3(kThreads), 0, with_blocks); };
    const bool u1 = options().gemv_unroll == 1;
    if (int8 && silu_mul) u1 ? go_with(gemv_group_kernel<MT, W, true, true, 1>) : go_with(gemv_group_kernel<MT, W, true, true, 2>);
    else if (int8) u1 ? go_with(gemv_group_kernel<MT, W, true, false, 1>) : go_with(gemv_group_kernel<MT, W, true, false, 2>);
    else if (silu_mul) go_with(gemv_group_kernel<MT, W, false, true, 2>);
    else go_with(gemv_group_kernel<MT, W, false, false, 2>);
  }
};

}  // namespace

void gemv(const void* w, DType wt, int64_t row_bytes, const float* x, int64_t M, int64_t K, int64_t N, float* out, const ActQ* q8k) {
  if (M <= 0 || N <= 0) return;
  check(M < 65535LL * 8 && N < (1LL << 31) && K < (1LL << 31), "matmul", "shape too large for the GEMV kernels");
  if (plain_type(wt)) {
    const GemvDispatch l{{w, row_bytes, x, M, K, N, out, nullptr}};
    check(dispatch_quant(wt, l), "matmul", "no CUDA kernel for this weight type");
    return;
  }
  // Quantized: activations to q8 first (freed in stream order after the launch that reads them).
  // Types without an int8 kernel (Q2_K, Q3_K, Q5_K) run the f32 kernel over the dequantized
  // q8 values, which equals the int8 result up to float rounding.
  const bool int8 = has_dot(wt);
  std::shared_ptr<void> storage;
  const ActQ act = int8 && q8k && act_format(wt) == ActFormat::Q8_K ? *q8k : quantize_activations(x, M, K, act_format(wt), !int8, &storage);
  const GemvDispatch l{{w, row_bytes, int8 ? x : act.xf, M, K, N, out, int8 ? &act : nullptr}};
  check(dispatch_quant(wt, l), "matmul", "no CUDA kernel for this weight type");
}

bool gemv_group_supported(const DType* types, int count) {
  if (count < 1 || count > kMaxSegments) return false;
  bool int8 = false;
  if (!group_type(types[0], &int8)) return false;
  for (int i = 1; i < count; ++i) {
    bool other = false;
    if (!group_type(types[i], &other) || other != int8) return false;
    if (int8 && act_format(types[i]) != act_format(types[0])) return false;
  }
  return true;
}

void gemv_group(const GemvWeight* ws, int count, const float* x, int64_t M, int64_t K, bool silu_mul, const ActQ* q8k) {
  const char* op = silu_mul ? "matmul_silu_mul" : "matmul_group";
  check(M >= 1 && M <= 2 && K < (1LL << 31), op, "the grouped GEMV takes 1 or 2 activation rows");
  check(silu_mul ? count == 2 : count >= 1, op, "bad number of weights");
  DType types[kMaxSegments];
  for (int i = 0; i < count && i < kMaxSegments; ++i) types[i] = ws[i].type;
  check(gemv_group_supported(types, count), op, "these weight types do not share one GEMV launch");
  check(!silu_mul || (ws[0].type == ws[1].type && ws[0].N == ws[1].N), op, "gate and up must have one type and shape");
  GroupLaunch l{};
  l.silu_mul = silu_mul;
  group_type(ws[0].type, &l.int8);
  std::shared_ptr<void> storage;  // the quantized activations, freed in stream order after the launch
  if (l.int8 && q8k && act_format(ws[0].type) == ActFormat::Q8_K) l.g.act = *q8k;
  else if (l.int8) l.g.act = quantize_activations(x, M, K, act_format(ws[0].type), false, &storage);
  l.g.x = x;
  l.g.M = static_cast<int>(M);
  l.g.K = static_cast<int>(K);
  l.g.count = count;
  int64_t pairs = 0;
  for (int i = 0; i < count; ++i) {
    check(ws[i].N > 0 && ws[i].N < (1LL << 31), op, "bad weight rows");
    l.g.seg[i] = GemvSegment{static_cast<const uint8_t*>(ws[i].w), ws[i].row_bytes, ws[i].out, static_cast<int>(ws[i].N), 0, ws[i].type};
    pairs += silu_mul ? 0 : (ws[i].N + kRows - 1) / kRows;
  }
  if (silu_mul) pairs = ws[0].N;
  with_mt_w(M, warps_for(pairs, !l.int8 || ws[0].type == DType::Q8_0), l);
}

bool matmul_type_supported(DType wt, int64_t K) { return rows_fit_pieces(wt, K); }

int default_gemv_rows(DType wt) {
  // Plain weights: cuBLAS is as fast from M = 4 (notes/cuda.md). Q4_K/Q6_K: from M = 3 the
  // tensor-core kernel (matmul_mma.cu) wins (Q4_K layer of llama-3.1-8b, H200: GEMV 87 µs at M = 2,
  // 158 at M = 4; tensor cores ~135 µs for any M ≤ 8). Other int8 types have no tensor-core kernel:
  // up to 8 rows share one GEMV pass, far cheaper than dequantizing a layer for cuBLAS (~430 µs).
  if (wt == DType::Q4_K || wt == DType::Q6_K) return 2;
  return has_dot(wt) ? 8 : 2;
}

}  // namespace kt::cuda

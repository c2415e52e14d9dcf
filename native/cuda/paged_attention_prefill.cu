// paged_attention for prefill runs on the tensor cores, FlashAttention-2 style: a block of 4 warps
// takes 64 query rows of one sequence and one query head (16 rows a warp, Q in bf16 registers),
// walks the keys 64 at a time through the block table into shared memory as bf16 (cp.async from a
// bf16 cache, converted from an f32 one; two stages), S = QKᵀ and O += PV with mma.sync m16n8k16,
// and keeps the online softmax (row max and sum) in f32 registers. Only the tiles on the causal
// diagonal are masked; key tiles past a warp's last row are skipped.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/ops.h"
#include "cuda/paged_rows.cuh"
#include "cuda/pdl.cuh"

namespace kt::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // query rows a block
constexpr int kKeys = 64;           // keys a shared-memory tile
constexpr int kThreads = 32 * kWarps;

struct PrefillArgs : PagedAttention {
  float scale_log2;  // scale · log2(e): the softmax runs on exp2
  int min_qlen;  // sequences with fewer query rows are left to attention_rows
};

// Shared memory of one stage: K then V, kKeys rows of D bf16 each, rows padded by 16 bytes so the
// 8 row addresses of an ldmatrix fall in distinct banks.
template <int D> struct Smem {
  static constexpr int kStride = D + 8;
  static constexpr int kTile = kKeys * kStride;
  static constexpr int kBytes = 2 * 2 * kTile * 2;  // (K, V) × two stages × bf16
};

__device__ __forceinline__ uint32_t pack_bf16(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void mma_bf16(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// Four 8×8 bf16 matrices; lanes 8i .. 8i + 7 give the row addresses of matrix i, and r[i] holds the
// pair (row lane / 4, columns 2 (lane % 4), + 1) of matrix i, or with .trans the pair (rows 2 (lane % 4),
// + 1; column lane / 4).
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// 8 elements (16 bytes of bf16) of a cache row into shared memory; zeros where !live (keys past the
// sequence's cache: their V must be finite, as P · V multiplies them by 0).
__device__ __forceinline__ void copy8(__nv_bfloat16* dst, const __nv_bfloat16* src, bool live) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(live ? 16 : 0) : "memory");
}
__device__ __forceinline__ void copy8(__nv_bfloat16* dst, const float* src, bool live) {
  uint4 v = make_uint4(0, 0, 0, 0);
  if (live) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(src)), b = __ldg(reinterpret_cast<const float4*>(src) + 1);
    v = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
  }
  *reinterpret_cast<uint4*>(dst) = v;
}

// Keys key0 .. key0 + kKeys - 1 of K and V (KV head offset head_off) into one stage.
template <int D, typename C>
__device__ __forceinline__ void load_tile(const PrefillArgs& a, const int32_t* table, int64_t head_off, int kv_len, int key0,
                                          __nv_bfloat16* ks, __nv_bfloat16* vs) {
  constexpr int kChunks = D / 8;  // 16-byte pieces of a bf16 row
  const C* kc = static_cast<const C*>(a.kc);
  const C* vc = static_cast<const C*>(a.vc);
#pragma unroll
  for (int it = 0; it < kKeys * kChunks / kThreads; ++it) {
    const int i = it * kThreads + static_cast<int>(threadIdx.x);
    const int r = i / kChunks, part = i % kChunks, key = key0 + r;
    const bool live = key < kv_len;
    // Dead keys point at the cache's start (a cp.async of 0 bytes still takes an address).
    const int64_t off = live ? (static_cast<int64_t>(table[key / a.bs]) * a.bs + key % a.bs) * a.width + head_off + 8 * part : 0;
    copy8(ks + r * Smem<D>::kStride + 8 * part, kc + off, live);
    copy8(vs + r * Smem<D>::kStride + 8 * part, vc + off, live);
  }
}

// Grid (H, tile slots). Sequence s owns the slots from cu_q[s] / kRows + s on, ceil(qlen / kRows) of them:
// increasing starts, no overlaps, all below T / kRows + S, so the slot of a block finds its sequence by
// binary search and the grid depends on T and S only. Slots left over exit at once.
template <int D, typename C>
__global__ void __launch_bounds__(kThreads) prefill_kernel(PrefillArgs a) {
  pdl_trigger();  // the next kernel, if launched with launch_pdl, may start (pdl.cuh)
  extern __shared__ uint4 smem_raw[];
  __nv_bfloat16* smem = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  const int h = blockIdx.x;
  const int slot = static_cast<int>(gridDim.y - 1 - blockIdx.y);  // the last tiles (most keys) start first
  int lo = 0, hi = a.S - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (a.cu_q[mid] / kRows + mid <= slot) lo = mid;
    else hi = mid - 1;
  }
  const int s = lo, q0 = a.cu_q[s], qlen = a.cu_q[s + 1] - q0;
  const int r0 = (slot - q0 / kRows - s) * kRows;  // the tile's first row in its sequence
  if (r0 >= qlen || qlen < a.min_qlen) return;      // the whole block: before any barrier
  const int kv_len = a.kv_lens[s], past = kv_len - qlen;
  // Row i of the sequence sees keys 0 .. past + i; the block's last row sees the most.
  const int n_tiles = (past + min(r0 + kRows, qlen) + kKeys - 1) / kKeys;
  const int32_t* table = a.tables + static_cast<int64_t>(s) * (a.stride ? *a.stride : a.max_blocks);
  const int64_t head_off = static_cast<int64_t>(h / a.group) * D;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int wr0 = r0 + 16 * warp;  // the warp's first row
  const bool warp_live = wr0 < qlen;
  const int ra = wr0 + g, rb = ra + 8;  // this thread's rows (fragment rows g and g + 8)
  const int lim_a = past + ra + 1, lim_b = lim_a + 8;  // keys below these are visible
  const int warp_first = past + wr0 + 1, warp_last = past + min(wr0 + 16, qlen);  // fewest / most keys a row of the warp sees

  // Q as A fragments, chunk kk: {(g, 16kk + 2c..), (g + 8, 16kk + 2c..), (g, 16kk + 8 + 2c..), (g + 8, 16kk + 8 + 2c..)}.
  uint32_t qf[D / 16][4];
  {
    const float* qa = a.q + (static_cast<int64_t>(q0 + min(ra, qlen - 1)) * a.H + h) * D + 2 * c;
    const float* qb = a.q + (static_cast<int64_t>(q0 + min(rb, qlen - 1)) * a.H + h) * D + 2 * c;
    const float2 zero = make_float2(0.f, 0.f);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const float2 x0 = ra < qlen ? *reinterpret_cast<const float2*>(qa + 16 * kk) : zero;
      const float2 x1 = rb < qlen ? *reinterpret_cast<const float2*>(qb + 16 * kk) : zero;
      const float2 x2 = ra < qlen ? *reinterpret_cast<const float2*>(qa + 16 * kk + 8) : zero;
      const float2 x3 = rb < qlen ? *reinterpret_cast<const float2*>(qb + 16 * kk + 8) : zero;
      qf[kk][0] = pack_bf16(x0.x, x0.y);
      qf[kk][1] = pack_bf16(x1.x, x1.y);
      qf[kk][2] = pack_bf16(x2.x, x2.y);
      qf[kk][3] = pack_bf16(x3.x, x3.y);
    }
  }

  // O as C fragments, dims 8dt ..: {(g, 8dt + 2c), (g, 8dt + 2c + 1), (g + 8, 8dt + 2c), (g + 8, 8dt + 2c + 1)}.
  float o[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;  // running max (log2 units) and this lane's part of the sum

  load_tile<D, C>(a, table, head_off, kv_len, 0, smem, smem + Smem<D>::kTile);
  cp_async_commit();
  for (int kt = 0; kt < n_tiles; ++kt) {
    if (kt + 1 < n_tiles) {  // the next tile's copies fly while this one is used
      __nv_bfloat16* next = smem + ((kt + 1) & 1) * 2 * Smem<D>::kTile;
      load_tile<D, C>(a, table, head_off, kv_len, (kt + 1) * kKeys, next, next + Smem<D>::kTile);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int key0 = kt * kKeys;
    // Every row sees key 0, so a warp's first tile (kt = 0) makes its maxima finite.
    if (warp_live && key0 < warp_last) {
      const __nv_bfloat16* ks = smem + (kt & 1) * 2 * Smem<D>::kTile;
      const __nv_bfloat16* vs = ks + Smem<D>::kTile;
      // S = Q Kᵀ: key block nt (keys 8nt ..) as C fragments. K rows are Kᵀ's columns: ldmatrix matrix i
      // = keys 8nt + 0..7, dims 32kk2 + 8i ..: b0, b1 of chunk 2kk2, then of 2kk2 + 1.
      float sc[kKeys / 8][4];
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
        for (int kk2 = 0; kk2 < D / 32; ++kk2) {
          uint32_t b[4];
          ldmatrix_x4(b, ks + (8 * nt + lane % 8) * Smem<D>::kStride + 32 * kk2 + 8 * (lane / 8));
          mma_bf16(sc[nt], qf[2 * kk2], b[0], b[1]);
          mma_bf16(sc[nt], qf[2 * kk2 + 1], b[2], b[3]);
        }
      }
      // Scaled to log2 units; masked (-inf) only where the tile reaches past a row's last key.
      const bool diagonal = key0 + kKeys > warp_first;
      float mx_a = m_a, mx_b = m_b;
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key0 + 8 * nt + 2 * c + (e & 1);
          sc[nt][e] = diagonal && key >= (e < 2 ? lim_a : lim_b) ? -INFINITY : sc[nt][e] * a.scale_log2;
        }
        mx_a = fmaxf(mx_a, fmaxf(sc[nt][0], sc[nt][1]));
        mx_b = fmaxf(mx_b, fmaxf(sc[nt][2], sc[nt][3]));
      }
      // The four lanes of a quad hold one row's 64 keys between them.
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
      const float corr_a = exp2f(m_a - mx_a), corr_b = exp2f(m_b - mx_b);  // 0 on the first tile (m = -inf)
      m_a = mx_a;
      m_b = mx_b;
      l_a *= corr_a;
      l_b *= corr_b;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][0] *= corr_a;
        o[dt][1] *= corr_a;
        o[dt][2] *= corr_b;
        o[dt][3] *= corr_b;
      }
      // P in bf16 as A fragments of key chunk kc = nt / 2: the C fragment of block 2kc gives a0 (row g)
      // and a1 (row g + 8), that of block 2kc + 1 gives a2 and a3.
      uint32_t pf[kKeys / 16][4];
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
        const float p0 = exp2f(sc[nt][0] - mx_a), p1 = exp2f(sc[nt][1] - mx_a);
        const float p2 = exp2f(sc[nt][2] - mx_b), p3 = exp2f(sc[nt][3] - mx_b);
        l_a += p0 + p1;
        l_b += p2 + p3;
        pf[nt / 2][2 * (nt & 1)] = pack_bf16(p0, p1);
        pf[nt / 2][2 * (nt & 1) + 1] = pack_bf16(p2, p3);
      }
      // O += P V: V rows are keys, so B (keys × dims) comes transposed: ldmatrix.trans matrix i = keys
      // 16kc + 8 (i & 1) + 0..7, dims 16dt2 + 8 (i >> 1) ..: b0, b1 of dim block 2dt2, then of 2dt2 + 1.
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
#pragma unroll
        for (int dt2 = 0; dt2 < D / 16; ++dt2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, vs + (16 * kc + 8 * ((lane / 8) & 1) + lane % 8) * Smem<D>::kStride + 16 * dt2 + 8 * (lane / 16));
          mma_bf16(o[2 * dt2], pf[kc], b[0], b[1]);
          mma_bf16(o[2 * dt2 + 1], pf[kc], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the stage just read is the one the next iteration fills
  }
  if (!warp_live) return;
  l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
  l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
  const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
  float* oa = a.out + (static_cast<int64_t>(q0 + ra) * a.H + h) * D + 2 * c;
  float* ob = a.out + (static_cast<int64_t>(q0 + rb) * a.H + h) * D + 2 * c;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    if (ra < qlen) *reinterpret_cast<float2*>(oa + 8 * dt) = make_float2(o[dt][0] * inv_a, o[dt][1] * inv_a);
    if (rb < qlen) *reinterpret_cast<float2*>(ob + 8 * dt) = make_float2(o[dt][2] * inv_b, o[dt][3] * inv_b);
  }
}

template <int D, typename C>
void launch(const PrefillArgs& a, const AttentionShape& shape) {
  const auto kernel = prefill_kernel<D, C>;
  static const bool sized = [&] {  // above 48 KB of shared memory only on request
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Smem<D>::kBytes), "prefill_kernel attributes");
    return true;
  }();
  (void)sized;
  const dim3 grid(static_cast<unsigned>(shape.H), static_cast<unsigned>(shape.T / kRows + shape.S));
  kernel<<<grid, kThreads, Smem<D>::kBytes, stream()>>>(a);
  check_launch("paged_attention prefill_kernel");
}

bool aligned(const void* p, uintptr_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

}  // namespace

bool prefill_attention_supported(const AttentionShape& shape, const DeviceTensor& q, const DeviceTensor& k_cache,
                                 const DeviceTensor& v_cache, const DeviceTensor& out) {
  // float2 loads of q and stores of out, 16-byte copies of cache rows (their widths are whole 16 bytes as D is).
  return (shape.D == 64 || shape.D == 128) && shape.T / kRows + shape.S < 65536 && aligned(q.data, 8) && aligned(out.data, 8) &&
         aligned(k_cache.data, 16) && aligned(v_cache.data, 16);
}

void paged_attention_prefill(const DeviceTensor& q, const DeviceTensor& k_cache, const DeviceTensor& v_cache, const DeviceTensor& cu_q,
                             const DeviceTensor& kv_lens, const DeviceTensor& block_tables, int num_kv_heads, float scale,
                             DeviceTensor& out, const DeviceTensor* table_stride, const AttentionShape* checked, int min_qlen) {
  const char* op = "paged_attention_prefill";
  const AttentionShape shape =
      checked ? *checked : check_paged_attention(op, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, out, table_stride);
  check(prefill_attention_supported(shape, q, k_cache, v_cache, out), op,
        "no tensor-core kernel for head dim " + std::to_string(shape.D) + " (64 and 128), these rows or this alignment");
  constexpr float kLog2e = 1.4426950408889634f;
  const PrefillArgs a{paged_attention_args(shape, q, k_cache, v_cache, cu_q, kv_lens, block_tables, num_kv_heads, out, table_stride),
                      scale * kLog2e, min_qlen};
  const bool bf16 = k_cache.dtype == DType::BF16;
  if (shape.D == 64) bf16 ? launch<64, __nv_bfloat16>(a, shape) : launch<64, float>(a, shape);
  else bf16 ? launch<128, __nv_bfloat16>(a, shape) : launch<128, float>(a, shape);
}

}  // namespace kt::cuda

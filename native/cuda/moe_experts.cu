// The expert FFN of a MoE layer (moe.h): checks on the host, then a fixed sequence of launches
// whose grids depend on T, k and E only, so that a graph captured at one batch size replays for
// any routing. Up to options().moe_gemv_max_slots slots (T·k) the decode path: the tokens grouped
// by expert (moe_group; single slots need no grouping), q8 activations, the GEMV over the chosen
// experts' rows for gate and up with SwiGLU, again for down, then the weighted combine. Above,
// the prefill path: the same grouping into tiles of 32 or 64 slots, and the grouped tensor-core
// matmul (bf16 operands, f32 sums) for gate and up with SwiGLU, then for down. A token's result is
// the same at every batch size as long as the path is (never split by the routing or batch).
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/gemv_rows.cuh"
#include "cuda/moe.h"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// Up to this many slots each slot is its own tile (no grouping launch): at T = 1 or 2 a shared expert
// is rare, and one chosen twice is read by concurrent blocks, the second time from L2.
constexpr int64_t kDirectSlots = 16;

int gemv_max_slots() { return options().moe_gemv_max_slots < 0 ? 1024 : options().moe_gemv_max_slots; }

// Slots a GEMV tile takes: about twice the average slots per chosen expert (so that most experts fit
// one tile), a power of two up to 8.
int gemv_tile_rows(int64_t slots, int64_t E) {
  const int64_t want = (2 * slots + E - 1) / E;
  return want <= 1 ? 1 : want <= 2 ? 2 : want <= 4 ? 4 : 8;
}

MoeWeight expert_weight(const DeviceTensor& w) {
  const int64_t E = w.shape[0], N = w.shape[1], K = w.shape[2];
  const int64_t rb = row_bytes(*type_traits(w.dtype), K);
  return MoeWeight{w.as<uint8_t>(), w.dtype, rb, N * rb, static_cast<int>(E), static_cast<int>(N), static_cast<int>(K)};
}

// Activations for the GEMV of weight type t: none for plain types (f32 x), else q8 rows (reusing the
// q8_K rows an op wrote beside x where they fit), with their f32 values for types without an int8 dot.
// Returns the f32 rows the kernel reads.
const float* gemv_input(const float* x, int64_t M, int64_t K, DType t, const std::shared_ptr<void>& q8k, ActQ* act,
                        std::shared_ptr<void>* storage) {
  if (gemv_rows::plain_type(t)) return x;
  const bool int8 = gemv_rows::has_dot(t);
  if (int8 && q8k && act_format(t) == ActFormat::Q8_K) {
    *act = q8_view(q8k.get(), M, K, ActFormat::Q8_K);
    return x;
  }
  *act = quantize_activations(x, M, K, act_format(t), !int8, storage);
  return int8 ? x : act->xf;
}

// Pool scratch a kernel must fill: NaN bytes under options().poison, so a row no launch writes fails the
// tests instead of showing another call's leftovers (the pool hands blocks back dirty, last freed first).
std::shared_ptr<void> scratch(size_t nbytes) {
  auto p = pool().alloc(nbytes);
  if (options().poison) check_cuda(cudaMemsetAsync(p.get(), 0xff, nbytes, stream()), "moe scratch: poison fill");
  return p;
}

void run_gemv(const DeviceTensor& x, const DeviceTensor& ids, const MoeWeight& g, const MoeWeight& u, const MoeWeight& d, int64_t T, int k,
              const float* weights, float* out) {
  const int64_t slots = T * k, E = g.E;
  const bool direct = slots <= kDirectSlots;
  const int rows = direct ? 1 : gemv_tile_rows(slots, E);
  std::shared_ptr<void> group;
  MoeTiles tiles;
  if (direct) {
    tiles.direct = true;
    tiles.ids = ids.as<int>();
    tiles.max_tiles = static_cast<int>(slots);
  } else {
    group = pool().alloc(moe_group_bytes(slots, E, rows));
    tiles = moe_group(ids.as<int>(), slots, E, rows, group.get());
  }
  // Scratch from the pool, handed back in stream order after the launches that read it.
  std::shared_ptr<void> qx, qh;
  ActQ ax{}, ah{};
  const float* xin = gemv_input(x.as<float>(), T, g.K, g.type, x.q8k, &ax, &qx);
  auto h = scratch(static_cast<size_t>(slots) * g.N * 4);
  moe_gemv(g, &u, tiles, rows, xin, gemv_rows::plain_type(g.type) ? nullptr : &ax, k, static_cast<float*>(h.get()));
  const float* hin = gemv_input(static_cast<float*>(h.get()), slots, d.K, d.type, nullptr, &ah, &qh);
  auto y = scratch(static_cast<size_t>(slots) * d.N * 4);
  moe_gemv(d, nullptr, tiles, rows, hin, gemv_rows::plain_type(d.type) ? nullptr : &ah, 1, static_cast<float*>(y.get()));
  moe_combine(static_cast<float*>(y.get()), ids.as<int>(), weights, T, k, d.N, E, out);
}

void run_mma(const DeviceTensor& x, const DeviceTensor& ids, const MoeWeight& g, const MoeWeight& u, const MoeWeight& d, int64_t T, int k,
             const float* weights, float* out) {
  const int64_t slots = T * k, E = g.E;
  const int rows = slots >= 48 * E ? 64 : 32;  // 32-slot tiles while experts average fewer than ~48 slots
  auto group = pool().alloc(moe_group_bytes(slots, E, rows));
  const MoeTiles tiles = moe_group(ids.as<int>(), slots, E, rows, group.get());
  auto xb = scratch(static_cast<size_t>(T * g.K) * 2);
  convert_f32_to_bf16(x.as<float>(), xb.get(), T * g.K);
  auto hb = scratch(static_cast<size_t>(slots) * g.N * 2);  // silu(g)·u in bf16: down's operand
  moe_mma(g, &u, tiles, rows, xb.get(), k, hb.get());
  auto y = scratch(static_cast<size_t>(slots) * d.N * 4);
  moe_mma(d, nullptr, tiles, rows, hb.get(), 1, y.get());
  moe_combine(static_cast<float*>(y.get()), ids.as<int>(), weights, T, k, d.N, E, out);
}

}  // namespace

void moe_experts(const DeviceTensor& x, const DeviceTensor& ids, const DeviceTensor& weights, const DeviceTensor& gate,
                 const DeviceTensor& up, const DeviceTensor& down, DeviceTensor& out) {
  const char* op = "moe_experts";
  check(x.dtype == DType::F32 && x.shape.size() == 2, op, "x must be F32 [T, H], got " + x.describe());
  const int64_t T = x.shape[0], H = x.shape[1];
  check(ids.dtype == DType::I32 && ids.shape.size() == 2 && ids.shape[0] == T, op, "ids must be I32 [T, k], got " + ids.describe());
  const int64_t k = ids.shape[1];
  check(weights.dtype == DType::F32 && weights.shape == ids.shape, op, "weights must be F32 " + ids.describe().substr(3) + ", got " + weights.describe());
  check(gate.shape.size() == 3 && gate.shape[2] == H, op, "gate must be [E, I, H = " + std::to_string(H) + "], got " + gate.describe());
  const int64_t E = gate.shape[0], I = gate.shape[1];
  check(up.dtype == gate.dtype && up.shape == gate.shape, op, "up " + up.describe() + " must match gate " + gate.describe());
  check(down.shape.size() == 3 && down.shape[0] == E && down.shape[1] == H && down.shape[2] == I, op,
        "down must be [E, H, I] = [" + std::to_string(E) + ", " + std::to_string(H) + ", " + std::to_string(I) + "], got " + down.describe());
  check(out.dtype == DType::F32 && out.numel() == T * H, op, "out " + out.describe() + " is not F32 [T, H]");
  check(E >= 1 && E <= 512 && k >= 1 && k <= 64, op, "at most 512 experts and 64 slots a token");
  check(T * k < (1LL << 30) && I < (1LL << 31) && H % 4 == 0, op, "shape too large, or H not a multiple of 4");
  if (ids.has_host_copy())
    for (int32_t id : ids.host_i32) check(id >= 0 && id < E, op, "expert id " + std::to_string(id) + " outside [0, " + std::to_string(E) + ")");
  if (T == 0) return;
  const MoeWeight g = expert_weight(gate), u = expert_weight(up), d = expert_weight(down);
  const bool gemv_ok = moe_gemv_supported(gate.dtype, H) && moe_gemv_supported(down.dtype, I);
  const bool mma_ok = moe_mma_supported(gate.dtype, H) && moe_mma_supported(down.dtype, I);
  check(gemv_ok || mma_ok, op, "no CUDA kernel for experts " + gate.describe() + " / " + down.describe() + " (type, or rows not whole blocks)");
  const int kk = static_cast<int>(k);
  if (gemv_ok && (T * k <= gemv_max_slots() || !mma_ok)) return run_gemv(x, ids, g, u, d, T, kk, weights.as<float>(), out.as<float>());
  run_mma(x, ids, g, u, d, T, kk, weights.as<float>(), out.as<float>());
}

}  // namespace kt::cuda

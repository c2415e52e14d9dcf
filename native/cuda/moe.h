// Mixture-of-experts ops on the device (the contract: notes/moe-contract.md, issue 14): routing
// (moe_route.cu) and the expert FFN over the selected experts of 3-D weight tensors
// (moe_experts.cu, which drives the pieces below). Nothing here synchronises with the host or
// sizes a launch from the routing: the routing is decided on the device, and both run inside
// captured CUDA graphs, each launch's grid fixed by T, k and E alone.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/device_tensor.h"
#include "cuda/quantize_act.h"

namespace kt::cuda {

struct MoeRouteSpec {
  bool sigmoid = false;  // else softmax over all E
  int top_k = 1;
  int num_groups = 1;     // 1: no groups
  int top_k_groups = 1;
  bool top2sum = false;   // group score: the sum of its two largest choice scores, else their max
  bool normalize = false;
  float scale = 1.f;
};

// ids I32 [T, k], weights F32 [T, k] from logits F32 [T, E] (bias F32 [E] or null: for choosing only).
void moe_route(const DeviceTensor& logits, const DeviceTensor* bias, const MoeRouteSpec& spec, DeviceTensor& ids, DeviceTensor& weights);

// out F32 [T, H] = sum over j of weights[t, j] · down[e] · (silu(gate[e] · x_t) · (up[e] · x_t)), e = ids[t, j].
// Ids with a host copy (uploaded) are checked here: one outside [0, E) throws std::invalid_argument.
// Ids written on the device (moe_route) cannot be checked without a sync: an out-of-range one there
// adds nothing (its slot is skipped by every kernel) rather than reading outside the weights.
void moe_experts(const DeviceTensor& x, const DeviceTensor& ids, const DeviceTensor& weights, const DeviceTensor& gate,
                 const DeviceTensor& up, const DeviceTensor& down, DeviceTensor& out);

// ---- the pieces of moe_experts ----

// The assignments (t, j) of a batch (slot a = t·k + j) grouped by expert on the device: `list` holds
// the slots of expert 0, then expert 1, ..., each in increasing slot order (slots with an id outside
// [0, E) are left out); tiles[i] = (expert, first list index, rows ≤ tile_rows) cuts each expert's run
// into tiles of tile_rows; *count = the number of tiles. At most moe_max_tiles() tiles, a bound from
// T·k and E alone, so that a kernel's grid can cover every tile whatever the routing.
struct MoeTiles {
  const int* list = nullptr;  // [slots]
  const int4* tiles = nullptr;
  const int* count = nullptr;
  int max_tiles = 0;
  // No grouping (few slots): tile a is slot a alone, its expert read from ids; list, tiles, count unused.
  bool direct = false;
  const int* ids = nullptr;
};
inline int64_t moe_max_tiles(int64_t slots, int64_t E, int64_t tile_rows) {
  return slots / tile_rows + (slots < E ? slots : E);
}
// Fills list, tiles and count in `scratch` (moe_group_bytes(slots, E, tile_rows) bytes); one launch.
size_t moe_group_bytes(int64_t slots, int64_t E, int64_t tile_rows);
MoeTiles moe_group(const int* ids, int64_t slots, int64_t E, int tile_rows, void* scratch);

// One projection of E experts: each N rows of K elements, expert e's at w + e·expert_bytes.
struct MoeWeight {
  const uint8_t* w;
  DType type;
  int64_t row_bytes, expert_bytes;
  int E, N, K;
};

// Decode (moe_gemv.cu): the GEMV over the tiles' experts, MT = tile_rows ∈ {1, 2, 4, 8} slots a
// block. Activation row of slot a: a / act_div (x's token for gate and up, the slot itself for down).
// silu_mul: gate and up (same type and shape), out[a, n] = silu(x·gate_n) · (x·up_n), else out[a, n] = x·w_n.
// x: f32 rows (plain types; q8-dequantized values where the type has no int8 dot), act: their q8 rows.
bool moe_gemv_supported(DType t, int64_t K);
void moe_gemv(const MoeWeight& w, const MoeWeight* up, const MoeTiles& tiles, int tile_rows, const float* x, const ActQ* act,
              int act_div, float* out);

// Prefill (moe_mma.cu): the same products on the tensor cores, bf16 activations xb and weights
// dequantized to bf16 tile by tile in shared memory, f32 sums; tile_rows 32 or 64. silu_mul writes
// out as bf16 (the down projection's input), else f32.
bool moe_mma_supported(DType t, int64_t K);
void moe_mma(const MoeWeight& w, const MoeWeight* up, const MoeTiles& tiles, int tile_rows, const void* xb, int act_div, void* out);

// out[t] = sum over j = 0..k-1 in order of weights[t, j] · y[t·k + j] (y [T·k, H]); slots with an id
// outside [0, E) add nothing.
void moe_combine(const float* y, const int* ids, const float* weights, int64_t T, int k, int64_t H, int64_t E, float* out);

}  // namespace kt::cuda

// Activation rows quantized on the device to a weight type's q8 format (llama.cpp's vec_dot
// type), with the CPU's rounding rules (native/cpu/matmul.cpp), for the int8 GEMV kernels.
#pragma once
#include <cstdint>
#include <memory>

#include "cpu/dtype.h"

namespace kt::cuda {

enum class ActFormat : uint8_t { Q8_0, Q8_1, Q8_K };  // 32, 32 (+ scaled sums) or 256 per block

// ggml's vec_dot type of a quantized weight type (as cpu/matmul.cpp's quant_kind).
ActFormat act_format(DType wt);
inline int act_block(ActFormat f) { return f == ActFormat::Q8_K ? 256 : 32; }

// Device views of M quantized rows of K: codes row m at q + m*K; block scales d (fp16-rounded
// for q8_0/q8_1) row m at d + m*(K/block); q8_1 only: s = fp16(d_unrounded * sum of codes);
// xf (when asked for): the dequantized values d * q as f32, for kernels without int8 dots.
struct ActQ {
  const int8_t* q;
  const float* d;
  const float* s;
  const float* xf;
  int64_t blocks;  // per row
};

// Bytes of codes and scales (no sums, no xf) for M rows of K in format f, and the view of them at
// base in the layout quantize_activations uses.
size_t q8_storage_bytes(int64_t M, int64_t K, ActFormat f);
ActQ q8_view(void* base, int64_t M, int64_t K, ActFormat f);

// Quantizes x [M, K] (K a multiple of the block) into `storage` (allocated from the pool,
// released in stream order with the last reference) on stream().
ActQ quantize_activations(const float* x, int64_t M, int64_t K, ActFormat f, bool want_xf, std::shared_ptr<void>* storage);

}  // namespace kt::cuda

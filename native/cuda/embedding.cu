// Embedding lookup: out[t, :] = row ids[t] of the table, dequantized (any weight type).
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"

namespace kt::cuda {

namespace {

// One block per token; an id outside the table (possible only without a host copy to check)
// gives a NaN row rather than a read out of bounds.
template <DType T>
__global__ void embedding_kernel(const uint8_t* __restrict__ table, int64_t row_bytes, int64_t V, const int32_t* __restrict__ ids,
                                 int D, float* __restrict__ out) {
  using Q = Quant<T>;
  constexpr int kPiecesPerBlock = Q::kBlockElems / Q::kPiece;
  const int id = ids[blockIdx.x];
  float* o = out + static_cast<int64_t>(blockIdx.x) * D;
  if (id < 0 || id >= V) {
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = __int_as_float(0x7fffffff);
    return;
  }
  const uint8_t* row = table + id * row_bytes;
  for (int p = threadIdx.x; p < D / Q::kPiece; p += blockDim.x) {
    float y[Q::kPiece];
    Q::piece(row + static_cast<int64_t>(p / kPiecesPerBlock) * Q::kBlockBytes, p % kPiecesPerBlock, y);
#pragma unroll
    for (int i = 0; i < Q::kPiece; ++i) o[p * Q::kPiece + i] = y[i];
  }
}

struct EmbeddingLaunch {
  const DeviceTensor& table;
  const DeviceTensor& ids;
  DeviceTensor& out;

  template <DType T>
  void run() const {
    const int64_t V = table.shape[0], D = table.shape[1];
    embedding_kernel<T><<<static_cast<unsigned>(ids.numel()), 128, 0, stream()>>>(
        table.as<uint8_t>(), row_bytes(*type_traits(table.dtype), D), V, ids.as<int32_t>(), static_cast<int>(D), out.as<float>());
    check_launch("embedding_kernel");
  }
};

}  // namespace

void embedding(const DeviceTensor& table, const DeviceTensor& ids, DeviceTensor& out) {
  const char* op = "embedding";
  check(table.shape.size() == 2, op, "table must be 2-D, got " + table.describe());
  check(ids.dtype == DType::I32, op, "ids must be I32, got " + ids.describe());
  check(out.dtype == DType::F32, op, "out must be F32, got " + out.describe());
  const int64_t V = table.shape[0], D = table.shape[1], T = ids.numel();
  check(out.numel() == T * D, op, "out " + out.describe() + " does not hold " + std::to_string(T) + " rows of " + std::to_string(D));
  check(rows_fit_pieces(table.dtype, D), op, "no CUDA kernel for table " + table.describe());
  if (ids.has_host_copy())
    for (int32_t id : ids.host_i32) check(id >= 0 && id < V, op, "token id " + std::to_string(id) + " outside vocabulary of " + std::to_string(V));
  if (T == 0) return;
  dispatch_quant(table.dtype, EmbeddingLaunch{table, ids, out});
}

}  // namespace kt::cuda

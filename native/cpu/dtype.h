// Element types of tensors, numbered as GGML numbers them so GGUF type ids pass through unchanged.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kt {

enum class DType : int32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct TypeTraits {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
};

// Returns nullptr for a type id ktserve does not know.
const TypeTraits* type_traits(DType t);

inline int64_t row_bytes(const TypeTraits& tr, int64_t n) { return n / tr.block_elems * tr.block_bytes; }

}  // namespace kt

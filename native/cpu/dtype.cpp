#include "cpu/dtype.h"

namespace kt {

const TypeTraits* type_traits(DType t) {
  static const TypeTraits f32{"F32", 1, 4}, f16{"F16", 1, 2}, bf16{"BF16", 1, 2}, f64{"F64", 1, 8},
      i8{"I8", 1, 1}, i16{"I16", 1, 2}, i32{"I32", 1, 4}, i64{"I64", 1, 8},
      q4_0{"Q4_0", 32, 18}, q4_1{"Q4_1", 32, 20}, q5_0{"Q5_0", 32, 22}, q5_1{"Q5_1", 32, 24},
      q8_0{"Q8_0", 32, 34}, q8_1{"Q8_1", 32, 36}, q2_k{"Q2_K", 256, 84}, q3_k{"Q3_K", 256, 110},
      q4_k{"Q4_K", 256, 144}, q5_k{"Q5_K", 256, 176}, q6_k{"Q6_K", 256, 210}, q8_k{"Q8_K", 256, 292};
  switch (t) {
    case DType::F32: return &f32;
    case DType::F16: return &f16;
    case DType::BF16: return &bf16;
    case DType::F64: return &f64;
    case DType::I8: return &i8;
    case DType::I16: return &i16;
    case DType::I32: return &i32;
    case DType::I64: return &i64;
    case DType::Q4_0: return &q4_0;
    case DType::Q4_1: return &q4_1;
    case DType::Q5_0: return &q5_0;
    case DType::Q5_1: return &q5_1;
    case DType::Q8_0: return &q8_0;
    case DType::Q8_1: return &q8_1;
    case DType::Q2_K: return &q2_k;
    case DType::Q3_K: return &q3_k;
    case DType::Q4_K: return &q4_k;
    case DType::Q5_K: return &q5_k;
    case DType::Q6_K: return &q6_k;
    case DType::Q8_K: return &q8_k;
  }
  return nullptr;
}

}  // namespace kt

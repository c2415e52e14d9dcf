// Which SIMD kernels this CPU can run, decided once at run time (KT_SIMD=scalar|avx2|avx512 caps it).
#pragma once

namespace kt {

enum class SimdLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);

}  // namespace kt

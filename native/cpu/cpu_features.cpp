#include "cpu/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace kt {

static SimdLevel detect() {
  SimdLevel best = SimdLevel::Scalar;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) best = SimdLevel::Avx2;
  if (best == SimdLevel::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
    best = SimdLevel::Avx512;
#endif
  const char* cap = std::getenv("KT_SIMD");
  if (cap) {
    SimdLevel want = !std::strcmp(cap, "scalar") ? SimdLevel::Scalar : !std::strcmp(cap, "avx2") ? SimdLevel::Avx2 : best;
    if (want < best) best = want;
  }
  return best;
}

SimdLevel simd_level() {
  static const SimdLevel level = detect();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Scalar: return "scalar";
  }
  return "scalar";
}

}  // namespace kt

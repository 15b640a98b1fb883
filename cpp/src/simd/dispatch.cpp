// Run-time choice of the instruction set for the tile products (see products.hpp).
#include <cstdlib>
#include <cstring>

#include "metaglasso/common.hpp"
#include "products.hpp"

namespace metaglasso::detail::simd {

namespace {

// Widest variant this CPU and operating system run: 2 = AVX-512 (F, DQ, BW, VL), 1 = AVX2,
// 0 = baseline. __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
int supported_level() {
#ifdef METAGLASSO_SIMD_X86
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return avx512 ? 2 : avx2 ? 1 : 0;
#else
  return 0;
#endif
}

// Level named by METAGLASSO_SIMD, or the widest level when unset or unrecognised.
int requested_level() {
  const char* env = std::getenv("METAGLASSO_SIMD");
  if (env == nullptr) return 2;
  if (std::strcmp(env, "baseline") == 0) return 0;
  if (std::strcmp(env, "avx2") == 0) return 1;
  return 2;
}

Products choose() {
  const int level = supported_level() < requested_level() ? supported_level() : requested_level();
#ifdef METAGLASSO_SIMD_X86
  if (level == 2) return products_avx512();
  if (level == 1) return products_avx2();
#endif
  (void)level;
  return products_baseline();
}

}  // namespace

const Products& products() {
  static const Products chosen = choose();
  return chosen;
}

}  // namespace metaglasso::detail::simd

namespace metaglasso {

const char* simd_instruction_set() { return detail::simd::products().name; }

}  // namespace metaglasso

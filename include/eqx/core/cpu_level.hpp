#pragma once
// cpu_isa_level: the best x86-64 micro-architecture level (x86-64-v2, -v3,
// -v4) the running CPU has. One definition, used by eqx::build_info() and by
// CMake's EQX_KERNELS_ISA=auto probe (which compiles this header alone), so
// the level eqx::kernels is built for and the level reported at run time
// are decided by the same feature list.
//
//   eqx::detail::cpu_isa_level() == "x86-64-v4"  // on an AVX-512 machine

#include <string>

namespace eqx::detail {

/// The best x86-64 level of the running CPU: "x86-64-v4", "x86-64-v3",
/// "x86-64-v2", "baseline", or "not x86-64".
inline std::string cpu_isa_level() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
                  __builtin_cpu_supports("ssse3");
  const bool v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  return v4 ? "x86-64-v4" : v3 ? "x86-64-v3" : v2 ? "x86-64-v2" : "baseline";
#else
  return "not x86-64";
#endif
}

}  // namespace eqx::detail

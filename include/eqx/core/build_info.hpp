#pragma once
// build_info: which instruction set the kernels run, on which GEMM backend,
// and whether they come from eqx::kernels or from the headers.
//
// Speed depends on these more than on anything in a model: Eigen picks its
// SIMD width when the kernels are compiled (SSE2 unless told otherwise, a
// quarter of what an AVX-512 core can do), and the faster GEMM backend
// depends on the CPU. eqx::kernels is compiled for the build machine's
// x86-64 level (CMake option EQX_KERNELS_ISA) and checks at start-up that
// the CPU has it, printing what is missing instead of dying on SIGILL. A
// header-only build runs what its own flags allow: compile with
// -march=x86-64-v3 (AVX2+FMA) or -march=x86-64-v4 (AVX-512) where the
// program's CPUs have them.
//
//   fmt::print("{}\n", eqx::build_info().summary());

#include <string>

#include "eqx/core/config.hpp"
#include "eqx/core/cpu_level.hpp"
#include "eqx/prim/gemm_policy.hpp"

namespace eqx {

/// What this build runs; see eqx::build_info().
struct BuildInfo {
  std::string kernels;  ///< "eqx::kernels", "EQX_KERNELS_IMPLEMENTATION" (one file of the program) or "header-only"
  std::string isa;      ///< the x86-64 level the kernels were compiled for, e.g. "x86-64-v4"
  std::string simd;     ///< the SIMD sets the kernels are compiled for, e.g. "AVX512F, AVX512BW, ..., AVX2, FMA, AVX, ..."
  std::string cpu;      ///< the best x86-64 level this CPU has
  std::string gemm;     ///< "auto (OpenBLAS or Eigen, by timing per shape)", "eigen" or "blas"

  /// One line: `kernels: eqx::kernels, isa: x86-64-v4 (cpu x86-64-v4), simd: ..., gemm: ...`.
  std::string summary() const {
    return "kernels: " + kernels + ", isa: " + isa + " (cpu " + cpu + "), simd: " + simd + ", gemm: " + gemm;
  }
};

namespace detail {

/// The level the current translation unit is compiled for, from its macros.
inline std::string compiled_isa_level() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
  return "x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
  return "x86-64-v3";
#elif defined(__SSE4_2__) && defined(__POPCNT__)
  return "x86-64-v2";
#else
  return "baseline";
#endif
}

/// The SIMD instruction sets the current translation unit is compiled for,
/// widest first, from the compiler's macros (Eigen uses each of them; its
/// own SimdInstructionSetsInUse() does not tell AVX from AVX2+FMA).
inline std::string compiled_simd() {
  std::string sets;
  auto add = [&](const char* name) { sets += (sets.empty() ? "" : ", ") + std::string(name); };
#if defined(__AVX512F__)
  add("AVX512F");
#endif
#if defined(__AVX512BW__)
  add("AVX512BW");
#endif
#if defined(__AVX512DQ__)
  add("AVX512DQ");
#endif
#if defined(__AVX512VL__)
  add("AVX512VL");
#endif
#if defined(__AVX2__)
  add("AVX2");
#endif
#if defined(__FMA__)
  add("FMA");
#endif
#if defined(__AVX__)
  add("AVX");
#endif
#if defined(__SSE4_2__)
  add("SSE4.2");
#endif
#if defined(__SSE4_1__)
  add("SSE4.1");
#endif
#if defined(__SSSE3__)
  add("SSSE3");
#endif
#if defined(__SSE3__)
  add("SSE3");
#endif
#if defined(__SSE2__)
  add("SSE2");
#endif
#if defined(__ARM_NEON)
  add("NEON");
#endif
  return sets.empty() ? "none" : sets;
}

/// The message a CPU without the kernels' ISA gets. Usage:
/// `isa_error_message("x86-64-v4", " avx512f avx512bw")`.
inline std::string isa_error_message(const std::string& isa, const std::string& missing) {
  return "eqx: this program's eqx::kernels were compiled for " + isa + ", but this CPU (" + cpu_isa_level() +
         ") lacks:" + missing +
         ". Rebuild eqx::kernels on this machine, or configure eqx with -DEQX_KERNELS_ISA=baseline "
         "(runs anywhere) or the level this CPU has.\n";
}

inline std::string gemm_policy_name() {
  if (!kHaveBlas) return "eigen (no BLAS in this build)";
  switch (gemm_policy_slot()) {
    case GemmPolicy::eigen: return "eigen (EQX_GEMM=eigen)";
    case GemmPolicy::blas: return "blas (EQX_GEMM=blas)";
    default: return "auto (OpenBLAS or Eigen, by timing per shape)";
  }
}

#if defined(EQX_COMPILED_KERNELS)
// Defined where the kernels are compiled: in eqx::kernels (its ISA check and
// its DOT family, compiled with the kernels' flags), or in the program's
// EQX_KERNELS_IMPLEMENTATION file.
std::string kernels_origin();
std::string kernels_isa_level();
std::string kernels_simd();
#else
inline std::string kernels_origin() { return "header-only"; }
inline std::string kernels_isa_level() { return compiled_isa_level(); }
inline std::string kernels_simd() { return compiled_simd(); }
#endif

#if defined(EQX_COMPILED_KERNELS) && EQX_KERNELS_HERE(DOT)
std::string kernels_simd() { return compiled_simd(); }
#endif
#if defined(EQX_KERNELS_IMPLEMENTATION)  // compiled with the program's own flags
std::string kernels_origin() { return "EQX_KERNELS_IMPLEMENTATION"; }
std::string kernels_isa_level() { return compiled_isa_level(); }
#endif

}  // namespace detail

/// What this build runs: kernels mode, ISA, SIMD, the CPU's level and the
/// GEMM policy. Usage: `fmt::print("{}\n", eqx::build_info().summary());`
inline BuildInfo build_info() {
  return {detail::kernels_origin(), detail::kernels_isa_level(), detail::kernels_simd(), detail::cpu_isa_level(),
          detail::gemm_policy_name()};
}

}  // namespace eqx

// eqx::kernels' start-up check (compiled for the baseline, in its own TU of
// the library, with EQX_KERNELS_NEED_<FEATURE> for each feature its -march
// level implies). Each family's TU references eqx_kernels_isa_guard
// through EQX_KERNELS_REFERENCE_ISA_CHECK, so the check is linked, and runs
// before main, in every program that uses a kernel.
#define EQX_KERNELS_REFERENCE_ISA_CHECK(family)         \
  extern "C" const int eqx_kernels_isa_guard;           \
  [[gnu::used]] static const int* const eqx_kernels_isa_guard_ref_##family = &eqx_kernels_isa_guard;

#if defined(EQX_KERNELS_ISA_CHECK)
#include <cstdio>
#include <cstdlib>

namespace eqx::detail {

std::string kernels_origin() { return "eqx::kernels"; }
std::string kernels_isa_level() { return EQX_KERNELS_ISA; }

/// The features of the kernels' level this CPU lacks, each after a space.
inline std::string missing_kernel_features() {
  std::string missing;
#if defined(__x86_64__)
  __builtin_cpu_init();
#define EQX_CHECK_FEATURE(name) \
  if (!__builtin_cpu_supports(name)) missing += " " name;
#if defined(EQX_KERNELS_NEED_SSSE3)
  EQX_CHECK_FEATURE("ssse3")
#endif
#if defined(EQX_KERNELS_NEED_SSE4_1)
  EQX_CHECK_FEATURE("sse4.1")
#endif
#if defined(EQX_KERNELS_NEED_SSE4_2)
  EQX_CHECK_FEATURE("sse4.2")
#endif
#if defined(EQX_KERNELS_NEED_POPCNT)
  EQX_CHECK_FEATURE("popcnt")
#endif
#if defined(EQX_KERNELS_NEED_AVX)
  EQX_CHECK_FEATURE("avx")
#endif
#if defined(EQX_KERNELS_NEED_AVX2)
  EQX_CHECK_FEATURE("avx2")
#endif
#if defined(EQX_KERNELS_NEED_FMA)
  EQX_CHECK_FEATURE("fma")
#endif
#if defined(EQX_KERNELS_NEED_BMI)
  EQX_CHECK_FEATURE("bmi")
#endif
#if defined(EQX_KERNELS_NEED_BMI2)
  EQX_CHECK_FEATURE("bmi2")
#endif
#if defined(EQX_KERNELS_NEED_AVX512F)
  EQX_CHECK_FEATURE("avx512f")
#endif
#if defined(EQX_KERNELS_NEED_AVX512BW)
  EQX_CHECK_FEATURE("avx512bw")
#endif
#if defined(EQX_KERNELS_NEED_AVX512CD)
  EQX_CHECK_FEATURE("avx512cd")
#endif
#if defined(EQX_KERNELS_NEED_AVX512DQ)
  EQX_CHECK_FEATURE("avx512dq")
#endif
#if defined(EQX_KERNELS_NEED_AVX512VL)
  EQX_CHECK_FEATURE("avx512vl")
#endif
#undef EQX_CHECK_FEATURE
#endif
  return missing;
}

inline int check_kernels_isa() {
  const std::string missing = missing_kernel_features();
  if (!missing.empty()) {
    std::fputs(isa_error_message(EQX_KERNELS_ISA, missing).c_str(), stderr);
    std::abort();
  }
  return 1;
}

}  // namespace eqx::detail

extern "C" const int eqx_kernels_isa_guard = eqx::detail::check_kernels_isa();
#endif

// Tests for eqx::build_info and the kernels' ISA check message (core/build_info.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "eqx/core/build_info.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace core_build_info_test {

using Catch::Contains;

namespace {

int level_rank(const std::string& level) {
  const std::vector<std::string> order{"baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  auto it = std::find(order.begin(), order.end(), level);
  return it == order.end() ? -1 : static_cast<int>(it - order.begin());
}

}  // namespace

TEST_CASE("build_info names the kernels' mode, ISA, SIMD and GEMM policy, and the CPU runs that ISA", "[build_info]") {
  const eqx::BuildInfo info = eqx::build_info();
#if defined(EQX_COMPILED_KERNELS)
  CHECK(info.kernels == "eqx::kernels");
#else
  CHECK(info.kernels == "header-only");
#endif
  REQUIRE(level_rank(info.isa) >= 0);
  REQUIRE(level_rank(info.cpu) >= 0);
  // This process is running the kernels, so the CPU has at least their level.
  CHECK(level_rank(info.cpu) >= level_rank(info.isa));
  // The instruction sets the kernels were compiled with, as the level implies.
  CHECK_THAT(info.simd, Contains("SSE2"));
  if (level_rank(info.isa) >= 2) CHECK_THAT(info.simd, Contains("AVX2, FMA, AVX"));
  if (level_rank(info.isa) >= 3) CHECK_THAT(info.simd, Contains("AVX512F, AVX512BW, AVX512DQ, AVX512VL"));
  if (level_rank(info.isa) < 3) CHECK_THAT(info.simd, !Contains("AVX512"));
  if (std::getenv("EQX_GEMM") == nullptr) {
    if (eqx::detail::kHaveBlas) CHECK(info.gemm == "auto (OpenBLAS or Eigen, by timing per shape)");
    else CHECK(info.gemm == "eigen (no BLAS in this build)");
  }
  CHECK(info.summary() == "kernels: " + info.kernels + ", isa: " + info.isa + " (cpu " + info.cpu +
                              "), simd: " + info.simd + ", gemm: " + info.gemm);
}

TEST_CASE("a CPU without the kernels' ISA is told what it lacks and how to rebuild", "[build_info]") {
  const std::string msg = eqx::detail::isa_error_message("x86-64-v4", " avx512f avx512bw");
  CHECK_THAT(msg, Contains("eqx::kernels were compiled for x86-64-v4"));
  CHECK_THAT(msg, Contains("lacks: avx512f avx512bw."));
  CHECK_THAT(msg, Contains("-DEQX_KERNELS_ISA=baseline"));
  CHECK_THAT(msg, Contains("this CPU (" + eqx::detail::cpu_isa_level() + ")"));
}

}  // namespace core_build_info_test

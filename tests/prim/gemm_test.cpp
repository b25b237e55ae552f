// Tests for the GEMM backends and their per-shape choice (prim/gemm.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eqx/core/error.hpp"
#include "eqx/prim/gemm.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace prim_gemm_test {

using Catch::Contains;
using eqx::detail::GemmPolicy;

namespace {

/// Restores the process's GEMM policy when a test ends.
struct PolicyScope {
  GemmPolicy saved = eqx::detail::gemm_policy_slot();
  explicit PolicyScope(GemmPolicy p) { eqx::detail::gemm_policy_slot() = p; }
  ~PolicyScope() { eqx::detail::gemm_policy_slot() = saved; }
};

/// A row-major [rows, cols] matrix with leading dimension ld >= cols (the
/// padding holds NaN, which must never be read), values from a small formula.
template <class T>
std::vector<T> matrix(std::int64_t rows, std::int64_t cols, std::int64_t ld, int seed) {
  std::vector<T> m(static_cast<std::size_t>(rows * ld), T(NAN));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m[r * ld + c] = T(((r * 7 + c * 3 + seed) % 11) - 5) / T(4);
  return m;
}

/// op(A) op(B) in double, the obvious triple loop.
template <class T>
std::vector<double> reference(const eqx::detail::GemmArgs<T>& g) {
  std::vector<double> c(static_cast<std::size_t>(g.m * g.n), 0.0);
  for (std::int64_t i = 0; i < g.m; ++i)
    for (std::int64_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < g.k; ++p) {
        const double a = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const double b = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        s += a * b;
      }
      c[i * g.n + j] = s;
    }
  return c;
}

/// Stored shapes: A is [m, k] or [k, m]; B is [k, n] or [n, k]; A and B
/// padded by 3 and C by 2 per row, or (`padded` false) contiguous, as an
/// Array's data is: a vector operand then has unit stride, which the
/// matrix-vector paths require.
template <class T>
void check_shape(std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, bool padded = true) {
  INFO("m=" << m << " n=" << n << " k=" << k << " trans_a=" << ta << " trans_b=" << tb << " padded=" << padded);
  const std::int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  const std::int64_t pad_ab = padded ? 3 : 0, ldc = n + (padded ? 2 : 0);
  auto a = matrix<T>(a_rows, a_cols, a_cols + pad_ab, 1), b = matrix<T>(b_rows, b_cols, b_cols + pad_ab, 2);
  std::vector<T> c(static_cast<std::size_t>(m * ldc), T(-7));
  eqx::detail::GemmArgs<T> g{a.data(), a_cols + pad_ab, ta, b.data(), b_cols + pad_ab, tb, c.data(), ldc, m, n, k};
  eqx::detail::gemm(g, /*parallel=*/true);
  const std::vector<double> want = reference(g);
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j)
      if (std::abs(c[i * ldc + j] - want[i * n + j]) > 1e-4 * (1 + std::abs(want[i * n + j]))) ++bad;
    for (std::int64_t j = n; j < ldc; ++j)
      if (c[i * ldc + j] != T(-7)) ++bad;  // padding of C untouched
  }
  CHECK(bad == 0);
  // The same shape again (now decided, under auto) gives the same bits.
  std::vector<T> again(c.size(), T(-7));
  g.c = again.data();
  eqx::detail::gemm(g, /*parallel=*/true);
  CHECK(again == c);
}

template <class T>
void check_all_shapes() {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_shape<T>(1, 1, 1, ta, tb);
      check_shape<T>(3, 5, 7, ta, tb);
      check_shape<T>(1, 64, 33, ta, tb);   // one row: a matrix-vector product
      check_shape<T>(65, 1, 33, ta, tb);   // one column: a layer applied to one example
      check_shape<T>(1, 64, 33, ta, tb, /*padded=*/false);  // the same, contiguous
      check_shape<T>(65, 1, 33, ta, tb, /*padded=*/false);
      check_shape<T>(1024, 1, 600, ta, tb, /*padded=*/false);  // rows split across 2 threads
      check_shape<T>(1, 1, 5, ta, tb, /*padded=*/false);
      check_shape<T>(37, 65, 129, ta, tb);
      check_shape<T>(130, 70, 300, ta, tb);  // enough rows to split across threads
      check_shape<T>(4, 6, 0, ta, tb);       // empty contraction: zeros
      check_shape<T>(1, 6, 0, ta, tb);
    }
}

}  // namespace

TEST_CASE("GEMM: every policy, transpose and leading dimension matches a float64 triple loop", "[gemm][threads]") {
  std::vector<GemmPolicy> policies{GemmPolicy::automatic, GemmPolicy::eigen};
  if (eqx::detail::kHaveBlas) policies.push_back(GemmPolicy::blas);
  for (GemmPolicy p : policies) {
    PolicyScope scope(p);
    INFO("policy " << static_cast<int>(p));
    check_all_shapes<float>();
    check_all_shapes<double>();
    check_all_shapes<std::int32_t>();  // integers always run on Eigen
  }
}

TEST_CASE("GEMM auto policy: one timed decision per shape and thread count, kept for the process", "[gemm]") {
  PolicyScope scope(GemmPolicy::automatic);
  auto& choices = eqx::detail::GemmChoices::instance();
  choices.clear();
  check_shape<float>(48, 40, 56, false, true);
  check_shape<double>(48, 40, 56, false, true);
  const auto decisions = choices.all();
  if (!eqx::detail::kHaveBlas) {
    CHECK(decisions.empty());  // nothing to choose between: every product ran on Eigen
    return;
  }
  REQUIRE(decisions.size() == 2);
  for (const auto& d : decisions) {
    CHECK(d.key.m == 48);
    CHECK(d.key.n == 40);
    CHECK(d.key.k == 56);
    CHECK((d.key.flags & 3) == 2);  // B transposed
    CHECK(d.key.threads >= 1);
    CHECK(d.eigen_seconds > 0);
    CHECK(d.blas_seconds > 0);
    CHECK((d.backend == eqx::detail::GemmBackend::blas) == (d.blas_seconds < d.eigen_seconds));
  }
  CHECK(((decisions[0].key.flags ^ decisions[1].key.flags) & 4) == 4);  // one float, one double
}

TEST_CASE("EQX_GEMM accepts eigen, blas and auto, and names the choices otherwise", "[gemm]") {
  CHECK(eqx::detail::parse_gemm_policy("auto") == GemmPolicy::automatic);
  CHECK(eqx::detail::parse_gemm_policy("eigen") == GemmPolicy::eigen);
  if (eqx::detail::kHaveBlas) CHECK(eqx::detail::parse_gemm_policy("blas") == GemmPolicy::blas);
  else
    REQUIRE_THROWS_WITH(eqx::detail::parse_gemm_policy("blas"),
                        Contains("EQX_GEMM=blas, but this build of eqx has no BLAS"));
  REQUIRE_THROWS_AS(eqx::detail::parse_gemm_policy("fast"), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::detail::parse_gemm_policy("fast"),
                      "EQX_GEMM must be 'eigen', 'blas' or 'auto', got 'fast'; unset it to choose per shape by timing");
}

}  // namespace prim_gemm_test

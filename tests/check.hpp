#pragma once
// Shared assertion for array results: shape, dtype and every value in one
// CHECK, reporting the first mismatch (and all values of small arrays).

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <eqx/eqx.hpp>

namespace eqx_test {

/// Requires `a` to have exactly this shape, the dtype of T, and these values:
/// integers and bools exactly, float32 to Catch's default Approx, float64 to
/// 1e-12 relative; a NaN in `want` requires a NaN.
template <class T>
void check(const eqx::Array& a, const eqx::Shape& shape, const std::vector<T>& want,
           std::source_location loc = std::source_location::current()) {
  INFO("checked at line " << loc.line());
  REQUIRE(a.shape().str() == shape.str());
  REQUIRE(std::string(eqx::dtype_name(a.dtype())) == std::string(eqx::dtype_name(eqx::dtype_of<T>())));
  std::vector<T> got = a.to_vector<T>();
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    bool ok;
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(want[i])) ok = std::isnan(got[i]);
      else if constexpr (std::is_same_v<T, double>) ok = got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-15);
      else ok = got[i] == Approx(want[i]);
    } else {
      ok = got[i] == want[i];
    }
    if (!ok && bad++ == 0) first = i;
  }
  std::string msg;
  if (bad) {
    msg = std::to_string(bad) + " mismatches; first at flat index " + std::to_string(first) + ": got " +
          std::to_string(+got[first]) + ", want " + std::to_string(+want[first]);
    if (got.size() <= 64) {
      msg += "; all values: ";
      for (T g : got) msg += std::to_string(+g) + " ";
    }
  }
  INFO(msg);
  CHECK(bad == 0);
}

/// start, start+1, ... as T, in `shape`.
template <class T = float>
eqx::Array seq(const eqx::Shape& shape, T start = T(0)) {
  std::vector<T> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return eqx::array(v, shape);
}

/// The what() of the E that f() throws, or "(no exception)": for comparing
/// whole messages where CHECK_THROWS_WITH would only show a mismatch.
template <class E>
std::string message_of(auto&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no exception)";
}

/// True when the environment variable CI is "true" (as CI services set it).
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace eqx_test

/// Ends the current test case as skipped, saying why. Catch2 2.13 has no
/// SKIP(), so this WARNs "EQX_TEST_SKIPPED: <reason>" and returns, and
/// tests/CMakeLists.txt gives every Catch2 test SKIP_REGULAR_EXPRESSION
/// EQX_TEST_SKIPPED: ctest then reports the test as Skipped, not Passed. With
/// CI=true the skip is a failure instead: CI installs every dependency
/// (scripts/install-deps), so a missing one there is a bug.
#define EQX_TEST_SKIP(reason)                                                      \
  do {                                                                             \
    if (eqx_test::in_ci()) FAIL("CI=true, so this cannot be skipped: " << reason); \
    WARN("EQX_TEST_SKIPPED: " << reason);                                          \
    return;                                                                        \
  } while (0)

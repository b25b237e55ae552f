// Reductions: sum, mean, prod, max, min, any, all, argmax, argmin, var, std;
// and (ops/sort.hpp) sort, argsort, cumsum.
// Expected values are NumPy 1.24 results stored as literals (or naive loops
// for the [threads] cases).

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <source_location>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/ops/sort.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_reduction_test {

namespace {

using eqx::Array;
using eqx::Shape;
using Catch::Contains;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

using eqx_test::check;

// x = ((arange(24) * 7) % 13 - 4).reshape(2, 3, 4) as float32
Array x3() {
  return eqx::array(std::vector<float>{-4, 3, -3, 4, -2, 5, -1, 6, 0, 7, 1, 8, 2, -4, 3, -3, 4, -2, 5, -1, 6, 0, 7, 1},
                    {2, 3, 4});
}

// p: no zeros, so products are informative.
Array p3() {
  return eqx::array(std::vector<float>{1, 2, 3, -4, -1, -2, 3, 4, 1, -2, -3, -4, 1, 2, 3, -4, -1, -2, 3, 4, 1, -2, -3, -4},
                    {2, 3, 4});
}

// xi = ((arange(12) * 5) % 7 - 3).reshape(3, 4) as int32
Array xi() { return eqx::array(std::vector<std::int32_t>{-3, 2, 0, -2, 3, 1, -1, -3, 2, 0, -2, 3}, {3, 4}); }

Array nan3x3() { return eqx::array(std::vector<float>{1, kNaN, 3, 4, 5, kNaN, 7, 8, 9}, {3, 3}); }

}  // namespace

TEST_CASE("sum over all axes, one axis, negative axis and several axes", "[reduce]") {
  Array x = x3();
  check<float>(eqx::sum(x), {}, {42});
  check<float>(eqx::sum(x, 0), {3, 4}, {-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  check<float>(eqx::sum(x, 1), {2, 4}, {-6, 15, -3, 18, 12, -6, 15, -3});
  check<float>(eqx::sum(x, 2), {2, 3}, {0, 8, 16, -2, 6, 14});
  check<float>(eqx::sum(x, -1), {2, 3}, {0, 8, 16, -2, 6, 14});
  check<float>(eqx::sum(x, -3), {3, 4}, {-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  check<float>(eqx::sum(x, {0, 1}), {4}, {6, 9, 12, 15});
  check<float>(eqx::sum(x, {1, 2}), {2}, {24, 18});
  check<float>(eqx::sum(x, {0, 2}), {3}, {-2, 14, 30});   // non-adjacent
  check<float>(eqx::sum(x, {2, 0}), {3}, {-2, 14, 30});   // order does not matter
  check<float>(eqx::sum(x, {-1, 0}), {3}, {-2, 14, 30});  // negative in a list
  check<float>(eqx::sum(x, {0, 1, 2}), {}, {42});
  // An explicit empty axis list reduces nothing (numpy axis=()).
  check<float>(eqx::sum(x, std::vector<std::int64_t>{}), {2, 3, 4},
               {-4, 3, -3, 4, -2, 5, -1, 6, 0, 7, 1, 8, 2, -4, 3, -3, 4, -2, 5, -1, 6, 0, 7, 1});
}

TEST_CASE("keepdims keeps reduced axes with size 1", "[reduce]") {
  Array x = x3();
  check<float>(eqx::sum(x, {0, 2}, true), {1, 3, 1}, {-2, 14, 30});
  check<float>(eqx::sum(x, {}, true), {1, 1, 1}, {42});
  check<float>(eqx::max(x, 1, true), {2, 1, 4}, {0, 7, 1, 8, 6, 0, 7, 1});
  check<float>(eqx::min(x, -1, true), {2, 3, 1}, {-4, -2, 0, -4, -2, 0});
  check<float>(eqx::mean(x, {}, true), {1, 1, 1}, {1.75f});
  check<float>(eqx::mean(x, {0, 2}, true), {1, 3, 1}, {-0.25f, 1.75f, 3.75f});
  check<float>(eqx::prod(p3(), 2, true), {2, 3, 1}, {-24, 24, -24, -24, 24, -24});
  Array b = eqx::array(std::vector<bool>{true, false, true, false, false, true}, {2, 3});
  check<bool>(eqx::any(b, 1, true), {2, 1}, {true, true});
  check<bool>(eqx::all(b, 0, true), {1, 3}, {false, false, true});
}

TEST_CASE("prod, max, min and mean of float32 over axes", "[reduce]") {
  Array x = x3(), p = p3();
  check<float>(eqx::prod(p), {}, {191102976.f});
  check<float>(eqx::prod(p, 0), {3, 4}, {1, 4, 9, 16, 1, 4, 9, 16, 1, 4, 9, 16});
  check<float>(eqx::prod(p, 2), {2, 3}, {-24, 24, -24, -24, 24, -24});
  check<float>(eqx::prod(p, {0, 2}), {3}, {576, 576, 576});
  check<float>(eqx::prod(p, {0, 1}), {4}, {1, 64, 729, 4096});
  check<float>(eqx::prod(x, 1), {2, 4}, {0, 105, 3, 192, 48, 0, 105, 3});

  check<float>(eqx::max(x), {}, {8});
  check<float>(eqx::max(x, 0), {3, 4}, {2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8});
  check<float>(eqx::max(x, 2), {2, 3}, {4, 6, 8, 3, 5, 7});
  check<float>(eqx::max(x, {0, 1}), {4}, {6, 7, 7, 8});
  check<float>(eqx::max(x, {0, 2}), {3}, {4, 6, 8});
  check<float>(eqx::max(x, {1, 2}), {2}, {8, 7});

  check<float>(eqx::min(x), {}, {-4});
  check<float>(eqx::min(x, 0), {3, 4}, {-4, -4, -3, -3, -2, -2, -1, -1, 0, 0, 1, 1});
  check<float>(eqx::min(x, 1), {2, 4}, {-4, 3, -3, 4, 2, -4, 3, -3});
  check<float>(eqx::min(x, {0, 2}), {3}, {-4, -2, 0});
  check<float>(eqx::min(x, {0, 1}), {4}, {-4, -4, -3, -3});

  check<float>(eqx::mean(x), {}, {1.75f});
  check<float>(eqx::mean(x, 0), {3, 4}, {-1, -0.5f, 0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f});
  check<float>(eqx::mean(x, -1), {2, 3}, {0, 2, 4, -0.5f, 1.5f, 3.5f});
  check<float>(eqx::mean(x, {0, 2}), {3}, {-0.25f, 1.75f, 3.75f});
  check<float>(eqx::mean(x, {1, 2}), {2}, {2, 1.5f});
}

TEST_CASE("reductions of int32 keep int32; mean of int32 is float32", "[reduce]") {
  Array a = xi();
  check<std::int32_t>(eqx::sum(a), {}, {0});
  check<std::int32_t>(eqx::sum(a, 0), {4}, {2, 3, -3, -2});
  check<std::int32_t>(eqx::sum(a, 1), {3}, {-3, 0, 3});
  check<std::int32_t>(eqx::prod(a, 0), {4}, {-18, 0, 0, 18});
  check<std::int32_t>(eqx::prod(a, 1), {3}, {0, 9, 0});
  check<std::int32_t>(eqx::max(a), {}, {3});
  check<std::int32_t>(eqx::max(a, 0), {4}, {3, 2, 0, 3});
  check<std::int32_t>(eqx::max(a, 1), {3}, {2, 3, 3});
  check<std::int32_t>(eqx::min(a, 0), {4}, {-3, 0, -2, -3});
  check<std::int32_t>(eqx::min(a, 1), {3}, {-3, -3, -2});
  check<float>(eqx::mean(a), {}, {0});
  check<float>(eqx::mean(a, 0), {4}, {0.6666667f, 1, -1, -0.6666667f});
  check<float>(eqx::mean(a, 1), {3}, {-0.75f, 0, 0.75f});
  check<bool>(eqx::any(a, 1), {3}, {true, true, true});
  check<bool>(eqx::all(a, 0), {4}, {true, false, false, true});
}

TEST_CASE("reductions of uint32 stay unsigned", "[reduce]") {
  Array u = eqx::array(std::vector<std::uint32_t>{3, 4000000000u, 7, 1, 0, 2}, {2, 3});
  check<std::uint32_t>(eqx::max(u), {}, {4000000000u});
  check<std::uint32_t>(eqx::max(u, 1), {2}, {4000000000u, 2});
  check<std::uint32_t>(eqx::min(u, 0), {3}, {1, 0, 2});
  check<std::uint32_t>(eqx::min(u), {}, {0});
  check<std::uint32_t>(eqx::sum(u), {}, {4000000013u});
  check<std::uint32_t>(eqx::sum(u, 1), {2}, {4000000010u, 3});
  check<std::uint32_t>(eqx::prod(u, 1, false), {2}, {static_cast<std::uint32_t>(84000000000ull % 4294967296ull), 0});
  check<std::int32_t>(eqx::argmax(u), {}, {1});
  check<std::int32_t>(eqx::argmax(u, 1), {2}, {1, 2});
  check<std::int32_t>(eqx::argmin(u, 1), {2}, {0, 1});
  check<float>(eqx::mean(u, 0), {3}, {2, 2000000000, 4.5f});
}

TEST_CASE("reductions of bool: sum and prod count in int32, any/all/max/min stay bool", "[reduce]") {
  Array b = eqx::array(std::vector<bool>{true, false, true, false, false, true}, {2, 3});
  check<std::int32_t>(eqx::sum(b), {}, {3});
  check<std::int32_t>(eqx::sum(b, 0), {3}, {1, 0, 2});
  check<std::int32_t>(eqx::sum(b, 1), {2}, {2, 1});
  check<std::int32_t>(eqx::prod(b, 0), {3}, {0, 0, 1});
  check<bool>(eqx::any(b), {}, {true});
  check<bool>(eqx::all(b), {}, {false});
  check<bool>(eqx::any(b, 0), {3}, {true, false, true});
  check<bool>(eqx::all(b, 0), {3}, {false, false, true});
  check<bool>(eqx::any(b, 1), {2}, {true, true});
  check<bool>(eqx::all(b, 1), {2}, {false, false});
  check<bool>(eqx::max(b, 0), {3}, {true, false, true});
  check<bool>(eqx::min(b, 0), {3}, {false, false, true});
  check<bool>(eqx::max(b), {}, {true});
  check<bool>(eqx::min(b), {}, {false});
  check<float>(eqx::mean(b), {}, {0.5f});
  check<float>(eqx::mean(b, 1), {2}, {0.6666667f, 0.3333333f});
  check<std::int32_t>(eqx::argmax(b, 1), {2}, {0, 2});
  check<std::int32_t>(eqx::argmin(b, 1), {2}, {1, 0});
}

TEST_CASE("any/all of float and int inputs test for non-zero", "[reduce]") {
  Array f = eqx::array(std::vector<float>{0.f, -0.f, 0.5f, 0, 2, 3}, {2, 3});
  check<bool>(eqx::any(f, 1), {2}, {true, true});
  check<bool>(eqx::all(f, 1), {2}, {false, false});
  check<bool>(eqx::any(f, 0), {3}, {false, true, true});
  check<bool>(eqx::all(f, 0), {3}, {false, false, true});
  // NaN is truthy, as in numpy.
  check<bool>(eqx::all(eqx::array({kNaN, 1.f})), {}, {true});
  check<bool>(eqx::any(eqx::array({0, 0, 0})), {}, {false});
}

TEST_CASE("reductions of float64 stay float64", "[reduce]") {
  Array d = eqx::array(std::vector<double>{0.5, 1.25, -2.0, 3.0, 0.125, 4.5}, {2, 3});
  check<double>(eqx::sum(d), {}, {7.375});
  check<double>(eqx::sum(d, 0), {3}, {3.5, 1.375, 2.5});
  check<double>(eqx::sum(d, 1), {2}, {-0.25, 7.625});
  check<double>(eqx::mean(d), {}, {1.2291666666666667});
  check<double>(eqx::mean(d, 1), {2}, {-0.08333333333333333, 2.5416666666666665});
  check<double>(eqx::prod(d), {}, {-2.109375});
  check<double>(eqx::prod(d, 0), {3}, {1.5, 0.15625, -9.0});
  check<double>(eqx::max(d, 0), {3}, {3.0, 1.25, 4.5});
  check<double>(eqx::min(d, 1), {2}, {-2.0, 0.125});
  // 0.1 + 0.2 + 0.3 in double, not float: distinguishes the accumulation type.
  check<double>(eqx::sum(eqx::array({0.1, 0.2, 0.3})), {}, {0.1 + 0.2 + 0.3});
  // Exact in double in any order; float32 accumulation would lose the 1.
  REQUIRE(eqx::sum(eqx::array({1e8, 1.0, -1e8})).item<double>() == 1.0);
}

TEST_CASE("reductions of a rank-0 array", "[reduce]") {
  Array s = eqx::array(2.5f);
  check<float>(eqx::sum(s), {}, {2.5f});
  check<float>(eqx::prod(s), {}, {2.5f});
  check<float>(eqx::max(s), {}, {2.5f});
  check<float>(eqx::min(s), {}, {2.5f});
  check<float>(eqx::mean(s), {}, {2.5f});
  check<float>(eqx::sum(s, {}, true), {}, {2.5f});
  check<bool>(eqx::any(s), {}, {true});
  check<bool>(eqx::all(eqx::array(0)), {}, {false});
  check<std::int32_t>(eqx::argmax(s), {}, {0});
  check<std::int32_t>(eqx::argmin(s, std::nullopt, true), {}, {0});
  check<std::int32_t>(eqx::sum(eqx::array(true)), {}, {1});
  REQUIRE_THROWS_AS(eqx::sum(s, 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::sum(s, 0), Contains("eqx::sum: axis 0 is out of range for an array of rank 0"));
  REQUIRE_THROWS_AS(eqx::argmax(s, 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::argmax(s, 0), Contains("eqx::argmax: axis 0 is out of range for an array of rank 0"));
}

TEST_CASE("reductions of size-0 arrays", "[reduce]") {
  Array e = eqx::array(std::vector<float>{}, {0});
  Array e03 = eqx::array(std::vector<float>{}, {0, 3});
  check<float>(eqx::sum(e), {}, {0});
  check<float>(eqx::prod(e), {}, {1});
  check<bool>(eqx::any(e), {}, {false});
  check<bool>(eqx::all(e), {}, {true});
  check<float>(eqx::sum(e03, 0), {3}, {0, 0, 0});
  check<float>(eqx::prod(e03, 0), {3}, {1, 1, 1});
  check<float>(eqx::sum(e03, 1), {0}, {});
  check<float>(eqx::max(e03, 1), {0}, {});  // reduces a non-empty axis: fine
  check<std::int32_t>(eqx::argmax(e03, 1), {0}, {});
  check<std::int32_t>(eqx::sum(eqx::array(std::vector<std::int32_t>{}, {2, 0}), 1), {2}, {0, 0});
  check<float>(eqx::sum(eqx::array(std::vector<float>{}, {2, 0, 3}), {0, 2}), {0}, {});
  check<float>(eqx::sum(eqx::array(std::vector<float>{}, {2, 0, 3}), {1}), {2, 3}, {0, 0, 0, 0, 0, 0});
  // mean of nothing is NaN, as numpy (which also warns).
  check<float>(eqx::mean(e), {}, {kNaN});

  REQUIRE_THROWS_AS(eqx::max(e), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::max(e), Contains("eqx::max: cannot reduce over axis 0 of size 0 in f32[0]"));
  REQUIRE_THROWS_WITH(eqx::max(e), Contains("no identity"));
  REQUIRE_THROWS_AS(eqx::min(e03, 0), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::min(e03, 0), Contains("eqx::min: cannot reduce over axis 0 of size 0 in f32[0,3]"));
  REQUIRE_THROWS_AS(eqx::argmax(e), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::argmax(e), Contains("cannot take argmax over axis 0 of size 0"));
  REQUIRE_THROWS_AS(eqx::argmin(e03, 0), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::argmin(e03, 0), Contains("cannot take argmin over axis 0 of size 0 in f32[0,3]"));
}

TEST_CASE("max and min propagate NaN on every kernel path", "[reduce]") {
  Array n = nan3x3();
  check<float>(eqx::max(n), {}, {kNaN});
  check<float>(eqx::min(n), {}, {kNaN});
  check<float>(eqx::max(n, 0), {3}, {7, kNaN, kNaN});  // row accumulation
  check<float>(eqx::min(n, 0), {3}, {1, kNaN, kNaN});
  check<float>(eqx::max(n, 1), {3}, {kNaN, kNaN, 9});  // contiguous rows
  check<float>(eqx::min(n, 1), {3}, {kNaN, kNaN, 7});
  // NaN first or last in the row must both propagate.
  check<float>(eqx::max(eqx::array({kNaN, 1.f, 2.f})), {}, {kNaN});
  check<float>(eqx::min(eqx::array({1.f, 2.f, kNaN})), {}, {kNaN});
  check<double>(eqx::max(eqx::array({1.0, std::nan(""), 2.0})), {}, {std::nan("")});
  // Non-adjacent axes (transposed first).
  std::vector<float> t(12, 1.f);
  t[1 * 6 + 1 * 2 + 0] = kNaN;  // t[1,1,0]
  Array ta = eqx::array(t, {2, 3, 2});
  check<float>(eqx::max(ta, {0, 2}), {3}, {1, kNaN, 1});
  check<float>(eqx::min(ta, {0, 2}), {3}, {1, kNaN, 1});
  check<float>(eqx::sum(ta, {0, 2}), {3}, {4, kNaN, 4});
}

TEST_CASE("argmax and argmin with axis, flattened and keepdims", "[reduce]") {
  Array x = x3();
  check<std::int32_t>(eqx::argmax(x), {}, {11});
  check<std::int32_t>(eqx::argmin(x), {}, {0});
  check<std::int32_t>(eqx::argmax(x, 0), {3, 4}, {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
  check<std::int32_t>(eqx::argmin(x, 0), {3, 4}, {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
  check<std::int32_t>(eqx::argmax(x, 1), {2, 4}, {2, 2, 2, 2, 2, 2, 2, 2});
  check<std::int32_t>(eqx::argmin(x, 1), {2, 4}, {0, 0, 0, 0, 0, 0, 0, 0});
  check<std::int32_t>(eqx::argmax(x, 2), {2, 3}, {3, 3, 3, 2, 2, 2});
  check<std::int32_t>(eqx::argmax(x, -1), {2, 3}, {3, 3, 3, 2, 2, 2});
  check<std::int32_t>(eqx::argmin(x, -1), {2, 3}, {0, 0, 0, 1, 1, 1});
  check<std::int32_t>(eqx::argmax(x, 1, true), {2, 1, 4}, {2, 2, 2, 2, 2, 2, 2, 2});
  check<std::int32_t>(eqx::argmin(x, -1, true), {2, 3, 1}, {0, 0, 0, 1, 1, 1});
  check<std::int32_t>(eqx::argmax(x, std::nullopt, true), {1, 1, 1}, {11});

  Array a = xi();
  check<std::int32_t>(eqx::argmax(a), {}, {4});
  check<std::int32_t>(eqx::argmin(a), {}, {0});
  check<std::int32_t>(eqx::argmax(a, 0), {4}, {1, 0, 0, 2});
  check<std::int32_t>(eqx::argmin(a, 0), {4}, {0, 2, 2, 1});
  check<std::int32_t>(eqx::argmax(a, 1), {3}, {1, 0, 3});
  check<std::int32_t>(eqx::argmin(a, 1), {3}, {0, 3, 2});
}

TEST_CASE("argmax/argmin: ties pick the first index, NaN wins", "[reduce]") {
  check<std::int32_t>(eqx::argmax(eqx::array({3.f, 3.f, 1.f, 3.f})), {}, {0});
  check<std::int32_t>(eqx::argmin(eqx::array({1, 0, 0, 5})), {}, {1});
  check<std::int32_t>(eqx::argmax(eqx::array({1, 5, 5, 5})), {}, {1});
  check<std::int32_t>(eqx::argmax(eqx::array({kNaN, 2.f, kNaN})), {}, {0});
  check<std::int32_t>(eqx::argmax(eqx::array({1.f, 2.f, kNaN, kNaN})), {}, {2});
  check<std::int32_t>(eqx::argmin(eqx::array({1.f, 2.f, kNaN, kNaN})), {}, {2});
  check<std::int32_t>(eqx::argmin(eqx::array({1.0, std::nan(""), -5.0})), {}, {1});  // NaN beats a later minimum
  Array n = nan3x3();
  check<std::int32_t>(eqx::argmax(n), {}, {1});
  check<std::int32_t>(eqx::argmin(n), {}, {1});
  check<std::int32_t>(eqx::argmax(n, 0), {3}, {2, 0, 1});
  check<std::int32_t>(eqx::argmin(n, 0), {3}, {0, 0, 1});
  check<std::int32_t>(eqx::argmax(n, 1), {3}, {1, 2, 2});
  check<std::int32_t>(eqx::argmin(n, 1), {3}, {1, 2, 0});
  // Ties down a column (strided path).
  Array c = eqx::array(std::vector<float>{1, 9, 4, 9, 4, 2}, {3, 2});
  check<std::int32_t>(eqx::argmax(c, 0), {2}, {1, 0});
  check<std::int32_t>(eqx::argmin(c, 0), {2}, {0, 2});
}

TEST_CASE("reduction axis errors", "[reduce]") {
  Array x = x3();
  REQUIRE_THROWS_AS(eqx::sum(x, {0, 0}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::sum(x, {0, 0}), Contains("eqx::sum: repeated axis in (0, 0)"));
  REQUIRE_THROWS_AS(eqx::max(x, {1, -2}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::max(x, {1, -2}), Contains("eqx::max: repeated axis in (1, -2)"));
  REQUIRE_THROWS_AS(eqx::mean(x, {2, 2}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::mean(x, {2, 2}), Contains("repeated axis"));
  REQUIRE_THROWS_AS(eqx::sum(x, 3), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::sum(x, 3), Contains("eqx::sum: axis 3 is out of range for an array of rank 3 (valid: -3 to 2)"));
  REQUIRE_THROWS_AS(eqx::prod(x, -4), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::prod(x, -4), Contains("eqx::prod: axis -4 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::all(x, {0, 5}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::all(x, {0, 5}), Contains("eqx::all: axis 5 is out of range"));
  REQUIRE_THROWS_AS(eqx::any(x, {-7}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::any(x, {-7}), Contains("eqx::any: axis -7 is out of range"));
  REQUIRE_THROWS_AS(eqx::min(x, 3), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::min(x, 3), Contains("eqx::min: axis 3"));
  REQUIRE_THROWS_AS(eqx::argmin(x, -4), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::argmin(x, -4), Contains("eqx::argmin: axis -4 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::mean(x, 3), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::mean(x, 3), Contains("eqx::mean: axis 3 is out of range"));
  // Empty Array (None).
  REQUIRE_THROWS_AS(eqx::sum(Array{}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::sum(Array{}), Contains("eqx::sum: got an empty Array (None)"));
  REQUIRE_THROWS_AS(eqx::argmax(Array{}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::argmax(Array{}), Contains("eqx::argmax: got an empty Array (None)"));
  REQUIRE_THROWS_AS(eqx::mean(Array{}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::mean(Array{}), Contains("eqx::mean: got an empty Array (None)"));
}

TEST_CASE("reduce primitives check their parameters when bound directly", "[reduce]") {
  Array x = x3();
  using Ints = std::vector<std::int64_t>;
  // Unsorted or repeated axes are rejected by the shape rule.
  auto unsorted = [&] { return eqx::bind1(eqx::prim::reduce_sum, {x}, eqx::Params{}.set("axes", Ints{2, 0})); };
  REQUIRE_THROWS_AS(unsorted(), eqx::IndexError);
  REQUIRE_THROWS_WITH(unsorted(), Contains("eqx::reduce_sum: axes (2, 0) are not distinct axes of f32[2,3,4]"));
  auto out_of_range = [&] { return eqx::bind1(eqx::prim::reduce_max, {x}, eqx::Params{}.set("axes", Ints{3})); };
  REQUIRE_THROWS_AS(out_of_range(), eqx::IndexError);
  REQUIRE_THROWS_WITH(out_of_range(), Contains("eqx::reduce_max: axes (3,) are not distinct axes of f32[2,3,4]"));
  // reduce_sum does not take bool (eqx::sum converts to int32 first).
  Array b = eqx::array({true, false});
  auto bool_sum = [&] { return eqx::bind1(eqx::prim::reduce_sum, {b}, eqx::Params{}.set("axes", Ints{0})); };
  REQUIRE_THROWS_AS(bool_sum(), eqx::DTypeError);
  REQUIRE_THROWS_WITH(bool_sum(), Contains("eqx::reduce_sum: got dtype bool"));
  // reduce_or takes only bool (eqx::any converts first).
  auto float_or = [&] { return eqx::bind1(eqx::prim::reduce_or, {x}, eqx::Params{}.set("axes", Ints{0})); };
  REQUIRE_THROWS_AS(float_or(), eqx::DTypeError);
  REQUIRE_THROWS_WITH(float_or(), Contains("eqx::reduce_or: got dtype float32"));
}

TEST_CASE("reductions of non-contiguous inputs (transpose and slice results)", "[reduce]") {
  Array x = x3();
  Array t = eqx::transpose(x, {2, 0, 1});  // [4, 2, 3]: t[k, i, j] = x[i, j, k]
  check<float>(eqx::sum(t, 0), {2, 3}, {0, 8, 16, -2, 6, 14});
  check<float>(eqx::sum(t, {1, 2}), {4}, {6, 9, 12, 15});
  check<float>(eqx::max(t, {0, 2}), {2}, {8, 7});
  check<std::int32_t>(eqx::argmax(t, 0), {2, 3}, {3, 3, 3, 2, 2, 2});
  check<float>(eqx::mean(t, 1), {4, 3}, {-1, 1, 3, -0.5f, 1.5f, 3.5f, 0, 2, 4, 0.5f, 2.5f, 4.5f});
  // x[:, ::2, 1:3] = [[[3,-3],[7,1]], [[-4,3],[0,7]]]
  Array s = eqx::slice(x, {{}, {{}, {}, 2}, {1, 3}});
  check<float>(s, {2, 2, 2}, {3, -3, 7, 1, -4, 3, 0, 7});
  check<float>(eqx::sum(s, {0, 2}), {2}, {-1, 15});
  check<float>(eqx::prod(s, 2), {2, 2}, {-9, 7, -12, 0});
  check<float>(eqx::min(s, 0), {2, 2}, {-4, -3, 0, 1});
  check<std::int32_t>(eqx::argmin(s), {}, {4});
}

namespace {
// Deterministic integer-valued data, exact in float64 sums.
std::vector<double> big_data(std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<double>((i * 37 + 11) % 101) - 50;
  return v;
}
}  // namespace

TEST_CASE("large reductions match naive loops", "[reduce][threads]") {
  const std::int64_t A = 40, B = 50, C = 50;  // 100000 elements: two threads or more
  std::vector<double> v = big_data(A * B * C);
  auto at = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return v[static_cast<std::size_t>((i * B + j) * C + k)]; };
  Array x = eqx::array(v, {A, B, C});

  std::vector<double> s0(B * C, 0), s1(A * C, 0), s2(A * B, 0), s02(B, 0), m02(B, -1e300), p1(A * C, 1);
  double total = 0;
  for (std::int64_t i = 0; i < A; ++i)
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) {
        double e = at(i, j, k);
        s0[j * C + k] += e;
        s1[i * C + k] += e;
        s2[i * B + j] += e;
        s02[j] += e;
        m02[j] = std::max(m02[j], e);
        total += e;
      }
  check<double>(eqx::sum(x), {}, {total});
  check<double>(eqx::sum(x, 0), {B, C}, s0);
  check<double>(eqx::sum(x, 1), {A, C}, s1);
  check<double>(eqx::sum(x, 2), {A, B}, s2);
  check<double>(eqx::sum(x, {0, 2}), {B}, s02);
  check<double>(eqx::max(x, {0, 2}), {B}, m02);

  // Products of +-1 stay exact.
  std::vector<double> signs(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) signs[i] = (i * 7 + i / 13) % 3 == 0 ? -1.0 : 1.0;
  for (std::int64_t i = 0; i < A; ++i)
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) p1[i * C + k] *= signs[static_cast<std::size_t>((i * B + j) * C + k)];
  check<double>(eqx::prod(eqx::array(signs, {A, B, C}), 1), {A, C}, p1);

  // int32 and float32 along the long axis.
  std::vector<std::int32_t> vi(v.begin(), v.end());
  std::vector<std::int32_t> si(A, 0);
  for (std::int64_t i = 0; i < A; ++i)
    for (std::int64_t r = 0; r < B * C; ++r) si[i] += vi[static_cast<std::size_t>(i * B * C + r)];
  check<std::int32_t>(eqx::sum(eqx::array(vi, {A, B * C}), 1), {A}, si);
  std::vector<float> vf(v.begin(), v.end());
  std::vector<float> mean0(B * C);
  for (std::int64_t r = 0; r < B * C; ++r) mean0[r] = static_cast<float>(s0[r] / A);
  check<float>(eqx::mean(eqx::array(vf, {A, B * C}), 0), {B * C}, mean0);
}

TEST_CASE("large argmax/argmin match naive loops", "[reduce][threads]") {
  const std::int64_t R = 400, N = 250;  // 100000 elements
  std::vector<float> v(R * N);
  for (std::int64_t i = 0; i < R * N; ++i) v[i] = static_cast<float>((i * 7919) % 1009 % 97);  // many ties
  v[123 * N + 45] = kNaN;
  Array x = eqx::array(v, {R, N});
  std::vector<std::int32_t> am1(R), an1(R), am0(N);
  for (std::int64_t i = 0; i < R; ++i) {
    std::int32_t bmax = 0, bmin = 0;
    for (std::int64_t j = 0; j < N; ++j) {
      float e = v[i * N + j];
      if (std::isnan(e)) { bmax = bmin = static_cast<std::int32_t>(j); break; }
      if (e > v[i * N + bmax]) bmax = static_cast<std::int32_t>(j);
      if (e < v[i * N + bmin]) bmin = static_cast<std::int32_t>(j);
    }
    am1[i] = bmax;
    an1[i] = bmin;
  }
  for (std::int64_t j = 0; j < N; ++j) {
    std::int32_t b = 0;
    for (std::int64_t i = 0; i < R; ++i) {
      float e = v[i * N + j];
      if (std::isnan(e)) { b = static_cast<std::int32_t>(i); break; }
      if (e > v[b * N + j]) b = static_cast<std::int32_t>(i);
    }
    am0[j] = b;
  }
  REQUIRE(am1[123] == 45);
  check<std::int32_t>(eqx::argmax(x, 1), {R}, am1);
  check<std::int32_t>(eqx::argmin(x, 1), {R}, an1);
  check<std::int32_t>(eqx::argmax(x, 0), {N}, am0);
  check<std::int32_t>(eqx::argmax(x), {}, {static_cast<std::int32_t>(123 * N + 45)});
}

// --- var, std, sort, argsort, cumsum -------------------------------------------

namespace {

// x = [[3, -1, 2, 5], [0.5, 0.5, -2, 7], [1, 4, -3, 0]] as float64
Array v34() { return eqx::array(std::vector<double>{3, -1, 2, 5, 0.5, 0.5, -2, 7, 1, 4, -3, 0}, {3, 4}); }

/// Requires filter_grad(f)(x) to match central differences of f in float64
/// (step 1e-6, tolerance 1e-6 absolute + relative).
template <class F>
void check_grad_fd(F f, const Array& x) {
  Array g = eqx::filter_grad(f)(x);
  REQUIRE(g.shape() == x.shape());
  std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>();
  const double h = 1e-6;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    std::vector<double> up = xv, down = xv;
    up[i] += h;
    down[i] -= h;
    const double fd = (f(eqx::array(up, x.shape())).template item<double>() -
                       f(eqx::array(down, x.shape())).template item<double>()) / (2 * h);
    INFO("element " << i);
    CHECK(gv[i] == Approx(fd).epsilon(1e-6).margin(1e-6));
  }
}

/// A fixed weighting so that a gradient sees every output element.
Array weights(const Shape& s) { return eqx::sin(eqx_test::seq<double>(s, 1.0)); }

}  // namespace

TEST_CASE("var and std match numpy: axes, ddof, keepdims, int32 input", "[reduce]") {
  Array x = v34();
  check<double>(eqx::var(x), {}, {7.868055555555556});
  check<double>(eqx::var(x, 0), {4}, {1.1666666666666667, 4.388888888888889, 4.666666666666667, 8.666666666666666});
  check<double>(eqx::var(x, 1, 1), {3}, {6.25, 14.833333333333334, 8.333333333333334});
  check<double>(eqx::std(x, 1, 0, true), {3, 1}, {2.165063509461097, 3.3354160160315836, 2.5});
  check<double>(eqx::std(x, {}, 1), {}, {2.9297326385411577});
  check<double>(eqx::var(x, {0, 1}), {}, {7.868055555555556});
  Array xi = eqx::array(std::vector<std::int32_t>{1, 2, 3, 4, 6, 8}, {2, 3});
  check<float>(eqx::var(xi, 1), {2}, {0.6666666666666666f, 2.6666666666666665f});
  check<float>(eqx::std(xi), {}, {2.3804761428476167f});
  check<float>(eqx::var(eqx::array({1.f, 2.f, 3.f, 4.f})), {}, {1.25f});
  // A divisor of count - ddof <= 0 is 0 (numpy): inf for a non-zero sum of squares.
  check<double>(eqx::var(eqx::array({1.0, 3.0}), {}, 2), {}, {std::numeric_limits<double>::infinity()});
  CHECK_THROWS_AS(eqx::var(x, 2), eqx::IndexError);
  CHECK_THROWS_WITH(eqx::var(x, 2), Contains("eqx::var: axis 2 is out of range for an array of rank 2"));
}

TEST_CASE("var and std: gradients by finite differences (float64) and under filter_vmap", "[reduce]") {
  Array w = weights({3, 4});
  check_grad_fd([&](const Array& x) { return eqx::sum(eqx::var(x, 1, 1, true) * eqx::slice(w, 1, 0, 1)); }, v34());
  check_grad_fd([&](const Array& x) { return eqx::sum(eqx::std(x, 0) * eqx::slice(w, 0, 0, 1)); }, v34());
  Array batched = eqx::filter_vmap([](const Array& row) { return eqx::std(row, {}, 1); })(v34());
  check<double>(batched, {3}, {2.5, 3.851406669430448, 2.886751345948129});  // sqrt of var(x, 1, 1) above
}

TEST_CASE("sort and argsort match numpy: NaN last, infinities, stable ties, axes", "[reduce][sort]") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> s{3, -0.0, nan, -inf, 1, 0, -2.5, inf, 1, -1e300};
  check<double>(eqx::sort(eqx::array(s)), {10}, {-inf, -1e300, -2.5, -0.0, 0, 1, 1, 3, inf, nan});
  check<std::int32_t>(eqx::argsort(eqx::array(s)), {10}, {3, 9, 6, 1, 5, 4, 8, 0, 7, 2});
  std::vector<float> sf(s.begin(), s.end());
  sf[9] = -1e30f;
  check<float>(eqx::sort(eqx::array(sf)), {10}, {-std::numeric_limits<float>::infinity(), -1e30f, -2.5f,
                                                 -0.0f, 0, 1, 1, 3, std::numeric_limits<float>::infinity(), kNaN});
  check<std::int32_t>(eqx::argsort(eqx::array(sf)), {10}, {3, 9, 6, 1, 5, 4, 8, 0, 7, 2});
  // -0.0 sorts before +0.0 (JAX's total order), for both float widths.
  CHECK(std::signbit(eqx::sort(eqx::array({0.0, -0.0})).to_vector<double>()[0]));
  CHECK(std::signbit(eqx::sort(eqx::array({0.0f, -0.0f})).to_vector<float>()[0]));
  // A negative NaN also sorts last.
  CHECK(std::isnan(eqx::sort(eqx::array({-nan, 1.0})).to_vector<double>()[1]));
  // float64 values equal in their high word, ordered by the low word.
  const double a = 1.0, b = std::nextafter(1.0, 2.0), c = std::nextafter(-1.0, -2.0);
  check<double>(eqx::sort(eqx::array({b, -1.0, a, c})), {4}, {c, -1.0, a, b});

  Array x = v34();
  check<double>(eqx::sort(x, 0), {3, 4}, {0.5, -1, -3, 0, 1, 0.5, -2, 5, 3, 4, 2, 7});
  check<std::int32_t>(eqx::argsort(x, 0), {3, 4}, {1, 0, 2, 2, 2, 1, 1, 0, 0, 2, 0, 1});
  check<std::int32_t>(eqx::argsort(x), {3, 4}, {1, 2, 0, 3, 2, 0, 1, 3, 2, 3, 0, 1});
  check<double>(eqx::sort(x, std::nullopt), {12}, {-3, -2, -1, 0, 0.5, 0.5, 1, 2, 3, 4, 5, 7});
  check<std::int32_t>(eqx::sort(eqx::array(std::vector<std::int32_t>{5, -7, 0, 2147483647, -2147483647 - 1})), {5},
                      {-2147483647 - 1, -7, 0, 5, 2147483647});
  check<std::uint32_t>(eqx::sort(eqx::array(std::vector<std::uint32_t>{4000000000u, 1u, 0u})), {3}, {0u, 1u, 4000000000u});
  check<std::int32_t>(eqx::argsort(eqx::array(std::vector<bool>{true, false, true, false})), {4}, {1, 3, 0, 2});
  check<double>(eqx::sort(eqx::zeros({0}, eqx::float64)), {0}, {});
  CHECK_THROWS_AS(eqx::sort(eqx::array(1.0)), eqx::IndexError);  // rank 0 has no last axis (numpy too)
  CHECK_THROWS_WITH(eqx::sort(eqx::array(1.0)), Contains("eqx::sort: axis -1 is out of range for an array of rank 0"));
}

TEST_CASE("sort: the gradient follows each element (finite differences), vmap and jit", "[reduce][sort]") {
  Array w = weights({3, 4});
  Array distinct = v34() + eqx_test::seq<double>({3, 4}) * 1e-3;  // no ties: sort is differentiable there
  check_grad_fd([&](const Array& x) { return eqx::sum(eqx::sort(x, 0) * w); }, distinct);
  check_grad_fd([&](const Array& x) { return eqx::sum(eqx::sort(x) * w); }, distinct);
  Array xs = v34();
  check<double>(eqx::filter_vmap([](const Array& r) { return eqx::sort(r); })(xs), {3, 4},
                {-1, 2, 3, 5, -2, 0.5, 0.5, 7, -3, 0, 1, 4});
  check<std::int32_t>(eqx::filter_vmap([](const Array& r) { return eqx::argsort(r); })(eqx::transpose(xs)), {4, 3},
                      {1, 2, 0, 0, 1, 2, 2, 1, 0, 2, 0, 1});
  auto jitted = eqx::filter_jit([](const Array& x) { return eqx::argsort(x, 0); });
  check<std::int32_t>(jitted(xs), {3, 4}, {1, 0, 2, 2, 2, 1, 1, 0, 0, 2, 0, 1});
  check<float>(eqx::filter_jit([](const Array& x) { return eqx::sort(x); })(eqx::array({2.f, -1.f, 0.f})), {3},
               {-1, 0, 2});
}

TEST_CASE("cumsum matches numpy: axes, flattened default, bool and int32, gradient, vmap", "[reduce][cumsum]") {
  Array x = v34();
  check<double>(eqx::cumsum(x, 0), {3, 4}, {3, -1, 2, 5, 3.5, -0.5, 0, 12, 4.5, 3.5, -3, 12});
  check<double>(eqx::cumsum(x, -1), {3, 4}, {3, 2, 4, 9, 0.5, 1, -1, 6, 1, 5, 2, 2});
  check<double>(eqx::cumsum(x), {12}, {3, 2, 4, 9, 9.5, 10, 8, 15, 16, 20, 17, 17});
  check<std::int32_t>(eqx::cumsum(eqx::array(std::vector<bool>{true, false, true, true})), {4}, {1, 1, 2, 3});
  check<std::int32_t>(eqx::cumsum(xi(), 1), {3, 4}, {-3, -1, -1, -3, 3, 4, 3, 0, 2, 2, 0, 3});
  check<float>(eqx::cumsum(eqx::array({1.f, 2.f})), {2}, {1, 3});
  check<double>(eqx::cumsum(eqx::zeros({2, 0}, eqx::float64), 1), {2, 0}, {});
  CHECK(eqx_test::message_of<eqx::DTypeError>([] { eqx::cumsum(eqx::array(std::vector<std::uint32_t>{1u})); }) ==
        "eqx::cumsum: expected a float32, float64, int32 or bool input but got uint32; cast it with "
        "eqx::astype(x, eqx::int32) first");
  Array w = weights({3, 4});
  check_grad_fd([&](const Array& v) { return eqx::sum(eqx::cumsum(v, 1) * w); }, x);
  check_grad_fd([&](const Array& v) { return eqx::sum(eqx::cumsum(v, 0) * w); }, x);
  check<double>(eqx::filter_vmap([](const Array& r) { return eqx::cumsum(r); })(x), {3, 4},
                {3, 2, 4, 9, 0.5, 1, -1, 6, 1, 5, 2, 2});
}

}  // namespace ops_reduction_test

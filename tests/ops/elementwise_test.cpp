// Tests for elementwise ops (ops/elementwise.hpp, prim/{unary,binary,select,convert,broadcast}.hpp).
// Reference values are numpy 1.24 results (float32 where the inputs are
// float32), stored as literals.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/jit.hpp"
#include "eqx/transform/vmap.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_elementwise_test {

using Catch::Contains;

namespace {

using i32 = std::int32_t;
using u32 = std::uint32_t;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

/// Exact dtype, shape and values (NaN matches NaN).
template <class T>
void require_exact(const eqx::Array& a, eqx::DType dtype, const eqx::Shape& shape, const std::vector<T>& expected) {
  REQUIRE(a.dtype() == dtype);
  REQUIRE(a.shape() == shape);
  auto got = a.to_vector<T>();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(expected[i])) {
        REQUIRE(std::isnan(got[i]));
        continue;
      }
    }
    REQUIRE(got[i] == expected[i]);
  }
}

/// float32 values within a relative tolerance (NaN and inf must match exactly).
void require_close(const eqx::Array& a, const eqx::Shape& shape, const std::vector<float>& expected,
                   double rel = 2e-6, double abs_margin = 1e-7) {
  REQUIRE(a.dtype() == eqx::float32);
  REQUIRE(a.shape() == shape);
  auto got = a.to_vector<float>();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    if (std::isnan(expected[i])) REQUIRE(std::isnan(got[i]));
    else if (std::isinf(expected[i])) REQUIRE(got[i] == expected[i]);
    else REQUIRE(got[i] == Approx(expected[i]).epsilon(rel).margin(abs_margin));
  }
}

eqx::Array f32(std::vector<float> v, eqx::Shape s) { return eqx::array(v, std::move(s)); }
eqx::Array i32s(std::vector<i32> v, eqx::Shape s) { return eqx::array(v, std::move(s)); }

}  // namespace

// ------------------------------------------------------------------ arithmetic

TEST_CASE("add, subtract, multiply, divide and negate float32", "[elementwise]") {
  eqx::Array a = f32({1.5f, -2.f, 3.f, 0.25f}, {2, 2});
  eqx::Array b = f32({0.5f, 4.f, -1.f, 0.75f}, {2, 2});
  require_exact<float>(a + b, eqx::float32, {2, 2}, {2.f, 2.f, 2.f, 1.f});
  require_exact<float>(a - b, eqx::float32, {2, 2}, {1.f, -6.f, 4.f, -0.5f});
  require_exact<float>(a * b, eqx::float32, {2, 2}, {0.75f, -8.f, -3.f, 0.1875f});
  require_exact<float>(a / b, eqx::float32, {2, 2}, {3.f, -0.5f, -3.f, 1.f / 3.f});
  require_exact<float>(-a, eqx::float32, {2, 2}, {-1.5f, 2.f, -3.f, -0.25f});
  require_exact<float>(eqx::negative(a), eqx::float32, {2, 2}, {-1.5f, 2.f, -3.f, -0.25f});
  require_exact<float>(eqx::add(a, b), eqx::float32, {2, 2}, {2.f, 2.f, 2.f, 1.f});
  require_exact<float>(eqx::subtract(a, 1), eqx::float32, {2, 2}, {0.5f, -3.f, 2.f, -0.75f});
  require_exact<float>(eqx::multiply(2, a), eqx::float32, {2, 2}, {3.f, -4.f, 6.f, 0.5f});
  require_exact<float>(eqx::divide(a, 0.5), eqx::float32, {2, 2}, {3.f, -4.f, 6.f, 0.5f});
  require_exact<float>(1 - a, eqx::float32, {2, 2}, {-0.5f, 3.f, -2.f, 0.75f});
  require_exact<float>(3 / a, eqx::float32, {2, 2}, {2.f, -1.5f, 1.f, 12.f});
  // np.float32(0.1) + np.float32(0.2) == np.float32(0.3)
  require_exact<float>(eqx::array({0.1f}) + 0.2, eqx::float32, {1}, {0.3f});
  // IEEE division by zero
  require_exact<float>(f32({1.f, -1.f, 0.f}, {3}) / 0.f, eqx::float32, {3}, {kInf, -kInf, kNaN});
}

TEST_CASE("integer arithmetic stays integer, division gives float32", "[elementwise]") {
  eqx::Array a = i32s({7, -7, 6}, {3});
  eqx::Array b = i32s({2, 2, -4}, {3});
  require_exact<i32>(a + b, eqx::int32, {3}, {9, -5, 2});
  require_exact<i32>(a - b, eqx::int32, {3}, {5, -9, 10});
  require_exact<i32>(a * b, eqx::int32, {3}, {14, -14, -24});
  require_exact<i32>(-a, eqx::int32, {3}, {-7, 7, -6});
  // int32 wraps on overflow, as numpy's does: np.array([2**31 - 1, -2**31, 65536, 46341], np.int32) with
  // + 1, - 1 and squared -> [-2147483648, 2147483647], [0, -2147479015]
  const eqx::Array big = i32s({2147483647, -2147483647 - 1}, {2});
  require_exact<i32>(big + i32s({1, -1}, {2}), eqx::int32, {2}, {-2147483647 - 1, 2147483647});
  require_exact<i32>(big - i32s({-1, 1}, {2}), eqx::int32, {2}, {-2147483647 - 1, 2147483647});
  const eqx::Array sq = i32s({65536, 46341}, {2});
  require_exact<i32>(sq * sq, eqx::int32, {2}, {0, -2147479015});
  // np.array([7, -7, 6]) / np.array([2, 2, -4]) -> [3.5, -3.5, -1.5] (float32 in jnp)
  require_exact<float>(a / b, eqx::float32, {3}, {3.5f, -3.5f, -1.5f});
  require_exact<float>(a / 2, eqx::float32, {3}, {3.5f, -3.5f, 3.f});
  require_exact<float>(eqx::array({true, false}) / eqx::array({true, true}), eqx::float32, {2}, {1.f, 0.f});

  eqx::Array u = eqx::array({10u, 3u});
  require_exact<u32>(u - eqx::array({4u, 1u}), eqx::uint32, {2}, {6u, 2u});
  require_exact<u32>(u * 2, eqx::uint32, {2}, {20u, 6u});
  require_exact<u32>(u + eqx::array({4000000000u, 0u}), eqx::uint32, {2}, {4000000010u, 3u});
  require_exact<u32>(-eqx::array({1u}), eqx::uint32, {1}, {4294967295u});  // modular, as numpy

  eqx::Array d = eqx::array({1.0, 2.0});
  require_exact<double>(d / 3, eqx::float64, {2}, {1.0 / 3.0, 2.0 / 3.0});
  require_exact<double>(d * 0.1, eqx::float64, {2}, {0.1, 0.2});
}

TEST_CASE("bool arithmetic: + is or, * is and, - and negate are errors", "[elementwise]") {
  eqx::Array p = eqx::array({true, true, false, false});
  eqx::Array q = eqx::array({true, false, true, false});
  require_exact<bool>(p + q, eqx::bool_, {4}, {true, true, true, false});
  require_exact<bool>(p * q, eqx::bool_, {4}, {true, false, false, false});
  require_exact<bool>(eqx::square(p), eqx::bool_, {4}, {true, true, false, false});
  REQUIRE_THROWS_AS(p - q, eqx::DTypeError);
  REQUIRE_THROWS_WITH(p - q, Contains("eqx::sub: got dtype bool, but sub needs a numeric dtype"));
  REQUIRE_THROWS_AS(-p, eqx::DTypeError);
  REQUIRE_THROWS_WITH(-p, Contains("eqx::neg: got dtype bool") && Contains("eqx::astype"));
  REQUIRE_THROWS_WITH(eqx::abs(p), Contains("eqx::abs: got dtype bool"));
  REQUIRE_THROWS_WITH(eqx::sign(p), Contains("eqx::sign: got dtype bool"));
}

TEST_CASE("pow on floats and integers", "[elementwise]") {
  // np.power(np.array([2, 4, 9, -8], np.float32), np.array([0.5, -1, 0.5, 3], np.float32))
  require_close(eqx::pow(f32({2, 4, 9, -8}, {4}), f32({0.5f, -1, 0.5f, 3}, {4})), {4},
                {1.4142135381698608f, 0.25f, 3.0f, -512.0f});
  // np.power([2., -8., 0., -1.], [-2., 1/3, -1., 0.5]) -> [0.25, nan, inf, nan]
  require_close(eqx::pow(f32({2, -8, 0, -1}, {4}), f32({-2, 1.f / 3.f, -1, 0.5f}, {4})), {4},
                {0.25f, kNaN, kInf, kNaN});
  require_exact<float>(eqx::pow(f32({3, -2}, {2}), 2), eqx::float32, {2}, {9.f, 4.f});
  require_exact<float>(eqx::pow(2.f, f32({3, -1}, {2})), eqx::float32, {2}, {8.f, 0.5f});
  // int ** float scalar -> float32
  require_close(eqx::pow(eqx::array({4, 9}), 0.5), {2}, {2.f, 3.f});

  // np.array([2, 3, -2, 5, -3], np.int32) ** np.array([10, 3, 3, 0, 5], np.int32)
  require_exact<i32>(eqx::pow(eqx::array({2, 3, -2, 5, -3}), eqx::array({10, 3, 3, 0, 5})), eqx::int32, {5},
                     {1024, 27, -8, 1, -243});
  // int32 overflow wraps as in numpy: 3**20 -> -808182895, 2**31 -> -2147483648
  require_exact<i32>(eqx::pow(eqx::array({3, 2}), eqx::array({20, 31})), eqx::int32, {2}, {-808182895, -2147483648});
  // negative integer exponents: 0 unless the base is 1 or -1 (documented)
  require_exact<i32>(eqx::pow(eqx::array({2, 1, -1, -1, 0, -3}), eqx::array({-1, -5, -3, -2, -1, -2})), eqx::int32,
                     {6}, {0, 1, -1, 1, 0, 0});
  require_exact<u32>(eqx::pow(eqx::array({2u, 7u}), eqx::array({32u, 2u})), eqx::uint32, {2}, {0u, 49u});
  REQUIRE_THROWS_AS(eqx::pow(eqx::array({true}), eqx::array({true})), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::pow(eqx::array({true}), eqx::array({true})), Contains("eqx::pow: got dtype bool"));
}

TEST_CASE("arctan2: the angle in every quadrant, signed zeros, promotion", "[elementwise]") {
  // np.arctan2(np.array([1, 1, -1, -1, 0, -0., 0, 2.5], np.float32),
  //            np.array([1, -1, 1, -1, -1, -1, 0, 0], np.float32))
  const eqx::Array y = f32({1, 1, -1, -1, 0, -0.0f, 0, 2.5f}, {8}), x = f32({1, -1, 1, -1, -1, -1, 0, 0}, {8});
  require_close(eqx::arctan2(y, x), {8},
                {0.7853981f, 2.3561945f, -0.7853981f, -2.3561945f, 3.1415927f, -3.1415927f, 0.f, 1.5707964f});
  // np.arctan2(3.0, np.array([4.0, -4.0])) -> [0.643501109, 2.498091545], broadcasting a scalar
  const eqx::Array r = eqx::arctan2(3.0, eqx::array(std::vector<double>{4.0, -4.0}, {2}));
  REQUIRE(r.dtype() == eqx::float64);
  CHECK(r.to_vector<double>()[0] == Approx(0.643501109).epsilon(1e-9));
  CHECK(r.to_vector<double>()[1] == Approx(2.498091545).epsilon(1e-9));
  // int32 operands give float32 (as jnp.arctan2; numpy gives float64): [0.463647609, 1.107148718]
  require_close(eqx::arctan2(eqx::array({1, 2}), eqx::array({2, 1})), {2}, {0.463647609f, 1.107148718f});
  REQUIRE_THROWS_AS(eqx::bind1(eqx::prim::atan2, {eqx::array({1}), eqx::array({2})}), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::bind1(eqx::prim::atan2, {eqx::array({1}), eqx::array({2})}),
                      Contains("eqx::atan2: got dtype int32"));
}

TEST_CASE("maximum and minimum, NaN propagating", "[elementwise]") {
  // np.maximum([1, nan, 3, -0.], [2, 1, nan, 0.]) -> [2, nan, nan, 0]
  eqx::Array a = f32({1, kNaN, 3, -0.f, -5}, {5});
  eqx::Array b = f32({2, 1, kNaN, 0.f, -6}, {5});
  require_exact<float>(eqx::maximum(a, b), eqx::float32, {5}, {2.f, kNaN, kNaN, 0.f, -5.f});
  require_exact<float>(eqx::minimum(a, b), eqx::float32, {5}, {1.f, kNaN, kNaN, 0.f, -6.f});
  require_exact<float>(eqx::maximum(a, 0), eqx::float32, {5}, {1.f, kNaN, 3.f, 0.f, 0.f});
  require_exact<float>(eqx::minimum(2.5, a), eqx::float32, {5}, {1.f, kNaN, 2.5f, -0.f, -5.f});
  require_exact<double>(eqx::maximum(eqx::array({1.0, std::nan("")}), eqx::array({std::nan(""), 0.0})), eqx::float64,
                        {2}, {std::nan(""), std::nan("")});

  require_exact<i32>(eqx::maximum(eqx::array({3, -4, 0}), eqx::array({-1, 2, 0})), eqx::int32, {3}, {3, 2, 0});
  require_exact<i32>(eqx::minimum(eqx::array({3, -4, 0}), eqx::array({-1, 2, 0})), eqx::int32, {3}, {-1, -4, 0});
  require_exact<u32>(eqx::maximum(eqx::array({3u, 4000000000u}), eqx::array({5u, 1u})), eqx::uint32, {2},
                     {5u, 4000000000u});
  require_exact<bool>(eqx::maximum(eqx::array({true, false}), eqx::array({false, false})), eqx::bool_, {2},
                      {true, false});
  require_exact<bool>(eqx::minimum(eqx::array({true, false}), eqx::array({true, true})), eqx::bool_, {2},
                      {true, false});
  // mixed: i32 with f32 -> f32
  require_exact<float>(eqx::maximum(eqx::array({1, 5}), f32({2.5f, 2.5f}, {2})), eqx::float32, {2}, {2.5f, 5.f});
  // Both NaN gives NaN; a tie of signed zeros gives the second operand, as numpy's does:
  // np.signbit(np.maximum(-0., 0.)), (0., -0.), np.minimum(0., -0.), (-0., 0.) -> False True True False
  CHECK(std::isnan(eqx::maximum(f32({kNaN}, {1}), f32({kNaN}, {1})).item<float>()));
  CHECK(std::isnan(eqx::minimum(f32({kNaN}, {1}), f32({kNaN}, {1})).item<float>()));
  CHECK(!std::signbit(eqx::maximum(f32({-0.f}, {1}), f32({0.f}, {1})).item<float>()));
  CHECK(std::signbit(eqx::maximum(f32({0.f}, {1}), f32({-0.f}, {1})).item<float>()));
  CHECK(std::signbit(eqx::minimum(f32({0.f}, {1}), f32({-0.f}, {1})).item<float>()));
  CHECK(!std::signbit(eqx::minimum(f32({-0.f}, {1}), f32({0.f}, {1})).item<float>()));
}

// ------------------------------------------------------------------ comparisons and logic

TEST_CASE("comparisons give bool, NaN compares unequal to everything", "[elementwise]") {
  eqx::Array a = f32({1, 2, 3, kNaN}, {4});
  eqx::Array b = f32({2, 2, 2, kNaN}, {4});
  require_exact<bool>(a == b, eqx::bool_, {4}, {false, true, false, false});
  require_exact<bool>(a != b, eqx::bool_, {4}, {true, false, true, true});
  require_exact<bool>(a < b, eqx::bool_, {4}, {true, false, false, false});
  require_exact<bool>(a <= b, eqx::bool_, {4}, {true, true, false, false});
  require_exact<bool>(a > b, eqx::bool_, {4}, {false, false, true, false});
  require_exact<bool>(a >= b, eqx::bool_, {4}, {false, true, true, false});
  require_exact<bool>(eqx::equal(a, 2), eqx::bool_, {4}, {false, true, false, false});
  require_exact<bool>(eqx::not_equal(a, kNaN), eqx::bool_, {4}, {true, true, true, true});
  require_exact<bool>(eqx::less(a, 2.5), eqx::bool_, {4}, {true, true, false, false});
  require_exact<bool>(eqx::less_equal(2, a), eqx::bool_, {4}, {false, true, true, false});
  require_exact<bool>(eqx::greater(a, 1), eqx::bool_, {4}, {false, true, true, false});
  require_exact<bool>(eqx::greater_equal(a, 3.0), eqx::bool_, {4}, {false, false, true, false});

  // int Array against a float scalar compares in float: 1 < 1.5
  require_exact<bool>(eqx::array({1, 2}) < 1.5, eqx::bool_, {2}, {true, false});
  // u32 vs i32 compare as i32
  require_exact<bool>(eqx::array({1u, 5u}) > eqx::array({-1, 6}), eqx::bool_, {2}, {true, false});
  require_exact<bool>(eqx::array({true, false}) == eqx::array({true, true}), eqx::bool_, {2}, {true, false});
  require_exact<bool>(eqx::array({true, false}) > eqx::array({false, false}), eqx::bool_, {2}, {true, false});
  require_exact<bool>(eqx::array({1.0}) == eqx::array({1.f}), eqx::bool_, {1}, {true});
  require_exact<bool>(f32({-0.f}, {1}) == 0, eqx::bool_, {1}, {true});
}

TEST_CASE("logical and/or/xor/not: logical on bool, bitwise on integers", "[elementwise]") {
  eqx::Array p = eqx::array({true, true, false, false});
  eqx::Array q = eqx::array({true, false, true, false});
  require_exact<bool>(p & q, eqx::bool_, {4}, {true, false, false, false});
  require_exact<bool>(p | q, eqx::bool_, {4}, {true, true, true, false});
  require_exact<bool>(p ^ q, eqx::bool_, {4}, {false, true, true, false});
  require_exact<bool>(eqx::logical_and(p, true), eqx::bool_, {4}, {true, true, false, false});
  require_exact<bool>(eqx::logical_or(false, q), eqx::bool_, {4}, {true, false, true, false});
  require_exact<bool>(eqx::logical_xor(p, true), eqx::bool_, {4}, {false, false, true, true});
  require_exact<bool>(!p, eqx::bool_, {4}, {false, false, true, true});
  require_exact<bool>(~q, eqx::bool_, {4}, {false, true, false, true});
  require_exact<bool>(eqx::logical_not(eqx::array(true)), eqx::bool_, {}, {false});

  // np.bitwise_and/or/xor([12, -1, 5], [10, 7, 3]) -> [8 7 1] [14 -1 7] [6 -8 6]
  eqx::Array a = eqx::array({12, -1, 5});
  eqx::Array b = eqx::array({10, 7, 3});
  require_exact<i32>(a & b, eqx::int32, {3}, {8, 7, 1});
  require_exact<i32>(a | b, eqx::int32, {3}, {14, -1, 7});
  require_exact<i32>(a ^ b, eqx::int32, {3}, {6, -8, 6});
  // np.invert([0, 5, -1]) -> [-1 -6 0]; np.invert(np.uint32([0, 5])) -> [4294967295 4294967290]
  require_exact<i32>(~eqx::array({0, 5, -1}), eqx::int32, {3}, {-1, -6, 0});
  require_exact<u32>(eqx::logical_not(eqx::array({0u, 5u})), eqx::uint32, {2}, {4294967295u, 4294967290u});
  require_exact<u32>(eqx::array({12u}) & 10, eqx::uint32, {1}, {8u});
  // bool with int promotes to int32
  require_exact<i32>(eqx::array({true, false}) | eqx::array({2, 2}), eqx::int32, {2}, {3, 2});

  eqx::Array f = f32({1.f}, {1});
  REQUIRE_THROWS_AS(f & f, eqx::DTypeError);
  REQUIRE_THROWS_WITH(f & f, Contains("eqx::and: got dtype float32, but and needs bool, int32 or uint32"));
  REQUIRE_THROWS_WITH(eqx::logical_or(f, true), Contains("eqx::or: got dtype float32"));
  REQUIRE_THROWS_WITH(eqx::logical_xor(eqx::array({1.0}), 1), Contains("eqx::xor: got dtype float64"));
  REQUIRE_THROWS_AS(!f, eqx::DTypeError);
  REQUIRE_THROWS_WITH(!f, Contains("eqx::not: got dtype float32, but not needs bool, int32 or uint32"));
}

// ------------------------------------------------------------------ where

TEST_CASE("where selects and broadcasts all three operands", "[elementwise]") {
  eqx::Array c = eqx::array({true, false, true});
  eqx::Array x = f32({1, 2, 3}, {3});
  eqx::Array y = f32({-1, -2, -3}, {3});
  require_exact<float>(eqx::where(c, x, y), eqx::float32, {3}, {1.f, -2.f, 3.f});
  // scalar branches
  require_exact<float>(eqx::where(c, x, 0.0), eqx::float32, {3}, {1.f, 0.f, 3.f});
  require_exact<float>(eqx::where(c, 5, y), eqx::float32, {3}, {5.f, -2.f, 5.f});
  require_exact<i32>(eqx::where(c, 1, 0), eqx::int32, {3}, {1, 0, 1});
  require_exact<float>(eqx::where(c, 1.5f, 0), eqx::float32, {3}, {1.5f, 0.f, 1.5f});
  require_exact<bool>(eqx::where(c, false, true), eqx::bool_, {3}, {false, true, false});
  // branch dtypes promote: i32 with f32 -> f32, int with weak 0.5 -> f32
  require_exact<float>(eqx::where(c, eqx::array({1, 2, 3}), y), eqx::float32, {3}, {1.f, -2.f, 3.f});
  require_exact<float>(eqx::where(c, eqx::array({1, 2, 3}), 0.5), eqx::float32, {3}, {1.f, 0.5f, 3.f});
  // the typical use: relu
  require_exact<float>(eqx::where(y + 2 > 0, y + 2, 0), eqx::float32, {3}, {1.f, 0.f, 0.f});

  // all three broadcast: cond [3,1], on_true [1,4], on_false []
  eqx::Array cond = eqx::array(std::vector<bool>{true, false, true}, {3, 1});
  eqx::Array t = f32({10, 20, 30, 40}, {1, 4});
  require_exact<float>(eqx::where(cond, t, -1.f), eqx::float32, {3, 4},
                       {10, 20, 30, 40, -1, -1, -1, -1, 10, 20, 30, 40});
  // cond [4], on_true [3,1], on_false [2,1,1] -> [2,3,4]
  eqx::Array c4 = eqx::array({true, false, false, true});
  eqx::Array t31 = i32s({1, 2, 3}, {3, 1});
  eqx::Array f211 = i32s({-1, -2}, {2, 1, 1});
  require_exact<i32>(eqx::where(c4, t31, f211), eqx::int32, {2, 3, 4},
                     {1, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 3, 1, -2, -2, 1, 2, -2, -2, 2, 3, -2, -2, 3});
  // rank-0 condition
  require_exact<float>(eqx::where(eqx::array(false), x, y), eqx::float32, {3}, {-1.f, -2.f, -3.f});

  REQUIRE_THROWS_AS(eqx::where(x, x, y), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::where(x, x, y), Contains("eqx::where: the condition has dtype float32, it must be bool"));
  REQUIRE_THROWS_AS(eqx::where(c, x, f32({1, 2}, {2})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::where(c, x, f32({1, 2}, {2})),
                      Contains("eqx::where: shapes [3] and [2] cannot be broadcast together"));
  REQUIRE_THROWS_WITH(eqx::where(eqx::array({true, false}), x, y),
                      Contains("eqx::where: shapes [2] and [3] cannot be broadcast together"));
}

// ------------------------------------------------------------------ unary math

TEST_CASE("exp, expm1, sin, cos, tanh, logistic, sigmoid, erf match numpy float32", "[elementwise]") {
  eqx::Array x = f32({-2.5f, -1, -0.5f, 0, 0.5f, 1, 2.5f}, {7});
  require_close(eqx::exp(x), {7},
                {0.0820850059390068f, 0.3678794205188751f, 0.6065306663513184f, 1.0f, 1.6487212181091309f,
                 2.7182819843292236f, 12.182493209838867f});
  require_close(eqx::expm1(x), {7},
                {-0.9179150462150574f, -0.6321205496788025f, -0.39346933364868164f, 0.0f, 0.6487212777137756f,
                 1.718281865119934f, 11.182494163513184f});
  require_close(eqx::sin(x), {7},
                {-0.5984721779823303f, -0.8414710164070129f, -0.4794255495071411f, 0.0f, 0.4794255495071411f,
                 0.8414710164070129f, 0.5984721779823303f});
  require_close(eqx::cos(x), {7},
                {-0.8011435866355896f, 0.5403022766113281f, 0.8775825500488281f, 1.0f, 0.8775825500488281f,
                 0.5403022766113281f, -0.8011435866355896f});
  require_close(eqx::tanh(x), {7},
                {-0.9866142868995667f, -0.7615941762924194f, -0.46211719512939453f, 0.0f, 0.46211719512939453f,
                 0.7615941762924194f, 0.9866142868995667f});
  const std::vector<float> logistic = {0.07585818320512772f, 0.2689414322376251f, 0.3775406777858734f, 0.5f,
                                       0.622459352016449f,   0.7310585975646973f, 0.9241418242454529f};
  require_close(eqx::logistic(x), {7}, logistic);
  require_close(eqx::sigmoid(x), {7}, logistic);
  require_close(eqx::erf(x), {7},
                {-0.9995930194854736f, -0.8427007794380188f, -0.5204998850822449f, 0.0f, 0.5204998850822449f,
                 0.8427007794380188f, 0.9995930194854736f});
  // small arguments keep their precision: np.expm1(np.float32(1e-7)), np.log1p(np.float32(1e-7))
  require_close(eqx::expm1(f32({1e-7f}, {1})), {1}, {1.000000082740371e-07f}, 1e-6, 0);
  require_close(eqx::log1p(f32({1e-7f, -0.5f}, {2})), {2}, {9.999999406318238e-08f, -0.6931471824645996f}, 1e-6, 0);
  // np.sin(np.linspace(-10, 10, 7, dtype=np.float32)): range reduction beyond pi
  require_close(eqx::sin(eqx::linspace(-10, 10, 7)), {7},
                {0.5440210700035095f, -0.3741510808467865f, 0.19056788086891174f, 0.0f, -0.19056788086891174f,
                 0.3741510808467865f, -0.5440210700035095f});
  // saturation and special values
  require_close(eqx::exp(f32({100.f, -200.f, -kInf, kNaN}, {4})), {4}, {kInf, 0.f, 0.f, kNaN});
  require_close(eqx::tanh(f32({20.f, -20.f}, {2})), {2}, {1.f, -1.f});
  require_close(eqx::logistic(f32({-100.f, 100.f}, {2})), {2}, {0.f, 1.f}, 2e-6, 1e-30);
  require_close(eqx::erf(f32({kInf, -kInf}, {2})), {2}, {1.f, -1.f});
}

TEST_CASE("log, log1p, sqrt, rsqrt match numpy float32", "[elementwise]") {
  eqx::Array y = f32({0.25f, 1, 2, 10}, {2, 2});
  require_close(eqx::log(y), {2, 2}, {-1.3862943649291992f, 0.0f, 0.6931471824645996f, 2.3025851249694824f});
  require_close(eqx::log1p(y), {2, 2}, {0.2231435626745224f, 0.6931471824645996f, 1.0986123085021973f, 2.397895336151123f});
  require_close(eqx::sqrt(y), {2, 2}, {0.5f, 1.0f, 1.4142135381698608f, 3.1622776985168457f});
  require_close(eqx::rsqrt(y), {2, 2}, {2.0f, 1.0f, 0.7071067690849304f, 0.3162277638912201f});
  // np.log([0., -1.]) -> [-inf, nan]; np.sqrt(-1.) -> nan; 1/np.sqrt(0.) -> inf
  require_close(eqx::log(f32({0.f, -1.f, kInf}, {3})), {3}, {-kInf, kNaN, kInf});
  require_close(eqx::sqrt(f32({-1.f, 0.f, kInf}, {3})), {3}, {kNaN, 0.f, kInf});
  require_close(eqx::rsqrt(f32({0.f, -1.f, kInf}, {3})), {3}, {kInf, kNaN, 0.f});
  require_close(eqx::log1p(f32({-1.f, -2.f}, {2})), {2}, {-kInf, kNaN});

  // float64 keeps float64 (values from numpy float64)
  eqx::Array d = eqx::array({2.0, 10.0});
  REQUIRE(eqx::log(d).dtype() == eqx::float64);
  auto ld = eqx::log(d).to_vector<double>();
  REQUIRE(ld[0] == Approx(0.6931471805599453).epsilon(1e-14));
  REQUIRE(ld[1] == Approx(2.302585092994046).epsilon(1e-14));
  auto sd = eqx::sqrt(d).to_vector<double>();
  REQUIRE(sd[0] == Approx(1.4142135623730951).epsilon(1e-15));
  auto ed = eqx::exp(eqx::array(1.0)).item<double>();
  REQUIRE(ed == Approx(2.718281828459045).epsilon(1e-15));
}

TEST_CASE("integer and bool inputs to float functions give float32", "[elementwise]") {
  // np.exp(np.array([0, 1, 2])).astype(np.float32)
  require_close(eqx::exp(eqx::array({0, 1, 2})), {3}, {1.0f, 2.7182817459106445f, 7.389056205749512f});
  require_close(eqx::sqrt(eqx::array({4u, 9u})), {2}, {2.f, 3.f});
  require_close(eqx::log(eqx::array({true, false})), {2}, {0.f, -kInf});
  require_close(eqx::sin(eqx::array(0)), {}, {0.f});
  for (auto fn : {eqx::exp, eqx::log, eqx::log1p, eqx::expm1, eqx::sqrt, eqx::rsqrt, eqx::sin, eqx::cos, eqx::tanh,
                  eqx::logistic, eqx::erf, eqx::sigmoid})
    REQUIRE(fn(eqx::array({1, 2})).dtype() == eqx::float32);

  // the primitives themselves refuse integers, naming the op and the fix
  REQUIRE_THROWS_AS(eqx::bind1(eqx::prim::exp, {eqx::array({1})}), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::bind1(eqx::prim::exp, {eqx::array({1})}),
                      Contains("eqx::exp: got dtype int32, but exp needs a floating dtype (float32, float64)") &&
                          Contains("eqx::astype"));
}

TEST_CASE("abs, sign and square", "[elementwise]") {
  eqx::Array x = f32({-2.5f, 0.f, -0.f, 3.f, kNaN, -kInf}, {6});
  require_exact<float>(eqx::abs(x), eqx::float32, {6}, {2.5f, 0.f, 0.f, 3.f, kNaN, kInf});
  REQUIRE_FALSE(std::signbit(eqx::abs(x).to_vector<float>()[2]));
  // np.sign([-2.5, 0, -0., 3, nan, -inf]) -> [-1, 0, 0, 1, nan, -1]
  eqx::Array s = eqx::sign(x);
  require_exact<float>(s, eqx::float32, {6}, {-1.f, 0.f, 0.f, 1.f, kNaN, -1.f});
  // -0.0 keeps its sign bit (lax.sign / jnp.sign; numpy gives +0.0)
  REQUIRE(std::signbit(s.to_vector<float>()[2]));
  REQUIRE_FALSE(std::signbit(s.to_vector<float>()[1]));

  // np.sign(np.int32([-5, 0, 7])) -> [-1 0 1]; np.abs -> [5 0 7]
  require_exact<i32>(eqx::sign(eqx::array({-5, 0, 7})), eqx::int32, {3}, {-1, 0, 1});
  require_exact<i32>(eqx::abs(eqx::array({-5, 0, 7})), eqx::int32, {3}, {5, 0, 7});
  require_exact<u32>(eqx::sign(eqx::array({0u, 9u})), eqx::uint32, {2}, {0u, 1u});
  require_exact<u32>(eqx::abs(eqx::array({0u, 4000000000u})), eqx::uint32, {2}, {0u, 4000000000u});
  require_exact<double>(eqx::sign(eqx::array({-0.5, 2.0})), eqx::float64, {2}, {-1.0, 1.0});

  require_exact<float>(eqx::square(f32({-3.f, 0.5f}, {2})), eqx::float32, {2}, {9.f, 0.25f});
  require_exact<i32>(eqx::square(eqx::array({-4, 3})), eqx::int32, {2}, {16, 9});
}

// ------------------------------------------------------------------ astype

TEST_CASE("astype converts between every dtype", "[elementwise]") {
  SECTION("float -> int truncates toward zero, saturates, NaN -> 0") {
    eqx::Array x = f32({1.7f, -1.7f, 3e9f, -3e9f, kNaN, kInf, -kInf, 0.5f}, {8});
    require_exact<i32>(eqx::astype(x, eqx::int32), eqx::int32, {8},
                       {1, -1, 2147483647, -2147483648, 0, 2147483647, -2147483648, 0});
    require_exact<u32>(eqx::astype(x, eqx::uint32), eqx::uint32, {8}, {1u, 0u, 3000000000u, 0u, 0u, 4294967295u, 0u, 0u});
    require_exact<u32>(eqx::astype(f32({1e10f}, {1}), eqx::uint32), eqx::uint32, {1}, {4294967295u});
    eqx::Array d = eqx::array({2147483647.5, -2147483648.9, 1e300});
    require_exact<i32>(eqx::astype(d, eqx::int32), eqx::int32, {3}, {2147483647, -2147483648, 2147483647});
  }
  SECTION("-> bool is x != 0 (NaN is true)") {
    require_exact<bool>(eqx::astype(f32({0.f, -0.f, 0.1f, kNaN, -kInf}, {5}), eqx::bool_), eqx::bool_, {5},
                        {false, false, true, true, true});
    require_exact<bool>(eqx::astype(eqx::array({0, -3, 2}), eqx::bool_), eqx::bool_, {3}, {false, true, true});
    require_exact<bool>(eqx::astype(eqx::array({0u, 7u}), eqx::bool_), eqx::bool_, {2}, {false, true});
  }
  SECTION("bool -> numbers") {
    eqx::Array b = eqx::array({true, false});
    require_exact<float>(eqx::astype(b, eqx::float32), eqx::float32, {2}, {1.f, 0.f});
    require_exact<double>(eqx::astype(b, eqx::float64), eqx::float64, {2}, {1.0, 0.0});
    require_exact<i32>(eqx::astype(b, eqx::int32), eqx::int32, {2}, {1, 0});
    require_exact<u32>(eqx::astype(b, eqx::uint32), eqx::uint32, {2}, {1u, 0u});
  }
  SECTION("int -> float and between widths") {
    require_exact<float>(eqx::astype(eqx::array({-3, 16777217}), eqx::float32), eqx::float32, {2}, {-3.f, 16777216.f});
    require_exact<double>(eqx::astype(eqx::array({-3, 16777217}), eqx::float64), eqx::float64, {2}, {-3.0, 16777217.0});
    require_exact<float>(eqx::astype(eqx::array({4000000000u}), eqx::float32), eqx::float32, {1}, {4e9f});
    require_exact<float>(eqx::astype(eqx::array({0.1}), eqx::float32), eqx::float32, {1}, {0.1f});
    require_exact<double>(eqx::astype(eqx::array({0.1f}), eqx::float64), eqx::float64, {1}, {static_cast<double>(0.1f)});
    // between int32 and uint32: modular, as numpy's astype
    require_exact<u32>(eqx::astype(eqx::array({-1, 5}), eqx::uint32), eqx::uint32, {2}, {4294967295u, 5u});
    require_exact<i32>(eqx::astype(eqx::array({4294967295u}), eqx::int32), eqx::int32, {1}, {-1});
  }
  SECTION("shape is kept, including rank 0 and size 0") {
    require_exact<i32>(eqx::astype(eqx::array(2.9f), eqx::int32), eqx::int32, {}, {2});
    eqx::Array e = eqx::astype(eqx::zeros({0, 2}), eqx::bool_);
    REQUIRE(e.shape() == eqx::Shape{0, 2});
    REQUIRE(e.dtype() == eqx::bool_);
  }
}

// ------------------------------------------------------------------ broadcasting

TEST_CASE("broadcasting follows numpy", "[elementwise][broadcast]") {
  // scalar with matrix
  eqx::Array m = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  require_exact<float>(m + eqx::array(10.f), eqx::float32, {2, 3}, {11, 12, 13, 14, 15, 16});
  require_exact<float>(eqx::array(10.f) - m, eqx::float32, {2, 3}, {9, 8, 7, 6, 5, 4});
  // row with matrix
  require_exact<float>(m * f32({1, 0, -1}, {3}), eqx::float32, {2, 3}, {1, 0, -3, 4, 0, -6});
  require_exact<float>(m * f32({1, 0, -1}, {1, 3}), eqx::float32, {2, 3}, {1, 0, -3, 4, 0, -6});
  // column with matrix
  require_exact<float>(m - f32({1, 2}, {2, 1}), eqx::float32, {2, 3}, {0, 1, 2, 2, 3, 4});
  // [3,1] + [1,4]: np.arange(3).reshape(3, 1) * 10 + np.arange(4).reshape(1, 4)
  eqx::Array col = f32({0, 10, 20}, {3, 1});
  eqx::Array row = f32({0, 1, 2, 3}, {1, 4});
  require_exact<float>(col + row, eqx::float32, {3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  require_exact<float>(row + col, eqx::float32, {3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  // [2,1,3] + [4,1]: np.arange(6.).reshape(2, 1, 3) + np.arange(4.).reshape(4, 1) * 100
  eqx::Array a213 = f32({0, 1, 2, 3, 4, 5}, {2, 1, 3});
  eqx::Array b41 = f32({0, 100, 200, 300}, {4, 1});
  require_exact<float>(a213 + b41, eqx::float32, {2, 4, 3},
                       {0, 1, 2, 100, 101, 102, 200, 201, 202, 300, 301, 302,
                        3, 4, 5, 103, 104, 105, 203, 204, 205, 303, 304, 305});
  require_exact<bool>(a213 < b41, eqx::bool_, {2, 4, 3},
                      {false, false, false, true, true, true, true, true, true, true, true, true,
                       false, false, false, true, true, true, true, true, true, true, true, true});
  // rank 0 with rank 0
  require_exact<i32>(eqx::array(3) * eqx::array(-4), eqx::int32, {}, {-12});
  require_exact<float>(eqx::array(1.5f) + 1, eqx::float32, {}, {2.5f});
  // size 0 broadcasts against size 1 and equal sizes only
  eqx::Array empty = eqx::zeros({0, 3});
  eqx::Array r = empty + f32({1, 2, 3}, {3});
  REQUIRE(r.shape() == eqx::Shape{0, 3});
  REQUIRE(r.size() == 0);
  REQUIRE((eqx::zeros({2, 0}) * eqx::ones({2, 1})).shape() == eqx::Shape{2, 0});
  REQUIRE((eqx::zeros({0}) + eqx::array(1.f)).shape() == eqx::Shape{0});
  REQUIRE((eqx::zeros({4, 1, 3}) + eqx::zeros({0, 1})).shape() == eqx::Shape{4, 0, 3});
  // size-1 axes in the middle and leading 1s
  eqx::Array a1 = f32({1, 2}, {1, 2, 1});
  require_exact<float>(a1 + f32({10, 20, 30}, {3}), eqx::float32, {1, 2, 3}, {11, 21, 31, 12, 22, 32});
}

TEST_CASE("shapes that do not broadcast throw ShapeError naming both", "[elementwise][broadcast]") {
  eqx::Array a = eqx::zeros({2, 3});
  eqx::Array b = eqx::zeros({4});
  REQUIRE_THROWS_AS(a + b, eqx::ShapeError);
  REQUIRE_THROWS_WITH(a + b, Contains("eqx::add: shapes [2,3] and [4] cannot be broadcast together") &&
                                 Contains("axis 1 of the result: 3 vs 4"));
  REQUIRE_THROWS_WITH(eqx::zeros({3, 2}) * eqx::zeros({2, 3}),
                      Contains("eqx::mul: shapes [3,2] and [2,3] cannot be broadcast together") &&
                          Contains("axis 0 of the result: 3 vs 2"));
  REQUIRE_THROWS_WITH(eqx::zeros({0}) - eqx::zeros({2}), Contains("eqx::sub: shapes [0] and [2]"));
  REQUIRE_THROWS_WITH(eqx::zeros({5, 2, 1}) < eqx::zeros({3, 1}), Contains("eqx::lt: shapes [5,2,1] and [3,1]"));
  REQUIRE_THROWS_WITH(eqx::maximum(eqx::zeros({2}), eqx::zeros({3})), Contains("eqx::max: shapes [2] and [3]"));
  REQUIRE_THROWS_WITH(eqx::divide(eqx::zeros({2}), eqx::zeros({3})), Contains("eqx::div: shapes [2] and [3]"));
  REQUIRE_THROWS_WITH(eqx::ones({2}, eqx::bool_) & eqx::ones({3}, eqx::bool_), Contains("eqx::and: shapes [2] and [3]"));
}

TEST_CASE("binary primitives need equal dtypes", "[elementwise]") {
  REQUIRE_THROWS_AS(eqx::bind1(eqx::prim::add, {eqx::array({1.f}), eqx::array({1})}), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::bind1(eqx::prim::add, {eqx::array({1.f}), eqx::array({1})}),
                      Contains("eqx::add: operands have dtypes float32 and int32"));
  REQUIRE_THROWS_WITH(eqx::bind1(eqx::prim::select, {eqx::array({true}), eqx::array({1.f}), eqx::array({1.0})}),
                      Contains("eqx::select: branches have dtypes float32 and float64"));
  REQUIRE_THROWS_WITH(eqx::bind1(eqx::prim::div, {eqx::array({1}), eqx::array({1})}),
                      Contains("eqx::div: got dtype int32, but div needs a floating dtype"));
}

TEST_CASE("results of transpose and slice as inputs", "[elementwise][broadcast]") {
  // m = np.arange(12.).reshape(3, 4)
  eqx::Array m = eqx::reshape(eqx::arange(0.0, 12.0, 1.0, eqx::float32), {3, 4});
  eqx::Array mt = eqx::transpose(m);
  REQUIRE(mt.shape() == eqx::Shape{4, 3});
  // m.T + [1, 2, 3]
  require_exact<float>(mt + f32({1, 2, 3}, {3}), eqx::float32, {4, 3}, {1, 6, 11, 2, 7, 12, 3, 8, 13, 4, 9, 14});
  // m.T * m.T and m.T - m.T[:, :1]
  require_exact<float>(mt * mt, eqx::float32, {4, 3}, {0, 16, 64, 1, 25, 81, 4, 36, 100, 9, 49, 121});
  require_exact<float>(mt - eqx::slice(mt, 1, 0, 1), eqx::float32, {4, 3}, {0, 4, 8, 0, 4, 8, 0, 4, 8, 0, 4, 8});
  // m[:, 1::2] * 2
  eqx::Array s = eqx::slice(m, {{}, {1, {}, 2}});
  require_exact<float>(s * 2, eqx::float32, {3, 2}, {2, 6, 10, 14, 18, 22});
  // m[::-1, ::3] > 4 and where on it
  eqx::Array rev = eqx::slice(m, {{{}, {}, -1}, {{}, {}, 3}});
  require_exact<float>(rev, eqx::float32, {3, 2}, {8, 11, 4, 7, 0, 3});
  require_exact<bool>(rev > 4, eqx::bool_, {3, 2}, {true, true, false, true, false, false});
  require_exact<float>(eqx::where(rev > 4, rev, s), eqx::float32, {3, 2}, {8, 11, 5, 7, 9, 11});
  require_close(eqx::sqrt(eqx::transpose(eqx::slice(m, 0, 1, 3))), {4, 2},
                {2.f, 2.828427125f, 2.236068f, 3.f, 2.449489743f, 3.16227766f, 2.645751311f, 3.31662479f});
  // rank 3 transposed against a broadcast column
  eqx::Array t3 = eqx::transpose(eqx::reshape(eqx::arange(6), {1, 2, 3}), {2, 0, 1});  // [3,1,2]
  require_exact<i32>(t3 * eqx::array(std::vector<i32>{1, 10}, {2, 1}), eqx::int32, {3, 2, 2},
                     {0, 3, 0, 30, 1, 4, 10, 40, 2, 5, 20, 50});
}

// ------------------------------------------------------------------ large kernels (multi-threaded)

TEST_CASE("large elementwise kernels match a per-element loop", "[elementwise][threads]") {
  constexpr int n = 100003;  // > 32768 elements, odd so chunks do not align
  eqx::Array x = eqx::arange(0.0, n, 1.0, eqx::float32) * 0.001 - 50;
  const std::vector<float> xv = x.to_vector<float>();
  REQUIRE(xv[1] == 0.001f - 50.f);

  SECTION("unary") {
    auto e = eqx::exp(x * 0.1).to_vector<float>();
    auto s = eqx::sin(x).to_vector<float>();
    auto t = eqx::tanh(x).to_vector<float>();
    auto sg = eqx::sign(x).to_vector<float>();
    auto ng = (-x).to_vector<float>();
    for (int i = 0; i < n; ++i) {
      INFO("i = " << i << ", x = " << xv[i]);
      REQUIRE(e[i] == Approx(std::exp(xv[i] * 0.1f)).epsilon(2e-6));
      REQUIRE(s[i] == Approx(std::sin(xv[i])).epsilon(2e-6).margin(1e-6));
      REQUIRE(t[i] == Approx(std::tanh(xv[i])).epsilon(2e-6).margin(1e-7));
      REQUIRE(sg[i] == (xv[i] > 0 ? 1.f : (xv[i] < 0 ? -1.f : 0.f)));
      REQUIRE(ng[i] == -xv[i]);
    }
  }
  SECTION("binary, same shape and broadcast") {
    eqx::Array y = eqx::cos(x);
    const std::vector<float> yv = y.to_vector<float>();
    auto sum = (x + y).to_vector<float>();
    auto mx = eqx::maximum(x, y).to_vector<float>();
    auto lt = (x < y).to_vector<bool>();
    auto pw = eqx::pow(x, 2).to_vector<float>();
    for (int i = 0; i < n; ++i) {
      INFO("i = " << i);
      REQUIRE(sum[i] == xv[i] + yv[i]);
      REQUIRE(mx[i] == std::max(xv[i], yv[i]));
      REQUIRE(lt[i] == (xv[i] < yv[i]));
      REQUIRE(pw[i] == Approx(xv[i] * xv[i]).epsilon(1e-6));
    }
    // [307, 1] * [1, 211] = 64777 elements through the broadcast path
    eqx::Array col = eqx::reshape(eqx::arange(307), {307, 1});
    eqx::Array row = eqx::reshape(eqx::arange(211), {1, 211});
    auto prod = (col * row + row).to_vector<i32>();
    auto below = (col < row).to_vector<bool>();  // a comparison's bool output through the broadcast segments
    REQUIRE(prod.size() == 307u * 211u);
    REQUIRE(below.size() == 307u * 211u);
    for (int i = 0; i < 307; ++i)
      for (int j = 0; j < 211; ++j) {
        INFO("i = " << i << ", j = " << j);
        REQUIRE(prod[i * 211 + j] == i * j + j);
        REQUIRE(below[i * 211 + j] == (i < j));
      }
    // [2,1,3] x [N,1]-style broadcast with a repeated inner axis: [40, 1, 3] + [300, 1]
    eqx::Array a = eqx::reshape(eqx::arange(120), {40, 1, 3});
    eqx::Array b = eqx::reshape(eqx::arange(300) * 1000, {300, 1});
    auto c = (a + b).to_vector<i32>();
    REQUIRE(c.size() == 40u * 300u * 3u);
    for (int i = 0; i < 40; ++i)
      for (int j = 0; j < 300; ++j)
        for (int k = 0; k < 3; ++k) REQUIRE(c[(i * 300 + j) * 3 + k] == i * 3 + k + j * 1000);
  }
  SECTION("where, astype and logic") {
    eqx::Array relu = eqx::where(x > 0, x, 0.0);
    auto rv = relu.to_vector<float>();
    auto iv = eqx::astype(x * 100, eqx::int32).to_vector<i32>();
    auto bv = eqx::astype(x, eqx::bool_).to_vector<bool>();
    eqx::Array bits = eqx::astype(x * 1000, eqx::int32);
    auto xorv = (bits ^ 0x5555).to_vector<i32>();
    const auto bitsv = bits.to_vector<i32>();
    for (int i = 0; i < n; ++i) {
      INFO("i = " << i);
      REQUIRE(rv[i] == (xv[i] > 0 ? xv[i] : 0.f));
      REQUIRE(iv[i] == static_cast<i32>(xv[i] * 100.f));
      REQUIRE(bv[i] == (xv[i] != 0.f));
      REQUIRE(xorv[i] == (bitsv[i] ^ 0x5555));
    }
    // where with all three broadcast over a large result: [300,1] ? [1,200] : []
    eqx::Array cond = (eqx::reshape(eqx::arange(300), {300, 1}) & 1) == 0;
    auto wv = eqx::where(cond, eqx::reshape(eqx::arange(200), {1, 200}), -1).to_vector<i32>();
    REQUIRE(wv.size() == 60000u);
    for (int i = 0; i < 300; ++i)
      for (int j = 0; j < 200; ++j) REQUIRE(wv[i * 200 + j] == (i % 2 == 0 ? j : -1));
  }
}

TEST_CASE("exp is right below the smallest normal result, on vectorised and scalar paths alike", "[elementwise]") {
  // 17 elements: Eigen runs the first 16 as packets and the last one as a scalar.
  std::vector<float> xf;
  for (int i = 0; i < 17; ++i) xf.push_back(-80.0f - 2.0f * static_cast<float>(i));  // -80 .. -112
  std::vector<float> want;
  for (float x : xf) want.push_back(std::exp(x));
  std::vector<float> got = eqx::exp(eqx::array(xf)).to_vector<float>();
  for (std::size_t i = 0; i < xf.size(); ++i) CHECK(got[i] == want[i]);  // exact: subnormals and 0 included
  std::vector<double> xd{-710, -720, -740, -745, -750, -800, -1000, -730, -709};
  std::vector<double> gd = eqx::exp(eqx::array(xd)).to_vector<double>();
  for (std::size_t i = 0; i < xd.size(); ++i) CHECK(gd[i] == std::exp(xd[i]));
}

// ------------------------------------------------------------------ clip

TEST_CASE("clip matches numpy.clip; one-sided bounds; Array bounds broadcast; dtype kept", "[elementwise]") {
  eqx::Array x = f32({-2, -0.5f, 0, 0.3f, 1, 4, kNaN, -kInf}, {8});
  require_exact<float>(eqx::clip(x, 0.0, 1.0), eqx::float32, {8}, {0, 0, 0, 0.3f, 1, 1, kNaN, 0});
  require_exact<float>(eqx::clip(x, std::nullopt, 0.5), eqx::float32, {8}, {-2, -0.5f, 0, 0.3f, 0.5f, 0.5f, kNaN, -kInf});
  require_exact<float>(eqx::clip(x, -1, std::nullopt), eqx::float32, {8}, {-1, -0.5f, 0, 0.3f, 1, 4, kNaN, -1});
  require_exact<i32>(eqx::clip(i32s({-5, 2, 9}, {3}), 0, 5), eqx::int32, {3}, {0, 2, 5});
  eqx::Array lo = f32({0, -1}, {2, 1}), m = f32({1, 2, 3, -4, 5, 6}, {2, 3});
  require_exact<float>(eqx::clip(m, lo, f32({2}, {1})), eqx::float32, {2, 3}, {1, 2, 2, -1, 2, 2});
  // lo > hi: numpy and JAX give hi.
  require_exact<float>(eqx::clip(f32({0.5f}, {1}), 1.0, 0.0), eqx::float32, {1}, {0});
}

TEST_CASE("clip: gradient 1 inside, 0 outside (finite differences, float64), 0.5 at a bound; vmap", "[elementwise]") {
  auto loss = [](const eqx::Array& v) { return eqx::sum(eqx::clip(v, -1.0, 2.0) * eqx::array({1.0, 2.0, 3.0, 4.0, 5.0})); };
  std::vector<double> x{-3, -0.5, 0.25, 1.5, 7};
  std::vector<double> g = eqx::filter_grad(loss)(eqx::array(x)).to_vector<double>();
  const double h = 1e-6;
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::vector<double> up = x, down = x;
    up[i] += h;
    down[i] -= h;
    INFO("element " << i);
    CHECK(g[i] == Approx((loss(eqx::array(up)).item<double>() - loss(eqx::array(down)).item<double>()) / (2 * h)).margin(1e-6));
  }
  CHECK(g == std::vector<double>{0, 2, 3, 4, 0});
  // At a bound, maximum's and minimum's tie rule (as JAX): half the cotangent.
  CHECK(eqx::filter_grad([](const eqx::Array& v) { return eqx::sum(eqx::clip(v, -1.0, 2.0)); })(eqx::array({-1.0, 2.0}))
            .to_vector<double>() == std::vector<double>{0.5, 0.5});
  // vmap with a bound per example.
  eqx::Array xs = f32({-2, 0.5f, 3, -2, 0.5f, 3}, {2, 3}), his = f32({1, 0.25f}, {2});
  auto per_row = eqx::filter_vmap([](const eqx::Array& r, const eqx::Array& hi) { return eqx::clip(r, 0.0, hi); });
  require_exact<float>(per_row(xs, his), eqx::float32, {2, 3}, {0, 0.5f, 1, 0, 0.25f, 0.25f});
}


TEST_CASE("weak scalars: a recent one is handed out again, never a different value or a donated one", "[elementwise]") {
  using eqx::ScalarKind;
  using eqx::detail::ArrayAccess;
  using eqx::detail::weak_scalar;
  using eqx::Array;
  const Array a = weak_scalar(eqx::float32, ScalarKind::floating, 0.25, 0);
  const Array b = weak_scalar(eqx::float32, ScalarKind::floating, 0.25, 0);
  require_exact<float>(b, eqx::float32, {}, {0.25f});
  CHECK(ArrayAccess::storage_id(a) == ArrayAccess::storage_id(b));  // reused, not allocated again
  // Another dtype, kind or bit pattern (-0.0 is not 0.0) is another Array.
  const Array f64 = weak_scalar(eqx::float64, ScalarKind::floating, 0.25, 0);
  const Array i32v = weak_scalar(eqx::int32, ScalarKind::integer, 0, 1);
  const Array zero = weak_scalar(eqx::float32, ScalarKind::floating, 0.0, 0);
  const Array neg_zero = weak_scalar(eqx::float32, ScalarKind::floating, -0.0, 0);
  require_exact<double>(f64, eqx::float64, {}, {0.25});
  require_exact<i32>(i32v, eqx::int32, {}, {1});
  CHECK(ArrayAccess::storage_id(f64) != ArrayAccess::storage_id(a));
  CHECK(ArrayAccess::storage_id(neg_zero) != ArrayAccess::storage_id(zero));
  CHECK(std::signbit(neg_zero.item<float>()));
  CHECK_FALSE(std::signbit(zero.item<float>()));
  // Eager arithmetic with the same literal gives the same values each time.
  const Array x = eqx::array({1.0f, 2.0f});
  require_exact<float>((x + 0.25f) * 2.0f, eqx::float32, {2}, {2.5f, 4.5f});
  require_exact<float>((x + 0.25f) * 2.0f, eqx::float32, {2}, {2.5f, 4.5f});
  // A kept scalar is shared, so a donating jitted call leaves it (and the
  // next one handed out) valid; an unshared Array of the same value is donated.
  const Array kept = eqx::Operand(0.75f).as(eqx::float32);
  auto twice = eqx::filter_jit([](const Array& v) { return v * 2.0f; }, {.donate = eqx::Donate::all});
  require_exact<float>(twice(kept), eqx::float32, {}, {1.5f});
  CHECK_FALSE(kept.is_donated());
  const Array again = eqx::Operand(0.75f).as(eqx::float32);
  CHECK(ArrayAccess::storage_id(again) == ArrayAccess::storage_id(kept));
  require_exact<float>(again, eqx::float32, {}, {0.75f});
  Array own = eqx::array(0.75f);
  require_exact<float>(twice(own), eqx::float32, {}, {1.5f});
  CHECK(own.is_donated());
}

}  // namespace ops_elementwise_test

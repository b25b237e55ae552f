// Tests for eqx::Array, eqx::Shape, eqx::DType and printing (core/).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/format.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/shape.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace core_array_test {

using Catch::Contains;

namespace {

using i32 = std::int32_t;
using u32 = std::uint32_t;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

// ------------------------------------------------------------------ empty Array

TEST_CASE("default-constructed Array is empty (None) and every use throws ValueError", "[array]") {
  eqx::Array none;
  REQUIRE_FALSE(none.has_value());
  REQUIRE_THROWS_AS(none.shape(), eqx::ValueError);
  REQUIRE_THROWS_WITH(none.shape(), Contains("shape()") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.dtype(), Contains("dtype()") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.ndim(), Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.size(), Contains("empty Array (None)"));
  REQUIRE_THROWS_AS(none.item<float>(), eqx::ValueError);
  REQUIRE_THROWS_WITH(none.item<float>(), Contains("item()") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.to_vector<float>(), Contains("to_vector()") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.data<float>(), Contains("data()") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none.raw_data(), Contains("raw_data()") && Contains("empty Array (None)"));
  REQUIRE_FALSE(none.same_storage(none));
  REQUIRE_FALSE(none.same_storage(eqx::array(1.f)));

  // every operation rejects it, naming the op
  eqx::Array x = eqx::array({1.f, 2.f});
  REQUIRE_THROWS_AS(none + x, eqx::ValueError);
  REQUIRE_THROWS_WITH(none + x, Contains("eqx::add") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(x * none, Contains("eqx::mul") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(none + 1, Contains("empty Array (None)"));
  REQUIRE_THROWS_AS(eqx::exp(none), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::exp(none), Contains("eqx::exp") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(-none, Contains("eqx::neg") && Contains("input 0 is an empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::abs(none), Contains("eqx::abs") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::logical_not(none), Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::astype(none, eqx::int32), Contains("eqx::convert") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::where(none, x, x), Contains("eqx::select") && Contains("input 0 is an empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::where(x > 0, none, x), Contains("eqx::where") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::zeros_like(none), Contains("zeros_like") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::ones_like(none), Contains("ones_like") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::full_like(none, 2), Contains("full_like") && Contains("empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::transpose(none), Contains("transpose") && Contains("empty Array (None)"));

  // an Array copied from / assigned an empty Array is empty too
  eqx::Array copy = none;
  REQUIRE_FALSE(copy.has_value());
  eqx::Array y = eqx::array(1.f);
  y = none;
  REQUIRE_FALSE(y.has_value());
}

// ------------------------------------------------------------------ storage sharing

TEST_CASE("copying an Array is O(1) and shares its storage", "[array]") {
  eqx::Array a = eqx::array({1.f, 2.f, 3.f});
  eqx::Array b = a;
  REQUIRE(b.same_storage(a));
  REQUIRE(a.same_storage(b));
  REQUIRE(b.raw_data() == a.raw_data());
  REQUIRE(b.data<float>().data() == a.data<float>().data());

  eqx::Array c = eqx::array({1.f, 2.f, 3.f});  // equal values, own buffer
  REQUIRE_FALSE(c.same_storage(a));
  REQUIRE(c.raw_data() != a.raw_data());

  eqx::Array moved = std::move(b);
  REQUIRE(moved.same_storage(a));

  // operations never write into their inputs
  eqx::Array d = a + 1.f;
  REQUIRE_FALSE(d.same_storage(a));
  REQUIRE(a.to_vector<float>() == std::vector<float>{1.f, 2.f, 3.f});
  REQUIRE(d.to_vector<float>() == std::vector<float>{2.f, 3.f, 4.f});

  // astype to the same dtype and reshape to the same shape return the input itself
  REQUIRE(eqx::astype(a, eqx::float32).same_storage(a));
  REQUIRE(eqx::reshape(a, {3}).same_storage(a));
}

TEST_CASE("storage is 64-byte aligned", "[array]") {
  for (int n : {1, 3, 17, 100}) {
    eqx::Array a = eqx::zeros({n}, eqx::bool_);
    REQUIRE(reinterpret_cast<std::uintptr_t>(a.raw_data()) % 64 == 0);
  }
}

// ------------------------------------------------------------------ construction

TEST_CASE("eqx::array from initializer lists takes the dtype of the C++ values", "[array]") {
  eqx::Array f = eqx::array({1.5f, -2.f, 3.25f});
  REQUIRE(f.dtype() == eqx::float32);
  REQUIRE(f.shape() == eqx::Shape{3});
  REQUIRE(f.ndim() == 1);
  REQUIRE(f.size() == 3);
  REQUIRE(f.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.25f});

  eqx::Array i = eqx::array({4, -5, 6, 7});
  REQUIRE(i.dtype() == eqx::int32);
  REQUIRE(i.shape() == eqx::Shape{4});
  REQUIRE(i.to_vector<i32>() == std::vector<i32>{4, -5, 6, 7});

  eqx::Array b = eqx::array({true, false, true});
  REQUIRE(b.dtype() == eqx::bool_);
  REQUIRE(b.to_vector<bool>() == std::vector<bool>{true, false, true});

  eqx::Array d = eqx::array({0.1, 0.2});
  REQUIRE(d.dtype() == eqx::float64);
  REQUIRE(d.to_vector<double>() == std::vector<double>{0.1, 0.2});

  eqx::Array u = eqx::array({1u, 4000000000u});
  REQUIRE(u.dtype() == eqx::uint32);
  REQUIRE(u.to_vector<u32>() == std::vector<u32>{1u, 4000000000u});
}

TEST_CASE("eqx::array from std::vector with a Shape", "[array]") {
  SECTION("float32 matrix, row-major") {
    eqx::Array a = eqx::array(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(a.dtype() == eqx::float32);
    REQUIRE(a.shape() == eqx::Shape{2, 3});
    REQUIRE(a.ndim() == 2);
    REQUIRE(a.size() == 6);
    auto span = a.data<float>();
    REQUIRE(span.size() == 6);
    REQUIRE(span[0] == 1.f);
    REQUIRE(span[2] == 3.f);
    REQUIRE(span[3] == 4.f);
    REQUIRE(span[5] == 6.f);
  }
  SECTION("std::vector<bool>") {
    eqx::Array a = eqx::array(std::vector<bool>{true, false, false, true}, {2, 2});
    REQUIRE(a.dtype() == eqx::bool_);
    REQUIRE(a.shape() == eqx::Shape{2, 2});
    auto span = a.data<bool>();
    REQUIRE(span[0]);
    REQUIRE_FALSE(span[1]);
    REQUIRE_FALSE(span[2]);
    REQUIRE(span[3]);
  }
  SECTION("uint32") {
    eqx::Array a = eqx::array(std::vector<u32>{0u, 7u, 4294967295u}, {3, 1});
    REQUIRE(a.dtype() == eqx::uint32);
    REQUIRE(a.shape() == eqx::Shape{3, 1});
    REQUIRE(a.to_vector<u32>() == std::vector<u32>{0u, 7u, 4294967295u});
  }
  SECTION("double, rank 3") {
    eqx::Array a = eqx::array(std::vector<double>{1e-300, 2.5, -3.75, 1e300}, {1, 2, 2});
    REQUIRE(a.dtype() == eqx::float64);
    REQUIRE(a.shape() == eqx::Shape{1, 2, 2});
    REQUIRE(a.to_vector<double>() == std::vector<double>{1e-300, 2.5, -3.75, 1e300});
  }
  SECTION("int32 without a shape is rank 1") {
    eqx::Array a = eqx::array(std::vector<i32>{9, 8});
    REQUIRE(a.shape() == eqx::Shape{2});
    REQUIRE(a.to_vector<i32>() == std::vector<i32>{9, 8});
  }
}

TEST_CASE("rank-0 Arrays", "[array]") {
  eqx::Array f = eqx::array(3.5f);
  REQUIRE(f.dtype() == eqx::float32);
  REQUIRE(f.shape() == eqx::Shape{});
  REQUIRE(f.ndim() == 0);
  REQUIRE(f.size() == 1);
  REQUIRE(f.item<float>() == 3.5f);

  REQUIRE(eqx::array(true).dtype() == eqx::bool_);
  REQUIRE(eqx::array(true).item<bool>());
  REQUIRE(eqx::array(-7).dtype() == eqx::int32);
  REQUIRE(eqx::array(-7).item<i32>() == -7);
  REQUIRE(eqx::array(2.25).dtype() == eqx::float64);
  REQUIRE(eqx::array(7u).dtype() == eqx::uint32);

  eqx::Array from_vec = eqx::array(std::vector<i32>{42}, eqx::Shape{});
  REQUIRE(from_vec.ndim() == 0);
  REQUIRE(from_vec.item<i32>() == 42);
}

TEST_CASE("size-0 Arrays", "[array]") {
  eqx::Array a = eqx::array(std::vector<float>{}, {0, 3});
  REQUIRE(a.has_value());
  REQUIRE(a.shape() == eqx::Shape{0, 3});
  REQUIRE(a.size() == 0);
  REQUIRE(a.ndim() == 2);
  REQUIRE(a.data<float>().empty());
  REQUIRE(a.to_vector<float>().empty());
  REQUIRE(a.raw_data() == nullptr);

  eqx::Array b = eqx::array(std::vector<i32>{});
  REQUIRE(b.shape() == eqx::Shape{0});
  REQUIRE(b.dtype() == eqx::int32);

  // operations on size-0 arrays give size-0 results of the right shape and dtype
  eqx::Array c = eqx::exp(a) + 1;
  REQUIRE(c.shape() == eqx::Shape{0, 3});
  REQUIRE(c.dtype() == eqx::float32);
  REQUIRE(c.size() == 0);

  REQUIRE_THROWS_AS(a.item<float>(), eqx::ValueError);
  REQUIRE_THROWS_WITH(a.item<float>(), Contains("exactly one element") && Contains("[0,3]"));
}

TEST_CASE("eqx::array with the wrong number of values throws ShapeError", "[array]") {
  REQUIRE_THROWS_AS(eqx::array(std::vector<float>{1, 2, 3}, {2, 2}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::array(std::vector<float>{1, 2, 3}, {2, 2}),
                      Contains("3 values do not fill shape [2,2] (4 elements)"));
  REQUIRE_THROWS_WITH(eqx::array(std::vector<i32>{1, 2}, eqx::Shape{}),
                      Contains("2 values do not fill shape [] (1 elements)"));
  REQUIRE_THROWS_WITH(eqx::array(std::vector<bool>{true}, {0}), Contains("1 values do not fill shape [0] (0 elements)"));
  // a negative dimension can never be filled
  REQUIRE_THROWS_AS(eqx::array(std::vector<float>{1, 2}, {-1, -2}), eqx::Error);
}

// ------------------------------------------------------------------ element access

TEST_CASE("item<T>() converts the single element", "[array]") {
  eqx::Array f = eqx::array(std::vector<float>{-2.75f}, {1, 1});
  REQUIRE(f.item<float>() == -2.75f);
  REQUIRE(f.item<double>() == -2.75);
  REQUIRE(f.item<i32>() == -2);  // truncation toward zero
  REQUIRE(f.item<bool>());

  eqx::Array i = eqx::array(std::vector<i32>{-3}, {1});
  REQUIRE(i.item<i32>() == -3);
  REQUIRE(i.item<float>() == -3.f);
  REQUIRE(i.item<double>() == -3.0);
  REQUIRE(i.item<bool>());

  REQUIRE(eqx::array(0).item<bool>() == false);
  REQUIRE(eqx::array(0.0f).item<bool>() == false);
  REQUIRE(eqx::array(true).item<float>() == 1.f);
  REQUIRE(eqx::array(false).item<i32>() == 0);
  REQUIRE(eqx::array(4000000000u).item<double>() == 4000000000.0);
  REQUIRE(eqx::array(0.1).item<float>() == 0.1f);
}

TEST_CASE("item<T>() on an Array without exactly one element throws ValueError", "[array]") {
  eqx::Array a = eqx::array({1.f, 2.f});
  REQUIRE_THROWS_AS(a.item<float>(), eqx::ValueError);
  REQUIRE_THROWS_WITH(a.item<float>(), Contains("item() needs an Array with exactly one element, got shape [2]"));
  REQUIRE_THROWS_WITH(eqx::zeros({2, 3}).item<i32>(), Contains("got shape [2,3]") && Contains("eqx::sum"));
}

TEST_CASE("to_vector<T>() converts every element in row-major order", "[array]") {
  eqx::Array f = eqx::array(std::vector<float>{1.5f, -0.5f, 0.f, 2.f}, {2, 2});
  REQUIRE(f.to_vector<float>() == std::vector<float>{1.5f, -0.5f, 0.f, 2.f});
  REQUIRE(f.to_vector<double>() == std::vector<double>{1.5, -0.5, 0.0, 2.0});
  REQUIRE(f.to_vector<i32>() == std::vector<i32>{1, 0, 0, 2});
  REQUIRE(f.to_vector<bool>() == std::vector<bool>{true, true, false, true});

  eqx::Array b = eqx::array({true, false});
  REQUIRE(b.to_vector<float>() == std::vector<float>{1.f, 0.f});
  REQUIRE(b.to_vector<u32>() == std::vector<u32>{1u, 0u});

  eqx::Array u = eqx::array({3u, 4000000000u});
  REQUIRE(u.to_vector<double>() == std::vector<double>{3.0, 4000000000.0});

  eqx::Array i = eqx::array({-1, 5});
  REQUIRE(i.to_vector<double>() == std::vector<double>{-1.0, 5.0});
}

TEST_CASE("data<T>() is a view of the elements and needs the exact element type", "[array]") {
  eqx::Array a = eqx::array(std::vector<double>{1, 2, 3}, {3});
  auto s = a.data<double>();
  REQUIRE(s.size() == 3);
  REQUIRE(s.data() == a.raw_data());
  REQUIRE(s[1] == 2.0);

  REQUIRE_THROWS_AS(a.data<float>(), eqx::DTypeError);
  REQUIRE_THROWS_WITH(a.data<float>(), Contains("data<float32>() on an Array of dtype float64") &&
                                           Contains("to_vector<T>()"));
  eqx::Array b = eqx::array({true});
  REQUIRE_THROWS_WITH(b.data<i32>(), Contains("data<int32>() on an Array of dtype bool"));
  eqx::Array u = eqx::array({1u});
  REQUIRE_THROWS_WITH(u.data<i32>(), Contains("data<int32>() on an Array of dtype uint32"));
  REQUIRE(u.data<u32>()[0] == 1u);
}

// ------------------------------------------------------------------ Shape

TEST_CASE("Shape behaves as a small container of int64 dimensions", "[array][shape]") {
  eqx::Shape s{2, 3, 4};
  REQUIRE(s.size() == 3);
  REQUIRE_FALSE(s.empty());
  REQUIRE(s[0] == 2);
  REQUIRE(s[1] == 3);
  REQUIRE(s[2] == 4);
  REQUIRE(s.back() == 4);
  REQUIRE(s.numel() == 24);
  REQUIRE(s.str() == "[2,3,4]");

  std::vector<std::int64_t> seen(s.begin(), s.end());
  REQUIRE(seen == std::vector<std::int64_t>{2, 3, 4});
  std::int64_t sum = 0;
  for (auto d : s) sum += d;
  REQUIRE(sum == 9);

  s[1] = 5;
  REQUIRE(s.str() == "[2,5,4]");

  eqx::Shape scalar;
  REQUIRE(scalar.size() == 0);
  REQUIRE(scalar.empty());
  REQUIRE(scalar.numel() == 1);
  REQUIRE(scalar.str() == "[]");
  REQUIRE(scalar == eqx::Shape{});

  std::vector<int> dims{7, 0, 1};
  eqx::Shape from_iters(dims.begin(), dims.end());
  REQUIRE(from_iters.size() == 3);
  REQUIRE(from_iters.numel() == 0);
  REQUIRE(from_iters.str() == "[7,0,1]");

  REQUIRE(eqx::Shape{1, 2} == eqx::Shape{1, 2});
  REQUIRE_FALSE(eqx::Shape{1, 2} == eqx::Shape{2, 1});
  REQUIRE_FALSE(eqx::Shape{1, 2} == eqx::Shape{1, 2, 1});
  REQUIRE(eqx::Shape{1, 2} != eqx::Shape{1});

  eqx::Shape edits{1, 2};
  edits.push_back(3);
  edits.insert(0, 9);
  REQUIRE(edits.str() == "[9,1,2,3]");
  edits.erase(1);
  REQUIRE(edits.str() == "[9,2,3]");
  edits.pop_back();
  REQUIRE(edits.str() == "[9,2]");
  edits.resize(4, 7);
  REQUIRE(edits.str() == "[9,2,7,7]");
  REQUIRE(eqx::Shape::filled(3, 5).str() == "[5,5,5]");
  REQUIRE(eqx::contiguous_strides(eqx::Shape{2, 3, 4}).str() == "[12,4,1]");
}

TEST_CASE("Shape beyond rank 6 moves to the heap and still copies and moves by value", "[array][shape]") {
  eqx::Shape big{1, 2, 3, 4, 5, 6, 7, 8};
  REQUIRE(big.size() == 8);
  REQUIRE(big[7] == 8);
  REQUIRE(big.numel() == 40320);
  REQUIRE(big.str() == "[1,2,3,4,5,6,7,8]");

  eqx::Shape copy = big;
  REQUIRE(copy == big);
  copy[0] = 100;  // independent storage
  REQUIRE(big[0] == 1);
  REQUIRE(copy[0] == 100);

  eqx::Shape grow;
  for (int i = 1; i <= 10; ++i) grow.push_back(i);
  REQUIRE(grow.size() == 10);
  REQUIRE(grow.str() == "[1,2,3,4,5,6,7,8,9,10]");

  eqx::Shape moved = std::move(grow);
  REQUIRE(moved.str() == "[1,2,3,4,5,6,7,8,9,10]");

  eqx::Shape assigned{1};
  assigned = big;
  REQUIRE(assigned == big);
  eqx::Shape small{3, 4};
  assigned = small;  // back to a short shape
  REQUIRE(assigned.str() == "[3,4]");
  assigned = eqx::Shape{5, 6, 7, 8, 9, 10, 11};
  REQUIRE(assigned.str() == "[5,6,7,8,9,10,11]");
  assigned = eqx::Shape{1};
  REQUIRE(assigned.str() == "[1]");

  std::vector<std::int64_t> dims(9, 1);
  eqx::Shape nine(dims.begin(), dims.end());
  REQUIRE(nine.size() == 9);
  REQUIRE(nine.numel() == 1);

  // a rank-8 Array works end to end
  eqx::Array a = eqx::ones({1, 1, 1, 1, 1, 1, 2, 3}, eqx::int32);
  REQUIRE(a.ndim() == 8);
  REQUIRE((a + eqx::array({10, 20, 30})).to_vector<i32>() == std::vector<i32>{11, 21, 31, 11, 21, 31});
}

// ------------------------------------------------------------------ DType

TEST_CASE("DType names and item sizes", "[dtype]") {
  REQUIRE(eqx::short_name(eqx::float32) == "f32");
  REQUIRE(eqx::short_name(eqx::float64) == "f64");
  REQUIRE(eqx::short_name(eqx::int32) == "i32");
  REQUIRE(eqx::short_name(eqx::uint32) == "u32");
  REQUIRE(eqx::short_name(eqx::bool_) == "bool");
  REQUIRE(eqx::dtype_name(eqx::float32) == "float32");
  REQUIRE(eqx::dtype_name(eqx::float64) == "float64");
  REQUIRE(eqx::dtype_name(eqx::int32) == "int32");
  REQUIRE(eqx::dtype_name(eqx::uint32) == "uint32");
  REQUIRE(eqx::dtype_name(eqx::bool_) == "bool");
  REQUIRE(eqx::itemsize(eqx::float32) == 4);
  REQUIRE(eqx::itemsize(eqx::float64) == 8);
  REQUIRE(eqx::itemsize(eqx::int32) == 4);
  REQUIRE(eqx::itemsize(eqx::uint32) == 4);
  REQUIRE(eqx::itemsize(eqx::bool_) == 1);
  REQUIRE(eqx::is_floating(eqx::float32));
  REQUIRE(eqx::is_floating(eqx::float64));
  REQUIRE_FALSE(eqx::is_floating(eqx::int32));
  REQUIRE(eqx::is_integer(eqx::uint32));
  REQUIRE_FALSE(eqx::is_integer(eqx::bool_));
  REQUIRE(eqx::dtype_of<float>() == eqx::float32);
  REQUIRE(eqx::dtype_of<double>() == eqx::float64);
  REQUIRE(eqx::dtype_of<i32>() == eqx::int32);
  REQUIRE(eqx::dtype_of<u32>() == eqx::uint32);
  REQUIRE(eqx::dtype_of<bool>() == eqx::bool_);
}

TEST_CASE("promote_types: all 25 pairs (JAX lattice, x64 integers off)", "[dtype]") {
  using eqx::DType;
  const DType f32 = eqx::float32, f64 = eqx::float64, s32 = eqx::int32, w32 = eqx::uint32, b = eqx::bool_;
  const DType all[5] = {b, w32, s32, f32, f64};
  // rows and columns in the order of `all` (jnp.promote_types with jax_enable_x64=False)
  const DType table[5][5] = {
      /* bool */ {b, w32, s32, f32, f64},
      /* u32  */ {w32, w32, s32, f32, f64},
      /* i32  */ {s32, s32, s32, f32, f64},
      /* f32  */ {f32, f32, f32, f32, f64},
      /* f64  */ {f64, f64, f64, f64, f64},
  };
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) {
      INFO(eqx::dtype_name(all[i]) << " v " << eqx::dtype_name(all[j]));
      REQUIRE(eqx::promote_types(all[i], all[j]) == table[i][j]);
    }
}

TEST_CASE("weak C++ scalars adopt the Array's dtype where it can hold them", "[dtype][elementwise]") {
  eqx::Array f = eqx::array({1.5f, 2.f});
  eqx::Array i = eqx::array({1, 2});
  eqx::Array b = eqx::array({true, false});
  eqx::Array d = eqx::array({1.5, 2.0});
  eqx::Array u = eqx::array({1u, 2u});

  eqx::Array r = f * 2.0;  // double scalar: stays float32
  REQUIRE(r.dtype() == eqx::float32);
  REQUIRE(r.to_vector<float>() == std::vector<float>{3.f, 4.f});

  r = i * 2.5;  // int Array with a float scalar: float32
  REQUIRE(r.dtype() == eqx::float32);
  REQUIRE(r.to_vector<float>() == std::vector<float>{2.5f, 5.f});

  r = i + 1;
  REQUIRE(r.dtype() == eqx::int32);
  REQUIRE(r.to_vector<i32>() == std::vector<i32>{2, 3});

  r = b + 1;  // bool Array with an int scalar: int32
  REQUIRE(r.dtype() == eqx::int32);
  REQUIRE(r.to_vector<i32>() == std::vector<i32>{2, 1});

  r = d + 1.f;  // float64 Array with a float scalar: stays float64
  REQUIRE(r.dtype() == eqx::float64);
  REQUIRE(r.to_vector<double>() == std::vector<double>{2.5, 3.0});

  r = f + d;  // two Arrays: normal promotion
  REQUIRE(r.dtype() == eqx::float64);
  REQUIRE(r.to_vector<double>() == std::vector<double>{3.0, 4.0});

  r = u + i;
  REQUIRE(r.dtype() == eqx::int32);
  REQUIRE(r.to_vector<i32>() == std::vector<i32>{2, 4});

  r = u * 3;  // int scalar with uint32 Array: stays uint32
  REQUIRE(r.dtype() == eqx::uint32);
  REQUIRE(r.to_vector<u32>() == std::vector<u32>{3u, 6u});

  r = b * true;  // bool scalar never lifts
  REQUIRE(r.dtype() == eqx::bool_);
  REQUIRE(r.to_vector<bool>() == std::vector<bool>{true, false});

  r = 1 - b;  // scalar on the left
  REQUIRE(r.dtype() == eqx::int32);
  REQUIRE(r.to_vector<i32>() == std::vector<i32>{0, 1});

  r = i + b;
  REQUIRE(r.dtype() == eqx::int32);
  r = f + i;
  REQUIRE(r.dtype() == eqx::float32);
  REQUIRE(r.to_vector<float>() == std::vector<float>{2.5f, 4.f});

  REQUIRE(eqx::result_type_with_scalar(eqx::uint32, eqx::ScalarKind::floating) == eqx::float32);
  REQUIRE(eqx::result_type_with_scalar(eqx::bool_, eqx::ScalarKind::boolean) == eqx::bool_);
  REQUIRE(eqx::result_type_with_scalar(eqx::float64, eqx::ScalarKind::integer) == eqx::float64);
}

// ------------------------------------------------------------------ printing

TEST_CASE("fmt formats Shape and DType", "[format]") {
  REQUIRE(fmt::format("{}", eqx::Shape{2, 3}) == "[2,3]");
  REQUIRE(fmt::format("{}", eqx::Shape{}) == "[]");
  REQUIRE(fmt::format("{}", eqx::Shape{1, 2, 3, 4, 5, 6, 7}) == "[1,2,3,4,5,6,7]");
  REQUIRE(fmt::format("{}", eqx::float32) == "float32");
  REQUIRE(fmt::format("{}", eqx::bool_) == "bool");
  REQUIRE(fmt::format("{}", eqx::uint32) == "uint32");
  REQUIRE(fmt::format("{:>8}", eqx::int32) == "   int32");
  REQUIRE(fmt::format("{:<7}|", eqx::Shape{4}) == "[4]    |");
}

TEST_CASE("fmt formats Arrays as numpy's repr does", "[format]") {
  SECTION("empty Array") {
    REQUIRE(fmt::format("{}", eqx::Array{}) == "None");
    REQUIRE(eqx::type_string(eqx::Array{}) == "None");
  }
  SECTION("rank 0") {
    REQUIRE(fmt::format("{}", eqx::array(3.f)) == "f32[] 3.");
    REQUIRE(fmt::format("{}", eqx::array(-2.5)) == "f64[] -2.5");
    REQUIRE(fmt::format("{}", eqx::array(7)) == "i32[] 7");
    REQUIRE(fmt::format("{}", eqx::array(false)) == "bool[] False");
    REQUIRE(fmt::format("{}", eqx::array(kNaN)) == "f32[] nan");
  }
  SECTION("rank 1") {
    // np.array([1, -20, 300]) -> [  1, -20, 300]
    REQUIRE(fmt::format("{}", eqx::array({1, -20, 300})) == "i32[3] [  1, -20, 300]");
    REQUIRE(fmt::format("{}", eqx::array({4000000000u, 5u})) == "u32[2] [4000000000,          5]");
    // np.array([True, False]) -> [ True, False]
    REQUIRE(fmt::format("{}", eqx::array({true, false})) == "bool[2] [ True, False]");
    // np.array([1., 2.5, 3.]) -> [1. , 2.5, 3. ]
    REQUIRE(fmt::format("{}", eqx::array({1.f, 2.5f, 3.f})) == "f32[3] [1. , 2.5, 3. ]");
    // np.array([100., -2.25]) -> [100.  ,  -2.25]
    REQUIRE(fmt::format("{}", eqx::array({100.f, -2.25f})) == "f32[2] [100.  ,  -2.25]");
    // np.array([0.1], np.float32) * 3 -> [0.3] (float32's shortest repr)
    REQUIRE(fmt::format("{}", eqx::array({0.1f}) * 3) == "f32[1] [0.3]");
    REQUIRE(fmt::format("{}", eqx::array({-0.f, 0.f})) == "f32[2] [-0.,  0.]");
  }
  SECTION("nan and inf line up with the other floats") {
    // np.array([1., 2.5, np.nan]) -> [1. , 2.5, nan]
    REQUIRE(fmt::format("{}", eqx::array({1.f, 2.5f, kNaN})) == "f32[3] [1. , 2.5, nan]");
    // np.array([1.5, 2.25, np.nan, -np.inf]) -> [1.5 , 2.25,  nan, -inf]
    REQUIRE(fmt::format("{}", eqx::array({1.5f, 2.25f, kNaN, -kInf})) == "f32[4] [1.5 , 2.25,  nan, -inf]");
    // np.array([np.inf, 1.]) -> [inf,  1.]
    REQUIRE(fmt::format("{}", eqx::array({kInf, 1.f})) == "f32[2] [inf,  1.]");
    REQUIRE(fmt::format("{}", eqx::array({kNaN, kInf})) == "f32[2] [nan, inf]");
  }
  SECTION("at most 8 fractional digits, as numpy's default precision") {
    // np.array([1/3, 0.1+0.2]) -> [0.33333333, 0.3       ]
    REQUIRE(fmt::format("{}", eqx::array({1.0 / 3.0, 0.1 + 0.2})) == "f64[2] [0.33333333, 0.3       ]");
    // np.array([1/3], np.float32) -> [0.33333334]
    REQUIRE(fmt::format("{}", eqx::array({1.f / 3.f})) == "f32[1] [0.33333334]");
    // np.array([2/3, 1.]) -> [0.66666667, 1.        ]
    REQUIRE(fmt::format("{}", eqx::array({2.0 / 3.0, 1.0})) == "f64[2] [0.66666667, 1.        ]");
  }
  SECTION("scientific notation when numpy would switch to it") {
    // reprs of the same np.array(...) calls in numpy 1.24
    REQUIRE(fmt::format("{}", eqx::array({1e-5f, 1.f})) == "f32[2] [1.e-05, 1.e+00]");
    REQUIRE(fmt::format("{}", eqx::array({1.5f, 2000.f})) == "f32[2] [1.5e+00, 2.0e+03]");
    REQUIRE(fmt::format("{}", eqx::array({1e8f})) == "f32[1] [1.e+08]");
    REQUIRE(fmt::format("{}", eqx::array(1e-5f)) == "f32[] 1.e-05");
    REQUIRE(fmt::format("{}", eqx::array({1e-100, 1.0})) == "f64[2] [1.e-100, 1.e+000]");
    REQUIRE(fmt::format("{}", eqx::array({0.1f, 1e-5f, kNaN, -kInf})) == "f32[4] [1.e-01, 1.e-05,    nan,   -inf]");
    REQUIRE(fmt::format("{}", eqx::array({123456789.f, 0.f})) == "f32[2] [1.2345679e+08, 0.0000000e+00]");
    REQUIRE(fmt::format("{}", eqx::array({1.0 / 3.0, 1e9})) == "f64[2] [3.33333333e-01, 1.00000000e+09]");
    REQUIRE(fmt::format("{}", eqx::array({-1e-5f, 2.5e-5f})) == "f32[2] [-1.0e-05,  2.5e-05]");
    // a ratio of exactly 1000 stays positional; all zeros too
    REQUIRE(fmt::format("{}", eqx::array({1.0, 1000.0})) == "f64[2] [   1., 1000.]");
    REQUIRE(fmt::format("{}", eqx::zeros({2}, eqx::float64)) == "f64[2] [0., 0.]");
  }
  SECTION("rank 2") {
    eqx::Array a = eqx::array(std::vector<float>{1, 2.5f, 3, 4, 5, 6}, {2, 3});
    REQUIRE(fmt::format("{}", a) == "f32[2,3]\n[[1. , 2.5, 3. ],\n [4. , 5. , 6. ]]");
    eqx::Array b = eqx::array(std::vector<bool>{true, false, false, true}, {2, 2});
    REQUIRE(fmt::format("{}", b) == "bool[2,2]\n[[ True, False],\n [False,  True]]");
    eqx::Array c = eqx::array(std::vector<i32>{1, 2, 3}, {3, 1});
    REQUIRE(fmt::format("{}", c) == "i32[3,1]\n[[1],\n [2],\n [3]]");
  }
  SECTION("rank 3") {
    eqx::Array a = eqx::reshape(eqx::arange(24), {2, 3, 4});
    // repr(np.arange(24).reshape(2, 3, 4)) without the "array(" prefix
    REQUIRE(fmt::format("{}", a) ==
            "i32[2,3,4]\n"
            "[[[ 0,  1,  2,  3],\n"
            "  [ 4,  5,  6,  7],\n"
            "  [ 8,  9, 10, 11]],\n"
            "\n"
            " [[12, 13, 14, 15],\n"
            "  [16, 17, 18, 19],\n"
            "  [20, 21, 22, 23]]]");
  }
  SECTION("size 0") {
    REQUIRE(fmt::format("{}", eqx::zeros({0, 3})) == "f32[0,3] []");
    REQUIRE(fmt::format("{}", eqx::zeros({0}, eqx::int32)) == "i32[0] []");
  }
  SECTION("type_string and to_string") {
    REQUIRE(eqx::type_string(eqx::zeros({2, 3}, eqx::uint32)) == "u32[2,3]");
    REQUIRE(eqx::to_string(eqx::array({1, 2})) == "i32[2] [1, 2]");
  }
}

TEST_CASE("arrays over 1000 elements print 3 items at each edge of every axis", "[format]") {
  // repr(np.arange(2000))
  REQUIRE(fmt::format("{}", eqx::arange(2000)) == "i32[2000] [   0,    1,    2, ..., 1997, 1998, 1999]");
  // exactly 1000 elements are not summarized
  std::string thousand = fmt::format("{}", eqx::zeros({1000}, eqx::bool_));
  REQUIRE(thousand.find("...") == std::string::npos);
  REQUIRE(thousand.size() == std::string("bool[1000] [").size() + 1000 * 5 + 999 * 2 + 1);

  // repr(np.arange(1001.).reshape(7, 143))-style elision of rows and columns
  eqx::Array m = eqx::reshape(eqx::arange(0, 1001 * 1, 1), {7, 143});
  REQUIRE(fmt::format("{}", m) ==
          "i32[7,143]\n"
          "[[   0,    1,    2, ...,  140,  141,  142],\n"
          " [ 143,  144,  145, ...,  283,  284,  285],\n"
          " [ 286,  287,  288, ...,  426,  427,  428],\n"
          " ...,\n"
          " [ 572,  573,  574, ...,  712,  713,  714],\n"
          " [ 715,  716,  717, ...,  855,  856,  857],\n"
          " [ 858,  859,  860, ...,  998,  999, 1000]]");

  // rank 3: repr(np.arange(2000).reshape(20, 10, 10)), first and last blocks
  std::string s = fmt::format("{}", eqx::reshape(eqx::arange(2000), {20, 10, 10}));
  const std::string head =
      "i32[20,10,10]\n"
      "[[[   0,    1,    2, ...,    7,    8,    9],\n"
      "  [  10,   11,   12, ...,   17,   18,   19],\n"
      "  [  20,   21,   22, ...,   27,   28,   29],\n"
      "  ...,\n"
      "  [  70,   71,   72, ...,   77,   78,   79],\n"
      "  [  80,   81,   82, ...,   87,   88,   89],\n"
      "  [  90,   91,   92, ...,   97,   98,   99]],\n"
      "\n"
      " [[ 100,  101,  102, ...,  107,  108,  109],\n";
  const std::string middle =
      "  [ 290,  291,  292, ...,  297,  298,  299]],\n"
      "\n"
      " ...,\n"
      "\n"
      " [[1700, 1701, 1702, ..., 1707, 1708, 1709],\n";
  const std::string tail =
      "  [1990, 1991, 1992, ..., 1997, 1998, 1999]]]";
  REQUIRE(s.substr(0, head.size()) == head);
  REQUIRE(s.find(middle) != std::string::npos);
  REQUIRE(s.substr(s.size() - tail.size()) == tail);
  // header line + numpy's 48 newlines (6 blocks of 7 rows, "...", 6 blank lines)
  REQUIRE(std::count(s.begin(), s.end(), '\n') == 49);

  // floats: alignment uses only the shown elements;
  // (np.arange(2001, dtype=np.float32) + 1000) / np.float32(2000)
  std::string f = fmt::format("{}", (eqx::arange(0.0, 2001.0, 1.0, eqx::float32) + 1000) / 2000);
  REQUIRE(f == "f32[2001] [0.5   , 0.5005, 0.501 , ..., 1.499 , 1.4995, 1.5   ]");
}

}  // namespace core_array_test

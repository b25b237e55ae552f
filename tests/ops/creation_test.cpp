// Tests for creation functions (ops/creation.hpp). References from numpy 1.24.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_creation_test {

using Catch::Contains;

namespace {

using i32 = std::int32_t;
using u32 = std::uint32_t;

template <class T>
void require_exact(const eqx::Array& a, eqx::DType dtype, const eqx::Shape& shape, const std::vector<T>& expected) {
  REQUIRE(a.dtype() == dtype);
  REQUIRE(a.shape() == shape);
  REQUIRE(a.to_vector<T>() == expected);
}

}  // namespace

TEST_CASE("zeros, ones and full", "[creation]") {
  require_exact<float>(eqx::zeros({2, 3}), eqx::float32, {2, 3}, std::vector<float>(6, 0.f));
  require_exact<i32>(eqx::zeros({3}, eqx::int32), eqx::int32, {3}, {0, 0, 0});
  require_exact<bool>(eqx::zeros({2}, eqx::bool_), eqx::bool_, {2}, {false, false});
  require_exact<float>(eqx::ones({2, 2}), eqx::float32, {2, 2}, {1.f, 1.f, 1.f, 1.f});
  require_exact<double>(eqx::ones({1}, eqx::float64), eqx::float64, {1}, {1.0});
  require_exact<u32>(eqx::ones({2}, eqx::uint32), eqx::uint32, {2}, {1u, 1u});
  require_exact<bool>(eqx::ones({1, 1}, eqx::bool_), eqx::bool_, {1, 1}, {true});
  require_exact<float>(eqx::zeros({}), eqx::float32, {}, {0.f});
  REQUIRE(eqx::zeros({0, 3}).size() == 0);
  REQUIRE(eqx::ones({4, 0}, eqx::int32).shape() == eqx::Shape{4, 0});

  // dtype from the C++ type of the value: float -> f32, int -> i32, bool -> bool
  require_exact<float>(eqx::full({2}, 0.5f), eqx::float32, {2}, {0.5f, 0.5f});
  require_exact<i32>(eqx::full({3}, -7), eqx::int32, {3}, {-7, -7, -7});
  require_exact<bool>(eqx::full({2}, true), eqx::bool_, {2}, {true, true});
  // a double is a weak float, as jnp.full(shape, 2.5) is float32
  require_exact<float>(eqx::full({2}, 2.5), eqx::float32, {2}, {2.5f, 2.5f});
  // explicit dtype converts the value
  require_exact<double>(eqx::full({2}, 0.1, eqx::float64), eqx::float64, {2}, {0.1, 0.1});
  require_exact<i32>(eqx::full({2, 1}, 3.9, eqx::int32), eqx::int32, {2, 1}, {3, 3});
  require_exact<u32>(eqx::full({1}, 7, eqx::uint32), eqx::uint32, {1}, {7u});
  require_exact<bool>(eqx::full({2}, 2, eqx::bool_), eqx::bool_, {2}, {true, true});
  require_exact<float>(eqx::full({2}, true, eqx::float32), eqx::float32, {2}, {1.f, 1.f});
  require_exact<i32>(eqx::full({}, 5), eqx::int32, {}, {5});
}

TEST_CASE("zeros_like, ones_like and full_like keep shape and dtype", "[creation]") {
  eqx::Array x = eqx::array(std::vector<i32>{1, 2, 3, 4, 5, 6}, {3, 2});
  require_exact<i32>(eqx::zeros_like(x), eqx::int32, {3, 2}, std::vector<i32>(6, 0));
  require_exact<i32>(eqx::ones_like(x), eqx::int32, {3, 2}, std::vector<i32>(6, 1));
  require_exact<i32>(eqx::full_like(x, 2.7), eqx::int32, {3, 2}, std::vector<i32>(6, 2));
  eqx::Array d = eqx::array({1.0, 2.0});
  require_exact<double>(eqx::full_like(d, 0.1), eqx::float64, {2}, {0.1, 0.1});
  require_exact<bool>(eqx::ones_like(eqx::array({false})), eqx::bool_, {1}, {true});
  require_exact<float>(eqx::zeros_like(eqx::array(3.f)), eqx::float32, {}, {0.f});
  REQUIRE_FALSE(eqx::zeros_like(x).same_storage(x));

  eqx::Array none;
  REQUIRE_THROWS_AS(eqx::zeros_like(none), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::zeros_like(none), Contains("eqx::zeros_like: got an empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::ones_like(none), Contains("eqx::ones_like: got an empty Array (None)"));
  REQUIRE_THROWS_WITH(eqx::full_like(none, 1), Contains("eqx::full_like: got an empty Array (None)"));
}

TEST_CASE("creation with a negative dimension throws ShapeError", "[creation]") {
  REQUIRE_THROWS_AS(eqx::zeros({2, -1}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::zeros({2, -1}), Contains("eqx::full: negative dimension in shape [2,-1]"));
  REQUIRE_THROWS_WITH(eqx::ones({-3}), Contains("negative dimension in shape [-3]"));
  // two negatives have a positive product; still rejected
  REQUIRE_THROWS_WITH(eqx::full({-2, -2}, 1.f), Contains("negative dimension in shape [-2,-2]"));
  REQUIRE_THROWS_AS(eqx::array(std::vector<float>{1, 2, 3, 4}, {-2, -2}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::array(std::vector<float>{1, 2, 3, 4}, {-2, -2}), Contains("negative dimension in shape [-2,-2]"));
}

TEST_CASE("arange", "[creation]") {
  // np.arange(5)
  require_exact<i32>(eqx::arange(5), eqx::int32, {5}, {0, 1, 2, 3, 4});
  // np.arange(2, 10, 3) -> [2 5 8]
  require_exact<i32>(eqx::arange(2, 10, 3), eqx::int32, {3}, {2, 5, 8});
  // np.arange(-3, 3, 2) -> [-3 -1 1]
  require_exact<i32>(eqx::arange(-3, 3, 2), eqx::int32, {3}, {-3, -1, 1});
  // np.arange(5, 0, -1) -> [5 4 3 2 1]
  require_exact<i32>(eqx::arange(5, 0, -1), eqx::int32, {5}, {5, 4, 3, 2, 1});
  require_exact<i32>(eqx::arange(3, 7), eqx::int32, {4}, {3, 4, 5, 6});
  // empty ranges
  require_exact<i32>(eqx::arange(5, 0), eqx::int32, {0}, {});
  require_exact<i32>(eqx::arange(0), eqx::int32, {0}, {});
  require_exact<i32>(eqx::arange(-4), eqx::int32, {0}, {});
  require_exact<float>(eqx::arange(1.0, 1.0, 0.5), eqx::float32, {0}, {});
  // float forms: np.arange(0, 1, 0.25); np.arange(1, 2, 0.3).astype(np.float32)
  require_exact<float>(eqx::arange(0, 1, 0.25), eqx::float32, {4}, {0.f, 0.25f, 0.5f, 0.75f});
  require_exact<float>(eqx::arange(1, 2, 0.3), eqx::float32, {4},
                       {1.0f, 1.2999999523162842f, 1.600000023841858f, 1.899999976158142f});
  require_exact<float>(eqx::arange(2.5), eqx::float32, {3}, {0.f, 1.f, 2.f});
  require_exact<float>(eqx::arange(1.f, -1.f, -0.5f), eqx::float32, {4}, {1.f, 0.5f, 0.f, -0.5f});
  // explicit dtype
  require_exact<double>(eqx::arange(0.0, 0.3, 0.1, eqx::float64), eqx::float64, {3}, {0.0, 0.1, 0.2});
  require_exact<u32>(eqx::arange(0.0, 3.0, 1.0, eqx::uint32), eqx::uint32, {3}, {0u, 1u, 2u});
  require_exact<i32>(eqx::arange(10.0, 0.0, -4.0, eqx::int32), eqx::int32, {3}, {10, 6, 2});
  // a large iota is exact
  auto big = eqx::arange(100000).to_vector<i32>();
  REQUIRE(big.size() == 100000u);
  REQUIRE(big[0] == 0);
  REQUIRE(big[12345] == 12345);
  REQUIRE(big[99999] == 99999);

  REQUIRE_THROWS_AS(eqx::arange(0, 5, 0), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::arange(0, 5, 0), Contains("eqx::arange: step must be finite and non-zero"));
  REQUIRE_THROWS_WITH(eqx::arange(0.0, 1.0, 0.0, eqx::float32), Contains("step must be finite and non-zero"));
  REQUIRE_THROWS_AS(eqx::arange(0.0, 3.0, 1.0, eqx::bool_), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::arange(0.0, 3.0, 1.0, eqx::bool_), Contains("eqx::arange: dtype bool cannot count"));
}

TEST_CASE("linspace", "[creation]") {
  // np.linspace(0, 1, 5)
  require_exact<float>(eqx::linspace(0, 1, 5), eqx::float32, {5}, {0.f, 0.25f, 0.5f, 0.75f, 1.f});
  // np.linspace(0, 1, 5, endpoint=False)
  require_exact<float>(eqx::linspace(0, 1, 5, false), eqx::float32, {5}, {0.f, 0.2f, 0.4f, 0.6f, 0.8f});
  // np.linspace(-1, 1, 4).astype(np.float32)
  require_exact<float>(eqx::linspace(-1, 1, 4), eqx::float32, {4}, {-1.f, -0.3333333432674408f, 0.3333333432674408f, 1.f});
  // np.linspace(2, 3, 1) -> [2.]; endpoint=False too
  require_exact<float>(eqx::linspace(2, 3, 1), eqx::float32, {1}, {2.f});
  require_exact<float>(eqx::linspace(2, 3, 1, false), eqx::float32, {1}, {2.f});
  // num 0 is empty
  require_exact<float>(eqx::linspace(0, 1, 0), eqx::float32, {0}, {});
  // decreasing, float64, and the endpoint is exactly stop
  require_exact<float>(eqx::linspace(1, -1, 3), eqx::float32, {3}, {1.f, 0.f, -1.f});
  auto d = eqx::linspace(0, 0.3, 4, true, eqx::float64);
  REQUIRE(d.dtype() == eqx::float64);
  // np.linspace(0, 0.3, 4) -> [0.0, 0.09999999999999999, 0.19999999999999998, 0.3]
  REQUIRE(d.to_vector<double>() == std::vector<double>{0.0, 0.09999999999999999, 0.19999999999999998, 0.3});
  require_exact<i32>(eqx::linspace(0, 10, 4, true, eqx::int32), eqx::int32, {4}, {0, 3, 6, 10});

  REQUIRE_THROWS_AS(eqx::linspace(0, 1, -1), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::linspace(0, 1, -1), Contains("eqx::linspace: num must be >= 0, got -1"));
}

TEST_CASE("eye", "[creation]") {
  require_exact<float>(eqx::eye(3), eqx::float32, {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  // np.eye(3, 4, k=1)
  require_exact<float>(eqx::eye(3, 4, 1), eqx::float32, {3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  // np.eye(3, k=-1)
  require_exact<float>(eqx::eye(3, std::nullopt, -1), eqx::float32, {3, 3}, {0, 0, 0, 1, 0, 0, 0, 1, 0});
  // np.eye(2, 3, k=-1, dtype=int32)
  require_exact<i32>(eqx::eye(2, 3, -1, eqx::int32), eqx::int32, {2, 3}, {0, 0, 0, 1, 0, 0});
  require_exact<bool>(eqx::eye(2, 2, 0, eqx::bool_), eqx::bool_, {2, 2}, {true, false, false, true});
  // k beyond the matrix gives zeros
  require_exact<float>(eqx::eye(2, 2, 5), eqx::float32, {2, 2}, {0, 0, 0, 0});
  require_exact<float>(eqx::eye(0), eqx::float32, {0, 0}, {});
  require_exact<float>(eqx::eye(2, 0), eqx::float32, {2, 0}, {});

  REQUIRE_THROWS_AS(eqx::eye(-1), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::eye(-2), Contains("eqx::eye: negative size -2"));
  REQUIRE_THROWS_WITH(eqx::eye(2, -3), Contains("eqx::eye: negative size -3"));
}

}  // namespace ops_creation_test

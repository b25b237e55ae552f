// Shape manipulation: reshape, ravel, transpose, broadcast_to, expand_dims,
// squeeze, concatenate, stack, flip, pad. Expected values are NumPy 1.24
// results stored as literals, or naive loops for the [threads] cases.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_shape_test {

namespace {

using eqx::Array;
using eqx::Shape;
using Catch::Contains;

using eqx_test::check;

using eqx_test::seq;

template <class T = float>
std::vector<T> iota_vec(std::size_t n, T start = T(0)) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return v;
}

using Pads = std::vector<std::pair<std::int64_t, std::int64_t>>;

}  // namespace

TEST_CASE("reshape keeps row-major order and infers -1", "[shape]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::reshape(x, {4, 6}), {4, 6}, iota_vec(24));
  check<float>(eqx::reshape(x, {2, -1}), {2, 12}, iota_vec(24));
  check<float>(eqx::reshape(x, {-1, 3, 2}), {4, 3, 2}, iota_vec(24));
  check<float>(eqx::reshape(x, {-1}), {24}, iota_vec(24));
  check<float>(eqx::reshape(x, {1, 24, 1}), {1, 24, 1}, iota_vec(24));
  check<std::int32_t>(eqx::reshape(seq<std::int32_t>({6}, 5), {3, 2}), {3, 2}, {5, 6, 7, 8, 9, 10});
  check<bool>(eqx::reshape(eqx::array({true, false, false, true}), {2, 2}), {2, 2}, {true, false, false, true});
  // rank 0 <-> size 1
  check<float>(eqx::reshape(eqx::array(std::vector<float>{7}, {1, 1}), {}), {}, {7});
  check<float>(eqx::reshape(eqx::array(7.f), {1, -1}), {1, 1}, {7});
  // size 0
  check<float>(eqx::reshape(eqx::zeros({0, 3}), {3, 0}), {3, 0}, {});
  check<float>(eqx::reshape(eqx::zeros({0, 3}), {2, -1, 3}), {2, 0, 3}, {});
  // Same shape is a no-op that shares storage.
  REQUIRE(eqx::reshape(x, {2, 3, 4}).same_storage(x));
}

TEST_CASE("reshape errors", "[shape]") {
  Array x = seq({2, 3, 4});
  REQUIRE_THROWS_AS(eqx::reshape(x, {-1, -1}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::reshape(x, {-1, -1}), Contains("eqx::reshape: invalid shape [-1,-1]; only one dimension may be -1"));
  REQUIRE_THROWS_AS(eqx::reshape(x, {-2, 12}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::reshape(x, {-2, 12}), Contains("invalid shape [-2,12]"));
  REQUIRE_THROWS_AS(eqx::reshape(x, {5, 5}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::reshape(x, {5, 5}),
                      Contains("eqx::reshape: cannot reshape f32[2,3,4] (24 elements) into shape [5,5] (25 elements)"));
  REQUIRE_THROWS_AS(eqx::reshape(x, {5, -1}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::reshape(x, {5, -1}),
                      Contains("cannot reshape [2,3,4] (24 elements) into [5,-1]; the -1 dimension cannot be inferred"));
  REQUIRE_THROWS_AS(eqx::reshape(eqx::zeros({0, 3}), {-1, 0}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::reshape(eqx::zeros({0, 3}), {-1, 0}), Contains("the -1 dimension cannot be inferred"));
  REQUIRE_THROWS_AS(eqx::reshape(Array{}, {1}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::reshape(Array{}, {1}), Contains("eqx::reshape: got an empty Array (None)"));
}

TEST_CASE("ravel flattens in row-major order", "[shape]") {
  check<float>(eqx::ravel(seq({2, 3})), {6}, {0, 1, 2, 3, 4, 5});
  check<float>(eqx::ravel(eqx::transpose(seq({2, 3}))), {6}, {0, 3, 1, 4, 2, 5});
  check<float>(eqx::ravel(eqx::array(3.f)), {1}, {3});
  check<std::int32_t>(eqx::ravel(eqx::array(std::vector<std::int32_t>{}, {0, 4})), {0}, {});
}

TEST_CASE("transpose: default reverses axes; explicit and negative permutations", "[shape]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::transpose(x), {4, 3, 2},
               {0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23});
  check<float>(eqx::transpose(x, {0, 2, 1}), {2, 4, 3},
               {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, 12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23});
  check<float>(eqx::transpose(x, {1, -1, 0}), {3, 4, 2},
               {0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23});
  check<float>(eqx::transpose(x, {-3, -2, -1}), {2, 3, 4}, iota_vec(24));
  check<std::int32_t>(eqx::transpose(seq<std::int32_t>({2, 3})), {3, 2}, {0, 3, 1, 4, 2, 5});
  check<double>(eqx::transpose(seq<double>({3})), {3}, {0, 1, 2});
  check<float>(eqx::transpose(eqx::array(5.f)), {}, {5});
  check<float>(eqx::transpose(eqx::zeros({0, 2})), {2, 0}, {});
  // transpose twice is the identity
  check<float>(eqx::transpose(eqx::transpose(x, {2, 0, 1}), {1, 2, 0}), {2, 3, 4}, iota_vec(24));
}

TEST_CASE("transpose errors", "[shape]") {
  Array x = seq({2, 3, 4});
  REQUIRE_THROWS_AS(eqx::transpose(x, {0, 1}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::transpose(x, {0, 1}), Contains("eqx::transpose: axes (0, 1) do not match an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::transpose(x, {0, 1, 1}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::transpose(x, {0, 1, 1}), Contains("eqx::transpose: (0, 1, 1) is not a permutation of the axes 0..2 of f32[2,3,4]"));
  REQUIRE_THROWS_AS(eqx::transpose(x, {0, -1, 2}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::transpose(x, {0, -1, 2}), Contains("is not a permutation"));
  REQUIRE_THROWS_AS(eqx::transpose(x, {0, 1, 3}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::transpose(x, {0, 1, 3}), Contains("eqx::transpose: axis 3 is out of range for an array of rank 3"));
}

TEST_CASE("broadcast_to follows numpy rules", "[shape]") {
  check<float>(eqx::broadcast_to(eqx::array({1.f, 2.f, 3.f}), {2, 3}), {2, 3}, {1, 2, 3, 1, 2, 3});
  check<std::int32_t>(eqx::broadcast_to(eqx::array(std::vector<std::int32_t>{1, 2}, {2, 1}), {3, 2, 4}), {3, 2, 4},
                      {1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2});
  check<bool>(eqx::broadcast_to(eqx::array(true), {2, 2}), {2, 2}, {true, true, true, true});
  check<double>(eqx::broadcast_to(eqx::array(std::vector<double>{1, 2}, {1, 2, 1}), {2, 2, 2}), {2, 2, 2},
                {1, 1, 2, 2, 1, 1, 2, 2});
  check<float>(eqx::broadcast_to(eqx::array({4.f}), {0}), {0}, {});
  Array same = seq({2, 3});
  REQUIRE(eqx::broadcast_to(same, {2, 3}).same_storage(same));
}

TEST_CASE("broadcast_to errors", "[shape]") {
  Array v = eqx::array({1.f, 2.f, 3.f});
  REQUIRE_THROWS_AS(eqx::broadcast_to(v, {4}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::broadcast_to(v, {4}), Contains("eqx::broadcast_to: cannot broadcast [3] to [4]"));
  REQUIRE_THROWS_AS(eqx::broadcast_to(seq({2, 3}), {3}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::broadcast_to(seq({2, 3}), {3}), Contains("cannot broadcast [2,3] to [3]"));
  REQUIRE_THROWS_WITH(eqx::broadcast_to(seq({2, 3}), {3}), Contains("target rank at least 2"));
  REQUIRE_THROWS_AS(eqx::broadcast_to(seq({2, 1}), {3, 3}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::broadcast_to(seq({2, 1}), {3, 3}), Contains("cannot broadcast [2,1] to [3,3]"));
  REQUIRE_THROWS_AS(eqx::broadcast_to(eqx::array({4.f}), {}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::broadcast_to(eqx::array({4.f}), {}), Contains("cannot broadcast [1] to []"));
  REQUIRE_THROWS_AS(eqx::broadcast_to(v, {3, 1}), eqx::ShapeError);  // no right-alignment match
  REQUIRE_THROWS_WITH(eqx::broadcast_to(v, {3, 1}), Contains("cannot broadcast [3] to [3,1]"));
}

TEST_CASE("expand_dims and squeeze", "[shape]") {
  Array x = seq({2, 3});
  check<float>(eqx::expand_dims(x, 0), {1, 2, 3}, iota_vec(6));
  check<float>(eqx::expand_dims(x, 1), {2, 1, 3}, iota_vec(6));
  check<float>(eqx::expand_dims(x, 2), {2, 3, 1}, iota_vec(6));
  check<float>(eqx::expand_dims(x, -1), {2, 3, 1}, iota_vec(6));
  check<float>(eqx::expand_dims(x, -2), {2, 1, 3}, iota_vec(6));
  check<float>(eqx::expand_dims(x, -3), {1, 2, 3}, iota_vec(6));
  check<float>(eqx::expand_dims(eqx::array(1.f), 0), {1}, {1});
  REQUIRE_THROWS_AS(eqx::expand_dims(x, 3), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::expand_dims(x, 3), Contains("eqx::expand_dims: axis 3 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::expand_dims(x, -4), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::expand_dims(x, -4), Contains("eqx::expand_dims: axis -4 is out of range"));

  Array y = seq({1, 2, 1, 3, 1});
  check<float>(eqx::squeeze(y), {2, 3}, iota_vec(6));
  check<float>(eqx::squeeze(y, {0}), {2, 1, 3, 1}, iota_vec(6));
  check<float>(eqx::squeeze(y, {-1}), {1, 2, 1, 3}, iota_vec(6));
  check<float>(eqx::squeeze(y, {0, 2}), {2, 3, 1}, iota_vec(6));
  check<float>(eqx::squeeze(y, {-3, 4}), {1, 2, 3}, iota_vec(6));
  check<float>(eqx::squeeze(seq({1, 1})), {}, {0});
  check<float>(eqx::squeeze(seq({2, 3})), {2, 3}, iota_vec(6));
  check<float>(eqx::squeeze(eqx::array(4.f)), {}, {4});
  REQUIRE_THROWS_AS(eqx::squeeze(y, {1}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::squeeze(y, {1}), Contains("eqx::squeeze: cannot squeeze axis 1 of [1,2,1,3,1]: its size is 2, not 1"));
  REQUIRE_THROWS_AS(eqx::squeeze(y, {-2}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::squeeze(y, {-2}), Contains("cannot squeeze axis -2 of [1,2,1,3,1]: its size is 3, not 1"));
  REQUIRE_THROWS_AS(eqx::squeeze(y, {5}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::squeeze(y, {5}), Contains("eqx::squeeze: axis 5 is out of range for an array of rank 5"));
}

TEST_CASE("concatenate along axes with dtype promotion", "[shape]") {
  Array a = seq({2, 3});
  check<float>(eqx::concatenate({a, eqx::array(std::vector<float>{10, 11}, {2, 1})}, 1), {2, 4},
               {0, 1, 2, 10, 3, 4, 5, 11});
  check<float>(eqx::concatenate({a, seq({1, 3}, 6.f)}), {3, 3}, iota_vec(9));
  check<float>(eqx::concatenate({a, seq({1, 3}, 6.f)}, -2), {3, 3}, iota_vec(9));
  check<float>(eqx::concatenate({a, eqx::array(std::vector<float>{10, 11}, {2, 1})}, -1), {2, 4},
               {0, 1, 2, 10, 3, 4, 5, 11});
  Array x = seq({2, 3, 4});
  // concatenate(x[:, :1], x[:, 2:], axis=-2)
  check<float>(eqx::concatenate({eqx::slice(x, 1, 0, 1), eqx::slice(x, 1, 2, {})}, -2), {2, 2, 4},
               {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23});
  check<float>(eqx::concatenate({eqx::array({1.f}), eqx::array({2.f, 3.f}), eqx::array({4.f})}), {4}, {1, 2, 3, 4});
  check<float>(eqx::concatenate({a}), {2, 3}, iota_vec(6));
  // size-0 pieces
  check<float>(eqx::concatenate({eqx::zeros({2, 0}), a, eqx::zeros({2, 0})}, 1), {2, 3}, iota_vec(6));
  check<float>(eqx::concatenate({eqx::zeros({0, 3}), a}, 0), {2, 3}, iota_vec(6));
  // dtype promotion
  check<float>(eqx::concatenate({eqx::array({1, 2}), eqx::array({0.5f})}), {3}, {1, 2, 0.5f});
  check<std::int32_t>(eqx::concatenate({eqx::array({true, false}), eqx::array({7})}), {3}, {1, 0, 7});
  check<std::int32_t>(eqx::concatenate({eqx::array({3u}), eqx::array({-1})}), {2}, {3, -1});
  check<double>(eqx::concatenate({eqx::array({1.5f}), eqx::array({2.25})}), {2}, {1.5, 2.25});
  check<std::uint32_t>(eqx::concatenate({eqx::array({true}), eqx::array({9u})}), {2}, {1, 9});
}

TEST_CASE("concatenate errors", "[shape]") {
  Array a = seq({2, 3});
  REQUIRE_THROWS_AS(eqx::concatenate({a, eqx::array({1.f, 2.f, 3.f})}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::concatenate({a, eqx::array({1.f, 2.f, 3.f})}),
                      Contains("eqx::concatenate: array 1 is f32[3] but array 0 is f32[2,3]"));
  REQUIRE_THROWS_AS(eqx::concatenate({a, seq({2, 2})}, 0), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::concatenate({a, seq({2, 2})}, 0),
                      Contains("array 1 is f32[2,2] but array 0 is f32[2,3]; all must have the same dtype and rank, and equal sizes except on axis 0"));
  REQUIRE_THROWS_AS(eqx::concatenate({eqx::array(1.f), eqx::array(2.f)}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::concatenate({eqx::array(1.f), eqx::array(2.f)}),
                      Contains("eqx::concatenate: zero-dimensional arrays cannot be concatenated; use eqx::stack"));
  REQUIRE_THROWS_AS(eqx::concatenate({}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::concatenate({}), Contains("eqx::concatenate: needs at least one array"));
  REQUIRE_THROWS_AS(eqx::concatenate({a, a}, 2), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::concatenate({a, a}, 2), Contains("eqx::concatenate: axis 2 is out of range for an array of rank 2"));
  REQUIRE_THROWS_AS(eqx::concatenate({a, Array{}}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::concatenate({a, Array{}}), Contains("eqx::concatenate: got an empty Array (None)"));
}

TEST_CASE("stack joins along a new axis", "[shape]") {
  Array a = seq({2, 3}), b = seq({2, 3}) * 10.f;
  check<float>(eqx::stack({a, b}), {2, 2, 3}, {0, 1, 2, 3, 4, 5, 0, 10, 20, 30, 40, 50});
  check<float>(eqx::stack({a, b}, 1), {2, 2, 3}, {0, 1, 2, 0, 10, 20, 3, 4, 5, 30, 40, 50});
  check<float>(eqx::stack({a, b}, -1), {2, 3, 2}, {0, 0, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50});
  check<float>(eqx::stack({a, b}, 2), {2, 3, 2}, {0, 0, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50});
  check<std::int32_t>(eqx::stack({eqx::array({1, 2, 3}), eqx::array({4, 5, 6})}, 1), {3, 2}, {1, 4, 2, 5, 3, 6});
  check<float>(eqx::stack({eqx::array(1.f), eqx::array(2.f), eqx::array(3.f)}), {3}, {1, 2, 3});
  check<float>(eqx::stack({eqx::array({1, 2}), eqx::array({0.5f, 1.5f})}), {2, 2}, {1, 2, 0.5f, 1.5f});
  check<float>(eqx::stack({a}), {1, 2, 3}, iota_vec(6));

  REQUIRE_THROWS_AS(eqx::stack({eqx::array({1.f, 2.f}), eqx::array({1.f, 2.f, 3.f})}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::stack({eqx::array({1.f, 2.f}), eqx::array({1.f, 2.f, 3.f})}),
                      Contains("eqx::stack: array 1 has shape [3] but array 0 has [2]; all must have the same shape"));
  REQUIRE_THROWS_AS(eqx::stack({}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::stack({}), Contains("eqx::stack: needs at least one array"));
  REQUIRE_THROWS_AS(eqx::stack({a, b}, 3), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::stack({a, b}, 3), Contains("eqx::stack: axis 3 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::stack({a, b}, -4), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::stack({a, b}, -4), Contains("eqx::stack: axis -4 is out of range"));
}

TEST_CASE("flip reverses the given axes", "[shape]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::flip(x, {0}), {2, 3, 4},
               {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  check<float>(eqx::flip(x, {2}), {2, 3, 4},
               {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16, 23, 22, 21, 20});
  check<float>(eqx::flip(x, {-1}), {2, 3, 4},
               {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16, 23, 22, 21, 20});
  check<float>(eqx::flip(x, {2, 0}), {2, 3, 4},
               {15, 14, 13, 12, 19, 18, 17, 16, 23, 22, 21, 20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8});
  check<std::int32_t>(eqx::flip(seq<std::int32_t>({2, 3})), {2, 3}, {5, 4, 3, 2, 1, 0});
  check<float>(eqx::flip(eqx::array(2.f)), {}, {2});
  check<float>(eqx::flip(eqx::zeros({0, 3}), {0}), {0, 3}, {});
  check<bool>(eqx::flip(eqx::array({true, false, false})), {3}, {false, false, true});

  REQUIRE_THROWS_AS(eqx::flip(x, {3}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::flip(x, {3}), Contains("eqx::flip: axis 3 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::flip(x, {-4}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::flip(x, {-4}), Contains("eqx::flip: axis -4 is out of range"));
  // numpy rejects a repeated axis (reversing twice would silently return x unchanged).
  REQUIRE_THROWS_AS(eqx::flip(x, {0, 0}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::flip(x, {0, 0}), Contains("eqx::flip: repeated axis in (0, 0)"));
  REQUIRE_THROWS_AS(eqx::flip(x, {1, -2}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::flip(x, {1, -2}), Contains("eqx::flip: repeated axis in (1, -2)"));
  auto rev_twice = [&] {
    return eqx::bind1(eqx::prim::rev, {x}, eqx::Params{}.set("dimensions", std::vector<std::int64_t>{1, 1}));
  };
  REQUIRE_THROWS_AS(rev_twice(), eqx::ValueError);
  REQUIRE_THROWS_WITH(rev_twice(), Contains("eqx::flip: dimensions (1, 1) repeat an axis"));
}

TEST_CASE("pad with constants", "[shape]") {
  Array a = seq({2, 3});
  check<float>(eqx::pad(a, {{1, 0}, {2, 1}}), {3, 6},
               {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3, 4, 5, 0});
  check<float>(eqx::pad(a, {{0, 1}, {1, 1}}, 9), {3, 5}, {9, 0, 1, 2, 9, 9, 3, 4, 5, 9, 9, 9, 9, 9, 9});
  check<float>(eqx::pad(a, {{0, 0}, {0, 0}}), {2, 3}, iota_vec(6));
  check<std::int32_t>(eqx::pad(eqx::array({1, 2}), {{2, 1}}, -1), {5}, {-1, -1, 1, 2, -1});
  check<std::int32_t>(eqx::pad(eqx::array({1, 2}), {{1, 0}}, 2.75), {3}, {2, 1, 2});  // value converted to int32
  check<double>(eqx::pad(eqx::array({1.5}), {{1, 1}}, 0.25), {3}, {0.25, 1.5, 0.25});
  check<bool>(eqx::pad(eqx::array({true}), {{1, 1}}), {3}, {false, true, false});
  check<float>(eqx::pad(eqx::array(3.f), {}), {}, {3});
  check<float>(eqx::pad(eqx::zeros({0, 2}), {{1, 1}, {0, 1}}, 5), {2, 3}, {5, 5, 5, 5, 5, 5});
  check<float>(eqx::pad(a, {{0, 0}, {0, 1}}, eqx::array(7.0)), {2, 4}, {0, 1, 2, 7, 3, 4, 5, 7});  // Array value, converted
}

TEST_CASE("pad errors", "[shape]") {
  Array a = seq({2, 3});
  REQUIRE_THROWS_AS(eqx::pad(a, {{1, 1}}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::pad(a, {{1, 1}}),
                      Contains("eqx::pad: got 1 (before, after) pairs for an array of rank 2; give one pair per axis"));
  REQUIRE_THROWS_AS(eqx::pad(a, {{1, 1}, {-1, 0}}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::pad(a, {{1, 1}, {-1, 0}}), Contains("eqx::pad: pad widths must be >= 0"));
  REQUIRE_THROWS_AS(eqx::pad(a, {{1, 1}, {0, 0}}, eqx::array({1.f, 2.f})), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::pad(a, {{1, 1}, {0, 0}}, eqx::array({1.f, 2.f})),
                      Contains("eqx::pad: the padding value must be a scalar of the operand's dtype float32, got f32[2]"));
  REQUIRE_THROWS_AS(eqx::pad(Array{}, {}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::pad(Array{}, {}), Contains("eqx::pad: got an empty Array (None)"));
}

TEST_CASE("shape ops on non-contiguous inputs (transpose and slice results)", "[shape]") {
  Array x = seq({2, 3, 4});
  Array t = eqx::transpose(x, {2, 0, 1});  // [4, 2, 3]
  check<float>(eqx::reshape(t, {4, 6}), {4, 6},
               {0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
  check<float>(eqx::flip(t, {0}), {4, 2, 3},
               {3, 7, 11, 15, 19, 23, 2, 6, 10, 14, 18, 22, 1, 5, 9, 13, 17, 21, 0, 4, 8, 12, 16, 20});
  Array s = eqx::slice(x, {{1, 2}, {{}, {}, 2}, {{}, {}, -3}});  // x[1:2, ::2, ::-3] = [[[15, 12], [23, 20]]]
  check<float>(s, {1, 2, 2}, {15, 12, 23, 20});
  check<float>(eqx::squeeze(s), {2, 2}, {15, 12, 23, 20});
  check<float>(eqx::transpose(eqx::squeeze(s)), {2, 2}, {15, 23, 12, 20});
  check<float>(eqx::pad(eqx::squeeze(s, {0}), {{1, 0}, {0, 1}}, -1), {3, 3}, {-1, -1, -1, 15, 12, -1, 23, 20, -1});
  check<float>(eqx::broadcast_to(eqx::slice(t, {{1, 2}, {0, 1}}), {2, 1, 3}), {2, 1, 3}, {1, 5, 9, 1, 5, 9});
  check<float>(eqx::concatenate({eqx::squeeze(s, {0}), eqx::transpose(eqx::squeeze(s, {0}))}, 1), {2, 4},
               {15, 12, 15, 23, 23, 20, 12, 20});
  check<float>(eqx::stack({eqx::ravel(eqx::squeeze(s)), eqx::ravel(eqx::flip(eqx::squeeze(s)))}), {2, 4},
               {15, 12, 23, 20, 20, 23, 12, 15});
}

TEST_CASE("large layout kernels match naive loops", "[shape][threads]") {
  const std::int64_t A = 40, B = 50, C = 60;  // 120000 elements
  std::vector<float> v(A * B * C);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 131) % 1000) - 500.f;
  Array x = eqx::array(v, {A, B, C});
  auto at = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return v[static_cast<std::size_t>((i * B + j) * C + k)]; };

  std::vector<float> t201, f02, padded, bc, cat;
  for (std::int64_t k = 0; k < C; ++k)
    for (std::int64_t i = 0; i < A; ++i)
      for (std::int64_t j = 0; j < B; ++j) t201.push_back(at(i, j, k));
  check<float>(eqx::transpose(x, {2, 0, 1}), {C, A, B}, t201);

  for (std::int64_t i = 0; i < A; ++i)
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) f02.push_back(at(A - 1 - i, j, C - 1 - k));
  check<float>(eqx::flip(x, {0, 2}), {A, B, C}, f02);

  for (std::int64_t i = 0; i < A + 1; ++i)
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C + 3; ++k)
        padded.push_back(i >= 1 && k >= 2 && k < C + 2 ? at(i - 1, j, k - 2) : 0.5f);
  check<float>(eqx::pad(x, {{1, 0}, {0, 0}, {2, 1}}, 0.5f), {A + 1, B, C + 3}, padded);

  // broadcast a [B, 1] column to [A, B, C]
  std::vector<float> col(B);
  for (std::int64_t j = 0; j < B; ++j) col[j] = static_cast<float>(j * 3 - 7);
  for (std::int64_t i = 0; i < A; ++i)
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) bc.push_back(col[j]);
  check<float>(eqx::broadcast_to(eqx::array(col, {B, 1}), {A, B, C}), {A, B, C}, bc);

  // concatenate x and its negation along the middle axis
  for (std::int64_t i = 0; i < A; ++i) {
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) cat.push_back(at(i, j, k));
    for (std::int64_t j = 0; j < B; ++j)
      for (std::int64_t k = 0; k < C; ++k) cat.push_back(-at(i, j, k));
  }
  check<float>(eqx::concatenate({x, -x}, 1), {A, 2 * B, C}, cat);
}

}  // namespace ops_shape_test

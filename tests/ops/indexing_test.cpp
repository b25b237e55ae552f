// Indexing: slice (Python slice rules per axis), take (numpy.take), one_hot.
// Expected values are NumPy 1.24 results stored as literals, or naive loops
// for the [threads] cases.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <source_location>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_indexing_test {

namespace {

using eqx::Array;
using eqx::Shape;
using eqx::Slice;
using Catch::Contains;
using Ints = std::vector<std::int64_t>;

using eqx_test::check;

using eqx_test::seq;

std::vector<float> iota_vec(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

constexpr std::nullopt_t none = std::nullopt;

}  // namespace

TEST_CASE("slice of a vector follows Python's slice rules", "[indexing]") {
  Array v = seq({5});
  auto s = [&](std::optional<std::int64_t> b, std::optional<std::int64_t> e, std::int64_t step = 1) {
    return eqx::slice(v, {Slice{b, e, step}});
  };
  check<float>(s(none, none, -1), {5}, {4, 3, 2, 1, 0});  // v[::-1]
  check<float>(s(3, 0, -1), {3}, {3, 2, 1});             // v[3:0:-1]
  check<float>(s(none, none, -2), {3}, {4, 2, 0});       // v[::-2]
  check<float>(s(1, 4), {3}, {1, 2, 3});
  check<float>(s(-3, none), {3}, {2, 3, 4});
  check<float>(s(-4, -1), {3}, {1, 2, 3});
  check<float>(s(10, none), {0}, {});                    // start clamps to 5
  check<float>(s(-10, 2), {2}, {0, 1});                  // start clamps to 0
  check<float>(s(2, 100), {3}, {2, 3, 4});               // stop clamps to 5
  check<float>(s(4, 1), {0}, {});                        // empty
  check<float>(s(2, 2), {0}, {});
  check<float>(s(none, none, 2), {3}, {0, 2, 4});
  check<float>(s(1, none, 2), {2}, {1, 3});
  check<float>(s(0, 5, 3), {2}, {0, 3});
  check<float>(s(-1, none, -1), {5}, {4, 3, 2, 1, 0});
  check<float>(s(-2, none, -2), {2}, {3, 1});
  check<float>(s(3, -10, -1), {4}, {3, 2, 1, 0});        // stop clamps below the start
  check<float>(s(10, none, -1), {5}, {4, 3, 2, 1, 0});   // start clamps to n-1
  check<float>(s(4, -6, -2), {3}, {4, 2, 0});
  check<float>(s(1, 3, -1), {0}, {});                    // empty with negative step
  check<float>(s(3, -1, -1), {0}, {});                   // v[3:-1:-1]: -1 means n-1, not "before 0"
  check<float>(s(none, none, 7), {1}, {0});
  check<float>(s(none, none, -7), {1}, {4});
}

TEST_CASE("slice of several axes", "[indexing]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::slice(x, {{}, {1, {}}, {{}, {}, -2}}), {2, 2, 2}, {7, 5, 11, 9, 19, 17, 23, 21});   // x[:, 1:, ::-2]
  check<float>(eqx::slice(x, {{{}, {}, -1}, {-1, 0, -1}, {1, 3}}), {2, 2, 2}, {21, 22, 17, 18, 9, 10, 5, 6});  // x[::-1, -1:0:-1, 1:3]
  check<float>(eqx::slice(x, {{1, 2}, {{}, {}, 2}}), {1, 2, 4}, {12, 13, 14, 15, 20, 21, 22, 23});  // x[1:2, ::2]
  check<float>(eqx::slice(x, {{}, {}, {3, 1, -1}}), {2, 3, 2}, {3, 2, 7, 6, 11, 10, 15, 14, 19, 18, 23, 22});  // x[:, :, 3:1:-1]
  check<float>(eqx::slice(x, {{0, 1}}), {1, 3, 4}, iota_vec(12));  // missing trailing axes are whole
  check<float>(eqx::slice(x, {}), {2, 3, 4}, iota_vec(24));
  check<float>(eqx::slice(x, {{}, {2, 1}}), {2, 0, 4}, {});
  check<std::int32_t>(eqx::slice(seq<std::int32_t>({3, 3}), {{{}, {}, -1}, {{}, {}, -1}}), {3, 3}, {8, 7, 6, 5, 4, 3, 2, 1, 0});
  check<bool>(eqx::slice(eqx::array({true, false, false, true}), {{1, {}, 2}}), {2}, {false, true});
  check<double>(eqx::slice(seq<double>({4}, 0.5), {{-2, {}}}), {2}, {2.5, 3.5});
  check<float>(eqx::slice(eqx::array(3.f), {}), {}, {3});
  // size-0 axes, any step
  check<float>(eqx::slice(eqx::zeros({0, 2}), {{{}, {}, -1}}), {0, 2}, {});
  check<float>(eqx::slice(eqx::zeros({0, 2}), {{1, -1, 2}, {{}, {}, -1}}), {0, 2}, {});
}

TEST_CASE("slice of one axis", "[indexing]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::slice(x, 1, 1, none), {2, 2, 4}, {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23});  // x[:, 1:]
  check<float>(eqx::slice(x, -1, none, none, -2), {2, 3, 2}, {3, 1, 7, 5, 11, 9, 15, 13, 19, 17, 23, 21});  // x[..., ::-2]
  check<float>(eqx::slice(x, 0, 1, 2), {1, 3, 4}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  check<float>(eqx::slice(x, 2, 0, 4, 3), {2, 3, 2}, {0, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20, 23});
  check<float>(eqx::slice(x, -2, -1, -3, -1), {2, 2, 4},
               {8, 9, 10, 11, 4, 5, 6, 7, 20, 21, 22, 23, 16, 17, 18, 19});  // x[:, -1:-3:-1]
}

TEST_CASE("slice errors", "[indexing]") {
  Array x = seq({2, 3, 4});
  REQUIRE_THROWS_AS(eqx::slice(x, {{}, {0, 2, 0}}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::slice(x, {{}, {0, 2, 0}}), Contains("eqx::slice: slice step cannot be zero (axis 1)"));
  REQUIRE_THROWS_AS(eqx::slice(x, 2, none, none, 0), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::slice(x, 2, none, none, 0), Contains("slice step cannot be zero (axis 2)"));
  REQUIRE_THROWS_AS(eqx::slice(x, {{}, {}, {}, {}}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::slice(x, {{}, {}, {}, {}}), Contains("eqx::slice: 4 slices for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::slice(eqx::array(1.f), {{0, 1}}), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::slice(eqx::array(1.f), {{0, 1}}), Contains("1 slices for an array of rank 0"));
  REQUIRE_THROWS_AS(eqx::slice(x, 3, 0, 1), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::slice(x, 3, 0, 1), Contains("eqx::slice: axis 3 is out of range for an array of rank 3"));
  REQUIRE_THROWS_AS(eqx::slice(x, -4, 0, 1), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::slice(x, -4, 0, 1), Contains("eqx::slice: axis -4 is out of range"));
  REQUIRE_THROWS_AS(eqx::slice(Array{}, {}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::slice(Array{}, {}), Contains("eqx::slice: got an empty Array (None)"));
  // The primitive takes resolved bounds only.
  auto bad = [&] {
    return eqx::bind1(eqx::prim::slice, {x},
                      eqx::Params{}
                          .set("start_indices", Ints{0, 2, 0})
                          .set("limit_indices", Ints{2, 1, 4})
                          .set("strides", Ints{1, 1, 1}));
  };
  REQUIRE_THROWS_AS(bad(), eqx::IndexError);
  REQUIRE_THROWS_WITH(bad(), Contains("eqx::slice: axis 1 of f32[2,3,4]: start 2, limit 1, step 1 is not a valid slice (need 0 <= start <= limit <= 3 and step >= 1)"));
}

TEST_CASE("take along an axis", "[indexing]") {
  Array x = seq({2, 3, 4});
  Array i2 = eqx::array(std::vector<std::int32_t>{0, -1, 1, -2}, {2, 2});
  std::vector<float> x0 = iota_vec(12), x1(12);
  for (int k = 0; k < 12; ++k) x1[k] = static_cast<float>(12 + k);
  std::vector<float> t0;
  for (const auto* part : {&x0, &x1, &x1, &x0}) t0.insert(t0.end(), part->begin(), part->end());
  check<float>(eqx::take(x, i2, 0), {2, 2, 3, 4}, t0);
  check<float>(eqx::take(x, eqx::array(std::vector<std::int32_t>{0, 2, 2, 1}, {2, 2}), 1), {2, 2, 2, 4},
               {0, 1, 2, 3, 8, 9, 10, 11, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 20, 21, 22, 23, 16, 17, 18, 19});
  check<float>(eqx::take(x, eqx::array({3, 0, -4, 1}), -1), {2, 3, 4},
               {3, 0, 0, 1, 7, 4, 4, 5, 11, 8, 8, 9, 15, 12, 12, 13, 19, 16, 16, 17, 23, 20, 20, 21});
  check<float>(eqx::take(x, eqx::array({3u, 0u}), 2), {2, 3, 2}, {3, 0, 7, 4, 11, 8, 15, 12, 19, 16, 23, 20});  // uint32
  check<float>(eqx::take(x, eqx::array(1), 1), {2, 4}, {4, 5, 6, 7, 16, 17, 18, 19});  // rank-0 index drops the axis
  check<float>(eqx::take(x, eqx::array(std::vector<std::int32_t>{}), 0), {0, 3, 4}, {});
  check<std::int32_t>(eqx::take(eqx::array({10, 20, 30}), eqx::array({2, 2, 0})), {3}, {30, 30, 10});
  check<bool>(eqx::take(eqx::array({true, false}), eqx::array({1, 0, 1}), 0), {3}, {false, true, false});
  check<double>(eqx::take(eqx::array({0.5, 1.5}), eqx::array({-1}), 0), {1}, {1.5});
}

TEST_CASE("take without an axis indexes the flattened array", "[indexing]") {
  Array x = seq({2, 3, 4});
  check<float>(eqx::take(x, eqx::array(std::vector<std::int32_t>{23, 0, -1, 5}, {2, 2})), {2, 2}, {23, 0, 23, 5});
  check<float>(eqx::take(x, eqx::array(7)), {}, {7});
  check<float>(eqx::take(eqx::transpose(seq({2, 3})), eqx::array({1, 2})), {2}, {3, 1});  // flat [0,3,1,4,2,5]
  REQUIRE_THROWS_AS(eqx::take(x, eqx::array({24})), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(x, eqx::array({24})), Contains("eqx::take: index 24 is out of bounds for axis 0 with size 24"));
}

TEST_CASE("take errors", "[indexing]") {
  Array v = seq({5});
  REQUIRE_THROWS_AS(eqx::take(v, eqx::array({1, 7}), 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(v, eqx::array({1, 7}), 0), Contains("eqx::take: index 7 is out of bounds for axis 0 with size 5"));
  REQUIRE_THROWS_AS(eqx::take(v, eqx::array({-6}), 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(v, eqx::array({-6}), 0), Contains("index -6 is out of bounds for axis 0 with size 5"));
  REQUIRE_THROWS_AS(eqx::take(v, eqx::array({4294967295u}), 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(v, eqx::array({4294967295u}), 0), Contains("index 4294967295 is out of bounds for axis 0 with size 5"));
  Array m = seq({2, 3});
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({3}), 1), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({3}), 1), Contains("eqx::take: index 3 is out of bounds for axis 1 with size 3"));
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({3}), -1), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({3}), -1), Contains("index 3 is out of bounds for axis 1 with size 3"));
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({0}), 2), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({0}), 2), Contains("eqx::take: axis 2 is out of range for an array of rank 2"));
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({1.f}), 0), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({1.f}), 0),
                      Contains("eqx::take: indices have dtype float32; they must be int32 or uint32"));
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({true}), 0), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({true}), 0), Contains("eqx::take: indices have dtype bool"));
  REQUIRE_THROWS_AS(eqx::take(m, eqx::array({0.0})), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::take(m, eqx::array({0.0})), Contains("indices have dtype float64"));
  // Rows of zero width still have their indices checked.
  REQUIRE_THROWS_AS(eqx::take(eqx::zeros({5, 0}), eqx::array({7}), 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(eqx::zeros({5, 0}), eqx::array({7}), 0), Contains("index 7 is out of bounds for axis 0 with size 5"));
  check<float>(eqx::take(eqx::zeros({5, 0}), eqx::array({4, -5}), 0), {2, 0}, {});
  REQUIRE_THROWS_AS(eqx::take(eqx::zeros({0}), eqx::array({0}), 0), eqx::IndexError);
  REQUIRE_THROWS_WITH(eqx::take(eqx::zeros({0}), eqx::array({0}), 0), Contains("index 0 is out of bounds for axis 0 with size 0"));
  REQUIRE_THROWS_AS(eqx::take(Array{}, eqx::array({0}), 0), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::take(Array{}, eqx::array({0}), 0), Contains("eqx::take: got an empty Array (None)"));
}

TEST_CASE("one_hot encodes integer labels", "[indexing]") {
  check<float>(eqx::one_hot(eqx::array({2, 0, 3}), 4), {3, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  // out of range (including negatives) gives all zeros, as JAX
  check<float>(eqx::one_hot(eqx::array({4, -1, 1}), 3), {3, 3}, {0, 0, 0, 0, 0, 0, 0, 1, 0});
  check<std::int32_t>(eqx::one_hot(eqx::array({1, 0}), 2, eqx::int32), {2, 2}, {0, 1, 1, 0});
  check<bool>(eqx::one_hot(eqx::array({1u, 5u}), 2, eqx::bool_), {2, 2}, {false, true, false, false});
  check<double>(eqx::one_hot(eqx::array(std::vector<std::int32_t>{0, 1, 1, 0}, {2, 2}), 2, eqx::float64), {2, 2, 2},
                {1, 0, 0, 1, 0, 1, 1, 0});
  check<float>(eqx::one_hot(eqx::array(2), 3), {3}, {0, 0, 1});
  check<float>(eqx::one_hot(eqx::array({0, 1}), 0), {2, 0}, {});
  check<float>(eqx::one_hot(eqx::slice(eqx::array({0, 1, 2, 3}), {{{}, {}, -2}}), 4), {2, 4}, {0, 0, 0, 1, 0, 1, 0, 0});
  REQUIRE_THROWS_AS(eqx::one_hot(eqx::array({1.f}), 3), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::one_hot(eqx::array({1.f}), 3),
                      Contains("eqx::one_hot: indices have dtype float32; they must be int32 or uint32"));
  REQUIRE_THROWS_AS(eqx::one_hot(eqx::array({true}), 3), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::one_hot(eqx::array({true}), 3), Contains("eqx::one_hot: indices have dtype bool"));
  REQUIRE_THROWS_AS(eqx::one_hot(eqx::array({1}), -1), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::one_hot(eqx::array({1}), -1), Contains("eqx::one_hot: num_classes must be >= 0, got -1"));
  REQUIRE_THROWS_AS(eqx::one_hot(Array{}, 3), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::one_hot(Array{}, 3), Contains("eqx::one_hot: got an empty Array (None)"));
}

TEST_CASE("slice and take of non-contiguous inputs", "[indexing]") {
  Array x = seq({2, 3, 4});
  Array t = eqx::transpose(x, {2, 0, 1});  // t[k, i, j] = x[i, j, k] = 12 i + 4 j + k
  check<float>(eqx::slice(t, {{{}, {}, -3}, {1, 2}, {0, 3, 2}}), {2, 1, 2}, {15, 23, 12, 20});
  check<float>(eqx::take(t, eqx::array({2, 0}), 2), {4, 2, 2}, {8, 0, 20, 12, 9, 1, 21, 13, 10, 2, 22, 14, 11, 3, 23, 15});
  Array r = eqx::slice(x, {{{}, {}, -1}, {{}, {}, 2}, {1, 3}});  // x[::-1, ::2, 1:3] = [[[13,14],[21,22]],[[1,2],[9,10]]]
  check<float>(r, {2, 2, 2}, {13, 14, 21, 22, 1, 2, 9, 10});
  check<float>(eqx::take(r, eqx::array({1, 1, 0}), 1), {2, 3, 2}, {21, 22, 21, 22, 13, 14, 9, 10, 9, 10, 1, 2});
  check<float>(eqx::slice(eqx::slice(r, 0, {}, {}, -1), 2, {}, {}, -1), {2, 2, 2}, {2, 1, 10, 9, 14, 13, 22, 21});
  // indices that are themselves a slice result
  Array idx = eqx::slice(eqx::array({5, 4, 3, 2, 1, 0}), {{{}, {}, -2}});  // {0, 2, 4}
  check<float>(eqx::take(seq({6}, 100.f), idx), {3}, {100, 102, 104});
}

TEST_CASE("large slices and takes match naive loops", "[indexing][threads]") {
  const std::int64_t R = 300, C = 400;  // 120000 elements
  std::vector<float> v(R * C);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7) % 10007);
  Array x = eqx::array(v, {R, C});
  // x[::-1, 1::1] then x[250:10:-3, ::2]
  std::vector<float> rev, strided;
  for (std::int64_t i = R - 1; i >= 0; --i)
    for (std::int64_t j = 1; j < C; ++j) rev.push_back(v[i * C + j]);
  check<float>(eqx::slice(x, {{{}, {}, -1}, {1, {}}}), {R, C - 1}, rev);
  std::int64_t rows = 0;
  for (std::int64_t i = 250; i > 10; i -= 3, ++rows)
    for (std::int64_t j = 0; j < C; j += 2) strided.push_back(v[i * C + j]);
  check<float>(eqx::slice(x, {{250, 10, -3}, {{}, {}, 2}}), {rows, C / 2}, strided);

  std::vector<std::int32_t> idx;
  std::vector<float> taken;
  for (std::int32_t k = 0; k < 500; ++k) idx.push_back((k * 37) % 600 - 300);  // in [-300, 300)
  for (auto k : idx) {
    std::int64_t row = k < 0 ? k + R : k;
    for (std::int64_t j = 0; j < C; ++j) taken.push_back(v[row * C + j]);
  }
  check<float>(eqx::take(x, eqx::array(idx), 0), {500, C}, taken);
  std::vector<float> taken1;
  for (std::int64_t i = 0; i < R; ++i)
    for (auto k : idx) taken1.push_back(v[i * C + (k < 0 ? k + C : k)]);
  check<float>(eqx::take(x, eqx::array(idx), 1), {R, 500}, taken1);
}

}  // namespace ops_indexing_test

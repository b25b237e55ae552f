// Tests for eqx::random and the primitives in eqx/prim/random_bits.hpp.
//
// Where the expected values come from:
//  * [JAX-verified] values are copied from JAX's own test suite or docs:
//    Random123 known-answer vectors (JAX tests/random_test.py
//    testThreefry2x32, citing Random123-Boost test_threefry.cpp), the
//    split(key(0)) value from the jax.random docs, testPRNGValues
//    (split/fold_in/randint of key(0)), testRngRandomBits (key 1701) and
//    testRandomDistributionValues (seed = zlib.adler32(name +
//    "threefry2x32"), original non-partitionable threefry, jax_enable_x64
//    off; JAX checks these with assertAllClose, i.e. to ~1e-6).
//  * [reimpl] values come from a throwaway numpy reimplementation of JAX's
//    original threefry and samplers, which reproduces every JAX-verified value
//    above bit for bit (uniform, bits, randint, bernoulli) or to print
//    precision (normal, truncated_normal); they pin bits JAX's suite does not
//    print (exact float bit patterns, float64, permutation, odd shapes).
//  * Everything else is statistics or self-consistency.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace random_random_test {

namespace {

namespace rnd = eqx::random;
using u32 = std::uint32_t;
using Catch::Matchers::Contains;

std::vector<u32> words(const eqx::Array& a) {
  auto d = a.data<u32>();
  return {d.begin(), d.end()};
}
template <class T>
std::vector<T> values(const eqx::Array& a) {
  auto d = a.data<T>();
  return {d.begin(), d.end()};
}
u32 float_bits(float f) {
  u32 u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// adler32(name + "threefry2x32"): the seeds of JAX's testRandomDistributionValues.
constexpr u32 kSeedBits = 942802475u, kSeedUniform = 1338574713u, kSeedNormal = 1193674498u,
              kSeedRandint = 1319372649u, kSeedTruncNormal = 2846034731u, kSeedBernoulli = 1612777541u;

struct Moments {
  double mean = 0, var = 0, min = 0, max = 0;
};
template <class T>
Moments moments(const eqx::Array& a) {
  auto v = a.to_vector<double>();
  Moments m;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size());
  return m;
}

bool is_permutation_of_range(const std::vector<std::int32_t>& p) {
  std::vector<std::int32_t> s = p;
  std::sort(s.begin(), s.end());
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != static_cast<std::int32_t>(i)) return false;
  return true;
}

}  // namespace

// ----------------------------------------------------------------------------- threefry2x32

TEST_CASE("random: threefry2x32 matches the Random123 known-answer vectors", "[random]") {
  // [JAX-verified] Random123 kat_vectors, threefry2x32 with 20 rounds.
  auto block = [](u32 k0, u32 k1, u32 c0, u32 c1) {
    return words(rnd::threefry2x32(eqx::array({k0, k1}), eqx::array({c0, c1})));
  };
  CHECK(block(0, 0, 0, 0) == std::vector<u32>{0x6b200159u, 0x99ba4efeu});
  CHECK(block(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu) == std::vector<u32>{0x1cb996fcu, 0xbb002be7u});
  CHECK(block(0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u) == std::vector<u32>{0xc4923a9cu, 0x483df7a0u});
  CHECK(rnd::threefry2x32(eqx::array({0u, 0u}), eqx::array({0u, 0u})).shape() == eqx::Shape{2});
}

TEST_CASE("random: the threefry2x32 primitive broadcasts scalar keys over counter arrays", "[random]") {
  // Random123 vector 3 repeated: every counter pair hashes independently.
  const std::int64_t n = 1000;
  auto x1 = eqx::full({n}, 0x243f6a88u, eqx::uint32), x2 = eqx::full({n}, 0x85a308d3u, eqx::uint32);
  auto out = eqx::bind(eqx::prim::threefry2x32, std::vector<eqx::Array>{eqx::array(0x13198a2eu), eqx::array(0x03707344u), x1, x2});
  REQUIRE(out.size() == 2);
  CHECK(out[0].shape() == eqx::Shape{n});
  CHECK(out[0].dtype() == eqx::uint32);
  for (u32 v : out[0].data<u32>()) REQUIRE(v == 0xc4923a9cu);
  for (u32 v : out[1].data<u32>()) REQUIRE(v == 0x483df7a0u);

  // Per-element keys of the counters' shape give the per-element blocks.
  auto k1 = eqx::array({0u, 0xffffffffu}), k2 = eqx::array({0u, 0xffffffffu});
  auto c = eqx::array({0u, 0xffffffffu});
  auto y = eqx::bind(eqx::prim::threefry2x32, std::vector<eqx::Array>{k1, k2, c, c});
  CHECK(words(y[0]) == std::vector<u32>{0x6b200159u, 0x1cb996fcu});
  CHECK(words(y[1]) == std::vector<u32>{0x99ba4efeu, 0xbb002be7u});

  // Empty counters give empty outputs.
  auto e = eqx::zeros({0}, eqx::uint32);
  auto ye = eqx::bind(eqx::prim::threefry2x32, std::vector<eqx::Array>{eqx::array(1u), eqx::array(2u), e, e});
  CHECK(ye[0].shape() == eqx::Shape{0});
}

TEST_CASE("random: threefry2x32 primitive errors", "[random]") {
  auto u = eqx::array({1u, 2u});
  auto i = eqx::array({1, 2});
  using P = std::vector<eqx::Array>;
  auto run = [](P in) { return eqx::bind(eqx::prim::threefry2x32, in); };
  CHECK_THROWS_AS(run({u, u, i, u}), eqx::DTypeError);
  CHECK_THROWS_WITH(run({u, u, i, u}), Contains("threefry2x32") && Contains("x1") && Contains("int32") &&
                                           Contains("uint32"));
  CHECK_THROWS_AS(run({u, u, u, eqx::array({1u, 2u, 3u})}), eqx::ShapeError);
  CHECK_THROWS_WITH(run({u, u, u, eqx::array({1u, 2u, 3u})}), Contains("same shape"));
  CHECK_THROWS_AS(run({eqx::array({1u, 2u, 3u}), u, u, u}), eqx::ShapeError);
  CHECK_THROWS_WITH(run({eqx::array({1u, 2u, 3u}), u, u, u}), Contains("k1") && Contains("scalar"));
  CHECK_THROWS_AS(run({u, u, u}), eqx::ValueError);
  CHECK_THROWS_WITH(run({u, u, u}), Contains("threefry2x32: takes 4 inputs (k1, k2, x1, x2), got 3"));
}

// ----------------------------------------------------------------------------- keys

TEST_CASE("random: key(seed) bit-casts the seed into two uint32 words", "[random]") {
  auto k = rnd::key(42);
  CHECK(k.dtype() == eqx::uint32);
  CHECK(k.shape() == eqx::Shape{2});
  CHECK(words(k) == std::vector<u32>{0, 42});                                  // [JAX-verified]
  CHECK(words(rnd::key(0)) == std::vector<u32>{0, 0});                         // [JAX-verified]
  CHECK(words(rnd::key(std::int64_t{2147483747})) == std::vector<u32>{0, 2147483747u});  // [JAX-verified] int32 max + 100
  CHECK(words(rnd::key(std::uint32_t{4294967295u})) == std::vector<u32>{0, 4294967295u});
  // 64-bit seeds: JAX with jax_enable_x64 (default-mode JAX keeps the low word only).
  CHECK(words(rnd::key(-1)) == std::vector<u32>{0xffffffffu, 0xffffffffu});   // [JAX-verified, x64]
  CHECK(words(rnd::key(std::int64_t{-3})) == std::vector<u32>{0xffffffffu, 4294967293u});  // [JAX-verified, x64]
  CHECK(words(rnd::key(std::uint64_t{(1ull << 40) + 5})) == std::vector<u32>{256, 5});
  CHECK(words(rnd::key(std::uint64_t{0xffffffffffffffffull})) == std::vector<u32>{0xffffffffu, 0xffffffffu});
}

TEST_CASE("random: split and split_keys", "[random]") {
  // [JAX-verified] jax.random.split(jax.random.key(0)) from the JAX docs.
  auto s = rnd::split(rnd::key(0));
  CHECK(s.shape() == eqx::Shape{2, 2});
  CHECK(s.dtype() == eqx::uint32);
  CHECK(words(s) == std::vector<u32>{4146024105u, 967050713u, 2718843009u, 1272950319u});

  // [JAX-verified] testPRNGValues: split(key(0), 4).
  CHECK(words(rnd::split(rnd::key(0), 4)) == std::vector<u32>{2285895361u, 1501764800u, 1518642379u, 4090693311u,
                                                               433833334u, 4221794875u, 839183663u, 3740430601u});
  // [reimpl] an odd count (3 keys = 6 counters, even) and another seed.
  CHECK(words(rnd::split(rnd::key(42), 3)) ==
        std::vector<u32>{3134548294u, 3733159049u, 3746501087u, 894150801u, 801545058u, 2363201431u});

  auto ks = rnd::split_keys(rnd::key(0), 2);
  REQUIRE(ks.size() == 2);
  CHECK(ks[0].shape() == eqx::Shape{2});
  CHECK(words(ks[0]) == std::vector<u32>{4146024105u, 967050713u});
  CHECK(words(ks[1]) == std::vector<u32>{2718843009u, 1272950319u});

  CHECK(rnd::split(rnd::key(1), 0).shape() == eqx::Shape{0, 2});
  CHECK(rnd::split_keys(rnd::key(1), 0).empty());
  CHECK(rnd::split(rnd::key(1), 1).shape() == eqx::Shape{1, 2});
  // A split key's first row is not the parent key.
  CHECK(words(rnd::split_keys(rnd::key(7), 1)[0]) != words(rnd::key(7)));
}

TEST_CASE("random: fold_in", "[random]") {
  // [JAX-verified] testPRNGValues: fold_in(key(0), 4).
  CHECK(words(rnd::fold_in(rnd::key(0), 4)) == std::vector<u32>{2285895361u, 433833334u});
  // [reimpl]
  CHECK(words(rnd::fold_in(rnd::key(42), 7)) == std::vector<u32>{2547012911u, 1371500959u});
  CHECK(words(rnd::fold_in(rnd::key(0), 0)) == std::vector<u32>{1797259609u, 2579123966u});
  CHECK(words(rnd::fold_in(rnd::key(0), 0xffffffffu)) == std::vector<u32>{743310391u, 3789761811u});
  // fold_in(k, d) is the hash of the counter pair (0, d).
  CHECK(words(rnd::fold_in(rnd::key(9), 123)) ==
        words(rnd::threefry2x32(rnd::key(9), eqx::array({0u, 123u}))));
  auto k = rnd::fold_in(rnd::key(3), 1);
  CHECK(k.shape() == eqx::Shape{2});
  CHECK(words(rnd::fold_in(rnd::key(3), 1)) != words(rnd::fold_in(rnd::key(3), 2)));
}

// ----------------------------------------------------------------------------- bits

TEST_CASE("random: bits", "[random]") {
  // [JAX-verified] testRngRandomBits: random_bits(key(1701), 32, (3,)).
  CHECK(words(rnd::bits(rnd::key(1701), {3})) == std::vector<u32>{56197195u, 4200222568u, 961309823u});
  // [JAX-verified] testRandomDistributionValues "bits" uint32.
  auto b = rnd::bits(rnd::key(kSeedBits), {5});
  CHECK(b.dtype() == eqx::uint32);
  CHECK(words(b) == std::vector<u32>{1978747883u, 4134381225u, 3628107870u, 689687174u, 2788938207u});
  // [reimpl] odd element counts (padded counter halves) and rank 2.
  CHECK(words(rnd::bits(rnd::key(7), {7})) ==
        std::vector<u32>{51277378u, 1628829261u, 1440439266u, 2614294787u, 3088387524u, 4291721531u, 3731608162u});
  auto b23 = rnd::bits(rnd::key(7), {2, 3});
  CHECK(b23.shape() == eqx::Shape{2, 3});
  CHECK(words(b23) == std::vector<u32>{276534068u, 861967409u, 1905761346u, 1641862660u, 2900896126u, 1402713516u});
  CHECK(rnd::bits(rnd::key(7), {}).shape() == eqx::Shape{});
  CHECK(rnd::bits(rnd::key(7), {3, 0}).shape() == eqx::Shape{3, 0});
}

TEST_CASE("random: 64-bit words (used by float64 uniform) match JAX's uint64 bits", "[random]") {
  auto join = [](const std::pair<eqx::Array, eqx::Array>& hl) {
    std::vector<std::uint64_t> out;
    auto hi = hl.first.data<u32>(), lo = hl.second.data<u32>();
    for (std::size_t i = 0; i < hi.size(); ++i) out.push_back((std::uint64_t{hi[i]} << 32) | lo[i]);
    return out;
  };
  // [JAX-verified] testRngRandomBits with jax_enable_x64: random_bits(key(1701), 64, (3,)).
  CHECK(join(rnd::detail::bits64(rnd::key(1701), {3}, "test")) ==
        std::vector<std::uint64_t>{3982329540505020460ull, 16822122385914693683ull, 7882654074788531506ull});
  // [JAX-verified] testRandomDistributionValues "bits" uint64 (x64 only).
  CHECK(join(rnd::detail::bits64(rnd::key(kSeedBits), {5}, "test")) ==
        std::vector<std::uint64_t>{17649965731882839947ull, 1415307058040849897ull, 8282622628079774249ull,
                                   14024425113645909402ull, 2012979996110532418ull});
}

// ----------------------------------------------------------------------------- samplers: pinned values

TEST_CASE("random: uniform matches JAX", "[random]") {
  auto u = rnd::uniform(rnd::key(kSeedUniform), {5});
  CHECK(u.dtype() == eqx::float32);
  CHECK(u.shape() == eqx::Shape{5});
  // [JAX-verified] testRandomDistributionValues "uniform".
  const std::vector<float> jax = {0.298671f, 0.073213f, 0.873356f, 0.260549f, 0.412797f};
  auto v = values<float>(u);
  for (std::size_t i = 0; i < 5; ++i) CHECK(v[i] == Approx(jax[i]).margin(1e-6));
  // [reimpl] the exact float32 bit patterns.
  std::vector<u32> got;
  for (float f : v) got.push_back(float_bits(f));
  CHECK(got == std::vector<u32>{0x3e98eb78u, 0x3d95f0a0u, 0x3f5f943eu, 0x3e8566a8u, 0x3ed35a14u});

  // [reimpl] minval/maxval scaling, and float64 (JAX with x64).
  auto r = values<float>(rnd::uniform(rnd::key(9), {4}, eqx::float32, -2.0, 3.0));
  CHECK(r == std::vector<float>{1.115931749343872f, 1.1446313858032227f, 2.7841110229492188f, 1.5822649002075195f});
  auto d = rnd::uniform(rnd::key(0), {3}, eqx::float64);
  CHECK(d.dtype() == eqx::float64);
  CHECK(values<double>(d) == std::vector<double>{0.5745005337275046, 0.0996860909733377, 0.7419659489424089});
  CHECK(values<double>(rnd::uniform(rnd::key(1), {2}, eqx::float64, -1, 1)) ==
        std::vector<double>{0.13710511563780203, -0.3550878863447853});
  // Rank 0 and empty shapes.
  CHECK(rnd::uniform(rnd::key(1)).shape() == eqx::Shape{});
  CHECK(rnd::uniform(rnd::key(1), {0, 4}).shape() == eqx::Shape{0, 4});
  // minval == maxval gives minval.
  for (float f : values<float>(rnd::uniform(rnd::key(1), {8}, eqx::float32, 2.5, 2.5))) CHECK(f == 2.5f);
}

TEST_CASE("random: normal matches JAX", "[random]") {
  auto n = rnd::normal(rnd::key(kSeedNormal), {5});
  CHECK(n.dtype() == eqx::float32);
  // [JAX-verified] testRandomDistributionValues "normal".
  const std::vector<float> jax = {-1.173234f, -1.511662f, 0.070593f, -0.099764f, 1.052845f};
  auto v = values<float>(n);
  for (std::size_t i = 0; i < 5; ++i) CHECK(v[i] == Approx(jax[i]).margin(2e-6));
  auto d = rnd::normal(rnd::key(kSeedNormal), {5}, eqx::float64);
  CHECK(d.dtype() == eqx::float64);
  CHECK(rnd::normal(rnd::key(1), {2, 3}).shape() == eqx::Shape{2, 3});
}

TEST_CASE("random: randint matches JAX", "[random]") {
  // [JAX-verified] testRandomDistributionValues "randint" and testPRNGValues.
  auto r = rnd::randint(rnd::key(kSeedRandint), {5}, 0, 10);
  CHECK(r.dtype() == eqx::int32);
  CHECK(values<std::int32_t>(r) == std::vector<std::int32_t>{0, 5, 7, 7, 5});
  auto r33 = rnd::randint(rnd::key(0), {3, 3}, 0, 8);
  CHECK(r33.shape() == eqx::Shape{3, 3});
  CHECK(values<std::int32_t>(r33) == std::vector<std::int32_t>{2, 1, 3, 6, 1, 5, 6, 3, 4});
  // [reimpl] negative ranges, the full int32 range, out-of-range maxval, empty range.
  CHECK(values<std::int32_t>(rnd::randint(rnd::key(5), {6}, -3, 3)) == std::vector<std::int32_t>{0, 1, -2, 2, 2, -2});
  const std::vector<std::int32_t> full = {-1381955285, 1292147518, -1740424818, 1942118257};
  CHECK(values<std::int32_t>(rnd::randint(rnd::key(5), {4}, INT32_MIN, INT32_MAX)) == full);
  CHECK(values<std::int32_t>(rnd::randint(rnd::key(5), {4}, INT32_MIN, std::int64_t{1} << 31)) == full);
  CHECK(values<std::int32_t>(rnd::randint(rnd::key(5), {3}, 5, 5)) == std::vector<std::int32_t>{5, 5, 5});
  CHECK(values<std::int32_t>(rnd::randint(rnd::key(5), {3}, 5, -5)) == std::vector<std::int32_t>{5, 5, 5});
  // uint32.
  auto ru = rnd::randint(rnd::key(5), {1000}, 10, 20, eqx::uint32);
  CHECK(ru.dtype() == eqx::uint32);
  for (u32 x : ru.data<u32>()) REQUIRE((x >= 10 && x < 20));
  // Bounds beyond int32 clip into range.
  for (auto x : values<std::int32_t>(rnd::randint(rnd::key(5), {1000}, -(std::int64_t{1} << 40), -(std::int64_t{1} << 35))))
    REQUIRE(x == INT32_MIN);
}

TEST_CASE("random: bernoulli matches JAX", "[random]") {
  // [JAX-verified] testRandomDistributionValues "bernoulli" with p = 0.5.
  auto b = rnd::bernoulli(rnd::key(kSeedBernoulli), 0.5, {5});
  CHECK(b.dtype() == eqx::bool_);
  CHECK(values<bool>(b) == std::vector<bool>{false, true, true, true, false});
  // p as an Array (same draw as uniform of p's dtype).
  auto pb = rnd::bernoulli(rnd::key(kSeedBernoulli), eqx::full({5}, 0.5f));
  CHECK(values<bool>(pb) == std::vector<bool>{false, true, true, true, false});
  auto pr = rnd::bernoulli(rnd::key(3), eqx::array({0.0f, 1.0f}), {4, 2});
  CHECK(pr.shape() == eqx::Shape{4, 2});
  auto pv = values<bool>(pr);
  for (std::size_t i = 0; i < pv.size(); ++i) CHECK(pv[i] == (i % 2 == 1));
  CHECK(rnd::bernoulli(rnd::key(3)).shape() == eqx::Shape{});
  for (bool x : values<bool>(rnd::bernoulli(rnd::key(3), 0.0, {100}))) REQUIRE(!x);
  for (bool x : values<bool>(rnd::bernoulli(rnd::key(3), 1.0, {100}))) REQUIRE(x);
}

TEST_CASE("random: truncated_normal matches JAX", "[random]") {
  // [JAX-verified] testRandomDistributionValues "truncated_normal", lower 0, upper 2.
  auto t = rnd::truncated_normal(rnd::key(kSeedTruncNormal), 0, 2, {5});
  CHECK(t.dtype() == eqx::float32);
  const std::vector<float> jax = {0.582807f, 1.709771f, 0.159513f, 0.861376f, 0.36148f};
  auto v = values<float>(t);
  for (std::size_t i = 0; i < 5; ++i) CHECK(v[i] == Approx(jax[i]).margin(2e-6));
  CHECK(rnd::truncated_normal(rnd::key(1), -1, 1, {2, 2}, eqx::float64).dtype() == eqx::float64);
}

TEST_CASE("random: permutation", "[random]") {
  // [reimpl] JAX's sort-based shuffle (1 round for n <= 1625).
  auto p = rnd::permutation(rnd::key(0), 10);
  CHECK(p.dtype() == eqx::int32);
  CHECK(values<std::int32_t>(p) == std::vector<std::int32_t>{2, 7, 9, 6, 0, 8, 1, 3, 4, 5});
  // [reimpl] 2000 elements need 2 sort rounds.
  auto p2 = values<std::int32_t>(rnd::permutation(rnd::key(3), 2000));
  CHECK(std::vector<std::int32_t>(p2.begin(), p2.begin() + 8) ==
        std::vector<std::int32_t>{480, 395, 593, 1783, 1162, 1567, 1404, 660});
  CHECK(is_permutation_of_range(p2));

  // Arrays: axis 0 is shuffled with the same permutation as permutation(key, n).
  auto x = eqx::astype(eqx::arange(10), eqx::float32) * 10.0;
  CHECK(values<float>(rnd::permutation(rnd::key(0), x)) ==
        std::vector<float>{20, 70, 90, 60, 0, 80, 10, 30, 40, 50});
  auto m = eqx::reshape(eqx::arange(20), {10, 2});
  auto pm = rnd::permutation(rnd::key(0), m);
  CHECK(pm.shape() == eqx::Shape{10, 2});
  CHECK(values<std::int32_t>(eqx::slice(pm, 1, 0, 1)) == std::vector<std::int32_t>{4, 14, 18, 12, 0, 16, 2, 6, 8, 10});
  // Trivial sizes.
  CHECK(rnd::permutation(rnd::key(0), 0).shape() == eqx::Shape{0});
  CHECK(values<std::int32_t>(rnd::permutation(rnd::key(0), 1)) == std::vector<std::int32_t>{0});
  auto bools = rnd::permutation(rnd::key(1), eqx::array({true, false, false}));
  CHECK(bools.dtype() == eqx::bool_);
  auto bv = values<bool>(bools);
  CHECK(std::count(bv.begin(), bv.end(), true) == 1);
}

// ----------------------------------------------------------------------------- statistics

TEST_CASE("random: uniform statistics", "[random]") {
  const std::int64_t n = 100000;
  auto m = moments<float>(rnd::uniform(rnd::key(11), {n}));
  CHECK(m.mean == Approx(0.5).margin(0.01));
  CHECK(m.var == Approx(1.0 / 12).margin(0.003));
  CHECK(m.min >= 0.0);
  CHECK(m.max < 1.0);
  CHECK(m.min < 0.001);
  CHECK(m.max > 0.999);

  auto r = moments<float>(rnd::uniform(rnd::key(12), {n}, eqx::float32, -2.0, 3.0));
  CHECK(r.mean == Approx(0.5).margin(0.05));
  CHECK(r.var == Approx(25.0 / 12).margin(0.07));
  CHECK(r.min >= -2.0);
  CHECK(r.max < 3.0);

  auto d = moments<double>(rnd::uniform(rnd::key(13), {n}, eqx::float64));
  CHECK(d.mean == Approx(0.5).margin(0.01));
  CHECK(d.var == Approx(1.0 / 12).margin(0.003));
  CHECK(d.min >= 0.0);
  CHECK(d.max < 1.0);

  // float64 uses all 52 mantissa bits: values are not all multiples of 2^-23.
  auto dv = values<double>(rnd::uniform(rnd::key(13), {100}, eqx::float64));
  CHECK(std::any_of(dv.begin(), dv.end(), [](double x) { return std::ldexp(x, 23) != std::floor(std::ldexp(x, 23)); }));
}

TEST_CASE("random: normal statistics", "[random]") {
  const std::int64_t n = 100000;
  for (auto dt : {eqx::float32, eqx::float64}) {
    auto m = moments<double>(rnd::normal(rnd::key(21), {n}, dt));
    CHECK(m.mean == Approx(0.0).margin(0.02));
    CHECK(m.var == Approx(1.0).margin(0.03));
    CHECK(m.min > -6.0);
    CHECK(m.max < 6.0);
    CHECK(m.min < -3.5);
    CHECK(m.max > 3.5);
  }
  // Fraction within one standard deviation: 68.27%.
  auto v = values<float>(rnd::normal(rnd::key(22), {n}));
  double within = static_cast<double>(std::count_if(v.begin(), v.end(), [](float x) { return std::abs(x) < 1; })) / n;
  CHECK(within == Approx(0.6827).margin(0.01));
}

TEST_CASE("random: bernoulli statistics", "[random]") {
  const std::int64_t n = 100000;
  for (double p : {0.1, 0.3, 0.9}) {
    auto b = values<bool>(rnd::bernoulli(rnd::key(31), p, {n}));
    double mean = static_cast<double>(std::count(b.begin(), b.end(), true)) / n;
    CHECK(mean == Approx(p).margin(0.01));
  }
  auto b64 = values<bool>(rnd::bernoulli(rnd::key(32), eqx::full({n}, 0.25, eqx::float64)));
  CHECK(static_cast<double>(std::count(b64.begin(), b64.end(), true)) / n == Approx(0.25).margin(0.01));
}

TEST_CASE("random: randint statistics", "[random]") {
  const std::int64_t n = 100000;
  auto v = values<std::int32_t>(rnd::randint(rnd::key(41), {n}, -5, 5));
  std::vector<int> counts(10, 0);
  for (auto x : v) {
    REQUIRE(x >= -5);
    REQUIRE(x < 5);
    ++counts[static_cast<std::size_t>(x + 5)];
  }
  // Each bucket expects 10000 (sd ~95); allow 5 sd.
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);
  // A wide range reaches both ends.
  auto w = values<std::int32_t>(rnd::randint(rnd::key(42), {n}, 0, 1000));
  CHECK(*std::min_element(w.begin(), w.end()) == 0);
  CHECK(*std::max_element(w.begin(), w.end()) == 999);
}

TEST_CASE("random: truncated_normal statistics and bounds", "[random]") {
  const std::int64_t n = 100000;
  auto v = values<float>(rnd::truncated_normal(rnd::key(51), -1, 2, {n}));
  for (float x : v) REQUIRE((x > -1.0f && x < 2.0f));
  double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  // (phi(-1) - phi(2)) / (Phi(2) - Phi(-1)) = 0.22964
  CHECK(mean == Approx(0.22964).margin(0.01));
  // Infinite bounds are the plain normal distribution.
  auto u = moments<double>(rnd::truncated_normal(rnd::key(52), -std::numeric_limits<double>::infinity(),
                                                 std::numeric_limits<double>::infinity(), {n}, eqx::float64));
  CHECK(u.mean == Approx(0.0).margin(0.02));
  CHECK(u.var == Approx(1.0).margin(0.03));
  // A narrow window stays strictly inside.
  for (float x : values<float>(rnd::truncated_normal(rnd::key(53), 3.0, 3.001, {1000}))) REQUIRE((x > 3.0f && x < 3.001f));
}

TEST_CASE("random: permutations are permutations", "[random]") {
  for (std::int64_t n : {2, 17, 1000, 1626}) {
    auto p = values<std::int32_t>(rnd::permutation(rnd::key(n), n));
    REQUIRE(p.size() == static_cast<std::size_t>(n));
    CHECK(is_permutation_of_range(p));
  }
  // First position is roughly uniform over 0..4.
  std::vector<int> first(5, 0);
  for (u32 i = 0; i < 2000; ++i) ++first[static_cast<std::size_t>(values<std::int32_t>(rnd::permutation(rnd::fold_in(rnd::key(0), i), 5))[0])];
  for (int c : first) CHECK(std::abs(c - 400) < 100);
}

// ----------------------------------------------------------------------------- determinism

TEST_CASE("random: same key gives the same values, different keys differ", "[random]") {
  auto k = rnd::key(123);
  CHECK(words(rnd::bits(k, {64})) == words(rnd::bits(rnd::key(123), {64})));
  CHECK(values<float>(rnd::uniform(k, {64})) == values<float>(rnd::uniform(k, {64})));
  CHECK(values<float>(rnd::normal(k, {64})) == values<float>(rnd::normal(k, {64})));
  CHECK(values<std::int32_t>(rnd::randint(k, {64}, 0, 100)) == values<std::int32_t>(rnd::randint(k, {64}, 0, 100)));
  CHECK(values<std::int32_t>(rnd::permutation(k, 50)) == values<std::int32_t>(rnd::permutation(k, 50)));

  auto ks = rnd::split_keys(k, 3);
  CHECK(words(rnd::bits(ks[0], {8})) != words(rnd::bits(ks[1], {8})));
  CHECK(words(rnd::bits(ks[1], {8})) != words(rnd::bits(ks[2], {8})));
  CHECK(words(rnd::bits(k, {8})) != words(rnd::bits(ks[0], {8})));
  CHECK(words(rnd::bits(rnd::key(1), {8})) != words(rnd::bits(rnd::key(2), {8})));
  CHECK(values<float>(rnd::uniform(rnd::fold_in(k, 0), {8})) != values<float>(rnd::uniform(rnd::fold_in(k, 1), {8})));
  // The draw of a prefix shape is not a prefix of a longer draw (counts are
  // split in halves), but bits are a pure function of (key, shape).
  CHECK(words(rnd::bits(k, {2, 4})) == words(rnd::bits(k, {8})));
  // The key Array is not modified by use.
  CHECK(words(k) == std::vector<u32>{0, 123});
}

// ----------------------------------------------------------------------------- primitives

TEST_CASE("random: shift, rem and bitcast primitives", "[random]") {
  auto x = eqx::array({0x80000001u, 0xffffffffu, 1u});
  auto shl = [](const eqx::Array& a, const eqx::Array& b) { return eqx::bind1(eqx::prim::shift_left, {a, b}); };
  auto shr = [](const eqx::Array& a, const eqx::Array& b) { return eqx::bind1(eqx::prim::shift_right_logical, {a, b}); };
  CHECK(words(shl(x, eqx::array(1u))) == std::vector<u32>{2u, 0xfffffffeu, 2u});
  CHECK(words(shr(x, eqx::array(31u))) == std::vector<u32>{1u, 1u, 0u});
  CHECK(words(shr(x, eqx::array({0u, 32u, 100u}))) == std::vector<u32>{0x80000001u, 0u, 0u});
  CHECK(words(shl(x, eqx::array({0u, 32u, 33u}))) == std::vector<u32>{0x80000001u, 0u, 0u});
  // Logical shift of int32 fills with zeros.
  CHECK(values<std::int32_t>(shr(eqx::array({-1}), eqx::array({28}))) == std::vector<std::int32_t>{15});
  CHECK(values<std::int32_t>(shl(eqx::array({-1}), eqx::array({31}))) == std::vector<std::int32_t>{INT32_MIN});
  CHECK_THROWS_AS(shl(eqx::array({1.0f}), eqx::array({1.0f})), eqx::DTypeError);
  CHECK_THROWS_WITH(shl(eqx::array({1.0f}), eqx::array({1.0f})), Contains("shift_left") && Contains("int32 or uint32"));
  CHECK_THROWS_AS(shr(eqx::array({1u}), eqx::array({1})), eqx::DTypeError);
  CHECK_THROWS_WITH(shr(eqx::array({1u}), eqx::array({1})),
                    Contains("shift_right_logical: operands have dtypes uint32 and int32"));

  auto rem = [](const eqx::Array& a, const eqx::Array& b) { return eqx::bind1(eqx::prim::rem, {a, b}); };
  CHECK(words(rem(eqx::array({7u, 7u, 0xffffffffu}), eqx::array({3u, 0u, 10u}))) == std::vector<u32>{1u, 7u, 5u});
  CHECK(values<std::int32_t>(rem(eqx::array({-7, 7, INT32_MIN, 5}), eqx::array({3, -3, -1, 0}))) ==
        std::vector<std::int32_t>{-1, 1, 0, 5});
  CHECK(values<float>(rem(eqx::array({-7.5f}), eqx::array({2.0f}))) == std::vector<float>{-1.5f});

  auto bc = [](const eqx::Array& a, eqx::DType t) {
    return eqx::bind1(eqx::prim::bitcast_convert_type, {a}, eqx::Params{}.set("new_dtype", t));
  };
  CHECK(values<float>(bc(eqx::array({0x3f800000u, 0x40490fdbu}), eqx::float32)) == std::vector<float>{1.0f, 3.14159274f});
  CHECK(words(bc(eqx::array({-1.0f}), eqx::uint32)) == std::vector<u32>{0xbf800000u});
  // u32[..., 2] -> f64[...], low word first; and back.
  auto d = bc(eqx::reshape(eqx::array({0u, 0x3ff00000u, 0u, 0x40000000u}), {2, 2}), eqx::float64);
  CHECK(d.shape() == eqx::Shape{2});
  CHECK(values<double>(d) == std::vector<double>{1.0, 2.0});
  auto back = bc(d, eqx::uint32);
  CHECK(back.shape() == eqx::Shape{2, 2});
  CHECK(words(back) == std::vector<u32>{0u, 0x3ff00000u, 0u, 0x40000000u});
  CHECK_THROWS_AS(bc(eqx::array({1u, 2u, 3u}), eqx::float64), eqx::ShapeError);
  CHECK_THROWS_WITH(bc(eqx::array({1u, 2u, 3u}), eqx::float64), Contains("bitcast_convert_type") && Contains("size 2"));
  CHECK_THROWS_AS(bc(eqx::array({true}), eqx::uint32), eqx::DTypeError);
  CHECK_THROWS_WITH(bc(eqx::array({true}), eqx::uint32),
                    Contains("cannot bitcast bool[1] to uint32; bool has no defined bit pattern"));
}

TEST_CASE("random: erf_inv primitive", "[random]") {
  auto erf_inv = [](const eqx::Array& a) { return eqx::bind1(eqx::prim::erf_inv, {a}); };
  std::vector<float> xs;
  for (int i = -999; i <= 999; ++i) xs.push_back(static_cast<float>(i) / 1000.0f);
  xs.push_back(0.999999f);
  xs.push_back(-0.9999999f);
  auto y = values<float>(erf_inv(eqx::array(xs)));
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(std::erf(static_cast<double>(y[i])) == Approx(xs[i]).margin(2e-6));
  std::vector<double> xd;
  for (int i = -999; i <= 999; ++i) xd.push_back(i / 1000.0);
  xd.push_back(1 - 1e-12);
  xd.push_back(-(1 - 1e-15));
  auto yd = values<double>(erf_inv(eqx::array(xd)));
  for (std::size_t i = 0; i < xd.size(); ++i) CHECK(std::erf(yd[i]) == Approx(xd[i]).epsilon(1e-14).margin(1e-15));
  // Known value: erfinv(0.5) = 0.4769362762044699.
  CHECK(values<double>(erf_inv(eqx::array({0.5})))[0] == Approx(0.4769362762044699).epsilon(1e-15));
  auto edge = values<float>(erf_inv(eqx::array({1.0f, -1.0f, 0.0f, 1.5f, std::nanf("")})));
  CHECK(edge[0] == std::numeric_limits<float>::infinity());
  CHECK(edge[1] == -std::numeric_limits<float>::infinity());
  CHECK(edge[2] == 0.0f);
  CHECK(std::isnan(edge[3]));
  CHECK(std::isnan(edge[4]));
  CHECK_THROWS_AS(erf_inv(eqx::array({1})), eqx::DTypeError);
  CHECK_THROWS_WITH(erf_inv(eqx::array({1})), Contains("erf_inv") && Contains("floating"));
}

TEST_CASE("random: sort_key_val primitive is a stable sort along a dimension", "[random]") {
  auto sort = [](const eqx::Array& k, const eqx::Array& v, std::int64_t dim) {
    return eqx::bind(eqx::prim::sort_key_val, std::vector<eqx::Array>{k, v}, eqx::Params{}.set("dimension", dim));
  };
  auto out = sort(eqx::array({3u, 1u, 3u, 0u, 1u}), eqx::array({0, 1, 2, 3, 4}), 0);
  CHECK(words(out[0]) == std::vector<u32>{0u, 1u, 1u, 3u, 3u});
  CHECK(values<std::int32_t>(out[1]) == std::vector<std::int32_t>{3, 1, 4, 0, 2});
  auto k2 = eqx::reshape(eqx::array({2, 1, 0, 0, 1, 2}), {2, 3});
  auto v2 = eqx::reshape(eqx::array({10.f, 11.f, 12.f, 13.f, 14.f, 15.f}), {2, 3});
  auto r1 = sort(k2, v2, 1);
  CHECK(values<float>(r1[1]) == std::vector<float>{12, 11, 10, 13, 14, 15});
  auto r0 = sort(k2, v2, 0);
  CHECK(values<float>(r0[1]) == std::vector<float>{13, 11, 12, 10, 14, 15});
  CHECK_THROWS_AS(sort(eqx::array({1.0f}), eqx::array({1}), 0), eqx::DTypeError);
  CHECK_THROWS_WITH(sort(eqx::array({1.0f}), eqx::array({1}), 0),
                    Contains("sort_key_val: keys have dtype float32; they must be int32 or uint32"));
  CHECK_THROWS_AS(sort(eqx::array({1u, 2u}), eqx::array({1}), 0), eqx::ShapeError);
  CHECK_THROWS_WITH(sort(eqx::array({1u, 2u}), eqx::array({1}), 0),
                    Contains("sort_key_val: keys u32[2] and values i32[1] must have the same shape"));
  CHECK_THROWS_AS(sort(eqx::array({1u}), eqx::array({1}), 1), eqx::IndexError);
  CHECK_THROWS_WITH(sort(eqx::array({1u}), eqx::array({1}), 1),
                    Contains("sort_key_val: dimension 1 is out of range for keys u32[1]"));
}

// ----------------------------------------------------------------------------- errors

TEST_CASE("random: invalid keys are rejected with a message naming the function", "[random]") {
  const std::vector<std::pair<std::string, std::function<void(const eqx::Array&)>>> fns = {
      {"split", [](const eqx::Array& k) { rnd::split(k); }},
      {"split", [](const eqx::Array& k) { rnd::split_keys(k, 2); }},
      {"fold_in", [](const eqx::Array& k) { rnd::fold_in(k, 1); }},
      {"bits", [](const eqx::Array& k) { rnd::bits(k, {2}); }},
      {"uniform", [](const eqx::Array& k) { rnd::uniform(k, {2}); }},
      {"normal", [](const eqx::Array& k) { rnd::normal(k, {2}); }},
      {"bernoulli", [](const eqx::Array& k) { rnd::bernoulli(k, 0.5, {2}); }},
      {"bernoulli", [](const eqx::Array& k) { rnd::bernoulli(k, eqx::full({2}, 0.5f)); }},
      {"randint", [](const eqx::Array& k) { rnd::randint(k, {2}, 0, 3); }},
      {"permutation", [](const eqx::Array& k) { rnd::permutation(k, 3); }},
      {"permutation", [](const eqx::Array& k) { rnd::permutation(k, eqx::arange(3)); }},
      {"truncated_normal", [](const eqx::Array& k) { rnd::truncated_normal(k, -1, 1, {2}); }},
      {"threefry2x32", [](const eqx::Array& k) { rnd::threefry2x32(k, eqx::array({0u, 0u})); }},
  };
  const std::vector<std::pair<eqx::Array, std::string>> bad = {
      {eqx::array({0, 42}), "i32[2]"},
      {eqx::array({0.0f, 42.0f}), "f32[2]"},
      {eqx::array({1u, 2u, 3u}), "u32[3]"},
      {eqx::array(1u), "u32[]"},
      {eqx::Array(), "empty Array"},
  };
  for (const auto& [name, fn] : fns)
    for (const auto& [k, desc] : bad) {
      INFO(name << " with " << desc);
      CHECK_THROWS_AS(fn(k), eqx::ValueError);
      CHECK_THROWS_WITH(fn(k), Contains("eqx::random::" + name) && Contains(desc) && Contains("uint32") &&
                                   Contains("eqx::random::key(seed)"));
    }
  // A batch of keys from split gets a hint to pick one.
  auto batch = rnd::split(rnd::key(0), 3);
  CHECK_THROWS_AS(rnd::uniform(batch, {2}), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::uniform(batch, {2}), Contains("u32[3,2]") && Contains("split_keys"));
  // The counter of threefry2x32 is named as such.
  CHECK_THROWS_AS(rnd::threefry2x32(rnd::key(0), eqx::array({1u})), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::threefry2x32(rnd::key(0), eqx::array({1u})), Contains("counter_pair") && Contains("u32[1]"));
}

TEST_CASE("random: argument errors", "[random]") {
  auto k = rnd::key(0);
  // Shapes.
  CHECK_THROWS_AS(rnd::bits(k, {2, -1}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::bits(k, {2, -1}), Contains("eqx::random::bits: shape [2,-1] has a negative dimension"));
  CHECK_THROWS_AS(rnd::uniform(k, {-3}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::uniform(k, {-3}), Contains("eqx::random::uniform") && Contains("[-3]") && Contains(">= 0"));
  CHECK_THROWS_AS(rnd::normal(k, {-1}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::normal(k, {-1}), Contains("eqx::random::normal: shape [-1] has a negative dimension"));
  CHECK_THROWS_AS(rnd::randint(k, {-1}, 0, 2), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::randint(k, {-1}, 0, 2), Contains("eqx::random::randint: shape [-1] has a negative dimension"));
  CHECK_THROWS_AS(rnd::bernoulli(k, 0.5, {-1}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::bernoulli(k, 0.5, {-1}),
                    Contains("eqx::random::bernoulli: shape [-1] has a negative dimension"));
  CHECK_THROWS_AS(rnd::truncated_normal(k, 0, 1, {-1}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::truncated_normal(k, 0, 1, {-1}),
                    Contains("eqx::random::truncated_normal: shape [-1] has a negative dimension"));
  CHECK_THROWS_AS(rnd::bits(k, {65536, 65536}), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::bits(k, {65536, 65536}), Contains("eqx::random::bits") && Contains("4294967294"));
  CHECK_THROWS_AS(rnd::uniform(k, {65536, 32768}, eqx::float64), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::uniform(k, {65536, 32768}, eqx::float64),
                    Contains("eqx::random::uniform: shape [65536,32768] needs 4294967296 random 32-bit words") &&
                        Contains("draw in pieces with split keys"));

  // Dtypes.
  CHECK_THROWS_AS(rnd::uniform(k, {2}, eqx::int32), eqx::DTypeError);
  CHECK_THROWS_WITH(rnd::uniform(k, {2}, eqx::int32),
                    Contains("eqx::random::uniform") && Contains("float32 or float64") && Contains("int32"));
  CHECK_THROWS_AS(rnd::normal(k, {2}, eqx::uint32), eqx::DTypeError);
  CHECK_THROWS_WITH(rnd::normal(k, {2}, eqx::uint32),
                    Contains("eqx::random::normal: dtype must be float32 or float64, got uint32"));
  CHECK_THROWS_AS(rnd::truncated_normal(k, 0, 1, {2}, eqx::bool_), eqx::DTypeError);
  CHECK_THROWS_WITH(rnd::truncated_normal(k, 0, 1, {2}, eqx::bool_),
                    Contains("eqx::random::truncated_normal: dtype must be float32 or float64, got bool"));
  CHECK_THROWS_AS(rnd::randint(k, {2}, 0, 5, eqx::float32), eqx::DTypeError);
  CHECK_THROWS_WITH(rnd::randint(k, {2}, 0, 5, eqx::float32),
                    Contains("eqx::random::randint") && Contains("int32 or uint32") && Contains("float32"));
  CHECK_THROWS_AS(rnd::bernoulli(k, eqx::array({1, 0})), eqx::DTypeError);
  CHECK_THROWS_WITH(rnd::bernoulli(k, eqx::array({1, 0})), Contains("eqx::random::bernoulli") && Contains("int32"));

  // Values.
  CHECK_THROWS_AS(rnd::split(k, -1), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::split(k, -1), Contains("eqx::random::split") && Contains("-1"));
  CHECK_THROWS_AS(rnd::split_keys(k, -2), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::split_keys(k, -2), Contains("eqx::random::split: num must be >= 0, got -2"));
  CHECK_THROWS_AS(rnd::uniform(k, {2}, eqx::float32, 1.0, 0.0), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::uniform(k, {2}, eqx::float32, 1.0, 0.0), Contains("minval") && Contains("maxval"));
  CHECK_THROWS_AS(rnd::uniform(k, {2}, eqx::float32, std::nan(""), 1.0), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::uniform(k, {2}, eqx::float32, std::nan(""), 1.0),
                    Contains("eqx::random::uniform: minval (nan) must be <= maxval (1.000000)"));
  CHECK_THROWS_AS(rnd::truncated_normal(k, 1, 1, {2}), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::truncated_normal(k, 1, 1, {2}),
                    Contains("eqx::random::truncated_normal: lower (1.000000) must be less than upper (1.000000)"));
  CHECK_THROWS_AS(rnd::truncated_normal(k, 2, 1, {2}), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::truncated_normal(k, 2, 1, {2}),
                    Contains("eqx::random::truncated_normal") && Contains("lower") && Contains("upper"));
  CHECK_THROWS_AS(rnd::bernoulli(k, std::nan(""), {2}), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::bernoulli(k, std::nan(""), {2}),
                    Contains("eqx::random::bernoulli: p is NaN; it must be a probability in [0, 1]"));
  CHECK_THROWS_AS(rnd::bernoulli(k, eqx::Array()), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::bernoulli(k, eqx::Array()), Contains("eqx::random::bernoulli: p is an empty Array (None)"));
  CHECK_THROWS_AS(rnd::bernoulli(k, eqx::full({3}, 0.5f), {2}), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::bernoulli(k, eqx::full({3}, 0.5f), {2}),
                    Contains("eqx::random::bernoulli: shapes [2] and [3] cannot be broadcast together"));
  CHECK_THROWS_AS(rnd::permutation(k, -1), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::permutation(k, -1), Contains("eqx::random::permutation") && Contains("-1"));
  CHECK_THROWS_AS(rnd::permutation(k, eqx::array(3)), eqx::ShapeError);
  CHECK_THROWS_WITH(rnd::permutation(k, eqx::array(3)), Contains("permutation(key, n)"));
  CHECK_THROWS_AS(rnd::permutation(k, eqx::Array()), eqx::ValueError);
  CHECK_THROWS_WITH(rnd::permutation(k, eqx::Array()),
                    Contains("eqx::random::permutation: x is an empty Array (None)"));
}

}  // namespace random_random_test

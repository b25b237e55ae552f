// conv (lax.conv_general_dilated), reduce_window, max_pool, avg_pool.
//
// Expected values of the small cases come from a direct loop-based NumPy
// reference of lax semantics (dilate lhs, pad/crop, slide the dilated kernel),
// on inputs pat(shape, m, off) = (arange(numel) % m) - off, so every value is
// a small integer and exact in float32. The larger cases compare against a
// naive loop written below.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_conv_test {

namespace {

using Ints = std::vector<std::int64_t>;

#define REQUIRE_THROWS_MSG(expr, Type, text)            \
  do {                                                  \
    REQUIRE_THROWS_AS(expr, Type);                      \
    REQUIRE_THROWS_WITH(expr, Catch::Contains(text));   \
  } while (0)

/// (arange(numel) % m) - off, reshaped to `shape`.
eqx::Array pat(const eqx::Shape& shape, int m, int off, eqx::DType dtype = eqx::float32) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(static_cast<int>(i % m) - off);
  return eqx::astype(eqx::array(v, shape), dtype);
}

void check_values(const eqx::Array& a, const eqx::Shape& shape, const std::vector<double>& expected,
                  double eps = 1e-5) {
  REQUIRE(a.shape().str() == shape.str());
  std::vector<double> got = a.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  // One assertion per array, reporting the first mismatch.
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isinf(expected[i]) ? got[i] == expected[i]
                                            : got[i] == Approx(expected[i]).epsilon(eps).margin(eps);
    if (!ok && bad++ == 0) first = i;
  }
  INFO(bad << " of " << got.size() << " elements differ; first at flat index " << first << ": got "
           << (bad ? got[first] : 0.0) << ", expected " << (bad ? expected[first] : 0.0));
  CHECK(bad == 0);
}

/// Deterministic, irregular values in [-1, 1].
std::vector<double> wobbly(std::int64_t n, double phase) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.731 * static_cast<double>(i) + phase) * std::cos(0.05 * i);
  return v;
}

/// Naive 2-D lax convolution (NCHW / OIHW) with every parameter.
std::vector<double> naive_conv2d(const std::vector<double>& x, const eqx::Shape& xs, const std::vector<double>& w,
                                 const eqx::Shape& ws, const Ints& strides, const Ints& pads, const Ints& ld,
                                 const Ints& rd, std::int64_t groups, eqx::Shape& out_shape) {
  const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const std::int64_t O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const std::int64_t Hp = (H - 1) * ld[0] + 1 + pads[0] + pads[1], Wp = (W - 1) * ld[1] + 1 + pads[2] + pads[3];
  const std::int64_t OH = (Hp - ((KH - 1) * rd[0] + 1)) / strides[0] + 1;
  const std::int64_t OW = (Wp - ((KW - 1) * rd[1] + 1)) / strides[1] + 1;
  out_shape = eqx::Shape{N, O, OH, OW};
  std::vector<double> out(static_cast<std::size_t>(N * O * OH * OW), 0.0);
  const std::int64_t Og = O / groups;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0;
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t kh = 0; kh < KH; ++kh) {
              const std::int64_t qh = oh * strides[0] - pads[0] + kh * rd[0];
              if (qh < 0 || qh % ld[0] != 0 || qh / ld[0] >= H) continue;
              for (std::int64_t kw = 0; kw < KW; ++kw) {
                const std::int64_t qw = ow * strides[1] - pads[2] + kw * rd[1];
                if (qw < 0 || qw % ld[1] != 0 || qw / ld[1] >= W) continue;
                const std::int64_t ci = (o / Og) * Cg + c;
                acc += x[((n * C + ci) * H + qh / ld[0]) * W + qw / ld[1]] * w[((o * Cg + c) * KH + kh) * KW + kw];
              }
            }
          out[((n * O + o) * OH + oh) * OW + ow] = acc;
        }
  return out;
}

/// conv vs naive_conv2d on wobbly inputs; pads are explicit (lo, hi) pairs.
void check_against_naive(const eqx::Shape& xs, const eqx::Shape& ws, const Ints& strides, const Ints& pads,
                         const Ints& ld, const Ints& rd, std::int64_t groups, eqx::DType dtype = eqx::float32) {
  std::vector<double> xv = wobbly(xs.numel(), 0.3), wv = wobbly(ws.numel(), 1.1);
  eqx::Shape expected_shape;
  std::vector<double> expected = naive_conv2d(xv, xs, wv, ws, strides, pads, ld, rd, groups, expected_shape);
  eqx::Array x = eqx::astype(eqx::array(xv, xs), dtype), w = eqx::astype(eqx::array(wv, ws), dtype);
  eqx::Array y = eqx::conv(x, w, strides, {{pads[0], pads[1]}, {pads[2], pads[3]}}, ld, rd, groups);
  REQUIRE(y.dtype() == dtype);
  check_values(y, expected_shape, expected, dtype == eqx::float32 ? 1e-4 : 1e-12);
}

}  // namespace

// ------------------------------------------------------------------ conv

TEST_CASE("conv 1-D: VALID, strides and explicit padding", "[conv]") {
  eqx::Array x = pat({1, 2, 7}, 7, 3), w = pat({3, 2, 3}, 5, 2);
  check_values(eqx::conv(x, w), {1, 3, 5}, {3, 1, -1, -3, -5, 1, 0, -1, -2, -3, 4, 4, 4, 4, 4});
  check_values(eqx::conv(x, w, {1}, "VALID"), {1, 3, 5}, {3, 1, -1, -3, -5, 1, 0, -1, -2, -3, 4, 4, 4, 4, 4});
  check_values(eqx::conv(x, w, {2}, {{1, 2}}), {1, 3, 4}, {1, 1, -3, 1, 6, 0, -2, -4, -4, 4, 4, -4});
  REQUIRE(eqx::conv(x, w).dtype() == eqx::float32);
}

TEST_CASE("conv 2-D with batch > 1", "[conv]") {
  eqx::Array x = pat({2, 2, 4, 4}, 7, 3), w = pat({3, 2, 3, 3}, 5, 2);
  check_values(eqx::conv(x, w, {1, 1}, "VALID"), {2, 3, 2, 2},
               {-2, 9, 14, -3, -8, 0, -11, 18, 1, 1, -6, -6, 14, -3, 9, -8, -11, 18, 0, 15, -6, -6, 1, 8});
}

TEST_CASE("conv 2-D SAME padding, as lax computes it", "[conv]") {
  eqx::Array x = pat({1, 1, 5, 6}, 7, 3), w = pat({2, 1, 3, 3}, 5, 2);
  // stride 2: H pads (1, 1), W pads (0, 1) (the odd cell goes high).
  std::vector<double> s2 = {-10, -1, 5, 13, -5, 0, -6, 11, -2, -7, 7, 1, 7, -9, 3, 0, 11, -4};
  check_values(eqx::conv(x, w, {2, 2}, "SAME"), {1, 2, 3, 3}, s2);
  check_values(eqx::conv(x, w, {2, 2}, "same"), {1, 2, 3, 3}, s2);
  check_values(eqx::conv(x, w, {2, 2}, std::string("SAME")), {1, 2, 3, 3}, s2);
  check_values(eqx::conv(x, w, {2, 2}, {{1, 1}, {0, 1}}), {1, 2, 3, 3}, s2);
  // SAME_LOWER puts the odd cell low: W pads (1, 0).
  check_values(eqx::conv(x, w, {2, 2}, "SAME_LOWER"), {1, 2, 3, 3},
               eqx::conv(x, w, {2, 2}, {{1, 1}, {1, 0}}).to_vector<double>());
  check_values(eqx::conv(x, w, {}, "SAME"), {1, 2, 5, 6},
               {-5,  -10, -2, -1, 0,  5,  18, 4,  -5, 0,  -2, -1, -3, 13, 4,  -5,  0,  0,  -3, -6,
                13,  4,   -5, 1,  -3, -6, -8, 11, 9,  -2, -10, -7, 7,  7,  7,  1,  3,   -15, -9, 4,
                3,   1,   4,  7,  -15, -9, 4, 3,  -2, 8,  7,  -15, -9, 5,  -2, 0,  9,   11, -8, -4});
}

TEST_CASE("conv negative padding crops like lax", "[conv]") {
  eqx::Array x = pat({1, 1, 6, 6}, 7, 3), w = pat({1, 1, 2, 2}, 5, 2);
  check_values(eqx::conv(x, w, {}, {{-1, 1}, {2, -2}}), {1, 1, 5, 5},
               {0, -1, 0, 5, 3, 0, -1, -5, 0, 5, 0, -1, -3, -5, 0, 0, -1, -1, -3, -5, 0, 1, 2, -1, -4});
}

TEST_CASE("conv lhs_dilation (transposed-conv style input dilation)", "[conv]") {
  eqx::Array x = pat({1, 1, 3, 3}, 7, 3), w = pat({1, 1, 2, 2}, 5, 2);
  check_values(eqx::conv(x, w, {}, {{1, 1}, {0, 0}}, {2, 1}), {1, 1, 6, 2},
               {-2, -1, 8, 5, 1, 2, -1, -4, -3, -2, -3, 8});
}

TEST_CASE("conv rhs_dilation (atrous kernel)", "[conv]") {
  eqx::Array x = pat({1, 2, 7, 7}, 11, 5), w = pat({1, 2, 2, 2}, 5, 2);
  check_values(eqx::conv(x, w, {}, "VALID", {}, {2, 3}), {1, 1, 5, 4},
               {4, 1, -2, 28, -17, -9, -12, -15, 28, 25, 11, -14, -15, 4, 1, -2, -14, -17, -9, -12});
}

TEST_CASE("conv 3-D with strides and padding", "[conv]") {
  eqx::Array x = pat({1, 1, 3, 4, 3}, 7, 3), w = pat({2, 1, 2, 2, 2}, 5, 2);
  check_values(eqx::conv(x, w, {1, 2, 1}, {{0, 0}, {0, 0}, {0, 1}}), {1, 2, 2, 2, 3},
               {9, 20, -4, -2, 9, 11, -13, -2, 12, -10, -13, -1, -7, -13, -5, -1, -7, -6, 26, -1, -7, 11, 26, -1});
}

TEST_CASE("conv feature_group_count: groups and depthwise", "[conv]") {
  SECTION("two groups") {
    eqx::Array x = pat({1, 4, 3, 3}, 7, 3), w = pat({4, 2, 2, 2}, 5, 2);
    check_values(eqx::conv(x, w, {}, "VALID", {}, {}, 2), {1, 4, 2, 2},
                 {5, 2, -4, 7, -10, 5, 0, 8, -11, 3, 10, 3, 0, -8, -10, -4});
  }
  SECTION("depthwise (feature_group_count == C_in)") {
    eqx::Array x = pat({1, 3, 4, 4}, 7, 3), w = pat({3, 1, 2, 2}, 5, 2);
    check_values(eqx::conv(x, w, {1, 2}, "VALID", {}, {}, 3), {1, 3, 3, 2},
                 {10, -1, -5, -2, 8, -3, -5, 0, 12, -4, 1, -1, 10, -4, -11, 10, 10, -11});
  }
  SECTION("groups with several output channels each, every parameter at once") {
    check_against_naive({2, 4, 5, 6}, {6, 2, 2, 3}, {2, 1}, {1, 0, -1, 2}, {1, 2}, {2, 1}, 2);
  }
}

TEST_CASE("conv float64 and dtype promotion", "[conv]") {
  std::vector<double> xv, wv;
  for (int i = 0; i < 10; ++i) xv.push_back(i / 8.0);
  for (int i = 0; i < 4; ++i) wv.push_back((i - 1.5) / 4.0);
  eqx::Array x = eqx::array(xv, {1, 2, 5}), w = eqx::array(wv, {1, 2, 2});
  eqx::Array y = eqx::conv(x, w, {}, {{1, 0}});
  REQUIRE(y.dtype() == eqx::float64);
  check_values(y, {1, 1, 5}, {0.234375, 0.34375, 0.34375, 0.34375, 0.34375}, 1e-12);
  // f64 lhs with f32 rhs promotes to f64, as dot_general does.
  eqx::Array y2 = eqx::conv(x, eqx::astype(w, eqx::float32), {}, {{1, 0}});
  REQUIRE(y2.dtype() == eqx::float64);
  check_values(y2, {1, 1, 5}, {0.234375, 0.34375, 0.34375, 0.34375, 0.34375}, 1e-12);
  // int32 lhs with f32 rhs promotes to f32.
  eqx::Array y3 = eqx::conv(pat({1, 2, 7}, 7, 3, eqx::int32), pat({3, 2, 3}, 5, 2));
  REQUIRE(y3.dtype() == eqx::float32);
  check_values(y3, {1, 3, 5}, {3, 1, -1, -3, -5, 1, 0, -1, -2, -3, 4, 4, 4, 4, 4});
  // A float64 case with every parameter.
  check_against_naive({2, 3, 6, 5}, {4, 3, 3, 2}, {1, 2}, {2, -1, 0, 1}, {2, 1}, {1, 2}, 1, eqx::float64);
}

TEST_CASE("conv 1x1 kernels (the no-im2col path) and strided 1x1", "[conv]") {
  check_against_naive({2, 6, 5, 7}, {4, 3, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, {1, 1}, 2);
  check_against_naive({2, 6, 5, 7}, {4, 6, 1, 1}, {2, 3}, {0, 0, 0, 0}, {1, 1}, {1, 1}, 1);
  check_against_naive({1, 3, 4, 4}, {2, 3, 1, 1}, {1, 1}, {1, 0, 0, 1}, {1, 1}, {1, 1}, 1);
}

TEST_CASE("conv with a kernel wider than its output (the weight-gradient shape) matches a naive loop", "[conv]") {
  // The kernel's last axis is longer than the output's, so the kernel builds
  // one row of columns per output position: contiguous taps, taps on
  // padding, and dilated taps that skip cells.
  check_against_naive({3, 4, 28, 28}, {5, 4, 25, 25}, {1, 1}, {0, 0, 0, 0}, {1, 1}, {1, 1}, 1);
  check_against_naive({2, 6, 12, 11}, {4, 3, 9, 8}, {1, 2}, {1, 2, 0, 3}, {1, 1}, {1, 1}, 2);
  check_against_naive({2, 2, 13, 14}, {3, 2, 5, 6}, {1, 1}, {0, 1, 1, 0}, {1, 1}, {2, 2}, 1);
}

TEST_CASE("conv large 2-D matches a naive loop", "[conv][threads]") {
  SECTION("batch of 3, SAME-sized padding") {
    check_against_naive({3, 8, 24, 24}, {16, 8, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1);
  }
  SECTION("grouped, strided, dilated") {
    check_against_naive({4, 8, 21, 19}, {12, 4, 3, 3}, {2, 1}, {2, 1, 0, 2}, {1, 1}, {2, 1}, 2);
  }
  SECTION("one large image: the column matrix is built in blocks") {
    // K = 16 * 9 = 144 rows by P = 128 * 256 columns exceeds one block.
    check_against_naive({1, 16, 128, 256}, {4, 16, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1);
  }
  SECTION("SAME via the string equals the explicit pairs") {
    std::vector<double> xv = wobbly(2 * 5 * 17 * 13, 0.1), wv = wobbly(6 * 5 * 4 * 3, 0.2);
    eqx::Array x = eqx::array(xv, {2, 5, 17, 13}), w = eqx::array(wv, {6, 5, 4, 3});
    // H: out 9, total (9-1)*2 + 4 - 17 = 3 -> (1, 2); W: out 7, total 12 + 3 - 13 = 2 -> (1, 1)
    check_values(eqx::conv(x, w, {2, 2}, "SAME"), {2, 6, 9, 7},
                 eqx::conv(x, w, {2, 2}, {{1, 2}, {1, 1}}).to_vector<double>(), 1e-12);
  }
}

TEST_CASE("conv errors name the op, the shapes and the fix", "[conv]") {
  eqx::Array x = pat({1, 2, 5, 5}, 7, 3), w = pat({4, 2, 3, 3}, 5, 2);
  SECTION("dtype") {
    REQUIRE_THROWS_MSG(eqx::conv(pat({1, 2, 5}, 3, 1, eqx::int32), pat({1, 2, 2}, 3, 1, eqx::int32)),
                       eqx::DTypeError, "eqx::conv: lhs i32[1,2,5], rhs i32[1,2,2]: convolution needs float32 or float64");
  }
  SECTION("ranks") {
    REQUIRE_THROWS_MSG(eqx::conv(x, pat({4, 2, 3}, 5, 2)), eqx::ShapeError, "same rank >= 3");
    REQUIRE_THROWS_MSG(eqx::conv(pat({2, 5}, 3, 1), pat({2, 5}, 3, 1)), eqx::ShapeError, "got ranks 2 and 2");
  }
  SECTION("channels and groups") {
    REQUIRE_THROWS_MSG(eqx::conv(x, pat({4, 3, 3, 3}, 5, 2)), eqx::ShapeError,
                       "lhs has 2 input channels (axis 1) but rhs expects 3 * feature_group_count 1 = 3");
    REQUIRE_THROWS_MSG(eqx::conv(pat({1, 4, 5, 5}, 7, 3), pat({3, 2, 3, 3}, 5, 2), {}, "VALID", {}, {}, 2),
                       eqx::ShapeError, "3 output channels (axis 0), which is not a multiple of feature_group_count 2");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "VALID", {}, {}, 0), eqx::ValueError, "feature_group_count must be >= 1");
  }
  SECTION("parameter lengths and values") {
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {2}), eqx::ValueError,
                       "window_strides (2,) has 1 entries but there are 2 spatial axes");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {1, 0}), eqx::ValueError, "window_strides (1, 0) must be >= 1");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "VALID", {1, 1, 1}), eqx::ValueError, "lhs_dilation (1, 1, 1) has 3 entries");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "VALID", {}, {0, 1}), eqx::ValueError, "rhs_dilation (0, 1) must be >= 1");
  }
  SECTION("padding") {
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, {{1, 1}}), eqx::ValueError,
                       "eqx::conv: padding has 1 (lo, hi) pairs but there are 2 spatial axes");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "FULL"), eqx::ValueError, "unknown padding \"FULL\"");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "SAME", {2, 2}), eqx::ValueError,
                       "padding \"SAME\" with lhs_dilation (2, 2) is ambiguous");
    // VALID with lhs_dilation is fine: no padding either way.
    REQUIRE(eqx::conv(x, w, {}, "VALID", {2, 2}).shape() == eqx::Shape{1, 4, 7, 7});
  }
  SECTION("output would be empty") {
    REQUIRE_THROWS_MSG(eqx::conv(x, pat({4, 2, 6, 3}, 5, 2)), eqx::ShapeError,
                       "spatial axis 0: the input of size 5 padded by (0, 0) has size 5, smaller than the kernel "
                       "window of size 6");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, "VALID", {}, {3, 1}), eqx::ShapeError,
                       "smaller than the kernel window of size 7 (3 after rhs_dilation)");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, {{0, 0}, {-2, -1}}), eqx::ShapeError,
                       "spatial axis 1: the input of size 5 padded by (-2, -1) has size 2");
    REQUIRE_THROWS_MSG(eqx::conv(x, w, {}, {{0, 0}, {-2, -1}}), eqx::ShapeError, "padding \"SAME\"");
  }
  SECTION("empty Array") {
    REQUIRE_THROWS_MSG(eqx::conv(eqx::Array(), w), eqx::ValueError, "eqx::conv: got an empty Array");
  }
  SECTION("the primitive checks everything itself") {
    auto params = [](Ints padding) {
      return eqx::Params{}
          .set("window_strides", Ints{1, 1})
          .set("padding", std::move(padding))
          .set("lhs_dilation", Ints{1, 1})
          .set("rhs_dilation", Ints{1, 1})
          .set("feature_group_count", std::int64_t{1});
    };
    REQUIRE(eqx::prim::conv_general_dilated.name() == "conv_general_dilated");
    REQUIRE(eqx::bind1(eqx::prim::conv_general_dilated, {x, w}, params({0, 0, 1, 1})).shape() ==
            eqx::Shape{1, 4, 3, 5});
    REQUIRE_THROWS_MSG(eqx::bind1(eqx::prim::conv_general_dilated, {x, eqx::astype(w, eqx::float64)}, params({0, 0, 0, 0})),
                       eqx::DTypeError, "eqx::conv_general_dilated: lhs f32[1,2,5,5], rhs f64[4,2,3,3]: operands have "
                                        "dtypes float32 and float64");
    REQUIRE_THROWS_MSG(eqx::bind1(eqx::prim::conv_general_dilated, {x, w}, params({0, 0})), eqx::ValueError,
                       "padding (0, 0) must hold 2 (lo, hi) pairs");
  }
}

// ------------------------------------------------------------------ reduce_window

TEST_CASE("reduce_window max with strides and padding", "[conv]") {
  eqx::Array x = pat({4, 5}, 9, 4);
  check_values(eqx::reduce_window(x, "max", {2, 2}, {1, 2}, {{1, 0}, {0, 1}}), {4, 3},
               {-3, -1, 0, 2, 4, 0, 2, 4, 1, 3, 4, 1});
  // Windows that see only padding give -inf.
  eqx::Array v = eqx::array({3.f, -1.f, 2.f});
  const double inf = std::numeric_limits<double>::infinity();
  check_values(eqx::reduce_window(v, "max", {2}, {1}, {{3, 0}}), {5}, {-inf, -inf, 3, 3, 2});
  // NaN propagates.
  eqx::Array n = eqx::array({1.f, std::nanf(""), 0.f, 5.f});
  std::vector<float> r = eqx::reduce_window(n, "max", {2}).to_vector<float>();
  REQUIRE(r.size() == 3);
  CHECK(std::isnan(r[0]));
  CHECK(std::isnan(r[1]));
  CHECK(r[2] == 5.f);
  // float64 stays float64.
  eqx::Array y64 = eqx::reduce_window(eqx::astype(x, eqx::float64), "max", {2, 2}, {1, 2}, {{1, 0}, {0, 1}});
  REQUIRE(y64.dtype() == eqx::float64);
  check_values(y64, {4, 3}, {-3, -1, 0, 2, 4, 0, 2, 4, 1, 3, 4, 1}, 1e-12);
}

TEST_CASE("reduce_window sum with dilation, strides, padding, SAME", "[conv]") {
  eqx::Array x = pat({5, 6}, 9, 4);
  check_values(eqx::reduce_window(x, "sum", {2, 2}, {}, "VALID", {2, 2}), {3, 4},
               {-6, -2, 2, 6, 0, -5, -1, -6, 6, 1, 5, 0});
  check_values(eqx::reduce_window(x, "sum", {2, 3}, {2, 2}, {{1, 1}, {0, 2}}, {1, 2}), {3, 2},
               {-6, -2, 6, 5, -3, -1});
  // SAME: out = ceil(5 / 2) = 3, total pad (3-1)*2 + 3 - 5 = 2 -> (1, 1).
  check_values(eqx::reduce_window(eqx::arange(0.0, 5.0, 1.0, eqx::float32), "sum", {3}, {2}, "SAME"), {3}, {1, 6, 7});
  // SAME uses the dilated window: span 5 over 5 cells, stride 1 -> total pad 4.
  check_values(eqx::reduce_window(eqx::arange(0.0, 5.0, 1.0, eqx::float32), "sum", {3}, {1}, "SAME", {2}), {5},
               eqx::reduce_window(eqx::arange(0.0, 5.0, 1.0, eqx::float32), "sum", {3}, {1}, {{2, 2}}, {2})
                   .to_vector<double>());
  // A rank-0 operand is its own (empty) window.
  check_values(eqx::reduce_window(eqx::array(2.5f), "sum", {}), {}, {2.5});
}

TEST_CASE("reduce_window integer dtypes", "[conv]") {
  eqx::Array xi = pat({3, 4}, 7, 5, eqx::int32);
  eqx::Array m = eqx::reduce_window(xi, "max", {2, 2}, {1, 1}, {{1, 1}, {0, 0}});
  REQUIRE(m.dtype() == eqx::int32);
  check_values(m, {4, 3}, {-4, -3, -2, 0, 1, 1, 0, 1, 1, -3, -2, -1});
  eqx::Array s = eqx::reduce_window(xi, "sum", {2, 2}, {1, 2}, {{1, 1}, {0, 0}});
  REQUIRE(s.dtype() == eqx::int32);
  check_values(s, {4, 2}, {-9, -5, -10, -9, -8, -7, -7, -3});
  // A window of only padding is the lowest int32.
  REQUIRE(eqx::reduce_window(eqx::array({1, 2}), "max", {1}, {1}, {{1, 0}}).to_vector<std::int32_t>() ==
          std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::lowest(), 1, 2});
  eqx::Array xu = eqx::array(std::vector<std::uint32_t>{0, 3, 6, 2, 5, 1}, {2, 3});
  eqx::Array mu = eqx::reduce_window(xu, "max", {2, 2}, {1, 1}, {{0, 0}, {1, 0}});
  REQUIRE(mu.dtype() == eqx::uint32);
  REQUIRE(mu.to_vector<std::uint32_t>() == std::vector<std::uint32_t>{2, 5, 6});
}

TEST_CASE("max_pool and avg_pool on [N, C, H, W]", "[conv]") {
  SECTION("max_pool 2x2 stride 2") {
    check_values(eqx::max_pool(pat({2, 2, 4, 4}, 11, 5), {2, 2}, {2, 2}), {2, 2, 2, 2},
                 {0, 2, 4, 5, 5, 3, 2, 4, 5, 1, 3, 5, 4, 5, 1, 3});
  }
  SECTION("max_pool with explicit padding") {
    check_values(eqx::max_pool(pat({1, 1, 3, 5}, 6, 2), {2, 3}, {2, 2}, {{1, 0}, {1, 1}}), {1, 1, 2, 3},
                 {-1, 1, 2, 3, 3, 1});
  }
  SECTION("max_pool default strides are ones") {
    REQUIRE(eqx::max_pool(pat({1, 1, 4, 4}, 11, 5), {2, 2}).shape() == eqx::Shape{1, 1, 3, 3});
  }
  SECTION("avg_pool SAME counts padded cells") {
    std::vector<double> sums = {-10, -12, -6, -2, -3, 0,  -2, -2, -1, 3, 1, 0, 0, 3, -2, -3,
                                10,  7,   2,  -4, 5,  1,  -1, -5, 7,  4, 2, -3, -2, 0, 6, 6};
    std::vector<double> expected;
    for (double s : sums) expected.push_back(s / 9.0);
    eqx::Array y = eqx::avg_pool(pat({1, 2, 4, 4}, 11, 5), {3, 3}, {1, 1}, "SAME");
    REQUIRE(y.dtype() == eqx::float32);
    check_values(y, {1, 2, 4, 4}, expected, 1e-6);
    eqx::Array y64 = eqx::avg_pool(pat({1, 2, 4, 4}, 11, 5, eqx::float64), {3, 3}, {1, 1}, "SAME");
    REQUIRE(y64.dtype() == eqx::float64);
    check_values(y64, {1, 2, 4, 4}, expected, 1e-12);
  }
  SECTION("avg_pool of int32 gives float32") {
    eqx::Array y = eqx::avg_pool(pat({1, 1, 3, 5}, 6, 2, eqx::int32), {2, 2}, {1, 2});
    REQUIRE(y.dtype() == eqx::float32);
    check_values(y, {1, 1, 2, 2}, {-0.5, 0, 1.5, -1});
  }
  SECTION("1-D and 3-D pooling") {
    check_values(eqx::max_pool(eqx::reshape(eqx::arange(0.0, 6.0, 1.0, eqx::float32), {1, 1, 6}), {3}, {3}), {1, 1, 2},
                 {2, 5});
    check_values(eqx::avg_pool(eqx::ones({1, 1, 2, 2, 2}), {2, 2, 2}, {1, 1, 1}, {{0, 0}, {0, 0}, {1, 0}}),
                 {1, 1, 1, 1, 2}, {0.5, 1});
  }
}

TEST_CASE("reduce_window and pooling errors", "[conv]") {
  eqx::Array x = pat({4, 5}, 9, 4);
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "min", {2, 2}), eqx::ValueError,
                     "eqx::reduce_window: unknown reduction \"min\"; use \"max\" or \"sum\"");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "max", {2}), eqx::ValueError,
                     "eqx::reduce_window: operand f32[4,5]: window_dimensions (2,) has 1 entries but the operand has "
                     "rank 2");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "max", {2, 0}), eqx::ValueError, "window_dimensions (2, 0) must be >= 1");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "max", {2, 2}, {1, 0}), eqx::ValueError, "window_strides (1, 0) must be >= 1");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "max", {2, 2}, {}, "VALID", {1}), eqx::ValueError,
                     "window_dilation (1,) has 1 entries");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "sum", {2, 2}, {}, {{0, 0}, {-1, 0}}), eqx::ValueError,
                     "has a negative entry; windowed reductions only pad");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "sum", {2, 2}, {}, {{0, 0}}), eqx::ValueError,
                     "padding has 1 (lo, hi) pairs but there are 2 axes; give one pair per axis");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "sum", {2, 6}), eqx::ShapeError,
                     "axis 1 has size 5 (5 with padding) but the window spans 6");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "sum", {2, 3}, {}, "VALID", {1, 3}), eqx::ShapeError,
                     "the window spans 7 (after dilation)");
  REQUIRE_THROWS_MSG(eqx::reduce_window(x, "sum", {2, 2}, {}, "FULL"), eqx::ValueError, "unknown padding \"FULL\"");
  REQUIRE_THROWS_MSG(eqx::reduce_window(eqx::array({true, false}), "max", {1}), eqx::DTypeError,
                     "eqx::reduce_window: operand bool[2] has dtype bool but this reduction supports float32, float64, "
                     "int32 or uint32");
  REQUIRE_THROWS_MSG(eqx::reduce_window(eqx::array(std::vector<std::uint32_t>{1, 2}), "sum", {1}), eqx::DTypeError,
                     "has dtype uint32 but this reduction supports float32, float64 or int32");
  REQUIRE_THROWS_MSG(eqx::reduce_window(eqx::Array(), "sum", {1}), eqx::ValueError, "empty Array");

  eqx::Array img = pat({1, 2, 4, 4}, 7, 3);
  REQUIRE_THROWS_MSG(eqx::max_pool(x, {2, 2}), eqx::ShapeError,
                     "eqx::max_pool: input f32[4,5] must be [N, C, spatial...] with 2 spatial axes");
  REQUIRE_THROWS_MSG(eqx::avg_pool(img, {2, 2}, {2}), eqx::ValueError,
                     "eqx::avg_pool: strides (2,) has 1 entries but window (2, 2) has 2");
  REQUIRE_THROWS_MSG(eqx::max_pool(img, {2, 2}, {}, {{1, 1}}), eqx::ValueError,
                     "eqx::max_pool: padding has 1 (lo, hi) pairs but there are 2 spatial axes");
  REQUIRE_THROWS_MSG(eqx::max_pool(img, {5, 2}), eqx::ShapeError, "eqx::max_pool: operand f32[1,2,4,4]: axis 2");
  REQUIRE_THROWS_MSG(eqx::max_pool(eqx::astype(img, eqx::bool_), {2, 2}), eqx::DTypeError, "eqx::max_pool");

  // The primitives check everything themselves.
  auto params = [](Ints padding) {
    return eqx::Params{}
        .set("window_dimensions", Ints{2, 2})
        .set("window_strides", Ints{1, 1})
        .set("padding", std::move(padding))
        .set("window_dilation", Ints{1, 1});
  };
  REQUIRE(eqx::prim::reduce_window_max.name() == "reduce_window_max");
  REQUIRE(eqx::prim::reduce_window_sum.name() == "reduce_window_sum");
  REQUIRE(eqx::bind1(eqx::prim::reduce_window_sum, {x}, params({0, 0, 0, 0})).shape() == eqx::Shape{3, 4});
  REQUIRE_THROWS_MSG(eqx::bind1(eqx::prim::reduce_window_sum, {x}, params({0, 0})), eqx::ValueError,
                     "eqx::reduce_window_sum: operand f32[4,5]: padding (0, 0) must hold 2 (lo, hi) pairs");
  REQUIRE_THROWS_MSG(eqx::bind1(eqx::prim::reduce_window_max, {eqx::astype(x, eqx::bool_)}, params({0, 0, 0, 0})),
                     eqx::DTypeError, "eqx::reduce_window_max");
}

}  // namespace ops_conv_test

// Unity batches: this file's macros end with it.
#undef REQUIRE_THROWS_MSG

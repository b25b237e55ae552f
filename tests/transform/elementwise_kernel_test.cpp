// elementwise_kernel: values (every Lanes function, the vector tail, scalar
// and broadcast operands, several outputs), the same values when jitted and
// fused with the operations around it, derivatives and vmap through the
// traced body, and the errors.

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/transform/elementwise_kernel.hpp>

#include "ad/check_grads.hpp"
#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_elementwise_kernel_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
using eqx_test::seq;

namespace {

const auto axpy = eqx::elementwise_kernel([](auto a, auto x, auto y) { return a * x + y; });

// Every function Lanes has, in one expression per output.
const auto every_function = eqx::elementwise_kernel([](auto x, auto y) {
  return std::array{sqrt(x) + rsqrt(x) - exp(-x) / log(x + 1.0), eqx::abs(y) * square(y) - 2 / x,
                    maximum(x, y) + minimum(x, y) * 0.5};
});

double every_0(double x) { return std::sqrt(x) + 1 / std::sqrt(x) - std::exp(-x) / std::log(x + 1.0); }
double every_1(double x, double y) { return std::abs(y) * y * y - 2 / x; }
double every_2(double x, double y) { return std::max(x, y) + std::min(x, y) * 0.5; }

}  // namespace

TEST_CASE("elementwise_kernel: values, with scalars, broadcasting and the vector tail", "[elementwise_kernel]") {
  // 37 elements: two full AVX-512 registers of float and a tail of 5.
  Array x = seq({37}), y = seq({37}, 100.0f);
  std::vector<float> want(37);
  for (std::size_t i = 0; i < 37; ++i) want[i] = 3.0f * static_cast<float>(i) + 100.0f + static_cast<float>(i);
  check(axpy(3.0, x, y), {37}, want);
  check(axpy(eqx::array(3.0f), x, y), {37}, want);
  // A row broadcast against a matrix; the number is float32 like the Arrays.
  check(axpy(2, seq({2, 3}), seq({3}, 10.0f)), {2, 3}, std::vector<float>{10, 13, 16, 16, 19, 22});
  // All scalars: a rank-0 result.
  check(axpy(2.0, eqx::array(4.0f), 1.0), {}, std::vector<float>{9});
  // Longer than one block of the eager kernel (1024), with a scalar operand.
  Array big = seq({3000});
  std::vector<float> big_want(3000);
  for (std::size_t i = 0; i < 3000; ++i) big_want[i] = -static_cast<float>(i) + 0.5f;
  check(axpy(-1.0, big, 0.5), {3000}, big_want);
}

TEST_CASE("elementwise_kernel: every Lanes function in float64 and float32, several outputs", "[elementwise_kernel]") {
  std::vector<double> xs, ys;
  for (int i = 0; i < 19; ++i) {
    xs.push_back(0.25 + 0.5 * i);
    ys.push_back(3.0 - 0.75 * i);
  }
  std::vector<double> w0, w1, w2;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    w0.push_back(every_0(xs[i]));
    w1.push_back(every_1(xs[i], ys[i]));
    w2.push_back(every_2(xs[i], ys[i]));
  }
  auto [a, b, c] = every_function(eqx::array(xs, {19}), eqx::array(ys, {19}));
  check(a, {19}, w0);
  check(b, {19}, w1);
  check(c, {19}, w2);
  std::vector<float> xf(xs.begin(), xs.end()), yf(ys.begin(), ys.end());
  std::vector<float> f0(w0.begin(), w0.end()), f1(w1.begin(), w1.end()), f2(w2.begin(), w2.end());
  auto [af, bf, cf] = every_function(eqx::array(xf, {19}), eqx::array(yf, {19}));
  check(af, {19}, f0);
  check(bf, {19}, f1);
  check(cf, {19}, f2);
  // maximum and minimum propagate NaN, as eqx::maximum does.
  auto [n0, n1, n2] = every_function(eqx::array(std::vector<float>{1.0f}, {1}), eqx::array(std::vector<float>{NAN}, {1}));
  check(n2, {1}, std::vector<float>{NAN});
}

TEST_CASE("elementwise_kernel: jitted, fused with the operations around it, same values", "[elementwise_kernel]") {
  auto step = [](const Array& p, const Array& g) {
    auto [u, m] = std::tuple{axpy(-0.1, g, p), g * 2.0f};
    return (u - 1.0f) * m;
  };
  Array p = seq({300}, 1.0f), g = seq({300}, -7.0f);
  Array eager = step(p, g);
  Array jitted = eqx::filter_jit(step)(p, g);
  REQUIRE(jitted.to_vector<float>() == eager.to_vector<float>());
  std::vector<float> want(300);
  for (std::size_t i = 0; i < 300; ++i) {
    const float pi = 1.0f + static_cast<float>(i), gi = -7.0f + static_cast<float>(i);
    want[i] = (-0.1f * gi + pi - 1.0f) * (gi * 2.0f);
  }
  check(jitted, {300}, want);
  // The kernel is one equation of the traced graph; its body is inside it.
  std::string names;
  for (const eqx::Equation& eq : eqx::filter_make_jaxpr(step)(p, g).graph.equations) names += std::string(eq.prim->name()) + " ";
  CHECK(names == "elementwise_kernel mul sub mul ");
}

TEST_CASE("elementwise_kernel: derivatives and vmap go through the traced body", "[elementwise_kernel]") {
  const auto soft = eqx::elementwise_kernel([](auto x, auto y) {
    return std::tuple{log(exp(x) + exp(y)) * x, sqrt(x * x + y * y)};
  });
  eqx_test::check_grads(
      [&](const std::vector<Array>& a) {
        auto [u, v] = soft(a[0], a[1]);
        return eqx::sum(u * v);
      },
      {eqx_test::random_f64(1, {2, 5}), eqx_test::random_f64(2, {2, 5})});
  // d/dx of a*x + y is a, for each element.
  Array gx = eqx::filter_grad([](const Array& x) { return eqx::sum(axpy(3.0, x, x * x)); })(eqx::array(std::vector<double>{1, 2, 3}, {3}));
  check(gx, {3}, std::vector<double>{5, 7, 9});
  // vmap: a mapped matrix, an unmapped row and an unmapped number; then the
  // same under jit.
  Array xs = seq({4, 3}), row = seq({3}, 10.0f);
  auto f = [](const Array& x, const Array& r) { return axpy(2.0, x, r); };
  Array batched = eqx::filter_vmap(f, eqx::in_axes(0, eqx::none))(xs, row);
  check(batched, {4, 3}, std::vector<float>{10, 13, 16, 16, 19, 22, 22, 25, 28, 28, 31, 34});
  Array mapped_axis1 = eqx::filter_jit(eqx::filter_vmap(f, eqx::in_axes(1, eqx::none), 1))(eqx::transpose(xs), row);
  check(mapped_axis1, {3, 4}, eqx::transpose(batched).to_vector<float>());
}

TEST_CASE("elementwise_kernel: errors name the argument, its type and the fix", "[elementwise_kernel]") {
  CHECK(message_of<eqx::DTypeError>([] { axpy(1.0, eqx::zeros({3}, eqx::float32), eqx::zeros({3}, eqx::float64)); }) ==
        "eqx::elementwise_kernel: argument 2 is f64[3] but argument 1 is f32[3]; every Array argument must have one "
        "dtype (convert with eqx::astype)");
  CHECK(message_of<eqx::DTypeError>([] { axpy(1.0, eqx::zeros({3}, eqx::int32), 2.0); }) ==
        "eqx::elementwise_kernel: argument 1 is i32[3]; kernels run on float32 or float64 (convert with eqx::astype)");
  CHECK(message_of<eqx::ValueError>([] { axpy(1.0, 2.0, 3.0); }) ==
        "eqx::elementwise_kernel: at least one argument must be an Array (the dtype comes from it)");
  CHECK(message_of<eqx::ShapeError>([] { axpy(1.0, eqx::zeros({3}), eqx::zeros({4})); }) ==
        "eqx::elementwise_kernel: shapes [3] and [4] cannot be broadcast together (axis 0 of the result: 3 vs 4); "
        "dimensions must be equal or 1, aligned from the right");
  const auto partial = eqx::elementwise_kernel([](auto a, auto x) { return std::tuple{a * x, a}; });
  CHECK(message_of<eqx::ShapeError>([&] { partial(2.0, eqx::zeros({3})); }) ==
        "eqx::elementwise_kernel: output 1 is f32[], but every output must have the operands' broadcast shape and "
        "dtype, f32[3] (an output that does not depend on every operand can be broadcast with eqx::broadcast_to)");
  CHECK(message_of<eqx::ValueError>([] { axpy(1.0, Array{}, eqx::zeros({3})); }) ==
        "eqx::elementwise_kernel: argument 1 is an empty Array (None)");
  // An Array the function reads from outside (here a tracer of the jitted
  // function around it), not from its arguments.
  static Array outside;
  const auto reads_outside = eqx::elementwise_kernel([](auto x) {
    if constexpr (std::is_same_v<decltype(x), Array>) return x + outside;
    else return x;
  });
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_jit([&](const Array& x) {
            outside = x * 2.0f;
            return reads_outside(x);
          })(eqx::zeros({3}));
        }) ==
        "eqx::elementwise_kernel: the function reads a traced value it did not get as an argument; pass every Array "
        "it uses as an argument");
  outside = Array{};
}

}  // namespace transform_elementwise_kernel_test

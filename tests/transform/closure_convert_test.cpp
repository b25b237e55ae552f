// filter_closure_convert: the captured Arrays are the leaves of the
// converted function; calls equal the function, eagerly and under jit and
// vmap; filter_grad differentiates the captured Arrays; calls unlike the
// example are refused naming the argument.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_closure_convert_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

TEST_CASE("filter_closure_convert: the captured Arrays are leaves; calls equal the function", "[closure_convert]") {
  const Array w = eqx::array({1.0f, -2.0f, 0.5f}), b = eqx::array({0.25f, 0.0f, -1.0f});
  auto f = [&](const Array& x) { return eqx::exp(w * x) + b; };
  const auto c = eqx::filter_closure_convert(f, eqx::zeros({3}));
  const std::vector<Array> leaves = eqx::tree_leaves(c);
  REQUIRE(leaves.size() == 2);
  CHECK(leaves[0].same_storage(w));  // in the order the trace used them
  CHECK(leaves[1].same_storage(b));
  const Array x = eqx::array({0.5f, 1.0f, -2.0f});
  check(c(x), {3}, f(x).to_vector<float>());
  // exp(w*x)+b by hand: exp(0.5)+0.25, exp(-2), exp(-1)-1.
  check(c(x), {3}, std::vector<float>{1.8987213f, 0.13533528f, -0.63212056f});

  // New leaves (tree_at) change the result: they are inputs, not baked in.
  const auto c2 = eqx::tree_at([](auto& m) -> auto& { return m.consts[1]; }, c, eqx::array({1.0f, 1.0f, 1.0f}));
  check(c2(x), {3}, std::vector<float>{2.6487213f, 1.13533528f, 1.36787944f});

  // A callable module: its fields are what it captures.
  const auto layer = eqx::nn::Linear::init(3, 2, eqx::random::key(0));
  const auto conv_layer = eqx::filter_closure_convert(layer, x);
  const std::vector<Array> layer_leaves = eqx::tree_leaves(conv_layer);
  REQUIRE(layer_leaves.size() == 2);
  CHECK(layer_leaves[0].same_storage(layer.weight));
  CHECK(layer_leaves[1].same_storage(layer.bias));
  check(conv_layer(x), {2}, layer(x).to_vector<float>());

  // Scalar literals are captured too, each use its own leaf, so a scalar
  // weight equal to a literal stays a leaf of its own.
  const Array s = eqx::array(2.0f);
  const auto c3 = eqx::filter_closure_convert(
      [&](const Array& v) {
        const Array weighted = s * v;  // first: C++ leaves the order of a + b's operands open
        return weighted + v * 2.0f;
      },
      x);
  const std::vector<Array> c3_leaves = eqx::tree_leaves(c3);
  REQUIRE(c3_leaves.size() == 2);
  CHECK(c3_leaves[0].same_storage(s));
  check(c3_leaves[1], {}, std::vector<float>{2.0f});
  auto sum_of = [](const auto& fn, const Array& v) { return eqx::sum(fn(v)); };
  const auto g3 = eqx::filter_grad(sum_of)(c3, x);
  check(g3.consts[0], {}, std::vector<float>{-0.5f});  // d/ds sum(s*x + 2x) = sum(x)
  check(g3.consts[1], {}, std::vector<float>{-0.5f});
}

TEST_CASE("filter_closure_convert: filter_grad with respect to the converted function, under jit and vmap",
          "[closure_convert]") {
  const Array w = eqx::array(std::vector<double>{0.3, -0.2, 0.5, 0.1, 0.4, -0.6}, {2, 3});
  const Array b = eqx::array(std::vector<double>{0.05, -0.1});
  auto f = [&](const Array& x) { return eqx::tanh(eqx::matmul(w, x) + b); };
  const Array x = eqx::array(std::vector<double>{1.0, -0.5, 2.0});
  const auto c = eqx::filter_closure_convert(f, x);
  auto loss = [](const auto& fn, const Array& v) {
    const Array y = fn(v);
    return eqx::sum(y * y);
  };

  // By hand: z = w x + b, dL/dz = 2 tanh(z) (1 - tanh(z)^2), dL/dw = dz x^T, dL/db = dz.
  const std::vector<double> wv = w.to_vector<double>(), bv = b.to_vector<double>(), xv = x.to_vector<double>();
  std::vector<double> dw(6), db(2);
  for (std::size_t i = 0; i < 2; ++i) {
    double z = bv[i];
    for (std::size_t j = 0; j < 3; ++j) z += wv[i * 3 + j] * xv[j];
    const double t = std::tanh(z), dz = 2 * t * (1 - t * t);
    db[i] = dz;
    for (std::size_t j = 0; j < 3; ++j) dw[i * 3 + j] = dz * xv[j];
  }
  const auto grads = eqx::filter_grad(loss)(c, x);
  REQUIRE(grads.consts.size() == 2);
  check(grads.consts[0], {2, 3}, dw);
  check(grads.consts[1], {2}, db);

  // The same under filter_jit, where the captured Arrays are inputs: new
  // values run the same compiled code.
  auto jitted_grad = eqx::filter_jit(eqx::filter_grad(loss));
  const auto jg = jitted_grad(c, x);
  check(jg.consts[0], {2, 3}, dw);
  check(jg.consts[1], {2}, db);
  auto jitted_call = eqx::filter_jit([](const auto& fn, const Array& v) { return fn(v); });
  check(jitted_call(c, x), {2}, f(x).to_vector<double>());
  const auto zero_w = eqx::tree_at([](auto& m) -> auto& { return m.consts[0]; }, c, eqx::zeros({2, 3}, eqx::float64));
  check(jitted_call(zero_w, x), {2}, std::vector<double>{std::tanh(0.05), std::tanh(-0.1)});
  CHECK(jitted_call.num_traces() == 1);

  // filter_vmap of a call: each row of a batch.
  const Array xs = eqx::array(std::vector<double>{1.0, -0.5, 2.0, 0.0, 1.0, -1.0}, {2, 3});
  const Array ys = eqx::filter_vmap([&](const Array& v) { return c(v); })(xs);
  std::vector<double> want = f(x).to_vector<double>();
  for (double v : f(eqx::array(std::vector<double>{0.0, 1.0, -1.0})).to_vector<double>()) want.push_back(v);
  check(ys, {2, 2}, want);
}

TEST_CASE("filter_closure_convert: calls unlike the example are refused, naming the argument", "[closure_convert]") {
  struct Input {
    Array x;
    Array mask;
    int steps;
  };
  const Array w = eqx::array({1.0f, 2.0f});
  auto f = [&](const Input& in, const std::vector<Array>& extra) {
    Array y = in.x * w * static_cast<float>(in.steps);
    for (const Array& e : extra) y = y + e;
    return y;
  };
  const Input example{eqx::zeros({2}), Array{}, 2};
  const auto c = eqx::filter_closure_convert(f, example, std::vector<Array>{eqx::ones({2})});
  check(c(Input{eqx::array({1.0f, 1.0f}), Array{}, 2}, {eqx::ones({2})}), {2}, std::vector<float>{3, 5});

  CHECK(message_of<eqx::ShapeError>([&] { c(Input{eqx::zeros({3}), Array{}, 2}, {eqx::ones({2})}); }) ==
        "eqx::ClosureConverted: argument [0].x is f32[3], the example is f32[2] (shape [3] instead of [2]); call it "
        "with arguments like the example it was converted with, or convert it again");
  CHECK(message_of<eqx::DTypeError>([&] { c(Input{eqx::zeros({2}), Array{}, 2}, {eqx::ones({2}, eqx::float64)}); }) ==
        "eqx::ClosureConverted: argument [1][0] is f64[2], the example is f32[2] (dtype float64 instead of float32); "
        "cast it with eqx::astype, or call it with arguments like the example it was converted with, or convert it "
        "again");
  CHECK(message_of<eqx::ValueError>([&] { c(Input{eqx::zeros({2}), Array{}, 3}, {eqx::ones({2})}); }) ==
        "eqx::ClosureConverted: argument [0].steps is the static value 3, the example has 2; call it with arguments "
        "like the example it was converted with, or convert it again");
  CHECK(message_of<eqx::ValueError>([&] { c(Input{eqx::zeros({2}), eqx::zeros({2}), 2}, {eqx::ones({2})}); }) ==
        "eqx::ClosureConverted: argument [0].mask is an Array, the example has None there; call it with arguments "
        "like the example it was converted with, or convert it again");
  CHECK(message_of<eqx::ValueError>([&] { c(Input{eqx::zeros({2}), Array{}, 2}, {}); }) ==
        "eqx::ClosureConverted: argument [1] is structured unlike the example (lists of different lengths (0 vs 1)); "
        "call it with arguments like the example it was converted with, or convert it again");
  auto fewer = c;
  fewer.consts.pop_back();
  CHECK(message_of<eqx::ValueError>([&] { fewer(example, {eqx::ones({2})}); }) ==
        "eqx::ClosureConverted: it holds 1 captured Arrays, its graph takes 2; replace leaves of a converted function "
        "(tree_at), do not add or remove them");
}

}  // namespace transform_closure_convert_test

// filter_vmap: in_axes/out_axes specs, modules, batch sizes, errors, and the
// compositions with grad and jit (per-example gradients).

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <eqx/eqx.hpp>

#include "ad/check_grads.hpp"
#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_vmap_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
using eqx_test::seq;

namespace {

struct Linear {
  Array weight, bias;  // [out, in], [out]
  Array operator()(const Array& x) const { return eqx::matmul(weight, x) + bias; }
};

}  // namespace

TEST_CASE("filter_vmap: a module over a batch is one matrix product", "[vmap]") {
  const Linear l{seq<float>({2, 3}), eqx::array({0.5f, -1.0f})};
  const Array xs = seq<float>({4, 3});  // 4 examples
  Array ys = eqx::filter_vmap(l)(xs);
  // y[b] = W x[b] + bias, by hand: W = [[0,1,2],[3,4,5]], x[b] = [3b, 3b+1, 3b+2].
  std::vector<float> want;
  for (int b = 0; b < 4; ++b) {
    const float x0 = 3.f * b, x1 = x0 + 1, x2 = x0 + 2;
    want.push_back(x1 + 2 * x2 + 0.5f);
    want.push_back(3 * x0 + 4 * x1 + 5 * x2 - 1.0f);
  }
  check(ys, {4, 2}, want);
  // The batched graph has one dot_general and no per-example loop or transpose.
  auto jaxpr = eqx::filter_make_jaxpr([&](const Array& x) { return eqx::filter_vmap(l)(x); })(xs);
  const std::string text = eqx::to_string(jaxpr.graph);
  INFO(text);
  CHECK(text.find("dot_general") != std::string::npos);
  CHECK(text.find("transpose") == std::string::npos);
}

TEST_CASE("filter_vmap: in_axes and out_axes specs, static leaves, axis_size", "[vmap]") {
  const Array a = seq<float>({2, 3});  // [[0,1,2],[3,4,5]]
  const Array v = eqx::array({10.0f, 20.0f, 30.0f});
  auto add = [](const Array& x, const Array& y) { return x + y; };
  // Axis 1 of a with v unmapped: a[:, j] + v (broadcast) -> [3 examples, 2]... v has 3 elements, each example is [2].
  check(eqx::filter_vmap(add, eqx::in_axes(1, 0))(a, v), {3, 2}, std::vector<float>{10, 13, 21, 24, 32, 35});
  check(eqx::filter_vmap(add, eqx::in_axes(-1, eqx::none))(a, eqx::array(1.0f)), {3, 2},
        std::vector<float>{1, 4, 2, 5, 3, 6});
  // out_axes 1: the batch axis of the result last.
  check(eqx::filter_vmap(add, eqx::in_axes(1, 0), 1)(a, v), {2, 3}, std::vector<float>{10, 21, 32, 13, 24, 35});
  // An output that does not depend on the example is broadcast (out_axes 0) or kept (eqx::none).
  auto pair = [](const Array& x) { return std::pair{x * 2.0f, eqx::array(7.0f)}; };
  auto [p0, p1] = eqx::filter_vmap(pair)(v);
  check(p0, {3}, std::vector<float>{20, 40, 60});
  check(p1, {3}, std::vector<float>{7, 7, 7});
  eqx::AxisSpec second_unmapped = [](const eqx::TreePath& p, const Array&) -> eqx::Axis {
    return p.str() == "[1]" ? eqx::Axis(eqx::none) : eqx::Axis(0);
  };
  auto [q0, q1] = eqx::filter_vmap(pair, 0, second_unmapped)(v);
  check(q1, {}, std::vector<float>{7});
  // Static leaves pass through unchanged; a per-leaf spec maps .weight but not .bias.
  struct Scaled {
    Array weight, bias;
    int power;
  };
  auto apply = [](const Scaled& s, const Array& x) { return eqx::pow(s.weight, static_cast<float>(s.power)) * x + s.bias; };
  eqx::AxisSpec only_weight = [](const eqx::TreePath& p, const Array&) -> eqx::Axis {
    return p.str() == ".weight" ? eqx::Axis(0) : eqx::Axis(eqx::none);
  };
  const Scaled s{eqx::array({1.0f, 2.0f, 3.0f}), eqx::array(0.5f), 2};
  check(eqx::filter_vmap(apply, eqx::in_axes(only_weight, eqx::none))(s, eqx::array(2.0f)), {3},
        std::vector<float>{2.5f, 8.5f, 18.5f});
  // No mapped input: axis_size gives the batch size.
  check(eqx::filter_vmap([](const Array& x) { return x + 1.0f; }, eqx::none, 0, 2)(v), {2, 3},
        std::vector<float>{11, 21, 31, 11, 21, 31});
}

TEST_CASE("filter_vmap: errors name the leaf, the sizes and the fix", "[vmap]") {
  auto add = [](const Array& x, const Array& y) { return x + y; };
  CHECK(message_of<eqx::ShapeError>([&] { eqx::filter_vmap(add)(eqx::zeros({3}, eqx::float32), eqx::zeros({4, 2}, eqx::float32)); }) ==
        "eqx::filter_vmap: mapped axes have different sizes: [0] has 3 along axis 0 but [1] f32[4,2] has 4 along axis "
        "0; every mapped axis must have the batch size (or map that leaf with eqx::none)");
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_vmap(add, eqx::in_axes(2, 0))(eqx::zeros({3, 2}, eqx::float32), eqx::zeros({3}, eqx::float32)); }) ==
        "eqx::filter_vmap: in_axes gives axis 2 for the Array at [0], f32[3,2], which has 2 axes to map over; give an "
        "axis in [-2, 2) or eqx::none");
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_vmap(add, eqx::in_axes(0))(eqx::zeros({3}, eqx::float32), eqx::zeros({3}, eqx::float32)); }) ==
        "eqx::filter_vmap: in_axes gives 1 specs but the function is called with 2 arguments; give eqx::in_axes(...) "
        "one spec per argument");
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_vmap(add, eqx::none)(eqx::zeros({3}, eqx::float32), eqx::zeros({3}, eqx::float32)); }) ==
        "eqx::filter_vmap: no Array is mapped (every in_axes entry is eqx::none), so the batch size is unknown; pass "
        "axis_size");
  CHECK(message_of<eqx::ShapeError>([&] { eqx::filter_vmap(add, 0, 0, 5)(eqx::zeros({3}, eqx::float32), eqx::zeros({3}, eqx::float32)); }) ==
        "eqx::filter_vmap: axis_size is 5 but [0] has 3 along axis 0; they must agree");
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_vmap([](const Array& x) { return x; }, 0, eqx::none)(eqx::zeros({3}, eqx::float32)); }) ==
        "eqx::filter_vmap: out_axes is eqx::none for the output at (root) but it differs between examples; map it (an "
        "out_axes index) or compute it outside the vmapped function");
}

namespace {

struct Mlp {
  Linear l1, l2;
  Array operator()(const Array& x) const { return l2(eqx::tanh(l1(x))); }
};

Array example_loss(const Mlp& m, const Array& x, const Array& y) {
  Array d = m(x) - y;
  return eqx::sum(d * d);
}

Mlp random_mlp() {
  return {{eqx_test::random_f64(1, {4, 3}), eqx_test::random_f64(2, {4})},
          {eqx_test::random_f64(3, {2, 4}), eqx_test::random_f64(4, {2})}};
}

}  // namespace

TEST_CASE("vmap(grad), grad(vmap) and jit(vmap(grad)): per-example gradients", "[vmap][ad]") {
  const Mlp m = random_mlp();
  const Array xs = eqx_test::random_f64(5, {5, 3}), ys = eqx_test::random_f64(6, {5, 2});
  Mlp per_example = eqx::filter_vmap(eqx::filter_grad(example_loss), eqx::in_axes(eqx::none, 0, 0))(m, xs, ys);
  REQUIRE(per_example.l1.weight.shape() == eqx::Shape{5, 4, 3});
  REQUIRE(per_example.l2.bias.shape() == eqx::Shape{5, 2});
  auto row = [](const Array& a, std::int64_t b) {
    eqx::Shape s(a.shape().begin() + 1, a.shape().end());
    return eqx::reshape(eqx::slice(a, 0, b, b + 1), s);
  };
  Mlp summed{};
  for (std::int64_t b = 0; b < 5; ++b) {
    Mlp g = eqx::filter_grad(example_loss)(m, row(xs, b), row(ys, b));
    for (auto [got, want] : {std::pair{row(per_example.l1.weight, b), g.l1.weight}, {row(per_example.l1.bias, b), g.l1.bias},
                             {row(per_example.l2.weight, b), g.l2.weight}, {row(per_example.l2.bias, b), g.l2.bias}}) {
      std::vector<double> x = got.to_vector<double>(), y = want.to_vector<double>();
      for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-12).margin(1e-14));
    }
    summed = b == 0 ? g : eqx::tree_map([](const Array& a, const Array& c) { return a + c; }, summed, g);
  }
  // grad of the batch loss through vmap = sum of per-example gradients.
  auto batch_loss = [](const Mlp& m, const Array& xs, const Array& ys) {
    return eqx::sum(eqx::filter_vmap(example_loss, eqx::in_axes(eqx::none, 0, 0))(m, xs, ys));
  };
  Mlp g = eqx::filter_grad(batch_loss)(m, xs, ys);
  for (auto [got, want] : {std::pair{g.l1.weight, summed.l1.weight}, {g.l2.bias, summed.l2.bias}}) {
    std::vector<double> x = got.to_vector<double>(), y = want.to_vector<double>();
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-12).margin(1e-14));
  }
  // jit of vmap of grad: one trace, the same values.
  auto per_example_jit = eqx::filter_jit([](const Mlp& m, const Array& xs, const Array& ys) {
    return eqx::filter_vmap(eqx::filter_grad(example_loss), eqx::in_axes(eqx::none, 0, 0))(m, xs, ys);
  });
  for (int call = 0; call < 2; ++call) {
    Mlp j = per_example_jit(m, xs, ys);
    std::vector<double> x = j.l1.weight.to_vector<double>(), y = per_example.l1.weight.to_vector<double>();
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-12).margin(1e-14));
  }
  CHECK(eqx::debug::get_num_traces(per_example_jit) == 1);
}

}  // namespace transform_vmap_test

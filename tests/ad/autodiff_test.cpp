// Autodiff: each primitive's JVP against central finite differences in
// float64, its VJP against its JVP (<vjp(u), v> == <u, jvp(v)>), and the
// filter_grad / filter_value_and_grad / filter_jvp API on pytrees.

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/ad/autodiff.hpp>
#include <eqx/transform/grad.hpp>

#include "ad/check_grads.hpp"
#include "ad/conv_window_rows.hpp"
#include "check.hpp"
#include "primitive_names.hpp"
#include "primitive_rows.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ad_autodiff_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
using eqx_test::Fn;
using eqx_test::Row;
using eqx_test::check_grads;
using eqx_test::random_f64;

namespace {


std::vector<Row> rows() {
  const Array a = random_f64(1, {3, 4}), r = random_f64(3, {4}), s = random_f64(4, {}), c = random_f64(6, {3, 1});
  std::vector<Row> t;
  // The elementwise primitives, from their one table (primitive_rows.hpp):
  // each op with a derivative, on operands from its GradDomain; binary ops
  // in four broadcasting patterns.
  std::uint32_t seed = 200;
  for (const eqx_test::UnaryOp& op : eqx_test::unary_ops()) {
    if (!op.grad) continue;
    t.push_back({"unary/" + std::string(op.name), [f = op.f](const std::vector<Array>& v) { return f(v[0]); },
                 {random_f64(seed++, {3, 4}, op.grad->lo, op.grad->hi)}});
  }
  const std::vector<std::pair<std::string, std::array<eqx::Shape, 2>>> broadcasts{
      {"same", {eqx::Shape{3, 4}, eqx::Shape{3, 4}}}, {"row", {eqx::Shape{3, 4}, eqx::Shape{4}}},
      {"scalar", {eqx::Shape{}, eqx::Shape{3, 4}}}, {"outer", {eqx::Shape{3, 1}, eqx::Shape{4}}}};
  for (const eqx_test::BinaryOp& op : eqx_test::binary_ops()) {
    if (!op.grad) continue;
    for (const auto& [pattern, shapes] : broadcasts) {
      const auto& [first, second] = *op.grad;
      t.push_back({"binary/" + std::string(op.name) + "/" + pattern,
                   [f = op.f](const std::vector<Array>& v) { return f(v[0], v[1]); },
                   {random_f64(seed, shapes[0], first.lo, first.hi), random_f64(seed + 1, shapes[1], second.lo, second.hi)}});
      seed += 2;
    }
  }
  t.push_back({"select", [](const std::vector<Array>& v) { return eqx::where(v[0] > 0.0, v[0] * 2.0, v[1]); }, {a, r}});
  // (float64 -> float64: finite differences through float32 would measure rounding; the
  // narrowing case is checked exactly in its own test below.)
  t.push_back({"convert", [](const std::vector<Array>& v) {
                 return eqx::bind1(eqx::prim::convert, {v[0] * v[0]}, eqx::Params{}.set("new_dtype", eqx::float64));
               }, {a}});
  t.push_back({"reshape", [](const std::vector<Array>& v) { return eqx::reshape(v[0], {2, 6}) * eqx::reshape(v[0], {2, 6}); }, {a}});
  t.push_back({"transpose", [](const std::vector<Array>& v) { return eqx::transpose(v[0]) * eqx::transpose(v[0]); }, {random_f64(8, {2, 3, 4})}});
  t.push_back({"broadcast_in_dim", [](const std::vector<Array>& v) { return eqx::broadcast_to(v[0], {2, 3, 4}) * eqx::broadcast_to(v[1], {2, 3, 4}); }, {c, r}});
  t.push_back({"reduce_sum", [](const std::vector<Array>& v) { return eqx::sum(v[0] * v[0], 1) + eqx::sum(v[0]); }, {a}});
  t.push_back({"dot_general/matmul", [](const std::vector<Array>& v) { return eqx::matmul(v[0], v[1]); }, {a, random_f64(9, {4, 2})}});
  t.push_back({"dot_general/matvec", [](const std::vector<Array>& v) { return eqx::matmul(v[0], v[1]); }, {a, r}});
  t.push_back({"dot_general/batched", [](const std::vector<Array>& v) { return eqx::matmul(v[0], v[1]); }, {random_f64(10, {2, 3, 4}), random_f64(11, {2, 4, 5})}});
  t.push_back({"dot_general/contract-first-axes",
               [](const std::vector<Array>& v) {
                 return eqx::dot_general(v[0], v[1], {{0}, {1}}, {{}, {}});
               },
               {random_f64(12, {4, 3}), random_f64(13, {2, 4})}});
  using V = const std::vector<Array>&;
  const Array nz = random_f64(30, {3, 4}, 0.5, 1.5);  // no zeros, no ties
  // reduce_prod is a polynomial, so finite differences are exact at zeros too.
  const Array one_zero = eqx::array(std::vector<double>{0.5, 0.0, -1.5, 2.0, 1.2, -0.7}, {2, 3});
  const Array two_zeros = eqx::array(std::vector<double>{0.0, 0.0, -1.5, 2.0, 1.2, 0.0}, {2, 3});
  t.push_back({"reduce_prod/axis", [](V v) { return eqx::prod(v[0], {1}); }, {nz}});
  t.push_back({"reduce_prod/all", [](V v) { return eqx::prod(v[0]); }, {nz}});
  t.push_back({"reduce_prod/one-zero", [](V v) { return eqx::sum(eqx::prod(v[0], {1})) + eqx::sum(eqx::prod(v[0], {0})); }, {one_zero}});
  t.push_back({"reduce_prod/two-zeros", [](V v) { return eqx::sum(eqx::prod(v[0], {1})) + eqx::sum(eqx::prod(v[0], {0})); }, {two_zeros}});
  t.push_back({"reduce_max", [](V v) { return eqx::max(v[0], {1}) * eqx::max(v[0]); }, {a}});
  t.push_back({"reduce_min", [](V v) { return eqx::min(v[0], {0}) * eqx::min(v[0]); }, {random_f64(31, {2, 3, 4})}});
  t.push_back({"slice/steps", [](V v) { return eqx::slice(v[0], {eqx::Slice{1, 3}, eqx::Slice{0, 5, 2}}); }, {random_f64(32, {3, 5})}});
  t.push_back({"slice/rank-0-result", [](V v) { return eqx::reshape(eqx::slice(v[0], {eqx::Slice{2, 3}, eqx::Slice{4, 5}}), {}); },
               {random_f64(33, {3, 5})}});
  t.push_back({"rev", [](V v) { return eqx::flip(v[0], {0, 2}) * v[0]; }, {random_f64(34, {2, 3, 2})}});
  t.push_back({"pad/value", [](V v) { return eqx::pad(v[0], {{1, 2}, {0, 1}}, v[1]) * 1.5; }, {a, s}});
  t.push_back({"pad/interior-and-crop",
               [](V v) {
                 return eqx::bind1(eqx::prim::pad, {v[0], v[1]},
                                   eqx::Params{}.set("low", eqx::detail::Ints{-1, 2}).set("high", eqx::detail::Ints{1, -1})
                                       .set("interior", eqx::detail::Ints{1, 2}));
               },
               {a, s}});
  t.push_back({"concatenate", [](V v) { return eqx::concatenate({v[0], v[1] * v[1], v[0]}, 1); }, {a, random_f64(35, {3, 2})}});
  const Array idx = eqx::array({2, 0, 2, -1, 1});
  t.push_back({"gather/repeats-and-negative", [idx](V v) { return eqx::take(v[0], idx, 1) * eqx::take(v[0], idx, 1); }, {a}});
  t.push_back({"scatter_add/repeats",
               [idx](V v) { return eqx::bind1(eqx::prim::scatter_add, {v[0], idx, v[1]}, eqx::Params{}.set("axis", std::int64_t{1})); },
               {a, random_f64(36, {3, 5})}});
  t.push_back({"optimization_barrier",
               [](V v) { return eqx::bind(eqx::prim::optimization_barrier, std::vector<Array>{v[0] * v[0]})[0] * v[0]; }, {a}});
  t.push_back({"checkpoint",
               [](V v) { return eqx::filter_checkpoint([](const Array& x) { return eqx::sin(x) * x; })(v[0]) * v[0]; },
               {a}});
  const Array keys = eqx::array(std::vector<int>{3, 1, 3, 0, 2, 1, 0, 2}, {2, 4});  // ties: the sort is stable
  t.push_back({"sort_key_val",
               [keys](V v) {
                 Array sorted = eqx::bind(eqx::prim::sort_key_val, std::vector<Array>{keys, v[0]},
                                          eqx::Params{}.set("dimension", std::int64_t{1}))[1];
                 return sorted * eqx::arange(0.0, 4.0, 1.0, eqx::float64);
               },
               {random_f64(40, {2, 4})}});
  // Primitives with integer or bool outputs (and sign, flat almost everywhere)
  // carry no tangent; these rows check that gradients pass around them.
  t.push_back({"no-tangent/sign-iota", [](V v) { return v[0] * eqx::sign(v[0]) * eqx::arange(0.0, 4.0, 1.0, eqx::float64); }, {a}});
  t.push_back({"no-tangent/comparisons-and-logic",
               [](V v) {
                 const Array& x = v[0];
                 Array m = ((x > 0.0) & !(x < -0.5)) | ((x >= 0.3) ^ (x <= 0.1)) | (x == 0.25) | (x != x);
                 Array all_big = eqx::all(x > -2.0) & eqx::any(x < 2.0);
                 return eqx::where(m & all_big, x * x, x * 3.0);
               },
               {a}});
  t.push_back({"no-tangent/argmax-argmin",
               [](V v) { return v[0] * eqx::astype(eqx::argmax(v[0], 1, true) - eqx::argmin(v[0], 1, true), eqx::float64); }, {a}});
  t.push_back({"no-tangent/random-bits",
               [](V v) {
                 auto k = eqx::random::split_keys(eqx::random::key(3), 3);
                 Array noise = eqx::random::uniform(k[0], v[0].shape(), eqx::float64) +
                               eqx::random::normal(k[1], v[0].shape(), eqx::float64);
                 Array shuffled = eqx::random::permutation(k[2], eqx::ravel(v[0]));
                 return v[0] * noise + eqx::reshape(shuffled, v[0].shape());
               },
               {a}});
  t.push_back({"no-tangent/integer-logic",
               [](V v) {
                 Array i = eqx::astype(v[0] * 10.0, eqx::int32);
                 Array bits = (i & 6) | (i ^ 3);
                 Array shifted = eqx::bind1(eqx::prim::shift_left, {eqx::astype(bits, eqx::uint32), eqx::array(2u)});
                 return v[0] * eqx::astype(~shifted, eqx::float64);
               },
               {a}});
  for (Row& row : eqx_test::conv_window_rows()) t.push_back(std::move(row));
  return t;
}

}  // namespace

TEST_CASE("JVP matches finite differences and VJP is its transpose, per primitive", "[ad]") {
  for (const Row& row : rows()) {
    DYNAMIC_SECTION(row.name) { check_grads(row.f, row.xs); }
  }
}

TEST_CASE("the autodiff table covers every primitive", "[ad]") {
  std::set<std::string> bound;  // primitive names in the traced graphs of all rows
  for (const Row& row : rows())
    for (const eqx::Equation& eq : eqx::filter_make_jaxpr(row.f)(row.xs).graph.equations)
      bound.insert(std::string(eq.prim->name()));
  const auto prims = eqx_test::primitives_to_cover(
      {{"stop_gradient", "this file's stop_gradient case (it differs from finite differences by design)"}});
  CHECK(prims.size() > 60);
  for (const std::string& p : prims) {
    INFO("no row of the autodiff table binds primitive " << p);
    CHECK(bound.count(p) == 1);
  }
}

namespace {
struct Linear {
  Array weight, bias;
};
struct Mlp {
  std::vector<Linear> layers;
  int width;  // a static leaf: copied into the gradient tree
};
Array forward(const Mlp& m, const Array& x) {
  Array h = x;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    h = eqx::matmul(h, m.layers[i].weight) + m.layers[i].bias;
    if (i + 1 < m.layers.size()) h = eqx::tanh(h);
  }
  return h;
}
Array mse(const Mlp& m, const Array& x, const Array& y) { return eqx::mean(eqx::square(forward(m, x) - y)); }
Mlp make_mlp() {
  return Mlp{{Linear{random_f64(20, {3, 5}), random_f64(21, {5})}, Linear{random_f64(22, {5, 2}), random_f64(23, {2})}}, 5};
}
}  // namespace

TEST_CASE("filter_grad of an MLP loss matches finite differences of every parameter", "[ad]") {
  const Mlp m = make_mlp();
  const Array x = random_f64(24, {4, 3}), y = random_f64(25, {4, 2});
  Mlp g = eqx::filter_grad(mse)(m, x, y);
  CHECK(g.width == 5);
  const double eps = 1e-6;
  for (std::size_t l = 0; l < 2; ++l)
    for (int which = 0; which < 2; ++which) {
      const Array& p = which ? m.layers[l].bias : m.layers[l].weight;
      std::vector<double> pv = p.to_vector<double>(), gv = (which ? g.layers[l].bias : g.layers[l].weight).to_vector<double>();
      for (std::size_t k = 0; k < pv.size(); ++k) {
        auto at = [&](double delta) {
          std::vector<double> q = pv;
          q[k] += delta;
          Mlp mq = m;
          (which ? mq.layers[l].bias : mq.layers[l].weight) = eqx::array(q, p.shape());
          return mse(mq, x, y).item<double>();
        };
        INFO("layer " << l << (which ? " bias " : " weight ") << k);
        CHECK(gv[k] == Approx((at(eps) - at(-eps)) / (2 * eps)).epsilon(1e-6).margin(1e-9));
      }
    }
}

TEST_CASE("value_and_grad inside filter_jit equals eager, and has_aux passes aux through", "[ad]") {
  const Mlp m = make_mlp();
  const Array x = random_f64(24, {4, 3}), y = random_f64(25, {4, 2});
  auto [loss, g] = eqx::filter_value_and_grad(mse)(m, x, y);
  auto step = eqx::filter_jit([](const Mlp& m, const Array& x, const Array& y) { return eqx::filter_value_and_grad(mse)(m, x, y); });
  for (int call = 0; call < 2; ++call) {
    auto [jl, jg] = step(m, x, y);
    CHECK(jl.item<double>() == Approx(loss.item<double>()).epsilon(1e-12));
    check(jg.layers[0].weight, {3, 5}, g.layers[0].weight.to_vector<double>());
    check(jg.layers[1].bias, {2}, g.layers[1].bias.to_vector<double>());
  }
  CHECK(step.num_traces() == 1);
  auto with_aux = [](const Mlp& m, const Array& x, const Array& y) {
    Array pred = forward(m, x);
    return std::pair{eqx::mean(eqx::square(pred - y)), pred};
  };
  auto [value_aux, g2] = eqx::filter_value_and_grad(with_aux, eqx::has_aux)(m, x, y);
  CHECK(value_aux.first.item<double>() == Approx(loss.item<double>()).epsilon(1e-12));
  check(value_aux.second, {4, 2}, forward(m, x).to_vector<double>());
  check(g2.layers[0].bias, {5}, g.layers[0].bias.to_vector<double>());
}

TEST_CASE("second derivatives: grad of grad of x^3 is 6x", "[ad]") {
  auto g1 = eqx::filter_grad([](const Array& x) { return eqx::sum(x * x * x); });
  auto g2 = eqx::filter_grad([&](const Array& x) { return eqx::sum(g1(x)); });
  check(g2(eqx::array({0.5, 1.0, -2.0})), {3}, std::vector<double>{3, 6, -12});
}

TEST_CASE("filter_jvp of a pytree function; None tangents are zero", "[ad]") {
  auto f = [](const Linear& l, const Array& x) { return eqx::sum(eqx::tanh(l.weight * x + l.bias)); };
  const Linear l{eqx::array({0.5, -1.0}), eqx::array({0.1, 0.2})};
  const Array x = eqx::array({2.0, 3.0});
  auto [y, ty] = eqx::filter_jvp(f, std::tuple{l, x}, std::tuple{Linear{eqx::ones({2}, eqx::float64), Array{}}, Array{}});
  // d/dw sum tanh(w x + b) . 1 = sum x (1 - tanh^2)
  double want = 0;
  for (int i = 0; i < 2; ++i) {
    double w = i ? -1.0 : 0.5, b = i ? 0.2 : 0.1, xv = i ? 3.0 : 2.0, t = std::tanh(w * xv + b);
    want += xv * (1 - t * t);
  }
  CHECK(ty.item<double>() == Approx(want).epsilon(1e-12));
  CHECK(message_of<eqx::ShapeError>([&] { eqx::filter_jvp(f, std::tuple{l, x}, std::tuple{l, eqx::ones({3}, eqx::float64)}); }) ==
        "eqx::filter_jvp: the tangent at [1] is f64[3] but its primal is f64[2]; a tangent must have its primal's shape "
        "and dtype");
}

namespace {
/// A user-defined primitive with no differentiation rules.
struct TwiceWithoutRules final : eqx::Primitive {
  std::string_view name() const override { return "twice"; }
  std::vector<eqx::AbstractArray> shape_rule(std::span<const eqx::AbstractArray> in, const eqx::Params&) const override {
    return {in[0]};
  }
  void kernel(std::span<const eqx::detail::View> in, std::span<const eqx::detail::View> out, const eqx::Params&) const override {
    for (std::int64_t i = 0; i < in[0].numel(); ++i) out[0].as<float>()[i] = 2 * in[0].as<const float>()[i];
  }
};
const TwiceWithoutRules twice;
}  // namespace

TEST_CASE("gradient errors: non-scalar output, and a primitive without a rule", "[ad]") {
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_grad([](const Array& x) { return x * 2.0f; })(eqx::ones({3})); }) ==
        "eqx::filter_grad: the function must return a scalar float Array (rank 0), got f32[3]; reduce it first "
        "(eqx::sum, eqx::mean)");
  auto f = [](const Array& x) { return eqx::sum(eqx::bind1(twice, {x})); };
  check(f(eqx::ones({3})), {}, std::vector<float>{6});
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_grad(f)(eqx::ones({3})); }) ==
        "eqx: primitive 'twice' has no VJP rule, so it cannot be differentiated in reverse mode; give it one by "
        "overriding Primitive::vjp");
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_jvp(f, std::tuple{eqx::ones({3})}, std::tuple{eqx::ones({3})}); }) ==
        "eqx: primitive 'twice' has no JVP rule, so it cannot be differentiated in forward mode; give it one by "
        "overriding Primitive::jvp");
}

TEST_CASE("gradients flow through float conversions and stop at integer ones", "[ad]") {
  auto f = [](const Array& x) {
    return eqx::sum(eqx::astype(eqx::astype(x, eqx::float32) * 2.0f, eqx::float64) + eqx::astype(eqx::astype(x, eqx::int32), eqx::float64));
  };
  check(eqx::filter_grad(f)(eqx::array({1.5, -2.0})), {2}, std::vector<double>{2, 2});
}

TEST_CASE("integer-valued primitives need no rule: their outputs have no tangent", "[ad]") {
  auto f = [](const Array& x) { return eqx::sum(x * eqx::astype(eqx::argmax(x), eqx::float64)); };
  const Array x = eqx::array({0.5, 2.0, 1.0});
  auto [y, ty] = eqx::filter_jvp(f, std::tuple{x}, std::tuple{eqx::ones({3}, eqx::float64)});
  CHECK(ty.item<double>() == 3.0);  // argmax = 1, held constant
  check(eqx::filter_grad(f)(x), {3}, std::vector<double>{1, 1, 1});
}

TEST_CASE("integer leaves get no gradient; unused float leaves get zeros", "[ad]") {
  struct P {
    Array w, unused, count;
  };
  P p{eqx::array({1.0f, 2.0f}), eqx::ones({3}), eqx::array({1, 2})};
  P g = eqx::filter_grad([](const P& p) { return eqx::sum(p.w * p.w); })(p);
  check(g.w, {2}, std::vector<float>{2, 4});
  check(g.unused, {3}, std::vector<float>{0, 0, 0});
  CHECK_FALSE(g.count.has_value());
}

TEST_CASE("stop_gradient: the value passes, the derivative is zero; on pytrees only float leaves", "[ad]") {
  auto f = [](const Array& x) { return eqx::sum(x * eqx::stop_gradient(x * x)); };  // d/dx = x^2, not 3x^2
  const Array x = eqx::array({1.0, -2.0, 3.0});
  CHECK(f(x).item<double>() == 1.0 - 8.0 + 27.0);
  check(eqx::filter_grad(f)(x), {3}, std::vector<double>{1, 4, 9});
  auto [y, ty] = eqx::filter_jvp(f, std::tuple{x}, std::tuple{eqx::ones({3}, eqx::float64)});
  CHECK(ty.item<double>() == 14.0);
  // grad of sum(sg(x) x^2) is 2 sg(x) x; the outer grad still sees sg(x) as a constant: 2 x.
  auto inner = eqx::filter_grad([](const Array& x) { return eqx::sum(eqx::stop_gradient(x) * x * x); });
  check(eqx::filter_grad([&](const Array& x) { return eqx::sum(inner(x)); })(x), {3}, std::vector<double>{2, -4, 6});
  struct P {
    Array w, n;
  };
  P p = eqx::stop_gradient(P{eqx::array({1.5f}), eqx::array({3})});
  check(p.w, {1}, std::vector<float>{1.5f});
  check(p.n, {1}, std::vector<int>{3});
  // Compiled graphs drop it.
  auto jitted = eqx::filter_jit([](const Array& x) { return eqx::stop_gradient(x) * 2.0; });
  check(jitted(x), {3}, std::vector<double>{2, -4, 6});
  for (const eqx::Equation& eq : jitted.plan(x).graph().equations) CHECK(eq.prim->name() != "stop_gradient");
}

}  // namespace ad_autodiff_test

// Autodiff: each primitive's JVP against central finite differences in
// float64, its VJP against its JVP (<vjp(u), v> == <u, jvp(v)>), and the
// filter_grad / filter_value_and_grad / filter_jvp API on pytrees.

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/ad/autodiff.hpp>
#include <eqx/transform/grad.hpp>

#include "check.hpp"

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

using Fn = std::function<Array(const std::vector<Array>&)>;

Array random_f64(std::uint32_t seed, const eqx::Shape& shape, double lo = -1.0, double hi = 1.0) {
  return eqx::random::uniform(eqx::random::key(seed), shape, eqx::float64, lo, hi);
}

double vdot(const Array& a, const Array& b) { return eqx::sum(a * b).item<double>(); }

/// Checks f's derivatives at xs: JVP along a random direction against
/// central differences, and VJP against JVP.
void check_grads(const Fn& f, const std::vector<Array>& xs, double tol = 1e-6) {
  std::vector<Array> dirs;
  for (std::size_t i = 0; i < xs.size(); ++i) dirs.push_back(random_f64(100 + static_cast<std::uint32_t>(i), xs[i].shape()));
  eqx::Graph g = eqx::filter_make_jaxpr(f)(xs).graph;
  auto [outs, touts] = eqx::jvp_graph(g, xs, dirs);
  REQUIRE(touts.size() == 1);
  const Array& y = outs[0];
  Array ty = touts[0].has_value() ? touts[0] : eqx::zeros(y.shape(), y.dtype());
  // Central differences along dirs.
  const double eps = 1e-6;
  std::vector<Array> plus, minus;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    plus.push_back(xs[i] + dirs[i] * eps);
    minus.push_back(xs[i] - dirs[i] * eps);
  }
  Array fd = (f(plus) - f(minus)) / (2 * eps);
  std::vector<double> got = ty.to_vector<double>(), want = fd.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("JVP element " << k);
    CHECK(got[k] == Approx(want[k]).epsilon(tol).margin(tol));
  }
  // VJP is the transpose of JVP.
  Array u = random_f64(7, y.shape());
  std::vector<Array> ct{u};
  auto [outs2, in_ct] = eqx::vjp_graph(g, xs, ct);
  double lhs = 0;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (in_ct[i].has_value()) {
      REQUIRE(in_ct[i].shape() == xs[i].shape());
      lhs += vdot(in_ct[i], dirs[i]);
    }
  CHECK(lhs == Approx(vdot(u, ty)).epsilon(1e-9).margin(1e-12));
}

struct Row {
  std::string name;
  Fn f;
  std::vector<Array> xs;
};

std::vector<Row> rows() {
  const Array a = random_f64(1, {3, 4}), b = random_f64(2, {3, 4}), r = random_f64(3, {4}), s = random_f64(4, {});
  const Array pos = random_f64(5, {3, 4}, 0.5, 2.0), c = random_f64(6, {3, 1});
  std::vector<Row> t;
  auto unary = [&](std::string n, Array (*op)(const Array&), const Array& x) {
    t.push_back({"unary/" + n, [op](const std::vector<Array>& v) { return op(v[0]); }, {x}});
  };
  unary("neg", [](const Array& x) { return -x; }, a);
  unary("exp", eqx::exp, a);
  unary("log", eqx::log, pos);
  unary("log1p", eqx::log1p, pos);
  unary("expm1", eqx::expm1, a);
  unary("sqrt", eqx::sqrt, pos);
  unary("rsqrt", eqx::rsqrt, pos);
  unary("abs", eqx::abs, a);
  unary("sin", eqx::sin, a);
  unary("cos", eqx::cos, a);
  unary("tanh", eqx::tanh, a);
  unary("logistic", eqx::sigmoid, a);
  unary("erf", eqx::erf, a);
  auto binary = [&](std::string n, Array (*op)(const eqx::detail::Operand&, const eqx::detail::Operand&)) {
    const std::vector<std::pair<std::string, std::vector<Array>>> operands{
        {"same", {pos, b}}, {"row", {pos, r}}, {"scalar", {s, pos}}, {"outer", {c, r}}};
    for (const auto& [shape_case, xs] : operands)
      t.push_back({"binary/" + n + "/" + shape_case, [op](const std::vector<Array>& v) { return op(v[0], v[1]); }, xs});
  };
  binary("add", eqx::add);
  binary("sub", eqx::subtract);
  binary("mul", eqx::multiply);
  binary("div", eqx::divide);
  binary("max", eqx::maximum);
  binary("min", eqx::minimum);
  t.push_back({"binary/pow", [](const std::vector<Array>& v) { return eqx::pow(v[0], v[1]); }, {pos, b}});
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
  return t;
}

}  // namespace

TEST_CASE("JVP matches finite differences and VJP is its transpose, per primitive", "[ad]") {
  for (const Row& row : rows()) {
    DYNAMIC_SECTION(row.name) { check_grads(row.f, row.xs); }
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

TEST_CASE("gradient errors: non-scalar output, and a primitive without a rule", "[ad]") {
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_grad([](const Array& x) { return x * 2.0f; })(eqx::ones({3})); }) ==
        "eqx::filter_grad: the function must return a scalar float Array (rank 0), got f32[3]; reduce it first "
        "(eqx::sum, eqx::mean)");
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_grad([](const Array& x) { return eqx::max(x); })(eqx::ones({3})); }) ==
        "eqx: primitive 'reduce_max' has no VJP rule yet, so it cannot be differentiated");
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

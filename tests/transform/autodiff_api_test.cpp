// The autodiff API beyond filter_grad: filter_vjp, filter_jacfwd /
// filter_jacrev / filter_hessian, second derivatives (jvp of grad),
// filter_checkpoint, and apply_updates.

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
namespace transform_autodiff_api_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
using eqx_test::random_f64;

namespace {

struct Linear {
  Array weight, bias;
};

void check_close(const Array& got, const Array& want, double tol = 1e-6) {
  REQUIRE(got.shape() == want.shape());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  for (std::size_t k = 0; k < g.size(); ++k) {
    INFO("element " << k);
    CHECK(g[k] == Approx(w[k]).epsilon(tol).margin(tol));
  }
}

}  // namespace

TEST_CASE("filter_vjp: pullback of a pytree function, called twice, and inside jit", "[ad][vjp]") {
  // y = tanh(w * x + b): dy/dx = w (1 - y^2), dy/dw = x (1 - y^2), dy/db = 1 - y^2.
  auto f = [](const Array& x, const Linear& l) { return eqx::tanh(l.weight * x + l.bias); };
  const Array x = eqx::array({0.5, -1.0});
  const Linear l{eqx::array({2.0, 0.25}), eqx::array({0.1, -0.2})};
  auto [y, vjp_fn] = eqx::filter_vjp(f, x, l);
  std::vector<double> yv = y.to_vector<double>(), want_x, want_w, want_b;
  const double ct[2] = {1.0, -3.0}, xs[2] = {0.5, -1.0}, ws[2] = {2.0, 0.25};
  for (int i = 0; i < 2; ++i) {
    CHECK(yv[i] == Approx(std::tanh(ws[i] * xs[i] + (i ? -0.2 : 0.1))).epsilon(1e-15));
    const double d = ct[i] * (1 - yv[i] * yv[i]);
    want_x.push_back(d * ws[i]);
    want_w.push_back(d * xs[i]);
    want_b.push_back(d);
  }
  for (int call = 0; call < 2; ++call) {
    auto [dx, dl] = vjp_fn(eqx::array({1.0, -3.0}));
    check(dx, {2}, want_x);
    check(dl.weight, {2}, want_w);
    check(dl.bias, {2}, want_b);
  }
  // A None cotangent is zero.
  auto [dx0, dl0] = vjp_fn(Array{});
  check(dx0, {2}, std::vector<double>{0, 0});
  CHECK(message_of<eqx::ShapeError>([&] { vjp_fn(eqx::ones({3}, eqx::float64)); }) ==
        "eqx::filter_vjp: the cotangent at (root) is f64[3] but its output is f64[2]; a cotangent must have its output's "
        "shape and dtype");

  auto jitted = eqx::filter_jit([&](const Array& x, const Linear& l) {
    auto [y, pullback] = eqx::filter_vjp(f, x, l);
    return std::get<1>(pullback(eqx::array({1.0, -3.0})));
  });
  Linear dl = jitted(x, l);
  check(dl.weight, {2}, want_w);
  CHECK(jitted.num_traces() == 1);
}

TEST_CASE("filter_vjp: integer leaves get None, multiple outputs", "[ad][vjp]") {
  struct P {
    Array w, steps;
  };
  auto f = [](const P& p) { return std::pair{eqx::sum(p.w * p.w), p.w * 3.0f}; };
  auto [out, vjp_fn] = eqx::filter_vjp(f, P{eqx::array({1.0f, 2.0f}), eqx::array({7})});
  auto [dp] = vjp_fn(std::pair{eqx::array(1.0f), eqx::array({0.5f, 1.0f})});
  check(dp.w, {2}, std::vector<float>{2 + 1.5f, 4 + 3.0f});
  CHECK_FALSE(dp.steps.has_value());
}

TEST_CASE("filter_jacrev and filter_jacfwd agree with the hand-derived Jacobian", "[ad][jacobian]") {
  // f(x) = [x0 x1, sin(x2), x0^2]
  auto f = [](const Array& x) {
    Array x0 = eqx::slice(x, 0, 0, 1), x1 = eqx::slice(x, 0, 1, 2), x2 = eqx::slice(x, 0, 2, 3);
    return eqx::concatenate({x0 * x1, eqx::sin(x2), x0 * x0});
  };
  const Array x = eqx::array({1.5, -2.0, 0.3});
  const std::vector<double> want{-2.0, 1.5, 0, 0, 0, std::cos(0.3), 3.0, 0, 0};
  check(eqx::filter_jacrev(f)(x), {3, 3}, want);
  check(eqx::filter_jacfwd(f)(x), {3, 3}, want);
  // Under jit, one trace.
  auto jitted = eqx::filter_jit(eqx::filter_jacrev(f));
  check(jitted(x), {3, 3}, want);
  CHECK(jitted.num_traces() == 1);
}

TEST_CASE("Jacobians of a pytree argument have shape out + leaf", "[ad][jacobian]") {
  auto f = [](const Linear& l, const Array& x) { return eqx::matmul(x, l.weight) + l.bias; };  // [3] @ [3,2] + [2]
  const Linear l{random_f64(1, {3, 2}), random_f64(2, {2})};
  const Array x = eqx::array({1.0, 2.0, -1.0});
  Linear jr = eqx::filter_jacrev(f)(l, x), jf = eqx::filter_jacfwd(f)(l, x);
  // d y_i / d W_jk = x_j [i == k]; d y_i / d b_k = [i == k].
  std::vector<double> want_w, want_b;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) want_w.push_back(i == k ? std::vector<double>{1, 2, -1}[j] : 0.0);
    for (int k = 0; k < 2; ++k) want_b.push_back(i == k ? 1.0 : 0.0);
  }
  check(jr.weight, {2, 3, 2}, want_w);
  check(jf.weight, {2, 3, 2}, want_w);
  check(jr.bias, {2, 2}, want_b);
  check(jf.bias, {2, 2}, want_b);
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_jacrev([](const Array& x) { return x > 0.0; })(eqx::ones({2})); }) ==
        "eqx::filter_jacrev: the function must return a floating Array, got bool[2]; convert with eqx::astype");
}

TEST_CASE("filter_hessian of a cubic, and Hessian-vector products of an MLP loss", "[ad][jacobian]") {
  // f = sum(x^3) + x0 x1: H = diag(6 x) + [[0, 1], [1, 0]] on the first two.
  auto f = [](const Array& x) {
    return eqx::sum(x * x * x) + eqx::sum(eqx::slice(x, 0, 0, 1) * eqx::slice(x, 0, 1, 2));
  };
  check(eqx::filter_hessian(f)(eqx::array({1.0, 2.0, -1.0})), {3, 3},
        std::vector<double>{6, 1, 0, 1, 12, 0, 0, 0, -6});

  // jvp of grad (forward-over-reverse) against central differences of the gradient.
  struct Mlp {
    Linear l1, l2;
  };
  auto loss = [](const Mlp& m, const Array& x, const Array& y) {
    Array h = eqx::tanh(eqx::matmul(x, m.l1.weight) + m.l1.bias);
    return eqx::mean(eqx::square(eqx::matmul(h, m.l2.weight) + m.l2.bias - y));
  };
  const Mlp m{{random_f64(3, {3, 4}), random_f64(4, {4})}, {random_f64(5, {4, 2}), random_f64(6, {2})}};
  const Mlp v{{random_f64(7, {3, 4}), random_f64(8, {4})}, {random_f64(9, {4, 2}), random_f64(10, {2})}};
  const Array x = random_f64(11, {5, 3}), y = random_f64(12, {5, 2});
  auto grad = [&](const Mlp& p) { return eqx::filter_grad(loss)(p, x, y); };
  auto [g, hvp] = eqx::filter_jvp(grad, std::tuple{m}, std::tuple{v});
  const double eps = 1e-5;
  auto shifted = [&](double s) { return eqx::tree_map([&](const Array& p, const Array& d) { return p + d * s; }, m, v); };
  Mlp gp = grad(shifted(eps)), gm = grad(shifted(-eps));
  Mlp fd = eqx::tree_map([&](const Array& a, const Array& b) { return (a - b) / (2 * eps); }, gp, gm);
  check_close(hvp.l1.weight, fd.l1.weight);
  check_close(hvp.l1.bias, fd.l1.bias);
  check_close(hvp.l2.weight, fd.l2.weight);
  check_close(hvp.l2.bias, fd.l2.bias);
  // Reverse-over-reverse: grad of <grad, v> is the same Hessian-vector product.
  auto gv = [&](const Mlp& p) {
    Mlp gr = grad(p);
    return eqx::sum(gr.l1.weight * v.l1.weight) + eqx::sum(gr.l1.bias * v.l1.bias) + eqx::sum(gr.l2.weight * v.l2.weight) +
           eqx::sum(gr.l2.bias * v.l2.bias);
  };
  Mlp hvp2 = eqx::filter_grad(gv)(m);
  check_close(hvp2.l1.weight, fd.l1.weight);
  check_close(hvp2.l2.bias, fd.l2.bias);
  (void)g;
}

namespace {
/// Three matmul + tanh layers: intermediates worth not storing.
struct Block {
  Array w1, w2, w3;
  Array operator()(const Array& h) const {
    Array a = eqx::tanh(eqx::matmul(h, w1));
    Array b = eqx::tanh(eqx::matmul(a, w2));
    return eqx::tanh(eqx::matmul(b, w3)) + h;
  }
};
struct Net {
  std::vector<Block> blocks;
};
Net make_net(int width) {
  Net n;
  for (std::uint32_t i = 0; i < 4; ++i)
    n.blocks.push_back(Block{random_f64(20 + 3 * i, {width, width}, -0.1, 0.1), random_f64(21 + 3 * i, {width, width}, -0.1, 0.1),
                             random_f64(22 + 3 * i, {width, width}, -0.1, 0.1)});
  return n;
}
template <bool kCheckpoint>
Array net_loss(const Net& n, const Array& x) {
  Array h = x;
  for (const Block& b : n.blocks) h = kCheckpoint ? eqx::filter_checkpoint(b)(h) : b(h);
  return eqx::sum(h * h);
}
}  // namespace

TEST_CASE("filter_checkpoint: same gradients, smaller plan arena, a checkpoint equation in the jaxpr", "[ad][checkpoint]") {
  const Net net = make_net(64);
  const Array x = random_f64(40, {32, 64});
  Net plain = eqx::filter_grad(net_loss<false>)(net, x);
  Net remat = eqx::filter_grad(net_loss<true>)(net, x);
  for (std::size_t i = 0; i < 4; ++i) {
    check_close(remat.blocks[i].w1, plain.blocks[i].w1, 1e-12);
    check_close(remat.blocks[i].w3, plain.blocks[i].w3, 1e-12);
  }
  // The forward value, eagerly and through the checkpoint's own kernel.
  CHECK(net_loss<true>(net, x).item<double>() == Approx(net_loss<false>(net, x).item<double>()).epsilon(1e-14));

  auto step_plain = eqx::filter_jit(eqx::filter_value_and_grad(net_loss<false>));
  auto step_remat = eqx::filter_jit(eqx::filter_value_and_grad(net_loss<true>));
  auto [loss, g] = step_remat(net, x);
  CHECK(loss.item<double>() == Approx(net_loss<false>(net, x).item<double>()).epsilon(1e-12));
  check_close(g.blocks[2].w2, plain.blocks[2].w2, 1e-12);
  const std::size_t plain_bytes = step_plain.plan(net, x).memory_stats().arena_bytes;
  const std::size_t remat_bytes = step_remat.plan(net, x).memory_stats().arena_bytes;
  INFO("arena without checkpoint " << plain_bytes << " B, with " << remat_bytes << " B");
  // Without: every block's three activations stay until the backward pass.
  // With: only the block inputs, plus one block's activations at a time.
  CHECK(remat_bytes * 10 < plain_bytes * 7);

  std::string jaxpr = fmt::format("{}", eqx::filter_make_jaxpr(net_loss<true>)(net, x));
  CHECK(jaxpr.find("checkpoint[jaxpr={") != std::string::npos);
  // Forward mode through a checkpoint is the body's own JVP.
  const Net no_tangent = eqx::tree_map([](const Array&) { return Array{}; }, net);
  auto [y, ty] = eqx::filter_jvp(net_loss<true>, std::tuple{net, x}, std::tuple{no_tangent, eqx::ones_like(x)});
  auto [y2, ty2] = eqx::filter_jvp(net_loss<false>, std::tuple{net, x}, std::tuple{no_tangent, eqx::ones_like(x)});
  CHECK(ty.item<double>() == Approx(ty2.item<double>()).epsilon(1e-12));
}

TEST_CASE("apply_updates adds updates where they exist and keeps the rest", "[ad][update]") {
  struct Model {
    Array w, steps;
    int width;
  };
  const Model m{eqx::array({1.0f, 2.0f}), eqx::array({5}), 7};
  Model g = eqx::filter_grad([](const Model& m) { return eqx::sum(m.w * m.w); })(m);
  CHECK_FALSE(g.steps.has_value());
  Model updates = eqx::tree_map([](const Array& x) { return x * -0.25f; }, g);
  Model next = eqx::apply_updates(m, updates);
  check(next.w, {2}, std::vector<float>{0.5f, 1.0f});
  check(next.steps, {1}, std::vector<int>{5});
  CHECK(next.width == 7);
  CHECK(message_of<eqx::ShapeError>([&] { eqx::apply_updates(m, Model{eqx::ones({3}), Array{}, 7}); }) ==
        "eqx::apply_updates: at .w the update is f32[3] but the model leaf is f32[2]; an update must have its "
        "leaf's shape and dtype (it would otherwise broadcast or promote)");
  CHECK(message_of<eqx::TreeStructureError>([&] { eqx::apply_updates(Model{Array{}, Array{}, 7}, updates); }) ==
        "eqx::apply_updates: at .w the update is an Array but the model leaf is None; updates must have None (or an "
        "Array) where the model has an Array, and None where it has None");
}

TEST_CASE("filter_checkpoint of a closure: captured traced values become inputs and get gradients", "[ad][checkpoint]") {
  auto loss = [](const Linear& l, const Array& x, bool remat) {
    auto layer = [&](const Array& h) { return eqx::tanh(eqx::matmul(h, l.weight) + l.bias); };  // closes over l
    Array h = remat ? eqx::filter_checkpoint(layer)(x) : layer(x);
    return eqx::sum(h * h);
  };
  const Linear l{random_f64(50, {3, 4}), random_f64(51, {4})};
  const Array x = random_f64(52, {2, 3});
  Linear plain = eqx::filter_grad(loss)(l, x, false);
  Linear remat = eqx::filter_grad(loss)(l, x, true);
  check_close(remat.weight, plain.weight, 1e-12);
  check_close(remat.bias, plain.bias, 1e-12);
  auto step = eqx::filter_jit([&](const Linear& l, const Array& x) { return eqx::filter_grad(loss)(l, x, true); });
  Linear jitted = step(l, x);
  check_close(jitted.weight, plain.weight, 1e-12);
  check_close(jitted.bias, plain.bias, 1e-12);
  // A closure over a concrete Array stays a constant of the body.
  const Array w = l.weight;
  auto f = eqx::filter_checkpoint([w](const Array& h) { return eqx::matmul(h, w); });
  check_close(eqx::filter_grad([&](const Array& x) { return eqx::sum(f(x)); })(x),
              eqx::broadcast_to(eqx::reshape(eqx::sum(w, {1}), {1, 3}), {2, 3}), 1e-12);
}

TEST_CASE("reduce_prod: exact Hessians at zeros", "[ad][jacobian]") {
  auto prod = [](const Array& x) { return eqx::prod(x); };
  // d2/dxi dxj prod = product of the elements other than i and j.
  check(eqx::filter_hessian(prod)(eqx::array({1.0, 2.0, 3.0})), {3, 3}, std::vector<double>{0, 3, 2, 3, 0, 1, 2, 1, 0});
  check(eqx::filter_hessian(prod)(eqx::array({0.0, 2.0, 3.0})), {3, 3}, std::vector<double>{0, 3, 2, 3, 0, 0, 2, 0, 0});
  check(eqx::filter_hessian(prod)(eqx::array({0.0, 0.0, 3.0})), {3, 3}, std::vector<double>{0, 3, 0, 3, 0, 0, 0, 0, 0});
  check(eqx::filter_hessian(prod)(eqx::array({0.0, 0.0, 0.0})), {3, 3}, std::vector<double>(9, 0.0));
  check(eqx::filter_grad(prod)(eqx::array({0.0, 2.0, 3.0})), {3}, std::vector<double>{6, 0, 0});
}

TEST_CASE("Jacobian and tape edge cases: None output, empty and integer leaves, wrong cotangent count", "[ad][jacobian]") {
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_jacrev([](const Array&) { return Array{}; })(eqx::ones({2})); }) ==
        "eqx::filter_jacrev: the function must return a floating Array, got None; convert with eqx::astype");
  CHECK(message_of<eqx::ValueError>([] { eqx::filter_jacfwd([](const Array&) { return Array{}; })(eqx::ones({2})); }) ==
        "eqx::filter_jacfwd: the function must return a floating Array, got None; convert with eqx::astype");
  struct P {
    Array w, empty, n;
  };
  auto f = [](const P& p) { return p.w * 2.0 + eqx::sum(p.empty); };
  const P p{eqx::array({1.0, 2.0}), eqx::zeros({0}, eqx::float64), eqx::array({4})};
  for (const P& j : {eqx::filter_jacrev(f)(p), eqx::filter_jacfwd(f)(p)}) {
    check(j.w, {2, 2}, std::vector<double>{2, 0, 0, 2});
    check(j.empty, {2, 0}, std::vector<double>{});
    CHECK_FALSE(j.n.has_value());
  }
  eqx::Graph g = eqx::filter_make_jaxpr([](const Array& x) { return x * x; })(eqx::ones({2})).graph;
  std::vector<Array> primals{eqx::ones({2})};
  eqx::VjpTape tape(std::make_shared<const eqx::Graph>(g), primals);
  CHECK(message_of<eqx::ValueError>([&] { eqx::vjp_backward(tape, {}); }) ==
        "eqx::vjp_backward: the graph has 1 outputs but 0 cotangents were given (an empty Array is a zero cotangent)");
}

}  // namespace transform_autodiff_api_test
